//! The APIs and versions Weir serves.
//!
//! Floors follow KIP-896 (the versions Kafka 4.0 still accepts). One exception is deliberate:
//! Produce is advertised from v0 because librdkafka switches compression off when a broker does
//! not list Produce v0..v2 (it infers "no MsgVersion 2 support"); requests below v3 are still
//! refused, exactly as Kafka 4.0 does.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;

/// A version range for one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    /// Lowest version listed in ApiVersions.
    pub advertised_min: i16,
    /// Lowest version actually accepted.
    pub min: i16,
    pub max: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange {
        key,
        advertised_min: min,
        min,
        max,
    }
}

/// Every API Weir answers, in api-key order.
pub const SUPPORTED: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::Produce,
        advertised_min: 0,
        min: 3,
        max: 11,
    },
    range(ApiKey::Fetch, 4, 16),
    range(ApiKey::ListOffsets, 1, 9),
    range(ApiKey::Metadata, 0, 12),
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 9),
    range(ApiKey::FindCoordinator, 0, 6),
    range(ApiKey::JoinGroup, 2, 9),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::DescribeGroups, 0, 5),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::SaslHandshake, 0, 1),
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::DeleteRecords, 0, 2),
    // v0-1 were removed in Kafka 4.0 (KIP-896), and the codec has only v2-4.
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    range(ApiKey::InitProducerId, 0, 5),
    range(ApiKey::AddPartitionsToTxn, 0, 3),
    range(ApiKey::AddOffsetsToTxn, 0, 4),
    range(ApiKey::EndTxn, 0, 3),
    range(ApiKey::TxnOffsetCommit, 0, 4),
    // v0 was removed in Kafka 4.0 (KIP-896), and the codec has only v1-3.
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::DescribeLogDirs, 1, 4),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    range(ApiKey::DeleteGroups, 0, 2),
    range(ApiKey::ElectLeaders, 0, 2),
    // v1 adds allow_replication_factor_change (KIP-860, Kafka 4.1); v0 moves any replica set.
    range(ApiKey::AlterPartitionReassignments, 0, 1),
    range(ApiKey::ListPartitionReassignments, 0, 0),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::DescribeCluster, 0, 1),
    range(ApiKey::DescribeProducers, 0, 0),
    range(ApiKey::DescribeTransactions, 0, 0),
    range(ApiKey::ListTransactions, 0, 1),
    range(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    range(ApiKey::ConsumerGroupDescribe, 0, 1),
    // KIP-966: Kafka 3.8+ admin clients describe topics with it (with ELRs and paging).
    range(ApiKey::DescribeTopicPartitions, 0, 0),
    // kafka-cluster.sh unregister: removes a broker's registration (issue 11).
    range(ApiKey::UnregisterBroker, 0, 0),
];

/// The range for `key`, if Weir serves it.
pub fn supported(key: ApiKey) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|r| r.key == key)
}

/// The ApiVersions list.
pub fn advertised() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|r| {
            let mut v = ApiVersion::default();
            v.api_key = r.key as i16;
            v.min_version = r.advertised_min;
            v.max_version = r.max;
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_within_what_the_codec_can_decode() {
        for r in SUPPORTED {
            let codec = r.key.valid_versions();
            assert!(
                r.min >= codec.min,
                "{:?} min {} < codec {}",
                r.key,
                r.min,
                codec.min
            );
            assert!(
                r.max <= codec.max,
                "{:?} max {} > codec {}",
                r.key,
                r.max,
                codec.max
            );
            assert!(r.advertised_min <= r.min);
        }
    }

    #[test]
    fn produce_is_advertised_from_v0_but_served_from_v3() {
        let p = supported(ApiKey::Produce).expect("produce");
        assert_eq!((p.advertised_min, p.min), (0, 3));
        let listed = advertised();
        assert_eq!(listed.len(), SUPPORTED.len());
        assert!(listed.iter().any(|v| v.api_key == 0 && v.min_version == 0));
    }
}
