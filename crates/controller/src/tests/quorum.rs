//! Three nodes in one process over loopback sockets, each on its own runtime: dropping a
//! runtime kills that node as SIGKILL would (its tasks stop, its sockets close).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use weir_metadata::{
    ControllerConfig, ControllerReply, ControllerRequest, CreatableTopic, MetadataImage,
};

use crate::{Node, NodeConfig, NodeId, SnapshotPolicyConfig};

pub(super) struct TestNode {
    rt: tokio::runtime::Runtime,
    node: Node,
}

pub(super) struct Cluster {
    snapshots: SnapshotPolicyConfig,
    dirs: BTreeMap<NodeId, TempDir>,
    voters: BTreeMap<NodeId, String>,
    /// `weir.internal.listen` of the brokers beyond the voters (kept across restarts).
    learners: BTreeMap<NodeId, String>,
    nodes: BTreeMap<NodeId, TestNode>,
}

const SESSION_MS: u64 = 1_500;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Cluster {
    pub(super) fn new(n: u64) -> Cluster {
        let c = Cluster::stopped(n, SnapshotPolicyConfig::default());
        c.started((1..=n).collect())
    }

    /// A cluster of `n` voters, none started yet.
    fn stopped(n: u64, snapshots: SnapshotPolicyConfig) -> Cluster {
        let voters = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let dirs = (1..=n)
            .map(|id| (id, tempfile::tempdir().expect("tempdir")))
            .collect();
        Cluster {
            snapshots,
            dirs,
            voters,
            learners: BTreeMap::new(),
            nodes: BTreeMap::new(),
        }
    }

    fn started(mut self, ids: Vec<NodeId>) -> Cluster {
        for id in ids {
            self.start(id);
        }
        self
    }

    fn dir(&self, id: NodeId) -> PathBuf {
        self.dirs[&id].path().to_path_buf()
    }

    /// Starts node `id`: a voter if it is one, else a broker beyond the voters with its
    /// own directory and internal listener.
    pub(super) fn start(&mut self, id: NodeId) {
        if !self.voters.contains_key(&id) {
            self.dirs
                .entry(id)
                .or_insert_with(|| tempfile::tempdir().expect("tempdir"));
            self.learners
                .entry(id)
                .or_insert_with(|| format!("127.0.0.1:{}", free_port()));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = NodeConfig {
            node_id: id,
            voters: self.voters.clone(),
            internal_listen: self.learners.get(&id).cloned(),
            client_endpoint: ("127.0.0.1".into(), 9000 + id as u16),
            extra_endpoints: Vec::new(),
            rack: None,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 500,
            controller: ControllerConfig {
                session_timeout_ms: SESSION_MS,
                ..ControllerConfig::default()
            },
            snapshots: self.snapshots,
        };
        let dir = self.dir(id);
        // A killed node's runtime drops its sockets in the background: a restart on the
        // same internal port may find it still bound for a moment.
        let mut tries = 0;
        let node = loop {
            match rt.block_on(Node::start(config.clone(), &dir)) {
                Err(crate::ControllerError::Io { source, .. })
                    if tries < 50 && source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                started => break started.expect("start"),
            }
        };
        self.nodes.insert(id, TestNode { rt, node });
    }

    /// Kills a node: its runtime goes, with every task and socket of it.
    pub(super) fn kill(&mut self, id: NodeId) {
        let killed = self.nodes.remove(&id).expect("running");
        let TestNode { rt, node } = killed;
        rt.shutdown_background();
        drop(node);
    }

    pub(super) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id].node
    }

    pub(super) fn block_on<F: std::future::Future>(&self, id: NodeId, f: F) -> F::Output {
        self.nodes[&id].rt.block_on(f)
    }

    /// Waits until `cond` holds for every running node, or fails after `limit`.
    pub(super) fn wait_all(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&Node) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if self.nodes.values().all(|n| cond(&n.node)) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(super) fn fenced(image: &MetadataImage, id: NodeId) -> Option<bool> {
    image.broker(id as i32).map(|b| b.fenced)
}

pub(super) fn all_unfenced(image: &MetadataImage, ids: &[NodeId]) -> bool {
    ids.iter().all(|id| fenced(image, *id) == Some(false))
}

#[test]
fn three_voters_form_register_fail_over_fence_and_rejoin() {
    let mut c = Cluster::new(3);
    let formed = c.wait_all(
        "a leader and three unfenced brokers",
        Duration::from_secs(30),
        |n| {
            n.leader().is_some()
                && n.image().cluster_id().is_some()
                && all_unfenced(&n.image(), &[1, 2, 3])
        },
    );
    eprintln!("formed in {formed:?}");
    let leader = c.node(1).leader().expect("leader");
    let cluster_id = c.node(1).image().cluster_id().map(str::to_string);
    for id in 1..=3 {
        assert_eq!(c.node(id).leader(), Some(leader));
        assert_eq!(
            c.node(id).image().cluster_id().map(str::to_string),
            cluster_id
        );
        assert!(!c.block_on(id, async { c.node(id).broker_state().borrow().fenced }));
    }

    // A request through a follower is forwarded; when submit returns, the follower's own
    // image has the topic.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let reply = c
        .block_on(
            follower,
            c.node(follower).submit(ControllerRequest::CreateTopics {
                topics: vec![CreatableTopic {
                    name: "t".into(),
                    num_partitions: 3,
                    replication_factor: 3,
                    assignment: None,
                    configs: vec![],
                }],
                validate_only: false,
            }),
        )
        .expect("submit");
    assert!(
        matches!(&reply, ControllerReply::CreateTopics(v) if v[0].1.is_ok()),
        "{reply:?}"
    );
    assert!(c.node(follower).image().topic_by_name("t").is_some());

    // The quorum as the active controller sees it: every voter's log end.
    let quorum = c.block_on(follower, c.node(follower).describe_quorum());
    assert_eq!(quorum.leader, Some(leader));
    assert_eq!(quorum.voters.len(), 3);
    assert!(
        quorum.voters.iter().all(|v| v.log_end.is_some()),
        "{quorum:?}"
    );

    // Kill the active controller: another takes over, the survivors keep their
    // registrations, and the killed broker is fenced once its session lapses.
    c.kill(leader);
    let survivors: Vec<NodeId> = (1..=3).filter(|id| *id != leader).collect();
    let failover = c.wait_all("a new leader", Duration::from_secs(10), |n| {
        n.leader().is_some_and(|l| l != leader)
    });
    eprintln!("new leader after {failover:?}");
    let fenced_after = c.wait_all("the killed broker fenced", Duration::from_secs(15), |n| {
        let image = n.image();
        fenced(&image, leader) == Some(true) && all_unfenced(&image, &survivors)
    });
    eprintln!("killed broker fenced after {fenced_after:?} more");
    // The topic's partitions lost the killed broker from their ISRs.
    let image = c.node(survivors[0]).image();
    assert!(image
        .partitions()
        .all(|(_, _, p)| !p.isr.contains(&(leader as i32))));

    // It restarts from its directory, catches up, registers anew and is unfenced.
    c.start(leader);
    c.wait_all(
        "the restarted broker unfenced and caught up",
        Duration::from_secs(20),
        |n| {
            let image = n.image();
            all_unfenced(&image, &[1, 2, 3]) && image.topic_by_name("t").is_some()
        },
    );
    let restarted = c.node(leader).image();
    let other = c.node(survivors[0]).image();
    assert_eq!(restarted.cluster_id(), other.cluster_id());
    assert_eq!(
        restarted.broker(leader as i32).map(|b| b.epoch),
        other.broker(leader as i32).map(|b| b.epoch)
    );
}

fn create_topic(c: &Cluster, via: NodeId, name: &str) {
    let reply = c
        .block_on(
            via,
            c.node(via).submit(ControllerRequest::CreateTopics {
                topics: vec![CreatableTopic {
                    name: name.into(),
                    num_partitions: 1,
                    replication_factor: 1,
                    assignment: None,
                    configs: vec![],
                }],
                validate_only: false,
            }),
        )
        .expect("submit");
    assert!(
        matches!(&reply, ControllerReply::CreateTopics(v) if v[0].1.is_ok()),
        "{reply:?}"
    );
}

#[test]
fn a_voter_started_late_joins_the_formed_quorum() {
    // Two of three voters form the quorum and commit; the third, started with an empty
    // directory afterwards, must not initialize a quorum of its own but join this one.
    let mut c = Cluster::stopped(3, SnapshotPolicyConfig::default()).started(vec![1, 2]);
    c.wait_all("two registered brokers", Duration::from_secs(30), |n| {
        all_unfenced(&n.image(), &[1, 2])
    });
    create_topic(&c, 1, "early");
    let cluster_id = c.node(1).image().cluster_id().map(str::to_string);
    c.start(3);
    c.wait_all(
        "the late voter registered and caught up",
        Duration::from_secs(30),
        |n| {
            let image = n.image();
            all_unfenced(&image, &[1, 2, 3]) && image.topic_by_name("early").is_some()
        },
    );
    assert_eq!(
        c.node(3).image().cluster_id().map(str::to_string),
        cluster_id
    );
    let quorum = c.block_on(3, c.node(3).describe_quorum());
    assert_eq!(quorum.voters.len(), 3, "{quorum:?}");
}

#[test]
fn a_voter_behind_the_purged_log_catches_up_from_a_snapshot() {
    // Snapshots every 5 entries and no log kept below them: a voter that was down while
    // more was committed can only catch up by installing a snapshot over the wire.
    let snapshots = SnapshotPolicyConfig {
        every_entries: 5,
        keep_entries: 0,
    };
    let mut c = Cluster::stopped(3, snapshots).started(vec![1, 2, 3]);
    c.wait_all("three registered brokers", Duration::from_secs(30), |n| {
        all_unfenced(&n.image(), &[1, 2, 3])
    });
    let leader = c.node(1).leader().expect("leader");
    let down = (1..=3).find(|id| *id != leader).expect("a follower");
    let down_end = c.node(down).metrics().borrow().last_log_index.unwrap_or(0);
    c.kill(down);
    for i in 0..12 {
        create_topic(&c, leader, &format!("t{i}"));
    }
    // Both running voters purge their logs past what the stopped one has (snapshots are
    // built and purged in the background), so whichever leads must send a snapshot.
    c.wait_all(
        "logs purged past the stopped voter's",
        Duration::from_secs(15),
        |n| {
            n.metrics()
                .borrow()
                .purged
                .is_some_and(|p| p.index > down_end)
        },
    );
    c.start(down);
    c.wait_all(
        "the stopped voter caught up",
        Duration::from_secs(30),
        |n| {
            let image = n.image();
            (0..12).all(|i| image.topic_by_name(&format!("t{i}")).is_some())
                && all_unfenced(&image, &[1, 2, 3])
        },
    );
    assert!(
        c.node(down).metrics().borrow().snapshot.is_some(),
        "it installed a snapshot"
    );
    // And it restarts from that snapshot and the log after it.
    c.kill(down);
    c.start(down);
    let image = c.node(down).image();
    assert!(
        image.topic_by_name("t0").is_some(),
        "the snapshot is loaded at start"
    );
}

#[test]
fn a_failed_fsync_of_the_metadata_log_stops_the_node_and_the_quorum_goes_on() {
    let c = Cluster::new(3);
    c.wait_all("three registered brokers", Duration::from_secs(30), |n| {
        all_unfenced(&n.image(), &[1, 2, 3])
    });
    let leader = c.node(1).leader().expect("leader");
    let victim = (1..=3).find(|id| *id != leader).expect("a follower");
    weir_storage::fuzzing::inject_fsync_failures(c.node(victim).store().log());
    // The next entries reach the victim's log, whose fsync fails: openraft must stop it
    // rather than acknowledge entries that are not durable.
    create_topic(&c, leader, "after-failure");
    let reason = c.block_on(victim, async {
        tokio::time::timeout(Duration::from_secs(15), c.node(victim).fatal()).await
    });
    let reason = reason.expect("the victim stopped in time");
    assert!(!reason.is_empty());
    assert!(c.node(victim).store().log().is_poisoned());
    // The two others still make progress.
    create_topic(&c, leader, "with-two");
    assert!(c.node(leader).image().topic_by_name("with-two").is_some());
}
