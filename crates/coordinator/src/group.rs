//! One classic group: its members and the rebalance state machine.
//!
//! ```text
//!            join                 all joined / timeout            leader's SyncGroup
//!   Empty ─────────▶ PreparingRebalance ─────────▶ CompletingRebalance ─────────▶ Stable
//!     ▲                 ▲   │ (no members left)          │                          │
//!     └─────────────────┼───┘                            │ join/leave/expiry        │
//!                       └────────────────────────────────┴──────────────────────────┘
//! ```
//!
//! Methods here never fail: every request they take over (a JoinGroup or SyncGroup parked on
//! a member) is answered through [`Ctx::respond`] exactly once, including when the member is
//! removed or superseded.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::consumer::ConsumerGroup;
use crate::subscription::{decode_topics, CONSUMER_PROTOCOL_TYPE};
use crate::types::{
    CommittedOffset, GroupState, JoinMember, JoinResponse, Output, RequestId, Response,
    SyncResponse, TopicPartition,
};
use crate::{CoordinatorConfig, ErrorCode};

#[path = "group_persist.rs"]
mod persist;
#[path = "group_timers.rs"]
mod timers;

/// What every state transition needs: the time, the settings, and where to put outputs.
pub(crate) struct Ctx<'a> {
    pub now: u64,
    pub config: &'a CoordinatorConfig,
    pub out: Vec<Output>,
}

impl<'a> Ctx<'a> {
    pub fn new(now: u64, config: &'a CoordinatorConfig) -> Self {
        Self {
            now,
            config,
            out: Vec::new(),
        }
    }

    pub fn respond_join(&mut self, request: RequestId, response: JoinResponse) {
        self.out.push(Output::Respond {
            request,
            response: Response::Join(response),
        });
    }

    pub fn respond_sync(&mut self, request: RequestId, response: SyncResponse) {
        self.out.push(Output::Respond {
            request,
            response: Response::Sync(response),
        });
    }
}

#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<(String, Bytes)>,
    /// The last assignment the leader gave this member; kept so a static member that
    /// restarts can be handed it again without a rebalance.
    pub assignment: Bytes,
    /// A JoinGroup parked until the rebalance completes.
    pub awaiting_join: Option<RequestId>,
    /// A SyncGroup parked until the leader's assignment arrives.
    pub awaiting_sync: Option<RequestId>,
    /// Joined during the current rebalance and never received a JoinGroup answer.
    pub is_new: bool,
    /// The session ends at this time unless the member shows activity first.
    pub session_deadline_ms: u64,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// When the session timer can fire, if it is running. Members parked in a rebalance are
    /// governed by the rebalance (or pending-sync) timeout instead, except new members,
    /// which expire after `new_member_join_timeout_ms`.
    pub fn session_expiry(&self) -> Option<u64> {
        let parked = self.awaiting_sync.is_some() || (self.awaiting_join.is_some() && !self.is_new);
        (!parked).then_some(self.session_deadline_ms)
    }

    pub fn refresh_session(&mut self, now: u64) {
        self.session_deadline_ms = now.saturating_add(self.session_timeout_ms);
    }
}

/// A member that was handed an id (MEMBER_ID_REQUIRED) and has not joined with it yet.
#[derive(Debug)]
pub(crate) struct PendingMember {
    pub id: String,
    pub deadline_ms: u64,
}

/// The timer of a PreparingRebalance group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// `group.initial.rebalance.delay.ms` after the group left Empty: never completes early;
    /// at the deadline it is extended if new members arrived, while `remaining_ms` lasts.
    InitialDelay {
        deadline_ms: u64,
        delay_ms: u64,
        remaining_ms: u64,
        new_member_added: bool,
    },
    /// Completes as soon as every member has rejoined, or at the deadline.
    Rebalance { deadline_ms: u64 },
}

impl JoinTimer {
    fn deadline_ms(self) -> u64 {
        match self {
            Self::InitialDelay { deadline_ms, .. } | Self::Rebalance { deadline_ms } => deadline_ms,
        }
    }
}

/// Members that got their JoinGroup answer but have not sent SyncGroup yet. Those still
/// missing at the deadline are removed (Kafka's pending-sync timeout).
#[derive(Debug)]
pub(crate) struct PendingSync {
    pub deadline_ms: u64,
    pub members: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    /// When the group entered `state`; for Empty, when it became empty.
    pub state_since_ms: u64,
    pub generation: i32,
    /// Set by the first member ever; `None` for groups only used to store offsets.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In join order, which makes leader fallback and protocol tie-breaks deterministic.
    pub members: Vec<Member>,
    pub pending_members: Vec<PendingMember>,
    pub join_timer: Option<JoinTimer>,
    pub pending_sync: Option<PendingSync>,
    /// Union of the members' subscriptions for the current generation; `None` when unknown
    /// (not a consumer group, or a subscription we could not decode).
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Transactional offset commits waiting for their transaction's decision, by producer
    /// id. A COMMIT marker moves them into `offsets`, an ABORT drops them.
    pub txn_offsets: BTreeMap<i64, BTreeMap<TopicPartition, CommittedOffset>>,
    /// Set while the group id belongs to the consumer protocol (KIP-848). Such a group's
    /// classic part stays Empty, and a group whose consumer part has members refuses
    /// classic joins (and the other way round).
    pub consumer: Option<ConsumerGroup>,
}

impl Group {
    pub fn new(id: String, now: u64) -> Self {
        Self {
            id,
            state: GroupState::Empty,
            state_since_ms: now,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending_members: Vec::new(),
            join_timer: None,
            pending_sync: None,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            txn_offsets: BTreeMap::new(),
            consumer: None,
        }
    }

    // ---- queries ----

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    pub fn is_pending(&self, id: &str) -> bool {
        self.pending_members.iter().any(|p| p.id == id)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    /// The largest rebalance timeout of the members (Kafka's group rebalance timeout).
    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    pub fn is_consumer_group(&self) -> bool {
        self.consumer.is_some() || self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Whether a live group may be consuming `topic`; unknown subscriptions count as yes,
    /// so OffsetDelete and expiry never remove offsets a running consumer depends on.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        if let Some(consumer) = &self.consumer {
            return consumer.is_subscribed_to(topic);
        }
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// Members of the consumer-protocol part (0 for classic groups).
    pub fn consumer_members(&self) -> usize {
        self.consumer.as_ref().map_or(0, |c| c.members.len())
    }

    /// Whether the classic protocol holds this group id: members, members being handed
    /// an id, or a rebalance under way.
    pub fn has_classic_members(&self) -> bool {
        !self.members.is_empty()
            || !self.pending_members.is_empty()
            || self.state != GroupState::Empty
    }

    /// No members of either protocol.
    pub fn is_empty(&self) -> bool {
        self.state == GroupState::Empty && self.consumer_members() == 0
    }

    /// Kafka's `validateCurrentMember`: a static instance id must map to `member_id` (else
    /// the caller is a fenced zombie), and the member must exist.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(current) = instance_id.and_then(|i| self.static_member_id(i)) {
            if current != member_id {
                return Err(ErrorCode::FENCED_INSTANCE_ID);
            }
        }
        if !self.has_member(member_id) {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    /// Whether a member with these protocols may be part of the group: same protocol type,
    /// and at least one protocol every other member supports. `except` is the member being
    /// updated or replaced, whose old protocols do not count.
    pub fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: Option<&str>,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let mut others = self
            .members
            .iter()
            .filter(|m| Some(m.id.as_str()) != except)
            .peekable();
        if others.peek().is_none() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let others: Vec<&Member> = others.collect();
        protocols
            .iter()
            .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    /// The protocol every member supports that most members prefer. Each member votes for
    /// its first choice among the common protocols; ties go to the protocol voted for first
    /// in join order (Kafka leaves ties to hash order).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in &self.members {
            let Some(vote) = member
                .protocols
                .iter()
                .map(|(name, _)| name.as_str())
                .find(|name| candidates.contains(name))
            else {
                continue;
            };
            match votes.iter_mut().find(|(name, _)| *name == vote) {
                Some((_, count)) => *count += 1,
                None => votes.push((vote, 1)),
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// The member list only the leader receives.
    fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// The JoinGroup answer describing the current generation.
    pub fn current_join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        JoinResponse {
            error: ErrorCode::NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.join_members()
            } else {
                Vec::new()
            },
        }
    }

    // ---- membership changes ----

    pub fn transition(&mut self, state: GroupState, now: u64) {
        debug!(group = %self.id, from = %self.state, to = %state, "group state change");
        self.state = state;
        self.state_since_ms = now;
    }

    pub fn add_member(&mut self, member: Member, protocol_type: &str, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            if let Some(JoinTimer::InitialDelay {
                new_member_added, ..
            }) = &mut self.join_timer
            {
                *new_member_added = true;
            }
        }
        if self.members.is_empty() {
            // The protocol type is fixed by whoever joins an empty group.
            self.protocol_type = Some(protocol_type.to_owned());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_members.retain(|p| p.id != member.id);
        debug!(group = %self.id, member = %member.id, now = ctx.now, "member added");
        self.members.push(member);
    }

    /// Removes a member, answering anything it had parked with UNKNOWN_MEMBER_ID. Does not
    /// start or complete a rebalance; see [`Self::remove_member_and_update`].
    pub fn remove_member(&mut self, id: &str, ctx: &mut Ctx<'_>) -> Option<Member> {
        let index = self.members.iter().position(|m| m.id == id)?;
        let member = self.members.remove(index);
        if let Some(request) = member.awaiting_join {
            ctx.respond_join(
                request,
                JoinResponse::error("", ErrorCode::UNKNOWN_MEMBER_ID),
            );
        }
        if let Some(request) = member.awaiting_sync {
            ctx.respond_sync(request, SyncResponse::error(ErrorCode::UNKNOWN_MEMBER_ID));
        }
        if let Some(pending) = &mut self.pending_sync {
            pending.members.retain(|m| m != id);
        }
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        Some(member)
    }

    /// Removes a member (left, or its session expired) and moves the group on: a settled
    /// group rebalances, a rebalancing one may now be complete.
    pub fn remove_member_and_update(&mut self, id: &str, reason: &str, ctx: &mut Ctx<'_>) {
        if self.remove_member(id, ctx).is_none() {
            return;
        }
        info!(group = %self.id, member = %id, reason, "member removed");
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(reason, ctx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
            GroupState::Empty
            | GroupState::Dead
            | GroupState::Assigning
            | GroupState::Reconciling => {}
        }
    }

    pub fn remove_pending_member(&mut self, id: &str, ctx: &mut Ctx<'_>) {
        self.pending_members.retain(|p| p.id != id);
        self.try_complete_join(ctx);
    }

    /// Replaces a member's protocols and timeouts and parks its JoinGroup. A JoinGroup it
    /// had already parked is answered REBALANCE_IN_PROGRESS so no request is left hanging.
    pub fn update_member(
        &mut self,
        id: &str,
        protocols: Vec<(String, Bytes)>,
        rebalance_timeout_ms: u64,
        session_timeout_ms: u64,
        request: RequestId,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(member) = self.member_mut(id) else {
            return;
        };
        member.protocols = protocols;
        member.rebalance_timeout_ms = rebalance_timeout_ms;
        member.session_timeout_ms = session_timeout_ms;
        if let Some(superseded) = member.awaiting_join.replace(request) {
            let response = JoinResponse::error(id, ErrorCode::REBALANCE_IN_PROGRESS);
            ctx.respond_join(superseded, response);
        }
    }

    /// A static member rejoined under a new member id: the old id is fenced (anything it
    /// had parked is answered FENCED_INSTANCE_ID) and the member keeps its place, its
    /// leadership and its assignment.
    pub fn replace_static_member(&mut self, old_id: &str, new_id: &str, ctx: &mut Ctx<'_>) {
        let Some(member) = self.member_mut(old_id) else {
            return;
        };
        let parked_join = member.awaiting_join.take();
        let parked_sync = member.awaiting_sync.take();
        member.id = new_id.to_owned();
        if let Some(request) = parked_join {
            ctx.respond_join(
                request,
                JoinResponse::error(old_id, ErrorCode::FENCED_INSTANCE_ID),
            );
        }
        if let Some(request) = parked_sync {
            ctx.respond_sync(request, SyncResponse::error(ErrorCode::FENCED_INSTANCE_ID));
        }
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_owned());
        }
        if let Some(pending) = &mut self.pending_sync {
            for id in &mut pending.members {
                if id == old_id {
                    new_id.clone_into(id);
                }
            }
        }
    }

    // ---- rebalance ----

    pub fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Empty | GroupState::Stable | GroupState::CompletingRebalance
        )
    }

    pub fn maybe_prepare_rebalance(&mut self, reason: &str, ctx: &mut Ctx<'_>) {
        if self.can_rebalance() {
            self.prepare_rebalance(reason, ctx);
        }
    }

    pub fn prepare_rebalance(&mut self, reason: &str, ctx: &mut Ctx<'_>) {
        if self.state == GroupState::CompletingRebalance {
            // Followers parked in SyncGroup will never get this generation's assignment.
            self.reset_and_propagate_assignment_error(ErrorCode::REBALANCE_IN_PROGRESS, ctx);
        }
        self.pending_sync = None;
        let timeout = self.rebalance_timeout_ms();
        self.join_timer = Some(if self.state == GroupState::Empty {
            let delay = ctx.config.initial_rebalance_delay_ms;
            JoinTimer::InitialDelay {
                deadline_ms: ctx.now.saturating_add(delay),
                delay_ms: delay,
                remaining_ms: timeout.saturating_sub(delay),
                new_member_added: false,
            }
        } else {
            JoinTimer::Rebalance {
                deadline_ms: ctx.now.saturating_add(timeout),
            }
        });
        info!(group = %self.id, generation = self.generation, reason, "preparing rebalance");
        self.transition(GroupState::PreparingRebalance, ctx.now);
        self.try_complete_join(ctx);
    }

    /// Completes the join phase if it can complete now: its timer is due, or (outside the
    /// initial delay) every member has rejoined.
    pub fn try_complete_join(&mut self, ctx: &mut Ctx<'_>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let Some(timer) = self.join_timer else {
            return;
        };
        if timer.deadline_ms() <= ctx.now {
            self.on_join_deadline(timer, ctx);
        } else if matches!(timer, JoinTimer::Rebalance { .. }) && self.all_members_joined() {
            self.complete_join(ctx);
        }
    }

    fn on_join_deadline(&mut self, timer: JoinTimer, ctx: &mut Ctx<'_>) {
        match timer {
            JoinTimer::InitialDelay {
                delay_ms,
                remaining_ms,
                new_member_added: true,
                ..
            } if remaining_ms != 0 => {
                let delay = ctx.config.initial_rebalance_delay_ms.min(remaining_ms);
                self.join_timer = Some(JoinTimer::InitialDelay {
                    deadline_ms: ctx.now.saturating_add(delay),
                    delay_ms: delay,
                    remaining_ms: remaining_ms.saturating_sub(delay_ms),
                    new_member_added: false,
                });
            }
            _ => self.complete_join(ctx),
        }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every parked JoinGroup.
    fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        // Static members that did not rejoin stay: their session timeout governs them.
        let missing: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id, ctx);
        }
        self.join_timer = None;
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Only static members that have not rejoined are left: give them another
            // rebalance timeout to rejoin or for their sessions to run out.
            warn!(group = %self.id, "no member rejoined; extending the rebalance");
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: ctx.now.saturating_add(self.rebalance_timeout_ms()),
            });
            return;
        }

        self.generation += 1;
        self.pending_sync = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, ctx.now);
            info!(group = %self.id, generation = self.generation, "group is empty");
            self.persist(ctx);
            return;
        }
        self.protocol_name = self.select_protocol();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, ctx.now);
        info!(
            group = %self.id,
            generation = self.generation,
            protocol = ?self.protocol_name,
            members = self.members.len(),
            "join phase complete"
        );

        let leader_members = self.join_members();
        let mut responses = Vec::new();
        for member in &mut self.members {
            if let Some(request) = member.awaiting_join.take() {
                let is_leader = self.leader.as_deref() == Some(member.id.as_str());
                responses.push((
                    request,
                    JoinResponse {
                        error: ErrorCode::NONE,
                        generation_id: self.generation,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        leader: self.leader.clone().unwrap_or_default(),
                        skip_assignment: false,
                        member_id: member.id.clone(),
                        members: if is_leader {
                            leader_members.clone()
                        } else {
                            Vec::new()
                        },
                    },
                ));
            }
            member.refresh_session(ctx.now);
            member.is_new = false;
        }
        for (request, response) in responses {
            ctx.respond_join(request, response);
        }
        self.pending_sync = Some(PendingSync {
            deadline_ms: ctx.now.saturating_add(self.rebalance_timeout_ms()),
            members: self.members.iter().map(|m| m.id.clone()).collect(),
        });
    }

    /// Keeps the leader if it rejoined, else picks the first member that did.
    fn elect_joined_leader(&mut self) -> bool {
        if let Some(leader) = self.leader.as_deref().and_then(|l| self.member(l)) {
            if leader.awaiting_join.is_some() {
                return true;
            }
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(member) => {
                self.leader = Some(member.id.clone());
                true
            }
            None => false,
        }
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.is_consumer_group() {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in &self.members {
            match decode_topics(&member.metadata(protocol)) {
                Some(member_topics) => topics.extend(member_topics),
                None => {
                    warn!(group = %self.id, member = %member.id, "undecodable subscription");
                    return None;
                }
            }
        }
        Some(topics)
    }

    /// Clears every assignment and answers parked SyncGroups with `error`.
    fn reset_and_propagate_assignment_error(&mut self, error: ErrorCode, ctx: &mut Ctx<'_>) {
        for member in &mut self.members {
            member.assignment = Bytes::new();
            if let Some(request) = member.awaiting_sync.take() {
                ctx.respond_sync(request, SyncResponse::error(error));
                member.refresh_session(ctx.now);
            }
        }
    }

    /// Stores the leader's assignment (members it left out get an empty one; entries for
    /// non-members are ignored), answers parked SyncGroups and makes the group Stable.
    pub fn complete_sync(&mut self, assignments: Vec<(String, Bytes)>, ctx: &mut Ctx<'_>) {
        let mut assignments: BTreeMap<String, Bytes> = assignments.into_iter().collect();
        for member in &mut self.members {
            member.assignment = assignments.remove(&member.id).unwrap_or_else(|| {
                warn!(group = %self.id, member = %member.id, "leader sent no assignment");
                Bytes::new()
            });
            if let Some(request) = member.awaiting_sync.take() {
                ctx.respond_sync(
                    request,
                    SyncResponse {
                        error: ErrorCode::NONE,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        assignment: member.assignment.clone(),
                    },
                );
                member.refresh_session(ctx.now);
            }
        }
        self.transition(GroupState::Stable, ctx.now);
        self.persist(ctx);
    }

    pub fn mark_synced(&mut self, member_id: &str) {
        if let Some(pending) = &mut self.pending_sync {
            pending.members.retain(|m| m != member_id);
            if pending.members.is_empty() {
                self.pending_sync = None;
            }
        }
    }
}
