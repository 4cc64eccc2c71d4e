//! `weir serve` in cluster mode: the metadata-quorum node beside the broker, and the
//! `WeirDescribeCluster` answer it gives `weir cluster info` (the JSON shape both share).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weir_broker::cluster::{
    ControllerClient, ControllerUnavailable, GoneFuture, SubmitFuture, Submitted,
};
use weir_broker::cluster_admin::{ClusterAdmin, DescribeFuture};
use weir_broker::BrokerConfig;
use weir_controller::{Node, NodeConfig, QuorumInfo};
use weir_metadata::{ControllerConfig, ControllerRequest, Endpoint};

/// One broker as `weir cluster info` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct BrokerView {
    pub id: i32,
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// The `WeirDescribeCluster` answer in cluster mode.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterView {
    pub mode: String,
    pub cluster_id: Option<String>,
    /// The node that answered.
    pub node: u64,
    pub controller: Option<u64>,
    pub brokers: Vec<BrokerView>,
    pub topics: usize,
    /// Partitions whose ISR is smaller than their replica set.
    #[serde(default)]
    pub under_replicated: Vec<PartitionView>,
    /// Partitions without a leader able to serve (none, or fenced / shutting down).
    #[serde(default)]
    pub offline: Vec<PartitionView>,
    pub quorum: QuorumInfo,
    /// Whether the answering broker has caught up with the quorum: until then (a broker
    /// restarting) its brokers and partitions are those of its own log as it stopped.
    /// (An answer without it, from an older broker, reads as caught up.)
    #[serde(default = "caught_up_by_default")]
    pub caught_up: bool,
}

fn caught_up_by_default() -> bool {
    true
}

/// One partition in `weir cluster info`'s lists.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Eligible leader replicas (KIP-966).
    #[serde(default)]
    pub elr: Vec<i32>,
    #[serde(default)]
    pub last_known_elr: Vec<i32>,
}

/// The quorum node's settings from the broker's; `extra_endpoints` are registered beside
/// the Kafka and internal listeners (the SQL listener).
pub fn node_config(
    config: &BrokerConfig,
    extra_endpoints: Vec<Endpoint>,
) -> anyhow::Result<NodeConfig> {
    let cluster = &config.cluster;
    let node_id = u64::try_from(config.node_id)?;
    let voters: BTreeMap<u64, String> = cluster
        .voters
        .iter()
        .map(|v| Ok((u64::try_from(v.id)?, v.address())))
        .collect::<anyhow::Result<_>>()?;
    Ok(NodeConfig {
        node_id,
        voters,
        internal_listen: cluster.internal_listen.clone(),
        client_endpoint: config.advertise.clone(),
        extra_endpoints,
        rack: cluster.rack.clone(),
        heartbeat_interval_ms: cluster.heartbeat_interval_ms,
        election_timeout_ms: cluster.election_timeout_ms,
        controller: ControllerConfig {
            session_timeout_ms: cluster.session_timeout_ms,
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            unclean_leader_election_enable: cluster.unclean_leader_election_enable,
            auto_leader_rebalance_enable: cluster.auto_leader_rebalance_enable,
            leader_imbalance_check_interval_ms: cluster
                .leader_imbalance_check_interval_seconds
                .saturating_mul(1000),
            leader_imbalance_per_broker_percentage: cluster.leader_imbalance_per_broker_percentage,
            min_insync_replicas: cluster.min_insync_replicas,
            eligible_leader_replicas: true,
        },
        snapshots: weir_controller::SnapshotPolicyConfig::default(),
    })
}

/// Answers `WeirDescribeCluster` from the node: brokers from its image, the quorum from
/// the active controller, whether the broker (its `image` cell) caught up with it.
pub struct NodeAdmin {
    pub node: Arc<Node>,
    pub image: Arc<weir_broker::cluster::ImageCell>,
}

impl ClusterAdmin for NodeAdmin {
    fn describe(&self) -> DescribeFuture {
        let node = self.node.clone();
        let caught_up = self.image.is_caught_up();
        Box::pin(async move {
            let quorum = node.describe_quorum().await;
            let image = node.image();
            let view = ClusterView {
                mode: "cluster".into(),
                cluster_id: image.cluster_id().map(str::to_string),
                node: node.id(),
                controller: quorum.leader,
                brokers: image
                    .brokers()
                    .values()
                    .map(|b| BrokerView {
                        id: b.id,
                        epoch: b.epoch,
                        endpoints: b.endpoints.clone(),
                        rack: b.rack.clone(),
                        fenced: b.fenced,
                        in_controlled_shutdown: b.in_controlled_shutdown,
                    })
                    .collect(),
                topics: image.topics().count(),
                under_replicated: partitions(&image, |r| r.isr.len() < r.replicas.len()),
                offline: partitions(&image, |r| !image.broker_usable(r.leader)),
                quorum,
                caught_up,
            };
            serde_json::to_vec(&view).unwrap_or_default()
        })
    }
}

/// The image's partitions that satisfy `pick`.
fn partitions(
    image: &weir_metadata::MetadataImage,
    pick: impl Fn(&weir_metadata::PartitionRegistration) -> bool,
) -> Vec<PartitionView> {
    image
        .topics()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|(_, r)| pick(r))
                .map(|(p, r)| PartitionView {
                    topic: t.name.clone(),
                    partition: *p,
                    leader: r.leader,
                    replicas: r.replicas.clone(),
                    isr: r.isr.clone(),
                    elr: r.elr.clone(),
                    last_known_elr: r.last_known_elr.clone(),
                })
        })
        .collect()
}

/// The broker's way to the metadata quorum: admin requests submitted to the active
/// controller through this node.
pub struct NodeController(pub Arc<Node>);

impl ControllerClient for NodeController {
    fn submit(&self, request: ControllerRequest) -> SubmitFuture {
        let node = self.0.clone();
        Box::pin(async move {
            let reply = node
                .submit(request)
                .await
                .map_err(|e| ControllerUnavailable(e.to_string()))?;
            // `submit` returned once this node applied the request's entry: every index
            // applied now is at or past it.
            Ok(Submitted {
                reply,
                applied_index: node.applied_index(),
            })
        })
    }

    fn controller_id(&self) -> Option<i32> {
        self.0.leader().and_then(|id| i32::try_from(id).ok())
    }

    fn gone(&self, ids: Vec<i32>) -> GoneFuture {
        let node = self.0.clone();
        Box::pin(async move {
            let ids: Vec<u64> = ids.iter().filter_map(|i| u64::try_from(*i).ok()).collect();
            node.gone(&ids)
                .await
                .into_iter()
                .filter_map(|id| i32::try_from(id).ok())
                .collect()
        })
    }
}

/// Feeds the quorum's applied entries to the broker's [`Publisher`] in order, and tells it
/// once this broker caught up (its registration is applied: design §4.7 step 2).
pub fn spawn_publisher(
    state: &Arc<weir_broker::state::State>,
    node: Arc<Node>,
    data_plane: Arc<weir_broker::cluster::DataPlane>,
) -> tokio::task::JoinHandle<()> {
    use weir_broker::cluster::{Change, Publisher};
    let mut publisher = Publisher::for_state(state);
    publisher.set_data_plane(data_plane);
    // Subscribed before the baseline is read: an entry applied in between is in both, and
    // applying it again changes nothing (every step is idempotent).
    let mut applied = node.subscribe();
    let mut registration = node.broker_state();
    // The index read before the image: the baseline includes at least that entry, so an
    // admin answer waiting for the node's applied index (entries applied before this
    // subscription included) is not left waiting for an entry that never comes again.
    let baseline_index = node.applied_index();
    let baseline = node.image();
    spawn_lease(state, &node);
    tokio::spawn(async move {
        if let Err(error) = publisher
            .apply(baseline_index, baseline, &Change::Reset)
            .await
        {
            tracing::error!(%error, "publishing the metadata image");
        }
        let mut catch_up = CatchUp::new(baseline_index);
        if registration.borrow_and_update().epoch.is_some() {
            catch_up.registered(node.applied_index());
        }
        loop {
            if !publisher.is_caught_up() && catch_up.ready() {
                if let Err(error) = publisher.caught_up().await {
                    tracing::error!(%error, "reconciling replicas after catch-up");
                }
                tracing::info!(
                    index = catch_up.published,
                    "caught up with the metadata quorum; replicas follow the image"
                );
            }
            tokio::select! {
                // Entries first: the registration may be answered while entries the node
                // applied before it still wait here (a restarted voter replays its whole
                // log once the leader tells it the commit index).
                biased;
                entry = applied.recv() => {
                    let Some(entry) = entry else { break };
                    let change = match entry.change {
                        weir_controller::Change::Delta(d) => Change::Delta(d),
                        weir_controller::Change::Reset => Change::Reset,
                    };
                    if let Err(error) = publisher.apply(entry.index, entry.image, &change).await {
                        tracing::error!(index = entry.index, %error, "publishing a metadata entry");
                    }
                    catch_up.published(entry.index);
                }
                changed = registration.changed(), if !publisher.is_caught_up() => {
                    if changed.is_err() {
                        break;
                    }
                    if registration.borrow_and_update().epoch.is_some() {
                        // The registration's entry is applied on this node before the
                        // answer reaches here, so the node's applied index covers it.
                        catch_up.registered(node.applied_index());
                    }
                }
            }
        }
    })
}

/// When the publisher may call itself caught up (design §4.7 step 2): once the broker is
/// registered *and* the publisher has applied every entry the node had applied when the
/// registration was answered. The registration alone is not enough: a restarted voter
/// learns the commit index from the leader and then applies its whole log at once, and
/// the publisher may still be entries behind the node when the answer arrives. Catching up
/// on that older image would take every replica it lacks for a stray and delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CatchUp {
    /// The index of the last entry the publisher applied.
    published: u64,
    /// The node's applied index when the registration was answered.
    target: Option<u64>,
}

impl CatchUp {
    fn new(baseline: u64) -> CatchUp {
        CatchUp {
            published: baseline,
            target: None,
        }
    }

    fn published(&mut self, index: u64) {
        self.published = self.published.max(index);
    }

    fn registered(&mut self, applied: u64) {
        self.target = Some(self.target.map_or(applied, |t| t.max(applied)));
    }

    fn ready(&self) -> bool {
        self.target.is_some_and(|t| self.published >= t)
    }
}

/// Installs the broker's lease (design §4.9) and renews it from every heartbeat the
/// active controller answers. A task of its own: the publisher may be busy with an entry
/// (opening logs), and a late renewal only delays serving.
fn spawn_lease(state: &Arc<weir_broker::state::State>, node: &Node) {
    use weir_broker::cluster::HeartbeatAck;
    let session = std::time::Duration::from_millis(state.config.cluster.session_timeout_ms);
    state.image.install_lease(session);
    let image = state.image.clone();
    let mut answers = node.heartbeat_answers();
    tokio::spawn(async move {
        loop {
            let answer = *answers.borrow_and_update();
            match answer {
                Some(a) => image.renew_lease(HeartbeatAck {
                    sent_at: a.sent_at,
                    fenced: a.fenced,
                    applied_index: a.applied_index,
                }),
                None => image.revoke_lease(),
            }
            if answers.changed().await.is_err() {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn catching_up_waits_for_the_entries_applied_before_the_registration() {
        use super::CatchUp;
        // A restarted voter: an empty baseline, then the whole log arrives while the
        // registration is answered.
        let mut c = CatchUp::new(0);
        assert!(!c.ready(), "not registered yet");
        c.published(40);
        assert!(!c.ready(), "entries alone do not make it caught up");
        c.registered(1_000);
        assert!(!c.ready(), "960 entries the node applied are still queued");
        c.published(999);
        assert!(!c.ready());
        c.published(1_000);
        assert!(c.ready());
        // An answer at once (the common case): the baseline already holds everything.
        let mut c = CatchUp::new(500);
        c.registered(500);
        assert!(c.ready());
        // A later registration (the broker registered again) never lowers the target.
        let mut c = CatchUp::new(0);
        c.registered(700);
        c.registered(600);
        c.published(650);
        assert!(!c.ready());
    }

    use std::time::{Duration, Instant};

    use weir_broker::cluster::read_partition_metadata;
    use weir_metadata::{ControllerReply, CreatableTopic};

    use super::*;

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One voter, its broker and the publisher as `weir serve` wires them: a topic the
    /// quorum creates gets its logs here, with its topic id, and goes when deleted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_publisher_creates_and_removes_the_replicas_the_quorum_decides() {
        let dir = std::env::temp_dir().join(format!("weir-publisher-{}", uuid_like()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let pairs = [
            ("node.id".to_string(), "1".to_string()),
            (
                "controller.quorum.voters".to_string(),
                format!("1@127.0.0.1:{port}"),
            ),
        ]
        .into_iter()
        .collect();
        let (config, _) = BrokerConfig::from_pairs(
            "127.0.0.1:0".parse().expect("addr"),
            None,
            dir.clone(),
            pairs,
        )
        .expect("config");
        let node_config = node_config(&config, Vec::new()).expect("node config");
        let broker = weir_broker::Broker::open(config).await.expect("broker");
        let node = Arc::new(Node::start(node_config, &dir).await.expect("node"));
        let data_plane = super::super::cluster_data::start(broker.state(), &node);
        let publisher = spawn_publisher(broker.state(), node.clone(), data_plane.clone());
        let mut registration = node.broker_state();
        tokio::time::timeout(
            Duration::from_secs(30),
            registration.wait_for(|s| s.epoch.is_some() && !s.fenced),
        )
        .await
        .expect("registered and unfenced in time")
        .expect("registration");

        let reply = node
            .submit(ControllerRequest::CreateTopics {
                topics: vec![CreatableTopic {
                    name: "t".to_string(),
                    num_partitions: 2,
                    replication_factor: 1,
                    assignment: None,
                    configs: Vec::new(),
                }],
                validate_only: false,
            })
            .await
            .expect("submitted");
        let ControllerReply::CreateTopics(created) = reply else {
            panic!("unexpected reply {reply:?}");
        };
        let id = created[0].1.as_ref().expect("created").topic_id;
        until("both replicas", || {
            (0..2).all(|p| read_partition_metadata(&dir.join(format!("t-{p}"))) == Some(id))
        })
        .await;

        node.submit(ControllerRequest::DeleteTopics {
            names: vec!["t".to_string()],
        })
        .await
        .expect("deleted");
        until("the replicas removed", || {
            (0..2).all(|p| !dir.join(format!("t-{p}")).exists())
        })
        .await;

        node.shutdown().await;
        publisher.abort();
        data_plane.shutdown();
        drop(broker);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn uuid_like() -> String {
        format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        )
    }
}
