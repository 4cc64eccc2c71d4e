//! The broker on cluster metadata (docs/design/cluster.md §4.8): the [`Publisher`] applies
//! the metadata quorum's applied entries to this broker's replicas, in order.

mod publisher;

pub use publisher::{
    read_partition_metadata, Change, ImageCell, PublishError, Publisher, PARTITION_METADATA,
};
