//! A source's definition: `CREATE SOURCE` checked into the Arrow schema it reads as, the
//! record format, metadata columns and stored options.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::sql::sqlparser::ast::{ColumnDef, ColumnOption, Expr};
use weir_format::Format;

use crate::catalog::ColumnInfo;
use crate::error::SqlError;
use crate::parser::{CreateSource, Meta, ObjectKind};
use crate::types;

/// `WITH` options a source accepts.
const OPTIONS: &[&str] = &[
    "topic",
    "format",
    "scan.startup.mode",
    "scan.startup.timestamp.millis",
    "dead_letter",
    "watermark.idle.timeout",
    "csv.delimiter",
    DEDUP_KEY,
    DEDUP_WITHIN,
];

/// The source's deduplication (design §9, "Dedup shorthand"): its key columns, one name or
/// several separated by commas (payload or INCLUDE columns)...
pub const DEDUP_KEY: &str = "dedup.key";
/// ...and the bound, an interval of event time (the watermark column's) like '10 minutes'.
pub const DEDUP_WITHIN: &str = "dedup.within";

/// A source's `dedup.key` / `dedup.within`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDedup {
    /// Key column names, as declared.
    pub key: Vec<String>,
    /// The watermark column: the event time the bound is measured in.
    pub time: String,
    pub within_ms: i64,
}

/// A column's DEFAULT, evaluated once at CREATE: as JSON for the decoder, as a literal for
/// DataFusion's INSERT planning.
#[derive(Debug, Clone)]
pub struct Default {
    pub json: serde_json::Value,
    pub literal: DfExpr,
}

#[derive(Debug, Clone)]
pub struct SourceDef {
    /// The catalog entry's id (0 until stored).
    pub id: u64,
    /// A source, or a materialized view read back from its topic as an append-only source.
    pub kind: ObjectKind,
    pub name: String,
    pub topic: String,
    pub format: Format,
    /// The columns decoded from record values.
    pub payload: SchemaRef,
    pub defaults: Vec<Option<Default>>,
    pub includes: Vec<(Meta, String)>,
    /// Payload columns, then metadata columns.
    pub schema: SchemaRef,
    /// The definition as stored (inferred columns written out).
    pub create: CreateSource,
    /// An updating materialized view's key columns: its topic holds upserts by them and
    /// tombstones, and a scan keeps the last record per key (§8). `None`: append-only.
    pub upsert_key: Option<Vec<usize>>,
    /// `dedup.key` / `dedup.within`: what every pipeline reading the source drops.
    pub dedup: Option<SourceDedup>,
    /// A materialized view's query, from its catalog entry's SQL (`pg_get_viewdef`,
    /// `pg_matviews.definition`); `None` for sources and tables.
    pub definition: Option<String>,
}

impl SourceDef {
    /// Checks `create` (with its columns already declared or inferred); `defaults` holds the
    /// evaluated DEFAULT of each column that has one.
    pub fn define(
        create: CreateSource,
        defaults_by_name: &HashMap<String, Default>,
    ) -> Result<SourceDef, SqlError> {
        for key in create.options.keys() {
            if !OPTIONS.contains(&key.as_str()) {
                return Err(SqlError::Invalid(format!(
                    "unknown source option {key} (known: {})",
                    OPTIONS.join(", ")
                )));
            }
        }
        let topic = create
            .options
            .get("topic")
            .cloned()
            .ok_or_else(|| SqlError::Invalid("a source needs WITH (topic = '...')".into()))?;
        let format = format_of(&create.options)?;
        check_startup(&create.options)?;
        let mut fields = Vec::new();
        let mut defaults = Vec::new();
        for c in &create.columns {
            let data_type = types::arrow_type(&c.data_type).ok_or_else(|| {
                SqlError::unsupported(format!(
                    "column {}: type {} is not supported in sources",
                    c.name.value, c.data_type
                ))
            })?;
            let not_null = c
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull));
            let default = defaults_by_name.get(&c.name.value).cloned();
            for o in &c.options {
                if !matches!(
                    o.option,
                    ColumnOption::NotNull | ColumnOption::Null | ColumnOption::Default(_)
                ) {
                    return Err(SqlError::unsupported(format!(
                        "column {}: only NOT NULL and DEFAULT are supported on source columns",
                        c.name.value
                    )));
                }
            }
            fields.push(Field::new(c.name.value.clone(), data_type, !not_null));
            defaults.push(default);
        }
        if let Some((column, _)) = &create.watermark {
            let field = fields.iter().find(|f| f.name() == column).ok_or_else(|| {
                SqlError::Invalid(format!("WATERMARK FOR {column}: no such column"))
            })?;
            if !matches!(field.data_type(), DataType::Timestamp(..)) {
                return Err(SqlError::Invalid(format!(
                    "WATERMARK FOR {column}: the column must be a timestamp"
                )));
            }
        }
        let upsert_key = match &create.primary_key {
            Some(key) => Some(check_table(&create, key, &mut fields, format)?),
            None => None,
        };
        let payload = Arc::new(Schema::new(fields.clone()));
        // Checks the format against the columns now, not at the first read.
        let json_defaults: Vec<Option<serde_json::Value>> = defaults
            .iter()
            .map(|d| d.as_ref().map(|d| d.json.clone()))
            .collect();
        weir_format::RecordDecoder::new(format, payload.clone(), &json_defaults)?;
        for (meta, alias) in &create.includes {
            if fields.iter().any(|f| f.name() == alias) {
                return Err(SqlError::Invalid(format!(
                    "INCLUDE {}: column {alias} already exists",
                    meta.keyword()
                )));
            }
            // Nullable: an INSERT may leave them out (the broker assigns offsets and times).
            fields.push(Field::new(alias.clone(), meta_type(*meta), true));
        }
        let dedup = check_dedup(&create, &fields)?;
        Ok(SourceDef {
            id: 0,
            kind: if upsert_key.is_some() {
                ObjectKind::Table
            } else {
                ObjectKind::Source
            },
            name: create.name.clone(),
            topic,
            format,
            payload,
            defaults,
            includes: create.includes.clone(),
            schema: Arc::new(Schema::new(fields)),
            create,
            upsert_key,
            dedup,
            definition: None,
        })
    }

    /// The runtime's form of `dedup.key` / `dedup.within`: columns by index in the rows the
    /// source decodes (payload, then INCLUDE columns). Pipelines and ad-hoc scans both
    /// deduplicate through it, so they drop the same rows.
    pub(crate) fn dedup_spec(&self) -> Result<Option<weir_stream::graph::DedupSpec>, SqlError> {
        let Some(d) = &self.dedup else {
            return Ok(None);
        };
        let index = |c: &str| {
            self.schema.index_of(c).map_err(|_| {
                SqlError::Invalid(format!(
                    "source {}: no column {c} to deduplicate by",
                    self.name
                ))
            })
        };
        Ok(Some(weir_stream::graph::DedupSpec {
            key: d.key.iter().map(|c| index(c)).collect::<Result<_, _>>()?,
            time: index(&d.time)?,
            within_ms: d.within_ms,
        }))
    }

    /// The columns as the catalog and DESCRIBE show them.
    pub fn column_infos(&self) -> Vec<ColumnInfo> {
        let mut out: Vec<ColumnInfo> = self
            .create
            .columns
            .iter()
            .zip(self.payload.fields())
            .map(|(c, f)| ColumnInfo {
                name: f.name().clone(),
                sql_type: types::sql_name(f.data_type()),
                nullable: f.is_nullable(),
                default: default_expr(c).map(|e| e.to_string()),
                metadata: false,
            })
            .collect();
        for (meta, alias) in &self.includes {
            out.push(ColumnInfo {
                name: alias.clone(),
                sql_type: types::sql_name(&meta_type(*meta)),
                nullable: true,
                default: None,
                metadata: true,
            });
        }
        out
    }
}

/// The checked `dedup.key` / `dedup.within` of `create`, whose columns are `fields`.
fn check_dedup(create: &CreateSource, fields: &[Field]) -> Result<Option<SourceDedup>, SqlError> {
    let (key, within) = (
        create.options.get(DEDUP_KEY),
        create.options.get(DEDUP_WITHIN),
    );
    let name = &create.name;
    let (key, within) = match (key, within) {
        (None, None) => return Ok(None),
        (Some(k), Some(w)) => (k, w),
        _ => {
            return Err(SqlError::Invalid(format!(
                "source {name}: {DEDUP_KEY} and {DEDUP_WITHIN} go together (a key and how \
                 long, in event time, a repeat of it is a duplicate)"
            )))
        }
    };
    let Some((time, _)) = &create.watermark else {
        return Err(SqlError::Invalid(format!(
            "source {name}: {DEDUP_WITHIN} is measured in event time, so the source needs \
             WATERMARK FOR <time column> AS ... (its entries are freed by the watermark)"
        )));
    };
    let mut columns = Vec::new();
    for c in key.split(',').map(str::trim) {
        let field = fields.iter().find(|f| f.name() == c).ok_or_else(|| {
            SqlError::Invalid(format!(
                "source {name}: {DEDUP_KEY} names column {c:?}, which does not exist (a \
                 column name, or several separated by commas)"
            ))
        })?;
        if !weir_stream::source::dedup::key_type_supported(field.data_type()) {
            return Err(SqlError::unsupported(format!(
                "source {name}: {DEDUP_KEY} column {c} is {}: a key is made of integer, \
                 floating-point, decimal, boolean, text, bytes, date or timestamp columns",
                field.data_type()
            )));
        }
        if columns.iter().any(|k| k == c) {
            return Err(SqlError::Invalid(format!(
                "source {name}: {DEDUP_KEY} names {c} twice"
            )));
        }
        columns.push(c.to_string());
    }
    let bad =
        |why: &str| SqlError::Invalid(format!("source {name}: {DEDUP_WITHIN} = '{within}': {why}"));
    let within_ms = match crate::state_ttl::parse(within) {
        Ok(Some(ms)) => ms,
        Ok(None) => return Err(bad("the bound must be positive")),
        Err(_) if within.trim().starts_with('-') => return Err(bad("the bound must be positive")),
        Err(_) => {
            return Err(bad(
                "an interval of event time like '10 minutes', '30 s' or '500 ms'",
            ))
        }
    };
    Ok(Some(SourceDedup {
        key: columns,
        time: time.clone(),
        within_ms,
    }))
}

/// Options a table accepts: it is its whole changelog, so no startup mode.
const TABLE_OPTIONS: &[&str] = &["topic", "format", "dead_letter"];

/// Checks a table's definition and makes its key columns NOT NULL; the key's indices.
fn check_table(
    create: &CreateSource,
    key: &[String],
    fields: &mut [Field],
    format: Format,
) -> Result<Vec<usize>, SqlError> {
    let name = &create.name;
    if format != Format::Json {
        return Err(SqlError::unsupported(format!(
            "table {name}: format {} (a table's topic is a changelog of JSON objects: format \
             = 'json')",
            format.name()
        )));
    }
    if let Some(k) = create
        .options
        .keys()
        .find(|k| !TABLE_OPTIONS.contains(&k.as_str()))
    {
        return Err(SqlError::unsupported(format!(
            "table {name}: option {k} (a table accepts {})",
            TABLE_OPTIONS.join(", ")
        )));
    }
    if !create.includes.is_empty() || create.watermark.is_some() {
        return Err(SqlError::unsupported(format!(
            "table {name}: INCLUDE and WATERMARK are for sources (a table's rows are its \
             changelog's last value per key)"
        )));
    }
    for f in fields.iter() {
        if !weir_stream::state::codec::supports(f.data_type()) {
            return Err(SqlError::unsupported(format!(
                "table {name}: column {} is {}, which a continuous query's state cannot keep",
                f.name(),
                f.data_type()
            )));
        }
    }
    let mut indices = Vec::with_capacity(key.len());
    for k in key {
        let i = fields.iter().position(|f| f.name() == k).ok_or_else(|| {
            SqlError::Invalid(format!(
                "table {name}: PRIMARY KEY column {k} does not exist"
            ))
        })?;
        if indices.contains(&i) {
            return Err(SqlError::Invalid(format!(
                "table {name}: PRIMARY KEY names {k} twice"
            )));
        }
        if let Some(f) = fields.get_mut(i) {
            *f = f.clone().with_nullable(false);
        }
        indices.push(i);
    }
    Ok(indices)
}

pub fn default_expr(c: &ColumnDef) -> Option<&Expr> {
    c.options.iter().find_map(|o| match &o.option {
        ColumnOption::Default(e) => Some(e),
        _ => None,
    })
}

pub fn meta_type(meta: Meta) -> DataType {
    match meta {
        Meta::Key => DataType::Binary,
        Meta::Partition => DataType::Int32,
        Meta::Offset => DataType::Int64,
        Meta::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(types::UTC.into())),
        Meta::Headers => types::headers_type(),
    }
}

pub fn format_of(options: &BTreeMap<String, String>) -> Result<Format, SqlError> {
    let name = options.get("format").map(|f| f.to_lowercase());
    Ok(match name.as_deref() {
        None | Some("json") => Format::Json,
        Some("csv") => {
            let delimiter = match options.get("csv.delimiter").map(String::as_str) {
                None => b',',
                Some("\\t") => b'\t',
                Some(d) if d.len() == 1 => d.as_bytes()[0],
                Some(d) => {
                    return Err(SqlError::Invalid(format!(
                        "csv.delimiter {d:?}: one ASCII character expected"
                    )))
                }
            };
            Format::Csv { delimiter }
        }
        Some("bytes") => Format::Bytes,
        Some("text") => Format::Text,
        Some(other) => {
            return Err(SqlError::unsupported(format!(
                "format {other} (supported: json, csv, bytes, text)"
            )))
        }
    })
}

fn check_startup(options: &BTreeMap<String, String>) -> Result<(), SqlError> {
    match options
        .get("scan.startup.mode")
        .map(|m| m.to_lowercase())
        .as_deref()
    {
        None | Some("earliest") | Some("latest") => Ok(()),
        Some("timestamp") => match options.get("scan.startup.timestamp.millis") {
            Some(ms) if ms.parse::<i64>().is_ok() => Ok(()),
            _ => Err(SqlError::Invalid(
                "scan.startup.mode = 'timestamp' needs scan.startup.timestamp.millis".into(),
            )),
        },
        Some(other) => Err(SqlError::Invalid(format!(
            "scan.startup.mode {other:?}: earliest, latest or timestamp"
        ))),
    }
}
