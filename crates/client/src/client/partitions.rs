//! Partition leadership and placement (KIP-460, KIP-455): ElectLeaders,
//! AlterPartitionReassignments and ListPartitionReassignments, as `weir cluster
//! elect-leaders` and `weir cluster reassign` use them; and UnregisterBroker (`weir
//! cluster unregister`), the last step of draining a broker.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, ElectLeadersRequest,
    ListPartitionReassignmentsRequest, UnregisterBrokerRequest,
};

use super::{name, Client};
use crate::error::{error_name, ClientError};

/// One partition's answer: the error code (0: done) and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

impl PartitionOutcome {
    /// Kafka's name of the error code.
    pub fn error_name(&self) -> &'static str {
        error_name(self.error_code)
    }
}

/// A reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// `election_type` of ElectLeaders.
pub const ELECTION_PREFERRED: i8 = 0;
pub const ELECTION_UNCLEAN: i8 = 1;

fn ids(v: &[BrokerId]) -> Vec<i32> {
    v.iter().map(|b| b.0).collect()
}

impl Client {
    /// Removes broker `id`'s registration (Kafka's `kafka-cluster.sh unregister`).
    pub async fn unregister_broker(&mut self, id: i32) -> Result<(), ClientError> {
        let mut req = UnregisterBrokerRequest::default();
        req.broker_id = BrokerId(id);
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(
            ApiKey::UnregisterBroker,
            resp.error_code,
            resp.error_message.as_deref(),
        )
    }

    /// Elects leaders (`partitions: None`: every partition). Per-partition errors are in
    /// the answer; a whole-request error fails the call.
    pub async fn elect_leaders(
        &mut self,
        election_type: i8,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionOutcome>, ClientError> {
        let mut req = ElectLeadersRequest::default();
        req.election_type = election_type;
        req.timeout_ms = 30_000;
        req.topic_partitions = partitions.map(|ps| {
            let mut topics: Vec<TopicPartitions> = Vec::new();
            for (t, p) in ps {
                match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
                    Some(x) => x.partitions.push(p),
                    None => {
                        let mut x = TopicPartitions::default();
                        x.topic = name(&t);
                        x.partitions = vec![p];
                        topics.push(x);
                    }
                }
            }
            topics
        });
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(ApiKey::ElectLeaders, resp.error_code, None)?;
        Ok(resp
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic.0.to_string();
                t.partition_result
                    .into_iter()
                    .map(move |p| PartitionOutcome {
                        topic: topic.clone(),
                        partition: p.partition_id,
                        error_code: p.error_code,
                        error_message: p.error_message.map(|m| m.to_string()),
                    })
            })
            .collect())
    }

    /// Moves partitions to new replicas (`None` cancels a move in progress).
    pub async fn alter_partition_reassignments(
        &mut self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
    ) -> Result<Vec<PartitionOutcome>, ClientError> {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.timeout_ms = 30_000;
        for (t, p, replicas) in moves {
            let mut part = ReassignablePartition::default();
            part.partition_index = p;
            part.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
            match req.topics.iter_mut().find(|x| x.name.0.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => {
                    let mut x = ReassignableTopic::default();
                    x.name = name(&t);
                    x.partitions = vec![part];
                    req.topics.push(x);
                }
            }
        }
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(
            ApiKey::AlterPartitionReassignments,
            resp.error_code,
            resp.error_message.as_deref(),
        )?;
        Ok(resp
            .responses
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| PartitionOutcome {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    error_message: p.error_message.map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// Every reassignment in progress.
    pub async fn list_partition_reassignments(
        &mut self,
    ) -> Result<Vec<OngoingReassignment>, ClientError> {
        let mut req = ListPartitionReassignmentsRequest::default();
        req.timeout_ms = 30_000;
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(
            ApiKey::ListPartitionReassignments,
            resp.error_code,
            resp.error_message.as_deref(),
        )?;
        Ok(resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let topic = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| OngoingReassignment {
                    topic: topic.clone(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect())
    }
}
