//! `SHOW CREATE [MATERIALIZED VIEW | VIEW | SINK | SOURCE | TABLE] name` (as RisingWave's `SHOW
//! CREATE MATERIALIZED VIEW`): the statement that re-creates the object, as the catalog
//! stores it (inferred columns written out, `IF NOT EXISTS` dropped), one row of `name` and
//! `create_sql`.

use crate::engine::{text_rows, Engine, Output};
use crate::error::SqlError;
use crate::parser::ObjectKind;

/// The columns of `SHOW CREATE`.
pub const COLUMNS: [&str; 2] = ["name", "create_sql"];

impl Engine {
    pub(crate) fn show_create(
        &self,
        kind: Option<ObjectKind>,
        name: &str,
    ) -> Result<Output, SqlError> {
        let entry = self
            .catalog_entry(name)
            .ok_or_else(|| SqlError::UnknownRelation(name.to_string()))?;
        if let Some(kind) = kind {
            let stored = crate::drop_object::object_kind(&entry.kind);
            if stored != kind {
                return Err(SqlError::WrongObjectType(format!(
                    "{name} is a {}, not a {}",
                    stored.sql_name().to_lowercase(),
                    kind.sql_name().to_lowercase()
                )));
            }
        }
        Ok(text_rows(
            &COLUMNS,
            vec![vec![name.to_string()], vec![entry.sql]],
        ))
    }
}
