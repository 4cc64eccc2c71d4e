//! A node of the metadata quorum (§4.5): the metadata log and state machine under openraft,
//! the internal listener, formation, the active-controller loop and the broker lifecycle.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InitializeError, RaftError};
use openraft::{ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use weir_metadata::{ControllerConfig, ControllerReply, ControllerRequest, MetadataImage};

use crate::network::Network;
use crate::server::DataPlane;
use crate::state_machine::{Applied, StateMachine};
use crate::types::{ControllerError, NodeId, NodeInfo, Raft};
use crate::wire::{keys, CallError, Committed, Forwarded, Hello, Peers, Purpose, RemoteFailure};
use crate::LogStore;

/// A node's static configuration (the keys of §8.1).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `node.id`.
    pub node_id: NodeId,
    /// `controller.quorum.voters`: each voter's internal listener. A voter's own entry is
    /// where it listens.
    pub voters: BTreeMap<NodeId, String>,
    /// `weir.internal.listen`: where a broker beyond the voters (an openraft learner,
    /// KRaft's observer) listens; `None` on a voter.
    pub internal_listen: Option<String>,
    /// The client (Kafka) listener this broker advertises.
    pub client_endpoint: (String, u16),
    /// Further listeners advertised in the registration beside `PLAINTEXT` and `INTERNAL`
    /// (the SQL listener, `SQL`, which other brokers forward SQL connections to).
    pub extra_endpoints: Vec<weir_metadata::Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `controller.quorum.election.timeout.ms`: openraft's minimum election timeout.
    pub election_timeout_ms: u64,
    /// The active controller's settings (`broker.session.timeout.ms`, defaults of
    /// CreateTopics, `unclean.leader.election.enable`).
    pub controller: ControllerConfig,
    pub snapshots: SnapshotPolicyConfig,
}

/// When the metadata log is snapshotted and purged (§4.1; tests make it small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicyConfig {
    /// A snapshot is built once this many entries were applied since the last one.
    pub every_entries: u64,
    /// Entries kept in the log below the snapshot (lagging followers catch up from the log
    /// instead of a snapshot).
    pub keep_entries: u64,
}

impl Default for SnapshotPolicyConfig {
    fn default() -> Self {
        SnapshotPolicyConfig {
            every_entries: 5000,
            keep_entries: 1000,
        }
    }
}

/// This broker's registration as the lifecycle task knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerState {
    /// The broker epoch of the current registration; `None` until registered.
    pub epoch: Option<i64>,
    pub fenced: bool,
}

/// A heartbeat the active controller answered: what the broker's lease (design §4.9) is
/// renewed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// When the heartbeat was sent (before its first attempt).
    pub sent_at: std::time::Instant,
    /// The controller's answer.
    pub fenced: bool,
    /// This node's applied index when the answer arrived (at least the entry the
    /// controller decided it on: `submit` waits for that).
    pub applied_index: u64,
}

/// Controlled shutdown (§4.7 step 4) as the lifecycle task drives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlledShutdown {
    /// Not asked for.
    Running,
    /// Heartbeats say `want_shutdown`; the controller moves this broker's leaderships to
    /// other ISR members and takes it out of every ISR.
    Requested,
    /// The controller answered `should_shut_down`: this broker leads nothing (a partition
    /// whose only ISR member it was went leaderless, as in KRaft), and the records saying
    /// so are applied on this node.
    Done,
    /// No controller answered a shutdown heartbeat within a session: nothing can move
    /// leaderships, so waiting longer helps no one.
    Unanswered,
    /// This broker never registered: it leads nothing the controller would move.
    NotRegistered,
}

/// One voter as the active controller sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterInfo {
    pub id: NodeId,
    pub internal: String,
    /// The end of its log known to match the leader's (last matched index + 1).
    pub log_end: Option<u64>,
    /// Entries it lags behind the leader's log end.
    pub lag: Option<u64>,
}

/// The quorum as one node sees it; the active controller's view has the voters' log ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumInfo {
    pub node: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// This node's log end (last log index + 1).
    pub log_end: u64,
    pub committed_end: u64,
    pub voters: Vec<VoterInfo>,
    /// The learners (brokers beyond the voters: KRaft's observers), as the voters are.
    #[serde(default)]
    pub observers: Vec<VoterInfo>,
}

pub(crate) struct Queued {
    pub(crate) request: ControllerRequest,
    pub(crate) reply: oneshot::Sender<Result<Committed, RemoteFailure>>,
}

pub(crate) struct NodeInner {
    pub(crate) id: NodeId,
    pub(crate) config: NodeConfig,
    /// This node's internal listener as it registers it (the configured host, the bound
    /// port).
    pub(crate) internal: String,
    pub(crate) raft: Raft,
    pub(crate) sm: StateMachine,
    pub(crate) store: LogStore,
    pub(crate) peers: Arc<Peers>,
    pub(crate) incarnation: uuid::Uuid,
    pub(crate) queue: mpsc::UnboundedSender<Queued>,
    pub(crate) queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    /// Whether the active-controller loop is draining `queue` (set by `active::lead` once it
    /// serves). A restarted node that led before the crash believes it still leads until
    /// the real leader reaches it; requests queued meanwhile would wait out
    /// `FORWARD_TTL` (a restarted broker's registration took 5 s), so they are refused
    /// and retried instead.
    pub(crate) serving: std::sync::atomic::AtomicBool,
    pub(crate) broker: watch::Sender<BrokerState>,
    /// The last answered heartbeat of the current registration (None before one, and
    /// again while registering anew): the broker's lease follows it.
    pub(crate) heartbeats: watch::Sender<Option<HeartbeatAnswer>>,
    /// Set by [`Node::controlled_shutdown`], advanced by the lifecycle task: a watch, so
    /// the request wakes the heartbeat loop at once and the caller waits for the outcome.
    pub(crate) shutdown: watch::Sender<ControlledShutdown>,
    pub(crate) data_plane: std::sync::RwLock<Option<Arc<dyn DataPlane>>>,
}

/// A running node. Dropping it does not stop it: call [`Node::shutdown`].
pub struct Node {
    inner: Arc<NodeInner>,
    local_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// How long `submit` keeps retrying before the quorum counts as unavailable.
const SUBMIT_DEADLINE: Duration = Duration::from_secs(15);
/// The fresh connection [`Node::gone`] makes to a suspect.
const GONE_PROBE: Duration = Duration::from_millis(100);
/// A forwarded request's budget on one attempt.
const FORWARD_TTL: Duration = Duration::from_secs(5);
/// Formation asks the peers this long whether one of them is initialized (§4.5).
const FORMATION_PROBE: Duration = Duration::from_secs(5);

impl Node {
    /// Opens the metadata log and state machine under `<data_dir>/meta`, binds the internal
    /// listener on this node's voter entry (`weir.internal.listen` on a broker beyond the
    /// voters), starts openraft and the node's tasks. A voter that never logged anything
    /// forms the quorum (§4.5); a broker beyond the voters never does: it registers through
    /// the voters and the active controller adds it as a learner.
    pub async fn start(config: NodeConfig, data_dir: &Path) -> Result<Node, ControllerError> {
        let id = config.node_id;
        let voter = config.voters.contains_key(&id);
        let own = config
            .voters
            .get(&id)
            .or(config.internal_listen.as_ref())
            .cloned()
            .ok_or_else(|| {
                ControllerError::Config(format!(
                    "node.id {id} is not one of controller.quorum.voters and weir.internal.listen is not set"
                ))
            })?;
        let meta = data_dir.join("meta");
        std::fs::create_dir_all(&meta)
            .map_err(|e| ControllerError::io(format!("creating {}", meta.display()), e))?;
        let store = {
            let meta = meta.clone();
            tokio::task::spawn_blocking(move || LogStore::open(&meta))
                .await
                .map_err(|e| ControllerError::Raft(e.to_string()))??
        };
        let sm = StateMachine::open(&meta)?;
        let listener = TcpListener::bind(&own)
            .await
            .map_err(|e| ControllerError::io(format!("binding the internal listener {own}"), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| ControllerError::io("internal listener address", e))?;
        let internal = match own.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{}", local_addr.port()),
            None => local_addr.to_string(),
        };

        let raft_config = openraft::Config {
            cluster_name: "weir".into(),
            // Well inside the election timeout, whatever it is set to.
            heartbeat_interval: (config.election_timeout_ms / 4).clamp(10, 250),
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms.saturating_mul(2),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshots.every_entries),
            max_in_snapshot_log_to_keep: config.snapshots.keep_entries,
            purge_batch_size: 1,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| ControllerError::Config(e.to_string()))?;

        let incarnation = uuid::Uuid::new_v4();
        let hello = {
            let store = store.clone();
            let sm = sm.clone();
            move || Hello {
                cluster_id: sm.image().cluster_id().map(str::to_string),
                node_id: id,
                incarnation,
                initialized: !store.is_pristine(),
            }
        };
        let resolve = {
            let sm = sm.clone();
            move |target: NodeId| internal_endpoint(&sm.image(), target)
        };
        let peers =
            Arc::new(Peers::new(id, config.voters.clone(), hello).with_resolver(Box::new(resolve)));
        let pristine = store.is_pristine();
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            Network::new(peers.clone()),
            store.clone(),
            sm.clone(),
        )
        .await
        .map_err(|e| ControllerError::Raft(e.to_string()))?;
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let (broker, _) = watch::channel(BrokerState::default());
        let inner = Arc::new(NodeInner {
            id,
            config,
            internal,
            raft,
            sm,
            store,
            peers,
            incarnation,
            queue,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            serving: std::sync::atomic::AtomicBool::new(false),
            broker,
            heartbeats: watch::channel(None).0,
            shutdown: watch::Sender::new(ControlledShutdown::Running),
            data_plane: std::sync::RwLock::new(None),
        });
        let mut tasks = vec![
            tokio::spawn(crate::server::serve(listener, inner.clone())),
            tokio::spawn(crate::active::run(inner.clone())),
            tokio::spawn(crate::lifecycle::run(inner.clone())),
            tokio::spawn(crate::elect::run(inner.clone())),
        ];
        if pristine && voter {
            tasks.push(tokio::spawn(form(inner.clone())));
        }
        tracing::info!(node = id, internal = %local_addr, voter, voters = ?inner.config.voters, "metadata quorum node started");
        Ok(Node {
            inner,
            local_addr,
            tasks: Mutex::new(tasks),
        })
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The internal listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Installs the broker's data-plane keys (replica Fetch) on the internal listener.
    pub fn set_data_plane(&self, hook: Arc<dyn DataPlane>) {
        *self
            .inner
            .data_plane
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// One data-plane request to `target`'s internal listener (its voters entry), on the
    /// connection of `purpose` (one call at a time per connection): the answer's body.
    pub async fn data_call(
        &self,
        target: NodeId,
        purpose: Purpose,
        key: i16,
        version: i16,
        body: &[u8],
        ttl: Duration,
    ) -> Result<bytes::Bytes, CallError> {
        self.inner
            .peers
            .call_raw(target, purpose, key, version, body, ttl)
            .await
    }

    /// The image as of the last applied entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.sm.image()
    }

    /// The index of the last entry applied on this node (0 before any): what
    /// [`Node::subscribe`] has delivered or is about to.
    pub fn applied_index(&self) -> u64 {
        self.inner.sm.applied().borrow().0.saturating_sub(1)
    }

    /// Every entry applied from now on, in order, never skipped.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Applied> {
        self.inner.sm.subscribe()
    }

    /// This broker's registration.
    pub fn broker_state(&self) -> watch::Receiver<BrokerState> {
        self.inner.broker.subscribe()
    }

    /// Every heartbeat the active controller answers (None while registering): what the
    /// broker's lease is renewed from (design §4.9).
    pub fn heartbeat_answers(&self) -> watch::Receiver<Option<HeartbeatAnswer>> {
        self.inner.heartbeats.subscribe()
    }

    /// The nodes among `ids` whose process is gone: a connection to them failed or was
    /// refused lately ([`Peers::suspects`]) and their internal listener refuses a fresh
    /// connection now. A paused or cut-off node is never reported (it times out); only
    /// suspects are probed, so an idle cluster opens no connection here.
    pub async fn gone(&self, ids: &[NodeId]) -> Vec<NodeId> {
        let suspects = self.inner.peers.suspects();
        let mut out = Vec::new();
        for &id in ids {
            if id != self.inner.id
                && suspects.contains(&id)
                && self.inner.peers.refuses_now(id, GONE_PROBE).await
            {
                out.push(id);
            }
        }
        out
    }

    /// The active controller as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// openraft's metrics (for tests and `cluster info`).
    pub fn metrics(&self) -> watch::Receiver<openraft::RaftMetrics<NodeId, NodeInfo>> {
        self.inner.raft.metrics()
    }

    /// Sends `request` to the active controller and returns its reply once the entry
    /// carrying its records is committed and applied on this node (so what this broker
    /// reads next includes it).
    pub async fn submit(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, ControllerError> {
        self.inner.submit(request, SUBMIT_DEADLINE).await
    }

    /// The quorum with the voters' log ends, asked of the active controller (this node's
    /// own view when none answers).
    pub async fn describe_quorum(&self) -> QuorumInfo {
        self.inner.describe_quorum().await
    }

    /// Controlled shutdown (Kafka's `want_shut_down` heartbeat): asks the active
    /// controller to move every leadership of this broker to another ISR member and to
    /// take it out of every ISR, and waits, at most `bound`, until it says this broker may
    /// stop. Returns how it ended (`Requested`: the bound passed first). The broker keeps
    /// serving meanwhile; call [`Node::shutdown`] afterwards.
    pub async fn controlled_shutdown(&self, bound: Duration) -> ControlledShutdown {
        if self.inner.broker.borrow().epoch.is_none() {
            return ControlledShutdown::NotRegistered;
        }
        self.inner.shutdown.send_if_modified(|s| {
            let start = *s == ControlledShutdown::Running;
            if start {
                *s = ControlledShutdown::Requested;
            }
            start
        });
        let mut rx = self.inner.shutdown.subscribe();
        let ended = rx.wait_for(|s| {
            !matches!(
                s,
                ControlledShutdown::Running | ControlledShutdown::Requested
            )
        });
        let ended = tokio::time::timeout(bound, ended).await;
        match ended {
            Ok(Ok(state)) => *state,
            _ => ControlledShutdown::Requested,
        }
    }

    /// Stops openraft and every task of the node; the listener closes.
    pub async fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in &tasks {
            t.abort();
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        for t in tasks {
            let _ = t.await;
        }
        // Written indexes make the next open a clean one; the log is always scanned at
        // open anyway, so a crash before this loses nothing.
        let store = self.inner.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.log().close()).await;
        if let Ok(Err(e)) = closed {
            tracing::warn!(error = %e, "closing the metadata log");
        }
    }

    #[cfg(test)]
    pub(crate) fn store(&self) -> &LogStore {
        &self.inner.store
    }

    /// Resolves when openraft stopped with a fatal error (a poisoned metadata log): the
    /// process must exit, since continuing could lose a vote.
    pub async fn fatal(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Err(e) = &metrics.borrow().running_state {
                return e.to_string();
            }
            if metrics.changed().await.is_err() {
                return "raft stopped".into();
            }
        }
    }
}

impl NodeInner {
    pub(crate) fn data_plane(&self) -> Option<Arc<dyn DataPlane>> {
        self.data_plane
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn hello(&self) -> Hello {
        Hello {
            cluster_id: self.sm.image().cluster_id().map(str::to_string),
            node_id: self.id,
            incarnation: self.incarnation,
            initialized: !self.store.is_pristine(),
        }
    }

    /// Whether this node is one of `controller.quorum.voters` (else an openraft learner).
    pub(crate) fn is_voter(&self) -> bool {
        self.config.voters.contains_key(&self.id)
    }

    fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Decides a request here if this node is the active controller.
    pub(crate) async fn decide(
        &self,
        request: ControllerRequest,
    ) -> Result<Committed, RemoteFailure> {
        let serving = self.serving.load(std::sync::atomic::Ordering::Acquire);
        if !(serving && self.is_leader()) {
            return Err(RemoteFailure::NotController {
                leader_hint: self.raft.metrics().borrow().current_leader,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(crate::node::Queued { request, reply })
            .map_err(|_| RemoteFailure::Unavailable("the controller loop stopped".into()))?;
        match tokio::time::timeout(FORWARD_TTL, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(RemoteFailure::Unavailable("the request was dropped".into())),
            Err(_) => Err(RemoteFailure::Unavailable(
                "the controller did not answer in time".into(),
            )),
        }
    }

    pub(crate) async fn submit(
        &self,
        request: ControllerRequest,
        budget: Duration,
    ) -> Result<ControllerReply, ControllerError> {
        let deadline = Instant::now() + budget;
        let mut last = String::from("no active controller");
        // A leader named by a voter that was asked instead.
        let mut hint: Option<NodeId> = None;
        let mut next_voter = 0usize;
        loop {
            let known = self.raft.metrics().borrow().current_leader;
            let leader = known.or(hint.take()).or_else(|| {
                // A broker beyond the voters hears of no leader until the active
                // controller made it a learner: it asks the voters in turn, and a voter
                // that does not lead names the one that does.
                if self.is_voter() {
                    return None;
                }
                let voters: Vec<NodeId> = self.config.voters.keys().copied().collect();
                let v = voters.get(next_voter % voters.len().max(1)).copied();
                next_voter = next_voter.wrapping_add(1);
                v
            });
            let attempt = match leader {
                Some(l) if l == self.id => Some(
                    self.decide(request.clone())
                        .await
                        .map_err(|e| e.to_string()),
                ),
                Some(l) => {
                    let fwd = Forwarded {
                        cluster_id: self.sm.image().cluster_id().map(str::to_string),
                        from: self.id,
                        request: request.clone(),
                    };
                    let ttl = FORWARD_TTL.min(deadline.saturating_duration_since(Instant::now()));
                    let answer: Result<Result<Committed, RemoteFailure>, CallError> = self
                        .peers
                        .call(l, Purpose::Controller, keys::CONTROLLER, &fwd, ttl)
                        .await;
                    Some(match answer {
                        Ok(Err(RemoteFailure::NotController { leader_hint })) => {
                            hint = leader_hint.filter(|h| *h != l && *h != self.id);
                            Err(format!("node {l} is not the active controller"))
                        }
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    })
                }
                None => None,
            };
            match attempt {
                Some(Ok(committed)) if is_unregistered(&committed.reply) => {
                    // An unregistered learner left the membership: no leader replicates
                    // to it any more, so it would never apply that far. The refusal
                    // changed nothing.
                    return Ok(committed.reply);
                }
                Some(Ok(committed)) => {
                    self.wait_applied(committed.index, deadline).await?;
                    return Ok(committed.reply);
                }
                Some(Err(e)) => last = e,
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ControllerError::QuorumUnavailable(last));
            }
            if hint.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Waits until this node applied the entry at `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), ControllerError> {
        let mut applied = self.sm.applied();
        let wait = applied.wait_for(|(next, _)| *next > index);
        let outcome = tokio::time::timeout_at(deadline.into(), wait)
            .await
            .map(|r| r.map(|_| ()));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ControllerError::QuorumUnavailable(
                "state machine closed".into(),
            )),
            Err(_) => Err(ControllerError::Timeout(format!(
                "entry {index} committed but not applied here in time"
            ))),
        }
    }

    /// This node's view of the quorum; the voters' log ends only if it leads.
    pub(crate) fn local_quorum(&self) -> QuorumInfo {
        let m = self.raft.metrics().borrow().clone();
        let log_end = m.last_log_index.map_or(0, |i| i + 1);
        let replication = m.replication.clone().unwrap_or_default();
        let leading = m.state == ServerState::Leader;
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        let info = |id: NodeId| {
            let matched = if id == self.id && leading {
                Some(log_end)
            } else {
                replication.get(&id).map(|l| l.map_or(0, |l| l.index + 1))
            };
            let internal = self
                .config
                .voters
                .get(&id)
                .cloned()
                .or_else(|| membership.get_node(&id).map(|n| n.internal.clone()))
                .unwrap_or_default();
            VoterInfo {
                id,
                internal,
                log_end: matched,
                lag: matched.map(|e| log_end.saturating_sub(e)),
            }
        };
        let observers = learners.into_iter().map(&info).collect();
        let voters = voters.into_iter().map(&info).collect();
        QuorumInfo {
            node: self.id,
            leader: m.current_leader,
            term: m.current_term,
            log_end,
            committed_end: m.last_applied.map_or(0, |l| l.index + 1),
            voters,
            observers,
        }
    }

    async fn describe_quorum(&self) -> QuorumInfo {
        let local = self.local_quorum();
        match local.leader {
            Some(l) if l != self.id => self
                .peers
                .call(
                    l,
                    Purpose::Controller,
                    keys::DESCRIBE_QUORUM,
                    &(),
                    FORWARD_TTL,
                )
                .await
                .unwrap_or(local),
            _ => local,
        }
    }
}

/// Formation (§4.5): a voter that never voted nor logged anything initializes the quorum
/// with every voter, unless a peer already did (then this one was late, or lost its log:
/// it joins as it is and the leader replicates to it). openraft makes concurrent
/// initialization with the same membership safe.
async fn form(inner: Arc<NodeInner>) {
    let deadline = Instant::now() + FORMATION_PROBE;
    let mut answered = BTreeSet::new();
    let peers = inner.peers.ids();
    while answered.len() < peers.len() && Instant::now() < deadline {
        for &peer in &peers {
            if answered.contains(&peer) {
                continue;
            }
            if let Ok(h) = inner.peers.hello(peer, Duration::from_millis(500)).await {
                if h.initialized {
                    tracing::info!(peer, "a peer already initialized the quorum; joining it");
                    return;
                }
                answered.insert(peer);
            }
        }
        if answered.len() < peers.len() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if !inner.store.is_pristine() {
        // A leader reached this node while it was asking.
        return;
    }
    let members: BTreeMap<NodeId, NodeInfo> = inner
        .config
        .voters
        .keys()
        .map(|id| (*id, NodeInfo::default()))
        .collect();
    match inner.raft.initialize(members).await {
        Ok(()) => {
            tracing::info!(voters = ?inner.config.voters.keys().collect::<Vec<_>>(), "metadata quorum initialized")
        }
        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
            tracing::info!(reason = %e, "metadata quorum already initialized")
        }
        Err(e) => tracing::error!(error = %e, "initializing the metadata quorum failed"),
    }
}

/// A registered broker's internal listener (its `INTERNAL` endpoint) in `image`.
pub(crate) fn internal_endpoint(image: &MetadataImage, id: NodeId) -> Option<String> {
    let broker = image.broker(i32::try_from(id).ok()?)?;
    internal_address(&broker.endpoints)
}

/// The `INTERNAL` endpoint of `endpoints` as `HOST:PORT`.
pub(crate) fn internal_address(endpoints: &[weir_metadata::Endpoint]) -> Option<String> {
    let e = endpoints.iter().find(|e| e.name == "INTERNAL")?;
    Some(if e.host.contains(':') {
        format!("[{}]:{}", e.host, e.port)
    } else {
        format!("{}:{}", e.host, e.port)
    })
}

/// A heartbeat refused because the registration is gone (UnregisterBroker).
fn is_unregistered(reply: &ControllerReply) -> bool {
    matches!(
        reply,
        ControllerReply::BrokerHeartbeat(Err(weir_metadata::MetadataError::BrokerIdNotRegistered(
            _
        )))
    )
}
