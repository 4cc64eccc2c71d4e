//! A seeded random walk of a leader, its followers and a controller, checking after every
//! step the invariants the high watermark's safety rests on.

use std::collections::BTreeMap;

use weir_metadata::{AlterPartitionResult, BrokerId, LeaderRecovery, MetadataError};

use super::leader::{config, reg};
use crate::{IsrChange, LeaderState};

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The controller's truth for the partition.
struct Controller {
    isr: Vec<BrokerId>,
    partition_epoch: i32,
}

/// Returns how often the high watermark moved.
fn walk(seed: u64) -> u32 {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n = 2 + rng.below(4) as i32; // 2..=5 replicas, the leader is 1
    let replicas: Vec<BrokerId> = (1..=n).collect();
    let min_isr = 1 + rng.below(n as u64) as usize;
    let mut ctrl = Controller {
        isr: replicas.clone(),
        partition_epoch: 0,
    };
    let mut leader_end = rng.below(50) as i64;
    let start_hw = rng.below(leader_end as u64 + 1) as i64;
    let mut now = 0u64;
    let mut state = LeaderState::new(
        config(min_isr),
        &reg(&replicas, &ctrl.isr, 3, 0),
        leader_end,
        start_hw,
        now,
    )
    .unwrap();
    // What each follower has (its log end) and last reported.
    let mut has: BTreeMap<BrokerId, i64> = replicas[1..].iter().map(|id| (*id, 0)).collect();
    let mut reported: BTreeMap<BrokerId, i64> = BTreeMap::new();
    // Proposals the controller has not answered yet, and registrations not yet delivered.
    let mut in_flight: Vec<IsrChange> = Vec::new();
    let mut unpublished: Vec<(Vec<BrokerId>, i32)> = Vec::new();
    let mut hw = state.high_watermark();
    let mut moves = 0;
    for step in 0..400 {
        let ctx = format!("seed {seed} step {step}");
        now += rng.below(3_000);
        let mut proposed = None;
        match rng.below(10) {
            0 | 1 => {
                leader_end += 1 + rng.below(20) as i64;
                state.on_leader_append(leader_end);
            }
            2..=5 => {
                let id = 2 + rng.below(n as u64 - 1) as i32;
                // A follower that is not "down" copies some of the leader's log; now and
                // then it restarts and lost an unflushed tail.
                let mine = has.get_mut(&id).unwrap();
                if rng.chance(5) {
                    *mine = (*mine - rng.below(10) as i64).max(0);
                } else if rng.chance(80) {
                    *mine = (*mine + rng.below(30) as i64).min(leader_end);
                }
                let offset = *mine;
                let out = state.on_follower_fetch(id, 100, offset, now).unwrap();
                reported.insert(id, offset);
                proposed = out.propose;
            }
            6 => proposed = state.tick(now),
            7 => {
                // The controller answers the oldest proposal.
                if !in_flight.is_empty() {
                    let change = in_flight.remove(0);
                    let result = if change.partition_epoch == ctrl.partition_epoch {
                        ctrl.partition_epoch += 1;
                        ctrl.isr = change.isr();
                        unpublished.push((ctrl.isr.clone(), ctrl.partition_epoch));
                        Ok(AlterPartitionResult {
                            leader: 1,
                            leader_epoch: 3,
                            partition_epoch: ctrl.partition_epoch,
                            isr: ctrl.isr.clone(),
                            leader_recovery: LeaderRecovery::Recovered,
                        })
                    } else if rng.chance(50) {
                        Err(MetadataError::InvalidUpdateVersion {
                            request: change.partition_epoch,
                            current: ctrl.partition_epoch,
                        })
                    } else {
                        Err(MetadataError::IneligibleReplica(2))
                    };
                    state.on_alter_result(&change, result);
                }
            }
            8 => {
                // The controller fences a follower: out of the ISR.
                let id = 2 + rng.below(n as u64 - 1) as i32;
                if ctrl.isr.contains(&id) {
                    ctrl.isr.retain(|m| *m != id);
                    ctrl.partition_epoch += 1;
                    unpublished.push((ctrl.isr.clone(), ctrl.partition_epoch));
                }
            }
            _ => {
                // Metadata reaches the leader, in order.
                if !unpublished.is_empty() {
                    let (isr, pe) = unpublished.remove(0);
                    state.apply(&reg(&replicas, &isr, 3, pe), now).unwrap();
                }
            }
        }
        if let Some(change) = proposed {
            assert_eq!(state.pending(), Some(&change), "{ctx}");
            assert!(
                change.isr().contains(&1),
                "{ctx}: the leader stays in the ISR"
            );
            in_flight.push(change);
        }
        let new_hw = state.high_watermark();
        assert!(
            new_hw >= hw,
            "{ctx}: high watermark went back from {hw} to {new_hw}"
        );
        assert!(
            new_hw <= leader_end,
            "{ctx}: high watermark past the log end"
        );
        if new_hw > hw {
            moves += 1;
            assert!(state.has_min_isr(), "{ctx}: moved below min ISR");
            for id in state.isr().iter().filter(|id| **id != 1) {
                let at = reported.get(id).copied().unwrap_or(-1);
                assert!(
                    new_hw <= at,
                    "{ctx}: HW {new_hw} passed ISR member {id} at {at}"
                );
            }
            // The durability claim itself: the records below the HW were on min ISR replicas
            // (the leader and the followers that reported having them).
            let holders = 1 + reported.values().filter(|at| **at >= new_hw).count();
            assert!(
                holders >= min_isr,
                "{ctx}: HW {new_hw} on {holders} < {min_isr} replicas"
            );
        }
        hw = new_hw;
    }
    moves
}

#[test]
fn random_walks_keep_the_high_watermark_safe() {
    // A walk that never moves the high watermark checks nothing: most must move it often.
    let busy = (0..2_000).filter(|seed| walk(*seed) >= 10).count();
    assert!(
        busy >= 1_500,
        "only {busy} of 2000 walks moved the high watermark 10 times"
    );
}
