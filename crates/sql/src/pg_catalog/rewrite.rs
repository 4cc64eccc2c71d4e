//! Rewrites PostgreSQL-only syntax clients send into what DataFusion plans: custom operator
//! spellings, collations, casts to OID alias types, and the scalar subqueries of psql's
//! catalog queries (aggregated, or answered as NULL where DataFusion cannot decorrelate
//! them).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, ObjectName, ObjectNamePart,
    Select, SelectItem, SetExpr, Statement, TableFactor, Value,
};

/// Rewrites PostgreSQL-only syntax clients send into what DataFusion plans.
pub fn rewrite(mut statement: Statement) -> Statement {
    if let Statement::Query(q) = &statement {
        if let Some(empty) = super::empty::empty_answer(q) {
            return empty;
        }
    }
    // DELETE and UPDATE run their uncorrelated subqueries first (`dml::inline_subqueries`),
    // which refuses a scalar one of several rows as PostgreSQL does: no `max` there.
    let dml = matches!(statement, Statement::Delete(_) | Statement::Update(_));
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(&mut statement, |e| {
        rewrite_expr(e, dml);
        ControlFlow::<()>::Continue(())
    });
    let _ = datafusion::sql::sqlparser::ast::visit_relations_mut(&mut statement, |name| {
        qualify_catalog_table(name);
        ControlFlow::<()>::Continue(())
    });
    statement
}

/// `pg_class` is `pg_catalog.pg_class`: PostgreSQL searches `pg_catalog` before any other
/// schema, so an unqualified catalog table name means it (`SELECT * FROM pg_matviews`).
fn qualify_catalog_table(name: &mut ObjectName) {
    let [ObjectNamePart::Identifier(table)] = name.0.as_slice() else {
        return;
    };
    let folded = match table.quote_style {
        Some(_) => table.value.clone(),
        None => table.value.to_lowercase(),
    };
    if super::tables::is_catalog_table(&folded) {
        name.0
            .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
    }
}

fn rewrite_expr(e: &mut Expr, dml: bool) {
    match e {
        // `a OPERATOR(pg_catalog.~) b`: the operator itself.
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op {
                let replaced = match parts.last().map(String::as_str) {
                    Some("~") => Some(BinaryOperator::PGRegexMatch),
                    Some("~*") => Some(BinaryOperator::PGRegexIMatch),
                    Some("!~") => Some(BinaryOperator::PGRegexNotMatch),
                    Some("!~*") => Some(BinaryOperator::PGRegexNotIMatch),
                    Some("=") => Some(BinaryOperator::Eq),
                    Some("<>") => Some(BinaryOperator::NotEq),
                    Some("<") => Some(BinaryOperator::Lt),
                    Some(">") => Some(BinaryOperator::Gt),
                    _ => None,
                };
                if let Some(r) = replaced {
                    *op = r;
                }
            }
        }
        // Collations: Weir compares strings by bytes (C) whatever is asked.
        Expr::Collate { expr, .. } => {
            let inner = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
            *e = inner;
            rewrite_expr(e, dml);
        }
        // A scalar subquery returns at most one row in PostgreSQL (more is an error);
        // DataFusion plans a correlated one only when aggregated: `max` of its one row is it.
        Expr::Subquery(q) => {
            // psql's `\d name` asks a column's collation through a subquery correlated by
            // a non-equality, which DataFusion cannot decorrelate: Weir has no collations,
            // so it reads as NULL. Its default subquery is correlated by equalities plus
            // `AND a.atthasdef`, a condition on the outer row only (which DataFusion cannot
            // decorrelate either); `pg_attrdef` holds rows only for columns with a default,
            // so without it the answer is the same.
            if let SetExpr::Select(select) = q.body.as_mut() {
                let reads = |table: &str| {
                    select.from.iter().any(|t| {
                        matches!(&t.relation, TableFactor::Table { name, .. }
                            if last_name(name) == Some(table))
                    })
                };
                if reads("pg_collation") {
                    *e = Expr::value(Value::Null);
                    return;
                }
                if reads("pg_attrdef") {
                    let inner = inner_names(select);
                    if let Some(selection) = select.selection.take() {
                        select.selection = drop_outer_flags(selection, &inner);
                    }
                }
            }
            // Only a correlated one, or one over the catalog (psql's and drivers' queries):
            // DataFusion runs an uncorrelated one itself and refuses more than one row, as
            // PostgreSQL does. A correlated one of several rows answers their maximum.
            if let (SetExpr::Select(select), false) = (q.body.as_mut(), dml) {
                let ungrouped =
                    matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty());
                let wrap = ungrouped && (correlated(select) || reads_catalog(select));
                if let ([item], true) = (select.projection.as_mut_slice(), wrap) {
                    let target: Option<&mut Expr> = match item {
                        SelectItem::UnnamedExpr(e) => Some(e),
                        SelectItem::ExprWithAlias { expr, .. } => Some(expr),
                        _ => None,
                    };
                    if let Some(target) = target {
                        let aggregate = matches!(&*target, Expr::Function(f) if f
                            .name
                            .0
                            .last()
                            .and_then(ObjectNamePart::as_ident)
                            .is_some_and(|i| AGGREGATES.contains(&i.value.to_lowercase().as_str())));
                        if !aggregate {
                            let inner = std::mem::replace(target, Expr::value(Value::Null));
                            *target = call("max", inner);
                        }
                    }
                }
            }
        }
        // `array_to_string(c.reloptions || array(SELECT ..), ', ')` (psql's `\d+` and its
        // policies): an array built by a subquery, which DataFusion does not plan, over
        // options and roles Weir has none of: NULL.
        Expr::Function(f)
            if last_name(&f.name) == Some("array_to_string") && has_array_subquery(f) =>
        {
            *e = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(Expr::value(Value::Null)),
                data_type: SqlType::Text,
                format: None,
                array: false,
            };
        }
        // `pg_catalog.fn(...)`: the function by its own name.
        Expr::Function(f) if f.name.0.len() > 1 => {
            if let Some(last) = f.name.0.last().cloned() {
                f.name = ObjectName(vec![last]);
            }
        }
        // Casts to PostgreSQL's OID alias types and catalog type names.
        Expr::Cast {
            expr,
            data_type,
            kind,
            ..
        } => {
            let name = match data_type {
                SqlType::Regclass => Some("regclass".to_string()),
                SqlType::Custom(n, _) => {
                    n.0.last()
                        .and_then(ObjectNamePart::as_ident)
                        .map(|i| i.value.to_lowercase())
                }
                _ => None,
            };
            match name.as_deref() {
                Some("regclass") => {
                    let arg = std::mem::replace(expr.as_mut(), Expr::value(Value::Null));
                    *e = call("weir_regclass", arg);
                }
                Some(
                    "regtype" | "regproc" | "regprocedure" | "regnamespace" | "regrole" | "oid"
                    | "xid" | "cid",
                ) => {
                    *data_type = SqlType::BigInt(None);
                    *kind = CastKind::Cast;
                }
                Some("text" | "name" | "char" | "bpchar" | "varchar") => {
                    *data_type = SqlType::Text;
                }
                Some("int2vector" | "oidvector" | "_text" | "_oid") => {
                    *data_type = SqlType::Text;
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// The last part of a name (`pg_catalog.pg_class`: `pg_class`).
pub(super) fn last_name(name: &ObjectName) -> Option<&str> {
    name.0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(|i| i.value.as_str())
}

/// The names a SELECT's own relations go by (alias, else table name), joins included.
fn inner_names(select: &Select) -> Vec<String> {
    let name = |t: &TableFactor| match t {
        TableFactor::Table { name, alias, .. } => alias
            .as_ref()
            .map(|a| a.name.value.clone())
            .or_else(|| last_name(name).map(str::to_string)),
        TableFactor::Derived { alias, .. } => alias.as_ref().map(|a| a.name.value.clone()),
        _ => None,
    };
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(name)
        .collect()
}

/// Whether a SELECT names a column of a relation it does not read (`o.id` with no `o` in its
/// FROM): a subquery correlated to its outer query. Unqualified outer columns are not seen.
fn correlated(select: &Select) -> bool {
    let inner = inner_names(select);
    let mut outer = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(select, |e| {
        if let Expr::CompoundIdentifier(parts) = e {
            if parts.len() >= 2
                && !inner
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&parts[parts.len() - 2].value))
            {
                outer = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    outer
}

/// Whether a SELECT reads a table of the catalog (`pg_catalog`, `information_schema`).
fn reads_catalog(select: &Select) -> bool {
    let mut catalog = false;
    let _ = datafusion::sql::sqlparser::ast::visit_relations(select, |name| {
        let schema = name
            .0
            .iter()
            .rev()
            .nth(1)
            .and_then(ObjectNamePart::as_ident);
        let in_catalog = schema.is_some_and(|s| {
            ["pg_catalog", "information_schema"].contains(&s.value.to_lowercase().as_str())
        });
        if in_catalog
            || last_name(name).is_some_and(|n| super::tables::is_catalog_table(&n.to_lowercase()))
        {
            catalog = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    catalog
}

/// Whether `f`'s arguments hold `ARRAY(subquery)`.
fn has_array_subquery(f: &Function) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(&f.args, |e| {
        if let Expr::Function(g) = e {
            if last_name(&g.name).is_some_and(|n| n.eq_ignore_ascii_case("array"))
                && matches!(g.args, FunctionArguments::Subquery(_))
            {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// `condition` without its conjuncts that are a bare column of a relation not in `inner`
/// (a flag of the outer row, as `a.atthasdef`); `None` when nothing is left.
fn drop_outer_flags(condition: Expr, inner: &[String]) -> Option<Expr> {
    match condition {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => match (
            drop_outer_flags(*left, inner),
            drop_outer_flags(*right, inner),
        ) {
            (Some(l), Some(r)) => Some(Expr::BinaryOp {
                left: Box::new(l),
                op: BinaryOperator::And,
                right: Box::new(r),
            }),
            (one, None) | (None, one) => one,
        },
        Expr::CompoundIdentifier(parts)
            if parts.len() == 2 && parts.first().is_some_and(|q| !inner.contains(&q.value)) =>
        {
            None
        }
        other => Some(other),
    }
}

/// Aggregates clients put in scalar subqueries (left as they are).
pub(super) const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
];

fn call(name: &str, arg: Expr) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(arg))],
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}
