//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics; broker configs are
//! described (read-only: they are set at start-up).

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

use super::{msg, str};
use crate::config::BROKER_KEYS;
use crate::errors::admin_code;
use crate::state::State;
use crate::topic_config::{self, Source, TOPIC_KEYS};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// DescribeConfigs `config_type` codes.
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

pub fn describe(
    state: &Arc<State>,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
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
        match res.resource_type {
            TOPIC => match state.topic(&res.resource_name) {
                None => {
                    out.error_code = ResponseError::UnknownTopicOrPartition.code();
                    out.error_message =
                        msg(format!("topic '{}' does not exist", res.resource_name));
                }
                Some(topic) => {
                    let overrides = topic.configs();
                    for key in TOPIC_KEYS.iter().filter(|k| wanted(k.name)) {
                        let (value, source) =
                            topic_config::effective(key, &overrides, &state.config);
                        let mut e = entry(key.name, &value, source as i8, false, version);
                        if version >= 3 {
                            e.config_type = match key.name {
                                "cleanup.policy" => TYPE_LIST,
                                n if key.default.parse::<i64>().is_ok() && !n.contains("ratio") => {
                                    TYPE_LONG
                                }
                                _ => TYPE_STRING,
                            };
                        }
                        if req.include_synonyms {
                            e.synonyms = synonyms(state, key, &overrides);
                        }
                        out.configs.push(e);
                    }
                }
            },
            BROKER => {
                for (name, _) in BROKER_KEYS.iter().filter(|(k, _)| wanted(k)) {
                    let value = state.config.value_of(name).unwrap_or_default();
                    let source = if state.config.raw.contains_key(*name) {
                        Source::StaticBroker
                    } else {
                        Source::Default
                    };
                    out.configs
                        .push(entry(name, &value, source as i8, true, version));
                }
            }
            other => {
                out.error_code = ResponseError::InvalidRequest.code();
                out.error_message = msg(format!("resource type {other} is not supported"));
            }
        }
        r.results.push(out);
    }
    r
}

fn entry(
    name: &str,
    value: &str,
    source: i8,
    read_only: bool,
    _version: i16,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = str(name);
    e.value = Some(str(value));
    e.read_only = read_only;
    e.config_source = source;
    e.is_sensitive = false;
    e
}

fn synonyms(
    state: &State,
    key: &topic_config::TopicKey,
    overrides: &BTreeMap<String, String>,
) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: String, source: Source| {
        let mut s = DescribeConfigsSynonym::default();
        s.name = str(name);
        s.value = Some(str(&value));
        s.source = source as i8;
        out.push(s);
    };
    if let Some(v) = overrides.get(key.name) {
        push(key.name, v.clone(), Source::Topic);
    }
    if let Some(syn) = key.broker_synonym {
        if let Some(v) = state.config.raw.get(syn) {
            push(syn, v.clone(), Source::StaticBroker);
        }
    }
    push(
        key.broker_synonym.unwrap_or(key.name),
        key.default.to_string(),
        Source::Default,
    );
    out
}

/// The outcome for one resource of an alter request.
type Outcome = Result<(), (ResponseError, String)>;

fn not_dynamic(kind: i8) -> Outcome {
    if kind == BROKER {
        Err((
            ResponseError::InvalidRequest,
            "broker configs are set at start-up (config file, WEIR_* environment or --set); they cannot be altered at run time".into(),
        ))
    } else {
        Err((
            ResponseError::InvalidRequest,
            format!("resource type {kind} is not supported"),
        ))
    }
}

pub async fn alter(state: &Arc<State>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut r = AlterConfigsResponse::default();
    for res in req.resources {
        let outcome = if res.resource_type == TOPIC {
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
            topic_config::warn_deprecated(&res.resource_name, configs.keys());
            apply(state, &res.resource_name, configs, req.validate_only).await
        } else {
            not_dynamic(res.resource_type)
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

pub async fn incremental_alter(
    state: &Arc<State>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut r = IncrementalAlterConfigsResponse::default();
    for res in req.resources {
        let outcome = if res.resource_type == TOPIC {
            match state.topic(&res.resource_name) {
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic '{}' does not exist", res.resource_name),
                )),
                Some(topic) => {
                    let mut configs = topic.configs();
                    match res.configs.iter().try_for_each(|c| {
                        incremental_op(&mut configs, &c.name, c.config_operation, c.value.as_ref())
                    }) {
                        Ok(()) => {
                            let set: Vec<String> = res
                                .configs
                                .iter()
                                .filter(|c| c.config_operation != 1)
                                .map(|c| c.name.to_string())
                                .collect();
                            topic_config::warn_deprecated(&res.resource_name, &set);
                            apply(state, &res.resource_name, configs, req.validate_only).await
                        }
                        Err(e) => Err(e),
                    }
                }
            }
        } else {
            not_dynamic(res.resource_type)
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

/// Applies one IncrementalAlterConfigs operation: SET 0, DELETE 1, APPEND 2, SUBTRACT 3.
fn incremental_op(
    configs: &mut BTreeMap<String, String>,
    name: &StrBytes,
    op: i8,
    value: Option<&StrBytes>,
) -> Outcome {
    let name = name.to_string();
    let invalid = |m: String| (ResponseError::InvalidConfig, m);
    let key = topic_config::lookup(&name)
        .ok_or_else(|| invalid(format!("unknown topic config {name:?}")))?;
    let value = value.map(|v| v.to_string());
    match op {
        0 => {
            let v = value.ok_or_else(|| invalid(format!("SET {name} needs a value")))?;
            configs.insert(name, v);
        }
        1 => {
            configs.remove(&name);
        }
        2 | 3 if key.name == "cleanup.policy" => {
            let v =
                value.ok_or_else(|| invalid(format!("APPEND/SUBTRACT {name} needs a value")))?;
            let current = configs
                .get(&name)
                .cloned()
                .unwrap_or_else(|| key.default.to_string());
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
            configs.insert(name, items.join(","));
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
