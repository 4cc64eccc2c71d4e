//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, retention, and replay of the
//! offsets log at startup.
//!
//! The in-memory table is the coordinator's; the offsets log is the broker's. Every change
//! to the table comes out as an [`Output::PersistOffsets`] or [`Output::DeleteOffsets`].

use std::collections::btree_map::Entry;
use std::collections::BTreeSet;

use tracing::{debug, info};

use crate::coordinator::Coordinator;
use crate::group::{Ctx, Group};
use crate::types::{
    CommitRequest, CommittedOffset, DeleteOffsetsResponse, GroupSnapshot, GroupState, Output,
    TopicPartition, TxnCommitRequest,
};
use crate::{CoordinatorConfig, ErrorCode};

impl Group {
    /// When this committed offset expires, if it can: Empty groups lose all offsets
    /// `offsets_retention_ms` after they became empty (or after the commit, if later);
    /// groups that only store offsets lose each one that long after it was committed; a
    /// Stable consumer group loses offsets of topics it no longer subscribes to. Kafka
    /// counts Empty groups from the state change alone, which would expire a commit made
    /// to a long-empty group at once; we take the later of the two.
    fn offset_expiry(
        &self,
        tp: &TopicPartition,
        offset: &CommittedOffset,
        config: &CoordinatorConfig,
    ) -> Option<u64> {
        if let Some(consumer) = &self.consumer {
            // Kafka's consumer groups keep offsets of subscribed topics; the rest expire
            // by commit time (counted from emptiness too, as for classic groups).
            let base = if consumer.members.is_empty() {
                offset.commit_timestamp_ms.max(self.state_since_ms)
            } else if consumer.is_subscribed_to(&tp.topic) {
                return None;
            } else {
                offset.commit_timestamp_ms
            };
            return Some(base.saturating_add(config.offsets_retention_ms));
        }
        let base = match (&self.protocol_type, self.state) {
            (None, _) => offset.commit_timestamp_ms,
            (Some(_), GroupState::Empty) => offset.commit_timestamp_ms.max(self.state_since_ms),
            (Some(_), GroupState::Stable)
                if self.is_consumer_group()
                    && self
                        .subscribed_topics
                        .as_ref()
                        .is_some_and(|topics| !topics.contains(&tp.topic)) =>
            {
                offset.commit_timestamp_ms
            }
            _ => return None,
        };
        Some(base.saturating_add(config.offsets_retention_ms))
    }

    pub(crate) fn next_offset_expiry(&self, config: &CoordinatorConfig) -> Option<u64> {
        self.offsets
            .iter()
            .filter_map(|(tp, offset)| self.offset_expiry(tp, offset, config))
            .min()
    }

    pub(crate) fn expire_offsets(&mut self, ctx: &mut Ctx<'_>) {
        let expired: Vec<TopicPartition> = self
            .offsets
            .iter()
            .filter(|(tp, offset)| {
                self.offset_expiry(tp, offset, ctx.config)
                    .is_some_and(|at| at <= ctx.now)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        for tp in &expired {
            self.offsets.remove(tp);
        }
        info!(group = %self.id, count = expired.len(), "committed offsets expired");
        ctx.out.push(Output::DeleteOffsets {
            group: self.id.clone(),
            partitions: expired,
        });
    }

    /// When an idle group (Empty, nothing pending, no offsets) is forgotten: a
    /// retention-check interval after it emptied, as Kafka's periodic cleanup would. (A
    /// group whose last offset expires is past that point already; OffsetDelete and topic
    /// deletion forget it at once.)
    pub(crate) fn forget_deadline(&self, config: &CoordinatorConfig) -> Option<u64> {
        self.is_idle().then(|| {
            self.state_since_ms
                .saturating_add(config.offsets_retention_check_interval_ms)
        })
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.is_empty()
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
            && self.txn_offsets.is_empty()
    }

    /// Kafka's `validateOffsetCommit`. A transactional commit (TxnOffsetCommit) without
    /// member information comes from a pre-KIP-447 client and is accepted whatever the
    /// group's state, as Kafka accepts it; one with member information is checked like a
    /// plain commit, except that a rebalance in progress does not refuse it.
    fn validate_commit(&self, req: &CommitRequest, transactional: bool) -> Result<(), ErrorCode> {
        let anonymous =
            req.generation_id < 0 && req.member_id.is_empty() && req.group_instance_id.is_none();
        if let Some(consumer) = &self.consumer {
            // Kafka's `ConsumerGroup.validateOffsetCommit`: the generation field carries
            // the member epoch; -1 is a simple commit, fine while nobody is a member.
            if (req.generation_id < 0 && consumer.members.is_empty())
                || (transactional && anonymous)
            {
                return Ok(());
            }
            let member = consumer
                .members
                .get(&req.member_id)
                .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
            if req.generation_id != member.epoch {
                return Err(ErrorCode::STALE_MEMBER_EPOCH);
            }
            return Ok(());
        }
        if req.generation_id >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
            self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
            if req.generation_id != self.generation {
                return Err(ErrorCode::ILLEGAL_GENERATION);
            }
            Ok(())
        } else if self.state != GroupState::Empty && !transactional {
            // A group with members only takes commits from its members.
            Err(ErrorCode::UNKNOWN_MEMBER_ID)
        } else {
            Ok(())
        }
    }
}

/// A producer's pending transactional commits in a group: `(group, producer id, offsets)`.
pub type PendingTxnOffsets = (String, i64, Vec<(TopicPartition, CommittedOffset)>);

impl Coordinator {
    /// OffsetCommit. Returns one error per partition, in request order, and an
    /// [`Output::PersistOffsets`] for the accepted ones (if any), which the broker must
    /// make durable before it sends the response. The commits are already visible to
    /// [`Coordinator::fetch_offsets`]; if persisting fails the broker must not acknowledge
    /// the commit, and should stop serving as coordinator (its memory is ahead of its log)
    /// until it reloads.
    pub fn commit_offsets(
        &mut self,
        now_ms: u64,
        req: CommitRequest,
    ) -> (Vec<(TopicPartition, ErrorCode)>, Vec<Output>) {
        let max_metadata = self.config.offset_metadata_max_bytes;
        let group = match self.commit_group(now_ms, &req, false) {
            Ok(group) => group,
            Err(error) => return refuse_all(req.offsets, error),
        };
        match group.state {
            GroupState::Empty => {}
            GroupState::Stable | GroupState::PreparingRebalance => {
                // A commit is a sign of life. During PreparingRebalance it is still
                // accepted; the next heartbeat tells the member to rejoin.
                if let Some(member) = group.member_mut(&req.member_id) {
                    member.refresh_session(now_ms);
                }
            }
            // The member has its JoinGroup answer but not its assignment yet.
            GroupState::CompletingRebalance => {
                return refuse_all(req.offsets, ErrorCode::REBALANCE_IN_PROGRESS)
            }
            GroupState::Dead => {
                return refuse_all(req.offsets, ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
            // Classic groups are never in these states; consumer-protocol groups keep their
            // classic part Empty.
            GroupState::Assigning | GroupState::Reconciling => {}
        }

        let (errors, accepted) = stamp(req.offsets, max_metadata, now_ms);
        for (tp, offset) in &accepted {
            group.offsets.insert(tp.clone(), offset.clone());
        }
        let mut out = Vec::new();
        if !accepted.is_empty() {
            debug!(group = %group.id, count = accepted.len(), "offsets committed");
            out.push(Output::PersistOffsets {
                group: group.id.clone(),
                offsets: accepted,
            });
        }
        (errors, out)
    }

    /// OffsetFetch. `None` returns every committed partition of the group, in partition
    /// order; otherwise one entry per requested partition, `None` where nothing is
    /// committed.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Vec<(TopicPartition, Option<CommittedOffset>)> {
        let group = self.groups.get(group_id);
        match partitions {
            None => group
                .into_iter()
                .flat_map(|g| g.offsets.iter())
                .map(|(tp, offset)| (tp.clone(), Some(offset.clone())))
                .collect(),
            Some(partitions) => partitions
                .into_iter()
                .map(|tp| {
                    let offset = group.and_then(|g| g.offsets.get(&tp)).cloned();
                    (tp, offset)
                })
                .collect(),
        }
    }

    /// Replays one record of the offsets log at startup (`None` is a tombstone). A group
    /// without a membership record comes back Empty and without a protocol type, so its
    /// offsets expire by commit time until members join again.
    pub fn load_offsets(
        &mut self,
        now_ms: u64,
        group_id: &str,
        tp: TopicPartition,
        offset: Option<CommittedOffset>,
    ) {
        match offset {
            Some(offset) => {
                self.groups
                    .entry(group_id.to_owned())
                    .or_insert_with(|| Group::new(group_id.to_owned(), now_ms))
                    .offsets
                    .insert(tp, offset);
            }
            None => {
                if let Some(group) = self.groups.get_mut(group_id) {
                    group.offsets.remove(&tp);
                    // A group without members whose last offset was deleted (by
                    // DeleteGroups, OffsetDelete or expiry) was gone before the restart.
                    if group.is_idle() {
                        self.groups.remove(group_id);
                    }
                }
            }
        }
    }

    /// OffsetDelete. A group with members may only lose offsets of topics it does not
    /// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise; a consumer group whose
    /// subscriptions cannot be decoded counts as subscribed to everything, as in Kafka),
    /// and only if it is a consumer group (NON_EMPTY_GROUP otherwise).
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> (DeleteOffsetsResponse, Vec<Output>) {
        let group_error = |error| DeleteOffsetsResponse {
            error,
            partitions: Vec::new(),
        };
        let Some(group) = self.groups.get_mut(group_id) else {
            return (group_error(ErrorCode::GROUP_ID_NOT_FOUND), Vec::new());
        };
        let empty = group.is_empty();
        if !empty && !group.is_consumer_group() {
            return (group_error(ErrorCode::NON_EMPTY_GROUP), Vec::new());
        }
        let mut removed = Vec::new();
        let results = partitions
            .into_iter()
            .map(|tp| {
                if !empty && group.is_subscribed_to(&tp.topic) {
                    return (tp, ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC);
                }
                if group.offsets.remove(&tp).is_some() {
                    removed.push(tp.clone());
                }
                (tp, ErrorCode::NONE)
            })
            .collect();
        let mut out = Vec::new();
        if !removed.is_empty() {
            out.push(Output::DeleteOffsets {
                group: group_id.to_owned(),
                partitions: removed,
            });
            self.forget_if_idle(group_id);
        }
        let response = DeleteOffsetsResponse {
            error: ErrorCode::NONE,
            partitions: results,
        };
        (response, out)
    }

    /// A topic was deleted: drop every group's offsets for it.
    pub fn topic_deleted(&mut self, topic: &str) -> Vec<Output> {
        let mut out = Vec::new();
        let mut touched = Vec::new();
        for group in self.groups.values_mut() {
            let partitions: Vec<TopicPartition> = group
                .offsets
                .keys()
                .filter(|tp| tp.topic == topic)
                .cloned()
                .collect();
            for pending in group.txn_offsets.values_mut() {
                pending.retain(|tp, _| tp.topic != topic);
            }
            if partitions.is_empty() {
                continue;
            }
            for tp in &partitions {
                group.offsets.remove(tp);
            }
            touched.push(group.id.clone());
            out.push(Output::DeleteOffsets {
                group: group.id.clone(),
                partitions,
            });
        }
        for id in touched {
            self.forget_if_idle(&id);
        }
        out
    }

    /// TxnOffsetCommit: offsets committed inside a transaction. Accepted ones are kept
    /// pending (invisible to OffsetFetch, which reports UNSTABLE_OFFSET_COMMIT for them when
    /// asked for stable offsets) until [`Coordinator::settle_txn_offsets`]; an
    /// [`Output::PersistTxnOffsets`] carries them to the offsets log, durable before the
    /// answer. Errors as [`Coordinator::commit_offsets`], one per partition.
    pub fn txn_commit_offsets(
        &mut self,
        now_ms: u64,
        req: TxnCommitRequest,
    ) -> (Vec<(TopicPartition, ErrorCode)>, Vec<Output>) {
        let TxnCommitRequest {
            group_id,
            producer_id,
            producer_epoch,
            generation_id,
            member_id,
            group_instance_id,
            offsets,
        } = req;
        let check = CommitRequest {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            offsets,
        };
        let max_metadata = self.config.offset_metadata_max_bytes;
        let group = match self.commit_group(now_ms, &check, true) {
            Ok(group) => group,
            Err(error) => return refuse_all(check.offsets, error),
        };
        if group.state == GroupState::Dead {
            return refuse_all(check.offsets, ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        let (errors, accepted) = stamp(check.offsets, max_metadata, now_ms);
        let mut out = Vec::new();
        if !accepted.is_empty() {
            let pending = group.txn_offsets.entry(producer_id).or_default();
            for (tp, offset) in &accepted {
                pending.insert(tp.clone(), offset.clone());
            }
            debug!(group = %group.id, producer_id, count = accepted.len(), "transactional offsets pending");
            out.push(Output::PersistTxnOffsets {
                group: group.id.clone(),
                producer_id,
                producer_epoch,
                offsets: accepted,
            });
        }
        (errors, out)
    }

    /// The transaction of `producer_id` was decided: its pending commits in `group_id`
    /// become committed offsets (`commit`) or are dropped. Outputs, in order: the newly
    /// committed offsets ([`Output::PersistOffsets`]) and [`Output::TxnOffsetsSettled`];
    /// nothing if the producer had nothing pending here. Settling twice is harmless, so
    /// the broker may repeat it after a crash.
    pub fn settle_txn_offsets(
        &mut self,
        now_ms: u64,
        group_id: &str,
        producer_id: i64,
        commit: bool,
    ) -> Vec<Output> {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Vec::new();
        };
        let Some(pending) = group.txn_offsets.remove(&producer_id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if commit {
            let mut committed = Vec::with_capacity(pending.len());
            for (tp, mut offset) in pending {
                offset.commit_timestamp_ms = now_ms;
                group.offsets.insert(tp.clone(), offset.clone());
                committed.push((tp, offset));
            }
            debug!(group = %group_id, producer_id, count = committed.len(), "transactional offsets committed");
            out.push(Output::PersistOffsets {
                group: group_id.to_owned(),
                offsets: committed,
            });
        } else {
            debug!(group = %group_id, producer_id, "transactional offsets aborted");
        }
        out.push(Output::TxnOffsetsSettled {
            group: group_id.to_owned(),
            producer_id,
        });
        self.forget_if_idle(group_id);
        out
    }

    /// Partitions of `group_id` with a transactional commit pending, for OffsetFetch with
    /// `require_stable`.
    pub fn unstable_partitions(&self, group_id: &str) -> BTreeSet<TopicPartition> {
        self.groups
            .get(group_id)
            .into_iter()
            .flat_map(|g| g.txn_offsets.values())
            .flat_map(|offsets| offsets.keys().cloned())
            .collect()
    }

    /// Every pending transactional commit, by group and producer, for rewriting the
    /// offsets log.
    pub fn pending_txn_offsets(&self) -> Vec<PendingTxnOffsets> {
        self.groups
            .values()
            .flat_map(|g| {
                g.txn_offsets.iter().map(|(pid, offsets)| {
                    let offsets = offsets
                        .iter()
                        .map(|(tp, o)| (tp.clone(), o.clone()))
                        .collect();
                    (g.id.clone(), *pid, offsets)
                })
            })
            .collect()
    }

    /// Replays a pending transactional commit record of the offsets log.
    pub fn load_txn_offsets(
        &mut self,
        now_ms: u64,
        group_id: &str,
        producer_id: i64,
        offsets: Vec<(TopicPartition, CommittedOffset)>,
    ) {
        self.groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned(), now_ms))
            .txn_offsets
            .entry(producer_id)
            .or_default()
            .extend(offsets);
    }

    /// Replays a classic membership record (see [`Output::PersistGroup`]):
    /// the group's members as of its last rebalance, their sessions starting at `now_ms`
    /// (`None`: it became Empty).
    pub fn load_group(&mut self, now_ms: u64, group_id: &str, snapshot: Option<GroupSnapshot>) {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned(), now_ms));
        group.restore(snapshot, now_ms);
        if group.is_idle() {
            self.groups.remove(group_id);
        }
    }

    /// The membership of every Stable classic group, for a rewrite of the offsets log.
    pub fn group_snapshots(&self) -> Vec<(String, GroupSnapshot)> {
        self.groups
            .values()
            .filter(|g| g.state == GroupState::Stable && g.consumer.is_none())
            .map(|g| (g.id.clone(), g.snapshot()))
            .collect()
    }

    /// Replays a [`Output::TxnOffsetsSettled`] record.
    pub fn load_txn_settled(&mut self, group_id: &str, producer_id: i64) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.txn_offsets.remove(&producer_id);
            if group.is_idle() {
                self.groups.remove(group_id);
            }
        }
    }

    /// The group a commit is for, after Kafka's checks: a simple commit (generation -1) to
    /// an unknown group creates it (a consumer storing offsets without group management);
    /// an unknown group cannot have issued any other generation.
    fn commit_group(
        &mut self,
        now_ms: u64,
        req: &CommitRequest,
        transactional: bool,
    ) -> Result<&mut Group, ErrorCode> {
        let group = match self.groups.entry(req.group_id.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) if req.generation_id < 0 => {
                e.insert(Group::new(req.group_id.clone(), now_ms))
            }
            Entry::Vacant(_) => return Err(ErrorCode::ILLEGAL_GENERATION),
        };
        group.validate_commit(req, transactional)?;
        Ok(group)
    }

    /// Kafka removes a group as soon as it is Empty and its last offset is gone.
    fn forget_if_idle(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(Group::is_idle) {
            info!(group = %group_id, "forgetting empty group without offsets");
            self.groups.remove(group_id);
        }
    }
}

/// The same error for every partition of a refused commit, and nothing to persist.
fn refuse_all(
    offsets: Commits,
    error: ErrorCode,
) -> (Vec<(TopicPartition, ErrorCode)>, Vec<Output>) {
    let errors = offsets.into_iter().map(|(tp, _)| (tp, error)).collect();
    (errors, Vec::new())
}

type Commits = Vec<(TopicPartition, CommittedOffset)>;

/// One answer per partition, in order, and the accepted commits stamped with the
/// coordinator's time (the client's is ignored, as in Kafka); metadata over `max_metadata`
/// bytes is refused.
fn stamp(
    offsets: Commits,
    max_metadata: usize,
    now_ms: u64,
) -> (Vec<(TopicPartition, ErrorCode)>, Commits) {
    let mut errors = Vec::with_capacity(offsets.len());
    let mut accepted = Vec::new();
    for (tp, mut offset) in offsets {
        if offset
            .metadata
            .as_ref()
            .is_some_and(|m| m.len() > max_metadata)
        {
            errors.push((tp, ErrorCode::OFFSET_METADATA_TOO_LARGE));
            continue;
        }
        offset.commit_timestamp_ms = now_ms;
        errors.push((tp.clone(), ErrorCode::NONE));
        accepted.push((tp, offset));
    }
    (errors, accepted)
}
