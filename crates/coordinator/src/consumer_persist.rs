//! Persistence of consumer-protocol (KIP-848) groups, so a restarted or failed-over
//! coordinator resumes them: members keep heartbeating with their epochs and keep their
//! partitions.
//!
//! ```text
//!  heartbeat / leave / expiry ──▶ group changed? ──▶ Output::PersistConsumerGroup(snapshot)
//!                                      │ no                 (tombstone once empty)
//!                                      ▼
//!                                  nothing to write (a steady heartbeat)
//!  offsets log replay ──▶ Coordinator::load_consumer_group ──▶ the group, sessions from now
//! ```
//!
//! Kafka writes several records per group (ConsumerGroupMetadata, member metadata, target
//! assignment, current member assignment, partition metadata); Weir writes one record per
//! group holding all of it, which a compacted shard keeps by key. The snapshot holds what
//! the group decides with: epochs, members with their state and partitions, the target
//! assignment and the partition counts the target was computed from (without them, the
//! first heartbeat after a load would see "new" partition counts and start a new epoch).
//! Deadlines are not persisted: session timeouts (and the rebalance timeout of a member
//! still revoking) restart at load, as in Kafka.

use std::collections::BTreeMap;

use crate::consumer::{from_wire, to_wire, ConsumerGroup, ConsumerMember, MemberState};
use crate::coordinator::Coordinator;
use crate::group::Group;
use crate::types::{Output, TopicPartitions};

/// What a new coordinator needs to continue a consumer-protocol group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroupSnapshot {
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// The server assignor the members chose (for operators; a load recomputes it from the
    /// members' preferences).
    pub assignor: String,
    /// Partition count of every subscribed topic, as the target assignment saw them.
    pub partition_counts: Vec<(String, i32)>,
    /// In member id order.
    pub members: Vec<ConsumerMemberSnapshot>,
}

/// One member of a [`ConsumerGroupSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerMemberSnapshot {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_epoch: i32,
    pub state: ConsumerMemberState,
    pub rebalance_timeout_ms: u64,
    /// In name order.
    pub subscribed_topics: Vec<String>,
    pub server_assignor: Option<String>,
    /// What the member has been told it owns.
    pub assigned: TopicPartitions,
    /// What it must give up before it moves to the next epoch.
    pub pending_revocation: TopicPartitions,
    /// Its part of the group's target assignment.
    pub target: TopicPartitions,
}

pub use crate::consumer::MemberState as ConsumerMemberState;

impl ConsumerGroup {
    /// The persisted form of the group.
    pub fn snapshot(&self) -> ConsumerGroupSnapshot {
        ConsumerGroupSnapshot {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor_name(),
            partition_counts: self
                .partition_counts
                .iter()
                .map(|(t, n)| (t.clone(), *n))
                .collect(),
            members: self
                .members
                .values()
                .map(|m| ConsumerMemberSnapshot {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_epoch: m.epoch,
                    previous_epoch: m.previous_epoch,
                    state: m.state,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscribed_topics: m.subscribed_topics.iter().cloned().collect(),
                    server_assignor: m.server_assignor.clone(),
                    assigned: to_wire(&m.assigned),
                    pending_revocation: to_wire(&m.pending_revocation),
                    target: self.target.get(&m.id).map(to_wire).unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The group a snapshot describes, its members' sessions (and the rebalance timeout
    /// of those still revoking) starting at `now`.
    pub fn restore(s: ConsumerGroupSnapshot, now: u64, session_timeout_ms: u64) -> Self {
        let mut target = BTreeMap::new();
        let mut members = BTreeMap::new();
        for m in s.members {
            if !m.target.is_empty() {
                target.insert(m.member_id.clone(), from_wire(&m.target));
            }
            let revoking = m.state == MemberState::UnrevokedPartitions;
            let member = ConsumerMember {
                id: m.member_id.clone(),
                instance_id: m.instance_id,
                rack_id: m.rack_id,
                client_id: m.client_id,
                client_host: m.client_host,
                epoch: m.member_epoch,
                previous_epoch: m.previous_epoch,
                state: m.state,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscribed_topics: m.subscribed_topics.into_iter().collect(),
                server_assignor: m.server_assignor,
                assigned: from_wire(&m.assigned),
                pending_revocation: from_wire(&m.pending_revocation),
                session_deadline_ms: now.saturating_add(session_timeout_ms),
                rebalance_deadline_ms: revoking.then(|| now.saturating_add(m.rebalance_timeout_ms)),
            };
            members.insert(m.member_id, member);
        }
        let mut group = ConsumerGroup {
            group_epoch: s.group_epoch,
            assignment_epoch: s.assignment_epoch,
            members,
            target,
            partition_counts: s.partition_counts.into_iter().collect(),
            persisted: None,
        };
        // What the log holds now, in the form a later comparison builds.
        group.persisted = Some(group.snapshot());
        group
    }
}

impl Group {
    /// Emits [`Output::PersistConsumerGroup`] if the consumer group's persisted state
    /// changed since it was last written: its snapshot while it has members, a tombstone
    /// once it has none. A steady heartbeat changes nothing and writes nothing.
    pub(crate) fn persist_consumer(&mut self, out: &mut Vec<Output>) {
        let Some(cg) = self.consumer.as_mut() else {
            return;
        };
        let snapshot = (!cg.members.is_empty()).then(|| cg.snapshot());
        if snapshot == cg.persisted {
            return;
        }
        cg.persisted.clone_from(&snapshot);
        out.push(Output::PersistConsumerGroup {
            group: self.id.clone(),
            snapshot,
        });
    }
}

impl Coordinator {
    /// Replays a consumer-protocol group's record (see [`Output::PersistConsumerGroup`]):
    /// the group as of its last change, its members' sessions starting at `now_ms`
    /// (`None`: its last member left, the id is free for either protocol).
    pub fn load_consumer_group(
        &mut self,
        now_ms: u64,
        group_id: &str,
        snapshot: Option<ConsumerGroupSnapshot>,
    ) {
        let session_timeout = self.config.consumer_session_timeout_ms;
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned(), now_ms));
        match snapshot.filter(|s| !s.members.is_empty()) {
            // The two protocols never hold an id at the same time: a classic group had
            // to become Empty (its tombstone is earlier in the log) before this one began.
            Some(s) => {
                group.consumer = Some(ConsumerGroup::restore(s, now_ms, session_timeout));
                group.state_since_ms = now_ms;
            }
            None => {
                group.consumer = None;
                if group.is_idle() {
                    self.groups.remove(group_id);
                }
            }
        }
    }

    /// Every consumer-protocol group with members, for a rewrite of the offsets log.
    pub fn consumer_group_snapshots(&self) -> Vec<(String, ConsumerGroupSnapshot)> {
        self.groups
            .values()
            .filter_map(|g| {
                let cg = g.consumer.as_ref().filter(|c| !c.members.is_empty())?;
                Some((g.id.clone(), cg.snapshot()))
            })
            .collect()
    }
}
