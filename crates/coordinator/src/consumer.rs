//! One consumer-protocol (KIP-848) group: members, the group epoch, the target assignment
//! and each member's reconciliation towards it. Follows Apache Kafka's `ConsumerGroup`
//! and `CurrentAssignmentBuilder`.
//!
//! ```text
//!  heartbeat / leave / expiry ──▶ group epoch + 1 ──▶ target assignment (assignor)
//!                                                        │
//!  member heartbeat ──▶ reconcile: keep target ∩ owned, revoke owned − target,
//!                       add target − owned once no other member still owns it
//! ```
//!
//! A member moves to the target epoch only once it no longer owns partitions the target
//! takes from it; until then (`UnrevokedPartitions`) it keeps its epoch and its rebalance
//! timeout runs. Partitions it should get but another member has not released yet are
//! withheld (`UnreleasedPartitions`) and handed out on a later heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use tracing::info;

use crate::assignor::{Assignment, Assignor, DEFAULT_ASSIGNOR};
use crate::types::{ConsumerMemberDescription, GroupState, TopicPartitions};

/// Kafka's `MemberState` for a consumer-protocol member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Has its target assignment at the target epoch (or is about to be reconciled to a
    /// newer one).
    Stable,
    /// Must stop consuming `pending_revocation` before it can move to the next epoch.
    UnrevokedPartitions,
    /// At the target epoch, but some target partitions are still owned by other members.
    UnreleasedPartitions,
}

/// The epoch a statically-left member keeps until it rejoins or its session ends.
pub(crate) const STATIC_LEAVE_EPOCH: i32 = -2;

#[derive(Clone, Debug)]
pub(crate) struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    /// Accepted in place of `epoch` if the member's owned partitions are a subset of its
    /// assignment: the answer that bumped its epoch may have been lost.
    pub previous_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout_ms: u64,
    pub subscribed_topics: BTreeSet<String>,
    pub server_assignor: Option<String>,
    /// What the member has been told it owns.
    pub assigned: Assignment,
    /// What it owned and must give up before it moves on.
    pub pending_revocation: Assignment,
    pub session_deadline_ms: u64,
    /// Set while the member is in `UnrevokedPartitions`: it is removed if it has not
    /// revoked by then.
    pub rebalance_deadline_ms: Option<u64>,
}

impl ConsumerMember {
    pub fn new(id: String) -> Self {
        Self {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            rebalance_timeout_ms: 0,
            subscribed_topics: BTreeSet::new(),
            server_assignor: None,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            rebalance_deadline_ms: None,
        }
    }

    fn set_epoch(&mut self, epoch: i32) {
        if epoch != self.epoch {
            self.previous_epoch = self.epoch;
            self.epoch = epoch;
        }
    }

    /// The earliest of its session and rebalance deadlines.
    pub fn next_deadline(&self) -> u64 {
        self.rebalance_deadline_ms
            .map_or(self.session_deadline_ms, |d| {
                d.min(self.session_deadline_ms)
            })
    }
}

#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    pub group_epoch: i32,
    /// The group epoch `target` was computed for.
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Partition count of every subscribed topic that exists, as of the last heartbeat.
    pub partition_counts: BTreeMap<String, i32>,
    /// What the offsets log holds for the group (`None`: nothing, or a tombstone); see
    /// [`crate::consumer_persist`].
    pub persisted: Option<crate::consumer_persist::ConsumerGroupSnapshot>,
}

impl ConsumerGroup {
    pub fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            GroupState::Assigning
        } else if self
            .members
            .values()
            .all(|m| m.epoch == self.assignment_epoch && m.state == MemberState::Stable)
        {
            GroupState::Stable
        } else {
            GroupState::Reconciling
        }
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topics.iter().cloned())
            .collect()
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| m.subscribed_topics.contains(topic))
    }

    /// The assignor most members ask for (ties: the name first in order), else uniform.
    pub fn assignor_name(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self
            .members
            .values()
            .filter_map(|m| m.server_assignor.as_deref())
        {
            *votes.entry(name).or_default() += 1;
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map_or(DEFAULT_ASSIGNOR, |(name, _)| name).to_owned()
    }

    /// Membership or subscriptions changed: a new group epoch and its target assignment.
    /// (Kafka computes the target on the next heartbeat; computing it at once means the
    /// group is only ever Assigning inside this call.)
    pub fn bump_epoch(&mut self, group_id: &str, reason: &str) {
        self.group_epoch += 1;
        let assignor = Assignor::from_name(&self.assignor_name()).unwrap_or(Assignor::Uniform);
        let subscriptions: Vec<(&str, &BTreeSet<String>)> = self
            .members
            .values()
            .map(|m| (m.id.as_str(), &m.subscribed_topics))
            .collect();
        let target = assignor.assign(&subscriptions, &self.partition_counts, &self.target);
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        info!(group = %group_id, epoch = self.group_epoch, ?assignor, reason, "new target assignment");
    }

    /// Forgets a member and moves the group to a new epoch without it.
    pub fn remove_member(&mut self, group_id: &str, member_id: &str, reason: &str) -> bool {
        if self.members.remove(member_id).is_none() {
            return false;
        }
        self.target.remove(member_id);
        info!(group = %group_id, member = %member_id, reason, "consumer member removed");
        self.bump_epoch(group_id, reason);
        true
    }

    /// Re-reads the partition counts of the subscribed topics; true if they changed.
    pub fn refresh_partition_counts(&mut self, topics: &dyn Fn(&str) -> Option<i32>) -> bool {
        let counts: BTreeMap<String, i32> = self
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| topics(&t).filter(|&n| n > 0).map(|n| (t, n)))
            .collect();
        if counts == self.partition_counts {
            return false;
        }
        self.partition_counts = counts;
        true
    }

    /// Partitions owned (assigned or pending revocation) by members other than `except`.
    fn owned_by_others(&self, except: &str) -> BTreeSet<(&str, i32)> {
        self.members
            .values()
            .filter(|m| m.id != except)
            .flat_map(|m| m.assigned.iter().chain(&m.pending_revocation))
            .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.as_str(), p)))
            .collect()
    }

    /// Kafka's `CurrentAssignmentBuilder`: moves the member towards its target given the
    /// partitions it reports owning (`None`: not reported, so revocations cannot be
    /// confirmed).
    pub fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: u64) {
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        let epoch = match member.state {
            MemberState::Stable if member.epoch == self.assignment_epoch => return,
            MemberState::Stable | MemberState::UnreleasedPartitions => member.epoch,
            MemberState::UnrevokedPartitions => {
                if owns_any(owned, &member.pending_revocation) {
                    return;
                }
                member.epoch.saturating_add(1).min(self.assignment_epoch)
            }
        };
        let empty = Assignment::new();
        let none = BTreeSet::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let taken = self.owned_by_others(member_id);
        let mut assigned = Assignment::new();
        let mut revoked = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<&String> = member.assigned.keys().chain(target.keys()).collect();
        for topic in topics {
            let current = member.assigned.get(topic).unwrap_or(&none);
            let wanted = target.get(topic).unwrap_or(&none);
            let mut keep: BTreeSet<i32> = current.intersection(wanted).copied().collect();
            let revoke: BTreeSet<i32> = current.difference(wanted).copied().collect();
            for &p in wanted.difference(current) {
                if taken.contains(&(topic.as_str(), p)) {
                    unreleased = true;
                } else {
                    keep.insert(p);
                }
            }
            if !keep.is_empty() {
                assigned.insert(topic.clone(), keep);
            }
            if !revoke.is_empty() {
                revoked.insert(topic.clone(), revoke);
            }
        }
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        let was = (member.state, member.epoch, member.assigned.clone());
        if !revoked.is_empty() && owns_any(owned, &revoked) {
            member.state = MemberState::UnrevokedPartitions;
            member.set_epoch(epoch);
            member.assigned = assigned;
            member.pending_revocation = revoked;
        } else {
            member.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
            member.set_epoch(assignment_epoch);
            member.assigned = assigned;
            member.pending_revocation = Assignment::new();
        }
        if member.state == MemberState::UnrevokedPartitions {
            if was != (member.state, member.epoch, member.assigned.clone())
                || member.rebalance_deadline_ms.is_none()
            {
                member.rebalance_deadline_ms =
                    Some(now.saturating_add(member.rebalance_timeout_ms));
            }
        } else {
            member.rebalance_deadline_ms = None;
        }
    }

    pub fn describe_member(&self, m: &ConsumerMember) -> ConsumerMemberDescription {
        ConsumerMemberDescription {
            member_id: m.id.clone(),
            instance_id: m.instance_id.clone(),
            rack_id: m.rack_id.clone(),
            member_epoch: m.epoch,
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            subscribed_topic_names: m.subscribed_topics.iter().cloned().collect(),
            assignment: to_wire(&m.assigned),
            target_assignment: self.target.get(&m.id).map(to_wire).unwrap_or_default(),
        }
    }
}

/// Whether the member (by what it reports) still owns any of `partitions`. Not reporting
/// counts as owning: nothing is handed on until the member says it let go.
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    partitions
        .iter()
        .any(|(topic, ps)| owned.get(topic).is_some_and(|mine| !mine.is_disjoint(ps)))
}

pub(crate) fn is_subset(owned: &Assignment, of: &Assignment) -> bool {
    owned.iter().all(|(topic, ps)| {
        ps.is_empty() || of.get(topic).is_some_and(|theirs| ps.is_subset(theirs))
    })
}

pub(crate) fn from_wire(partitions: &TopicPartitions) -> Assignment {
    let mut assignment = Assignment::new();
    for (topic, ps) in partitions {
        if !ps.is_empty() {
            assignment
                .entry(topic.clone())
                .or_default()
                .extend(ps.iter().copied());
        }
    }
    assignment
}

pub(crate) fn to_wire(assignment: &Assignment) -> TopicPartitions {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (t.clone(), ps.iter().copied().collect()))
        .collect()
}
