//! Entry points of the consumer group protocol (KIP-848): ConsumerGroupHeartbeat,
//! ConsumerGroupDescribe and the consumer-protocol timers. Follows Apache Kafka's
//! `GroupMetadataManager.consumerGroupHeartbeat`; deliberate differences are noted.
//!
//! A heartbeat's answer comes with the [`crate::Output::PersistConsumerGroup`] its change
//! needs (none for a steady heartbeat): the broker sends the answer once that is durable.

use tracing::info;

use crate::assignor::{Assignment, Assignor};
use crate::consumer::{
    from_wire, is_subset, to_wire, ConsumerGroup, ConsumerMember, MemberState, STATIC_LEAVE_EPOCH,
};
use crate::coordinator::{format_uuid, Coordinator};
use crate::group::Group;
use crate::types::{
    ConsumerGroupDescription, ConsumerHeartbeat, ConsumerHeartbeatResponse, GroupState, Output,
};
use crate::ErrorCode;

const LEAVE_EPOCH: i32 = -1;

/// An error answer: code and message.
type Refusal = (ErrorCode, String);

fn refuse<T>(error: ErrorCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err((error, message.into()))
}

impl Coordinator {
    /// ConsumerGroupHeartbeat: join (epoch 0), heartbeat (epoch > 0) or leave (-1, or -2
    /// for a static member that will come back). `topics` gives the partition count of a
    /// topic (`None` if it does not exist); it is asked for every topic the group
    /// subscribes to, on every heartbeat, so partition changes start a new group epoch.
    ///
    /// The outputs hold the group's record when the heartbeat changed what is persisted
    /// (membership, epochs, assignments); the answer must not be sent before it is
    /// durable, so that a member told epoch N finds epoch N at the next coordinator.
    pub fn consumer_heartbeat(
        &mut self,
        now_ms: u64,
        req: ConsumerHeartbeat,
        topics: &dyn Fn(&str) -> Option<i32>,
    ) -> (ConsumerHeartbeatResponse, Vec<Output>) {
        let group_id = req.group_id.clone();
        let result = validate(&req).and_then(|()| {
            if req.member_epoch < 0 {
                self.consumer_leave(now_ms, &req)
            } else {
                self.consumer_join_or_heartbeat(now_ms, req, topics)
            }
        });
        let mut out = Vec::new();
        if let Some(group) = self.groups.get_mut(&group_id) {
            group.persist_consumer(&mut out);
        }
        let response = result
            .unwrap_or_else(|(error, message)| ConsumerHeartbeatResponse::error(error, message));
        (response, out)
    }

    fn consumer_join_or_heartbeat(
        &mut self,
        now_ms: u64,
        req: ConsumerHeartbeat,
        topics: &dyn Fn(&str) -> Option<i32>,
    ) -> Result<ConsumerHeartbeatResponse, Refusal> {
        let epoch = req.member_epoch;
        let joining = epoch == 0;
        let member_id = if req.member_id.is_empty() {
            self.member_id_counter += 1;
            format_uuid(self.config.member_id_seed, self.member_id_counter)
        } else {
            req.member_id.clone()
        };
        let config = &self.config;
        let group = if joining {
            self.groups
                .entry(req.group_id.clone())
                .or_insert_with(|| Group::new(req.group_id.clone(), now_ms))
        } else {
            // Kafka answers GROUP_ID_NOT_FOUND here. UNKNOWN_MEMBER_ID makes the client
            // rejoin instead of failing (a group whose last member left is forgotten).
            match self.groups.get_mut(&req.group_id) {
                Some(group) => group,
                None => return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member"),
            }
        };
        if group.has_classic_members() {
            return refuse(
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                format!("group {} is a classic group with members", req.group_id),
            );
        }
        if !joining && group.consumer.is_none() {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
        }
        let cg = group.consumer.get_or_insert_with(ConsumerGroup::default);

        // Find (or make) the member, and check its epoch.
        let assignor_before = cg.assignor_name();
        let mut bump = false;
        let mut member = match (&req.instance_id, joining) {
            (Some(instance), true) => match cg.static_member_id(instance).map(str::to_owned) {
                Some(old_id) if old_id == member_id => rejoin(cg, &member_id)?,
                Some(old_id) => replace_static_member(cg, &old_id, &member_id)?,
                None => {
                    bump = true;
                    new_member(cg, &member_id, config.consumer_max_group_size)?
                }
            },
            (Some(instance), false) => {
                match cg.static_member_id(instance) {
                    None => return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown static member"),
                    Some(id) if id != member_id => {
                        return refuse(
                            ErrorCode::FENCED_INSTANCE_ID,
                            format!("instance {instance} belongs to another member"),
                        )
                    }
                    Some(_) => {}
                }
                known_member(cg, &member_id, epoch, req.topic_partitions.as_ref())?
            }
            (None, true) if cg.members.contains_key(&member_id) => rejoin(cg, &member_id)?,
            (None, true) => {
                bump = true;
                new_member(cg, &member_id, config.consumer_max_group_size)?
            }
            (None, false) => known_member(cg, &member_id, epoch, req.topic_partitions.as_ref())?,
        };

        let before = member.assigned.clone();
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        if req.rack_id.is_some() {
            member.rack_id = req.rack_id;
        }
        if req.instance_id.is_some() {
            member.instance_id = req.instance_id;
        }
        if req.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = u64::try_from(req.rebalance_timeout_ms).unwrap_or(0);
        }
        if let Some(names) = &req.subscribed_topic_names {
            let names = names.iter().cloned().collect();
            if member.subscribed_topics != names {
                member.subscribed_topics = names;
                bump = true;
            }
        }
        if req.server_assignor.is_some() {
            member.server_assignor = req.server_assignor;
        }
        member.session_deadline_ms = now_ms.saturating_add(config.consumer_session_timeout_ms);
        cg.members.insert(member_id.clone(), member);
        bump |= cg.assignor_name() != assignor_before;
        bump |= cg.refresh_partition_counts(topics);
        if bump {
            cg.bump_epoch(
                &req.group_id,
                "membership, subscriptions or partitions changed",
            );
        }

        // A joining member owns nothing, whatever it says.
        let owned: Option<Assignment> = if joining {
            Some(Assignment::new())
        } else {
            req.topic_partitions.as_ref().map(from_wire)
        };
        cg.reconcile(&member_id, owned.as_ref(), now_ms);
        let Some(member) = cg.members.get(&member_id) else {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "member vanished");
        };
        let full_request = joining
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.topic_partitions.is_some());
        Ok(ConsumerHeartbeatResponse {
            error: ErrorCode::NONE,
            error_message: None,
            member_id,
            member_epoch: member.epoch,
            heartbeat_interval_ms: i32::try_from(config.consumer_heartbeat_interval_ms)
                .unwrap_or(i32::MAX),
            assignment: (full_request || member.assigned != before)
                .then(|| to_wire(&member.assigned)),
        })
    }

    fn consumer_leave(
        &mut self,
        now_ms: u64,
        req: &ConsumerHeartbeat,
    ) -> Result<ConsumerHeartbeatResponse, Refusal> {
        let session_timeout = self.config.consumer_session_timeout_ms;
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
        };
        let Some(cg) = group.consumer.as_mut() else {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
        };
        if let Some(instance) = &req.instance_id {
            match cg.static_member_id(instance) {
                None => return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown static member"),
                Some(id) if id != req.member_id => {
                    return refuse(
                        ErrorCode::FENCED_INSTANCE_ID,
                        format!("instance {instance} belongs to another member"),
                    )
                }
                Some(_) => {}
            }
        }
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // The member keeps its place and its partitions (nobody else gets them) until
            // it rejoins under its instance id or its session runs out.
            let Some(member) = cg.members.get_mut(&req.member_id) else {
                return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
            };
            member.epoch = STATIC_LEAVE_EPOCH;
            member.state = MemberState::Stable;
            member.pending_revocation.clear();
            member.rebalance_deadline_ms = None;
            member.session_deadline_ms = now_ms.saturating_add(session_timeout);
            info!(group = %req.group_id, member = %req.member_id, "static member left temporarily");
        } else {
            if !cg.remove_member(&req.group_id, &req.member_id, "member left") {
                return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
            }
            if cg.members.is_empty() {
                group.state_since_ms = now_ms;
            }
        }
        Ok(ConsumerHeartbeatResponse {
            error: ErrorCode::NONE,
            error_message: None,
            member_id: req.member_id.clone(),
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// ConsumerGroupDescribe, one answer per id in request order. Unknown and classic
    /// groups are GROUP_ID_NOT_FOUND, as in Kafka.
    pub fn consumer_group_describe(&self, group_ids: &[String]) -> Vec<ConsumerGroupDescription> {
        group_ids
            .iter()
            .map(|id| {
                let not_found = |message: String| ConsumerGroupDescription {
                    error: ErrorCode::GROUP_ID_NOT_FOUND,
                    error_message: Some(message),
                    group_id: id.clone(),
                    state: GroupState::Dead,
                    group_epoch: 0,
                    assignment_epoch: 0,
                    assignor_name: String::new(),
                    members: Vec::new(),
                };
                let Some(group) = self.groups.get(id) else {
                    return not_found(format!("group {id} not found"));
                };
                let Some(cg) = &group.consumer else {
                    return not_found(format!("group {id} is not a consumer group"));
                };
                ConsumerGroupDescription {
                    error: ErrorCode::NONE,
                    error_message: None,
                    group_id: id.clone(),
                    state: cg.state(),
                    group_epoch: cg.group_epoch,
                    assignment_epoch: cg.assignment_epoch,
                    assignor_name: cg.assignor_name(),
                    members: cg.members.values().map(|m| cg.describe_member(m)).collect(),
                }
            })
            .collect()
    }
}

impl Group {
    /// Removes consumer-protocol members whose session ended, or that did not revoke
    /// partitions within their rebalance timeout. Each removal starts a new group epoch.
    /// Whether any member was removed.
    pub(crate) fn expire_consumer_members(&mut self, now: u64) -> bool {
        let Some(cg) = self.consumer.as_mut() else {
            return false;
        };
        let expired: Vec<(String, &'static str)> = cg
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline_ms <= now {
                    Some((m.id.clone(), "session timeout expired"))
                } else if m.rebalance_deadline_ms.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "partitions not revoked within the rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect();
        if expired.is_empty() {
            return false;
        }
        for (id, reason) in expired {
            cg.remove_member(&self.id, &id, reason);
        }
        if cg.members.is_empty() {
            self.state_since_ms = now;
        }
        true
    }

    pub(crate) fn next_consumer_deadline(&self) -> Option<u64> {
        self.consumer
            .as_ref()?
            .members
            .values()
            .map(ConsumerMember::next_deadline)
            .min()
    }
}

/// Kafka's request validation, plus what Weir does not support.
fn validate(req: &ConsumerHeartbeat) -> Result<(), Refusal> {
    let invalid = |message: &str| refuse(ErrorCode::INVALID_REQUEST, message);
    if req.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if req.subscribed_topic_regex.is_some() {
        return invalid("SubscribedTopicRegex is not supported by Weir.");
    }
    if req.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    match req.member_epoch {
        0 => {
            if req.rebalance_timeout_ms < 0 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if req.subscribed_topic_names.is_none() {
                return invalid("SubscribedTopicNames must be set in first request.");
            }
            if req
                .topic_partitions
                .as_ref()
                .is_some_and(|tps| !tps.is_empty())
            {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
        }
        epoch if epoch > 0 || epoch == LEAVE_EPOCH => {
            if req.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
        }
        STATIC_LEAVE_EPOCH => {
            if req.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if req.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        }
        _ => return invalid("MemberEpoch is invalid."),
    }
    if let Some(name) = &req.server_assignor {
        if Assignor::from_name(name).is_none() {
            return refuse(
                ErrorCode::UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: uniform, range."
                ),
            );
        }
    }
    Ok(())
}

/// Takes a known member out of the group for updating, after Kafka's epoch check: the
/// current epoch, or the previous one if what the member owns is within its assignment
/// (the answer that bumped its epoch may have been lost).
fn known_member(
    cg: &mut ConsumerGroup,
    member_id: &str,
    epoch: i32,
    owned: Option<&crate::TopicPartitions>,
) -> Result<ConsumerMember, Refusal> {
    let Some(member) = cg.members.get(member_id) else {
        return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
    };
    let fenced = if epoch > member.epoch {
        true
    } else if epoch < member.epoch {
        epoch != member.previous_epoch
            || !owned.is_some_and(|o| is_subset(&from_wire(o), &member.assigned))
    } else {
        false
    };
    if fenced {
        return refuse(
            ErrorCode::FENCED_MEMBER_EPOCH,
            format!(
                "member epoch {epoch} does not match the coordinator's {}; rejoin",
                member.epoch
            ),
        );
    }
    cg.members
        .remove(member_id)
        .ok_or((ErrorCode::UNKNOWN_MEMBER_ID, "unknown member".into()))
}

fn new_member(
    cg: &mut ConsumerGroup,
    member_id: &str,
    max_size: usize,
) -> Result<ConsumerMember, Refusal> {
    if cg.members.len() >= max_size {
        return refuse(
            ErrorCode::GROUP_MAX_SIZE_REACHED,
            format!("the group has reached its maximum size of {max_size}"),
        );
    }
    Ok(ConsumerMember::new(member_id.to_owned()))
}

/// A known member sent epoch 0: it lost its state (it was fenced, or restarted) and owns
/// nothing now. Kafka would fence it unless its previous epoch was 0; since KIP-1082 the
/// client rejoins with the same id, so Weir takes it back as a member without partitions.
fn rejoin(cg: &mut ConsumerGroup, member_id: &str) -> Result<ConsumerMember, Refusal> {
    let Some(mut member) = cg.members.remove(member_id) else {
        return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
    };
    member.assigned.clear();
    member.pending_revocation.clear();
    member.state = MemberState::Stable;
    member.rebalance_deadline_ms = None;
    member.epoch = 0;
    member.previous_epoch = 0;
    Ok(member)
}

/// A static member came back under a new member id. Allowed only if the old one left with
/// epoch -2 (else UNRELEASED_INSTANCE_ID); the new one inherits its partitions and its
/// target, without a new group epoch.
fn replace_static_member(
    cg: &mut ConsumerGroup,
    old_id: &str,
    new_id: &str,
) -> Result<ConsumerMember, Refusal> {
    match cg.members.get(old_id) {
        Some(old) if old.epoch == STATIC_LEAVE_EPOCH => {}
        _ => {
            return refuse(
                ErrorCode::UNRELEASED_INSTANCE_ID,
                format!("instance id is still in use by member {old_id}"),
            )
        }
    }
    let Some(old) = cg.members.remove(old_id) else {
        return refuse(ErrorCode::UNKNOWN_MEMBER_ID, "unknown member");
    };
    if let Some(target) = cg.target.remove(old_id) {
        cg.target.insert(new_id.to_owned(), target);
    }
    let mut member = ConsumerMember::new(new_id.to_owned());
    member.instance_id = old.instance_id;
    member.rack_id = old.rack_id;
    member.rebalance_timeout_ms = old.rebalance_timeout_ms;
    member.subscribed_topics = old.subscribed_topics;
    member.server_assignor = old.server_assignor;
    member.assigned = old.assigned;
    info!(old = %old_id, new = %new_id, "static member replaced");
    Ok(member)
}
