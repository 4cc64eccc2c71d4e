//! Views that are not materialized (`CREATE VIEW name [(cols)] AS query`, PostgreSQL's and
//! RisingWave's): a named query stored in the catalog (kind [`PLAIN_VIEW`], its SQL and
//! its columns) and **inlined** into every statement that reads it, before DataFusion plans
//! the statement: `FROM v [AS a]` becomes `FROM (query) AS v(cols)`, so an ad-hoc SELECT,
//! a materialized view, a sink or another view reading `v` plans exactly the query it
//! names (nested views expand recursively). Nothing runs and nothing is written while a
//! view is only defined; what reads it depends on it (DROP refuses, or CASCADE drops the
//! readers), and a materialized view or sink over it runs the inlined query as its own.
//! At start each is restored from its stored SQL and columns without planning.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{
    FromTable, Ident, ObjectName, Query, Statement, TableAlias, TableAliasColumnDef, TableFactor,
    TableObject, VisitMut, VisitorMut,
};

use crate::catalog::{ColumnInfo, Entry};
use crate::engine::{column, text_rows, Engine, Output};
use crate::error::SqlError;
use crate::parser::{normalize, CreatePlainView, WeirStatement};
use crate::types;

/// The catalog kind of a view that is not materialized (`view` is a materialized one's).
pub const PLAIN_VIEW: &str = "plain_view";
/// The columns of `SHOW VIEWS`.
pub const SHOW_COLUMNS: [&str; 2] = ["name", "definition"];
/// How deep views may read views: a guard, since the catalog only lets a view read what
/// exists before it, so definitions cannot form a cycle.
const MAX_DEPTH: usize = 32;

/// A stored view: what a reference expands to, and its columns for DESCRIBE and psql.
#[derive(Debug, Clone)]
pub struct ViewDef {
    /// The catalog entry's id (names its relation OID in `pg_class`).
    pub id: u64,
    pub name: String,
    /// The column names given at CREATE (empty: the query's own names).
    pub declared: Vec<String>,
    pub query: Query,
    /// The columns as planned at CREATE.
    pub schema: SchemaRef,
}

/// Views by name, shared by the engine and every session's `pg_catalog`.
pub type Views = Arc<RwLock<BTreeMap<String, Arc<ViewDef>>>>;

impl ViewDef {
    /// The definition stored in `entry` (its SQL and columns).
    pub fn restore(name: &str, entry: &Entry) -> Result<ViewDef, SqlError> {
        let Some(WeirStatement::CreatePlainView(v)) = crate::parser::parse(&entry.sql)?.pop()
        else {
            return Err(SqlError::Invalid(format!(
                "not a CREATE VIEW: {}",
                entry.sql
            )));
        };
        Ok(ViewDef {
            id: entry.id,
            name: name.to_string(),
            declared: v.columns,
            query: *v.query,
            schema: schema_of(&entry.columns),
        })
    }

    pub fn column_infos(&self) -> Vec<ColumnInfo> {
        self.schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                sql_type: types::sql_name(f.data_type()),
                nullable: f.is_nullable(),
                default: None,
                metadata: false,
            })
            .collect()
    }

    /// The SQL that re-creates the view.
    pub fn create_sql(&self) -> String {
        CreatePlainView {
            name: self.name.clone(),
            if_not_exists: false,
            or_replace: false,
            columns: self.declared.clone(),
            query: Box::new(self.query.clone()),
        }
        .to_string()
    }
}

/// Arrow columns from the catalog's column records (types Weir wrote itself; a type that
/// does not parse back shows as text).
fn schema_of(columns: &[ColumnInfo]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let data_type = column(&c.name, &c.sql_type)
                .ok()
                .and_then(|d| types::arrow_type(&d.data_type))
                .unwrap_or(DataType::Utf8);
            Field::new(&c.name, data_type, c.nullable)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Expands every view `statement` reads into its query (recursively), then the window
/// table functions (`streaming` for a continuous query), then the views those named: a
/// `TUMBLE(v, ..)` over a view reads the view's query. Returns the views expanded.
pub fn prepare(
    statement: &mut Statement,
    views: &BTreeMap<String, Arc<ViewDef>>,
    streaming: bool,
) -> Result<BTreeSet<String>, SqlError> {
    let mut used = inline(statement, views)?;
    crate::plan::window_tvf::rewrite(statement, streaming)?;
    used.extend(inline(statement, views)?);
    Ok(used)
}

/// Refuses an INSERT, UPDATE or DELETE whose target is a view: a view has no rows of its
/// own to change (PostgreSQL's views that are not updatable say the same).
pub fn check_dml_target(
    statement: &Statement,
    views: &BTreeMap<String, Arc<ViewDef>>,
) -> Result<(), SqlError> {
    let target = match statement {
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(n) => Some(("INSERT INTO", n)),
            _ => None,
        },
        Statement::Update(u) => match &u.table.relation {
            TableFactor::Table { name, .. } => Some(("UPDATE", name)),
            _ => None,
        },
        Statement::Delete(d) => match &d.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                match t.first().map(|t| &t.relation) {
                    Some(TableFactor::Table { name, .. }) => Some(("DELETE FROM", name)),
                    _ => None,
                }
            }
        },
        _ => None,
    };
    if let Some((what, name)) = target {
        if let Some(view) = relation_name(name).filter(|n| views.contains_key(n)) {
            return Err(SqlError::WrongObjectType(format!(
                "cannot {what} view {view}: a view is a stored query with no rows of its own \
                 (change the tables it reads)"
            )));
        }
    }
    Ok(())
}

/// Replaces each `FROM view` of `statement` by the view's query.
pub fn inline(
    statement: &mut Statement,
    views: &BTreeMap<String, Arc<ViewDef>>,
) -> Result<BTreeSet<String>, SqlError> {
    if views.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut inliner = Inliner {
        views,
        ctes: CteScopes::default(),
        used: BTreeSet::new(),
        depth: 0,
    };
    match statement.visit(&mut inliner) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(inliner.used),
    }
}

struct Inliner<'a> {
    views: &'a BTreeMap<String, Arc<ViewDef>>,
    /// WITH queries in scope: a CTE of a view's name hides the view inside its query.
    ctes: CteScopes,
    used: BTreeSet<String>,
    depth: usize,
}

/// The names of WITH queries in scope while a visitor walks a statement: a query's CTEs
/// hide relations of their names inside that query (its body and nested queries) only,
/// not in a later UNION branch or in the query around it.
#[derive(Debug, Default)]
pub(crate) struct CteScopes(Vec<Vec<String>>);

impl CteScopes {
    /// Entering `query`: its CTEs come into scope (an empty scope when it has none, so each
    /// `leave` closes the scope its `enter` opened).
    pub(crate) fn enter(&mut self, query: &Query) {
        let names = query
            .with
            .iter()
            .flat_map(|w| &w.cte_tables)
            .map(|cte| normalize(&cte.alias.name))
            .collect();
        self.0.push(names);
    }

    pub(crate) fn leave(&mut self) {
        self.0.pop();
    }

    pub(crate) fn hides(&self, name: &str) -> bool {
        self.0.iter().flatten().any(|n| n == name)
    }
}

/// The view name `name` refers to: unqualified or in the `public` schema (one namespace).
pub(crate) fn relation_name(name: &ObjectName) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(normalize))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [n] => Some(n.clone()),
        [schema, n] if schema == "public" => Some(n.clone()),
        [db, schema, n] if db == "weir" && schema == "public" => Some(n.clone()),
        _ => None,
    }
}

/// An identifier that keeps `name` as it is (quoted unless plain lower case).
pub(crate) fn ident(name: &str) -> Ident {
    if crate::parser::quote_ident(name) == name {
        Ident::new(name)
    } else {
        Ident::with_quote('"', name)
    }
}

impl VisitorMut for Inliner<'_> {
    type Break = SqlError;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<SqlError> {
        self.ctes.enter(query);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<SqlError> {
        self.ctes.leave();
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<SqlError> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let views = self.views;
        let Some(view) = relation_name(name)
            .filter(|n| !self.ctes.hides(n))
            .and_then(|n| views.get(&n))
        else {
            return ControlFlow::Continue(());
        };
        if self.depth >= MAX_DEPTH {
            return ControlFlow::Break(SqlError::Invalid(format!(
                "view {} reads views nested more than {MAX_DEPTH} deep",
                view.name
            )));
        }
        let mut query = view.query.clone();
        let mut inner = Inliner {
            views: self.views,
            ctes: CteScopes::default(),
            used: BTreeSet::new(),
            depth: self.depth + 1,
        };
        if let ControlFlow::Break(e) = query.visit(&mut inner) {
            return ControlFlow::Break(e);
        }
        self.used.extend(inner.used);
        self.used.insert(view.name.clone());
        let declared = || {
            view.declared
                .iter()
                .map(|c| TableAliasColumnDef {
                    name: ident(c),
                    data_type: None,
                })
                .collect()
        };
        let alias = match alias.take() {
            Some(mut a) => {
                if a.columns.is_empty() {
                    a.columns = declared();
                }
                a
            }
            None => TableAlias {
                explicit: true,
                name: ident(&view.name),
                columns: declared(),
                at: None,
            },
        };
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(query),
            alias: Some(alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// The catalog objects a planned statement scans (sources, tables, materialized views).
fn scanned(plan: &LogicalPlan, engine: &Engine) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // With subqueries in expressions (IN, EXISTS), which scan too.
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(s) = p {
            let table = s.table_name.table();
            if engine.catalog.get(table).is_some() {
                out.insert(table.to_string());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

impl Engine {
    pub(crate) fn views_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ViewDef>>> {
        self.views.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn views_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ViewDef>>> {
        self.views.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self, name: &str) -> Option<Arc<ViewDef>> {
        self.views_read().get(name).cloned()
    }

    /// `CREATE VIEW`: the query is planned as a reference to the view would plan it (every
    /// error raised now), its columns and what it reads stored with its SQL.
    pub(crate) async fn create_plain_view(
        self: &Arc<Self>,
        v: CreatePlainView,
    ) -> Result<Output, SqlError> {
        const TAG: &str = "CREATE VIEW";
        let _change = self.catalog.begin_change().await;
        if let Some(existing) = self.catalog.get(&v.name) {
            if v.or_replace {
                return self.replace_plain_view(v, existing).await;
            }
            if v.if_not_exists {
                return Ok(Output::Command(TAG.into()));
            }
            return Err(SqlError::Exists(v.name));
        }
        let mut def = ViewDef {
            id: 0,
            name: v.name.clone(),
            declared: v.columns.clone(),
            query: (*v.query).clone(),
            schema: Arc::new(Schema::empty()),
        };
        let mut views = self.views_read().clone();
        views.insert(def.name.clone(), Arc::new(def.clone()));
        let depends_on = self.plan_view(&mut def, &views).await?;
        let sql = def.create_sql();
        let mut entry =
            self.catalog
                .new_entry(PLAIN_VIEW, sql, def.column_infos(), BTreeMap::new());
        entry.depends_on = depends_on;
        def.id = entry.id;
        self.catalog.put(&def.name, entry).await?;
        tracing::info!(name = %def.name, "view created");
        self.views_mut().insert(def.name.clone(), Arc::new(def));
        Ok(Output::Command(TAG.into()))
    }

    /// Plans `def` as a reference to it would plan with `views` (every error raised now):
    /// sets its columns and returns what it reads (directly or through other views).
    pub(crate) async fn plan_view(
        self: &Arc<Self>,
        def: &mut ViewDef,
        views: &BTreeMap<String, Arc<ViewDef>>,
    ) -> Result<Vec<String>, SqlError> {
        let mut probe = Statement::Query(Box::new(
            crate::parser::parse_query(&format!(
                "SELECT * FROM {}",
                crate::parser::quote_ident(&def.name)
            ))
            .map_err(SqlError::from)?,
        ));
        let used = prepare(&mut probe, views, false)?;
        let session = self.session();
        let plan = session
            .df_state()
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                probe,
            )))
            .await?;
        def.schema = Arc::new(plan.schema().as_arrow().clone());
        let mut depends_on: BTreeSet<String> = scanned(&plan, self);
        depends_on.extend(used.into_iter().filter(|u| *u != def.name));
        Ok(depends_on.into_iter().collect())
    }

    /// `SHOW VIEWS`: each view's name and query.
    pub(crate) fn show_views(&self) -> Output {
        let (names, queries): (Vec<String>, Vec<String>) = self
            .views_read()
            .values()
            .map(|v| (v.name.clone(), v.query.to_string()))
            .unzip();
        text_rows(&SHOW_COLUMNS, vec![names, queries])
    }

    /// DESCRIBE's lines about a view, after its columns.
    pub(crate) fn view_info(&self, view: &ViewDef) -> Vec<(String, String)> {
        let mut info = vec![("kind".to_string(), "view".to_string())];
        if let Some(e) = self.catalog.get(&view.name) {
            if !e.depends_on.is_empty() {
                info.push(("reads".to_string(), e.depends_on.join(", ")));
            }
        }
        info.push(("definition".to_string(), view.create_sql()));
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CTE of a view's name hides the view only inside its own query (regression: its
    /// name was kept for the rest of the statement, so a later branch was not inlined).
    #[test]
    fn a_cte_hides_a_view_only_in_its_own_query() {
        let def = ViewDef {
            id: 1,
            name: "v".into(),
            declared: Vec::new(),
            query: crate::parser::parse_query("SELECT 1 AS x").expect("query"),
            schema: Arc::new(Schema::empty()),
        };
        let views = BTreeMap::from([("v".to_string(), Arc::new(def))]);
        let mut statement = Statement::Query(Box::new(
            crate::parser::parse_query(
                "SELECT x FROM (WITH v AS (SELECT 2 AS x) SELECT x FROM v) AS a \
                 UNION ALL SELECT x FROM v",
            )
            .expect("query"),
        ));
        let used = inline(&mut statement, &views).expect("inline");
        assert_eq!(used, BTreeSet::from(["v".to_string()]));
        assert_eq!(
            statement.to_string(),
            "SELECT x FROM (WITH v AS (SELECT 2 AS x) SELECT x FROM v) AS a \
             UNION ALL SELECT x FROM (SELECT 1 AS x) AS v"
        );
    }
}
