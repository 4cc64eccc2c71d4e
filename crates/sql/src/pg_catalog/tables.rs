//! The `pg_catalog` schema: DataFusion tables built from the Weir catalog when a query names
//! them (`pg_class` and `pg_attribute` from [`relations`], fixed rows for the rest, empty
//! tables for what Weir has none of: indexes, constraints, policies), so a client's catalog
//! query always sees the catalog as it is now.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int16Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;

use super::builtin_types::TYPES;
use super::{
    relations, server_version, Relation, Sources, INFORMATION_SCHEMA_OID, OWNER_OID,
    PG_CATALOG_OID, PUBLIC_OID, STARTUP_SETTINGS,
};
use crate::pg::pg_type;
use crate::views::Views;

/// The `pg_catalog` schema: each table built from the Weir catalog when a query asks for it.
#[derive(Debug)]
pub(crate) struct PgCatalog {
    sources: Sources,
    views: Views,
}

impl PgCatalog {
    pub(crate) fn new(sources: Sources, views: Views) -> PgCatalog {
        PgCatalog { sources, views }
    }
}

const TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_database",
    "pg_settings",
    "pg_index",
    "pg_description",
    "pg_inherits",
    "pg_constraint",
    "pg_am",
    "pg_attrdef",
    "pg_roles",
    "pg_collation",
    "pg_views",
    "pg_matviews",
];

/// Whether `pg_catalog` answers a table of this (case-folded) name.
pub(super) fn is_catalog_table(name: &str) -> bool {
    TABLES.contains(&name)
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        let relations = relations(&self.sources, &self.views);
        let table = match name {
            "pg_namespace" => Table::new()
                .int(
                    "oid",
                    vec![PG_CATALOG_OID, PUBLIC_OID, INFORMATION_SCHEMA_OID],
                )
                .text(
                    "nspname",
                    vec!["pg_catalog", "public", "information_schema"],
                )
                .int("nspowner", vec![OWNER_OID; 3])
                .null_text("nspacl", 3),
            "pg_class" => pg_class(&relations),
            "pg_attribute" => pg_attribute(&relations),
            "pg_type" => pg_type_table(),
            "pg_database" => Table::new()
                .int("oid", vec![1])
                .text("datname", vec!["weir"])
                .int("datdba", vec![OWNER_OID])
                .int("encoding", vec![6])
                .text("datlocprovider", vec!["c"])
                .boolean("datistemplate", vec![false])
                .boolean("datallowconn", vec![true])
                .int("datconnlimit", vec![-1])
                .int("dattablespace", vec![1663])
                .text("datcollate", vec!["C"])
                .text("datctype", vec!["C"])
                .null_text("datacl", 1),
            "pg_settings" => {
                let mut names: Vec<&str> = STARTUP_SETTINGS.iter().map(|(k, _)| *k).collect();
                let mut values: Vec<String> = STARTUP_SETTINGS
                    .iter()
                    .map(|(_, v)| v.to_string())
                    .collect();
                names.push("server_version");
                values.push(server_version());
                let n = names.len();
                Table::new()
                    .text("name", names)
                    .text("setting", values.iter().map(String::as_str).collect())
                    .null_text("unit", n)
                    .text("category", vec![""; n])
                    .text("short_desc", vec![""; n])
                    .text("context", vec!["user"; n])
                    .text("vartype", vec!["string"; n])
                    .text("source", vec!["default"; n])
            }
            "pg_index" => Table::new()
                .int("indexrelid", vec![])
                .int("indrelid", vec![])
                .int("indnatts", vec![])
                .boolean("indisunique", vec![])
                .boolean("indisprimary", vec![])
                .boolean("indisclustered", vec![])
                .boolean("indisvalid", vec![])
                .boolean("indisreplident", vec![])
                .text("indkey", vec![]),
            "pg_description" => Table::new()
                .int("objoid", vec![])
                .int("classoid", vec![])
                .int("objsubid", vec![])
                .text("description", vec![]),
            "pg_inherits" => Table::new()
                .int("inhrelid", vec![])
                .int("inhparent", vec![])
                .int("inhseqno", vec![])
                .boolean("inhdetachpending", vec![]),
            "pg_constraint" => Table::new()
                .int("oid", vec![])
                .text("conname", vec![])
                .int("connamespace", vec![])
                .text("contype", vec![])
                .int("conrelid", vec![])
                .int("confrelid", vec![])
                .int("conindid", vec![])
                .text("conkey", vec![]),
            "pg_am" => Table::new()
                .int("oid", vec![2])
                .text("amname", vec!["heap"])
                .text("amhandler", vec!["heap_tableam_handler"])
                .text("amtype", vec!["t"]),
            "pg_attrdef" => pg_attrdef(&relations),
            "pg_collation" => Table::new()
                .int("oid", vec![])
                .text("collname", vec![])
                .int("collnamespace", vec![]),
            "pg_roles" => Table::new()
                .int("oid", vec![OWNER_OID])
                .text("rolname", vec!["weir"])
                .boolean("rolsuper", vec![true])
                .boolean("rolcanlogin", vec![true]),
            "pg_views" => {
                let views = of_kind(&relations, "v");
                Table::new()
                    .text("schemaname", vec!["public"; views.len()])
                    .text("viewname", views.iter().map(|r| r.name.as_str()).collect())
                    .text("viewowner", vec!["weir"; views.len()])
                    .text("definition", definitions(&views))
            }
            "pg_matviews" => {
                let views = of_kind(&relations, "m");
                let n = views.len();
                Table::new()
                    .text("schemaname", vec!["public"; n])
                    .text(
                        "matviewname",
                        views.iter().map(|r| r.name.as_str()).collect(),
                    )
                    .text("matviewowner", vec!["weir"; n])
                    .null_text("tablespace", n)
                    .boolean("hasindexes", vec![false; n])
                    .boolean("ispopulated", vec![true; n])
                    .text("definition", definitions(&views))
            }
            _ => return Ok(None),
        };
        Ok(Some(table.provider()?))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

/// The relations of one `relkind` (`pg_views`: `v`, `pg_matviews`: `m`).
fn of_kind<'a>(relations: &'a [Relation], relkind: &str) -> Vec<&'a Relation> {
    relations.iter().filter(|r| r.relkind == relkind).collect()
}

/// Their definitions, the text `pg_get_viewdef` returns (PostgreSQL's `pg_views` and
/// `pg_matviews` are built on it).
fn definitions<'a>(relations: &[&'a Relation]) -> Vec<&'a str> {
    relations
        .iter()
        .map(|r| r.definition.as_deref().unwrap_or(""))
        .collect()
}

fn pg_class(relations: &[Relation]) -> Table {
    let n = relations.len();
    Table::new()
        .int("oid", relations.iter().map(|r| r.oid).collect())
        .text(
            "relname",
            relations.iter().map(|r| r.name.as_str()).collect(),
        )
        .int("relnamespace", vec![PUBLIC_OID; n])
        .int("reltype", vec![0; n])
        .int("reloftype", vec![0; n])
        .int("relowner", vec![OWNER_OID; n])
        .int("relam", vec![2; n])
        .int("relfilenode", vec![0; n])
        .int("reltablespace", vec![0; n])
        .int("relpages", vec![0; n])
        .float("reltuples", vec![-1.0; n])
        .int("reltoastrelid", vec![0; n])
        .boolean("relhasindex", vec![false; n])
        .boolean("relisshared", vec![false; n])
        .text("relpersistence", vec!["p"; n])
        .text("relkind", relations.iter().map(|r| r.relkind).collect())
        .small(
            "relnatts",
            relations
                .iter()
                .map(|r| r.schema.fields().len() as i16)
                .collect(),
        )
        .small("relchecks", vec![0; n])
        .boolean("relhasrules", vec![false; n])
        .boolean("relhastriggers", vec![false; n])
        .boolean("relhassubclass", vec![false; n])
        .boolean("relrowsecurity", vec![false; n])
        .boolean("relforcerowsecurity", vec![false; n])
        .boolean("relispopulated", vec![true; n])
        .text("relreplident", vec!["d"; n])
        .boolean("relispartition", vec![false; n])
        .null_text("relacl", n)
        .null_text("reloptions", n)
        .null_text("relpartbound", n)
}

fn pg_attribute(relations: &[Relation]) -> Table {
    let (mut rel, mut name, mut typ, mut num, mut notnull, mut hasdef, mut len) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for d in relations {
        for (i, f) in d.schema.fields().iter().enumerate() {
            rel.push(d.oid);
            name.push(f.name().as_str());
            let t = pg_type(f.data_type());
            typ.push(i64::from(t.oid()));
            num.push(i16::try_from(i + 1).unwrap_or(i16::MAX));
            notnull.push(!f.is_nullable());
            hasdef.push(d.defaults.get(i).is_some_and(Option::is_some));
            len.push(
                TYPES
                    .iter()
                    .find(|x| x.0 == i64::from(t.oid()))
                    .map_or(-1, |x| x.2),
            );
        }
    }
    let n = rel.len();
    Table::new()
        .int("attrelid", rel)
        .text("attname", name)
        .int("atttypid", typ)
        .small("attlen", len)
        .small("attnum", num)
        .int("attndims", vec![0; n])
        .int("atttypmod", vec![-1; n])
        .boolean("attbyval", vec![false; n])
        .text("attalign", vec!["i"; n])
        .text("attstorage", vec!["x"; n])
        .text("attcompression", vec![""; n])
        .boolean("attnotnull", notnull)
        .boolean("atthasdef", hasdef)
        .boolean("atthasmissing", vec![false; n])
        .text("attidentity", vec![""; n])
        .text("attgenerated", vec![""; n])
        .boolean("attisdropped", vec![false; n])
        .boolean("attislocal", vec![true; n])
        .int("attinhcount", vec![0; n])
        .int("attcollation", vec![0; n])
        .int("attstattarget", vec![-1; n])
        .null_text("attacl", n)
        .null_text("attoptions", n)
        .null_text("attfdwoptions", n)
}

/// A row per column DEFAULT: `adbin` holds its SQL, which `pg_get_expr` returns as it is.
fn pg_attrdef(relations: &[Relation]) -> Table {
    let (mut rel, mut num, mut sql) = (vec![], vec![], vec![]);
    for r in relations {
        for (i, default) in r.defaults.iter().enumerate() {
            if let Some(d) = default {
                rel.push(r.oid);
                num.push(i64::try_from(i + 1).unwrap_or(i64::MAX));
                sql.push(d.as_str());
            }
        }
    }
    // An OID of its own per default: the column's relation OID shifted past its attnum.
    let oids = rel.iter().zip(&num).map(|(r, n)| r * 10_000 + n).collect();
    Table::new()
        .int("oid", oids)
        .int("adrelid", rel)
        .int("adnum", num)
        .text("adbin", sql)
}

fn pg_type_table() -> Table {
    let n = TYPES.len();
    Table::new()
        .int("oid", TYPES.iter().map(|t| t.0).collect())
        .text("typname", TYPES.iter().map(|t| t.1).collect())
        .int("typnamespace", vec![PG_CATALOG_OID; n])
        .int("typowner", vec![OWNER_OID; n])
        .small("typlen", TYPES.iter().map(|t| t.2).collect())
        .boolean(
            "typbyval",
            TYPES.iter().map(|t| t.2 > 0 && t.2 <= 8).collect(),
        )
        .text("typtype", vec!["b"; n])
        .text("typcategory", TYPES.iter().map(|t| t.3).collect())
        .boolean("typispreferred", vec![false; n])
        .boolean("typisdefined", vec![true; n])
        .text("typdelim", vec![","; n])
        .int("typrelid", vec![0; n])
        .int("typelem", TYPES.iter().map(|t| t.5).collect())
        .int("typarray", TYPES.iter().map(|t| t.4).collect())
        .text("typinput", TYPES.iter().map(|t| t.1).collect())
        .text("typoutput", TYPES.iter().map(|t| t.1).collect())
        .text("typreceive", TYPES.iter().map(|t| t.1).collect())
        .text("typsend", TYPES.iter().map(|t| t.1).collect())
        .text("typalign", vec!["i"; n])
        .text("typstorage", vec!["p"; n])
        .boolean("typnotnull", vec![false; n])
        .int("typbasetype", vec![0; n])
        .int("typtypmod", vec![-1; n])
        .int("typndims", vec![0; n])
        .int("typcollation", vec![0; n])
        .null_text("typdefault", n)
        .null_text("typacl", n)
}

/// A small column-wise table builder.
struct Table {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl Table {
    fn new() -> Table {
        Table {
            fields: Vec::new(),
            columns: Vec::new(),
        }
    }

    fn push(mut self, name: &str, data_type: DataType, array: ArrayRef) -> Table {
        self.fields.push(Field::new(name, data_type, true));
        self.columns.push(array);
        self
    }

    fn int(self, name: &str, v: Vec<i64>) -> Table {
        self.push(name, DataType::Int64, Arc::new(Int64Array::from(v)))
    }

    fn small(self, name: &str, v: Vec<i16>) -> Table {
        self.push(name, DataType::Int16, Arc::new(Int16Array::from(v)))
    }

    fn float(self, name: &str, v: Vec<f64>) -> Table {
        self.push(name, DataType::Float64, Arc::new(Float64Array::from(v)))
    }

    fn text(self, name: &str, v: Vec<&str>) -> Table {
        self.push(name, DataType::Utf8, Arc::new(StringArray::from(v)))
    }

    fn null_text(self, name: &str, n: usize) -> Table {
        self.push(
            name,
            DataType::Utf8,
            Arc::new(StringArray::from(vec![None::<&str>; n])),
        )
    }

    fn boolean(self, name: &str, v: Vec<bool>) -> Table {
        self.push(name, DataType::Boolean, Arc::new(BooleanArray::from(v)))
    }

    fn provider(self) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let schema = Arc::new(Schema::new(self.fields));
        let batch = RecordBatch::try_new(schema.clone(), self.columns)?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}
