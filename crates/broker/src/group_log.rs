//! The offsets log's records (`meta/group-offsets`) and its replay into a coordinator.
//!
//! One record per committed partition: key `{group, topic, partition}`, value the commit as
//! JSON, or no value for a tombstone. A producer's pending transactional commits in a group
//! are keyed `{group, txn_producer_id}`: a value adds pending commits (records accumulate),
//! no value settles them (the transaction was decided). A classic group's membership as of
//! its last rebalance is keyed `{group_membership}` (no value: the group became Empty). A
//! consumer-protocol (KIP-848) group's epochs, members and assignments are keyed
//! `{consumer_group}` (no value: its last member left); see `group_log_consumer.rs`.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_coordinator::{
    CommittedOffset, ConsumerGroupSnapshot, Coordinator, CoordinatorConfig, GroupSnapshot,
    MemberSnapshot, TopicPartition,
};
use weir_protocol::kafka_protocol::records::Record;
use weir_storage::Log;

use crate::groups::GroupsError;

#[path = "group_log_consumer.rs"]
mod consumer;
pub use consumer::consumer_group_record;
use consumer::{ConsumerGroupKey, ConsumerGroupValue};

/// Record key of a committed offset.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetKey {
    group: String,
    topic: String,
    partition: i32,
}

/// Record key of a producer's pending transactional commits in a group.
#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetsKey {
    group: String,
    txn_producer_id: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetsValue {
    producer_epoch: i16,
    offsets: Vec<TxnOffsetEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TxnOffsetEntry {
    topic: String,
    partition: i32,
    #[serde(flatten)]
    value: OffsetValue,
}

/// Record key of a classic group's membership.
#[derive(Debug, Serialize, Deserialize)]
struct GroupKey {
    group_membership: String,
}

/// Record value of a classic group's membership (Kafka's GroupMetadata value).
#[derive(Debug, Serialize, Deserialize)]
struct GroupValue {
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: Vec<MemberValue>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MemberValue {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    /// Base64 of the member's protocol metadata.
    subscription: String,
    /// Base64 of the member's assignment.
    assignment: String,
}

impl GroupValue {
    fn new(s: &GroupSnapshot) -> Self {
        GroupValue {
            generation: s.generation,
            protocol_type: s.protocol_type.clone(),
            protocol_name: s.protocol_name.clone(),
            leader: s.leader.clone(),
            members: s
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    subscription: BASE64.encode(&m.subscription),
                    assignment: BASE64.encode(&m.assignment),
                })
                .collect(),
        }
    }

    fn snapshot(self) -> Result<GroupSnapshot, String> {
        let bytes = |b64: &str| {
            BASE64
                .decode(b64)
                .map(Bytes::from)
                .map_err(|e| format!("group membership: {e}"))
        };
        let members = self
            .members
            .into_iter()
            .map(|m| {
                Ok(MemberSnapshot {
                    subscription: bytes(&m.subscription)?,
                    assignment: bytes(&m.assignment)?,
                    member_id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(GroupSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type,
            protocol_name: self.protocol_name,
            leader: self.leader,
            members,
        })
    }
}

/// The kinds of record, told apart by their key's fields.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum LogKey {
    Offset(OffsetKey),
    Txn(TxnOffsetsKey),
    Group(GroupKey),
    Consumer(ConsumerGroupKey),
}

/// A decoded record.
enum LogRecord {
    Offset(OffsetKey, Option<OffsetValue>),
    TxnPending(TxnOffsetsKey, TxnOffsetsValue),
    TxnSettled(TxnOffsetsKey),
    Group(GroupKey, Option<GroupSnapshot>),
    Consumer(ConsumerGroupKey, Option<ConsumerGroupSnapshot>),
}

/// Record value of a committed offset.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    leader_epoch: Option<i32>,
    metadata: Option<String>,
    commit_timestamp_ms: u64,
}

impl OffsetValue {
    fn new(c: &CommittedOffset) -> Self {
        OffsetValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            commit_timestamp_ms: c.commit_timestamp_ms,
        }
    }

    fn committed(self) -> CommittedOffset {
        CommittedOffset {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata,
            commit_timestamp_ms: self.commit_timestamp_ms,
        }
    }
}

pub(crate) fn json<T: Serialize>(v: &T) -> Bytes {
    // These types hold only strings and integers: serializing them cannot fail.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The key and value of a committed offset (`Some`) or its tombstone (`None`).
pub fn offset_record(
    group: &str,
    tp: &TopicPartition,
    committed: Option<&CommittedOffset>,
) -> (Bytes, Option<Bytes>) {
    let key = OffsetKey {
        group: group.to_owned(),
        topic: tp.topic.clone(),
        partition: tp.partition,
    };
    (json(&key), committed.map(|c| json(&OffsetValue::new(c))))
}

/// The key and value of a producer's pending transactional commits (`Some`) or of their
/// settlement (`None`).
pub fn txn_offsets_record(
    group: &str,
    producer_id: i64,
    producer_epoch: i16,
    offsets: Option<&[(TopicPartition, CommittedOffset)]>,
) -> (Bytes, Option<Bytes>) {
    let key = TxnOffsetsKey {
        group: group.to_owned(),
        txn_producer_id: producer_id,
    };
    let value = offsets.map(|offsets| TxnOffsetsValue {
        producer_epoch,
        offsets: offsets
            .iter()
            .map(|(tp, c)| TxnOffsetEntry {
                topic: tp.topic.clone(),
                partition: tp.partition,
                value: OffsetValue::new(c),
            })
            .collect(),
    });
    (json(&key), value.as_ref().map(json))
}

/// The key and value of a classic group's membership (`Some`) or its tombstone (`None`).
pub fn group_record(group: &str, snapshot: Option<&GroupSnapshot>) -> (Bytes, Option<Bytes>) {
    let key = GroupKey {
        group_membership: group.to_owned(),
    };
    (json(&key), snapshot.map(|s| json(&GroupValue::new(s))))
}

fn decode_record(r: &Record) -> Result<LogRecord, String> {
    let key = r.key.as_ref().ok_or("record without a key")?;
    let key: LogKey = serde_json::from_slice(key).map_err(|e| e.to_string())?;
    fn parse<T: serde::de::DeserializeOwned>(v: &Bytes) -> Result<T, String> {
        serde_json::from_slice(v).map_err(|e| e.to_string())
    }
    Ok(match (key, &r.value) {
        (LogKey::Offset(key), None) => LogRecord::Offset(key, None),
        (LogKey::Offset(key), Some(v)) => LogRecord::Offset(key, Some(parse(v)?)),
        (LogKey::Txn(key), None) => LogRecord::TxnSettled(key),
        (LogKey::Txn(key), Some(v)) => LogRecord::TxnPending(key, parse(v)?),
        (LogKey::Group(key), None) => LogRecord::Group(key, None),
        (LogKey::Group(key), Some(v)) => {
            LogRecord::Group(key, Some(parse::<GroupValue>(v)?.snapshot()?))
        }
        (LogKey::Consumer(key), None) => LogRecord::Consumer(key, None),
        (LogKey::Consumer(key), Some(v)) => {
            LogRecord::Consumer(key, Some(parse::<ConsumerGroupValue>(v)?.snapshot()?))
        }
    })
}

/// Decodes a record and discards it (the fuzz targets' entry point).
pub(crate) fn check_record(r: &Record) -> Result<(), String> {
    decode_record(r).map(drop)
}

/// A coordinator rebuilt from the offsets log.
pub struct Loaded {
    pub coordinator: Coordinator,
    /// Records replayed.
    pub records: i64,
    /// Committed offsets live at the end.
    pub live: usize,
}

/// Replays the offsets log into a new coordinator. Classic groups come back with the
/// members of their last persisted rebalance, consumer-protocol groups as of their last
/// change (epochs, members, assignments); their sessions start now.
pub fn load(log: &Log, config: CoordinatorConfig, now: u64) -> Result<Loaded, GroupsError> {
    let mut coordinator = Coordinator::new(config);
    let mut live = HashMap::new();
    let mut groups_live = HashMap::new();
    let mut consumers_live = HashMap::new();
    let mut records = 0i64;
    crate::internal_log::replay(log, |r| {
        records += 1;
        let record = decode_record(&r).map_err(|message| GroupsError::Corrupt {
            offset: r.offset,
            message,
        })?;
        match record {
            LogRecord::Offset(key, value) => {
                let tp = TopicPartition::new(key.topic.clone(), key.partition);
                let committed = value.map(OffsetValue::committed);
                live.insert((key.group.clone(), tp.clone()), committed.is_some());
                coordinator.load_offsets(now, &key.group, tp, committed);
            }
            LogRecord::TxnPending(key, value) => {
                let offsets = value
                    .offsets
                    .into_iter()
                    .map(|e| {
                        (
                            TopicPartition::new(e.topic, e.partition),
                            e.value.committed(),
                        )
                    })
                    .collect();
                coordinator.load_txn_offsets(now, &key.group, key.txn_producer_id, offsets);
            }
            LogRecord::TxnSettled(key) => {
                coordinator.load_txn_settled(&key.group, key.txn_producer_id);
            }
            LogRecord::Group(key, snapshot) => {
                groups_live.insert(key.group_membership.clone(), snapshot.is_some());
                coordinator.load_group(now, &key.group_membership, snapshot);
            }
            LogRecord::Consumer(key, snapshot) => {
                consumers_live.insert(key.consumer_group.clone(), snapshot.is_some());
                coordinator.load_consumer_group(now, &key.consumer_group, snapshot);
            }
        }
        Ok(())
    })?;
    Ok(Loaded {
        coordinator,
        records,
        live: live.values().filter(|l| **l).count()
            + groups_live.values().filter(|l| **l).count()
            + consumers_live.values().filter(|l| **l).count(),
    })
}
