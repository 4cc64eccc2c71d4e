//! DescribeConfigs and IncrementalAlterConfigs for any resource: topics (`weir topic`) and
//! brokers (`weir cluster config`).

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};

use super::{missing, text, Client, ConfigEntry, ConfigSource};
use crate::error::ClientError;

/// `config_operation` values of IncrementalAlterConfigs.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

impl Client {
    /// Every configuration entry of a resource (`resource_type` 2 a topic, 4 a broker).
    pub async fn describe_resource_configs(
        &mut self,
        resource_type: i8,
        resource: &str,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let api = ApiKey::DescribeConfigs;
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(resource))
                .with_configuration_keys(None),
        ]);
        let resp = self.admin().await?.send(req).await?;
        let result = resp
            .results
            .into_iter()
            .find(|r| r.resource_name.as_str() == resource)
            .ok_or_else(|| missing(api, resource))?;
        ClientError::check(api, result.error_code, result.error_message.as_deref())?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect())
    }

    /// Sets the `set` entries and removes the `delete` entries of a resource's configuration,
    /// leaving all others as they are.
    pub async fn alter_resource_configs(
        &mut self,
        resource_type: i8,
        resource: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<(), ClientError> {
        let api = ApiKey::IncrementalAlterConfigs;
        let configs = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(OP_SET)
                    .with_value(Some(text(v)))
            })
            .chain(delete.iter().map(|k| {
                AlterableConfig::default()
                    .with_name(text(k))
                    .with_config_operation(OP_DELETE)
                    .with_value(None)
            }))
            .collect();
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(resource))
                .with_configs(configs),
        ]);
        let resp = self.admin().await?.send(req).await?;
        let result = resp
            .responses
            .iter()
            .find(|r| r.resource_name.as_str() == resource)
            .ok_or_else(|| missing(api, resource))?;
        ClientError::check(api, result.error_code, result.error_message.as_deref())
    }
}
