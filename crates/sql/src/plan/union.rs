//! `UNION ALL` (design §5.4): a `Union` node merging its branches, each cast and renamed to
//! the union's columns by a `Map`. Two branches may hold equal rows, so an updating union
//! has no key of its own columns; where its result or a join above needs one
//! (the planner keeps hidden columns there), the union is keyed by hidden columns, as RisingWave keys it:
//! the branch's number, then every branch's key columns, each branch filling its own and
//! NULL in the others'. An append-only branch of an updating union is keyed by a `RowId`.
//! Elsewhere (under aggregates, windows, top-N) the branches lose their hidden columns and
//! the plan is the one it always was.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, ExprSchemable, Union};
use datafusion::physical_expr::expressions::{lit, CastExpr, Column};
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::NodeSpec;

use super::hidden::{self, Qualified};
use super::{with_retract, Out, Planner};
use crate::error::SqlError;

impl Planner<'_> {
    pub(super) fn union(&mut self, u: &Union) -> Result<Out, SqlError> {
        let union = self.graph.add(NodeSpec::Union);
        let wants_key = self.keep_hidden;
        let mut children = Vec::with_capacity(u.inputs.len());
        for input in &u.inputs {
            children.push(if wants_key {
                self.walk_keyed(input)?
            } else {
                self.walk(input)?
            });
        }
        let updating = children.iter().any(|c| c.updating);
        // Keyed by branch only where a key is needed and every updating branch has one.
        let keyed =
            wants_key && updating && children.iter().all(|c| !c.updating || c.key.is_some());
        let mut branches = Vec::with_capacity(children.len());
        for child in children {
            let child = self.strip_unless(child, keyed)?;
            branches.push(if keyed && !child.updating {
                self.number_rows(child)?
            } else {
                child
            });
        }
        // The hidden columns: the branch number, then each branch's key columns.
        let mut hidden: Vec<Qualified> = Vec::new();
        // Per branch, where its key columns start among `hidden` (after the branch number).
        let mut starts = Vec::with_capacity(branches.len());
        if keyed {
            let name = self.hidden_name("branch");
            hidden.push((None, Arc::new(Field::new(name, DataType::Int32, false))));
            for b in &branches {
                starts.push(hidden.len());
                for &k in b.key.as_deref().unwrap_or_default() {
                    let f = b.schema.field(k);
                    let name = self.hidden_name(f.name());
                    hidden.push((
                        None,
                        Arc::new(Field::new(name, f.data_type().clone(), true)),
                    ));
                }
            }
        }
        let schema = hidden::append(&u.schema, hidden.clone())?;
        let out = with_retract(&Arc::new(schema.as_arrow().clone()), updating);
        for (b, child) in branches.into_iter().enumerate() {
            // Each branch is cast and renamed to the union's columns, so that every batch
            // leaving the union has one schema; an append-only branch of an updating union
            // inserts only.
            let mut exprs = u
                .schema
                .fields()
                .iter()
                .zip(child.schema.columns())
                .map(|(target, column)| {
                    let e =
                        Expr::Column(column).cast_to(target.data_type(), child.schema.as_ref())?;
                    Ok(self.state.create_physical_expr(e, &child.schema)?)
                })
                .collect::<Result<Vec<_>, SqlError>>()?;
            if keyed {
                exprs.push(lit(i32::try_from(b).unwrap_or(i32::MAX)));
                let own = starts.get(b).copied().unwrap_or_default();
                let key = child.key.clone().unwrap_or_default();
                for (i, (_, field)) in hidden.iter().enumerate().skip(1) {
                    let e: Arc<dyn PhysicalExpr> = match i.checked_sub(own).and_then(|j| key.get(j))
                    {
                        Some(&k) => Arc::new(CastExpr::new(
                            Arc::new(Column::new(child.schema.field(k).name(), k)),
                            field.data_type().clone(),
                            None,
                        )),
                        _ => lit(ScalarValue::try_from(field.data_type())?),
                    };
                    exprs.push(e);
                }
            }
            if updating && !child.updating {
                exprs.push(lit(false));
            }
            let branch = self.map(
                child.node,
                child.arrow(),
                exprs,
                None,
                child.updating,
                child.key.clone().unwrap_or_default(),
            );
            let key = if keyed {
                (u.schema.fields().len()..u.schema.fields().len() + hidden.len()).collect()
            } else {
                Vec::new()
            };
            self.graph
                .connect_keyed(branch, union, out.clone(), !updating, key);
        }
        let visible = u.schema.fields().len();
        Ok(Out {
            node: union,
            schema,
            updating,
            key: match (keyed, updating) {
                (true, _) => Some((visible..visible + hidden.len()).collect()),
                // Two branches may hold equal keys: the union's rows have none.
                (false, true) => None,
                (false, false) => Some(Vec::new()),
            },
            hidden: hidden.len(),
        })
    }

    /// `out`, without its hidden columns unless `keep`.
    fn strip_unless(&mut self, out: Out, keep: bool) -> Result<Out, SqlError> {
        if keep {
            Ok(out)
        } else {
            self.strip(out)
        }
    }
}
