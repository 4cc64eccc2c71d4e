//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs: topics here, the broker resource
//! in `broker_configs.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use weir_protocol::kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use weir_protocol::kafka_protocol::protocol::StrBytes;
use weir_protocol::ResponseError;

use super::broker_configs;
use super::{msg, str};
use crate::broker_keys::ConfigType;
use crate::dynamic_config::{ConfigSource, Synonyms};
use crate::errors::admin_code;
use crate::state::State;
use crate::topic_config::{self, TOPIC_KEYS};

pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;

/// What a DescribeConfigs request asks to be included in each entry.
#[derive(Debug, Clone, Copy)]
pub struct Detail {
    pub version: i16,
    pub synonyms: bool,
    pub documentation: bool,
}

pub fn describe(
    state: &Arc<State>,
    req: DescribeConfigsRequest,
    version: i16,
    conn: &super::Conn,
) -> DescribeConfigsResponse {
    let detail = Detail {
        version,
        synonyms: req.include_synonyms,
        documentation: req.include_documentation,
    };
    let mut r = DescribeConfigsResponse::default();
    for res in req.resources {
        let mut out = DescribeConfigsResult::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name.clone();
        // Null asks for every key; so does an empty list (asking for none would be pointless,
        // and some clients send [] meaning "all").
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .filter(|keys| !keys.is_empty())
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let described = match refused(state, conn, res.resource_type, &res.resource_name, false) {
            Some(e) => Err(e),
            None => match res.resource_type {
                TOPIC => describe_topic(state, &res.resource_name, &wanted, detail),
                BROKER => broker_configs::describe(state, &res.resource_name, &wanted, detail),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            },
        };
        match described {
            Ok(configs) => out.configs = configs,
            Err((code, message)) => {
                out.error_code = code.code();
                out.error_message = msg(message);
            }
        }
        r.results.push(out);
    }
    r
}

fn describe_topic(
    state: &State,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let topic = state.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let overrides = topic.configs();
    Ok(TOPIC_KEYS
        .iter()
        .filter(|k| wanted(k.name))
        .map(|key| {
            let (value, source, synonyms) = topic_effective(state, key, &overrides);
            let doc = key
                .broker_synonym
                .map(|s| format!("Topic config; the broker default is {s}."))
                .unwrap_or_else(|| "Topic config.".to_string());
            let mut e = entry(
                key.name,
                Some(&value),
                source,
                topic_config::config_type(key),
                &doc,
                detail,
            );
            if detail.synonyms {
                e.synonyms = synonyms
                    .into_iter()
                    .map(|(n, v, s)| synonym(&n, v.as_deref(), s))
                    .collect();
            }
            e
        })
        .collect())
}

/// A topic key's effective value and source (its override, else its broker synonym's
/// value in the highest layer that sets it, else the default), and the synonyms behind it.
pub fn topic_effective(
    state: &State,
    key: &topic_config::TopicKey,
    overrides: &BTreeMap<String, String>,
) -> (String, ConfigSource, Synonyms) {
    let (value, source, mut synonyms) = state.broker_configs.topic_default(key);
    match overrides.get(key.name) {
        Some(v) => {
            synonyms.insert(
                0,
                (key.name.to_string(), Some(v.clone()), ConfigSource::Topic),
            );
            (v.clone(), ConfigSource::Topic, synonyms)
        }
        None => (value, source, synonyms),
    }
}

/// One DescribeConfigs entry: type and documentation only from v3, as Kafka.
pub fn entry(
    name: &str,
    value: Option<&str>,
    source: ConfigSource,
    ty: ConfigType,
    doc: &str,
    detail: Detail,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = str(name);
    e.value = value.map(str);
    e.read_only = false;
    e.config_source = source as i8;
    e.is_sensitive = false;
    if detail.version >= 3 {
        e.config_type = ty as i8;
        if detail.documentation {
            e.documentation = Some(str(doc));
        }
    }
    e
}

pub fn synonym(name: &str, value: Option<&str>, source: ConfigSource) -> DescribeConfigsSynonym {
    let mut s = DescribeConfigsSynonym::default();
    s.name = str(name);
    s.value = value.map(str);
    s.source = source as i8;
    s
}

/// The outcome for one resource of an alter request.
pub type Outcome = Result<(), (ResponseError, String)>;

/// Kafka: DESCRIBE_CONFIGS (or ALTER_CONFIGS) on the topic, or on the cluster for a broker.
fn refused(
    state: &State,
    conn: &super::Conn,
    resource_type: i8,
    name: &str,
    alter: bool,
) -> Option<(ResponseError, String)> {
    use crate::security::{Operation, Resource};
    let op = if alter {
        Operation::AlterConfigs
    } else {
        Operation::DescribeConfigs
    };
    let (resource, error) = match resource_type {
        TOPIC => (
            Resource::Topic(name),
            ResponseError::TopicAuthorizationFailed,
        ),
        BROKER => (Resource::Cluster, ResponseError::ClusterAuthorizationFailed),
        _ => return None,
    };
    (!conn.may(state, op, resource)).then(|| (error, "Authorization failed.".to_string()))
}

pub async fn alter(
    state: &Arc<State>,
    req: AlterConfigsRequest,
    conn: &super::Conn,
) -> AlterConfigsResponse {
    let mut r = AlterConfigsResponse::default();
    for res in req.resources {
        // Legacy AlterConfigs replaces the whole set of overrides.
        let configs = res
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect::<BTreeMap<_, _>>();
        let denied = refused(state, conn, res.resource_type, &res.resource_name, true);
        let outcome = match (denied, res.resource_type) {
            (Some(e), _) => Err(e),
            (None, TOPIC) => {
                topic_config::warn_deprecated(&res.resource_name, configs.keys());
                apply(state, &res.resource_name, configs, req.validate_only).await
            }
            (None, BROKER) => {
                broker_configs::alter(
                    state,
                    &res.resource_name,
                    |_| Ok(configs),
                    req.validate_only,
                )
                .await
            }
            (None, other) => unsupported(other),
        };
        let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        if let Err((code, message)) = outcome {
            out.error_code = code.code();
            out.error_message = msg(message);
        }
        r.responses.push(out);
    }
    r
}

fn unsupported(kind: i8) -> Outcome {
    Err((
        ResponseError::InvalidRequest,
        format!("resource type {kind} is not supported"),
    ))
}

pub async fn incremental_alter(
    state: &Arc<State>,
    req: IncrementalAlterConfigsRequest,
    conn: &super::Conn,
) -> IncrementalAlterConfigsResponse {
    let mut r = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let ops: Vec<(String, i8, Option<String>)> = res
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.config_operation,
                    c.value.as_ref().map(StrBytes::to_string),
                )
            })
            .collect();
        let denied = refused(state, conn, res.resource_type, &res.resource_name, true);
        let outcome = match (denied, res.resource_type) {
            (Some(e), _) => Err(e),
            (None, TOPIC) => {
                incremental_topic(state, &res.resource_name, &ops, req.validate_only).await
            }
            (None, BROKER) => {
                broker_configs::alter(
                    state,
                    &res.resource_name,
                    |mut layer| {
                        for (name, op, value) in &ops {
                            let list = crate::broker_keys::lookup(name)
                                .is_some_and(|k| k.ty == ConfigType::List);
                            let current = if list {
                                state.broker_configs.describe(name).0.unwrap_or_default()
                            } else {
                                String::new()
                            };
                            incremental_op(
                                &mut layer,
                                name,
                                *op,
                                value.as_deref(),
                                list,
                                &current,
                            )?;
                        }
                        Ok(layer)
                    },
                    req.validate_only,
                )
                .await
            }
            (None, other) => unsupported(other),
        };
        let mut out = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        if let Err((code, message)) = outcome {
            out.error_code = code.code();
            out.error_message = msg(message);
        }
        r.responses.push(out);
    }
    r
}

pub(super) async fn incremental_topic(
    state: &Arc<State>,
    name: &str,
    ops: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> Outcome {
    let topic = state.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic '{name}' does not exist"),
        )
    })?;
    let mut configs = topic.configs();
    for (key, op, value) in ops {
        let k = topic_config::lookup(key).ok_or_else(|| {
            (
                ResponseError::InvalidConfig,
                format!("unknown topic config {key:?}"),
            )
        })?;
        let list = k.name == "cleanup.policy";
        incremental_op(&mut configs, key, *op, value.as_deref(), list, k.default)?;
    }
    let set: Vec<String> = ops
        .iter()
        .filter(|(_, op, _)| *op != 1)
        .map(|(k, _, _)| k.clone())
        .collect();
    topic_config::warn_deprecated(name, &set);
    apply(state, name, configs, validate_only).await
}

/// Applies one IncrementalAlterConfigs operation: SET 0, DELETE 1, APPEND 2, SUBTRACT 3.
/// APPEND and SUBTRACT apply to lists only; `default` is the list's value when unset.
pub fn incremental_op(
    configs: &mut BTreeMap<String, String>,
    name: &str,
    op: i8,
    value: Option<&str>,
    list: bool,
    default: &str,
) -> Outcome {
    let invalid = |m: String| (ResponseError::InvalidConfig, m);
    match op {
        0 => {
            let v = value.ok_or_else(|| invalid(format!("SET {name} needs a value")))?;
            configs.insert(name.to_string(), v.to_string());
        }
        1 => {
            configs.remove(name);
        }
        2 | 3 if list => {
            let v =
                value.ok_or_else(|| invalid(format!("APPEND/SUBTRACT {name} needs a value")))?;
            let current = configs
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.to_string());
            let mut items: Vec<String> = current
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if op == 2 {
                    if !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    }
                } else {
                    items.retain(|i| i != item);
                }
            }
            configs.insert(name.to_string(), items.join(","));
        }
        2 | 3 => {
            return Err(invalid(format!(
                "{name} is not a list; APPEND and SUBTRACT apply to lists"
            )))
        }
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("unknown config operation {other}"),
            ))
        }
    }
    Ok(())
}

async fn apply(
    state: &Arc<State>,
    topic: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Outcome {
    state
        .set_topic_configs(topic, configs, validate_only)
        .await
        .map_err(|e| (admin_code(&e), e.to_string()))
}
