mod learners;
mod quorum;
mod storage;

#[test]
fn cluster_ids_look_like_kafkas() {
    let a = crate::active::new_cluster_id();
    let b = crate::active::new_cluster_id();
    assert_eq!(a.len(), 22);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_ne!(a, b);
}
mod transport;

#[test]
fn the_fuzz_samples_decode() {
    // The seeds of the fuzz target must reach past the decoders' first checks.
    for (decoder, bytes) in crate::fuzzing::samples() {
        match decoder {
            0 => {
                let req = crate::wire::decode_request(bytes::Bytes::from(bytes)).expect("frame");
                assert!(crate::server::InternalRequest::decode(req.key, &req.body).is_ok());
            }
            1 => {
                let mut out = Vec::new();
                crate::log_store::decode_entries(bytes::Bytes::from(bytes), 0, i64::MAX, &mut out)
                    .expect("entries");
                assert_eq!(out.len(), 4, "membership, blank, cluster id, ACL records");
            }
            _ => assert!(
                serde_json::from_slice::<crate::state_machine::SnapshotFile>(&bytes).is_ok()
                    || serde_json::from_slice::<crate::log_store::RaftState>(&bytes).is_ok()
            ),
        }
    }
}

#[test]
fn a_raft_failure_names_the_leader_or_says_why() {
    use openraft::error::{
        CheckIsLeaderError, ClientWriteError, Fatal, ForwardToLeader, RaftError,
    };

    use crate::types::{NodeId, NodeInfo};
    use crate::wire::RemoteFailure;

    let moved: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>> =
        RaftError::APIError(ClientWriteError::ForwardToLeader(ForwardToLeader {
            leader_id: Some(2),
            leader_node: None,
        }));
    let failure = RemoteFailure::from(moved).context("adding broker 4 as a learner");
    assert!(matches!(
        failure,
        RemoteFailure::NotController {
            leader_hint: Some(2)
        }
    ));
    let unknown: RaftError<NodeId, CheckIsLeaderError<NodeId, NodeInfo>> =
        RaftError::APIError(CheckIsLeaderError::ForwardToLeader(ForwardToLeader::empty()));
    assert!(matches!(
        RemoteFailure::from(unknown),
        RemoteFailure::NotController { leader_hint: None }
    ));
    let stopped: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>> =
        RaftError::Fatal(Fatal::Stopped);
    match RemoteFailure::from(stopped).context("adding broker 4 as a learner") {
        RemoteFailure::Unavailable(why) => {
            assert!(why.starts_with("adding broker 4 as a learner: "), "{why}");
            assert!(why.len() > "adding broker 4 as a learner: ".len(), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
