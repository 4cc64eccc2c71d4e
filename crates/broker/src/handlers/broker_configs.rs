//! DescribeConfigs and (Incremental)AlterConfigs on the BROKER resource: the name "" is the
//! cluster-wide dynamic default, this node's id is this broker.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_protocol::kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use weir_protocol::ResponseError;

use super::configs::{entry, synonym, Detail, Outcome};
use crate::broker_keys::{self, Mode, BROKER_KEYS};
use crate::dynamic_config::{self, AlterError, ConfigSource, Level};
use crate::state::State;

fn code(e: AlterError) -> (ResponseError, String) {
    let code = match &e {
        AlterError::InvalidRequest(_) => ResponseError::InvalidRequest,
        AlterError::InvalidConfig(_) => ResponseError::InvalidConfig,
        AlterError::Meta(_) => ResponseError::KafkaStorageError,
    };
    (code, e.to_string())
}

pub fn describe(
    state: &State,
    name: &str,
    wanted: &dyn Fn(&str) -> bool,
    detail: Detail,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let configs = &state.broker_configs;
    match configs.level(name).map_err(code)? {
        // The default resource shows what is set on it, as Kafka does.
        Level::ClusterDefault => Ok(configs
            .layer(Level::ClusterDefault)
            .into_iter()
            .filter(|(k, _)| wanted(k))
            .filter_map(|(k, v)| {
                let key = broker_keys::lookup(&k)?;
                let mut e = entry(
                    &k,
                    Some(&v).filter(|_| !key.is_sensitive()).map(String::as_str),
                    ConfigSource::DynamicDefaultBroker,
                    key.ty,
                    &key.documentation(),
                    detail,
                );
                e.is_sensitive = key.is_sensitive();
                if detail.synonyms {
                    e.synonyms = vec![synonym(
                        &k,
                        e.value.as_ref().map(|v| v.as_str()),
                        ConfigSource::DynamicDefaultBroker,
                    )];
                }
                Some(e)
            })
            .collect()),
        Level::Broker => Ok(BROKER_KEYS
            .iter()
            .filter(|k| wanted(k.name))
            .map(|key| {
                let (value, source, synonyms) = configs.describe(key.name);
                let hide = key.is_sensitive();
                let mut e = entry(
                    key.name,
                    value.as_deref().filter(|_| !hide),
                    source,
                    key.ty,
                    &key.documentation(),
                    detail,
                );
                e.read_only = key.mode == Mode::ReadOnly;
                e.is_sensitive = hide;
                if detail.synonyms {
                    e.synonyms = synonyms
                        .iter()
                        .map(|(n, v, s)| synonym(n, v.as_deref().filter(|_| !hide), *s))
                        .collect();
                }
                e
            })
            .collect()),
    }
}

/// Alters the dynamic configs of the resource `name`: `change` turns its current dynamic
/// configs into the new ones (a legacy AlterConfigs replaces them all; an incremental one
/// applies its operations). Applied to every log at once when it succeeds.
pub async fn alter(
    state: &Arc<State>,
    name: &str,
    change: impl FnOnce(
        BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, (ResponseError, String)>,
    validate_only: bool,
) -> Outcome {
    let configs = &state.broker_configs;
    let level = configs.level(name).map_err(code)?;
    let before = configs.layer(level);
    let after = change(before.clone())?;
    let changed = configs
        .replace(level, after.clone(), validate_only)
        .await
        .map_err(code)?;
    if changed {
        for (k, v) in &after {
            if before.get(k) != Some(v) {
                tracing::info!(level = ?level, key = %k, value = %v, "dynamic broker config set");
            }
        }
        for k in before.keys().filter(|k| !after.contains_key(*k)) {
            tracing::info!(level = ?level, key = %k, "dynamic broker config deleted");
        }
        dynamic_config::apply_to_logs(state);
    }
    Ok(())
}
