use weir_metadata::{
    AlterPartitionResult, BrokerId, IsrMember, LeaderRecovery, MetadataError, PartitionRegistration,
};

use crate::{AlterOutcome, FetchOutcome, IsrChange, LeaderConfig, LeaderError, LeaderState};

const LAG_MS: u64 = 30_000;

pub(super) fn reg(
    replicas: &[BrokerId],
    isr: &[BrokerId],
    leader_epoch: i32,
    partition_epoch: i32,
) -> PartitionRegistration {
    PartitionRegistration {
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader: 1,
        leader_epoch,
        partition_epoch,
        leader_recovery: LeaderRecovery::Recovered,
    }
}

pub(super) fn config(min_isr: usize) -> LeaderConfig {
    LeaderConfig {
        local: 1,
        local_broker_epoch: 10,
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: LAG_MS,
    }
}

/// Leader 1 of replicas 1, 2, 3, all in the ISR, min ISR 2, log end 100, checkpointed HW 80.
fn three(now: u64) -> LeaderState {
    LeaderState::new(config(2), &reg(&[1, 2, 3], &[1, 2, 3], 5, 7), 100, 80, now).unwrap()
}

fn committed(
    change: &IsrChange,
    partition_epoch: i32,
) -> Result<AlterPartitionResult, MetadataError> {
    Ok(AlterPartitionResult {
        leader: 1,
        leader_epoch: change.leader_epoch,
        partition_epoch,
        isr: change.isr(),
        leader_recovery: LeaderRecovery::Recovered,
    })
}

fn fetch(state: &mut LeaderState, id: BrokerId, offset: i64, now: u64) -> FetchOutcome {
    state
        .on_follower_fetch(id, 100 + i64::from(id), offset, now)
        .unwrap()
}

#[test]
fn starts_from_the_checkpoint_not_the_log_end() {
    let state = three(0);
    assert_eq!(state.high_watermark(), 80);
    // A checkpoint past the log end (the log lost an unflushed tail) is cut to it.
    let state = LeaderState::new(config(2), &reg(&[1, 2, 3], &[1, 2, 3], 5, 7), 50, 80, 0).unwrap();
    assert_eq!(state.high_watermark(), 50);
}

#[test]
fn refuses_a_registration_led_by_another_broker() {
    let mut r = reg(&[1, 2, 3], &[1, 2, 3], 5, 7);
    r.leader = 2;
    assert_eq!(
        LeaderState::new(config(2), &r, 100, 80, 0).unwrap_err(),
        LeaderError::NotLeader {
            local: 1,
            leader: 2
        }
    );
}

#[test]
fn high_watermark_is_the_smallest_fetch_offset_of_the_isr() {
    let mut state = three(0);
    assert!(
        !fetch(&mut state, 2, 95, 1).hw_moved,
        "3 has not fetched yet"
    );
    assert_eq!(state.high_watermark(), 80);
    assert!(fetch(&mut state, 3, 90, 2).hw_moved);
    assert_eq!(state.high_watermark(), 90);
    assert!(fetch(&mut state, 3, 100, 3).hw_moved);
    assert_eq!(state.high_watermark(), 95);
    assert!(fetch(&mut state, 2, 100, 4).hw_moved);
    assert_eq!(state.high_watermark(), 100);
    // The leader appends: followers must fetch it first.
    assert!(!state.on_leader_append(130));
    assert_eq!(state.high_watermark(), 100);
    fetch(&mut state, 2, 130, 5);
    assert!(fetch(&mut state, 3, 120, 6).hw_moved);
    assert_eq!(state.high_watermark(), 120);
}

#[test]
fn high_watermark_never_moves_back() {
    let mut state = three(0);
    fetch(&mut state, 2, 100, 1);
    fetch(&mut state, 3, 100, 1);
    assert_eq!(state.high_watermark(), 100);
    // A follower that restarted and lost an unflushed tail fetches from lower.
    assert!(!fetch(&mut state, 3, 70, 2).hw_moved);
    assert_eq!(state.high_watermark(), 100);
}

#[test]
fn fetch_past_the_leaders_end_and_unknown_replicas_are_refused() {
    let mut state = three(0);
    assert_eq!(
        state.on_follower_fetch(2, 1, 101, 0).unwrap_err(),
        LeaderError::FetchOffsetPastLogEnd {
            fetch_offset: 101,
            log_end: 100
        }
    );
    assert_eq!(
        state.on_follower_fetch(4, 1, 50, 0).unwrap_err(),
        LeaderError::UnknownReplica(4)
    );
    assert_eq!(
        state.on_follower_fetch(1, 1, 50, 0).unwrap_err(),
        LeaderError::UnknownReplica(1)
    );
}

#[test]
fn a_leader_alone_in_a_large_enough_isr_moves_the_high_watermark_on_append() {
    let mut state = LeaderState::new(config(1), &reg(&[1, 2], &[1], 0, 0), 0, 0, 0).unwrap();
    assert!(state.on_leader_append(10));
    assert_eq!(state.high_watermark(), 10);
}

#[test]
fn high_watermark_stays_while_the_committed_isr_is_below_min() {
    // ISR {1}, min 2: nothing advances, not even by the leader's own append.
    let mut state = LeaderState::new(config(2), &reg(&[1, 2, 3], &[1], 0, 0), 50, 40, 0).unwrap();
    assert!(!state.has_min_isr());
    assert!(!state.on_leader_append(60));
    assert_eq!(state.high_watermark(), 40);
    // 2 catches up: it is proposed and counts for the maximal ISR, but the committed ISR is
    // still {1}, below min: the strict rule holds the high watermark.
    let out = fetch(&mut state, 2, 60, 1);
    let change = out.propose.expect("expansion");
    assert_eq!(change.isr(), vec![1, 2]);
    assert!(!out.hw_moved);
    assert_eq!(state.high_watermark(), 40);
    // Committed: {1, 2} has min ISR, the high watermark moves to 2's offset.
    assert_eq!(
        state.on_alter_result(&change, committed(&change, 1)),
        AlterOutcome::Committed { hw_moved: true }
    );
    assert_eq!(state.isr(), &[1, 2]);
    assert_eq!(state.partition_epoch(), 1);
    assert_eq!(state.high_watermark(), 60);
}

#[test]
fn expansion_needs_the_high_watermark_and_the_epoch_start() {
    // Leader of epoch 5 with log end 100 (its epoch starts there), HW 80, ISR {1, 2}.
    let mut state =
        LeaderState::new(config(1), &reg(&[1, 2, 3], &[1, 2], 5, 7), 100, 80, 0).unwrap();
    // 3 at 90: past the HW but not the epoch start: it may hold records of an old epoch that
    // this leader truncated.
    assert_eq!(fetch(&mut state, 3, 90, 1).propose, None);
    let out = fetch(&mut state, 3, 100, 2);
    let change = out.propose.expect("expansion");
    assert_eq!(
        change,
        IsrChange {
            leader_epoch: 5,
            partition_epoch: 7,
            new_isr: vec![
                IsrMember {
                    id: 1,
                    broker_epoch: 10
                },
                IsrMember {
                    id: 2,
                    broker_epoch: -1
                },
                IsrMember {
                    id: 3,
                    broker_epoch: 103
                },
            ],
        }
    );
    assert_eq!(state.pending(), Some(&change));
}

#[test]
fn a_pending_addition_holds_the_high_watermark_at_its_offset() {
    let mut state =
        LeaderState::new(config(1), &reg(&[1, 2, 3], &[1, 2], 0, 0), 100, 100, 0).unwrap();
    fetch(&mut state, 3, 100, 1)
        .propose
        .expect("expansion of 3");
    state.on_leader_append(150);
    fetch(&mut state, 2, 150, 2);
    // 3 is in the maximal ISR at 100: the HW waits for it although the committed ISR {1, 2}
    // is at 150 (it might commit and then lead).
    assert_eq!(state.high_watermark(), 100);
    assert!(fetch(&mut state, 3, 140, 3).hw_moved);
    assert_eq!(state.high_watermark(), 140);
}

#[test]
fn one_proposal_in_flight() {
    let mut state = LeaderState::new(config(1), &reg(&[1, 2, 3], &[1], 0, 0), 10, 10, 0).unwrap();
    let first = fetch(&mut state, 2, 10, 1).propose.expect("expansion of 2");
    assert_eq!(
        fetch(&mut state, 3, 10, 2).propose,
        None,
        "2's change is in flight"
    );
    assert_eq!(state.tick(3), None);
    assert_eq!(
        state.on_alter_result(&first, committed(&first, 1)),
        AlterOutcome::Committed { hw_moved: false }
    );
    // The next fetch of 3 proposes it.
    let second = fetch(&mut state, 3, 10, 4).propose.expect("expansion of 3");
    assert_eq!(second.isr(), vec![1, 2, 3]);
    assert_eq!(second.partition_epoch, 1);
}

#[test]
fn shrink_after_the_lag_time_and_the_old_isr_governs_until_committed() {
    let mut state = three(0);
    fetch(&mut state, 2, 100, 1_000);
    fetch(&mut state, 3, 100, 1_000);
    state.on_leader_append(200);
    // 2 keeps up, 3 stops fetching.
    for t in (2_000..=40_000).step_by(1_000) {
        fetch(&mut state, 2, 200, t);
    }
    assert_eq!(state.tick(30_000), None, "3 caught up at 1 s, lag 30 s");
    let change = state.tick(31_001).expect("shrink");
    assert_eq!(change.isr(), vec![1, 2]);
    // Until committed, 3 still holds the high watermark.
    assert_eq!(state.high_watermark(), 100);
    assert_eq!(
        state.on_alter_result(&change, committed(&change, 8)),
        AlterOutcome::Committed { hw_moved: true }
    );
    assert_eq!(state.high_watermark(), 200);
    assert_eq!(state.isr(), &[1, 2]);
}

#[test]
fn a_follower_fetching_behind_is_caught_up_as_of_its_previous_fetch() {
    let mut state = three(0);
    // 3 fetches at 100 when the leader ends at 100, then the leader appends steadily and 3
    // always reaches the end the leader had at its previous fetch: never lagging.
    fetch(&mut state, 2, 100, 0);
    let mut end = 100;
    for t in (1..=100u64).map(|i| i * 1_000) {
        let reached = end;
        end += 10;
        state.on_leader_append(end);
        fetch(&mut state, 2, end, t);
        fetch(&mut state, 3, reached, t);
        assert_eq!(state.tick(t), None, "at {t} ms");
    }
}

#[test]
fn refused_for_stale_epochs_waits_for_metadata() {
    let mut state =
        LeaderState::new(config(1), &reg(&[1, 2, 3], &[1, 2], 0, 3), 10, 10, 0).unwrap();
    let change = fetch(&mut state, 3, 10, 1).propose.expect("expansion");
    assert_eq!(
        state.on_alter_result(
            &change,
            Err(MetadataError::InvalidUpdateVersion {
                request: 3,
                current: 4
            })
        ),
        AlterOutcome::AwaitingMetadata
    );
    assert_eq!(state.pending(), None);
    // No proposal until the metadata explaining it arrives.
    assert_eq!(fetch(&mut state, 3, 10, 2).propose, None);
    assert_eq!(state.tick(3), None);
    // The same partition epoch again is no news.
    assert_eq!(state.apply(&reg(&[1, 2, 3], &[1, 2], 0, 3), 4), Ok(false));
    assert_eq!(state.tick(5), None);
    // Epoch 4 (the controller shrank 2 away meanwhile): proposals resume.
    assert_eq!(state.apply(&reg(&[1, 2, 3], &[1], 0, 4), 6), Ok(false));
    assert_eq!(state.isr(), &[1]);
    let again = state.tick(7).expect("expansion of 3");
    assert_eq!(again.isr(), vec![1, 3]);
    assert_eq!(again.partition_epoch, 4);
}

#[test]
fn fenced_and_other_refusals() {
    let mut state = LeaderState::new(config(1), &reg(&[1, 2], &[1], 0, 0), 10, 10, 0).unwrap();
    let change = fetch(&mut state, 2, 10, 1).propose.expect("expansion");
    assert_eq!(
        state.on_alter_result(
            &change,
            Err(MetadataError::FencedLeaderEpoch {
                request: 0,
                current: 1
            })
        ),
        AlterOutcome::AwaitingMetadata
    );
    assert_eq!(state.tick(2), None);
    let mut state = LeaderState::new(config(1), &reg(&[1, 2], &[1], 0, 0), 10, 10, 0).unwrap();
    let change = fetch(&mut state, 2, 10, 1).propose.expect("expansion");
    // A replica the controller will not admit yet (fenced, shutting down): retried later.
    assert_eq!(
        state.on_alter_result(&change, Err(MetadataError::IneligibleReplica(2))),
        AlterOutcome::Retry
    );
    assert_eq!(state.tick(2), Some(change.clone()));
    // An answer to a proposal no longer in flight changes nothing.
    let stale = IsrChange {
        partition_epoch: 9,
        ..change.clone()
    };
    assert_eq!(
        state.on_alter_result(&stale, committed(&stale, 10)),
        AlterOutcome::Ignored
    );
    assert_eq!(state.pending(), Some(&change));
}

#[test]
fn an_answer_from_another_leader_epoch_waits_for_metadata() {
    let mut state = LeaderState::new(config(1), &reg(&[1, 2], &[1], 0, 0), 10, 10, 0).unwrap();
    let change = fetch(&mut state, 2, 10, 1).propose.expect("expansion");
    let mut answer = committed(&change, 1).unwrap();
    answer.leader_epoch = 1;
    assert_eq!(
        state.on_alter_result(&change, Ok(answer)),
        AlterOutcome::AwaitingMetadata
    );
    assert_eq!(state.isr(), &[1]);
}

#[test]
fn apply_refuses_other_leaders_and_epochs_and_ignores_older_partition_epochs() {
    let mut state = three(0);
    let mut other = reg(&[1, 2, 3], &[2, 3], 6, 8);
    other.leader = 2;
    assert_eq!(
        state.apply(&other, 1),
        Err(LeaderError::NotLeader {
            local: 1,
            leader: 2
        })
    );
    assert_eq!(
        state.apply(&reg(&[1, 2, 3], &[1, 2, 3], 6, 8), 1),
        Err(LeaderError::LeaderEpochChanged {
            registration: 6,
            current: 5
        })
    );
    assert_eq!(state.apply(&reg(&[1, 2, 3], &[1], 5, 6), 1), Ok(false));
    assert_eq!(state.isr(), &[1, 2, 3]);
}

#[test]
fn apply_of_a_shrunk_isr_releases_the_high_watermark() {
    let mut state = three(0);
    fetch(&mut state, 2, 100, 1);
    assert_eq!(state.high_watermark(), 80, "3 never fetched");
    // The controller fenced 3 and removed it from the ISR.
    assert_eq!(state.apply(&reg(&[1, 2, 3], &[1, 2], 5, 8), 2), Ok(true));
    assert_eq!(state.high_watermark(), 100);
}

#[test]
fn apply_follows_replica_changes() {
    let mut state = three(0);
    fetch(&mut state, 3, 100, 1);
    // Reassignment: 3 leaves, 4 joins.
    assert_eq!(state.apply(&reg(&[1, 2, 4], &[1, 2], 5, 8), 2), Ok(false));
    assert_eq!(state.follower_fetch_offset(3), None);
    assert_eq!(state.follower_fetch_offset(4), Some(-1));
    assert_eq!(
        state.on_follower_fetch(3, 1, 100, 3),
        Err(LeaderError::UnknownReplica(3))
    );
}

#[test]
fn a_member_that_never_fetches_is_shrunk_after_the_lag_time() {
    let mut state = three(1_000);
    fetch(&mut state, 2, 100, 2_000);
    assert_eq!(state.tick(1_000 + LAG_MS), None);
    let change = state.tick(2_000 + LAG_MS).expect("shrink");
    assert_eq!(change.isr(), vec![1, 2]);
}

#[test]
fn min_isr_change_applies_at_once() {
    let mut state = LeaderState::new(config(3), &reg(&[1, 2, 3], &[1, 2], 0, 0), 50, 0, 0).unwrap();
    fetch(&mut state, 2, 50, 1);
    assert_eq!(state.high_watermark(), 0);
    assert!(state.set_min_insync_replicas(2));
    assert_eq!(state.high_watermark(), 50);
}

#[test]
fn a_proposal_becomes_the_controllers_alter_partition_item() {
    let mut state = LeaderState::new(config(1), &reg(&[1, 2], &[1], 4, 9), 10, 10, 0).unwrap();
    let change = fetch(&mut state, 2, 10, 1).propose.expect("expansion");
    let topic_id = uuid::Uuid::from_u128(7);
    let item = change.to_item(topic_id, 3);
    assert_eq!(
        item,
        weir_metadata::AlterPartitionItem {
            topic_id,
            partition: 3,
            leader_epoch: 4,
            partition_epoch: 9,
            new_isr: vec![
                IsrMember {
                    id: 1,
                    broker_epoch: 10
                },
                IsrMember {
                    id: 2,
                    broker_epoch: 102
                },
            ],
            leader_recovery: LeaderRecovery::Recovered,
        }
    );
}
