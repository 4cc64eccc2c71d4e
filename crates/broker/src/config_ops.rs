//! IncrementalAlterConfigs on a topic as a typed call, for the writers that are not Kafka
//! clients (the HTTP console). It runs the handler's own function (`handlers::configs`), so
//! the keys, values and errors accepted are exactly those a Kafka admin client meets.

use std::fmt;
use std::sync::Arc;

use weir_protocol::ResponseError;

use crate::state::State;

/// One operation on one key, as IncrementalAlterConfigs' `config_operation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    /// Back to the default (the override is removed).
    Delete,
    /// Lists only (`cleanup.policy`).
    Append(String),
    Subtract(String),
}

impl ConfigOp {
    /// Kafka's operation code and value.
    fn wire(&self) -> (i8, Option<String>) {
        match self {
            ConfigOp::Set(v) => (0, Some(v.clone())),
            ConfigOp::Delete => (1, None),
            ConfigOp::Append(v) => (2, Some(v.clone())),
            ConfigOp::Subtract(v) => (3, Some(v.clone())),
        }
    }
}

impl fmt::Display for ConfigOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOp::Set(v) => write!(f, "set {v:?}"),
            ConfigOp::Delete => write!(f, "delete"),
            ConfigOp::Append(v) => write!(f, "append {v:?}"),
            ConfigOp::Subtract(v) => write!(f, "subtract {v:?}"),
        }
    }
}

/// Whose fault a refused alteration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterTopicErrorKind {
    UnknownTopic,
    /// A key or value the broker does not take (the requester's fault).
    InvalidConfig,
    /// The broker could not apply it (storage, quorum).
    Broker,
}

/// Why the alteration was refused: Kafka's error name and the message its client would show.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} ({error})")]
pub struct AlterTopicError {
    pub kind: AlterTopicErrorKind,
    /// Kafka's error name (`INVALID_CONFIG`, ...).
    pub error: String,
    pub message: String,
}

impl AlterTopicError {
    /// A request that makes no alteration at all (the caller's own check).
    pub fn invalid(message: String) -> AlterTopicError {
        AlterTopicError {
            kind: AlterTopicErrorKind::InvalidConfig,
            error: "INVALID_REQUEST".to_string(),
            message,
        }
    }
}

/// Applies `ops` to `topic`'s overrides (or only validates them).
pub async fn incremental_alter_topic(
    state: &Arc<State>,
    topic: &str,
    ops: &[(String, ConfigOp)],
    validate_only: bool,
) -> Result<(), AlterTopicError> {
    let wire: Vec<(String, i8, Option<String>)> = ops
        .iter()
        .map(|(k, op)| {
            let (code, value) = op.wire();
            (k.clone(), code, value)
        })
        .collect();
    crate::handlers::incremental_alter_topic(state, topic, &wire, validate_only)
        .await
        .map_err(|(code, message)| AlterTopicError {
            kind: match code {
                ResponseError::UnknownTopicOrPartition => AlterTopicErrorKind::UnknownTopic,
                ResponseError::InvalidConfig
                | ResponseError::InvalidRequest
                | ResponseError::PolicyViolation => AlterTopicErrorKind::InvalidConfig,
                _ => AlterTopicErrorKind::Broker,
            },
            error: crate::metrics::kafka_error_name(code),
            message,
        })
}
