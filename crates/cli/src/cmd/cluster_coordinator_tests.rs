//! Group coordinator shards end to end (design §7): three nodes in one process (the
//! `Member`s of `cluster_data_tests`), `__consumer_offsets` of one partition and replication
//! factor 3. Only its leader serves the group (followers answer NOT_COORDINATOR); a commit is
//! answered once replicated; the leader's runtime is dropped mid-flight, the new leader loads
//! the shard from its replica (COORDINATOR_LOAD_IN_PROGRESS meanwhile, never an empty answer)
//! and has every acknowledged commit; with the quorum and the ISR gone, a commit is not
//! acknowledged (COORDINATOR_NOT_AVAILABLE) and nothing is answered from uncommitted records.

use weir_coordinator::{CommitRequest, CommittedOffset, ErrorCode, TopicPartition};

use super::*;

const GROUP: &str = "g";

fn commit(m: &Member, offset: i64) -> Vec<(TopicPartition, ErrorCode)> {
    let groups = m.broker.state().groups.clone();
    m.rt.block_on(groups.commit(CommitRequest {
        group_id: GROUP.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: vec![(
            TopicPartition::new("t".to_string(), 0),
            CommittedOffset {
                offset,
                leader_epoch: None,
                metadata: None,
                commit_timestamp_ms: 0,
            },
        )],
    }))
}

/// The group's committed offset of `t`-0 as `m` answers OffsetFetch, or its error.
fn fetched(m: &Member) -> Result<Option<i64>, ErrorCode> {
    let groups = m.broker.state().groups.clone();
    let offsets = m.rt.block_on(groups.fetch_offsets(GROUP, None))?;
    Ok(offsets
        .into_iter()
        .find(|(tp, _)| tp.topic == "t" && tp.partition == 0)
        .and_then(|(_, c)| c.map(|c| c.offset)))
}

fn shard_code(m: &Member) -> ErrorCode {
    m.broker
        .state()
        .groups
        .shard(GROUP)
        .err()
        .unwrap_or(ErrorCode::NONE)
}

#[test]
fn group_offsets_fail_over_with_their_partition() {
    let root = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let voters = (1..=3)
        .map(|id| format!("{id}@127.0.0.1:{}", ports[id - 1]))
        .collect::<Vec<_>>()
        .join(",");
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|id| root.path().join(format!("n{id}")))
        .collect();
    let mut members: Vec<Option<Member>> = (1..=3)
        .map(|id| Some(Member::start(id, &dirs[id as usize - 1], &voters)))
        .collect();
    until("three unfenced brokers", || {
        let image = members[0].as_ref().expect("member").node.image();
        (1..=3).all(|id| image.broker_usable(id))
    });
    let topic_id = create_topic(
        members[0].as_ref().expect("member"),
        weir_broker::group_router::OFFSETS_TOPIC,
        3,
    );
    let leader_of = |members: &[Option<Member>]| -> Option<i32> {
        let m = members.iter().flatten().next()?;
        m.registration(topic_id)
            .map(|r| r.leader)
            .filter(|l| *l > 0)
    };
    let old = leader_of(&members).expect("a leader");
    let idx = |id: i32| usize::try_from(id - 1).expect("id");
    until("the shard loaded on the leader", || {
        shard_code(members[idx(old)].as_ref().expect("leader")) == ErrorCode::NONE
    });
    for m in members.iter().flatten().filter(|m| m.id != old) {
        assert_eq!(shard_code(m), ErrorCode::NOT_COORDINATOR, "node {}", m.id);
        assert_eq!(commit(m, 1)[0].1, ErrorCode::NOT_COORDINATOR);
    }

    let leader = members[idx(old)].as_ref().expect("leader");
    for offset in 1..=20 {
        assert_eq!(commit(leader, offset)[0].1, ErrorCode::NONE);
    }
    assert_eq!(fetched(leader), Ok(Some(20)));
    // Answered only once replicated: every ISR member's log already holds the last commit.
    let end = leader.replica(topic_id).expect("replica").log_end_offset();
    until("followers holding the committed records", || {
        members.iter().flatten().all(|m| {
            m.replica(topic_id)
                .is_some_and(|p| p.log_end_offset() == end)
        })
    });

    members[idx(old)].take().expect("leader").crash();
    let mut saw_loading = false;
    until("a new leader serving the group", || {
        let Some(new) = leader_of(&members).filter(|l| *l != old) else {
            return false;
        };
        let m = members[idx(new)].as_ref().expect("new leader");
        match fetched(m) {
            Ok(offset) => {
                assert_eq!(offset, Some(20), "every acknowledged commit is loaded");
                true
            }
            Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS) => {
                saw_loading = true;
                false
            }
            Err(code) => {
                assert_eq!(code, ErrorCode::NOT_COORDINATOR);
                false
            }
        }
    });
    let new = leader_of(&members).expect("leader");
    let m = members[idx(new)].as_ref().expect("new leader");
    assert_eq!(commit(m, 21)[0].1, ErrorCode::NONE);
    assert_eq!(fetched(m), Ok(Some(21)));
    tracing::info!(saw_loading, "failed over");

    // The last follower gone too: no quorum, no ISR change, the high watermark stuck. A commit
    // is refused, and the new leader's memory (which holds it) is not shown until committed:
    // COORDINATOR_NOT_AVAILABLE while the commit wait times out, NOT_COORDINATOR once the
    // broker's lease lapsed (no controller answers its heartbeats, design §4.9).
    let follower = members
        .iter()
        .flatten()
        .find(|m| m.id != new)
        .map(|m| m.id)
        .expect("a follower");
    members[idx(follower)].take().expect("follower").crash();
    let m = members[idx(new)].as_ref().expect("new leader");
    let refused = [
        ErrorCode::COORDINATOR_NOT_AVAILABLE,
        ErrorCode::NOT_COORDINATOR,
    ];
    let code = commit(m, 22)[0].1;
    assert!(refused.contains(&code), "commit without a quorum: {code:?}");
    let answer = fetched(m);
    assert!(
        matches!(answer, Err(code) if refused.contains(&code)),
        "fetch without a quorum: {answer:?}"
    );
    for m in members.into_iter().flatten() {
        m.stop();
    }
}
