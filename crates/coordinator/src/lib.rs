//! Weir's group coordinator for Kafka's *classic* consumer group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), the *consumer* group protocol of KIP-848
//! (ConsumerGroupHeartbeat with server-side assignment, ConsumerGroupDescribe) and
//! committed offsets (OffsetCommit, OffsetFetch, OffsetDelete, DeleteGroups), as a pure
//! state machine.
//!
//! Events in, outputs out: the broker translates a request into a call on [`Coordinator`],
//! passing the current time, and carries out the returned [`Output`]s in order. There is
//! no I/O, no clock and no task in here; tests feed events and assert the exact outputs.
//!
//! - **Deferred answers.** JoinGroup waits for the rebalance, a follower's SyncGroup waits
//!   for the leader's assignment. The broker names each such request with a [`RequestId`]
//!   and gets its answer as [`Output::Respond`] from whichever later call completes it.
//!   Every `RequestId` is answered exactly once (a superseded or orphaned request gets an
//!   error), so the broker never has to garbage-collect parked requests.
//! - **Timers.** Session timeouts, rebalance timeouts, the initial rebalance delay and
//!   offset retention are deadlines in the state. [`Coordinator::next_deadline`] says when
//!   the earliest one falls due; the broker calls [`Coordinator::tick`] then.
//! - **Durability.** Offsets live in memory and in the broker's offsets log.
//!   [`Output::PersistOffsets`] must be durable before the OffsetCommit response is sent;
//!   [`Output::DeleteOffsets`] asks for tombstones. At startup the broker replays its log
//!   through [`Coordinator::load_offsets`]. A classic group's membership is persisted at
//!   the end of each rebalance ([`Output::PersistGroup`], replayed by
//!   [`Coordinator::load_group`]), a consumer-protocol (KIP-848) group whenever what it
//!   decides with changes ([`Output::PersistConsumerGroup`], durable before the heartbeat
//!   answer; replayed by [`Coordinator::load_consumer_group`]). So a restarted or
//!   failed-over coordinator knows its members and they carry on without a rebalance (as
//!   in Kafka); their session timers restart at load.
//! - **Two protocols, one namespace.** A group id belongs to the classic protocol or to
//!   the consumer protocol while it has members; the other protocol is refused with
//!   INCONSISTENT_GROUP_PROTOCOL. Consumer-protocol heartbeats are answered without
//!   waiting for other members ([`Coordinator::consumer_heartbeat`]); the coordinator
//!   computes each new group epoch's target assignment itself ("uniform" or "range") and
//!   hands partitions over only once their previous owner has reported releasing them.
//!
//! The [`txn`] module is the transaction coordinator (InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn, DescribeTransactions, ListTransactions), a separate state
//! machine in the same style: see its documentation for how the broker drives it.
//!
//! The behaviour follows Apache Kafka's classic `GroupCoordinator` and, for the consumer
//! protocol, its `GroupMetadataManager`; deliberate differences are documented where they
//! occur.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod assignor;
mod config;
mod consumer;
mod consumer_persist;
mod consumer_protocol;
mod coordinator;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod offsets;
mod subscription;
pub mod txn;
mod types;

#[cfg(test)]
mod tests;

pub use config::CoordinatorConfig;
pub use consumer_persist::{ConsumerGroupSnapshot, ConsumerMemberSnapshot, ConsumerMemberState};
pub use coordinator::Coordinator;
pub use error::ErrorCode;
pub use types::{
    CommitRequest, CommittedOffset, ConsumerGroupDescription, ConsumerHeartbeat,
    ConsumerHeartbeatResponse, ConsumerMemberDescription, DeleteOffsetsResponse, GroupDescription,
    GroupListing, GroupSnapshot, GroupState, GroupStats, GroupType, JoinMember, JoinRequest,
    JoinResponse, LeaveMember, LeaveMemberResult, LeaveResponse, MemberDescription, MemberSnapshot,
    Output, RequestId, Response, SyncRequest, SyncResponse, TopicPartition, TopicPartitions,
    TxnCommitRequest, UnknownGroupState,
};
