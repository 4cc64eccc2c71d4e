//! `weir-client`: a small async Kafka client, used by the `weir` CLI and by benchmarks.
//!
//! It speaks the Kafka wire protocol through the `kafka-protocol` crate and does only what a
//! command-line tool needs: admin requests, producing one batch at a time, fetching, offset
//! lookups, and consumer-group administration (list, describe, committed offsets, delete).
//! It never joins a group and has no idempotence; [`pipeline`] keeps several Produce or
//! Fetch requests in flight on one connection for load generators.
//!
//! Secured listeners: a [`ClientSecurity`] (TLS with a CA file and an optional client
//! certificate, SASL PLAIN or SCRAM-SHA-256/512) applies to every connection a client opens
//! ([`security`], [`scram`]).
//!
//! Data flow: [`Client`] bootstraps from one `host:port`, reads Metadata to learn brokers and
//! partition leaders, and keeps one [`Connection`] per broker. A high-level call such as
//! [`Client::produce`] builds a request message, picks the route (the bootstrap broker for admin
//! requests, the leader for Produce/Fetch/ListOffsets, the group's coordinator (found with
//! FindCoordinator) for group requests), and hands it to the connection. The
//! connection picks the highest version both sides speak (negotiated with ApiVersions when it
//! was opened; see [`connection::client_versions`]), frames it with a request header, writes
//! it, reads the response frame, checks the correlation id and decodes the body. Records go
//! through [`records`]: [`ProducerRecord`]s become one v2 record batch (optionally
//! compressed); fetched batches are decoded back into [`ConsumerRecord`]s. Broker error codes
//! surface as [`ClientError::Kafka`] with Kafka's name for the code.

mod authenticate;
pub mod client;
pub mod connection;
pub mod error;
pub mod partitioner;
pub mod pipeline;
pub mod records;
pub mod scram;
pub mod security;

pub use client::{
    decode_consumer_assignment, AclEntry, AclQuery, BrokerInfo, Client, ClusterInfo,
    ClusterMetadata, CommittedOffset, ConfigEntry, ConfigSource, ConsumerGroupDescription,
    ConsumerGroupMember, FetchPosition, FetchedData, GroupDescription, GroupListing, GroupMember,
    ListedOffset, OffsetSpec, PartitionFetch, PartitionMetadata, PartitionOffset,
    ProducerDescription, ScramUpsertion, TopicMetadata, TxnDescription, TxnListing,
    UserCredentials,
};
pub use connection::Connection;
pub use error::{error_name, ClientError};
pub use kafka_protocol::records::{Compression, TimestampType};
pub use partitioner::{murmur2, partition_for_key};
pub use pipeline::{ProducePipeline, RawFetcher, RawPartitionData};
pub use records::{ConsumerRecord, ProducerRecord};
pub use scram::SaslMechanism;
pub use security::{ClientSecurity, SaslCredentials, TlsClient, TlsSettings};

/// Shorthand for results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
