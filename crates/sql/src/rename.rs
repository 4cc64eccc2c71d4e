//! `ALTER {SOURCE | TABLE | MATERIALIZED VIEW | VIEW | SINK} name RENAME TO new`
//! (RisingWave's): the catalog entry moves to the new name and every definition that reads
//! it is rewritten to read the new name, all in one catalog batch (on disk together, or
//! not at all). What runs does not change: pipelines read and write topics, not names.
//!
//! - A reader's `FROM old` becomes `FROM new AS old`, so its qualified columns (`old.c`)
//!   and its plan stay the same: its stream graph, fingerprint and state are unchanged.
//! - A source or table keeps its dead-letter topic: one that named none (the default,
//!   `<old>.dlq`) has it written out.
//! - A materialized view keeps its state and **its topic** (created under its old name),
//!   as RisingWave keeps a renamed view's internal table: Kafka clients and sinks reading
//!   that topic go on working, and DESCRIBE shows the topic. Renaming the topic would mean
//!   copying the view's contents under a transaction and breaking every outside reader.
//! - Refused: a name taken (42P07), a missing object (42P01), a kind that is not the
//!   object's (42809).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, ObjectName, ObjectNamePart, Query, TableAlias, TableFactor,
    VisitMut, VisitorMut,
};

use crate::catalog::Entry;
use crate::drop_object::check_kind;
use crate::engine::{Engine, Output};
use crate::error::SqlError;
use crate::parser::{normalize, quote_ident, Rename, SinkInput, WeirStatement};
use crate::pipelines::{view_def, view_definition_of, SINK, VIEW};
use crate::views::{ident, relation_name, CteScopes, ViewDef, PLAIN_VIEW};

impl Engine {
    pub(crate) async fn rename(self: &Arc<Self>, r: Rename) -> Result<Output, SqlError> {
        let tag = format!("ALTER {}", r.kind.sql_name());
        let (old, new) = (r.name, r.new_name);
        let _change = self.catalog.begin_change().await;
        let entry = self
            .catalog
            .get(&old)
            .ok_or_else(|| SqlError::UnknownRelation(old.clone()))?;
        check_kind(&old, &entry, r.kind)?;
        if new == old {
            return Ok(Output::Command(tag));
        }
        if self.catalog.get(&new).is_some() {
            return Err(SqlError::Exists(new));
        }
        // (1) Every new definition, checked before anything is written.
        let mut renamed = entry.clone();
        let definition = rewrite_statement(&entry.sql, &old, &new, true)?;
        renamed.sql = statement_sql(&definition)?;
        if entry.kind == VIEW && !renamed.options.contains_key("topic") {
            renamed.options.insert("topic".into(), old.clone());
        }
        let mut changes = vec![(new.clone(), Some(renamed.clone())), (old.clone(), None)];
        let mut readers: Vec<(String, Entry)> = Vec::new();
        for (name, mut e) in self.catalog.list() {
            if name == old || !e.depends_on.contains(&old) {
                continue;
            }
            e.sql = statement_sql(&rewrite_statement(&e.sql, &old, &new, false)?)?;
            for d in &mut e.depends_on {
                if *d == old {
                    d.clone_from(&new);
                }
            }
            changes.push((name.clone(), Some(e.clone())));
            readers.push((name, e));
        }
        // (2) On disk, in one batch.
        self.catalog.apply(changes).await?;
        // (3) In memory: the definitions statements plan with.
        self.rename_in_memory(&old, &new, &renamed, definition)
            .await?;
        for (name, e) in &readers {
            if e.kind == PLAIN_VIEW {
                let def = ViewDef::restore(name, e)?;
                self.views_mut().insert(name.clone(), Arc::new(def));
            } else if e.kind == VIEW {
                // Its query now reads the new name (`FROM new AS old`), as SHOW CREATE shows.
                let mut sources = self.sources_mut();
                if let Some(v) = sources.get(name) {
                    let mut def = (**v).clone();
                    def.definition = view_definition_of(&e.sql);
                    sources.insert(name.clone(), Arc::new(def));
                }
            }
        }
        tracing::info!(%old, %new, kind = %entry.kind, readers = readers.len(), "renamed");
        Ok(Output::Command(tag))
    }

    /// The renamed object in memory; `definition` is its renamed statement (`entry.sql`
    /// parsed), so a source is defined again without parsing its SQL twice.
    async fn rename_in_memory(
        &self,
        old: &str,
        new: &str,
        entry: &Entry,
        definition: WeirStatement,
    ) -> Result<(), SqlError> {
        match entry.kind.as_str() {
            PLAIN_VIEW => {
                self.views_mut().remove(old);
                let def = ViewDef::restore(new, entry)?;
                self.views_mut().insert(new.to_string(), Arc::new(def));
            }
            VIEW | SINK => {
                self.pipelines.rename(old, new);
                let view = self.sources_mut().remove(old);
                if let Some(v) = view {
                    let mut def = view_def(new, &v.topic, v.schema.clone())?;
                    def.id = v.id;
                    def.upsert_key.clone_from(&v.upsert_key);
                    def.definition = view_definition_of(&entry.sql);
                    self.sources_mut().insert(new.to_string(), Arc::new(def));
                }
            }
            _ => {
                self.sources_mut().remove(old);
                let WeirStatement::CreateSource(create) = definition else {
                    return Err(SqlError::Invalid(format!(
                        "not a CREATE SOURCE or TABLE: {}",
                        entry.sql
                    )));
                };
                let mut def = self.define(*create).await?;
                def.id = entry.id;
                self.sources_mut().insert(new.to_string(), Arc::new(def));
            }
        }
        Ok(())
    }
}

/// `sql` (a stored CREATE) with `old` renamed to `new`: the object's own name when `own`,
/// else every read of `old` in its query (and a sink's `FROM old`).
fn rewrite_statement(
    sql: &str,
    old: &str,
    new: &str,
    own: bool,
) -> Result<WeirStatement, SqlError> {
    let mut statement = crate::parser::parse(sql)?
        .pop()
        .ok_or_else(|| SqlError::Invalid(format!("an empty definition: {sql}")))?;
    match &mut statement {
        WeirStatement::CreateSource(c) => {
            if own {
                c.options
                    .entry("dead_letter".into())
                    .or_insert_with(|| format!("{old}.dlq"));
                c.name = new.to_string();
            }
        }
        WeirStatement::CreateView(v) => {
            if own {
                v.name = new.to_string();
            } else {
                rename_reads(&mut v.query, old, new)?;
            }
        }
        WeirStatement::CreatePlainView(v) => {
            if own {
                v.name = new.to_string();
            } else {
                rename_reads(&mut v.query, old, new)?;
            }
        }
        WeirStatement::CreateSink(k) => {
            if own {
                k.name = new.to_string();
            } else {
                match &mut k.input {
                    SinkInput::From(v) if v == old => *v = new.to_string(),
                    SinkInput::From(_) => {}
                    SinkInput::Query(q) => rename_reads(q, old, new)?,
                }
            }
        }
        _ => return Err(SqlError::Invalid(format!("not a definition: {sql}"))),
    }
    Ok(statement)
}

/// The SQL the catalog stores for a definition.
fn statement_sql(statement: &WeirStatement) -> Result<String, SqlError> {
    Ok(match statement {
        WeirStatement::CreateSource(c) => c.to_string(),
        WeirStatement::CreateView(v) => v.to_string(),
        WeirStatement::CreatePlainView(v) => v.to_string(),
        WeirStatement::CreateSink(k) => k.to_string(),
        other => return Err(SqlError::Invalid(format!("not a definition: {other:?}"))),
    })
}

#[cfg(test)]
fn rewrite_sql(sql: &str, old: &str, new: &str, own: bool) -> Result<String, SqlError> {
    statement_sql(&rewrite_statement(sql, old, new, own)?)
}

/// Every `FROM old [AS a]` of `query` read as `FROM new AS old` (or `AS a`), and the
/// relation argument of `TUMBLE`, `HOP` and `SESSION`.
pub(crate) fn rename_reads(query: &mut Query, old: &str, new: &str) -> Result<(), SqlError> {
    let mut renamer = Renamer {
        old,
        new,
        ctes: CteScopes::default(),
    };
    match query.visit(&mut renamer) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Renamer<'a> {
    old: &'a str,
    new: &'a str,
    /// WITH queries in scope: inside them a CTE named `old` is not the object.
    ctes: CteScopes,
}

impl Renamer<'_> {
    fn alias(&self) -> TableAlias {
        TableAlias {
            explicit: true,
            name: ident(self.old),
            columns: Vec::new(),
            at: None,
        }
    }
}

impl VisitorMut for Renamer<'_> {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        self.ctes.enter(query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<SqlError> {
        self.ctes.leave();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        if self.ctes.hides(self.old) {
            return ControlFlow::Continue(());
        }
        let TableFactor::Table {
            name, alias, args, ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        match args {
            None => {
                if relation_name(name).as_deref() == Some(self.old) {
                    *name = ObjectName(vec![ObjectNamePart::Identifier(ident(self.new))]);
                    if alias.is_none() {
                        *alias = Some(self.alias());
                    }
                }
            }
            Some(args) => {
                let function = name.to_string().to_lowercase();
                if !matches!(function.as_str(), "tumble" | "hop" | "session") {
                    return ControlFlow::Continue(());
                }
                let first = args.args.first_mut().and_then(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                    _ => None,
                });
                let Some(e) = first else {
                    return ControlFlow::Continue(());
                };
                let reads_old = match &*e {
                    Expr::Identifier(i) => normalize(i) == self.old,
                    Expr::CompoundIdentifier(parts) => {
                        parts.last().is_some_and(|i| normalize(i) == self.old)
                    }
                    _ => false,
                };
                if reads_old {
                    *e = Expr::Identifier(ident(self.new));
                    if alias.is_none() {
                        *alias = Some(self.alias());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// DESCRIBE's note on a materialized view whose topic is not its name (renamed since).
pub(crate) fn topic_note(name: &str, topic: &str) -> Option<(String, String)> {
    (name != topic).then(|| {
        (
            "topic note".to_string(),
            format!(
                "kept from CREATE: the view was renamed to {}; its topic keeps its name",
                quote_ident(name)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed(sql: &str) -> String {
        let mut q = crate::parser::parse_query(sql).expect(sql);
        rename_reads(&mut q, "orders", "purchases").expect("rename");
        q.to_string()
    }

    #[test]
    fn reads_of_the_old_name_read_the_new_one_under_the_old_alias() {
        assert_eq!(
            renamed("SELECT orders.id FROM orders WHERE orders.x > 1"),
            "SELECT orders.id FROM purchases AS orders WHERE orders.x > 1"
        );
        assert_eq!(
            renamed("SELECT o.id FROM public.orders AS o JOIN other ON o.id = other.id"),
            "SELECT o.id FROM purchases AS o JOIN other ON o.id = other.id"
        );
        assert_eq!(
            renamed("SELECT * FROM t WHERE id IN (SELECT id FROM orders)"),
            "SELECT * FROM t WHERE id IN (SELECT id FROM purchases AS orders)"
        );
        assert_eq!(
            renamed("SELECT * FROM TUMBLE(orders, ts, INTERVAL '1' MINUTE)"),
            "SELECT * FROM TUMBLE(purchases, ts, INTERVAL '1' MINUTE) AS orders"
        );
        // Not the object: another name, a CTE of its name.
        assert_eq!(renamed("SELECT * FROM orders_2"), "SELECT * FROM orders_2");
        assert_eq!(
            renamed("WITH orders AS (SELECT 1) SELECT * FROM orders"),
            "WITH orders AS (SELECT 1) SELECT * FROM orders"
        );
    }

    /// A CTE hides the object only inside the query that defines it: a later branch, or the
    /// outer query of a subquery with such a CTE, still reads the object (regression: the
    /// CTE names were kept for the rest of the statement).
    #[test]
    fn a_cte_of_the_old_name_hides_it_only_in_its_own_query() {
        assert_eq!(
            renamed(
                "SELECT id FROM (WITH orders AS (SELECT 1 AS id) SELECT id FROM orders) AS a \
                 UNION ALL SELECT id FROM orders"
            ),
            "SELECT id FROM (WITH orders AS (SELECT 1 AS id) SELECT id FROM orders) AS a \
             UNION ALL SELECT id FROM purchases AS orders"
        );
        assert_eq!(
            renamed(
                "SELECT * FROM t WHERE id IN (WITH orders AS (SELECT 2 AS id) SELECT id FROM \
                 orders) AND id IN (SELECT id FROM orders)"
            ),
            "SELECT * FROM t WHERE id IN (WITH orders AS (SELECT 2 AS id) SELECT id FROM \
             orders) AND id IN (SELECT id FROM purchases AS orders)"
        );
    }

    #[test]
    fn a_renamed_definition_names_itself_anew() {
        let sql = rewrite_sql(
            "CREATE SOURCE orders (id BIGINT) WITH (topic = 't')",
            "orders",
            "purchases",
            true,
        )
        .expect("source");
        assert_eq!(
            sql,
            "CREATE SOURCE purchases (id BIGINT) WITH (dead_letter = 'orders.dlq', topic = 't')"
        );
        let sql = rewrite_sql(
            "CREATE SINK k WITH (topic = 'out') FROM orders",
            "orders",
            "purchases",
            false,
        )
        .expect("sink");
        assert_eq!(sql, "CREATE SINK k WITH (topic = 'out') FROM purchases");
    }
}
