//! Transaction administration: ListTransactions, DescribeTransactions and
//! DescribeProducers, as `weir txn` uses them.
//!
//! Routed as Kafka's admin client routes them: ListTransactions to every broker (each lists
//! the transaction shards it coordinates), DescribeTransactions to each id's coordinator
//! (FindCoordinator with key type 1, asked again while it loads or moves), DescribeProducers
//! to each partition's leader. On a single node all of them are the one broker.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest,
    TransactionalId,
};

use super::groups::KEY_TYPE_TXN;
use super::retry::Retry;
use super::{name, text, Client};
use crate::error::ClientError;

/// One transactional id, as ListTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub state: String,
}

/// One transactional id, as DescribeTransactions reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub state: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    /// When the open (or last) transaction began, ms since the epoch; -1 if none.
    pub start_time_ms: i64,
    /// The partitions in the open transaction, `(topic, partition)`.
    pub partitions: Vec<(String, i32)>,
}

/// One producer a partition remembers, as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDescription {
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp_ms: i64,
    /// First offset of its open transaction on the partition; -1 if none.
    pub current_txn_start_offset: i64,
}

impl Client {
    /// Every transactional id the coordinators know, optionally only in these states
    /// (Kafka's names: Empty, Ongoing, PrepareCommit, ...): every broker is asked, since each
    /// lists only the ids it coordinates.
    pub async fn list_transactions(
        &mut self,
        states: &[String],
    ) -> Result<Vec<TxnListing>, ClientError> {
        let api = ApiKey::ListTransactions;
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        if ids.is_empty() {
            self.metadata(Some(Vec::new())).await?;
            ids = self.brokers.keys().copied().collect();
        }
        ids.sort_unstable();
        let mut listed: BTreeMap<String, TxnListing> = BTreeMap::new();
        for id in ids {
            let mut req = ListTransactionsRequest::default();
            req.state_filters = states.iter().map(|s| text(s)).collect();
            req.duration_filter = -1;
            let resp = self.broker(id).await?.send(req).await?;
            ClientError::check(api, resp.error_code, None)?;
            if let Some(unknown) = resp.unknown_state_filters.first() {
                return Err(ClientError::Protocol {
                    api,
                    message: format!("unknown transaction state {:?}", unknown.as_str()),
                });
            }
            for t in resp.transaction_states {
                let transactional_id = t.transactional_id.0.to_string();
                listed.insert(
                    transactional_id.clone(),
                    TxnListing {
                        transactional_id,
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.to_string(),
                    },
                );
            }
        }
        Ok(listed.into_values().collect())
    }

    /// Describes transactional ids, in the order given, each asked of its coordinator; an
    /// unknown id is an error.
    pub async fn describe_transactions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<TxnDescription>, ClientError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let described = self
                .retrying(Retry::Coordinator, async |c| {
                    c.describe_transaction_once(id).await
                })
                .await?;
            out.push(described);
        }
        Ok(out)
    }

    async fn describe_transaction_once(&mut self, id: &str) -> Result<TxnDescription, ClientError> {
        let api = ApiKey::DescribeTransactions;
        let mut req = DescribeTransactionsRequest::default();
        req.transactional_ids = vec![TransactionalId(text(id))];
        let resp = self
            .coordinator_of(KEY_TYPE_TXN, id)
            .await?
            .send(req)
            .await?;
        let t = resp
            .transaction_states
            .into_iter()
            .find(|t| t.transactional_id.0.as_str() == id)
            .ok_or_else(|| ClientError::Protocol {
                api,
                message: format!("no answer for transactional id {id}"),
            })?;
        ClientError::check(api, t.error_code, Some(&format!("transactional id {id}")))?;
        Ok(TxnDescription {
            transactional_id: id.to_owned(),
            state: t.transaction_state.to_string(),
            producer_id: t.producer_id.0,
            producer_epoch: t.producer_epoch,
            timeout_ms: t.transaction_timeout_ms,
            start_time_ms: t.transaction_start_time_ms,
            partitions: t
                .topics
                .into_iter()
                .flat_map(|topic| {
                    let name = topic.topic.0.to_string();
                    topic.partitions.into_iter().map(move |p| (name.clone(), p))
                })
                .collect(),
        })
    }

    /// The producers each partition of `topic` remembers (`partitions` empty: all of them),
    /// each partition asked of its leader, in partition order.
    pub async fn describe_producers(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<ProducerDescription>, ClientError> {
        let partitions: Vec<i32> = if partitions.is_empty() {
            (0..self.partition_count(topic).await?).collect()
        } else {
            partitions.to_vec()
        };
        let mut out = Vec::new();
        for partition in partitions {
            let retry = Retry::Leader { topic, partition };
            let described = self
                .retrying(retry, async |c| {
                    c.describe_producers_once(topic, partition).await
                })
                .await?;
            out.extend(described);
        }
        Ok(out)
    }

    async fn describe_producers_once(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<ProducerDescription>, ClientError> {
        let api = ApiKey::DescribeProducers;
        let leader = self.leader(topic, partition).await?;
        let mut t = TopicRequest::default();
        t.name = name(topic);
        t.partition_indexes = vec![partition];
        let mut req = DescribeProducersRequest::default();
        req.topics = vec![t];
        let resp = self.broker(leader).await?.send(req).await?;
        let mut out = Vec::new();
        for t in resp.topics {
            for p in t.partitions {
                let what = format!("partition {topic}/{}", p.partition_index);
                ClientError::check(api, p.error_code, Some(&what))?;
                out.extend(p.active_producers.into_iter().map(|s| ProducerDescription {
                    partition: p.partition_index,
                    producer_id: s.producer_id.0,
                    producer_epoch: s.producer_epoch,
                    last_sequence: s.last_sequence,
                    last_timestamp_ms: s.last_timestamp,
                    current_txn_start_offset: s.current_txn_start_offset,
                }));
            }
        }
        Ok(out)
    }
}
