//! Resetting a group's committed offsets from the group page (design §4), as Kafka's
//! `kafka-consumer-groups.sh --reset-offsets` does: to the earliest or latest offset, the
//! first at a time, a given offset or shifted by N, each clamped into the partition's
//! `[log start, high watermark]`; for one partition, one topic, or every topic the group
//! committed on. Refused while the group has members (they would overwrite it, and Kafka
//! refuses too). A dry run shows current → new and the lag before and after per partition;
//! applying computes the plan again (the log may have moved) and commits it through the group
//! coordinator as an admin commit (generation -1), which the coordinator itself refuses for a
//! group that gained members meanwhile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_broker::state::State;
use weir_coordinator::{CommitRequest, CommittedOffset, ErrorCode, TopicPartition};

/// Where to move each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    /// The first record at or after this time (ms); the log end when there is none.
    Timestamp(i64),
    Offset(i64),
    ShiftBy(i64),
}

/// The form (and JSON body) of a reset.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResetForm {
    /// `earliest`, `latest`, `timestamp`, `offset` or `shift-by`.
    #[serde(default)]
    pub to: Option<String>,
    /// The time (ms), offset or shift.
    #[serde(default)]
    pub value: Option<String>,
    /// Empty: every topic the group committed on.
    #[serde(default)]
    pub topic: Option<String>,
    /// Empty: every partition of the topic.
    #[serde(default)]
    pub partition: Option<String>,
    /// `apply` commits; anything else is a dry run.
    #[serde(default)]
    pub action: Option<String>,
}

fn s(v: &Option<String>) -> &str {
    v.as_deref().map_or("", str::trim)
}

impl ResetForm {
    pub fn target(&self) -> Result<ResetTo, String> {
        let n = || {
            let v = s(&self.value);
            v.parse::<i64>()
                .map_err(|_| format!("bad value {v:?}: a number is needed"))
        };
        Ok(match s(&self.to) {
            "earliest" => ResetTo::Earliest,
            "latest" => ResetTo::Latest,
            "timestamp" => ResetTo::Timestamp(n()?),
            "offset" => ResetTo::Offset(n()?),
            "shift-by" => ResetTo::ShiftBy(n()?),
            other => {
                return Err(format!(
                    "bad target {other:?}: earliest, latest, timestamp, offset or shift-by"
                ))
            }
        })
    }

    pub fn apply(&self) -> bool {
        s(&self.action) == "apply"
    }

    fn partition(&self) -> Result<Option<i32>, String> {
        match s(&self.partition) {
            "" => Ok(None),
            p => p
                .parse()
                .map(Some)
                .map_err(|_| format!("bad partition {p:?}")),
        }
    }
}

/// One partition's move.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResetRow {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// `None`: the group has no committed offset here.
    pub current: Option<i64>,
    pub new: i64,
    pub lag_before: Option<i64>,
    pub lag_after: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResetPlan {
    pub group_id: String,
    /// The target in words ("latest", "shift-by -5").
    pub to: String,
    pub applied: bool,
    pub rows: Vec<ResetRow>,
    pub lag_before: i64,
    pub lag_after: i64,
    /// The form as given, for the "apply" button of a dry run.
    #[serde(skip)]
    pub form: ResetFormEcho,
}

/// The fields of the form, to send again with "apply".
#[derive(Debug, Clone, Default)]
pub struct ResetFormEcho {
    pub to: String,
    pub value: String,
    pub topic: String,
    pub partition: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("group {0:?} does not exist")]
    UnknownGroup(String),
    #[error(
        "group {group:?} has active members ({members}): offsets can only be reset while the \
         group is empty (stop its consumers first)"
    )]
    Active { group: String, members: usize },
    #[error("{0}")]
    BadRequest(String),
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("group {0:?} has no committed offsets to reset: name a topic")]
    NothingCommitted(String),
    #[error("finding the offset for a time in {topic}/{partition}: {source}")]
    Read {
        topic: String,
        partition: i32,
        #[source]
        source: weir_broker::partition::PartitionError,
    },
    #[error("the group coordinator refused the commit: {0}")]
    Commit(String),
}

impl ResetError {
    /// The requester's fault (4xx) rather than the broker's.
    pub fn status(&self) -> u16 {
        match self {
            ResetError::UnknownGroup(_)
            | ResetError::UnknownTopic(_)
            | ResetError::UnknownPartition { .. } => 404,
            ResetError::Active { .. } | ResetError::Commit(_) => 409,
            ResetError::BadRequest(_) | ResetError::NothingCommitted(_) => 400,
            ResetError::Read { .. } => 500,
        }
    }
}

/// The new offset of one partition: `at_time` is the first offset at or after the target
/// time (looked up only for [`ResetTo::Timestamp`]).
pub fn target_offset(
    to: ResetTo,
    current: Option<i64>,
    log_start: i64,
    high_watermark: i64,
    at_time: Option<i64>,
) -> i64 {
    let wanted = match to {
        ResetTo::Earliest => log_start,
        ResetTo::Latest => high_watermark,
        ResetTo::Timestamp(_) => at_time.unwrap_or(high_watermark),
        ResetTo::Offset(o) => o,
        // Without a committed offset, Kafka shifts from the position the consumer would
        // start at; the console takes the log start.
        ResetTo::ShiftBy(n) => current.unwrap_or(log_start).saturating_add(n),
    };
    wanted.min(high_watermark).max(log_start)
}

fn words(to: ResetTo) -> String {
    match to {
        ResetTo::Earliest => "earliest".to_string(),
        ResetTo::Latest => "latest".to_string(),
        ResetTo::Timestamp(t) => format!("timestamp {t}"),
        ResetTo::Offset(o) => format!("offset {o}"),
        ResetTo::ShiftBy(n) => format!("shift-by {n}"),
    }
}

/// Computes the reset of `group` (blocking: a timestamp target reads the time index).
pub fn plan(state: &State, group: &str, form: &ResetForm) -> Result<ResetPlan, ResetError> {
    let to = form.target().map_err(ResetError::BadRequest)?;
    let partition = form.partition().map_err(ResetError::BadRequest)?;
    if state.groups.group_type(group).is_none() {
        return Err(ResetError::UnknownGroup(group.to_string()));
    }
    let stats = state
        .groups
        .stats()
        .into_iter()
        .find(|g| g.group_id == group);
    let members = stats.as_ref().map_or(0, |g| g.members);
    if members > 0 {
        return Err(ResetError::Active {
            group: group.to_string(),
            members,
        });
    }
    let committed: BTreeMap<(String, i32), i64> = stats
        .map(|g| {
            g.offsets
                .into_iter()
                .map(|(tp, o)| ((tp.topic, tp.partition), o))
                .collect()
        })
        .unwrap_or_default();
    let topic = s(&form.topic);
    let topics: Vec<String> = if topic.is_empty() {
        let mut t: Vec<String> = committed.keys().map(|(t, _)| t.clone()).collect();
        t.dedup();
        if t.is_empty() {
            return Err(ResetError::NothingCommitted(group.to_string()));
        }
        t
    } else {
        vec![topic.to_string()]
    };
    let mut rows = Vec::new();
    for name in &topics {
        let t = state
            .topic(name)
            .ok_or_else(|| ResetError::UnknownTopic(name.clone()))?;
        let parts = match partition {
            Some(p) => vec![t.partition(p).ok_or(ResetError::UnknownPartition {
                topic: name.clone(),
                partition: p,
            })?],
            // With no topic named, the partitions the group committed on.
            None if topic.is_empty() => t
                .all_partitions()
                .into_iter()
                .filter(|p| committed.contains_key(&(name.clone(), p.index())))
                .collect(),
            None => t.all_partitions(),
        };
        for p in parts {
            let index = p.index();
            let start = p.log_start_offset();
            let hw = p.high_watermark();
            let current = committed.get(&(name.clone(), index)).copied();
            let at_time = match to {
                ResetTo::Timestamp(ts) => p
                    .offset_for_timestamp(ts)
                    .map_err(|source| ResetError::Read {
                        topic: name.clone(),
                        partition: index,
                        source,
                    })?
                    .map(|(o, _)| o),
                _ => None,
            };
            let new = target_offset(to, current, start, hw, at_time);
            rows.push(ResetRow {
                topic: name.clone(),
                partition: index,
                log_start_offset: start,
                high_watermark: hw,
                current,
                new,
                lag_before: current.map(|c| (hw - c).max(0)),
                lag_after: (hw - new).max(0),
            });
        }
    }
    Ok(ResetPlan {
        group_id: group.to_string(),
        to: words(to),
        applied: false,
        lag_before: rows.iter().filter_map(|r| r.lag_before).sum(),
        lag_after: rows.iter().map(|r| r.lag_after).sum(),
        rows,
        form: ResetFormEcho {
            to: s(&form.to).to_string(),
            value: s(&form.value).to_string(),
            topic: topic.to_string(),
            partition: s(&form.partition).to_string(),
        },
    })
}

/// Commits the plan's new offsets as an admin commit (no member, generation -1).
pub async fn apply(state: &State, plan: &mut ResetPlan) -> Result<(), ResetError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let codes = state
        .groups
        .commit(CommitRequest {
            group_id: plan.group_id.clone(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            offsets: plan
                .rows
                .iter()
                .map(|r| {
                    (
                        TopicPartition {
                            topic: r.topic.clone(),
                            partition: r.partition,
                        },
                        CommittedOffset {
                            offset: r.new,
                            leader_epoch: None,
                            metadata: None,
                            commit_timestamp_ms: now,
                        },
                    )
                })
                .collect(),
        })
        .await;
    let failed: Vec<String> = codes
        .iter()
        .filter(|(_, c)| *c != ErrorCode::NONE)
        .map(|(tp, c)| format!("{}/{}: {}", tp.topic, tp.partition, c.name()))
        .collect();
    if !failed.is_empty() {
        return Err(ResetError::Commit(failed.join(", ")));
    }
    tracing::info!(group = %plan.group_id, to = %plan.to, partitions = plan.rows.len(), "console reset offsets");
    plan.applied = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_clamped_into_the_log() {
        // log [10, 50), committed at 30
        let t = |to, at| target_offset(to, Some(30), 10, 50, at);
        assert_eq!(t(ResetTo::Earliest, None), 10);
        assert_eq!(t(ResetTo::Latest, None), 50);
        assert_eq!(t(ResetTo::Offset(42), None), 42);
        assert_eq!(t(ResetTo::Offset(5), None), 10);
        assert_eq!(t(ResetTo::Offset(99), None), 50);
        assert_eq!(t(ResetTo::ShiftBy(-5), None), 25);
        assert_eq!(t(ResetTo::ShiftBy(-100), None), 10);
        assert_eq!(t(ResetTo::ShiftBy(100), None), 50);
        assert_eq!(t(ResetTo::ShiftBy(i64::MAX), None), 50);
        assert_eq!(t(ResetTo::Timestamp(7), Some(33)), 33);
        // No record at or after the time: the log end, as Kafka's tool.
        assert_eq!(t(ResetTo::Timestamp(7), None), 50);
        // Nothing committed: shifting starts from the log start.
        assert_eq!(target_offset(ResetTo::ShiftBy(3), None, 10, 50, None), 13);
    }

    #[test]
    fn forms_name_their_target_or_say_what_is_wrong() {
        let f = |to: &str, value: &str| ResetForm {
            to: Some(to.into()),
            value: Some(value.into()),
            ..ResetForm::default()
        };
        assert_eq!(f("shift-by", "-3").target(), Ok(ResetTo::ShiftBy(-3)));
        assert_eq!(f("latest", "").target(), Ok(ResetTo::Latest));
        assert_eq!(
            f("timestamp", "1700").target(),
            Ok(ResetTo::Timestamp(1700))
        );
        assert!(f("offset", "x").target().is_err());
        assert!(f("middle", "").target().is_err());
        assert!(!f("latest", "").apply());
    }
}
