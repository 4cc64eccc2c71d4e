//! Scans of tables (`CREATE TABLE .. PRIMARY KEY`) in continuous queries: the table's topic
//! is a changelog ([`crate::changelog`]), planned as
//!
//! ```text
//! Source(TableDecoder) -> TopN(PARTITION BY record key ORDER BY offset DESC, 1) -> Map(WHERE NOT deleted)
//! ```
//!
//! The `TopN` keeps each record key's last record in keyed state (checkpointed with the
//! pipeline) and emits `-old, +new` when a newer one arrives; the `Map` drops tombstones
//! (a delete is the retraction of the live row, a re-insert the retraction of the
//! tombstone, dropped, then the new row) and the changelog columns. The result updates,
//! keyed by the primary key. A deleted key costs one row of state (its tombstone).

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::physical_expr::expressions::{Column, NotExpr};
use datafusion::physical_expr::PhysicalExpr;
use weir_stream::graph::{SourceSpec, Startup, RETRACT};
use weir_stream::NodeSpec;

use super::{dead_letter_topic, Planner};
use crate::changelog::{self, TableDecoder};
use crate::error::SqlError;
use crate::source::SourceDef;

/// The rank column the `TopN` adds (dropped right after).
const RANK: &str = "_weir_rank";

impl Planner<'_> {
    /// The node whose output is table `def`'s changes: its columns then `_retract`, keyed
    /// by its primary key; added on first use (a table read twice fans out from one node).
    pub(super) fn table_changes(&mut self, def: &Arc<SourceDef>) -> Result<usize, SqlError> {
        if let Some(&n) = self.scans.get(&def.name) {
            return Ok(n);
        }
        // Checked now, so the factory below cannot fail when the pipeline starts.
        TableDecoder::new(def)?;
        let factory_def = def.clone();
        let decoder: weir_stream::graph::DecoderFactory =
            Arc::new(move || match TableDecoder::new(&factory_def) {
                Ok(d) => Box::new(d) as Box<dyn weir_stream::format::SourceDecoder>,
                // Unreachable: the same definition built a decoder at planning.
                Err(e) => {
                    tracing::error!(error = %e, "table decoder");
                    Box::new(weir_stream::format::BytesDecoder::new())
                }
            });
        let source = self.graph.add(NodeSpec::Source(SourceSpec {
            topic: def.topic.clone(),
            decoder,
            // A table is its whole changelog.
            startup: Startup::Earliest,
            watermark: None,
            dead_letter: dead_letter_topic(def),
            dedup: None,
        }));
        let rows = changelog::schema(def);
        let width = def.payload.fields().len();
        let column = |name: &str, i: usize| Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>;
        let last = self.graph.add(NodeSpec::TopN {
            partition: vec![column(changelog::KEY, width)],
            order: vec![(
                column(changelog::OFFSET, width + 1),
                SortOptions {
                    descending: true,
                    nulls_first: false,
                },
            )],
            limit: 1,
            // No watermark reaches it (a table has none): never freed, not even by a TTL.
            expiry: None,
        });
        self.graph
            .connect_keyed(source, last, rows.clone(), true, Vec::new());
        let mut ranked: Vec<Field> = rows.fields().iter().map(|f| f.as_ref().clone()).collect();
        ranked.push(Field::new(RANK, DataType::UInt64, false));
        ranked.push(Field::new(RETRACT, DataType::Boolean, false));
        let ranked: SchemaRef = Arc::new(Schema::new(ranked));
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = def
            .payload
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| column(f.name(), i))
            .collect();
        exprs.push(column(RETRACT, width + 4));
        let live = Arc::new(NotExpr::new(column(changelog::DELETED, width + 2)));
        let node = self.graph.add(NodeSpec::Map {
            exprs,
            filter: Some(live),
        });
        // The TopN's output is keyed by the record key (its partition column).
        self.graph
            .connect_keyed(last, node, ranked, false, vec![width]);
        self.scans.insert(def.name.clone(), node);
        self.sources.push(def.clone());
        Ok(node)
    }
}
