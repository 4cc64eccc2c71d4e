//! The internal listener's gatekeeping: WeirHello first, the cluster-id check, unknown keys.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Buf;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use weir_metadata::ControllerConfig;

use crate::wire::{self, keys, CallError, Hello, Peers, Purpose};
use crate::{Node, NodeConfig, QuorumInfo, SnapshotPolicyConfig};

async fn single_voter(dir: &std::path::Path) -> Node {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = NodeConfig {
        node_id: 1,
        voters: BTreeMap::from([(1, format!("127.0.0.1:{port}"))]),
        internal_listen: None,
        client_endpoint: ("127.0.0.1".into(), 9092),
        extra_endpoints: Vec::new(),
        rack: None,
        heartbeat_interval_ms: 100,
        election_timeout_ms: 300,
        controller: ControllerConfig::default(),
        snapshots: SnapshotPolicyConfig::default(),
    };
    let node = Node::start(config, dir).await.expect("start");
    let start = Instant::now();
    while node.image().cluster_id().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "no cluster id");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node
}

fn peers_with(node: &Node, cluster_id: Option<String>) -> Peers {
    let addr = node.local_addr().to_string();
    Peers::new(7, BTreeMap::from([(1, addr)]), move || Hello {
        cluster_id: cluster_id.clone(),
        node_id: 7,
        incarnation: uuid::Uuid::nil(),
        initialized: false,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_checks_the_cluster_id_and_other_keys_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_voter(dir.path()).await;
    let id = node.image().cluster_id().map(str::to_string);
    let ttl = Duration::from_secs(5);

    // Same cluster (or one that does not know its id yet): served.
    for known in [id.clone(), None] {
        let peers = peers_with(&node, known);
        let q: QuorumInfo = peers
            .call(1, Purpose::Controller, keys::DESCRIBE_QUORUM, &(), ttl)
            .await
            .expect("served");
        assert_eq!(q.leader, Some(1));
        let hello = peers.hello(1, ttl).await.expect("hello");
        assert_eq!(hello.cluster_id, id);
        assert!(hello.initialized);
    }

    // Another cluster: the listener closes the connection at the hello.
    let other = peers_with(&node, Some("another-cluster".into()));
    let refused: Result<QuorumInfo, CallError> = other
        .call(1, Purpose::Controller, keys::DESCRIBE_QUORUM, &(), ttl)
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // A key before WeirHello, or an unknown key after it: the connection closes.
    for first in [keys::DESCRIBE_QUORUM, 1] {
        let mut s = TcpStream::connect(node.local_addr()).await.unwrap();
        if first == 1 {
            let hello = serde_json::to_vec(&Hello {
                cluster_id: None,
                node_id: 8,
                incarnation: uuid::Uuid::nil(),
                initialized: false,
            })
            .unwrap();
            s.write_all(&wire::encode_request(keys::HELLO, 1, "t", &hello))
                .await
                .unwrap();
            let mut answer = wire::read_frame(&mut s)
                .await
                .unwrap()
                .expect("hello answer");
            assert_eq!(answer.get_i32(), 1);
        }
        s.write_all(&wire::encode_request(first, 2, "t", b"{}"))
            .await
            .unwrap();
        let closed = tokio::time::timeout(ttl, wire::read_frame(&mut s)).await;
        assert!(
            matches!(closed, Ok(Ok(None)) | Ok(Err(_))),
            "key {first}: {closed:?}"
        );
    }
    // Shutdown closes the listener's open connections too.
    let greeted = peers_with(&node, id.clone());
    greeted.hello(1, ttl).await.expect("hello");
    node.shutdown().await;
    let after: Result<QuorumInfo, CallError> = greeted
        .call(1, Purpose::Controller, keys::DESCRIBE_QUORUM, &(), ttl)
        .await;
    assert!(
        matches!(after, Err(CallError::Io { .. } | CallError::Connect { .. })),
        "{after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_costs_each_call_its_own_ttl_at_most() {
    // A peer that accepts connections and never answers (a stopped process).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let peers = std::sync::Arc::new(Peers::new(7, BTreeMap::from([(1, addr)]), || Hello {
        cluster_id: None,
        node_id: 7,
        incarnation: uuid::Uuid::nil(),
        initialized: false,
    }));
    let ttl = Duration::from_millis(300);
    let start = Instant::now();
    // Two calls on the same connection at once: the second waits for the first, but its
    // own TTL bounds the whole wait.
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let peers = peers.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                let result = peers
                    .call::<_, QuorumInfo>(1, Purpose::Raft, keys::DESCRIBE_QUORUM, &(), ttl)
                    .await;
                (result, began.elapsed())
            })
        })
        .collect();
    for call in calls {
        let (result, took) = call.await.unwrap();
        assert!(
            matches!(result, Err(CallError::Timeout { .. })),
            "{result:?}"
        );
        assert!(
            took < ttl + Duration::from_millis(250),
            "a call took {took:?}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    held.abort();
}

/// A hook that answers key 1 with its version, the peer and the body reversed.
struct Echo;

impl crate::DataPlane for Echo {
    fn serves(&self, key: i16, _version: i16) -> bool {
        key == keys::FETCH
    }

    fn handle(
        &self,
        client_id: String,
        _key: i16,
        version: i16,
        body: bytes::Bytes,
    ) -> crate::DataPlaneFuture<'_> {
        Box::pin(async move {
            let mut out = format!("{version} {client_id} ").into_bytes();
            out.extend(body.iter().rev());
            Ok(bytes::Bytes::from(out))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_plane_keys_reach_the_installed_hook_only() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_voter(dir.path()).await;
    let id = node.image().cluster_id().map(str::to_string);
    let ttl = Duration::from_secs(5);
    let peers = peers_with(&node, id);
    // No hook yet: the key closes the connection like any unknown key.
    let refused = peers
        .call_raw(1, Purpose::ReplicaFetch, keys::FETCH, 15, b"abc", ttl)
        .await;
    assert!(matches!(refused, Err(CallError::Io { .. })), "{refused:?}");

    node.set_data_plane(std::sync::Arc::new(Echo));
    for version in [15, 17] {
        let answer = peers
            .call_raw(1, Purpose::ReplicaFetch, keys::FETCH, version, b"abc", ttl)
            .await
            .expect("served");
        assert_eq!(&answer[..], format!("{version} weir-node-7 cba").as_bytes());
    }
    // The control plane still answers on its own connection.
    let q: QuorumInfo = peers
        .call(1, Purpose::Controller, keys::DESCRIBE_QUORUM, &(), ttl)
        .await
        .expect("served");
    assert_eq!(q.leader, Some(1));
    node.shutdown().await;
}
