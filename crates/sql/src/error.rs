//! Errors of a statement, each with the SQLSTATE a PostgreSQL client expects.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("relation \"{0}\" does not exist")]
    UnknownRelation(String),
    #[error("relation \"{0}\" already exists")]
    Exists(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    /// A statement applied to the wrong kind of object (TRUNCATE of a source, DELETE from
    /// a view, ALTER SINK of a table).
    #[error("{0}")]
    WrongObjectType(String),
    /// A definition that cannot be (`CREATE OR REPLACE VIEW` dropping or changing a
    /// column, or reading itself): 42P16, or 42P17 for recursion, as PostgreSQL.
    #[error("{message}")]
    InvalidDefinition { message: String, recursive: bool },
    /// Objects built on the one a statement would change (`CREATE OR REPLACE VIEW` under
    /// a running materialized view): 2BP01, as PostgreSQL's DROP without CASCADE.
    #[error("{0}")]
    Dependents(String),
    #[error("{0}")]
    Plan(#[source] DataFusionError),
    #[error("catalog: {0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
    #[error(transparent)]
    Format(#[from] weir_format::FormatError),
}

impl SqlError {
    /// The SQLSTATE of the error (PostgreSQL's appendix A codes).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SqlError::Syntax(_) => "42601",
            SqlError::UnknownRelation(_) => "42P01",
            SqlError::Exists(_) => "42P07",
            SqlError::Unsupported(_) => "0A000",
            SqlError::Invalid(_) => "22023",
            SqlError::WrongObjectType(_) => "42809",
            SqlError::InvalidDefinition {
                recursive: false, ..
            } => "42P16",
            SqlError::InvalidDefinition {
                recursive: true, ..
            } => "42P17",
            SqlError::Dependents(_) => "2BP01",
            SqlError::Plan(e) => datafusion_sqlstate(e),
            SqlError::Format(_) => "22023",
            SqlError::Catalog(_) | SqlError::Topic { .. } => "XX000",
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> SqlError {
        SqlError::Unsupported(what.into())
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    match e.find_root() {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::SchemaError(..) => "42703",
        DataFusionError::Plan(m) if m.contains("table") && m.contains("not found") => "42P01",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ArrowError(..) | DataFusionError::Execution(_) => "22000",
        _ => "XX000",
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> SqlError {
        if let DataFusionError::SQL(p, _) = e.find_root() {
            return SqlError::Syntax(parser_message(p));
        }
        if let DataFusionError::Plan(m) = e.find_root() {
            if let Some(name) = m.strip_prefix("table '").and_then(|r| r.split('\'').next()) {
                if m.ends_with("not found") {
                    let short = name.rsplit('.').next().unwrap_or(name);
                    return SqlError::UnknownRelation(short.to_string());
                }
            }
        }
        SqlError::Plan(e)
    }
}

impl From<ParserError> for SqlError {
    fn from(e: ParserError) -> SqlError {
        SqlError::Syntax(parser_message(&e))
    }
}

fn parser_message(e: &ParserError) -> String {
    match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "statement nested too deeply".to_string(),
    }
}
