//! Topic admin on [`State`]: create, delete, grow and reconfigure. In cluster mode each goes
//! through the quorum (`cluster/topics.rs`); on a single node it is serialized by
//! `State::admin` and persisted to the metadata store before it becomes visible, and a
//! failed write leaves the table as it was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use uuid::Uuid;
use weir_storage::Log;

use super::{
    check_partitions_per_request, partition_dir, validate_topic_name, AdminError, Partition, State,
    Topic,
};
use crate::meta::MetaError;
use crate::topic_config;

/// How long a topic created through the quorum may take to appear in this broker's image.
const CREATED_VISIBLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
impl State {
    fn persist(&self) -> Result<(), MetaError> {
        let records = self.topics().iter().map(|t| t.record()).collect();
        self.metadata.save_topics(records)
    }

    /// Checks a create request without changing anything.
    pub fn check_create(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(i32, i16), AdminError> {
        validate_topic_name(name)?;
        if self.topic(name).is_some() {
            return Err(AdminError::TopicExists(name.to_string()));
        }
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(AdminError::InvalidPartitions(partitions));
        }
        check_partitions_per_request(i64::from(partitions))?;
        let replication = if replication == -1 {
            self.config.default_replication_factor
        } else {
            replication
        };
        if replication != 1 {
            return Err(AdminError::InvalidReplicationFactor(replication));
        }
        for (k, v) in configs {
            topic_config::validate(k, v)?;
        }
        Ok((partitions, replication))
    }

    /// Creates a topic; `partitions` and `replication` of -1 take the broker defaults.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, AdminError> {
        if self.cluster {
            self.cluster_create_topic(name, partitions, replication, None, configs, false)
                .await?;
            // The quorum has the topic; this broker's image (and its replica, if it holds
            // one) follows when the record is applied here. Callers use the topic next (the
            // SQL engine reads and appends right away): wait for it, bounded.
            let deadline = std::time::Instant::now() + CREATED_VISIBLE_WAIT;
            while self.topic(name).is_none()
                && self.image.image().topic_by_name(name).is_none()
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            return self
                .topic(name)
                .ok_or_else(|| AdminError::UnknownTopic(name.to_string()));
        }
        let _admin = self.admin.lock().await;
        let (partitions, _) = self.check_create(name, partitions, replication, &configs)?;
        let log_config = topic_config::log_config(&configs, &self.broker_configs.effective());
        let parts = self.create_logs(name, 0..partitions, log_config).await?;
        let topic = Arc::new(Topic {
            metrics: self.metrics.topic(name),
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: RwLock::new(parts.into_iter().map(Some).collect()),
            configs: RwLock::new(configs),
        });
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), topic.clone());
        if let Err(e) = self.persist() {
            self.topics
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Err(e.into());
        }
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// Creates the logs of partitions `range` of topic `name` on the blocking pool: thousands
    /// of directories and files would otherwise stall a runtime thread.
    async fn create_logs(
        &self,
        name: &str,
        range: std::ops::Range<i32>,
        log_config: weir_storage::LogConfig,
    ) -> Result<Vec<Arc<Partition>>, AdminError> {
        let dirs: Vec<(i32, PathBuf)> = range
            .map(|p| (p, partition_dir(&self.config, name, p)))
            .collect();
        tokio::task::spawn_blocking(move || {
            let mut parts = Vec::with_capacity(dirs.len());
            for (p, dir) in dirs {
                if dir.exists() {
                    // Left behind by a crash between deleting a topic and removing its files.
                    std::fs::remove_dir_all(&dir).map_err(|source| MetaError::Io {
                        op: "remove stale partition dir",
                        path: dir.clone(),
                        source,
                    })?;
                }
                parts.push(Arc::new(Partition::leader(
                    p,
                    Log::create(dir, log_config.clone())?,
                )));
            }
            Ok(parts)
        })
        .await
        .map_err(AdminError::Task)?
    }

    /// Deletes a topic: persisted first, then its files are removed.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, AdminError> {
        if self.cluster {
            return self.cluster_delete_topic(name).await;
        }
        let _admin = self.admin.lock().await;
        let topic = self
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
        let records = self.topics().iter().map(|t| t.record()).collect();
        if let Err(e) = self.metadata.save_topics_to_free_space(records) {
            self.topics
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_string(), topic);
            return Err(e.into());
        }
        // Fetches parked on the topic answer UNKNOWN_TOPIC_OR_PARTITION now, and appends
        // that looked the partition up before the delete fail instead of writing to files
        // about to be removed.
        let parts = topic.all_partitions();
        for p in &parts {
            p.mark_deleted();
        }
        let dirs: Vec<PathBuf> = parts.iter().map(|p| p.dir().to_path_buf()).collect();
        tokio::task::spawn_blocking(move || {
            for dir in dirs {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not remove deleted partition; it will be removed at next start");
                }
            }
        })
        .await
        .ok();
        // If the deletion used up the reserved space, set it aside again now there is room.
        self.store.ensure_reserve();
        self.groups.topic_deleted(name);
        self.metrics.topic_deleted(name);
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// Grows a topic to `total` partitions. `assigned` is the number of partitions a manual
    /// replica assignment lists, which must be exactly the number being added.
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assigned: Option<usize>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let _admin = self.admin.lock().await;
        let topic = self
            .topic(name)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
        let current = topic.partition_count();
        if total <= current {
            return Err(AdminError::CannotShrink {
                topic: name.to_string(),
                current,
                requested: total,
            });
        }
        if let Some(assigned) = assigned {
            let adding = total - current;
            if usize::try_from(adding).ok() != Some(assigned) {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "increasing topic '{name}' from {current} to {total} partitions adds {adding}, \
                     but the replica assignment lists {assigned}"
                )));
            }
        }
        check_partitions_per_request(i64::from(total) - i64::from(current))?;
        if validate_only {
            return Ok(());
        }
        let log_config =
            topic_config::log_config(&topic.configs(), &self.broker_configs.effective());
        let new = self.create_logs(name, current..total, log_config).await?;
        topic
            .partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(new.into_iter().map(Some));
        if let Err(e) = self.persist() {
            topic
                .partitions
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .truncate(current as usize);
            return Err(e.into());
        }
        tracing::info!(topic = name, from = current, to = total, "grew topic");
        Ok(())
    }

    /// Replaces a topic's overrides (after validation) and applies them to its logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        if self.cluster {
            return self
                .cluster_set_topic_configs(name, configs, validate_only)
                .await;
        }
        let _admin = self.admin.lock().await;
        let topic = self
            .topic(name)
            .ok_or_else(|| AdminError::UnknownTopic(name.to_string()))?;
        for (k, v) in &configs {
            topic_config::validate(k, v)?;
        }
        if validate_only {
            return Ok(());
        }
        let old = std::mem::replace(
            &mut *topic.configs.write().unwrap_or_else(|e| e.into_inner()),
            configs,
        );
        if let Err(e) = self.persist() {
            *topic.configs.write().unwrap_or_else(|e| e.into_inner()) = old;
            return Err(e.into());
        }
        let log_config =
            topic_config::log_config(&topic.configs(), &self.broker_configs.effective());
        for p in topic.all_partitions() {
            p.set_config(log_config.clone());
        }
        Ok(())
    }
}
