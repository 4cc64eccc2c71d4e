//! The leader's side of a replicated partition: the high watermark and the ISR (KIP-497,
//! KIP-841, KIP-903, KIP-966's strict min-ISR rule).
//!
//! Safety rests on three rules, each checked by the tests' random walk:
//! - the high watermark is the smallest log end of the *maximal* ISR (the committed ISR and
//!   any replica a pending expansion adds), so it never passes what a committed member has;
//! - it only advances while the committed ISR has `min.insync.replicas` members, so every
//!   record below it is on at least that many replicas (what makes ELR sound);
//! - it never moves back.
//!
//! ISR changes go to the controller as proposals ([`IsrChange`], one in flight), and only the
//! committed answer or newer metadata changes the committed ISR: a shrink takes effect for the
//! high watermark once committed (until then the larger ISR governs, the safe direction), an
//! expansion counts for the high watermark at once but for the min-ISR rule only once
//! committed.

use std::collections::BTreeMap;

use weir_metadata::{
    AlterPartitionItem, AlterPartitionResult, BrokerId, IsrMember, LeaderRecovery, MetadataError,
    PartitionRegistration,
};

/// The leader's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// This broker.
    pub local: BrokerId,
    /// This broker's registration epoch, sent with its own ISR entry (KIP-903).
    pub local_broker_epoch: i64,
    /// `min.insync.replicas` of the topic (at least 1).
    pub min_insync_replicas: usize,
    /// `replica.lag.time.max.ms`: a member that has not caught up for longer leaves the ISR.
    pub replica_lag_time_max_ms: u64,
}

/// A proposed AlterPartition for this partition: the ISR the leader wants, against the
/// epochs it knows (the controller refuses it when they moved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
}

impl IsrChange {
    pub fn isr(&self) -> Vec<BrokerId> {
        self.new_isr.iter().map(|m| m.id).collect()
    }

    /// The AlterPartition item for partition `partition` of topic `topic_id`. The leader has
    /// finished any recovery by the time it proposes (it recovers its log before it serves),
    /// so the item always says `Recovered` (KIP-704).
    pub fn to_item(&self, topic_id: uuid::Uuid, partition: i32) -> AlterPartitionItem {
        AlterPartitionItem {
            topic_id,
            partition,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr: self.new_isr.clone(),
            leader_recovery: LeaderRecovery::Recovered,
        }
    }
}

/// What a follower's fetch changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOutcome {
    /// The high watermark advanced: wake the produces and fetches waiting for it.
    pub hw_moved: bool,
    /// An ISR expansion to send to the controller.
    pub propose: Option<IsrChange>,
}

/// What the controller's answer to a proposal changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterOutcome {
    /// The answer was for a proposal no longer in flight (newer metadata came first).
    Ignored,
    /// The ISR the controller committed is now the committed ISR.
    Committed { hw_moved: bool },
    /// The proposal was refused for epochs this leader does not know yet: no further
    /// proposal until newer metadata arrives ([`LeaderState::apply`]).
    AwaitingMetadata,
    /// Refused or lost for a reason that may pass: proposed again at a later tick.
    Retry,
}

/// Why the leader state refused an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    #[error("broker {leader} leads the partition in this registration, not broker {local}")]
    NotLeader { local: BrokerId, leader: BrokerId },
    #[error("the registration's leader epoch {registration} is not this leader's {current}")]
    LeaderEpochChanged { registration: i32, current: i32 },
    #[error("broker {0} is not a follower replica of this partition")]
    UnknownReplica(BrokerId),
    #[error("fetch offset {fetch_offset} is past the leader's log end {log_end}")]
    FetchOffsetPastLogEnd { fetch_offset: i64, log_end: i64 },
}

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follower {
    /// The offset of its last fetch (its log end, or its durable end under the default
    /// durability); -1 until it fetches from this leader.
    fetch_offset: i64,
    /// The last time its log end was known to reach the leader's (Kafka's
    /// `lastCaughtUpTimeMs`).
    last_caught_up_ms: u64,
    /// The leader's log end at its previous fetch, and when that was.
    last_fetch_leader_end: i64,
    last_fetch_ms: u64,
    /// The registration epoch its fetches carry; -1 until known.
    broker_epoch: i64,
}

impl Follower {
    fn new(now_ms: u64) -> Follower {
        Follower {
            fetch_offset: -1,
            // A new leader gives every replica a full lag period to show up, as Kafka does.
            last_caught_up_ms: now_ms,
            last_fetch_leader_end: -1,
            last_fetch_ms: now_ms,
            broker_epoch: -1,
        }
    }
}

/// One led replicated partition's high watermark and ISR state.
#[derive(Debug, Clone)]
pub struct LeaderState {
    config: LeaderConfig,
    leader_epoch: i32,
    partition_epoch: i32,
    /// The log end when this leader's epoch began: a follower joins the ISR only once it has
    /// every record of earlier epochs the leader kept.
    epoch_start_offset: i64,
    replicas: Vec<BrokerId>,
    /// The committed ISR (the image's, or the controller's answer).
    isr: Vec<BrokerId>,
    followers: BTreeMap<BrokerId, Follower>,
    pending: Option<IsrChange>,
    /// A proposal was refused for epochs this leader does not know: wait for metadata.
    awaiting_metadata: bool,
    leader_end: i64,
    high_watermark: i64,
}

impl LeaderState {
    /// Becomes the leader of `registration` (which must name this broker leader) with its
    /// log ending at `log_end`. The high watermark starts from `start_high_watermark` (the
    /// checkpoint or the one learnt as a follower), never the log end: records above it may
    /// be missing elsewhere.
    pub fn new(
        config: LeaderConfig,
        registration: &PartitionRegistration,
        log_end: i64,
        start_high_watermark: i64,
        now_ms: u64,
    ) -> Result<LeaderState, LeaderError> {
        if registration.leader != config.local {
            return Err(LeaderError::NotLeader {
                local: config.local,
                leader: registration.leader,
            });
        }
        let mut state = LeaderState {
            config,
            leader_epoch: registration.leader_epoch,
            partition_epoch: registration.partition_epoch,
            epoch_start_offset: log_end,
            replicas: registration.replicas.clone(),
            isr: registration.isr.clone(),
            followers: BTreeMap::new(),
            pending: None,
            awaiting_metadata: false,
            leader_end: log_end,
            high_watermark: start_high_watermark.clamp(0, log_end.max(0)),
        };
        state.sync_followers(now_ms);
        state.update_high_watermark();
        Ok(state)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    pub fn replicas(&self) -> &[BrokerId] {
        &self.replicas
    }

    /// The proposal in flight, if any.
    pub fn pending(&self) -> Option<&IsrChange> {
        self.pending.as_ref()
    }

    pub fn min_insync_replicas(&self) -> usize {
        self.config.min_insync_replicas
    }

    /// Whether the committed ISR has `min.insync.replicas` members: acks=all appends are
    /// refused (NOT_ENOUGH_REPLICAS) and the high watermark stays put otherwise.
    pub fn has_min_isr(&self) -> bool {
        self.isr.len() >= self.config.min_insync_replicas
    }

    /// The fetch offset a follower last reported; None for an unknown replica, -1 before
    /// its first fetch.
    pub fn follower_fetch_offset(&self, id: BrokerId) -> Option<i64> {
        self.followers.get(&id).map(|f| f.fetch_offset)
    }

    /// `min.insync.replicas` changed (a topic or broker config).
    pub fn set_min_insync_replicas(&mut self, min: usize) -> bool {
        self.config.min_insync_replicas = min.max(1);
        self.update_high_watermark()
    }

    /// The leader appended: its log now ends at `log_end`. Returns whether the high
    /// watermark moved (a leader alone in a large-enough ISR moves it at once).
    pub fn on_leader_append(&mut self, log_end: i64) -> bool {
        self.leader_end = self.leader_end.max(log_end);
        self.update_high_watermark()
    }

    /// A follower fetched from `fetch_offset` (so it has everything below it). Moves the
    /// high watermark and may propose adding the follower to the ISR.
    pub fn on_follower_fetch(
        &mut self,
        id: BrokerId,
        broker_epoch: i64,
        fetch_offset: i64,
        now_ms: u64,
    ) -> Result<FetchOutcome, LeaderError> {
        if fetch_offset > self.leader_end {
            return Err(LeaderError::FetchOffsetPastLogEnd {
                fetch_offset,
                log_end: self.leader_end,
            });
        }
        let leader_end = self.leader_end;
        let follower = self
            .followers
            .get_mut(&id)
            .ok_or(LeaderError::UnknownReplica(id))?;
        // Kafka's rule: caught up now if it reached the leader's end, or caught up as of its
        // previous fetch if it reached the end the leader had then.
        if fetch_offset >= leader_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= follower.last_fetch_leader_end {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.last_fetch_leader_end = leader_end;
        follower.last_fetch_ms = now_ms;
        follower.fetch_offset = fetch_offset;
        follower.broker_epoch = broker_epoch;
        let hw_moved = self.update_high_watermark();
        let propose = if self.may_propose() && self.may_join(id) {
            let mut isr = self.isr.clone();
            isr.push(id);
            self.propose(isr)
        } else {
            None
        };
        Ok(FetchOutcome { hw_moved, propose })
    }

    /// The passing of time: proposes removing the members that have not caught up for
    /// `replica.lag.time.max.ms`, else (a refused or lost proposal is retried here) adding
    /// followers that may join.
    pub fn tick(&mut self, now_ms: u64) -> Option<IsrChange> {
        if !self.may_propose() {
            return None;
        }
        let lagging: Vec<BrokerId> = self
            .isr
            .iter()
            .copied()
            .filter(|id| *id != self.config.local && !self.caught_up(*id, now_ms))
            .collect();
        if !lagging.is_empty() {
            let isr = self
                .isr
                .iter()
                .copied()
                .filter(|id| !lagging.contains(id))
                .collect();
            return self.propose(isr);
        }
        let joining: Vec<BrokerId> = self
            .followers
            .keys()
            .copied()
            .filter(|id| self.may_join(*id))
            .collect();
        if joining.is_empty() {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.extend(joining);
        self.propose(isr)
    }

    /// The controller answered the proposal `sent`.
    pub fn on_alter_result(
        &mut self,
        sent: &IsrChange,
        result: Result<AlterPartitionResult, MetadataError>,
    ) -> AlterOutcome {
        if self.pending.as_ref() != Some(sent) {
            return AlterOutcome::Ignored;
        }
        self.pending = None;
        match result {
            Ok(done) if done.leader_epoch != self.leader_epoch => {
                // Leadership moved on: the metadata saying so is on its way.
                self.awaiting_metadata = true;
                AlterOutcome::AwaitingMetadata
            }
            Ok(done) if done.partition_epoch < self.partition_epoch => AlterOutcome::Ignored,
            Ok(done) => {
                self.partition_epoch = done.partition_epoch;
                self.isr = done.isr;
                AlterOutcome::Committed {
                    hw_moved: self.update_high_watermark(),
                }
            }
            Err(
                MetadataError::InvalidUpdateVersion { .. }
                | MetadataError::FencedLeaderEpoch { .. }
                | MetadataError::NotLeaderOrFollower(_)
                | MetadataError::StaleBrokerEpoch { .. }
                | MetadataError::UnknownTopicOrPartition(_)
                | MetadataError::UnknownTopicId(_),
            ) => {
                self.awaiting_metadata = true;
                AlterOutcome::AwaitingMetadata
            }
            Err(_) => AlterOutcome::Retry,
        }
    }

    /// Newer metadata for the partition. A registration with another leader or leader epoch
    /// is an error: the caller changes the replica's role (a new `LeaderState` for a new
    /// epoch). Returns whether the high watermark moved.
    pub fn apply(
        &mut self,
        registration: &PartitionRegistration,
        now_ms: u64,
    ) -> Result<bool, LeaderError> {
        if registration.leader != self.config.local {
            return Err(LeaderError::NotLeader {
                local: self.config.local,
                leader: registration.leader,
            });
        }
        if registration.leader_epoch != self.leader_epoch {
            return Err(LeaderError::LeaderEpochChanged {
                registration: registration.leader_epoch,
                current: self.leader_epoch,
            });
        }
        if registration.partition_epoch < self.partition_epoch {
            return Ok(false);
        }
        if registration.partition_epoch > self.partition_epoch {
            // Whatever was in flight was decided (or overtaken) by this change.
            self.pending = None;
            self.awaiting_metadata = false;
        }
        self.partition_epoch = registration.partition_epoch;
        self.replicas = registration.replicas.clone();
        self.isr = registration.isr.clone();
        self.sync_followers(now_ms);
        Ok(self.update_high_watermark())
    }

    /// Keeps a follower entry for exactly the other replicas.
    fn sync_followers(&mut self, now_ms: u64) {
        let local = self.config.local;
        let replicas = &self.replicas;
        self.followers
            .retain(|id, _| *id != local && replicas.contains(id));
        for id in replicas {
            if *id != local {
                self.followers
                    .entry(*id)
                    .or_insert_with(|| Follower::new(now_ms));
            }
        }
    }

    fn may_propose(&self) -> bool {
        self.pending.is_none() && !self.awaiting_metadata
    }

    /// Kafka's expansion rule: a replica outside the ISR whose log reaches both the high
    /// watermark and the start of this leader's epoch.
    fn may_join(&self, id: BrokerId) -> bool {
        if self.isr.contains(&id) {
            return false;
        }
        self.followers.get(&id).is_some_and(|f| {
            f.fetch_offset >= 0
                && f.fetch_offset >= self.high_watermark
                && f.fetch_offset >= self.epoch_start_offset
        })
    }

    fn caught_up(&self, id: BrokerId, now_ms: u64) -> bool {
        match self.followers.get(&id) {
            Some(f) => {
                f.fetch_offset >= self.leader_end
                    || now_ms.saturating_sub(f.last_caught_up_ms)
                        <= self.config.replica_lag_time_max_ms
            }
            // A member that is not a replica (reassignment in flight) never fetches.
            None => false,
        }
    }

    fn propose(&mut self, isr: Vec<BrokerId>) -> Option<IsrChange> {
        if isr == self.isr {
            return None;
        }
        let new_isr = isr
            .iter()
            .map(|id| IsrMember {
                id: *id,
                broker_epoch: if *id == self.config.local {
                    self.config.local_broker_epoch
                } else {
                    self.followers.get(id).map_or(-1, |f| f.broker_epoch)
                },
            })
            .collect();
        let change = IsrChange {
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
        };
        self.pending = Some(change.clone());
        Some(change)
    }

    /// The members the high watermark waits for: the committed ISR and whatever a pending
    /// change adds.
    fn maximal_isr(&self) -> impl Iterator<Item = BrokerId> + '_ {
        let added = self
            .pending
            .iter()
            .flat_map(|p| p.new_isr.iter().map(|m| m.id))
            .filter(|id| !self.isr.contains(id));
        self.isr.iter().copied().chain(added)
    }

    fn update_high_watermark(&mut self) -> bool {
        if !self.has_min_isr() {
            return false;
        }
        let mut candidate = self.leader_end;
        for id in self.maximal_isr() {
            if id == self.config.local {
                continue;
            }
            // A member that never fetched from this leader holds the high watermark back.
            let offset = self.followers.get(&id).map_or(-1, |f| f.fetch_offset);
            candidate = candidate.min(offset);
        }
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            true
        } else {
            false
        }
    }
}
