//! What PostgreSQL clients ask a server besides SQL over their data: server parameters,
//! session settings (`SHOW`), the `pg_catalog` tables psql's `\d` and drivers read (generated
//! from the Weir catalog at each query), the functions they call, and a rewrite of
//! PostgreSQL-only syntax (`OPERATOR(pg_catalog.~)`, `COLLATE`, `::regclass`) into what
//! DataFusion plans. The queries it is tested with are in `tests/catalog_queries/`.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int16Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Signature, SimpleScalarUDF, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, ObjectName, ObjectNamePart,
    SelectItem, SetExpr, Statement, TableFactor, Value,
};

use crate::pg::pg_type;
use crate::source::SourceDef;
use crate::views::Views;

type Sources = Arc<RwLock<BTreeMap<String, Arc<SourceDef>>>>;

/// A relation as `pg_class` and `pg_attribute` show it: sources, tables and materialized
/// views (`r`, their topics hold rows), views (`v`).
struct Relation {
    oid: i64,
    name: String,
    relkind: &'static str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// Per column, whether it has a DEFAULT.
    defaults: Vec<bool>,
}

/// Every relation of the Weir catalog, by name.
fn relations(sources: &Sources, views: &Views) -> Vec<Relation> {
    let mut out: Vec<Relation> = sources
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|d| Relation {
            oid: relation_oid(d.id),
            name: d.name.clone(),
            relkind: "r",
            schema: d.schema.clone(),
            defaults: d.defaults.iter().map(Option::is_some).collect(),
        })
        .collect();
    out.extend(
        views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|v| Relation {
                oid: relation_oid(v.id),
                name: v.name.clone(),
                relkind: "v",
                schema: v.schema.clone(),
                defaults: Vec::new(),
            }),
    );
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Parameters reported at startup (besides `server_version`), PostgreSQL's names.
pub const STARTUP_SETTINGS: &[(&str, &str)] = &[
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("integer_datetimes", "on"),
    ("standard_conforming_strings", "on"),
    ("is_superuser", "on"),
    ("default_transaction_read_only", "off"),
    ("in_hot_standby", "off"),
    ("search_path", "public"),
];

const PG_CATALOG_OID: i64 = 11;
const PUBLIC_OID: i64 = 2200;
const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// Relation OIDs: PostgreSQL's first user OID plus the catalog entry's id.
const FIRST_USER_OID: i64 = 16_384;
const OWNER_OID: i64 = 10;

/// What `server_version` says: PostgreSQL 16's protocol and catalog shapes, served by Weir.
pub fn server_version() -> String {
    format!("16.0 (Weir {})", env!("CARGO_PKG_VERSION"))
}

/// The value `SHOW name` gives when the session did not SET it.
pub fn setting(name: &str) -> Option<&'static str> {
    let fixed = match name {
        "transaction_isolation" | "transaction isolation level" => "read committed",
        "default_transaction_isolation" => "read committed",
        "transaction_read_only" => "off",
        "server_version_num" => "160000",
        "max_identifier_length" => "63",
        "application_name" => "",
        "extra_float_digits" => "1",
        "lc_messages" | "lc_monetary" | "lc_numeric" | "lc_time" | "lc_collate" | "lc_ctype" => "C",
        _ => {
            return STARTUP_SETTINGS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    };
    Some(fixed)
}

/// Registers the `pg_catalog` schema and the functions clients call.
pub fn register(ctx: &SessionContext, sources: Sources, views: Views) {
    if let Some(catalog) = ctx.catalog("weir") {
        let schema = Arc::new(PgCatalog {
            sources: sources.clone(),
            views: views.clone(),
        });
        if let Err(e) = catalog.register_schema("pg_catalog", schema) {
            tracing::error!(error = %e, "cannot register pg_catalog");
        }
    }
    let text = |v: &str| ScalarValue::Utf8(Some(v.to_string()));
    let version = format!("PostgreSQL {} on Weir", server_version());
    for (name, value) in [
        ("version", text(&version)),
        ("current_database", text("weir")),
        ("current_schema", text("public")),
        ("pg_backend_pid", ScalarValue::Int32(Some(1))),
    ] {
        constant_fn(ctx, name, Signature::nullary(Volatility::Stable), value);
    }
    let any = || Signature::variadic_any(Volatility::Stable);
    constant_fn(
        ctx,
        "pg_table_is_visible",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(
        ctx,
        "has_table_privilege",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(
        ctx,
        "has_schema_privilege",
        any(),
        ScalarValue::Boolean(Some(true)),
    );
    constant_fn(ctx, "pg_get_userbyid", any(), text("weir"));
    constant_fn(ctx, "pg_encoding_to_char", any(), text("UTF8"));
    constant_fn(ctx, "obj_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "col_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "shobj_description", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "pg_get_expr", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "pg_get_constraintdef", any(), ScalarValue::Utf8(None));
    constant_fn(ctx, "pg_get_indexdef", any(), ScalarValue::Utf8(None));
    constant_fn(
        ctx,
        "pg_get_statisticsobjdef_columns",
        any(),
        ScalarValue::Utf8(None),
    );
    ctx.register_udf(format_type());
    ctx.register_udf(regclass(sources, views));
}

/// A function of constant value (what Weir has nothing to report for, or one answer).
fn constant_fn(ctx: &SessionContext, name: &str, signature: Signature, value: ScalarValue) {
    let data_type = value.data_type();
    let udf = SimpleScalarUDF::new_with_signature(
        name,
        signature,
        data_type,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    );
    ctx.register_udf(ScalarUDF::from(udf));
}

/// `format_type(type_oid, typmod)`: the type's SQL name.
fn format_type() -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "format_type",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Utf8,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = args
                .iter()
                .find_map(|a| match a {
                    ColumnarValue::Array(a) => Some(a.len()),
                    _ => None,
                })
                .unwrap_or(1);
            let oids = args
                .first()
                .map(|a| a.to_array(rows))
                .transpose()?
                .map(|a| datafusion::arrow::compute::cast(&a, &DataType::Int64))
                .transpose()?;
            let names: StringArray = match oids {
                None => StringArray::from(vec![None::<&str>; rows]),
                Some(oids) => {
                    use datafusion::arrow::array::AsArray;
                    use datafusion::arrow::datatypes::Int64Type;
                    oids.as_primitive::<Int64Type>()
                        .iter()
                        .map(|o| o.and_then(type_name))
                        .collect()
                }
            };
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    );
    ScalarUDF::from(udf)
}

/// `'name'::regclass`, rewritten to `weir_regclass('name')`: the relation's OID.
fn regclass(sources: Sources, views: Views) -> ScalarUDF {
    let udf = SimpleScalarUDF::new_with_signature(
        "weir_regclass",
        Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        DataType::Int64,
        Arc::new(move |args: &[ColumnarValue]| {
            let lookup = |name: Option<&str>| -> Option<i64> {
                let name = name?.trim_matches('"');
                let name = name.rsplit('.').next().unwrap_or(name);
                relations(&sources, &views)
                    .into_iter()
                    .find(|r| r.name == name)
                    .map(|r| r.oid)
            };
            Ok(match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(s))) => {
                    ColumnarValue::Scalar(ScalarValue::Int64(lookup(s.as_deref())))
                }
                Some(ColumnarValue::Array(a)) => {
                    use datafusion::arrow::array::AsArray;
                    let out: Int64Array = a.as_string::<i32>().iter().map(lookup).collect();
                    ColumnarValue::Array(Arc::new(out))
                }
                _ => ColumnarValue::Scalar(ScalarValue::Int64(None)),
            })
        }),
    );
    ScalarUDF::from(udf)
}

/// Built-in types clients look up: (oid, name, length, category, array oid, element oid).
const TYPES: &[(i64, &str, i16, &str, i64, i64)] = &[
    (16, "bool", 1, "B", 1000, 0),
    (17, "bytea", -1, "U", 1001, 0),
    (20, "int8", 8, "N", 1016, 0),
    (21, "int2", 2, "N", 1005, 0),
    (23, "int4", 4, "N", 1007, 0),
    (25, "text", -1, "S", 1009, 0),
    (26, "oid", 4, "N", 1028, 0),
    (700, "float4", 4, "N", 1021, 0),
    (701, "float8", 8, "N", 1022, 0),
    (1043, "varchar", -1, "S", 1015, 0),
    (1082, "date", 4, "D", 1182, 0),
    (1083, "time", 8, "D", 1183, 0),
    (1114, "timestamp", 8, "D", 1115, 0),
    (1184, "timestamptz", 8, "D", 1185, 0),
    (1186, "interval", 16, "T", 1187, 0),
    (1700, "numeric", -1, "N", 1231, 0),
    (1000, "_bool", -1, "A", 0, 16),
    (1001, "_bytea", -1, "A", 0, 17),
    (1016, "_int8", -1, "A", 0, 20),
    (1005, "_int2", -1, "A", 0, 21),
    (1007, "_int4", -1, "A", 0, 23),
    (1009, "_text", -1, "A", 0, 25),
    (1021, "_float4", -1, "A", 0, 700),
    (1022, "_float8", -1, "A", 0, 701),
    (1015, "_varchar", -1, "A", 0, 1043),
    (1182, "_date", -1, "A", 0, 1082),
    (1115, "_timestamp", -1, "A", 0, 1114),
    (1185, "_timestamptz", -1, "A", 0, 1184),
    (1231, "_numeric", -1, "A", 0, 1700),
];

/// The SQL name `format_type` gives a type OID.
fn type_name(oid: i64) -> Option<&'static str> {
    Some(match oid {
        16 => "boolean",
        17 => "bytea",
        20 => "bigint",
        21 => "smallint",
        23 => "integer",
        25 => "text",
        26 => "oid",
        700 => "real",
        701 => "double precision",
        1043 => "character varying",
        1082 => "date",
        1083 => "time without time zone",
        1114 => "timestamp without time zone",
        1184 => "timestamp with time zone",
        1186 => "interval",
        1700 => "numeric",
        1000 => "boolean[]",
        1016 => "bigint[]",
        1005 => "smallint[]",
        1007 => "integer[]",
        1009 => "text[]",
        1021 => "real[]",
        1022 => "double precision[]",
        1231 => "numeric[]",
        1182 => "date[]",
        1115 => "timestamp without time zone[]",
        1185 => "timestamp with time zone[]",
        _ => return None,
    })
}

/// The `pg_catalog` schema: each table built from the Weir catalog when a query asks for it.
#[derive(Debug)]
struct PgCatalog {
    sources: Sources,
    views: Views,
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
];

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
            "pg_attrdef" => Table::new()
                .int("oid", vec![])
                .int("adrelid", vec![])
                .int("adnum", vec![])
                .text("adbin", vec![]),
            "pg_collation" => Table::new()
                .int("oid", vec![])
                .text("collname", vec![])
                .int("collnamespace", vec![]),
            "pg_roles" => Table::new()
                .int("oid", vec![OWNER_OID])
                .text("rolname", vec!["weir"])
                .boolean("rolsuper", vec![true])
                .boolean("rolcanlogin", vec![true]),
            _ => return Ok(None),
        };
        Ok(Some(table.provider()?))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.contains(&name)
    }
}

fn relation_oid(id: u64) -> i64 {
    FIRST_USER_OID + id as i64
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
            hasdef.push(d.defaults.get(i).copied().unwrap_or(false));
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

/// Rewrites PostgreSQL-only syntax clients send into what DataFusion plans.
pub fn rewrite(mut statement: Statement) -> Statement {
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut statement, |e| {
        rewrite_expr(e);
        ControlFlow::<()>::Continue(())
    });
    statement
}

fn rewrite_expr(e: &mut Expr) {
    match e {
        // `a OPERATOR(pg_catalog.~) b`: the operator itself.
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                let replaced = match parts.last().map(String::as_str) {
                    Some("~") => Some(BinaryOperator::PGRegexMatch),
                    Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                    Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                    Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                    Some("=") => Some(BinaryOperator::Eq),
                    Some("<>") => Some(BinaryOperator::NotEq),
                    Some("<") => Some(BinaryOperator::Lt),
                    Some(">") => Some(BinaryOperator::Gt),
                    _ => None,
                };
                if let Some(r) = replaced {
                    *op = r;
                }
            }
        }
        // Collations: Weir compares strings by bytes (C) whatever is asked.
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = inner;
            rewrite_expr(e);
        }
        // A scalar subquery returns at most one row in PostgreSQL (more is an error);
        // DataFusion plans a correlated one only when aggregated: `max` of its one row is it.
        Expr::Subquery(q) => {
            // psql's `\d name` asks a column's default (pg_attrdef) and collation
            // (pg_collation) through subqueries correlated by non-equalities, which DataFusion
            // cannot decorrelate. Weir has no collations, and shows defaults in DESCRIBE:
            // both read as NULL here.
            if let SetExpr::Select(select) = q.body.as_ref() {
                let reads_unplannable = select.from.iter().any(|t| {
                    matches!(&t.relation, TableFactor::Table { name, .. } if name
                        .0
                        .last()
                        .and_then(ObjectNamePart::as_ident)
                        .is_some_and(|i| matches!(i.value.as_str(), "pg_attrdef" | "pg_collation")))
                });
                if reads_unplannable {
                    *e = Expr::value(Value::Null);
                    return;
                }
            }
            if let SetExpr::Select(select) = q.body.as_mut() {
                let ungrouped =
                    matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
                if let ([item], true) = (select.projection.as_mut_slice(), ungrouped) {
                    let target: Option<&mut Expr> = match item {
                        SelectItem::UnnamedExpr(e) => Some(e),
                        SelectItem::ExprWithAlias { expr, .. } => Some(expr),
                        _ => None,
                    };
                    if let Some(target) = target {
                        let aggregate = matches!(&*target, Expr::Function(f) if f
                            .name
                            .0
                            .last()
                            .and_then(ObjectNamePart::as_ident)
                            .is_some_and(|i| AGGREGATES.contains(&i.value.to_lowercase().as_str())));
                        if !aggregate {
                            let inner = std::mem::replace(target, Expr::value(Value::Null));
                            *target = call("max", inner);
                        }
                    }
                }
            }
        }
        // `pg_catalog.fn(...)`: the function by its own name.
        Expr::Function(f) if f.name.0.len() > 1 => {
            if let Some(last) = f.name.0.last().cloned() {
                f.name = ObjectName(vec![last]);
            }
        }
        // Casts to PostgreSQL's OID alias types and catalog type names.
        Expr::Cast {
            expr,
            data_type,
            kind,
            ..
        } => {
            let name = match data_type {
                SqlType::Regclass => Some("regclass".to_string()),
                SqlType::Custom(n, _) => {
                    n.0.last()
                        .and_then(ObjectNamePart::as_ident)
                        .map(|i| i.value.to_lowercase())
                }
                _ => None,
            };
            match name.as_deref() {
                Some("regclass") => {
                    let arg = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                    *e = call("weir_regclass", arg);
                }
                Some(
                    "regtype" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "oid"
                    | "xid" | "cid",
                ) => {
                    *data_type = SqlType::BigInt(None);
                    *kind = CastKind::Cast;
                }
                Some("text" | "name" | "char" | "bpchar" | "varchar") => {
                    *data_type = SqlType::Text;
                }
                Some("int2vector" | "oidvector" | "_text" | "_oid") => {
                    *data_type = SqlType::Text;
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Aggregates clients put in scalar subqueries (left as they are).
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
];

fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
