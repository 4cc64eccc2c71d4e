//! The engine and its pipelines (§7.1, §7.2). A pipeline is two tasks. Its [source
//! stage](stage) reads the source partitions round-robin and decodes each read, ahead of
//! the operators (in parallel with them on two or more engine threads); caught up, it parks
//! on its partitions (no task per partition: versions of those led here, one long poll per
//! leader of the others) until an append. The operator side applies each decoded read in order, pushes its rows
//! synchronously through the fused graph into the sinks' buffers, appends them in the
//! epoch's transaction, and every checkpoint interval sends barrier N from every source,
//! writes the positions of the reads it applied and the watermarks as operator 0's state
//! and commits. Every partition and transaction call goes through
//! `weir_broker::partition_access`, so a pipeline's partitions may be led by any broker of a
//! cluster.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use weir_broker::partition_access::{PartitionAccess, PartitionHandle};
use weir_broker::state::{AdminError, State};

use crate::checkpoint::{state_topic, transactional_id, Counters, SourceState};
use crate::error::StreamError;
use crate::format::now_ms;
use crate::graph::{Graph, NodeSpec, TtlTime};
use crate::message::Message;
use crate::sink::SinkOp;
use crate::source::dedup::Dedup;

mod node;
mod source_rt;
mod stage;
use crate::state::changelog;
use crate::txn::EpochTxn;
use node::Node;
use source_rt::{SourceRt, Tally};
use stage::{Fetched, SourceStage};

/// The engine's settings (`weir.sql.*` keys map onto them).
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Worker threads of the engine's own runtime (`weir.sql.threads`).
    pub threads: usize,
    /// `weir.sql.checkpoint.interval.ms`.
    pub checkpoint_interval: Duration,
    /// `weir.sql.pipeline.memory.max.bytes`: checked after every batch.
    pub memory_max_bytes: usize,
    pub transaction_timeout_ms: i32,
    /// Bytes per source partition read.
    pub read_max_bytes: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            threads: 1,
            checkpoint_interval: Duration::from_secs(1),
            memory_max_bytes: 256 << 20,
            transaction_timeout_ms: 60_000,
            read_max_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PipelineStatus {
    /// Fencing the previous run and reading state.
    #[default]
    Recovering,
    Running,
    Stopped,
    /// The epoch was aborted and the pipeline stopped; the broker and other pipelines go on.
    Failed(String),
}

impl PipelineStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, PipelineStatus::Stopped | PipelineStatus::Failed(_))
    }
}

impl fmt::Display for PipelineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineStatus::Recovering => write!(f, "recovering"),
            PipelineStatus::Running => write!(f, "running"),
            PipelineStatus::Stopped => write!(f, "stopped"),
            PipelineStatus::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What a pipeline has committed, published after every commit.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub status: PipelineStatus,
    /// The last committed epoch.
    pub epoch: u64,
    /// Committed next offset per source (topic, partition).
    pub offsets: HashMap<(String, i32), i64>,
    /// Committed watermark per source topic.
    pub watermarks: HashMap<String, i64>,
    /// Records the decoders refused (each dead-lettered when its source has a dead-letter
    /// topic). This and the counters below count since the pipeline was created: they are
    /// checkpointed ([`crate::checkpoint::Counters`]).
    pub decode_failures: u64,
    /// Records appended to sinks in committed epochs.
    pub records_out: u64,
    /// Rows dropped as late: behind their source's watermark when read, or for a window
    /// that had closed ([`late`]).
    pub late_rows: u64,
    /// Late rows written to their source's dead-letter topic.
    pub late_dead_lettered: u64,
    /// Rows dropped as duplicates by their source's `dedup.key` (never dead-lettered).
    pub duplicate_rows: u64,
    /// Values whose expression failed on their row (a bad cast, a division by zero): NULL
    /// instead, or the row dropped where NULL cannot go ([`crate::ops::eval`]).
    pub expression_errors: u64,
    /// The last such failure's text since the pipeline started (not checkpointed).
    pub last_expression_error: Option<String>,
    /// Bytes of operator state held at the last commit, and the pipeline's budget.
    pub state_bytes: usize,
    pub memory_max_bytes: usize,
}

pub struct Engine {
    access: PartitionAccess,
    config: StreamConfig,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Engine {
    /// Starts the engine's runtime. The broker must have recovered its transactions first
    /// (the engine never meets a transaction still being decided).
    pub fn start(state: Arc<State>, config: StreamConfig) -> Result<Engine, StreamError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("weir-stream")
            .enable_all()
            .build()
            .map_err(StreamError::Runtime)?;
        Ok(Engine {
            access: PartitionAccess::new(state),
            config,
            runtime: Some(runtime),
        })
    }

    /// Starts pipeline `id` (its transactional id and state topic derive from it): recovery
    /// first, then epochs until stopped or failed.
    pub fn run_pipeline(&self, id: u64, graph: Graph) -> Result<PipelineHandle, StreamError> {
        graph.validate()?;
        let mut sources = Vec::new();
        for node in &graph.nodes {
            if let NodeSpec::Source(s) = node {
                sources.extend(
                    partitions(&self.access, &s.topic)?
                        .into_iter()
                        .map(|p| (s.topic.clone(), p)),
                );
            }
        }
        let (progress_tx, progress) = watch::channel(Progress::default());
        let (stop, stop_rx) = watch::channel(false);
        let (access, config) = (self.access.clone(), self.config.clone());
        let handle = self
            .runtime
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or(StreamError::Stopped)?;
        let task = handle.spawn(async move {
            let tx = progress_tx.clone();
            let run = handle_inner(id, graph, access, config, progress_tx, stop_rx);
            let outcome = tokio::spawn(run).await;
            if let Err(join) = outcome {
                let e = StreamError::Panicked(join.to_string());
                tracing::error!(pipeline = id, error = %e, "pipeline failed");
                tx.send_modify(|p| p.status = PipelineStatus::Failed(e.to_string()));
            }
        });
        Ok(PipelineHandle {
            id,
            progress,
            stop,
            sources,
            task: Some(task),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Tasks are dropped where they stand, as in a crash: an open epoch stays open until
        // the next run's init aborts it.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Source `s` of a pipeline and its node's deduplication, if it declares one.
fn source_and_dedup<'a>(
    sources: &'a mut [SourceRt],
    nodes: &'a mut [Node],
    s: usize,
) -> Option<(&'a mut SourceRt, Option<&'a mut Dedup>)> {
    let src = sources.get_mut(s)?;
    let dedup = match nodes.get_mut(src.node) {
        Some(Node::Source(Some(d))) => Some(d.as_mut()),
        _ => None,
    };
    Some((src, dedup))
}

fn partitions(access: &PartitionAccess, topic: &str) -> Result<Vec<PartitionHandle>, StreamError> {
    access
        .partitions(topic)
        .map_err(|_| StreamError::UnknownTopic(topic.to_string()))
}

/// Runs the pipeline and turns an error into an aborted epoch and a failed status.
async fn handle_inner(
    id: u64,
    graph: Graph,
    access: PartitionAccess,
    config: StreamConfig,
    progress: watch::Sender<Progress>,
    stop: watch::Receiver<bool>,
) {
    let mut pipeline = match Pipeline::open(id, graph, access, config, progress.clone(), stop).await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(pipeline = id, error = %e, "pipeline failed to start");
            progress.send_modify(|p| p.status = PipelineStatus::Failed(e.to_string()));
            return;
        }
    };
    match pipeline.run().await {
        Ok(()) => progress.send_modify(|p| p.status = PipelineStatus::Stopped),
        Err(e) => {
            tracing::error!(pipeline = id, error = %e, "pipeline failed; aborting its epoch");
            if let Err(abort) = pipeline.txn.abort().await {
                tracing::error!(pipeline = id, error = %abort, "aborting the epoch failed");
            }
            progress.send_modify(|p| p.status = PipelineStatus::Failed(e.to_string()));
        }
    }
}

/// A running pipeline.
pub struct PipelineHandle {
    pub id: u64,
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    sources: Vec<(String, PartitionHandle)>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl PipelineHandle {
    pub fn status(&self) -> PipelineStatus {
        self.progress.borrow().status.clone()
    }

    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Commits what has been processed and stops.
    pub async fn stop(&mut self) -> PipelineStatus {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.status()
    }

    /// Waits until every source partition's committed offset reached its last stable offset
    /// as of this call; the status if the pipeline ended first.
    pub async fn wait_caught_up(&mut self) -> Result<(), PipelineStatus> {
        let mut targets: Vec<((String, i32), i64)> = Vec::new();
        for (t, p) in &self.sources {
            // A partition whose offsets cannot be asked now (its leader moving) is waited
            // for up to the offset the pipeline has.
            let stable = match p.watermarks().await {
                Ok(w) => w.last_stable_offset,
                Err(_) => 0,
            };
            targets.push(((t.clone(), p.index()), stable));
        }
        let done = |p: &Progress| {
            p.status.is_terminal()
                || targets
                    .iter()
                    .all(|(k, target)| p.offsets.get(k).is_some_and(|o| o >= target))
        };
        let status = match self.progress.wait_for(done).await {
            Ok(p) => Some(p.status.clone()),
            Err(_) => None,
        };
        let status = status.unwrap_or_else(|| self.status());
        if status.is_terminal() {
            return Err(status);
        }
        Ok(())
    }
}

struct Pipeline {
    id: u64,
    config: StreamConfig,
    nodes: Vec<Node>,
    /// Per node, its outputs' (node, port).
    outputs: Vec<Vec<(usize, usize)>>,
    sources: Vec<SourceRt>,
    /// Taken when the pipeline runs.
    stage: Option<SourceStage>,
    txn: EpochTxn,
    state_topic: String,
    state_partition: PartitionHandle,
    epoch: u64,
    /// Something to commit: rows, offsets or watermarks moved since the last commit.
    dirty: bool,
    progress: watch::Sender<Progress>,
    stop: watch::Receiver<bool>,
    decode_failures: u64,
    /// Rows behind their source's watermark when read, dropped (with those window operators
    /// dropped before this run: theirs count from 0 in each run, see `late_total`).
    late_rows: u64,
    /// Of those, the ones written to their source's dead-letter topic.
    late_dead_lettered: u64,
    /// Rows their source's deduplication dropped.
    duplicate_rows: u64,
    /// Values whose expression failed on their row ([`crate::ops::eval`]), and the last
    /// failure's text in this run.
    expression_errors: u64,
    last_expression_error: Option<String>,
    records_out: u64,
    /// Records appended to sinks in the open epoch.
    epoch_records: u64,
    /// The graph has an idle-state TTL of processing time: each checkpoint reads the clock.
    processing_ttl: bool,
}

impl Pipeline {
    async fn open(
        id: u64,
        graph: Graph,
        access: PartitionAccess,
        config: StreamConfig,
        progress: watch::Sender<Progress>,
        stop: watch::Receiver<bool>,
    ) -> Result<Pipeline, StreamError> {
        let topic = state_topic(id);
        // Topic admin is not partition access: the broker's own calls (the quorum's in a
        // cluster).
        let state: &Arc<State> = access.state();
        if state.topic(&topic).is_none() {
            // One entry's value is one record, and some grow with their group (a
            // count(DISTINCT)'s set of values: Nexmark q15 and q16 passed 1 MiB at 2 M
            // events): the memory budget bounds them, not the broker's default batch limit.
            let configs = [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("max.message.bytes".to_string(), i32::MAX.to_string()),
            ]
            .into();
            match state
                .create_topic(&topic, 1, state.default_replication(), configs)
                .await
            {
                // UnknownTopic: created in the cluster, with no replica on this broker.
                Ok(_) | Err(AdminError::TopicExists(_)) | Err(AdminError::UnknownTopic(_)) => {}
                Err(source) => return Err(StreamError::Admin { topic, source }),
            }
        }
        let state_partition = partitions(&access, &topic)?
            .into_iter()
            .next()
            .ok_or_else(|| StreamError::UnknownTopic(topic.clone()))?;
        // Fences the previous run and aborts its open epoch before the state is read, so
        // the state read is the last committed epoch's.
        let txn = EpochTxn::init(
            access.clone(),
            transactional_id(id),
            config.transaction_timeout_ms,
        )
        .await?;
        let mut entries = changelog::read(&topic, &state_partition).await?;
        let restored = SourceState::from_entries(
            &topic,
            &entries.remove(&changelog::SOURCES).unwrap_or_default(),
        )?;
        tracing::info!(
            pipeline = id,
            epoch = restored.epoch,
            "pipeline state restored"
        );

        let mut nodes = Vec::with_capacity(graph.nodes.len());
        let mut sources = Vec::new();
        let mut stage = Vec::new();
        // A partition without a checkpointed offset starts per `Startup`; that position is
        // committed by the first checkpoint even if nothing is read, so a restart does not
        // evaluate `Latest` again and skip what arrived in between.
        let mut fresh = false;
        for (i, spec) in graph.nodes.iter().enumerate() {
            let mut node = match spec {
                NodeSpec::Source(s) => {
                    let (src, part) =
                        SourceRt::open(i, s, &graph, &access, &restored, &config, &mut fresh)
                            .await?;
                    sources.push(src);
                    stage.push(part);
                    Node::Source(s.dedup.clone().map(|d| Box::new(Dedup::new(d))))
                }
                NodeSpec::Sink(s) => Node::Sink(SinkOp::new(
                    s.topic.clone(),
                    partitions(&access, &s.topic)?,
                    (s.encoder)(),
                    s.upsert,
                )),
                operator => Node::operator(&graph, i, operator)?,
            };
            if let Some(op) = node.stateful() {
                let restored = entries
                    .remove(&changelog::operator_id(i)?)
                    .unwrap_or_default();
                for (k, v) in &restored {
                    op.restore(k, v).map_err(StreamError::Codec)?;
                }
                let (n, bytes) = (restored.len(), op.state_bytes());
                tracing::info!(
                    pipeline = id,
                    node = i,
                    entries = n,
                    bytes,
                    "state restored"
                );
            }
            nodes.push(node);
        }
        if let Some(op) = entries.keys().next() {
            // State of an operator this graph does not have: the plan fingerprint should have
            // refused the graph before; never run over state of another layout.
            return Err(StreamError::State {
                topic,
                reason: format!("entries of operator {op}, which this pipeline does not have"),
            });
        }
        let processing_ttl =
            graph.state_ttl_ms.is_some() && graph.state_ttl_time == TtlTime::Processing;
        let outputs = (0..graph.nodes.len())
            .map(|i| graph.outputs(i).map(|e| (e.to, e.port)).collect())
            .collect();
        let checkpoint_interval = config.checkpoint_interval;
        let pipeline = Pipeline {
            id,
            config,
            nodes,
            outputs,
            sources,
            stage: Some(SourceStage {
                sources: stage,
                access: access.clone(),
                park: checkpoint_interval,
            }),
            txn,
            state_topic: topic,
            state_partition,
            epoch: restored.epoch,
            dirty: fresh,
            progress,
            stop,
            decode_failures: restored.counters.decode_failures,
            late_rows: restored.counters.late_rows,
            late_dead_lettered: restored.counters.late_dead_lettered,
            duplicate_rows: restored.counters.duplicate_rows,
            expression_errors: restored.counters.expression_errors,
            last_expression_error: None,
            records_out: restored.counters.records_out,
            epoch_records: 0,
            processing_ttl,
        };
        // Progress reports committed offsets: the restored ones until the first commit.
        let committed = restored
            .offsets
            .iter()
            .map(|(k, (o, _))| (k.clone(), *o))
            .collect();
        pipeline.progress.send_modify(|p| {
            p.status = PipelineStatus::Running;
            p.epoch = restored.epoch;
            p.offsets = committed;
            p.watermarks = restored.watermarks.clone();
            p.decode_failures = restored.counters.decode_failures;
            p.records_out = restored.counters.records_out;
            p.late_rows = restored.counters.late_rows;
            p.late_dead_lettered = restored.counters.late_dead_lettered;
            p.duplicate_rows = restored.counters.duplicate_rows;
            p.expression_errors = restored.counters.expression_errors;
        });
        Ok(pipeline)
    }

    fn publish(&self, status: PipelineStatus) {
        let offsets = self
            .sources
            .iter()
            .flat_map(|s| {
                s.readers
                    .iter()
                    .map(|r| ((s.topic.clone(), r.index()), r.next_offset))
            })
            .collect();
        let watermarks = self
            .sources
            .iter()
            .filter_map(|s| s.emitted.map(|w| (s.topic.clone(), w)))
            .collect();
        let (epoch, decode_failures, records_out) =
            (self.epoch, self.decode_failures, self.records_out);
        let late_rows = self.late_total();
        let (late_dead_lettered, duplicate_rows) = (self.late_dead_lettered, self.duplicate_rows);
        let state_bytes = self.state_bytes();
        let memory_max_bytes = self.config.memory_max_bytes;
        let expression_errors = self.expression_errors;
        let last_expression_error = self.last_expression_error.clone();
        self.progress.send_modify(|p| {
            p.expression_errors = expression_errors;
            p.last_expression_error = last_expression_error;
            p.state_bytes = state_bytes;
            p.memory_max_bytes = memory_max_bytes;
            p.status = status;
            p.epoch = epoch;
            p.offsets = offsets;
            p.watermarks = watermarks;
            p.decode_failures = decode_failures;
            p.late_rows = late_rows;
            p.late_dead_lettered = late_dead_lettered;
            p.duplicate_rows = duplicate_rows;
            p.records_out = records_out;
        });
    }

    async fn run(&mut self) -> Result<(), StreamError> {
        let stage = self
            .stage
            .take()
            .ok_or_else(|| StreamError::Graph("the pipeline ran twice".into()))?;
        let (mut stage, mut reads) = stage.spawn();
        let interval = self.config.checkpoint_interval;
        let mut deadline = Instant::now() + interval;
        loop {
            if *self.stop.borrow() {
                if self.dirty {
                    self.checkpoint().await?;
                }
                return Ok(());
            }
            // The next read, the next checkpoint, a caught-up partition turning idle, or
            // stop; reads already waiting are taken first.
            let mut wake = deadline;
            for s in &self.sources {
                if let Some(at) = s.next_idle_deadline() {
                    let ms = u64::try_from(at.saturating_sub(now_ms()).max(1)).unwrap_or(1);
                    wake = wake.min(Instant::now() + Duration::from_millis(ms));
                }
            }
            let mut stop = self.stop.clone();
            let read = tokio::select! {
                biased;
                read = reads.recv() => Some(read),
                _ = tokio::time::sleep_until(wake) => None,
                changed = stop.changed() => {
                    if changed.is_err() {
                        // The handle is gone: nobody can stop the pipeline or see it any
                        // more (and a closed channel would wake this loop at once).
                        self.stop_anyway();
                    }
                    None
                }
            };
            match read {
                Some(Some(Ok(fetched))) => {
                    self.apply(fetched).await?;
                    // Also after a read: a quiet source's partitions turn idle while another
                    // source keeps the channel full (the sleep above then never wins).
                    self.tick()?;
                }
                Some(Some(Err(e))) => return Err(e),
                Some(None) => return Err(StreamError::Panicked(stage.ended().await)),
                None => self.tick()?,
            }
            if Instant::now() >= deadline {
                // Idle, the clock still moves: a key written after a quiet hour gets its
                // deadline from a recent reading, and the keys that fell due are freed.
                // (Not dirty: nothing was read since the last barrier.)
                if !self.dirty && self.expire_idle() > 0 {
                    self.dirty = true;
                }
                if self.dirty {
                    self.checkpoint().await?;
                }
                deadline = Instant::now() + interval;
            }
        }
    }

    /// Applies one decoded read of a source partition: its rows go through the graph, its
    /// dead letters into the epoch's transaction.
    async fn apply(&mut self, fetched: Fetched) -> Result<(), StreamError> {
        let mut dead = Vec::new();
        let mut tally = Tally::default();
        let moved = fetched.moved;
        let Some((src, dedup)) =
            source_and_dedup(&mut self.sources, &mut self.nodes, fetched.source)
        else {
            return Ok(());
        };
        let Some(out) = src.apply(fetched, dedup, &mut tally, &mut dead).await? else {
            return Ok(());
        };
        let node = src.node;
        self.decode_failures += tally.decode_failures;
        self.late_rows += tally.late_rows;
        self.late_dead_lettered += tally.late_dead_lettered;
        self.duplicate_rows += tally.duplicate_rows;
        if moved || !out.messages.is_empty() {
            self.dirty = true;
        }
        if let (Some((topic, partition)), false) = (out.dead_letter, dead.is_empty()) {
            // In the epoch's transaction: a replay after a crash writes them once.
            self.txn.append(&topic, &partition, &dead).await?;
        }
        for m in out.messages {
            self.emit(node, m)?;
        }
        self.check_memory()?;
        self.flush_sinks(false).await
    }

    /// Stops at the next turn of the loop, as [`PipelineHandle::stop`] does.
    fn stop_anyway(&mut self) {
        let (tx, rx) = watch::channel(true);
        drop(tx);
        self.stop = rx;
    }

    /// The clock moved: caught-up partitions may turn idle, and watermarks move on past
    /// them.
    fn tick(&mut self) -> Result<(), StreamError> {
        for s in 0..self.sources.len() {
            let Some((src, dedup)) = source_and_dedup(&mut self.sources, &mut self.nodes, s) else {
                break;
            };
            if let Some(m) = src.tick(dedup) {
                let node = src.node;
                self.dirty = true;
                self.emit(node, m)?;
            }
        }
        Ok(())
    }

    /// Sends `msg` along every output of `node`.
    fn emit(&mut self, node: usize, msg: Message) -> Result<(), StreamError> {
        let outs = self.outputs.get(node).cloned().unwrap_or_default();
        for (to, port) in outs {
            self.deliver(to, port, msg.clone())?;
        }
        Ok(())
    }

    fn deliver(&mut self, node: usize, port: usize, msg: Message) -> Result<(), StreamError> {
        let mut out = Vec::new();
        match self.nodes.get_mut(node) {
            None | Some(Node::Source(_)) => {}
            Some(Node::Sink(sink)) => match msg {
                Message::Batch(b) => sink.push(&b)?,
                Message::Barrier(n) => sink.barrier = n,
                Message::Watermark(_) => {}
            },
            Some(op) => {
                // Whatever a panicked operator elsewhere left on this thread is not ours.
                crate::ops::eval::take();
                let done = op.process(port, msg, &mut out);
                // The operator ran synchronously on this thread: its failed values are
                // in the thread's tally now, and only its.
                let (failed, last) = crate::ops::eval::take();
                if failed > 0 {
                    self.expression_errors += failed;
                    self.last_expression_error = last;
                }
                done?;
            }
        }
        for m in out {
            self.emit(node, m)?;
        }
        Ok(())
    }

    /// Late rows since the pipeline was created: the sources' and this run's window
    /// operators'.
    fn late_total(&self) -> u64 {
        let windows: u64 = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Window(w) => w.dropped(),
                Node::Hop(w) => w.dropped(),
                Node::Session(w) => w.dropped(),
                _ => 0,
            })
            .sum();
        self.late_rows + windows
    }

    /// Bytes of operator state (not pending output).
    fn state_bytes(&self) -> usize {
        self.nodes.iter().map(Node::state_bytes).sum()
    }

    /// Fails the pipeline when what its operators hold exceeds the budget (§7.3).
    fn check_memory(&self) -> Result<(), StreamError> {
        let used: usize = self
            .nodes
            .iter()
            .map(|n| match n {
                Node::Union(a) => a.buffered_bytes(),
                Node::Sink(s) => s.pending_bytes(),
                Node::Aggregate(_)
                | Node::Window(_)
                | Node::Hop(_)
                | Node::Session(_)
                | Node::Join(..)
                | Node::TopN(_)
                | Node::RowId(_)
                | Node::IntervalJoin(..)
                | Node::Source(_) => n.state_bytes(),
                Node::Map(_) => 0,
            })
            .sum();
        let limit = self.config.memory_max_bytes;
        if used > limit {
            return Err(StreamError::MemoryBudget { used, limit });
        }
        Ok(())
    }

    /// With a processing-time TTL, reads the clock: operators free the keys idle for the
    /// TTL. Called only when no change is pending (after a barrier). How many were freed.
    fn expire_idle(&mut self) -> usize {
        if !self.processing_ttl {
            return 0;
        }
        let now = now_ms();
        let freed: usize = self.nodes.iter_mut().map(|n| n.expire_idle(now)).sum();
        if freed > 0 {
            tracing::debug!(pipeline = self.id, freed, "idle keys expired");
        }
        freed
    }

    /// Appends the sinks' pending records; upsert sinks' only at the barrier.
    async fn flush_sinks(&mut self, barrier: bool) -> Result<(), StreamError> {
        for node in &mut self.nodes {
            if let Node::Sink(sink) = node {
                if sink.pending_bytes() > 0 && (barrier || !sink.is_upsert()) {
                    self.epoch_records += sink.flush(&mut self.txn).await?;
                }
            }
        }
        Ok(())
    }

    /// Epoch N = this one: barrier N from every source, the sources' state, commit.
    async fn checkpoint(&mut self) -> Result<(), StreamError> {
        let n = self.epoch + 1;
        let nodes: Vec<usize> = self.sources.iter().map(|s| s.node).collect();
        for node in nodes {
            self.emit(node, Message::Barrier(n))?;
        }
        for node in &self.nodes {
            if let Node::Sink(s) = node {
                if s.barrier != n {
                    return Err(StreamError::Graph(format!(
                        "barrier {n} did not reach sink {} (it saw {})",
                        s.topic, s.barrier
                    )));
                }
            }
        }
        self.flush_sinks(true).await?;
        // After the barrier, so no aggregate holds a pending change of a key it frees; the
        // freed keys' deletions go into this epoch's changes below.
        self.expire_idle();
        let mut state = SourceState {
            epoch: n,
            counters: Counters {
                decode_failures: self.decode_failures,
                records_out: self.records_out + self.epoch_records,
                late_rows: self.late_total(),
                late_dead_lettered: self.late_dead_lettered,
                duplicate_rows: self.duplicate_rows,
                expression_errors: self.expression_errors,
            },
            ..SourceState::default()
        };
        for s in &self.sources {
            for (k, r) in s.readers.iter().enumerate() {
                let max = s.watermark.as_ref().and_then(|(_, t)| t.max_event_time(k));
                state
                    .offsets
                    .insert((s.topic.clone(), r.index()), (r.next_offset, max));
            }
            if let Some(w) = s.emitted {
                state.watermarks.insert(s.topic.clone(), w);
            }
        }
        let now = now_ms();
        let mut records = state.records(now);
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(op) = node.stateful() {
                let id = changelog::operator_id(i)?;
                let changes = op.take_changes().map_err(StreamError::Codec)?;
                records.extend(changes.into_iter().map(|c| changelog::record(id, c, now)));
            }
        }
        let partition = self.state_partition.clone();
        self.txn
            .append(&self.state_topic, &partition, &records)
            .await?;
        self.txn.commit().await?;
        self.epoch = n;
        self.dirty = false;
        self.records_out += std::mem::take(&mut self.epoch_records);
        tracing::debug!(pipeline = self.id, epoch = n, "epoch committed");
        self.publish(PipelineStatus::Running);
        Ok(())
    }
}
