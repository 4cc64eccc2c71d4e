//! The active controller's decisions: requests and timer ticks in, records and replies
//! out. [`ControllerLogic`] holds only soft state (broker session deadlines); the image
//! it decides on is passed in, and what it decides exists only once its records are
//! committed and applied to that image by the caller.

mod balance;
mod brokers;
mod elr;
mod partitions;
mod placement;
mod reassign;
pub mod requests;
mod topics;

use std::collections::BTreeMap;

use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::records::{BrokerId, MetadataRecord, ELR_FEATURE};
use requests::{ControllerReply, ControllerRequest};

/// The controller's static configuration (Kafka's key names and defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// `broker.session.timeout.ms`: a broker without heartbeat for this long is fenced.
    pub session_timeout_ms: u64,
    /// `num.partitions`: CreateTopics' default.
    pub default_num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `unclean.leader.election.enable` when neither the topic nor the cluster default
    /// sets it.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`: move leadership back to preferred replicas.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`, in ms: how often balance is checked.
    pub leader_imbalance_check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage`: a broker's partitions are given back
    /// their preferred leader once more than this share of those it is preferred for is
    /// led elsewhere.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `min.insync.replicas` of topics without their own (the brokers' static default):
    /// the ELR rules (KIP-966) follow the same number the leaders apply.
    pub min_insync_replicas: i32,
    /// Whether the first controller of a cluster that lacks it turns on
    /// `eligible.leader.replicas.version` (KIP-966 part 1).
    pub eligible_leader_replicas: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 9_000,
            default_num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            leader_imbalance_per_broker_percentage: 10,
            min_insync_replicas: 1,
            eligible_leader_replicas: true,
        }
    }
}

/// The size of a producer-id block (KIP-730).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1_000;

/// Records decided by one request, applied as they are decided to a private copy of the
/// image, so later decisions of the same request see earlier ones (a topic created twice
/// in one request, the leader elected after a fence).
pub(crate) struct Pending {
    pub(crate) image: MetadataImage,
    pub(crate) records: Vec<MetadataRecord>,
    /// `min.insync.replicas` of topics without their own (for the ELR rules).
    pub(crate) min_isr_default: i32,
    failed: Option<MetadataError>,
}

impl Pending {
    fn new(image: &MetadataImage, config: &ControllerConfig) -> Self {
        Self {
            image: image.clone(),
            records: Vec::new(),
            min_isr_default: config.min_insync_replicas,
            failed: None,
        }
    }

    /// Applies `record` to the pending image and keeps it. A partition change gets its ELR
    /// fields here ([`elr::complete`]), whichever rule made it.
    pub(crate) fn push(&mut self, record: MetadataRecord) {
        if self.failed.is_some() {
            return;
        }
        let record = match record {
            MetadataRecord::PartitionChange(c) => {
                MetadataRecord::PartitionChange(elr::complete(&self.image, self.min_isr_default, c))
            }
            other => other,
        };
        match self.image.apply(&record) {
            Ok(_) => self.records.push(record),
            Err(e) => self.failed = Some(e.into()),
        }
    }

    /// The records, or the error if the controller contradicted its own image (then
    /// nothing of the request may be committed).
    fn finish(self) -> Result<Vec<MetadataRecord>, MetadataError> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.records),
        }
    }
}

/// The active controller's decision logic. A new active controller starts with a fresh
/// one: every registered broker gets a full session from the first [`tick`].
///
/// [`tick`]: ControllerLogic::tick
#[derive(Debug)]
pub struct ControllerLogic {
    config: ControllerConfig,
    /// Session deadline (ms) of each broker the controller heard from or inherited.
    sessions: BTreeMap<BrokerId, u64>,
    /// When this controller last heard from each broker (a registration or heartbeat it
    /// decided). A session it only inherited has no entry: nothing proves that process
    /// still runs.
    heard: BTreeMap<BrokerId, u64>,
    /// When preferred-leader balancing is next checked (set at the first tick).
    next_balance_ms: Option<u64>,
}

impl ControllerLogic {
    pub fn new(config: ControllerConfig) -> Self {
        Self {
            config,
            sessions: BTreeMap::new(),
            heard: BTreeMap::new(),
            next_balance_ms: None,
        }
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The records a cluster starts with, written by an active controller that finds them
    /// missing: the cluster id (a new cluster), and `eligible.leader.replicas.version` 1
    /// when configured (new clusters, and older ones at their next controller election).
    pub fn bootstrap(&self, image: &MetadataImage, cluster_id: &str) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if image.cluster_id().is_none() {
            records.push(MetadataRecord::ClusterId {
                cluster_id: cluster_id.to_string(),
            });
        }
        if self.config.eligible_leader_replicas && image.feature_level(ELR_FEATURE) < 1 {
            records.push(MetadataRecord::FeatureLevel {
                name: ELR_FEATURE.to_string(),
                level: 1,
            });
        }
        records
    }

    /// Decides one request against `image` at time `now_ms`. The records must be committed
    /// as one entry (all or nothing) before the reply is sent.
    pub fn handle(
        &mut self,
        image: &MetadataImage,
        request: ControllerRequest,
        now_ms: u64,
    ) -> (Vec<MetadataRecord>, ControllerReply) {
        let mut pending = Pending::new(image, &self.config);
        let reply = match request {
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => ControllerReply::CreateTopics(topics::create_topics(
                &mut pending,
                &self.config,
                &topics,
                validate_only,
            )),
            ControllerRequest::DeleteTopics { names } => {
                ControllerReply::DeleteTopics(topics::delete_topics(&mut pending, &names))
            }
            ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            } => ControllerReply::CreatePartitions(topics::create_partitions(
                &mut pending,
                &topics,
                validate_only,
            )),
            ControllerRequest::AlterConfigs {
                resources,
                validate_only,
            } => ControllerReply::AlterConfigs(topics::alter_configs(
                &mut pending,
                &resources,
                validate_only,
            )),
            ControllerRequest::RegisterBroker(req) => {
                ControllerReply::RegisterBroker(self.register(&mut pending, &req, now_ms))
            }
            ControllerRequest::BrokerHeartbeat(hb) => {
                ControllerReply::BrokerHeartbeat(self.heartbeat(&mut pending, &hb, now_ms))
            }
            ControllerRequest::UnregisterBroker { id } => {
                ControllerReply::UnregisterBroker(self.unregister(&mut pending, id))
            }
            ControllerRequest::AlterPartition {
                broker_id,
                broker_epoch,
                partitions,
            } => ControllerReply::AlterPartition(
                brokers::check_epoch(image, broker_id, broker_epoch).map(|()| {
                    partitions
                        .iter()
                        .map(|item| {
                            let result = partitions::alter_partition(&mut pending, broker_id, item);
                            (item.topic_id, item.partition, result)
                        })
                        .collect()
                }),
            ),
            ControllerRequest::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => ControllerReply::AllocateProducerIds(brokers::allocate_producer_ids(
                &mut pending,
                broker_id,
                broker_epoch,
            )),
            ControllerRequest::CreateAcls { acls } => {
                for acl in acls {
                    if !pending.image.acls().contains(&acl) {
                        pending.push(MetadataRecord::AccessControlEntry(acl));
                    }
                }
                ControllerReply::CreateAcls(Ok(()))
            }
            ControllerRequest::DeleteAcls { acls } => {
                let mut removed = Vec::new();
                for acl in acls {
                    if pending.image.acls().contains(&acl) {
                        pending.push(MetadataRecord::RemoveAccessControlEntry(acl.clone()));
                        removed.push(acl);
                    }
                }
                ControllerReply::DeleteAcls(Ok(removed))
            }
            ControllerRequest::ElectLeaders {
                election_type,
                partitions,
            } => ControllerReply::ElectLeaders(topics::elect_leaders(
                &mut pending,
                election_type,
                partitions,
            )),
            ControllerRequest::AlterPartitionReassignments { partitions } => {
                ControllerReply::AlterPartitionReassignments(
                    partitions
                        .into_iter()
                        .map(|r| {
                            let result = reassign::alter(&mut pending, &r);
                            (r.topic, r.partition, result)
                        })
                        .collect(),
                )
            }
        };
        match pending.finish() {
            Ok(records) => (records, reply),
            Err(e) => (Vec::new(), reply_with_error(reply, e)),
        }
    }

    /// Fences brokers whose session expired at `now_ms`, moving their leaderships and
    /// taking them out of every ISR, in the same records; then, every
    /// `leader.imbalance.check.interval.seconds`, gives partitions back their preferred
    /// leaders (`auto.leader.rebalance.enable`).
    pub fn tick(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<MetadataRecord> {
        let mut pending = Pending::new(image, &self.config);
        self.expire_sessions(&mut pending, now_ms);
        self.balance_leaders(&mut pending, now_ms);
        pending.finish().unwrap_or_default()
    }

    /// Evidence that broker `id`'s process is gone: its internal listener has refused
    /// connections since `since_ms` (nothing listens on its address; a live broker binds it
    /// before it registers). Unless this controller heard from the broker after that, its
    /// session ends at `since_ms`, so the next [`tick`] fences it instead of waiting out
    /// `broker.session.timeout.ms`. Applies to inherited sessions too (this is how a new
    /// controller learns at once that the previous one died with its broker). A broker that
    /// is slow, paused or cut off still accepts connections (or times out) and keeps its
    /// whole session.
    ///
    /// [`tick`]: ControllerLogic::tick
    pub fn unreachable(&mut self, image: &MetadataImage, id: BrokerId, since_ms: u64) {
        let live = image.broker(id).is_some_and(|b| !b.fenced);
        if !live || self.heard.get(&id).is_some_and(|h| *h >= since_ms) {
            return;
        }
        let deadline = self.sessions.entry(id).or_insert(since_ms);
        *deadline = (*deadline).min(since_ms);
    }

    /// When [`ControllerLogic::tick`] next has something to do (`None`: no live session).
    pub fn next_deadline(&self) -> Option<u64> {
        self.sessions.values().min().copied()
    }
}

/// The reply of a request whose records could not be committed: every item failed.
fn reply_with_error(reply: ControllerReply, e: MetadataError) -> ControllerReply {
    use ControllerReply as R;
    match reply {
        R::CreateTopics(v) => {
            R::CreateTopics(v.into_iter().map(|(n, r)| (n, fail(r, &e))).collect())
        }
        R::DeleteTopics(v) => {
            R::DeleteTopics(v.into_iter().map(|(n, r)| (n, fail(r, &e))).collect())
        }
        R::CreatePartitions(v) => {
            R::CreatePartitions(v.into_iter().map(|(n, r)| (n, fail(r, &e))).collect())
        }
        R::AlterConfigs(v) => {
            R::AlterConfigs(v.into_iter().map(|(n, r)| (n, fail(r, &e))).collect())
        }
        R::RegisterBroker(_) => R::RegisterBroker(Err(e)),
        R::BrokerHeartbeat(_) => R::BrokerHeartbeat(Err(e)),
        R::UnregisterBroker(_) => R::UnregisterBroker(Err(e)),
        R::AlterPartition(_) => R::AlterPartition(Err(e)),
        R::AllocateProducerIds(_) => R::AllocateProducerIds(Err(e)),
        R::ElectLeaders(v) => {
            R::ElectLeaders(v.into_iter().map(|(t, p, r)| (t, p, fail(r, &e))).collect())
        }
        R::AlterPartitionReassignments(v) => R::AlterPartitionReassignments(
            v.into_iter().map(|(t, p, r)| (t, p, fail(r, &e))).collect(),
        ),
        R::CreateAcls(_) => R::CreateAcls(Err(e)),
        R::DeleteAcls(_) => R::DeleteAcls(Err(e)),
    }
}

fn fail<T>(r: Result<T, MetadataError>, e: &MetadataError) -> Result<T, MetadataError> {
    r.and(Err(e.clone()))
}
