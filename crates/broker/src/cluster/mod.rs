//! The broker on cluster metadata (docs/design/cluster.md §4.8): the [`Publisher`] applies
//! the metadata quorum's applied entries to this broker's replicas, in order, and keeps the
//! broker's topic table on the image; the [`DataPlane`] replicates them (§5.2, §5.3); admin
//! requests go to the quorum through a [`ControllerClient`] the binary installs; the
//! [`Lease`] (§4.9) stops a broker the controller may have fenced from answering as a
//! leader or coordinator.

mod acls;
mod controller;
pub mod coordinator;
mod data_plane;
mod lease;
pub mod metadata;
mod partition_admin;
mod producer_ids;
mod publisher;
mod topics;

pub use controller::{
    ControllerClient, ControllerUnavailable, GoneFuture, SubmitFuture, Submitted,
};
pub use data_plane::{
    codec_links, AlterPartitionAnswers, AlterPartitionError, AlterPartitionFuture,
    AlterPartitionSender, BoxError, DataPlane, FetchCodecError, RawFetch, ReplicaTable,
    REPLICA_FETCH_VERSION, REPLICA_FETCH_VERSIONS,
};
pub use lease::{HeartbeatAck, Lease, LeaseStatus};
pub use partition_admin::PartitionResults;
pub use publisher::{
    read_partition_metadata, Change, ImageCell, PublishError, Publisher, PARTITION_METADATA,
};
pub use topics::LeaseNow;

#[cfg(test)]
mod handlers_tests;
