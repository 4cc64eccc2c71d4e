//! The replica's role and the replicated leader's high watermark (design §5.1, §5.4).
//!
//! Only the metadata publisher changes roles, in metadata order; a change names a leader
//! epoch and never goes back to an older one (FENCED_LEADER_EPOCH). Every role change and
//! every change of a replicated leader's state happens under `replication`'s lock, so an
//! append sees one role from its check to its end. A partition that leads alone (every
//! partition of a single node) never takes that lock: its high watermark is its log end.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use weir_metadata::{AlterPartitionResult, BrokerId, MetadataError, PartitionRegistration};
use weir_replication::{AlterOutcome, IsrChange, LeaderConfig, LeaderState, ReplicaLog};
use weir_storage::AppendInfo;

use super::{
    Acks, Durable, Partition, PartitionError, ReadResult, ReadSpec, Watermarks, DELETED, FOLLOWER,
    LEADER_ALONE, LEADER_REPLICATED, NOT_REPLICA, SHUTTING_DOWN,
};

/// What a producer's answer still waits for after its append.
#[derive(Debug, Default)]
pub struct AckWait {
    /// The leader's fsync (the broker's durability policy).
    pub fsync: Option<Durable>,
    /// The high watermark passing the records (acks=all on a replicated leader).
    pub replicated: Option<HwWait>,
}

impl AckWait {
    /// Nothing to wait for: answer at once.
    pub fn is_empty(&self) -> bool {
        self.fsync.is_none() && self.replicated.is_none()
    }

    /// Starts the fsync at once (see [`Durable::wait`]) and completes when both it and the
    /// replication are done; `timeout` (the produce's `timeout_ms`) bounds the replication.
    pub fn wait(self, timeout: Duration) -> impl Future<Output = Result<(), PartitionError>> {
        let fsync = self.fsync.map(Durable::wait);
        let replicated = self.replicated.map(|w| w.wait(timeout));
        async move {
            if let Some(replicated) = replicated {
                replicated.await?;
            }
            if let Some(fsync) = fsync {
                fsync.await?;
            }
            Ok(())
        }
    }
}

/// acks=all on a replicated leader: the answer waits until the high watermark passes
/// `offset` under the leader epoch of the append.
#[derive(Debug)]
pub struct HwWait {
    partition: Arc<Partition>,
    offset: i64,
    leader_epoch: i32,
}

impl HwWait {
    /// Completes once the high watermark reaches the append's end. Fails with
    /// NOT_LEADER_OR_FOLLOWER when this replica stops leading that epoch,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR falls below `min.insync.replicas`, and
    /// REQUEST_TIMED_OUT after `timeout`.
    pub async fn wait(self, timeout: Duration) -> Result<(), PartitionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribed before the first check: a change after it wakes the loop.
        let mut events = self.partition.hw_events.subscribe();
        loop {
            events.borrow_and_update();
            if self
                .partition
                .replicated_up_to(self.leader_epoch, self.offset)?
            {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, events.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(PartitionError::ShuttingDown),
                Err(_) => {
                    return Err(PartitionError::ReplicationTimeout {
                        offset: self.offset,
                        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    })
                }
            }
        }
    }
}

impl Partition {
    /// This replica leads the replicated partition of `registration` (which names it leader)
    /// from `registration.leader_epoch` on. A newer epoch starts a new `LeaderState` whose high
    /// watermark starts from the one this replica knew (checkpoint or follower), never its
    /// log end; the same epoch again applies the registration (ISR, replicas, partition
    /// epoch) to the current state.
    pub fn become_replicated_leader(
        &self,
        registration: &PartitionRegistration,
        config: LeaderConfig,
        now_ms: u64,
    ) -> Result<(), PartitionError> {
        self.check_open()?;
        let epoch = registration.leader_epoch;
        let mut replication = self.lock_replication();
        if let Some(leader) = replication.as_mut().filter(|l| l.leader_epoch() == epoch) {
            leader.set_min_insync_replicas(config.min_insync_replicas);
            leader.apply(registration, now_ms)?;
            self.high_watermark
                .store(leader.high_watermark(), Ordering::Release);
        } else {
            self.check_newer_epoch(epoch)?;
            let end = self.log.log_end_offset();
            let known = match self.role.load(Ordering::Acquire) {
                LEADER_ALONE => end,
                _ => self.high_watermark.load(Ordering::Acquire),
            };
            let leader = LeaderState::new(config, registration, end, known, now_ms)?;
            self.log.set_leader_epoch(epoch)?;
            self.leader_epoch.fetch_max(epoch, Ordering::AcqRel);
            self.high_watermark
                .store(leader.high_watermark(), Ordering::Release);
            self.leader_id.store(config.local, Ordering::Release);
            *replication = Some(leader);
            self.role.store(LEADER_REPLICATED, Ordering::Release);
        }
        drop(replication);
        // Readers and waiting produces must see the new epoch and ISR.
        self.changed();
        self.hw_event();
        Ok(())
    }

    /// This replica follows `leader` from `epoch` on: a leader's state is dropped and the
    /// produces waiting for its high watermark fail with NOT_LEADER_OR_FOLLOWER.
    pub fn become_follower(&self, epoch: i32, leader: BrokerId) -> Result<(), PartitionError> {
        self.check_open()?;
        let mut replication = self.lock_replication();
        self.check_newer_epoch(epoch)?;
        if self.role.load(Ordering::Acquire) == LEADER_ALONE {
            self.high_watermark
                .store(self.log.log_end_offset(), Ordering::Release);
        }
        *replication = None;
        self.leader_epoch.fetch_max(epoch, Ordering::AcqRel);
        self.leader_id.store(leader, Ordering::Release);
        self.role.store(FOLLOWER, Ordering::Release);
        drop(replication);
        self.changed();
        self.hw_event();
        Ok(())
    }

    /// This broker is no longer a replica (reassigned away): reads and writes fail with
    /// NOT_LEADER_OR_FOLLOWER until metadata gives it a role again.
    pub fn become_not_replica(&self) {
        let mut replication = self.lock_replication();
        *replication = None;
        self.leader_id.store(-1, Ordering::Release);
        self.role.store(NOT_REPLICA, Ordering::Release);
        drop(replication);
        self.changed();
        self.hw_event();
    }

    /// The leader this follower copies; None when this replica is not a follower.
    pub fn leader_id(&self) -> Option<BrokerId> {
        (self.role.load(Ordering::Acquire) == FOLLOWER)
            .then(|| self.leader_id.load(Ordering::Acquire))
    }

    /// Whether this replica leads a replicated partition (it then has a checkpointed high
    /// watermark, as followers do).
    pub fn is_replicated(&self) -> bool {
        matches!(
            self.role.load(Ordering::Acquire),
            LEADER_REPLICATED | FOLLOWER
        )
    }

    /// The high watermark to checkpoint: None for a replica leading alone (its log end is
    /// its high watermark) or not a replica.
    pub fn checkpoint_high_watermark(&self) -> Option<i64> {
        self.is_replicated().then(|| self.high_watermark())
    }

    /// The committed ISR of a replicated leader.
    pub fn isr(&self) -> Option<Vec<BrokerId>> {
        self.lock_replication().as_ref().map(|l| l.isr().to_vec())
    }

    /// A follower fetched from this replicated leader (design §5.3): the high watermark may
    /// move (waking produces and fetches), and an ISR expansion may be proposed.
    pub fn on_follower_fetch(
        &self,
        follower: BrokerId,
        broker_epoch: i64,
        fetch_offset: i64,
        now_ms: u64,
    ) -> Result<Option<IsrChange>, PartitionError> {
        self.with_leader(|l| {
            let out = l.on_follower_fetch(follower, broker_epoch, fetch_offset, now_ms)?;
            Ok((out.hw_moved, out.propose))
        })
    }

    /// A replica fetch on this leader (design §5.3): whole batches from `spec.offset` up to
    /// the log end, not the high watermark (a follower copies what the leader has so that
    /// the high watermark can pass it). Epoch and role checks as a consumer's read;
    /// `spec.isolation` is ignored and no aborted list is built.
    pub fn read_for_follower(&self, spec: &ReadSpec) -> Result<ReadResult, PartitionError> {
        self.check_open()?;
        self.check_epoch(spec.leader_epoch)?;
        self.check_leader()?;
        if spec.offset == self.log.log_end_offset() {
            // A caught-up follower (every partition of an idle cluster, each round): nothing
            // to read, so no segment lookup.
            return Ok(ReadResult {
                records: bytes::Bytes::new(),
                watermarks: self.watermarks(),
                aborted: None,
            });
        }
        let out = if spec.min_one_batch {
            self.log.read(spec.offset, spec.max_bytes)?
        } else {
            self.log.read_at_most(spec.offset, spec.max_bytes)?
        };
        let high_watermark = self.high_watermark().min(out.log_end_offset);
        Ok(ReadResult {
            records: out.records,
            watermarks: Watermarks {
                log_start_offset: out.log_start_offset,
                high_watermark,
                last_stable_offset: self.log.last_stable_offset().min(high_watermark),
            },
            aborted: None,
        })
    }

    /// Where epoch `epoch` ends on this leader (for a replica fetch's divergence check, Kafka's
    /// `lastOffsetForLeaderEpoch`): the largest known epoch at or below it and where the next
    /// starts, or None (UNDEFINED).
    pub fn leader_end_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.log.end_offset_for_epoch(epoch)
    }

    /// A follower whose log ends below its leader's log start starts over empty there
    /// (blocking; OFFSET_OUT_OF_RANGE in a replica fetch). Returns the new log start.
    pub fn reset_to(&self, offset: i64) -> Result<i64, PartitionError> {
        self.check_open()?;
        let start = self.as_follower(|| Ok(self.log.reset_to(offset)?))?;
        self.high_watermark.fetch_max(start, Ordering::AcqRel);
        self.changed();
        Ok(start)
    }

    /// The replication timer: may propose an ISR shrink (or retry an expansion).
    pub fn replication_tick(&self, now_ms: u64) -> Result<Option<IsrChange>, PartitionError> {
        self.with_leader(|l| Ok((false, l.tick(now_ms))))
    }

    /// The controller answered the ISR change `sent`.
    pub fn on_alter_partition_result(
        &self,
        sent: &IsrChange,
        result: Result<AlterPartitionResult, MetadataError>,
    ) -> Result<AlterOutcome, PartitionError> {
        self.with_leader(|l| {
            let outcome = l.on_alter_result(sent, result);
            // A committed ISR can also fail waiters (below min ISR): wake them either way.
            Ok((matches!(outcome, AlterOutcome::Committed { .. }), outcome))
        })
    }

    /// Runs `f` on the replicated leader's state; `f` says whether to wake waiters.
    fn with_leader<T>(
        &self,
        f: impl FnOnce(&mut LeaderState) -> Result<(bool, T), PartitionError>,
    ) -> Result<T, PartitionError> {
        self.check_open()?;
        let mut replication = self.lock_replication();
        let Some(leader) = replication.as_mut() else {
            return Err(PartitionError::WrongRole { role: self.role() });
        };
        let (wake, out) = f(leader)?;
        let hw = leader.high_watermark();
        let moved = self.high_watermark.swap(hw, Ordering::AcqRel) != hw;
        drop(replication);
        if moved {
            self.changed();
        }
        if moved || wake {
            self.hw_event();
        }
        Ok(out)
    }

    /// A replicated leader's append: refused under `min.insync.replicas` for acks=all (as
    /// Kafka does, before writing), then written and reported to the leader state, all under
    /// the lock so that the role cannot change in between.
    pub(super) fn append_replicated(
        self: &Arc<Self>,
        batches: &mut [u8],
        acks: Acks,
        now_ms: i64,
    ) -> Result<(AppendInfo, Option<HwWait>), PartitionError> {
        let mut replication = self.lock_replication();
        let Some(leader) = replication.as_mut() else {
            return Err(PartitionError::WrongRole { role: self.role() });
        };
        if acks == Acks::All && !leader.has_min_isr() {
            return Err(PartitionError::NotEnoughReplicas {
                isr: leader.isr().len(),
                min: leader.min_insync_replicas(),
            });
        }
        let info = self.log.append_from_client(batches, now_ms)?;
        let end = info.last_offset + 1;
        let moved = leader.on_leader_append(end);
        if moved {
            self.high_watermark
                .store(leader.high_watermark(), Ordering::Release);
        }
        let leader_epoch = leader.leader_epoch();
        drop(replication);
        if moved {
            self.hw_event();
        }
        let wait = (acks == Acks::All).then(|| HwWait {
            partition: self.clone(),
            offset: end,
            leader_epoch,
        });
        Ok((info, wait))
    }

    /// A marker was appended: a replicated leader's state learns the new log end.
    pub(super) fn leader_appended(&self, end: i64) {
        if self.role.load(Ordering::Acquire) != LEADER_REPLICATED {
            return;
        }
        let mut replication = self.lock_replication();
        let moved = replication.as_mut().is_some_and(|l| {
            let moved = l.on_leader_append(end);
            self.high_watermark
                .store(l.high_watermark(), Ordering::Release);
            moved
        });
        drop(replication);
        if moved {
            self.hw_event();
        }
    }

    /// Whether the high watermark of the leader of `leader_epoch` passed `offset`.
    fn replicated_up_to(&self, leader_epoch: i32, offset: i64) -> Result<bool, PartitionError> {
        match self.status.load(Ordering::Acquire) {
            DELETED => return Err(PartitionError::Deleted),
            SHUTTING_DOWN => return Err(PartitionError::ShuttingDown),
            _ => {}
        }
        let replication = self.lock_replication();
        let Some(leader) = replication
            .as_ref()
            .filter(|l| l.leader_epoch() == leader_epoch)
        else {
            return Err(PartitionError::WrongRole { role: self.role() });
        };
        if leader.high_watermark() >= offset {
            Ok(true)
        } else if !leader.has_min_isr() {
            Err(PartitionError::NotEnoughReplicasAfterAppend {
                offset,
                min: leader.min_insync_replicas(),
            })
        } else {
            Ok(false)
        }
    }

    /// Completes once every offset below `end` is committed under `leader_epoch`: fsynced
    /// here and, on a replicated leader, below the high watermark (a coordinator shard's
    /// answers wait for this, design §7.1). Fails as [`HwWait::wait`] does, and with
    /// `WrongRole` once this replica no longer leads that epoch.
    pub async fn wait_committed(
        self: &Arc<Self>,
        leader_epoch: i32,
        end: i64,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        match self.role.load(Ordering::Acquire) {
            LEADER_REPLICATED => {
                let wait = HwWait {
                    partition: self.clone(),
                    offset: end,
                    leader_epoch,
                };
                wait.wait(timeout).await?;
            }
            LEADER_ALONE if self.leader_epoch() == leader_epoch => {}
            role => {
                return Err(PartitionError::WrongRole {
                    role: super::role_of(role),
                })
            }
        }
        Durable {
            partition: self.clone(),
            offset: end,
        }
        .wait()
        .await
    }

    pub(super) fn check_newer_epoch(&self, epoch: i32) -> Result<(), PartitionError> {
        let current = self.leader_epoch();
        if epoch < current {
            return Err(PartitionError::FencedLeaderEpoch {
                requested: epoch,
                current,
            });
        }
        Ok(())
    }

    /// Runs a follower's write to its log (an append of its leader's batches, a truncation, a
    /// reset, a new log start) with the role held: under `replication`'s lock, which every
    /// role change takes. Checking the role first and writing after would let a replica that
    /// just started leading take its old leader's late batches, or cut its log, behind the
    /// first appends it accepted as leader.
    pub(super) fn as_follower<T>(
        &self,
        write: impl FnOnce() -> Result<T, PartitionError>,
    ) -> Result<T, PartitionError> {
        let _role = self.lock_replication();
        self.check_follower()?;
        write()
    }

    pub(super) fn lock_replication(&self) -> MutexGuard<'_, Option<LeaderState>> {
        self.replication.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the produces waiting for the high watermark (they re-check role, ISR and HW).
    pub(super) fn hw_event(&self) {
        self.hw_events.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// The replica fetcher's access to a follower replica.
impl ReplicaLog for Partition {
    type Error = PartitionError;

    fn log_end_offset(&self) -> i64 {
        Partition::log_end_offset(self)
    }

    fn durable_offset(&self) -> i64 {
        self.log.durable_offset()
    }

    fn latest_epoch(&self) -> i32 {
        self.log.leader_epochs().last().map_or(-1, |e| e.epoch)
    }

    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.log.end_offset_for_epoch(epoch)
    }

    fn append_as_follower(&self, batches: &mut [u8], now_ms: i64) -> Result<i64, PartitionError> {
        Partition::append_as_follower(self, batches, now_ms).map(|info| info.last_offset + 1)
    }

    fn truncate_to(&self, offset: i64) -> Result<i64, PartitionError> {
        Partition::truncate_to(self, offset)
    }

    fn flush_to(&self, offset: i64) -> Result<(), PartitionError> {
        Partition::flush_to(self, offset)
    }

    fn set_follower_high_watermark(&self, high_watermark: i64) {
        Partition::set_follower_high_watermark(self, high_watermark);
    }

    fn advance_log_start(&self, offset: i64) -> Result<i64, PartitionError> {
        self.check_open()?;
        let start = self.as_follower(|| {
            let start = self.log.log_start_offset();
            if offset <= start {
                return Ok(None);
            }
            Ok(Some(self.log.delete_records_before(offset)?))
        })?;
        let Some(start) = start else {
            return Ok(self.log.log_start_offset());
        };
        self.changed();
        Ok(start)
    }
}

#[cfg(test)]
#[path = "role_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "failover_tests.rs"]
mod failover_tests;
