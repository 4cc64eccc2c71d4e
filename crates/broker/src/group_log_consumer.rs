//! The offsets log's record of a consumer-protocol (KIP-848) group: key
//! `{consumer_group}`, value the group's epochs, partition counts and members (with their
//! epochs, state, subscriptions and assigned, pending-revocation and target partitions) as
//! JSON; no value once its last member left. One record holds the whole group, so a
//! compacted shard keeps the latest by key.

use serde::{Deserialize, Serialize};
use weir_coordinator::{
    ConsumerGroupSnapshot, ConsumerMemberSnapshot, ConsumerMemberState, TopicPartitions,
};

use super::json;

/// Record key of a consumer-protocol group.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ConsumerGroupKey {
    pub consumer_group: String,
}

/// Record value of a consumer-protocol group (Kafka's ConsumerGroupMetadata, member
/// metadata, target and current assignment records, in one).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ConsumerGroupValue {
    group_epoch: i32,
    assignment_epoch: i32,
    assignor: String,
    partition_counts: Vec<(String, i32)>,
    members: Vec<ConsumerMemberValue>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConsumerMemberValue {
    member_id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    member_epoch: i32,
    previous_epoch: i32,
    /// "stable", "unrevoked_partitions" or "unreleased_partitions".
    state: String,
    rebalance_timeout_ms: u64,
    subscribed_topics: Vec<String>,
    server_assignor: Option<String>,
    assigned: TopicPartitions,
    pending_revocation: TopicPartitions,
    target: TopicPartitions,
}

fn state_name(state: ConsumerMemberState) -> &'static str {
    match state {
        ConsumerMemberState::Stable => "stable",
        ConsumerMemberState::UnrevokedPartitions => "unrevoked_partitions",
        ConsumerMemberState::UnreleasedPartitions => "unreleased_partitions",
    }
}

fn parse_state(name: &str) -> Result<ConsumerMemberState, String> {
    Ok(match name {
        "stable" => ConsumerMemberState::Stable,
        "unrevoked_partitions" => ConsumerMemberState::UnrevokedPartitions,
        "unreleased_partitions" => ConsumerMemberState::UnreleasedPartitions,
        other => return Err(format!("consumer group member state {other:?} is unknown")),
    })
}

impl ConsumerGroupValue {
    fn new(s: &ConsumerGroupSnapshot) -> Self {
        Self {
            group_epoch: s.group_epoch,
            assignment_epoch: s.assignment_epoch,
            assignor: s.assignor.clone(),
            partition_counts: s.partition_counts.clone(),
            members: s
                .members
                .iter()
                .map(|m| ConsumerMemberValue {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_epoch: m.member_epoch,
                    previous_epoch: m.previous_epoch,
                    state: state_name(m.state).to_owned(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscribed_topics: m.subscribed_topics.clone(),
                    server_assignor: m.server_assignor.clone(),
                    assigned: m.assigned.clone(),
                    pending_revocation: m.pending_revocation.clone(),
                    target: m.target.clone(),
                })
                .collect(),
        }
    }

    pub(super) fn snapshot(self) -> Result<ConsumerGroupSnapshot, String> {
        let members = self
            .members
            .into_iter()
            .map(|m| {
                Ok(ConsumerMemberSnapshot {
                    state: parse_state(&m.state)?,
                    member_id: m.member_id,
                    instance_id: m.instance_id,
                    rack_id: m.rack_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    member_epoch: m.member_epoch,
                    previous_epoch: m.previous_epoch,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscribed_topics: m.subscribed_topics,
                    server_assignor: m.server_assignor,
                    assigned: m.assigned,
                    pending_revocation: m.pending_revocation,
                    target: m.target,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(ConsumerGroupSnapshot {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor,
            partition_counts: self.partition_counts,
            members,
        })
    }
}

/// The key and value of a consumer-protocol group (`Some`) or its tombstone (`None`).
pub fn consumer_group_record(
    group: &str,
    snapshot: Option<&ConsumerGroupSnapshot>,
) -> (bytes::Bytes, Option<bytes::Bytes>) {
    let key = ConsumerGroupKey {
        consumer_group: group.to_owned(),
    };
    (
        json(&key),
        snapshot.map(|s| json(&ConsumerGroupValue::new(s))),
    )
}

#[cfg(test)]
mod tests {
    use weir_protocol::kafka_protocol::records::Compression;

    use super::super::{decode_record, LogRecord};
    use super::*;

    /// Encodes the record as the log appends it, decodes it as replay does.
    fn replayed(key: bytes::Bytes, value: Option<bytes::Bytes>) -> Result<LogRecord, String> {
        let batch = crate::internal_log::encode([(key, value)], 0, Compression::None)
            .expect("encode")
            .freeze();
        let mut records = crate::fuzzing::decode_internal_log(batch).expect("decode");
        assert_eq!(records.len(), 1);
        decode_record(&records.remove(0))
    }

    fn snapshot() -> ConsumerGroupSnapshot {
        let tps = |ps: &[i32]| vec![("orders".to_owned(), ps.to_vec())];
        let member = |id: &str, state| ConsumerMemberSnapshot {
            member_id: id.to_owned(),
            instance_id: Some(format!("i-{id}")),
            rack_id: None,
            client_id: "rdkafka".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            member_epoch: 4,
            previous_epoch: 3,
            state,
            rebalance_timeout_ms: 30_000,
            subscribed_topics: vec!["orders".to_owned()],
            server_assignor: Some("range".to_owned()),
            assigned: tps(&[0, 1]),
            pending_revocation: tps(&[2]),
            target: tps(&[0, 1]),
        };
        ConsumerGroupSnapshot {
            group_epoch: 5,
            assignment_epoch: 5,
            assignor: "range".to_owned(),
            partition_counts: vec![("orders".to_owned(), 4)],
            members: vec![
                member("m1", ConsumerMemberState::UnrevokedPartitions),
                member("m2", ConsumerMemberState::UnreleasedPartitions),
                member("m3", ConsumerMemberState::Stable),
            ],
        }
    }

    #[test]
    fn a_consumer_group_record_round_trips() {
        let s = snapshot();
        let (key, value) = consumer_group_record("g", Some(&s));
        match replayed(key, value) {
            Ok(LogRecord::Consumer(key, Some(decoded))) => {
                assert_eq!(key.consumer_group, "g");
                assert_eq!(decoded, s);
            }
            _ => panic!("not decoded as a consumer group record"),
        }
        let (key, value) = consumer_group_record("g", None);
        assert!(value.is_none());
        assert!(matches!(
            replayed(key, value),
            Ok(LogRecord::Consumer(_, None))
        ));
    }

    #[test]
    fn a_consumer_group_record_with_an_unknown_member_state_is_refused() {
        let (key, value) = consumer_group_record("g", Some(&snapshot()));
        let value = String::from_utf8(value.expect("value").to_vec()).expect("utf-8");
        let value = value.replace("\"stable\"", "\"dancing\"");
        let err = replayed(key, Some(value.into())).err().expect("refused");
        assert!(err.contains("dancing"), "{err}");
    }
}
