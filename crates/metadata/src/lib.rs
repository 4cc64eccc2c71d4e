//! Weir's cluster metadata (issue 11, `docs/design/cluster.md` §3-§5): the records of the
//! metadata log, the image they build, and the active controller's decisions, as a pure
//! state machine. No I/O, no clock, no consensus: the controller crate runs this on top of
//! its Raft log and passes the time in.
//!
//! Data flow:
//!
//! ```text
//! request ──▶ ControllerLogic::handle(&image, request, now_ms) ──▶ (records, reply)
//! timer   ──▶ ControllerLogic::tick(&image, now_ms)            ──▶ records
//! records ──▶ committed to the metadata log (all of one call as one entry)
//!         ──▶ MetadataImage::apply_all on every node             ──▶ MetadataDelta
//!         ──▶ the reply goes out; the broker's publisher acts on the delta
//! ```
//!
//! - **Records are the truth.** The image is only ever built by applying records, so
//!   replaying the log (or a snapshot and the log after it) rebuilds the same image on
//!   every node. [`ControllerLogic`] decides on the image it is given and keeps only soft
//!   state (broker session deadlines), which a new active controller rebuilds by giving
//!   every broker a fresh session.
//! - **Kafka's vocabulary.** Records follow KRaft's (KIP-631, KIP-746), errors carry
//!   Kafka's codes ([`MetadataError::code`]), epochs bump as in Kafka: `partition_epoch` on
//!   every partition change, `leader_epoch` on every leader change.
//! - **Randomness.** The one input not passed in is a new topic's id (`Uuid::new_v4`);
//!   it is carried by the `Topic` record, so replay never depends on it.
//! - **Cheap images.** Topics sit behind `Arc`s and are copied only when a record changes
//!   them, so the controller glue can hand an `Arc<MetadataImage>` to every subscriber per
//!   applied entry.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod controller;
mod delta;
mod error;
mod image;
mod records;

#[cfg(test)]
mod tests;

pub use controller::requests::{
    AlterConfigsResource, AlterPartitionItem, AlterPartitionResult, BrokerHeartbeat,
    BrokerRegistrationRequest, ControllerReply, ControllerRequest, CreatableTopic,
    CreatePartitionsTopic, CreatedTopic, ElectionType, HeartbeatReply, IsrMember, Reassignment,
};
pub use controller::{ControllerConfig, ControllerLogic, PRODUCER_ID_BLOCK_SIZE};
pub use delta::{MetadataDelta, PartitionDelta};
pub use error::{ImageError, MetadataError};
pub use image::{MetadataImage, TopicImage};
pub use records::{
    AclEntry, BrokerId, BrokerRegistration, ConfigResource, Endpoint, LeaderRecovery,
    MetadataRecord, PartitionChange, PartitionRegistration, ELR_FEATURE, NO_LEADER,
};
