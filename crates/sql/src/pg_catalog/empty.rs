//! Client queries whose every row needs a row of a catalog Weir keeps empty (row-level
//! policies, extended statistics, publications, triggers, rules, inheritance, indexes,
//! constraints) answer no rows: psql's `\d name` asks each in queries DataFusion does not
//! plan (`ARRAY(subquery)`, `= ANY(column)`, `generate_series` over array bounds, casts to
//! `int2[]`), and their answer is known without planning them. The answer keeps the query's
//! column count and names, so a client reading by position reads nothing amiss.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, JoinOperator, ObjectNamePart, Query, SelectItem, SetExpr, SetOperator, Statement,
    TableFactor, TableWithJoins, Visit, Visitor,
};

use super::rewrite::{last_name, AGGREGATES};

/// Catalogs with no rows in Weir.
const EMPTY: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_statistic_ext_data",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_subscription",
    "pg_trigger",
    "pg_rewrite",
    "pg_inherits",
    "pg_index",
    "pg_constraint",
    "pg_foreign_table",
    "pg_partitioned_table",
    "pg_sequence",
    "pg_event_trigger",
];

/// `SELECT CAST(NULL AS TEXT) AS <name>, .. WHERE false` when `query` can have no rows.
pub(super) fn empty_answer(query: &Query) -> Option<Statement> {
    if !always_empty(&query.body) {
        return None;
    }
    let select = first_select(&query.body)?;
    let columns: Vec<String> = select
        .projection
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = match item {
                SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => i.value.clone(),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                    parts.last().map(|p| p.value.clone()).unwrap_or_default()
                }
                _ => format!("column{}", i + 1),
            };
            format!(
                "CAST(NULL AS TEXT) AS {}",
                crate::parser::quote_ident(&name)
            )
        })
        .collect();
    let sql = format!("SELECT {} WHERE false", columns.join(", "));
    let query = crate::parser::parse_query(&sql).ok()?;
    tracing::debug!(%sql, "a catalog query over empty catalogs");
    Some(Statement::Query(Box::new(query)))
}

fn first_select(body: &SetExpr) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    match body {
        SetExpr::Select(s) => Some(s),
        SetExpr::Query(q) => first_select(&q.body),
        SetExpr::SetOperation { left, .. } => first_select(left),
        _ => None,
    }
}

/// Whether `body` has no rows whatever the tables it reads besides the empty catalogs
/// hold. An aggregate without GROUP BY has a row even over nothing: not empty.
fn always_empty(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(s) => {
            let mut aggregates = Aggregates::default();
            let _ = s.projection.visit(&mut aggregates);
            let ungrouped_aggregate = aggregates.found;
            !ungrouped_aggregate && s.from.iter().any(needs_an_empty_row)
        }
        SetExpr::Query(q) => always_empty(&q.body),
        SetExpr::SetOperation {
            op, left, right, ..
        } => match op {
            SetOperator::Union => always_empty(left) && always_empty(right),
            SetOperator::Intersect => always_empty(left) || always_empty(right),
            SetOperator::Except | SetOperator::Minus => always_empty(left),
        },
        _ => false,
    }
}

/// Whether every row of `from` joins a row of an empty catalog: it is the first relation
/// (and no RIGHT or FULL join keeps the others' rows), or inner-joined.
fn needs_an_empty_row(from: &TableWithJoins) -> bool {
    let keeps_others = from.joins.iter().any(|j| {
        matches!(
            j.join_operator,
            JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::FullOuter(_)
                | JoinOperator::RightSemi(_)
                | JoinOperator::RightAnti(_)
        )
    });
    (is_empty(&from.relation) && !keeps_others)
        || from.joins.iter().any(|j| {
            matches!(
                j.join_operator,
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
            ) && is_empty(&j.relation)
        })
}

/// Finds an aggregate call of a projection, not counting those inside its subqueries
/// (psql's publication query aggregates in one: its rows are still those of its FROM).
#[derive(Default)]
struct Aggregates {
    depth: usize,
    found: bool,
}

impl Visitor for Aggregates {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let aggregate =
                last_name(&f.name).is_some_and(|n| AGGREGATES.contains(&n.to_lowercase().as_str()));
            if aggregate && self.depth == 0 {
                self.found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

fn is_empty(relation: &TableFactor) -> bool {
    let TableFactor::Table { name, .. } = relation else {
        return false;
    };
    let qualified_ok = match name.0.as_slice() {
        [_] => true,
        [schema, _] => schema_is(schema, "pg_catalog"),
        _ => false,
    };
    qualified_ok && last_name(name).is_some_and(|n| EMPTY.contains(&n))
}

fn schema_is(part: &ObjectNamePart, schema: &str) -> bool {
    part.as_ident().is_some_and(|i| i.value == schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sql: &str) -> Option<String> {
        let q = crate::parser::parse_query(sql).expect(sql);
        empty_answer(&q).map(|s| s.to_string())
    }

    #[test]
    fn queries_needing_rows_of_empty_catalogs_answer_none() {
        assert_eq!(
            answer(
                "SELECT pol.polname, pol.polpermissive AS p, pg_catalog.array_to_string(array(\
                 select rolname from pg_catalog.pg_roles), ',') FROM pg_catalog.pg_policy pol \
                 WHERE pol.polrelid = '16385' ORDER BY 1"
            )
            .as_deref(),
            Some(
                "SELECT CAST(NULL AS TEXT) AS polname, CAST(NULL AS TEXT) AS p, \
                 CAST(NULL AS TEXT) AS column3 WHERE false"
            )
        );
        assert!(answer(
            "SELECT pubname FROM pg_catalog.pg_publication p JOIN pg_catalog.pg_class c \
             ON true UNION SELECT pubname FROM pg_catalog.pg_publication p WHERE p.puballtables"
        )
        .is_some());
        // Rows without the empty catalog: planned as written.
        assert!(answer(
            "SELECT c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_index i \
             ON c.oid = i.indrelid"
        )
        .is_none());
        assert!(answer("SELECT 1 FROM pg_catalog.pg_class UNION SELECT 1 FROM pg_index").is_none());
        // psql's publications: an aggregate in a subquery of the projection.
        assert!(answer(
            "SELECT pubname, (SELECT string_agg(attname, ', ') FROM pg_catalog.pg_attribute \
             WHERE attrelid = pr.prrelid) FROM pg_catalog.pg_publication p JOIN \
             pg_catalog.pg_publication_rel pr ON p.oid = pr.prpubid"
        )
        .is_some());
        // An aggregate has a row over nothing.
        assert!(answer("SELECT count(*) FROM pg_catalog.pg_index").is_none());
        // A user's relation is not a catalog.
        assert!(answer("SELECT * FROM public.pg_index").is_none());
    }
}
