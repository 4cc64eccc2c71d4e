//! `DELETE` and `UPDATE` of a table (`CREATE TABLE .. PRIMARY KEY`, design §12 tables):
//! its topic is a changelog by key, so a DELETE appends a tombstone per matching row's key
//! and an UPDATE appends each matching row's new value under its key, as `INSERT` does.
//! DataFusion plans both statements and hands the table its `WHERE` (and `SET`)
//! expressions ([`TableProvider::delete_from`], [`TableProvider::update`]); the matching rows
//! are those of a scan at the statement's start (the last record per key), so the statement
//! acts on the table as it was then. Sources are append-only: both are refused there.
//! `TRUNCATE TABLE t` is `DELETE FROM t`. A subquery of the `WHERE` that does not read the
//! table's row (`k IN (SELECT ..)`, `score > (SELECT avg(..) ..)`) is run first, as an
//! ad-hoc query, and replaced by its values ([`inline_subqueries`]); a correlated one
//! (`EXISTS (SELECT .. WHERE e.id = t.id)`) is refused.
//!
//! [`TableProvider::delete_from`]: datafusion::catalog::TableProvider::delete_from
//! [`TableProvider::update`]: datafusion::catalog::TableProvider::update

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::DataSink;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{lit, Expr, ExprSchemable, LogicalPlan, WriteOp};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::append::{append_durably, NewRecord};
use crate::engine::Output;
use crate::error::SqlError;
use crate::parser::{ObjectKind, WeirStatement};
use crate::table::TopicTable;

impl crate::engine::Session {
    /// `TRUNCATE [TABLE] name`: a table's `DELETE` without `WHERE` (a tombstone per live
    /// key), answered `TRUNCATE TABLE` as PostgreSQL does. A source's topic is append-only
    /// history and a view's rows are its query's: both refused (42809).
    pub(crate) async fn truncate(&self, name: &str) -> Result<Output, SqlError> {
        let engine = self.engine();
        let entry = engine
            .catalog_entry(name)
            .ok_or_else(|| SqlError::UnknownRelation(name.to_string()))?;
        if entry.kind != "table" {
            return Err(SqlError::WrongObjectType(format!(
                "cannot TRUNCATE {name}: it is a {}, not a table (TRUNCATE deletes every row \
                 of a table; a source's topic is append-only, a view's rows are its query's)",
                crate::drop_object::kind_name(&entry.kind)
            )));
        }
        let sql = format!("DELETE FROM {}", crate::parser::quote_ident(name));
        let Some(WeirStatement::Sql(statement)) = crate::parser::parse(&sql)?.pop() else {
            return Err(SqlError::Invalid(format!("not a DELETE: {sql}")));
        };
        let plan = self.plan(&statement).await?;
        match self.execute_plan(plan).await? {
            Output::Command(_) => Ok(Output::Command("TRUNCATE TABLE".into())),
            other => Ok(other),
        }
    }
}

/// Appends a tombstone for each row of `table` matching `filters` (all rows without).
pub(crate) async fn delete(
    table: &TopicTable,
    state: &dyn Session,
    filters: Vec<Expr>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let key = table_key(table, "DELETE FROM")?;
    let rows = matching(table, state, filters).await?;
    let def = table.def();
    let topic = table.topic()?;
    let count = topic.partition_count().max(1);
    let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
    let mut deleted = 0u64;
    for batch in &rows {
        // The key as INSERT writes it: the JSON object of the key columns.
        let keys =
            weir_format::encode::encode_values(weir_format::Format::Json, &batch.project(&key)?)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        for k in keys.into_iter().flatten() {
            let partition = weir_client::partitioner::partition_for_key(&k, count);
            by_partition.entry(partition).or_default().push(NewRecord {
                key: Some(k),
                value: None,
                headers: Vec::new(),
            });
            deleted += 1;
        }
    }
    for (p, records) in by_partition {
        let partition = weir_broker::partition_access::PartitionAccess::new(table.state().clone())
            .partition(&def.topic, p)
            .map_err(|e| {
                DataFusionError::Execution(format!("topic {}, partition {p}: {e}", def.topic))
            })?;
        append_durably(&partition, &records)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
    }
    tracing::debug!(table = %def.name, deleted, "DELETE");
    count_plan(deleted)
}

/// Appends the new value of each row of `table` matching `filters`, under its key.
pub(crate) async fn update(
    table: &TopicTable,
    state: &dyn Session,
    assignments: Vec<(String, Expr)>,
    filters: Vec<Expr>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let key = table_key(table, "UPDATE")?;
    let def = table.def().clone();
    let schema = def.schema.clone();
    for (column, _) in &assignments {
        let i = schema.index_of(column)?;
        if key.contains(&i) {
            return Err(DataFusionError::NotImplemented(format!(
                "UPDATE of primary key column {column} of table {}: DELETE the row and INSERT \
                 it under its new key",
                def.name
            )));
        }
    }
    let rows = matching(table, state, filters).await?;
    let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
    let exprs = schema
        .fields()
        .iter()
        .map(|f| {
            let e = assignments
                .iter()
                .find(|(c, _)| c == f.name())
                .map(|(_, e)| e.clone().cast_to(f.data_type(), &df_schema))
                .transpose()?
                .unwrap_or_else(|| Expr::Column(f.name().as_str().into()));
            state.create_physical_expr(e, &df_schema)
        })
        .collect::<DfResult<Vec<_>>>()?;
    let mut updated = Vec::with_capacity(rows.len());
    for batch in &rows {
        let columns = exprs
            .iter()
            .map(|e| e.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        updated.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    let n: u64 = updated.iter().map(|b| b.num_rows() as u64).sum();
    let stream = RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::iter(updated.into_iter().map(Ok::<_, DataFusionError>)),
    );
    table
        .sink()
        .write_all(Box::pin(stream), &Arc::new(TaskContext::default()))
        .await?;
    tracing::debug!(table = %def.name, updated = n, "UPDATE");
    count_plan(n)
}

/// The key columns of `table`, or the refusal of `what` on a source or view.
fn table_key(table: &TopicTable, what: &str) -> DfResult<Vec<usize>> {
    let def = table.def();
    match (def.kind, &def.upsert_key) {
        (ObjectKind::Table, Some(key)) => Ok(key.clone()),
        (ObjectKind::MaterializedView, _) => Err(DataFusionError::Plan(format!(
            "cannot {what} materialized view {}: its rows come from its query",
            def.name
        ))),
        _ => Err(DataFusionError::NotImplemented(format!(
            "{what} {}: a source is append-only (a topic of events); a table (CREATE TABLE .. \
             PRIMARY KEY) takes DELETE and UPDATE",
            def.name
        ))),
    }
}

/// The rows of `table` (the last per key, as a scan reads them) for which every filter is
/// true.
async fn matching(
    table: &TopicTable,
    state: &dyn Session,
    filters: Vec<Expr>,
) -> DfResult<Vec<RecordBatch>> {
    let scan = table.scan(state, None, &[], None).await?;
    let batches = datafusion::physical_plan::collect(scan, state.task_ctx()).await?;
    let Some(predicate) = filters.into_iter().reduce(Expr::and) else {
        return Ok(batches);
    };
    let df_schema = DFSchema::try_from(table.schema().as_ref().clone())?;
    let predicate = state.create_physical_expr(predicate, &df_schema)?;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        let Some(mask) = mask.as_boolean_opt() else {
            return Err(DataFusionError::Plan(format!(
                "WHERE must be a boolean condition, not {}",
                mask.data_type()
            )));
        };
        // NULL is not true: the row does not match, as in SQL.
        out.push(filter_record_batch(&batch, mask)?);
    }
    Ok(out)
}

/// The one-row `count` DataFusion's DML plans return.
fn count_plan(n: u64) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(UInt64Array::from(vec![n]))])?;
    let exec: Arc<dyn ExecutionPlan> =
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None)?;
    Ok(exec)
}

/// A DELETE's or UPDATE's uncorrelated subqueries, each run once as an ad-hoc query and
/// replaced by what it returned: `x [NOT] IN (SELECT c ..)` by `x [NOT] IN (v1, v2, ..)`
/// (or `false` / `true` when it returned no row), a scalar subquery by its value (NULL
/// without a row; more than one row is an error, as in PostgreSQL). The table then gets a
/// condition on its own columns. Other plans are returned as they are.
pub(crate) async fn inline_subqueries(
    ctx: &SessionContext,
    mut plan: LogicalPlan,
) -> Result<LogicalPlan, SqlError> {
    let LogicalPlan::Dml(dml) = &plan else {
        return Ok(plan);
    };
    if !matches!(dml.op, WriteOp::Delete | WriteOp::Update) {
        return Ok(plan);
    }
    while let Some(found) = first_uncorrelated(&plan) {
        let value = subquery_value(ctx, &found).await?;
        let replaced = plan.transform_up(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    Ok(if e == found {
                        Transformed::yes(value.clone())
                    } else {
                        Transformed::no(e)
                    })
                })
            })
        })?;
        if !replaced.transformed {
            return Err(SqlError::unsupported(format!(
                "a subquery of a DELETE or UPDATE that could not be replaced by its value: \
                 {found}"
            )));
        }
        plan = replaced.data;
    }
    Ok(plan)
}

/// The first `IN (subquery)` or scalar subquery of the plan's expressions that reads no
/// column of the outer row.
fn first_uncorrelated(plan: &LogicalPlan) -> Option<Expr> {
    let mut found = None;
    let _ = plan.apply(|node| {
        for e in node.expressions() {
            let _ = e.apply(|e| {
                let uncorrelated = match e {
                    Expr::InSubquery(s) => s.subquery.outer_ref_columns.is_empty(),
                    Expr::ScalarSubquery(s) => s.outer_ref_columns.is_empty(),
                    _ => false,
                };
                if uncorrelated {
                    found = Some(e.clone());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// What the subquery expression `e` stands for once its query has run.
async fn subquery_value(ctx: &SessionContext, e: &Expr) -> Result<Expr, SqlError> {
    let (query, wanted) = match e {
        Expr::InSubquery(s) => (
            s.subquery.subquery.clone(),
            Some((s.expr.clone(), s.negated)),
        ),
        Expr::ScalarSubquery(s) => (s.subquery.clone(), None),
        _ => return Err(SqlError::Invalid(format!("not a subquery: {e}"))),
    };
    let batches = ctx
        .execute_logical_plan(query.as_ref().clone())
        .await?
        .collect()
        .await?;
    let mut values = Vec::new();
    for b in &batches {
        let Some(column) = b.columns().first() else {
            continue;
        };
        for row in 0..b.num_rows() {
            values.push(ScalarValue::try_from_array(column, row)?);
        }
    }
    match wanted {
        Some((expr, negated)) => {
            if values.is_empty() {
                // Nothing is IN an empty set (not even NULL); everything is NOT IN it.
                return Ok(lit(negated));
            }
            Ok(Expr::InList(InList::new(
                expr,
                values.into_iter().map(lit).collect(),
                negated,
            )))
        }
        None => match values.len() {
            0 => {
                let t = query.schema().field(0).data_type().clone();
                Ok(lit(ScalarValue::try_from(&t)?))
            }
            1 => Ok(lit(values.remove(0))),
            n => Err(SqlError::Invalid(format!(
                "more than one row returned by a subquery used as an expression ({n} rows)"
            ))),
        },
    }
}

/// DELETE and UPDATE act on the rows a scan of their table gives, with `WHERE` conjuncts
/// DataFusion hands the table: anything else (a subquery still there, which reads the
/// table's row; a join through `USING`/`FROM`) would be dropped from the condition, so it
/// is refused before it runs.
pub(crate) fn check(plan: &LogicalPlan) -> Result<(), SqlError> {
    let LogicalPlan::Dml(dml) = plan else {
        return Ok(());
    };
    let what = match dml.op {
        WriteOp::Delete => "DELETE",
        WriteOp::Update => "UPDATE",
        _ => return Ok(()),
    };
    let mut bad = None;
    dml.input.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Filter(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::TableScan(_) => {}
            other => {
                bad = Some(other.display().to_string());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        let has_subquery = node.expressions().iter().any(|e| {
            e.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                ))
            })
            .unwrap_or(true)
        });
        if has_subquery {
            bad = Some("a subquery".into());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match bad {
        Some(what_node) => Err(SqlError::unsupported(format!(
            "{what} with {what_node}: DELETE and UPDATE take a condition on the table's own \
             columns, and uncorrelated subqueries (k IN (SELECT ..)), which run first; a \
             subquery reading the table's row is not supported"
        ))),
        None => Ok(()),
    }
}

/// Whether an optimized DELETE or UPDATE can match no row: its input no longer scans the
/// table (the optimizer proved the condition false). The target must still be a table
/// (a source or view refuses DELETE and UPDATE whatever the condition).
pub(crate) fn matches_nothing(plan: &LogicalPlan) -> Result<bool, SqlError> {
    let LogicalPlan::Dml(dml) = plan else {
        return Ok(false);
    };
    let what = match dml.op {
        WriteOp::Delete => "DELETE FROM",
        WriteOp::Update => "UPDATE",
        _ => return Ok(false),
    };
    let scans = dml
        .input
        .exists(|node| Ok(matches!(node, LogicalPlan::TableScan(_))))?;
    if scans {
        return Ok(false);
    }
    let table = datafusion::datasource::source_as_provider(&dml.target)?;
    if let Some(table) = table.downcast_ref::<TopicTable>() {
        table_key(table, what)?;
    }
    Ok(true)
}

/// The command tag of a DML plan's result.
pub(crate) fn tag(op: &WriteOp, count: u64) -> String {
    match op {
        WriteOp::Delete => format!("DELETE {count}"),
        WriteOp::Update => format!("UPDATE {count}"),
        _ => format!("INSERT 0 {count}"),
    }
}
