//! The [`Coordinator`]: the entry points for membership APIs and timers.

use std::collections::BTreeMap;

use tracing::{debug, info, warn};

use crate::group::{Ctx, Group, Member, PendingMember};
use crate::subscription::CONSUMER_PROTOCOL_TYPE;
use crate::types::{
    GroupDescription, GroupListing, GroupState, GroupStats, GroupType, JoinRequest, JoinResponse,
    LeaveMember, LeaveMemberResult, LeaveResponse, MemberDescription, Output, RequestId,
    SyncRequest, SyncResponse,
};
use crate::{CoordinatorConfig, ErrorCode};

/// All groups (classic and consumer-protocol) this broker coordinates, as a pure state
/// machine.
///
/// Every call takes the current time; nothing happens between calls. Calls return the
/// [`Output`]s the broker must carry out, in order. Call [`Coordinator::tick`] when
/// [`Coordinator::next_deadline`] passes.
#[derive(Debug)]
pub struct Coordinator {
    pub(crate) config: CoordinatorConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    /// Feeds generated member ids; see [`CoordinatorConfig::member_id_seed`].
    pub(crate) member_id_counter: u64,
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            member_id_counter: 0,
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// JoinGroup. The answer comes as an [`Output::Respond`] for `request`, either in the
    /// returned outputs or from a later call once the rebalance completes.
    pub fn join_group(&mut self, now_ms: u64, request: RequestId, req: JoinRequest) -> Vec<Output> {
        let Self {
            config,
            groups,
            member_id_counter,
        } = self;
        let mut ctx = Ctx::new(now_ms, config);
        join(groups, member_id_counter, config, request, req, &mut ctx);
        ctx.out
    }

    /// SyncGroup. The answer comes as an [`Output::Respond`] for `request`: at once, or for
    /// followers of a completing rebalance, when the leader's assignment arrives.
    pub fn sync_group(&mut self, now_ms: u64, request: RequestId, req: SyncRequest) -> Vec<Output> {
        let mut ctx = Ctx::new(now_ms, &self.config);
        let result = match self.groups.get_mut(&req.group_id) {
            _ if req.group_id.is_empty() => Err(ErrorCode::INVALID_GROUP_ID),
            None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
            Some(group) => sync(group, request, req, &mut ctx),
        };
        if let Err(error) = result {
            ctx.respond_sync(request, SyncResponse::error(error));
        }
        ctx.out
    }

    /// Heartbeat: refreshes the member's session. REBALANCE_IN_PROGRESS tells a member to
    /// rejoin.
    pub fn heartbeat(
        &mut self,
        now_ms: u64,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> ErrorCode {
        if group_id.is_empty() {
            return ErrorCode::INVALID_GROUP_ID;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        if let Err(error) = group.validate_member(member_id, group_instance_id) {
            return error;
        }
        if generation_id != group.generation {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let state = group.state;
        match state {
            GroupState::Empty
            | GroupState::Dead
            | GroupState::Assigning
            | GroupState::Reconciling => return ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => {}
        }
        if let Some(member) = group.member_mut(member_id) {
            member.refresh_session(now_ms);
        }
        if state == GroupState::PreparingRebalance {
            ErrorCode::REBALANCE_IN_PROGRESS
        } else {
            ErrorCode::NONE
        }
    }

    /// LeaveGroup for one or more members (v3+ batches; a member id of "" with an instance
    /// id removes a static member administratively).
    pub fn leave_group(
        &mut self,
        now_ms: u64,
        group_id: &str,
        members: Vec<LeaveMember>,
    ) -> (LeaveResponse, Vec<Output>) {
        let mut ctx = Ctx::new(now_ms, &self.config);
        if group_id.is_empty() {
            let response = LeaveResponse {
                error: ErrorCode::INVALID_GROUP_ID,
                members: Vec::new(),
            };
            return (response, ctx.out);
        }
        let mut group = self.groups.get_mut(group_id);
        let results = members
            .into_iter()
            .map(|leaving| {
                let error = match group.as_deref_mut() {
                    None => ErrorCode::UNKNOWN_MEMBER_ID,
                    Some(group) => leave(group, &leaving, &mut ctx),
                };
                LeaveMemberResult {
                    member_id: leaving.member_id,
                    group_instance_id: leaving.group_instance_id,
                    error,
                }
            })
            .collect();
        let response = LeaveResponse {
            error: ErrorCode::NONE,
            members: results,
        };
        (response, ctx.out)
    }

    /// Fires every timer due at `now_ms`: session and pending-member expiry, rebalance and
    /// initial-delay deadlines, pending-sync expiry, offset retention, and forgetting empty
    /// groups. Groups are visited in id order, so outputs are deterministic.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output> {
        let mut ctx = Ctx::new(now_ms, &self.config);
        for group in self.groups.values_mut() {
            group.expire_members(&mut ctx);
            // Only an expiry changes a consumer group here: the others are not snapshotted.
            if group.expire_consumer_members(now_ms) {
                group.persist_consumer(&mut ctx.out);
            }
            group.expire_offsets(&mut ctx);
        }
        let config = &self.config;
        self.groups.retain(|id, group| {
            let forget = group.forget_deadline(config).is_some_and(|d| d <= now_ms);
            if forget {
                info!(group = %id, "forgetting empty group");
            }
            !forget
        });
        ctx.out
    }

    /// The earliest time [`Coordinator::tick`] has work to do. It moves with every call
    /// (a heartbeat pushes a session deadline out), so re-read it after each call.
    /// Linear in the number of members and offsets.
    pub fn next_deadline(&self) -> Option<u64> {
        self.groups
            .values()
            .filter_map(|group| {
                [
                    group.next_member_deadline(),
                    group.next_consumer_deadline(),
                    group.next_offset_expiry(&self.config),
                    group.forget_deadline(&self.config),
                ]
                .into_iter()
                .flatten()
                .min()
            })
            .min()
    }

    /// DescribeGroups for one group. Unknown groups, and consumer-protocol groups (which
    /// ConsumerGroupDescribe describes), are described as `Dead`, as in Kafka; DescribeGroups
    /// v6+ should answer those GROUP_ID_NOT_FOUND when the id exists as a consumer group
    /// (see [`Coordinator::group_type`]).
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        let Some(group) = self.groups.get(group_id).filter(|g| g.consumer.is_none()) else {
            return GroupDescription {
                error: ErrorCode::NONE,
                group_id: group_id.to_owned(),
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        // Like Kafka, metadata and assignments are only shown once the group is Stable.
        let stable = group.state == GroupState::Stable;
        let protocol = group
            .protocol_name
            .clone()
            .filter(|_| stable)
            .unwrap_or_default();
        let members = group
            .members
            .iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Default::default()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect();
        GroupDescription {
            error: ErrorCode::NONE,
            group_id: group_id.to_owned(),
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }

    /// ListGroups, in group id order, both protocols. An empty filter lists every group;
    /// the broker filters by [`GroupListing::group_type`] itself.
    pub fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        self.groups
            .values()
            .map(|g| match &g.consumer {
                Some(consumer) => GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
                    state: consumer.state(),
                    group_type: GroupType::Consumer,
                },
                None => GroupListing {
                    group_id: g.id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                    group_type: GroupType::Classic,
                },
            })
            .filter(|g| states.is_empty() || states.contains(&g.state))
            .collect()
    }

    /// Every group's member count, rebalance count and committed offsets, for metrics (one
    /// pass under the caller's lock, no copies of member metadata).
    pub fn group_stats(&self) -> Vec<GroupStats> {
        self.groups
            .values()
            .map(|g| {
                let (members, rebalances) = match &g.consumer {
                    Some(c) => (c.members.len(), c.group_epoch),
                    None => (g.members.len(), g.generation),
                };
                GroupStats {
                    group_id: g.id.clone(),
                    members,
                    rebalances: u64::try_from(rebalances).unwrap_or(0),
                    offsets: g
                        .offsets
                        .iter()
                        .map(|(tp, o)| (tp.clone(), o.offset))
                        .collect(),
                }
            })
            .collect()
    }

    /// Which protocol holds `group_id`, if the group exists.
    pub fn group_type(&self, group_id: &str) -> Option<GroupType> {
        self.groups.get(group_id).map(|g| {
            if g.consumer.is_some() {
                GroupType::Consumer
            } else {
                GroupType::Classic
            }
        })
    }

    /// DeleteGroups: only groups without members can be deleted; their offsets go with
    /// them (one [`Output::DeleteOffsets`] per group that had any).
    pub fn delete_groups(
        &mut self,
        group_ids: Vec<String>,
    ) -> (Vec<(String, ErrorCode)>, Vec<Output>) {
        let mut out = Vec::new();
        let results = group_ids
            .into_iter()
            .map(|id| {
                let error = match self.groups.get(&id) {
                    None => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(group) if !group.is_empty() => ErrorCode::NON_EMPTY_GROUP,
                    Some(_) => {
                        if let Some(group) = self.groups.remove(&id) {
                            info!(group = %id, "group deleted");
                            if !group.offsets.is_empty() {
                                out.push(Output::DeleteOffsets {
                                    group: id.clone(),
                                    partitions: group.offsets.into_keys().collect(),
                                });
                            }
                        }
                        ErrorCode::NONE
                    }
                };
                (id, error)
            })
            .collect();
        (results, out)
    }
}

/// JoinGroup's work for [`Coordinator::join_group`].
fn join(
    groups: &mut BTreeMap<String, Group>,
    member_id_counter: &mut u64,
    config: &CoordinatorConfig,
    request: RequestId,
    req: JoinRequest,
    ctx: &mut Ctx<'_>,
) {
    let now_ms = ctx.now;
    if req.group_id.is_empty() {
        let response = JoinResponse::error(req.member_id, ErrorCode::INVALID_GROUP_ID);
        ctx.respond_join(request, response);
        return;
    }
    if req.session_timeout_ms < config.min_session_timeout_ms
        || req.session_timeout_ms > config.max_session_timeout_ms
    {
        let response = JoinResponse::error(req.member_id, ErrorCode::INVALID_SESSION_TIMEOUT);
        ctx.respond_join(request, response);
        return;
    }
    let new_member = req.member_id.is_empty();
    let group = if new_member {
        groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(req.group_id.clone(), now_ms))
    } else {
        match groups.get_mut(&req.group_id) {
            Some(group) => group,
            None => {
                let response = JoinResponse::error(req.member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                ctx.respond_join(request, response);
                return;
            }
        }
    };

    if group.consumer_members() > 0 {
        // The id belongs to a consumer-protocol group (Kafka would convert it only
        // with `group.consumer.migration.policy`, which Weir does not offer).
        let response = JoinResponse::error(req.member_id, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        ctx.respond_join(request, response);
        return;
    }
    // An empty consumer-protocol group becomes a classic one.
    group.consumer = None;
    if !accepts_joining_member(group, &req.member_id, config.max_group_size) {
        // Kafka drops a rejoining member over the limit, so a shrunk limit takes hold.
        group.remove_member(&req.member_id, ctx);
        let response = JoinResponse::error("", ErrorCode::GROUP_MAX_SIZE_REACHED);
        ctx.respond_join(request, response);
    } else if new_member {
        *member_id_counter += 1;
        let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
        let member_id = format_member_id(prefix, config.member_id_seed, *member_id_counter);
        join_new_member(group, request, req, member_id, ctx);
    } else {
        join_known_member(group, request, req, ctx);
    }
    group.try_complete_join(ctx);
}

/// Kafka's member ids are `{client or instance id}-{uuid}`. Ours are uuid-shaped but
/// built from the seed and a counter, so tests can predict them.
fn format_member_id(prefix: &str, seed: u64, counter: u64) -> String {
    format!("{prefix}-{}", format_uuid(seed, counter))
}

/// A uuid-shaped id from the seed and a counter (consumer-protocol member ids have no
/// prefix).
pub(crate) fn format_uuid(seed: u64, counter: u64) -> String {
    let n = (u128::from(seed) << 64) | u128::from(counter);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (n >> 96) as u32,
        (n >> 80) as u16,
        (n >> 64) as u16,
        (n >> 48) as u16,
        n & 0xffff_ffff_ffff
    )
}

/// Kafka's `acceptJoiningMember`: `group.max.size` counts members already parked in the
/// join while rebalancing, and all members otherwise.
fn accepts_joining_member(group: &Group, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        // Never the state of a classic group.
        GroupState::Assigning | GroupState::Reconciling => false,
        GroupState::PreparingRebalance => {
            group
                .member(member_id)
                .is_some_and(|m| m.awaiting_join.is_some())
                || group.num_awaiting_join() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.has_member(member_id) || group.members.len() < max_size
        }
    }
}

fn timeouts(req: &JoinRequest) -> (u64, u64) {
    let session = u64::try_from(req.session_timeout_ms).unwrap_or(0);
    let rebalance = u64::try_from(req.rebalance_timeout_ms).unwrap_or(0);
    (session, rebalance)
}

/// A JoinGroup without a member id.
fn join_new_member(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    member_id: String,
    ctx: &mut Ctx<'_>,
) {
    let old_static_id = req
        .group_instance_id
        .as_deref()
        .and_then(|i| group.static_member_id(i))
        .map(str::to_owned);
    if !group.supports_protocols(&req.protocol_type, &req.protocols, old_static_id.as_deref()) {
        let response = JoinResponse::error("", ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        ctx.respond_join(request, response);
        return;
    }
    match (old_static_id, &req.group_instance_id) {
        (Some(old_id), _) => rejoin_static_member(group, request, req, &old_id, member_id, ctx),
        (None, Some(_)) => add_member_and_rebalance(group, request, req, member_id, ctx),
        (None, None) if req.require_known_member_id => {
            // KIP-394: hand out the id first, so a client that times out and retries does
            // not leave a ghost member behind. The id is reserved for one session timeout.
            let (session_timeout, _) = timeouts(&req);
            group.pending_members.push(PendingMember {
                id: member_id.clone(),
                deadline_ms: ctx.now.saturating_add(session_timeout),
            });
            debug!(group = %group.id, member = %member_id, "member id required");
            let response = JoinResponse::error(member_id, ErrorCode::MEMBER_ID_REQUIRED);
            ctx.respond_join(request, response);
        }
        (None, None) => add_member_and_rebalance(group, request, req, member_id, ctx),
    }
}

/// A JoinGroup from a member that already has an id.
fn join_known_member(group: &mut Group, request: RequestId, req: JoinRequest, ctx: &mut Ctx<'_>) {
    let member_id = req.member_id.clone();
    if !group.supports_protocols(&req.protocol_type, &req.protocols, Some(&member_id)) {
        let response = JoinResponse::error(member_id, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        ctx.respond_join(request, response);
        return;
    }
    if group.is_pending(&member_id) {
        if req.group_instance_id.is_some() {
            // Pending ids are only handed to dynamic members; start over.
            group.pending_members.retain(|p| p.id != member_id);
            let response = JoinResponse::error("", ErrorCode::UNKNOWN_MEMBER_ID);
            ctx.respond_join(request, response);
            return;
        }
        add_member_and_rebalance(group, request, req, member_id, ctx);
        return;
    }
    if let Err(error) = group.validate_member(&member_id, req.group_instance_id.as_deref()) {
        ctx.respond_join(request, JoinResponse::error(member_id, error));
        return;
    }
    let unchanged = group
        .member(&member_id)
        .is_some_and(|m| m.protocols == req.protocols);
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, request, req, "member rejoined", ctx);
        }
        GroupState::CompletingRebalance if unchanged => {
            // Probably lost the first answer: repeat it.
            let is_leader = group.is_leader(&member_id);
            let response = group.current_join_response(&member_id, is_leader);
            ctx.respond_join(request, response);
        }
        GroupState::Stable if unchanged && !group.is_leader(&member_id) => {
            // Nothing changed: let the follower go straight to SyncGroup.
            let response = group.current_join_response(&member_id, false);
            ctx.respond_join(request, response);
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            // A changed subscription, or the leader asking for a rebalance (e.g. because
            // topic metadata changed, which member metadata does not show).
            update_member_and_rebalance(group, request, req, "member metadata changed", ctx);
        }
        GroupState::Empty | GroupState::Dead | GroupState::Assigning | GroupState::Reconciling => {
            ctx.respond_join(
                request,
                JoinResponse::error(member_id, ErrorCode::UNKNOWN_MEMBER_ID),
            );
        }
    }
}

fn add_member_and_rebalance(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    member_id: String,
    ctx: &mut Ctx<'_>,
) {
    let (session_timeout_ms, rebalance_timeout_ms) = timeouts(&req);
    let member = Member {
        id: member_id,
        instance_id: req.group_instance_id,
        client_id: req.client_id,
        client_host: req.client_host,
        session_timeout_ms,
        rebalance_timeout_ms,
        protocols: req.protocols,
        assignment: Default::default(),
        awaiting_join: Some(request),
        awaiting_sync: None,
        is_new: true,
        // A new member cannot heartbeat and its connection is parked, so this is the only
        // way to notice it went away mid-join.
        session_deadline_ms: ctx
            .now
            .saturating_add(ctx.config.new_member_join_timeout_ms),
    };
    group.add_member(member, &req.protocol_type, ctx);
    group.maybe_prepare_rebalance("new member joined", ctx);
}

fn update_member_and_rebalance(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    reason: &str,
    ctx: &mut Ctx<'_>,
) {
    let (session, rebalance) = timeouts(&req);
    group.update_member(
        &req.member_id,
        req.protocols,
        rebalance,
        session,
        request,
        ctx,
    );
    group.maybe_prepare_rebalance(reason, ctx);
}

/// KIP-345: a static member restarted and joined without its member id. It takes over the
/// old id's place (the old id is fenced). A Stable group whose protocol would not change
/// hands the current generation back without a rebalance; the member then syncs and gets
/// its previous assignment.
fn rejoin_static_member(
    group: &mut Group,
    request: RequestId,
    req: JoinRequest,
    old_id: &str,
    new_id: String,
    ctx: &mut Ctx<'_>,
) {
    // The answer names the leader as it was before the replacement, so a restarted leader
    // does not compute a new assignment for a group that is not rebalancing.
    let previous_leader = group.leader.clone().unwrap_or_default();
    info!(group = %group.id, old = %old_id, new = %new_id, "static member rejoined");
    group.replace_static_member(old_id, &new_id, ctx);
    let (session, rebalance) = timeouts(&req);
    group.update_member(&new_id, req.protocols, rebalance, session, request, ctx);
    if let Some(member) = group.member_mut(&new_id) {
        member.refresh_session(ctx.now);
    }
    match group.state {
        GroupState::Stable => {
            if group.select_protocol() == group.protocol_name {
                if let Some(request) = group
                    .member_mut(&new_id)
                    .and_then(|m| m.awaiting_join.take())
                {
                    let mut response = group.current_join_response(&new_id, false);
                    response.leader = previous_leader;
                    ctx.respond_join(request, response);
                }
                // The new id replaces the old one without a rebalance: persist it, or a
                // failed-over coordinator would fence the member as unknown.
                group.persist(ctx);
            } else {
                group.prepare_rebalance("static member changed protocols", ctx);
            }
        }
        // The leader may already have an assignment naming the old id: start over.
        GroupState::CompletingRebalance => {
            group.prepare_rebalance("static member rejoined during sync", ctx)
        }
        GroupState::PreparingRebalance => {}
        GroupState::Empty | GroupState::Dead | GroupState::Assigning | GroupState::Reconciling => {
            warn!(group = %group.id, state = %group.state, "static member in a group without members");
            group.maybe_prepare_rebalance("static member rejoined", ctx);
        }
    }
}

fn sync(
    group: &mut Group,
    request: RequestId,
    req: SyncRequest,
    ctx: &mut Ctx<'_>,
) -> Result<(), ErrorCode> {
    group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
    if req.generation_id != group.generation {
        return Err(ErrorCode::ILLEGAL_GENERATION);
    }
    if req
        .protocol_type
        .as_ref()
        .is_some_and(|t| group.protocol_type.as_ref() != Some(t))
        || req
            .protocol_name
            .as_ref()
            .is_some_and(|n| group.protocol_name.as_ref() != Some(n))
    {
        return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    match group.state {
        GroupState::Empty | GroupState::Dead | GroupState::Assigning | GroupState::Reconciling => {
            Err(ErrorCode::UNKNOWN_MEMBER_ID)
        }
        GroupState::PreparingRebalance => Err(ErrorCode::REBALANCE_IN_PROGRESS),
        GroupState::CompletingRebalance => {
            if let Some(member) = group.member_mut(&req.member_id) {
                if let Some(superseded) = member.awaiting_sync.replace(request) {
                    let response = SyncResponse::error(ErrorCode::REBALANCE_IN_PROGRESS);
                    ctx.respond_sync(superseded, response);
                }
            }
            group.mark_synced(&req.member_id);
            if group.is_leader(&req.member_id) {
                info!(group = %group.id, generation = group.generation, "assignment received from leader");
                group.complete_sync(req.assignments, ctx);
            }
            Ok(())
        }
        GroupState::Stable => {
            group.mark_synced(&req.member_id);
            let response = SyncResponse {
                error: ErrorCode::NONE,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                assignment: group
                    .member(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default(),
            };
            if let Some(member) = group.member_mut(&req.member_id) {
                member.refresh_session(ctx.now);
            }
            ctx.respond_sync(request, response);
            Ok(())
        }
    }
}

fn leave(group: &mut Group, leaving: &LeaveMember, ctx: &mut Ctx<'_>) -> ErrorCode {
    if leaving.member_id.is_empty() {
        // An administrator removing a static member by instance id.
        let current = leaving
            .group_instance_id
            .as_deref()
            .and_then(|i| group.static_member_id(i))
            .map(str::to_owned);
        return match current {
            Some(id) => {
                group.remove_member_and_update(&id, "static member removed by LeaveGroup", ctx);
                ErrorCode::NONE
            }
            None => ErrorCode::UNKNOWN_MEMBER_ID,
        };
    }
    if group.is_pending(&leaving.member_id) {
        group.remove_pending_member(&leaving.member_id, ctx);
        return ErrorCode::NONE;
    }
    match group.validate_member(&leaving.member_id, leaving.group_instance_id.as_deref()) {
        Ok(()) => {
            group.remove_member_and_update(&leaving.member_id, "member left", ctx);
            ErrorCode::NONE
        }
        Err(error) => error,
    }
}
