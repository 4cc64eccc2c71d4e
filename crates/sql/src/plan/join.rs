//! Planning of `LogicalPlan::Join` into the runtime's `Join` node (design §6, joins): inner,
//! left, right and full equi-joins whose sides are any planned sub-plans (sources, filters,
//! aggregates...). The equi keys are cast to one type per pair (so a key encodes alike on
//! both sides), the residual condition becomes a physical expression over `left ++ right`.
//!
//! Semi and anti joins (DataFusion decorrelates `IN` and `EXISTS` into them, and rewrites an
//! inner join whose other side is unique on the join key and gives no output column into a
//! semi join: Nexmark q5, q8) are the same node, whose output is the kept side's rows.
//!
//! The output is append-only for an inner or semi join of append-only inputs; otherwise it
//! updates, keyed by both inputs' keys (a semi or anti join: the kept side's). Where the
//! result needs that key ([`super::hidden`]), an append-only input's rows are numbered by a
//! `RowId` node (design §5.4's `_row_id`) and the inputs' hidden key columns go after the
//! join's own. Refused here, at CREATE: mark joins, joins without an equality between the
//! sides, `IS NOT DISTINCT FROM` keys (so `NOT IN`'s null-aware anti join), and columns the
//! state codec cannot keep. An inner join of append-only inputs whose condition bounds their
//! watermarked event times is an `IntervalJoin` ([`super::interval`]); an inner join with
//! such bounds where a side updates (its time a window bound: Nexmark q7) stays a `Join`
//! that frees rows by them.

use std::sync::Arc;

use datafusion::common::{DFSchema, NullEquality};
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::{ExprSchemable, Join, JoinType};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::graph::{JoinExpiry, JoinKind};
use weir_stream::NodeSpec;

use super::hidden::{self, Qualified};
use super::{refused, Out, Planner};
use crate::error::SqlError;

impl Planner<'_> {
    /// An equi-join: a `Join` node with the left sub-plan on port 0, the right on port 1.
    pub(super) fn join(&mut self, j: &Join) -> Result<Out, SqlError> {
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            JoinType::LeftSemi => JoinKind::LeftSemi,
            JoinType::RightSemi => JoinKind::RightSemi,
            JoinType::LeftAnti => JoinKind::LeftAnti,
            JoinType::RightAnti => JoinKind::RightAnti,
            other => {
                return Err(refused(
                    &format!("a {other} join (from a subquery in an OR or a SELECT list)"),
                    "streaming joins are inner, outer, semi and anti equi-joins",
                ))
            }
        };
        if j.on.is_empty() {
            return Err(refused(
                "a join without an equality between its two sides (a cross or theta join)",
                "a streaming join keeps each side's rows by join key: add ON a.k = b.k",
            ));
        }
        if j.null_equality == NullEquality::NullEqualsNull || j.null_aware {
            return Err(refused(
                "a join on IS NOT DISTINCT FROM, or NOT IN (whose NULLs match everything)",
                "NULL join keys match nothing in a streaming join: write NOT EXISTS",
            ));
        }
        let mut left = self.walk_keyed(&j.left)?;
        let mut right = self.walk_keyed(&j.right)?;
        for (side, out) in [("left", &left), ("right", &right)] {
            for f in out.schema.fields() {
                if !weir_stream::state::codec::supports(f.data_type()) {
                    return Err(SqlError::unsupported(format!(
                        "JOIN: column {} of the {side} side is {}, which a join's state cannot \
                         keep; cast it or leave it out of the join's inputs",
                        f.name(),
                        f.data_type()
                    )));
                }
            }
        }
        let keys = self.join_keys(j, &left, &right)?;
        if let Some(interval) = self.interval_of(j, &left, &right) {
            // Append-only in, append-only out; the watermarks free its state ([`super::interval`]).
            let (left, right) = (self.strip(left)?, self.strip(right)?);
            let filter = j
                .filter
                .as_ref()
                .map(|f| self.state.create_physical_expr(f.clone(), &j.schema))
                .transpose()?;
            let node = self.graph.add(NodeSpec::IntervalJoin {
                keys,
                time: interval.time,
                bounds: interval.bounds,
                filter,
            });
            for side in [&left, &right] {
                self.graph
                    .connect_keyed(side.node, node, side.arrow(), true, Vec::new());
            }
            return Ok(Out {
                node,
                schema: j.schema.clone(),
                updating: false,
                key: Some(Vec::new()),
                hidden: 0,
            });
        }
        let updating = left.updating
            || right.updating
            || !matches!(
                kind,
                JoinKind::Inner | JoinKind::LeftSemi | JoinKind::RightSemi
            );
        // The sides whose key the output's key is made of; an append-only one gets row
        // numbers when the result needs its key.
        let keyed = match kind.only() {
            Some(kept) => [kept == 0, kept == 1],
            None => [true, true],
        };
        if updating && self.keep_hidden {
            if keyed[0] && !left.updating {
                left = self.number_rows(left)?;
            }
            if keyed[1] && !right.updating {
                right = self.number_rows(right)?;
            }
        }
        let key_of = |side: &Out| {
            if side.updating || side.hidden > 0 {
                side.key.clone()
            } else {
                None
            }
        };
        // Both sides' columns as the join sees them, hidden ones included.
        let joined = if left.hidden + right.hidden == 0 && kind.only().is_none() {
            j.schema.clone()
        } else {
            Arc::new(left.schema.join(&right.schema)?)
        };
        let filter = j
            .filter
            .as_ref()
            .map(|f| self.state.create_physical_expr(f.clone(), &joined))
            .transpose()?;
        let expiry = expiry_of(j, &left, &right);
        let bounds = self.residual_time_bounds(j, &left, &right);
        let node = self.graph.add(NodeSpec::Join {
            kind,
            keys,
            filter,
            expiry,
            bounds,
        });
        for side in [&left, &right] {
            let key = side.key.clone().unwrap_or_default();
            self.graph
                .connect_keyed(side.node, node, side.arrow(), !side.updating, key);
        }
        if let Some(kept) = kind.only() {
            let side = if kept == 0 { left } else { right };
            let key = if updating {
                key_of(&side)
            } else {
                Some(Vec::new())
            };
            return Ok(Out {
                node,
                key,
                updating,
                ..side
            });
        }
        let lw = left.schema.fields().len();
        // A joined row is identified by its two input rows: both keys, where both have one.
        let key = match (key_of(&left), key_of(&right)) {
            _ if !updating => Some(Vec::new()),
            (Some(lk), Some(rk)) => Some(lk.into_iter().chain(rk.iter().map(|k| k + lw)).collect()),
            _ => None,
        };
        if left.hidden + right.hidden == 0 {
            return Ok(Out {
                node,
                schema: j.schema.clone(),
                updating,
                key,
                hidden: 0,
            });
        }
        self.hidden_last(j, node, &left, &right, updating, key)
    }

    /// The equi keys per side, cast to one type per pair (so a key encodes alike on both
    /// sides).
    fn join_keys(
        &self,
        j: &Join,
        left: &Out,
        right: &Out,
    ) -> Result<[Vec<Arc<dyn PhysicalExpr>>; 2], SqlError> {
        let mut keys = [Vec::new(), Vec::new()];
        for (l, r) in &j.on {
            let lt = l.get_type(left.schema.as_ref())?;
            let rt = r.get_type(right.schema.as_ref())?;
            let t = if lt == rt {
                lt
            } else {
                comparison_coercion(&lt, &rt).ok_or_else(|| {
                    SqlError::unsupported(format!(
                        "JOIN ON {l} = {r}: {lt} and {rt} cannot be compared"
                    ))
                })?
            };
            if !weir_stream::state::codec::supports(&t) {
                return Err(SqlError::unsupported(format!(
                    "JOIN ON {l} = {r}: a join key of type {t} cannot be kept in a continuous \
                     query's state"
                )));
            }
            let l = l.clone().cast_to(&t, left.schema.as_ref())?;
            let r = r.clone().cast_to(&t, right.schema.as_ref())?;
            keys[0].push(self.state.create_physical_expr(l, &left.schema)?);
            keys[1].push(self.state.create_physical_expr(r, &right.schema)?);
        }
        Ok(keys)
    }

    /// The join `node`'s rows (`left ++ right`, each side's hidden columns after its own) as
    /// the join's columns then both sides' hidden ones: a `Map` when the left side has
    /// hidden columns. `key` indexes the join node's rows.
    fn hidden_last(
        &mut self,
        j: &Join,
        node: usize,
        left: &Out,
        right: &Out,
        updating: bool,
        key: Option<Vec<usize>>,
    ) -> Result<Out, SqlError> {
        let (lw, rw) = (left.schema.fields().len(), right.schema.fields().len());
        let (lv, rv) = (lw - left.hidden, rw - right.hidden);
        // Padded sides' columns are nullable, as in the join's own schema.
        let pad = |fields: Vec<Qualified>, nullable: bool| -> Vec<Qualified> {
            fields
                .into_iter()
                .map(|(q, f)| {
                    let n = f.is_nullable() || nullable;
                    (q, Arc::new(f.as_ref().clone().with_nullable(n)))
                })
                .collect()
        };
        let visible: Vec<Qualified> = j
            .schema
            .iter()
            .map(|(q, f)| (q.cloned(), f.clone()))
            .collect();
        let (lvis, rvis): (Vec<Qualified>, Vec<Qualified>) = (
            visible.iter().take(lv).cloned().collect(),
            visible.iter().skip(lv).cloned().collect(),
        );
        let lh = pad(
            hidden::fields(left),
            matches!(j.join_type, JoinType::Right | JoinType::Full),
        );
        let rh = pad(
            hidden::fields(right),
            matches!(j.join_type, JoinType::Left | JoinType::Full),
        );
        // What the join node emits, and the order the result wants: old index per new column.
        let raw: Vec<Qualified> = lvis
            .iter()
            .chain(&lh)
            .chain(&rvis)
            .chain(&rh)
            .cloned()
            .collect();
        let order: Vec<usize> = (0..lv)
            .chain(lw..lw + rv)
            .chain(lv..lw)
            .chain(lw + rv..lw + rw)
            .collect();
        let out: Vec<Qualified> = order.iter().filter_map(|&i| raw.get(i).cloned()).collect();
        let raw = Arc::new(DFSchema::new_with_metadata(
            raw,
            j.schema.metadata().clone(),
        )?);
        let schema = Arc::new(DFSchema::new_with_metadata(
            out,
            j.schema.metadata().clone(),
        )?);
        let hidden = left.hidden + right.hidden;
        let new_key = key.map(|k| {
            k.iter()
                .filter_map(|old| order.iter().position(|o| o == old))
                .collect::<Vec<_>>()
        });
        if left.hidden == 0 {
            // Already in order: the join's columns, then the right side's hidden ones.
            return Ok(Out {
                node,
                schema,
                updating,
                key: new_key,
                hidden,
            });
        }
        let raw_out = Out {
            node,
            schema: raw,
            updating,
            key: None,
            hidden: 0,
        };
        let exprs = order
            .iter()
            .map(|&i| {
                let f = raw_out.schema.field(i);
                Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>
            })
            .collect();
        let map = self.map(node, raw_out.arrow(), exprs, None, updating, Vec::new());
        Ok(Out {
            node: map,
            schema,
            updating,
            key: new_key,
            hidden,
        })
    }
}

/// Where an equi key pair is a window bound on both sides (both inputs windowed aggregates,
/// Nexmark q5 and q8), the join frees a window's rows when the watermark passes the later
/// of the two sides' window ends.
fn expiry_of(j: &Join, left: &Out, right: &Out) -> Option<JoinExpiry> {
    j.on.iter().find_map(|(l, r)| {
        let (Expr::Column(l), Expr::Column(r)) = (l, r) else {
            return None;
        };
        let li = j.left.schema().index_of_column(l).ok()?;
        let ri = j.right.schema().index_of_column(r).ok()?;
        let lo = super::window::window_end_offset(&j.left, li)?;
        let ro = super::window::window_end_offset(&j.right, ri)?;
        let timestamp = |out: &Out, i: usize| {
            matches!(
                out.schema.fields().get(i).map(|f| f.data_type()),
                Some(datafusion::arrow::datatypes::DataType::Timestamp(..))
            )
        };
        (timestamp(left, li) && timestamp(right, ri)).then_some(JoinExpiry {
            columns: [li, ri],
            end_offset_us: lo.max(ro),
        })
    })
}
