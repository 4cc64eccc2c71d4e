//! Three nodes in one process over loopback sockets, each on its own runtime: dropping a
//! runtime kills that node as SIGKILL would (its tasks stop, its sockets close).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use weir_metadata::{
    ControllerConfig, ControllerReply, ControllerRequest, CreatableTopic, MetadataImage,
};

use crate::{Node, NodeConfig, NodeId};

struct TestNode {
    rt: tokio::runtime::Runtime,
    node: Node,
}

struct Cluster {
    dirs: BTreeMap<NodeId, TempDir>,
    voters: BTreeMap<NodeId, String>,
    nodes: BTreeMap<NodeId, TestNode>,
}

const SESSION_MS: u64 = 1_500;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Cluster {
    fn new(n: u64) -> Cluster {
        let voters = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let dirs = (1..=n)
            .map(|id| (id, tempfile::tempdir().expect("tempdir")))
            .collect();
        let mut c = Cluster {
            dirs,
            voters,
            nodes: BTreeMap::new(),
        };
        for id in 1..=n {
            c.start(id);
        }
        c
    }

    fn dir(&self, id: NodeId) -> PathBuf {
        self.dirs[&id].path().to_path_buf()
    }

    fn start(&mut self, id: NodeId) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let config = NodeConfig {
            node_id: id,
            voters: self.voters.clone(),
            client_endpoint: ("127.0.0.1".into(), 9000 + id as u16),
            rack: None,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 500,
            controller: ControllerConfig {
                session_timeout_ms: SESSION_MS,
                ..ControllerConfig::default()
            },
        };
        let dir = self.dir(id);
        let node = rt.block_on(Node::start(config, &dir)).expect("start");
        self.nodes.insert(id, TestNode { rt, node });
    }

    /// Kills a node: its runtime goes, with every task and socket of it.
    fn kill(&mut self, id: NodeId) {
        let killed = self.nodes.remove(&id).expect("running");
        let TestNode { rt, node } = killed;
        rt.shutdown_background();
        drop(node);
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id].node
    }

    fn block_on<F: std::future::Future>(&self, id: NodeId, f: F) -> F::Output {
        self.nodes[&id].rt.block_on(f)
    }

    /// Waits until `cond` holds for every running node, or fails after `limit`.
    fn wait_all(&self, what: &str, limit: Duration, cond: impl Fn(&Node) -> bool) -> Duration {
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

fn fenced(image: &MetadataImage, id: NodeId) -> Option<bool> {
    image.broker(id as i32).map(|b| b.fenced)
}

fn all_unfenced(image: &MetadataImage, ids: &[NodeId]) -> bool {
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
