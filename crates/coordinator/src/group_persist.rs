//! A classic group's membership as it is persisted ([`Output::PersistGroup`]) and replayed:
//! a snapshot as of the current generation while the group is Stable, a tombstone once it is
//! Empty, and the replay that makes a loaded group Stable again with fresh sessions.

use super::{Ctx, Group, Member};
use crate::types::{GroupSnapshot, GroupState, MemberSnapshot, Output};

impl Group {
    /// Asks the broker to persist the group's membership ([`Output::PersistGroup`]): a
    /// snapshot while it has members and is Stable, a tombstone once it is Empty.
    pub fn persist(&self, ctx: &mut Ctx<'_>) {
        let snapshot = match self.state {
            GroupState::Stable => Some(self.snapshot()),
            GroupState::Empty => None,
            _ => return,
        };
        ctx.out.push(Output::PersistGroup {
            group: self.id.clone(),
            snapshot,
        });
    }

    /// The membership as of the current generation.
    pub fn snapshot(&self) -> GroupSnapshot {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberSnapshot {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Replays a persisted membership: the group is Stable with these members, whose
    /// sessions start now (`None`: the group is Empty). A group that belongs to the consumer
    /// protocol is left alone.
    pub fn restore(&mut self, snapshot: Option<GroupSnapshot>, now: u64) {
        if self.consumer.is_some() {
            return;
        }
        self.pending_members.clear();
        self.join_timer = None;
        self.pending_sync = None;
        let Some(s) = snapshot.filter(|s| !s.members.is_empty()) else {
            self.members.clear();
            self.leader = None;
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, now);
            return;
        };
        let protocol = s.protocol_name.clone().unwrap_or_default();
        self.generation = s.generation;
        self.protocol_type = s.protocol_type;
        self.protocol_name = s.protocol_name;
        self.leader = s.leader;
        self.members = s
            .members
            .into_iter()
            .map(|m| Member {
                id: m.member_id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                session_deadline_ms: now.saturating_add(m.session_timeout_ms),
            })
            .collect();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::Stable, now);
    }
}
