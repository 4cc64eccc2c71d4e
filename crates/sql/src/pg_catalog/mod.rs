//! What PostgreSQL clients ask a server besides SQL over their data: server parameters,
//! session settings (`SHOW`), the `pg_catalog` tables psql's `\d` and drivers read (generated
//! from the Weir catalog at each query), the functions they call, and a rewrite of
//! PostgreSQL-only syntax into what DataFusion plans. The queries it is tested with are in
//! `tests/catalog_queries/`.
//!
//! - this file: the relations of the Weir catalog as PostgreSQL shows them, settings;
//! - [`functions`]: the functions clients call (`version()`, `format_type`, `::regclass`);
//! - [`tables`]: the `pg_catalog` schema, each table built from [`relations`] per query;
//! - [`builtin_types`]: the built-in types `pg_type` lists and `format_type` names;
//! - [`empty`]: client queries over catalogs Weir keeps empty (policies, statistics
//!   objects, publications, triggers) answered with no rows without planning them;
//! - [`rewrite`]: client syntax (`OPERATOR(pg_catalog.~)`, `COLLATE`, casts to OID types,
//!   correlated subqueries of psql) rewritten before planning.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::parser::ObjectKind;
use crate::source::SourceDef;
use crate::views::Views;

mod builtin_types;
mod empty;
mod functions;
mod rewrite;
mod tables;

pub use functions::register;
pub use rewrite::rewrite;

type Sources = Arc<RwLock<BTreeMap<String, Arc<SourceDef>>>>;

/// A relation as `pg_class` and `pg_attribute` show it: sources and tables (`r`: psql's
/// `\dt`), materialized views (`m`: `\dm`), views (`v`: `\dv`). Sinks are no relations:
/// nothing reads them by name.
pub(crate) struct Relation {
    pub(crate) oid: i64,
    pub(crate) name: String,
    pub(crate) relkind: &'static str,
    pub(crate) schema: datafusion::arrow::datatypes::SchemaRef,
    /// Per column, its DEFAULT as SQL (`pg_attrdef`).
    pub(crate) defaults: Vec<Option<String>>,
    /// A view's or materialized view's query (`pg_get_viewdef`, `pg_views`, `pg_matviews`).
    pub(crate) definition: Option<String>,
}

/// Every relation of the Weir catalog, by name.
pub(crate) fn relations(sources: &Sources, views: &Views) -> Vec<Relation> {
    let mut out: Vec<Relation> = sources
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|d| Relation {
            oid: relation_oid(d.id),
            name: d.name.clone(),
            relkind: match d.kind {
                ObjectKind::MaterializedView => "m",
                _ => "r",
            },
            schema: d.schema.clone(),
            defaults: d.column_infos().into_iter().map(|c| c.default).collect(),
            definition: d.definition.clone(),
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
                definition: Some(v.query.to_string()),
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

pub(crate) const PG_CATALOG_OID: i64 = 11;
pub(crate) const PUBLIC_OID: i64 = 2200;
pub(crate) const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// Relation OIDs: PostgreSQL's first user OID plus the catalog entry's id.
const FIRST_USER_OID: i64 = 16_384;
pub(crate) const OWNER_OID: i64 = 10;

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

pub(crate) fn relation_oid(id: u64) -> i64 {
    FIRST_USER_OID + id as i64
}
