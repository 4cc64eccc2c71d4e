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
//! - [`rewrite`]: client syntax (`OPERATOR(pg_catalog.~)`, `COLLATE`, casts to OID types,
//!   correlated subqueries of psql) rewritten before planning.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::source::SourceDef;
use crate::views::Views;

mod builtin_types;
mod functions;
mod rewrite;
mod tables;

pub use functions::register;
pub use rewrite::rewrite;

type Sources = Arc<RwLock<BTreeMap<String, Arc<SourceDef>>>>;

/// A relation as `pg_class` and `pg_attribute` show it: sources, tables and materialized
/// views (`r`, their topics hold rows), views (`v`).
pub(crate) struct Relation {
    pub(crate) oid: i64,
    pub(crate) name: String,
    pub(crate) relkind: &'static str,
    pub(crate) schema: datafusion::arrow::datatypes::SchemaRef,
    /// Per column, whether it has a DEFAULT.
    pub(crate) defaults: Vec<bool>,
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
