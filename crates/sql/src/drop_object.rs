//! `DROP {SOURCE | TABLE | MATERIALIZED VIEW | VIEW | SINK} [IF EXISTS] name [CASCADE |
//! RESTRICT]`.
//! Without CASCADE an object that others read is refused, naming them; with it, every object
//! that reads it, directly or through others, is dropped first (readers before what they
//! read), each as its own DROP would: a pipeline stopped before its catalog entry goes, its
//! state topic and a view's topic deleted, never the user topics of sources and sinks.

use crate::catalog::Entry;
use crate::engine::{Engine, Output};
use crate::error::SqlError;
use crate::parser::ObjectKind;
use crate::pipelines::{SINK, VIEW};
use crate::views::PLAIN_VIEW;

/// What a user calls a catalog kind.
pub(crate) fn kind_name(kind: &str) -> &str {
    match kind {
        VIEW => "materialized view",
        PLAIN_VIEW => "view",
        other => other,
    }
}

/// The statement kind of a catalog kind.
pub(crate) fn object_kind(kind: &str) -> ObjectKind {
    match kind {
        "table" => ObjectKind::Table,
        VIEW => ObjectKind::MaterializedView,
        SINK => ObjectKind::Sink,
        PLAIN_VIEW => ObjectKind::View,
        _ => ObjectKind::Source,
    }
}

/// Refuses a statement naming `name` as a `kind` it is not (`DROP VIEW` of a table, `ALTER
/// SINK` of a source): 42809, as PostgreSQL.
pub(crate) fn check_kind(name: &str, entry: &Entry, kind: ObjectKind) -> Result<(), SqlError> {
    if object_kind(&entry.kind) == kind {
        return Ok(());
    }
    Err(SqlError::WrongObjectType(format!(
        "{name} is a {}, not a {}",
        kind_name(&entry.kind),
        kind.sql_name().to_lowercase()
    )))
}

impl Engine {
    pub(crate) async fn drop_object(
        &self,
        kind: ObjectKind,
        if_exists: bool,
        name: String,
        cascade: bool,
    ) -> Result<Output, SqlError> {
        let tag = format!("DROP {}", kind.sql_name());
        let _change = self.catalog.begin_change().await;
        let Some(entry) = self.catalog.get(&name) else {
            if if_exists {
                return Ok(Output::Command(tag));
            }
            return Err(SqlError::UnknownRelation(name));
        };
        check_kind(&name, &entry, kind)?;
        let dependents = self.dependents(&name);
        if !dependents.is_empty() && !cascade {
            return Err(SqlError::Invalid(format!(
                "cannot drop {name}: {} read from it (drop them first, or DROP {} {name} \
                 CASCADE)",
                dependents.join(", "),
                kind.sql_name()
            )));
        }
        // Readers first: the deepest dependents, then theirs, up to `name` itself.
        for dependent in self.cascade_order(&name) {
            if let Some(e) = self.catalog.get(&dependent) {
                tracing::info!(name = %dependent, of = %name, "dropping a dependent (CASCADE)");
                self.drop_one(&dependent, &e).await?;
            }
        }
        self.drop_one(&name, &entry).await?;
        Ok(Output::Command(tag))
    }

    /// The objects whose definitions read `name`.
    pub(crate) fn dependents(&self, name: &str) -> Vec<String> {
        self.catalog
            .list()
            .into_iter()
            .filter(|(_, e)| e.depends_on.iter().any(|d| d == name))
            .map(|(n, _)| n)
            .collect()
    }

    /// Every object reading `name` directly or through others, each after all that read it.
    pub(crate) fn cascade_order(&self, name: &str) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        let mut visit = vec![(name.to_string(), false)];
        // Depth-first, post-order: an object is listed once all its readers are.
        while let Some((n, expanded)) = visit.pop() {
            if expanded {
                if n != name && !order.contains(&n) {
                    order.push(n);
                }
                continue;
            }
            visit.push((n.clone(), true));
            for d in self.dependents(&n) {
                if !order.contains(&d) {
                    visit.push((d, false));
                }
            }
        }
        order
    }

    async fn drop_one(&self, name: &str, entry: &Entry) -> Result<(), SqlError> {
        if entry.kind == PLAIN_VIEW {
            self.catalog.remove(name).await?;
            self.views_mut().remove(name);
            tracing::info!(view = %name, "view dropped");
            Ok(())
        } else if entry.kind == "source" || entry.kind == "table" {
            self.catalog.remove(name).await?;
            self.sources_mut().remove(name);
            tracing::info!(source = %name, "source dropped");
            Ok(())
        } else {
            self.drop_pipeline(name, entry).await
        }
    }
}
