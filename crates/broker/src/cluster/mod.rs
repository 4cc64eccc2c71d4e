//! The broker on cluster metadata (docs/design/cluster.md §4.8): the [`Publisher`] applies
//! the metadata quorum's applied entries to this broker's replicas, in order; the
//! [`DataPlane`] replicates them (§5.2, §5.3).

mod data_plane;
mod publisher;

pub use data_plane::{
    codec_links, AlterPartitionAnswers, AlterPartitionError, AlterPartitionFuture,
    AlterPartitionSender, BoxError, DataPlane, FetchCodecError, RawFetch, ReplicaTable,
    REPLICA_FETCH_VERSION, REPLICA_FETCH_VERSIONS,
};
pub use publisher::{
    read_partition_metadata, Change, ImageCell, PublishError, Publisher, PARTITION_METADATA,
};
