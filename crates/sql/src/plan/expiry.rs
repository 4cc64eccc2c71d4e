//! State the plan proves is read no more (design §6, state cleaning): a key column of an
//! updating aggregate or a top-N that holds a window bound, traced down the optimized plan
//! to a TUMBLE/HOP bound function over the source's watermarked column or to a window
//! aggregate grouping by it. Once the watermark passes the window's end no row of that
//! window arrives any more (late rows are dropped at the source), so the key is freed
//! without output: Nexmark q5's maximum per window (`MaxBids`), and deduplication per key
//! and window (`ROW_NUMBER() OVER (PARTITION BY k, window_start ORDER BY ts) = 1`).

use datafusion::logical_expr::{Expr, LogicalPlan};
use weir_stream::graph::KeyExpiry;

use super::window;
use super::Planner;

impl Planner<'_> {
    /// The first of `keys` (expressions over `input`'s columns) that is a window bound, with
    /// what added to it gives the window's end.
    pub(super) fn key_expiry(&self, input: &LogicalPlan, keys: &[Expr]) -> Option<KeyExpiry> {
        keys.iter().enumerate().find_map(|(i, e)| {
            let Expr::Column(c) = e.clone().unalias_nested().data else {
                return None;
            };
            let idx = input.schema().index_of_column(&c).ok()?;
            let end_offset_us = window::window_bound_end(input, idx, |source, column| {
                self.sources.iter().any(|d| {
                    d.name == source
                        && d.create
                            .watermark
                            .as_ref()
                            .is_some_and(|(c, _)| c.as_str() == column)
                })
            })?;
            Some(KeyExpiry {
                column: i,
                end_offset_us,
            })
        })
    }
}
