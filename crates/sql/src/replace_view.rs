//! `CREATE OR REPLACE VIEW name AS query` (PostgreSQL's): the view's stored query changes;
//! everything that inlines it at planning time sees the new one.
//!
//! - As PostgreSQL: the new query keeps the existing columns' names and types in order and
//!   may add columns at the end (else 42P16); a view that would read itself is refused
//!   (42P17); the name of another kind of object is refused (42809).
//! - Views reading it (directly or through others) are planned again with the new query,
//!   their columns and what they read stored anew, all in one catalog batch with the view:
//!   a reader that no longer plans (a column list longer than the new columns allow)
//!   refuses the replacement. Unlike PostgreSQL, which freezes a reader's `SELECT *` at its
//!   CREATE, a reader's `*` takes the added columns: Weir stores a view as its SQL.
//! - Materialized views and sinks built on it (directly or through other views) refuse the
//!   replacement (2BP01), as RisingWave does: their running plans inlined the old query,
//!   and their state and output were computed by it. Rebinding them silently would leave
//!   `SHOW CREATE` naming a query they do not run; re-planning them would mean dropping
//!   their state and rewriting their output. The error names them: DROP them (or DROP
//!   VIEW .. CASCADE) and create them again over the new view.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::Statement;

use crate::catalog::Entry;
use crate::drop_object::{check_kind, kind_name};
use crate::engine::{Engine, Output};
use crate::error::SqlError;
use crate::parser::{CreatePlainView, ObjectKind};
use crate::views::{prepare, ViewDef, PLAIN_VIEW};

impl Engine {
    /// Replaces the view `existing` by `v` (the catalog's change lock held by the caller).
    pub(crate) async fn replace_plain_view(
        self: &Arc<Self>,
        v: CreatePlainView,
        existing: Entry,
    ) -> Result<Output, SqlError> {
        check_kind(&v.name, &existing, ObjectKind::View)?;
        let old = ViewDef::restore(&v.name, &existing)?;
        // (1) Pipelines built on it refuse the replacement.
        let readers = self.cascade_order(&v.name);
        let built: Vec<String> = readers
            .iter()
            .filter_map(|r| self.catalog.get(r).map(|e| (r, e)))
            .filter(|(_, e)| e.kind != PLAIN_VIEW)
            .map(|(r, e)| format!("{} {r}", kind_name(&e.kind)))
            .collect();
        if !built.is_empty() {
            return Err(SqlError::Dependents(format!(
                "cannot replace view {name}: {} {} built on its current query (their running \
                 plans and state come from it); DROP them, or DROP VIEW {name} CASCADE, then \
                 create them again over the new view",
                built.join(", "),
                if built.len() == 1 { "is" } else { "are" },
                name = v.name,
            )));
        }
        // (2) A query reading the view itself, directly or through other views.
        let mut views = self.views_read().clone();
        let mut probe = Statement::Query(v.query.clone());
        if prepare(&mut probe, &views, false)?.contains(&v.name) {
            return Err(SqlError::InvalidDefinition {
                message: format!("view {} would read itself", v.name),
                recursive: true,
            });
        }
        // (3) The new query, its columns checked against the old ones.
        let mut def = ViewDef {
            id: old.id,
            name: v.name.clone(),
            declared: v.columns.clone(),
            query: (*v.query).clone(),
            schema: old.schema.clone(),
        };
        views.insert(def.name.clone(), Arc::new(def.clone()));
        let depends_on = self.plan_view(&mut def, &views).await?;
        check_columns(&def.name, &old, &def)?;
        let mut entry = existing.clone();
        entry.sql = def.create_sql();
        entry.columns = def.column_infos();
        entry.depends_on = depends_on;
        let def = Arc::new(def);
        views.insert(def.name.clone(), def.clone());
        let mut changes = vec![(def.name.clone(), Some(entry))];
        let mut replanned = vec![def];
        // (4) Readers planned again, each after what it reads.
        for reader in readers.iter().rev() {
            let (Some(e), Some(view)) = (self.catalog.get(reader), views.get(reader).cloned())
            else {
                continue;
            };
            let mut def = (*view).clone();
            let depends_on = self.plan_view(&mut def, &views).await.map_err(|err| {
                SqlError::InvalidDefinition {
                    message: format!(
                        "cannot replace view {}: view {reader}, which reads it, would not \
                         plan: {err}",
                        v.name
                    ),
                    recursive: false,
                }
            })?;
            let mut e = e;
            e.columns = def.column_infos();
            e.depends_on = depends_on;
            let def = Arc::new(def);
            views.insert(reader.clone(), def.clone());
            changes.push((reader.clone(), Some(e)));
            replanned.push(def);
        }
        // (5) On disk in one batch, then in memory.
        self.catalog.apply(changes).await?;
        let mut in_memory = self.views_mut();
        for def in replanned {
            in_memory.insert(def.name.clone(), def);
        }
        tracing::info!(name = %v.name, readers = readers.len(), "view replaced");
        Ok(Output::Command("CREATE VIEW".into()))
    }
}

/// PostgreSQL's rule: the old columns, in order, with their names and types; new columns
/// only at the end.
fn check_columns(name: &str, old: &ViewDef, new: &ViewDef) -> Result<(), SqlError> {
    let invalid = |message: String| SqlError::InvalidDefinition {
        message,
        recursive: false,
    };
    let (old, new) = (old.schema.fields(), new.schema.fields());
    if new.len() < old.len() {
        return Err(invalid(format!(
            "cannot drop columns from view {name} (it has {}, the new query {}): a replaced \
             view keeps its columns and may add new ones at the end",
            old.len(),
            new.len()
        )));
    }
    for (o, n) in old.iter().zip(new.iter()) {
        if o.name() != n.name() {
            return Err(invalid(format!(
                "cannot change name of view column \"{}\" to \"{}\" (view {name}; use ALTER \
                 .. RENAME, or new columns at the end)",
                o.name(),
                n.name()
            )));
        }
        // By SQL type: the old columns may have been read back from the catalog.
        let (ot, nt) = (
            crate::types::sql_name(o.data_type()),
            crate::types::sql_name(n.data_type()),
        );
        if ot != nt {
            return Err(invalid(format!(
                "cannot change data type of view column \"{}\" from {ot} to {nt} (view {name})",
                o.name()
            )));
        }
    }
    Ok(())
}
