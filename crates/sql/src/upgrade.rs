//! A view or sink planned again at start whose plan is not the one it was created with
//! (design §5.3): a newer Weir or DataFusion plans the same SQL into another graph. A user
//! upgrading must not lose pipelines, and a pipeline must never run over state written for
//! another layout. So, in order:
//!
//! 1. the same graph (its fingerprint): resume;
//! 2. another graph with the same state layout ([`crate::plan::state_layout`]: what the
//!    checkpoint was written for; names and final projections may differ): resume, and store
//!    the new fingerprint;
//! 3. a checkpoint without operator state (a stateless pipeline, or state all freed): only
//!    source offsets, by topic and partition, which mean the same to any graph: resume from
//!    them with the new plan;
//! 4. otherwise the state is unusable: the pipeline is **rebuilt** where its output can be
//!    rewritten exactly (a view no other pipeline reads; an upsert sink keyed by named or
//!    visible columns): a new id (so a fresh state topic and transactional id), the view's
//!    topic emptied, the sources read again from their start positions, the reset logged and
//!    shown by DESCRIBE (`state reset`). A view others read is rebuilt with all that read it,
//!    directly or through other views (their offsets and state are of its old topic): each
//!    is marked in the catalog before the view's topic is emptied (`Entry::rebuild_after`)
//!    and rebuilt at its turn whatever its own plan, at this start or, if it fails, at the
//!    next. An append-only sink, or a view an append-only sink reads (through any views),
//!    is refused with the way out: DROP and CREATE it again.

use std::sync::Arc;

use weir_broker::state::AdminError;
use weir_stream::checkpoint::{state_topic, transactional_id};
use weir_stream::graph::SinkSpec;
use weir_stream::state::changelog;

use crate::catalog::Entry;
use crate::engine::Engine;
use crate::error::SqlError;
use crate::pipelines::VIEW;
use crate::plan::{self, StreamPlan};
use crate::source::SourceDef;

/// The transaction timeout of the fencing `init_transactional` of a rebuilt pipeline's old
/// id (the runtime's default).
const FENCE_TIMEOUT_MS: i32 = 60_000;

impl Engine {
    /// The entry `name` resumes with: `entry` itself, with its fingerprints brought up to
    /// date, or a rebuilt pipeline's new entry; an error when its state is unusable and it
    /// cannot be rebuilt. One marked [`Entry::rebuild_after`] (a view it reads was rebuilt,
    /// so its offsets and state are of a topic written again) is rebuilt whatever its plan.
    pub(crate) async fn reconcile_plan(
        &self,
        name: &str,
        mut entry: Entry,
        planned: &StreamPlan,
        sink: &SinkSpec,
    ) -> Result<Entry, SqlError> {
        let fingerprint = plan::fingerprint(&planned.graph);
        let layout = plan::state_layout(&planned.graph_with_sink(sink.clone()));
        if let Some(upstream) = entry.rebuild_after.clone() {
            let reason = format!("{upstream}, which it reads, was rebuilt");
            return match self.cannot_rebuild(name, &entry, planned) {
                Some(why) => Err(SqlError::Invalid(format!(
                    "{reason}; {why}: DROP {} {name} and CREATE it again",
                    kind_name(&entry)
                ))),
                None => self.rebuild(name, entry, fingerprint, layout, reason).await,
            };
        }
        let same_plan = entry
            .plan_fingerprint
            .as_ref()
            .is_none_or(|f| *f == fingerprint);
        if same_plan {
            if entry.state_layout.as_ref() != Some(&layout) {
                // The same graph wrote this state, so its layout is the one this version
                // prints for it: written before layouts were stored, or printed otherwise
                // since (a join's time bounds no longer are part of it). Stored now, so a
                // later plan change compares against what this version computes.
                entry.state_layout = Some(layout);
                self.catalog.put(name, entry.clone()).await?;
            }
            return Ok(entry);
        }
        if entry.state_layout.as_ref() == Some(&layout) {
            tracing::info!(
                name,
                "plan changed since CREATE, its state layout did not: resuming over its state"
            );
            entry.plan_fingerprint = Some(fingerprint);
            self.catalog.put(name, entry.clone()).await?;
            return Ok(entry);
        }
        let held = self.operator_state(entry.id).await?;
        if held.is_empty() {
            tracing::warn!(
                name,
                "plan changed since CREATE; its checkpoint holds only source offsets: \
                 resuming from them with the new plan"
            );
            entry.plan_fingerprint = Some(fingerprint);
            entry.state_layout = Some(layout);
            self.catalog.put(name, entry.clone()).await?;
            return Ok(entry);
        }
        let reason = format!(
            "plan changed since CREATE (this version of Weir plans it differently) and its \
             checkpointed state (of operators {held:?}) was written for the old plan"
        );
        if let Some(why) = self.cannot_rebuild(name, &entry, planned) {
            return Err(SqlError::Invalid(format!(
                "{reason}; {why}: DROP {} {name} and CREATE it again",
                kind_name(&entry)
            )));
        }
        self.rebuild(name, entry, fingerprint, layout, reason).await
    }

    /// When `name` was created by a Weir that planned it with older [`PlanOptions`](crate::plan::PlanOptions) (before
    /// HOP aggregates sliced into panes, or before equal aggregates were shared) and its stored
    /// fingerprint or state layout is that plan's, that plan: such a pipeline resumes over its
    /// state as it was built, never rebuilt or refused for it.
    pub(crate) async fn as_created(
        self: &Arc<Self>,
        name: &str,
        entry: &Entry,
        planned: &StreamPlan,
        sink: &SinkSpec,
    ) -> Result<Option<(StreamPlan, SinkSpec, Option<SourceDef>)>, SqlError> {
        let Some(stored) = entry.plan_fingerprint.as_ref() else {
            return Ok(None);
        };
        if *stored == plan::fingerprint(&planned.graph)
            || entry.state_layout.as_ref()
                == Some(&plan::state_layout(&planned.graph_with_sink(sink.clone())))
        {
            return Ok(None);
        }
        let ttl = entry.options.get(crate::state_ttl::OPTION);
        for options in self.config.plan_options().older() {
            // A plan these options do not change is today's, which did not match.
            let Ok(old) = self
                .plan_entry_with(name, &entry.sql, ttl.map(String::as_str), options)
                .await
            else {
                continue;
            };
            let layout = plan::state_layout(&old.0.graph_with_sink(old.1.clone()));
            if *stored == plan::fingerprint(&old.0.graph)
                || entry.state_layout.as_ref() == Some(&layout)
            {
                tracing::info!(
                    name,
                    ?options,
                    "created by a Weir that planned it otherwise: planned as then, over its state"
                );
                return Ok(Some(old));
            }
        }
        Ok(None)
    }

    /// Operator ids with committed entries in pipeline `id`'s state topic (the sources'
    /// excluded), sorted.
    async fn operator_state(&self, id: u64) -> Result<Vec<u16>, SqlError> {
        let topic = state_topic(id);
        let Ok(partition) = self.access().partition(&topic, 0) else {
            return Ok(Vec::new());
        };
        let entries = changelog::read(&topic, &partition)
            .await
            .map_err(|e| SqlError::Topic {
                topic: topic.clone(),
                message: e.to_string(),
            })?;
        let mut ops: Vec<u16> = entries
            .into_keys()
            .filter(|op| *op != changelog::SOURCES)
            .collect();
        ops.sort_unstable();
        Ok(ops)
    }

    /// Why `name`'s output cannot be rewritten exactly from its sources, if it cannot. A
    /// view is rebuilt with all that read it, which an append-only sink among them forbids
    /// (an upsert sink among them is judged by its own plan at its turn).
    fn cannot_rebuild(&self, name: &str, entry: &Entry, planned: &StreamPlan) -> Option<String> {
        if entry.kind == VIEW {
            let appending: Vec<String> = self
                .cascade_order(name)
                .into_iter()
                .filter(|r| {
                    self.catalog
                        .get(r)
                        .is_some_and(|e| e.kind == crate::pipelines::SINK && !is_upsert(&e))
                })
                .collect();
            return (!appending.is_empty()).then(|| {
                format!(
                    "the append-only sinks {} read its topic (directly or through views), so \
                     it cannot be emptied and rebuilt with them",
                    appending.join(", ")
                )
            });
        }
        if !is_upsert(entry) {
            return Some(
                "an append-only sink cannot be rebuilt from its sources without writing its \
                 rows to its topic again"
                    .into(),
            );
        }
        if !sink_options(entry).contains_key("primary_key") && !planned.hidden.is_empty() {
            return Some(
                "its records are keyed by hidden columns of the old plan, which a rebuild \
                 would key otherwise"
                    .into(),
            );
        }
        None
    }

    /// Rebuilds `name` from its sources under a new id (see the module's doc).
    async fn rebuild(
        &self,
        name: &str,
        mut entry: Entry,
        fingerprint: String,
        layout: String,
        reason: String,
    ) -> Result<Entry, SqlError> {
        let old = entry.id;
        // Fences the old run's producer: an epoch open at a crash is aborted now, not at its
        // transaction timeout, so read_committed readers of the output are not held back.
        if let Err(e) =
            weir_stream::txn::EpochTxn::init(self.access(), transactional_id(old), FENCE_TIMEOUT_MS)
                .await
        {
            tracing::warn!(name, error = %e, "cannot fence the rebuilt pipeline's old producer");
        }
        // A view's topic is its contents: emptied, then written again by the new run
        // (re-created with the view's settings before it starts). What reads it is marked
        // first, so it is rebuilt too even if this start fails before its turn.
        if entry.kind == VIEW {
            for reader in self.cascade_order(name) {
                let Some(mut e) = self.catalog.get(&reader) else {
                    continue;
                };
                if e.kind == VIEW || e.kind == crate::pipelines::SINK {
                    e.rebuild_after = Some(name.to_string());
                    self.catalog.put(&reader, e).await?;
                }
            }
            let topic = entry.options.get("topic").map_or(name, String::as_str);
            delete_topic(self, topic).await?;
        }
        let now = crate::append::now_ms();
        let at = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(now)
            .map_or_else(
                || now.to_string(),
                |t| format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")),
            );
        entry.id = self.catalog.next_id();
        entry.rebuild_after = None;
        entry.plan_fingerprint = Some(fingerprint);
        entry.state_layout = Some(layout);
        entry.state_reset = Some(format!(
            "at {at}: {reason}; rebuilt from its sources' start positions"
        ));
        self.catalog.put(name, entry.clone()).await?;
        tracing::warn!(
            name,
            old_id = old,
            new_id = entry.id,
            reason = %reason,
            "state reset: rebuilding the pipeline from its sources"
        );
        delete_topic(self, &state_topic(old)).await?;
        Ok(entry)
    }
}

fn kind_name(entry: &Entry) -> &'static str {
    if entry.kind == VIEW {
        "MATERIALIZED VIEW"
    } else {
        "SINK"
    }
}

/// The `WITH` options of the sink `entry` defines (none for another entry).
fn sink_options(entry: &Entry) -> std::collections::BTreeMap<String, String> {
    match crate::parser::parse(&entry.sql)
        .ok()
        .and_then(|mut s| s.pop())
    {
        Some(crate::parser::WeirStatement::CreateSink(k)) => k.options,
        _ => Default::default(),
    }
}

/// Whether the sink `entry` defines is an upsert sink (`WITH (type = 'upsert')`).
fn is_upsert(entry: &Entry) -> bool {
    sink_options(entry)
        .get("type")
        .is_some_and(|t| t.eq_ignore_ascii_case("upsert"))
}

async fn delete_topic(engine: &Engine, topic: &str) -> Result<(), SqlError> {
    match engine.state.delete_topic(topic).await {
        Ok(_) | Err(AdminError::UnknownTopic(_)) => Ok(()),
        Err(e) => Err(SqlError::Topic {
            topic: topic.to_string(),
            message: e.to_string(),
        }),
    }
}
