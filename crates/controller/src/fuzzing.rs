//! Entry points for the fuzz targets in `fuzz/` (not an API): every decoder of bytes a peer
//! sends to the internal listener or the metadata directory holds. None may panic.

use bytes::Bytes;

/// What the internal listener decodes from a peer: the request frame (after its size),
/// then the body of its key, as the listener would.
pub fn internal_request(frame: &[u8]) {
    if let Some(req) = crate::wire::decode_request(Bytes::copy_from_slice(frame)) {
        let _ = crate::server::InternalRequest::decode(req.key, &req.body);
    }
}

/// What a node reads back from its metadata log: record batches whose values are openraft
/// entries.
pub fn metadata_log(bytes: &[u8], from: i64) {
    let mut out = Vec::new();
    let _ =
        crate::log_store::decode_entries(Bytes::copy_from_slice(bytes), from, i64::MAX, &mut out);
}

/// What a node reads from its metadata directory at start: a snapshot file and
/// `raft-state.json`.
pub fn metadata_files(bytes: &[u8]) {
    let _ = serde_json::from_slice::<crate::state_machine::SnapshotFile>(bytes);
    let _ = serde_json::from_slice::<crate::log_store::RaftState>(bytes);
}

/// Valid inputs of each decoder above, built with the node's own encoders (the seeds of the
/// fuzz target): `(decoder, bytes)`, decoder as in the target's first byte.
pub fn samples() -> Vec<(u8, Vec<u8>)> {
    use std::collections::BTreeMap;

    use openraft::raft::{AppendEntriesRequest, VoteRequest};
    use openraft::{CommittedLeaderId, EntryPayload, Membership};
    use weir_metadata::{BrokerHeartbeat, ControllerRequest, MetadataRecord};

    use crate::types::{Entry, LogId, NodeInfo, Vote};
    use crate::wire::{encode_request, keys, Forwarded, Hello};

    let log_id = |index| LogId::new(CommittedLeaderId::new(2, 1), index);
    // An ACL (ACLs are metadata records): the decoders see its shape in the seeds.
    let acl = weir_metadata::AclEntry {
        resource_type: 2,
        name: "orders".into(),
        pattern_type: 4,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 3,
        permission: 3,
    };
    let voters: BTreeMap<u64, NodeInfo> = (1..=3).map(|i| (i, NodeInfo::default())).collect();
    let entries = vec![
        Entry {
            log_id: log_id(0),
            payload: EntryPayload::Membership(Membership::new(
                vec![voters.keys().copied().collect()],
                voters,
            )),
        },
        Entry {
            log_id: log_id(1),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(2),
            payload: EntryPayload::Normal(vec![MetadataRecord::ClusterId {
                cluster_id: "OZgaD8CqRCSalotN4e5ajw".into(),
            }]),
        },
        Entry {
            log_id: log_id(3),
            payload: EntryPayload::Normal(vec![
                MetadataRecord::AccessControlEntry(acl.clone()),
                MetadataRecord::RemoveAccessControlEntry(acl.clone()),
            ]),
        },
    ];
    let frame = |key, body: Vec<u8>| {
        // Without the size prefix, as the decoder gets it.
        encode_request(key, 7, "weir-node-1", &body)
            .slice(4..)
            .to_vec()
    };
    let json = |v: &dyn erased::Json| v.json();
    let hello = Hello {
        cluster_id: Some("OZgaD8CqRCSalotN4e5ajw".into()),
        node_id: 1,
        incarnation: uuid::Uuid::nil(),
        initialized: true,
    };
    let vote = VoteRequest::new(Vote::new(3, 1), Some(log_id(2)));
    let append = AppendEntriesRequest::<crate::TypeConfig> {
        vote: Vote::new_committed(2, 1),
        prev_log_id: Some(log_id(0)),
        entries: entries.clone(),
        leader_commit: Some(log_id(1)),
    };
    let forwarded = Forwarded {
        cluster_id: None,
        from: 2,
        request: ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            id: 2,
            epoch: 2,
            caught_up: true,
            want_fence: false,
            want_shutdown: false,
        }),
    };
    let mut out = vec![
        (0, frame(keys::HELLO, json(&hello))),
        (0, frame(keys::RAFT_VOTE, json(&vote))),
        (0, frame(keys::RAFT_APPEND, json(&append))),
        (0, frame(keys::CONTROLLER, json(&forwarded))),
        (
            0,
            frame(
                keys::CONTROLLER,
                json(&Forwarded {
                    cluster_id: None,
                    from: 2,
                    request: ControllerRequest::CreateAcls { acls: vec![acl] },
                }),
            ),
        ),
        (0, frame(keys::DESCRIBE_QUORUM, Vec::new())),
    ];
    if let Ok(log) = crate::log_store::encode(&entries) {
        out.push((1, log.to_vec()));
    }
    let snapshot = crate::state_machine::SnapshotFile {
        last_applied: Some(log_id(2)),
        membership: Default::default(),
        image: weir_metadata::MetadataImage::new(),
    };
    out.push((2, json(&snapshot)));
    out.push((
        2,
        json(&crate::log_store::RaftState {
            vote: Some(Vote::new_committed(2, 1)),
            last_purged_log_id: Some(log_id(0)),
        }),
    ));
    out
}

/// Serializing any sample to JSON through one closure.
mod erased {
    pub trait Json {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}
