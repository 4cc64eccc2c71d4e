//! Where the SQL engine runs in a cluster (design §14): on the leader of
//! `__weir_sql_catalog` partition 0, as a coordinator shard runs on the leader of its
//! partition. Every broker decides from its metadata image alone whether it hosts the engine,
//! forwards SQL connections to the broker that does (its `SQL` endpoint, advertised in its
//! registration), or has no host to offer (the reason goes to the client as SQLSTATE 57P03).
//!
//! Also here: the catalog topic's creation in cluster mode (replicated like
//! `__transaction_state`, once enough brokers are up) and the `SQL` endpoint a broker
//! advertises.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use weir_broker::cluster::coordinator::{txn_state_min_isr, txn_state_topic_shape};
use weir_broker::state::{AdminError, State};
use weir_metadata::{BrokerId, Endpoint, MetadataImage};

use crate::catalog::CATALOG_TOPIC;

/// The name of the SQL listener in a broker's registration.
pub const SQL_LISTENER: &str = "SQL";

/// What this broker does with the engine and with SQL connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This broker leads the catalog partition: it runs the engine.
    Host,
    /// Broker `broker` hosts the engine; connections go to its SQL listener `addr`.
    Forward { broker: BrokerId, addr: String },
    /// No broker can be reached for SQL now.
    NoHost(NoHost),
}

/// Why no broker hosts the engine (or none can be reached through this one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoHost {
    #[error("this broker has not caught up with the cluster metadata yet (is a majority of the metadata quorum up?)")]
    NotCaughtUp,
    #[error("the SQL catalog ({CATALOG_TOPIC}) does not exist yet: the first SQL connection creates it once enough brokers are up to replicate it")]
    NoCatalog,
    #[error("{CATALOG_TOPIC} partition 0 has no leader, so no broker hosts the SQL engine (are its replicas' brokers down?)")]
    NoLeader,
    #[error("broker {0}, which leads {CATALOG_TOPIC} and hosts the SQL engine, is not registered or is fenced")]
    HostDown(BrokerId),
    #[error("broker {0} hosts the SQL engine but advertises no SQL listener (weir.sql.listen is empty there)")]
    NoListener(BrokerId),
}

/// The placement `image` gives broker `local`. Before the broker caught up with the quorum
/// its image may be old, so it neither hosts nor forwards.
pub fn decide(image: &MetadataImage, local: BrokerId, caught_up: bool) -> Placement {
    if !caught_up {
        return Placement::NoHost(NoHost::NotCaughtUp);
    }
    let Some(leader) = image
        .topic_by_name(CATALOG_TOPIC)
        .and_then(|t| t.partitions.get(&0))
        .map(|p| p.leader)
    else {
        return Placement::NoHost(NoHost::NoCatalog);
    };
    if leader < 0 {
        return Placement::NoHost(NoHost::NoLeader);
    }
    if leader == local {
        return Placement::Host;
    }
    let Some(broker) = image.broker(leader).filter(|b| !b.fenced) else {
        return Placement::NoHost(NoHost::HostDown(leader));
    };
    match broker.endpoints.iter().find(|e| e.name == SQL_LISTENER) {
        Some(e) => Placement::Forward {
            broker: leader,
            addr: host_port(&e.host, e.port),
        },
        None => Placement::NoHost(NoHost::NoListener(leader)),
    }
}

/// `host:port`, bracketing an IPv6 host.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `SQL` endpoint a broker advertises for its listener bound at `bound`: its address,
/// or the Kafka listener's advertised host when it listens on a wildcard address (which
/// other brokers could not connect to).
pub fn sql_endpoint(bound: SocketAddr, advertised_host: &str) -> Endpoint {
    let host = if bound.ip().is_unspecified() {
        advertised_host.to_string()
    } else {
        bound.ip().to_string()
    };
    Endpoint {
        name: SQL_LISTENER.to_string(),
        host,
        port: bound.port(),
    }
}

/// The replication factor and `min.insync.replicas` of the catalog topic, those of
/// `__transaction_state` (the log the engine's pipelines commit through, which the catalog
/// should not be less durable than); `None` while fewer brokers are up than that factor.
pub fn catalog_shape(state: &State, image: &MetadataImage) -> Option<(i16, i16)> {
    let (_, rf) = txn_state_topic_shape(state, image)?;
    Some((rf, txn_state_min_isr(state, rf)))
}

/// Has the quorum create the catalog topic if it is missing and enough brokers are up.
/// Several brokers may try at once: all but one find it exists.
pub async fn ensure_catalog_topic(state: &Arc<State>) {
    let image = state.image.image();
    if image.topic_by_name(CATALOG_TOPIC).is_some() {
        return;
    }
    let Some((rf, min_isr)) = catalog_shape(state, &image) else {
        return;
    };
    let configs = BTreeMap::from([
        ("cleanup.policy".to_string(), "compact".to_string()),
        ("min.insync.replicas".to_string(), min_isr.to_string()),
    ]);
    match state
        .cluster_create_topic(CATALOG_TOPIC, 1, rf, None, configs, false)
        .await
    {
        Ok(_) => {
            tracing::info!(
                replication_factor = rf,
                min_insync_replicas = min_isr,
                "created {CATALOG_TOPIC}"
            )
        }
        Err(AdminError::TopicExists(_)) => {}
        Err(e) => tracing::warn!(error = %e, "creating {CATALOG_TOPIC} failed; retrying"),
    }
}

#[cfg(test)]
mod tests {
    use weir_metadata::{BrokerRegistration, MetadataRecord, PartitionRegistration};

    use super::*;

    fn broker(id: i32, fenced: bool, sql: bool) -> MetadataRecord {
        let mut endpoints = vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: format!("kafka{id}"),
            port: 9092,
        }];
        if sql {
            endpoints.push(Endpoint {
                name: SQL_LISTENER.into(),
                host: format!("sql{id}"),
                port: 4566,
            });
        }
        MetadataRecord::RegisterBroker(BrokerRegistration {
            id,
            incarnation: Default::default(),
            epoch: i64::from(id),
            endpoints,
            rack: None,
            fenced,
            in_controlled_shutdown: false,
        })
    }

    /// Brokers 1 (with SQL), 2 (fenced), 3 (no SQL listener); the catalog led by `leader`.
    fn image(leader: Option<i32>) -> MetadataImage {
        let mut image = MetadataImage::new();
        let mut records = vec![
            broker(1, false, true),
            broker(2, true, true),
            broker(3, false, false),
        ];
        if let Some(leader) = leader {
            let topic_id = Default::default();
            let mut reg = PartitionRegistration::new(vec![1, 2, 3]);
            reg.leader = leader;
            reg.isr = vec![1, 2, 3];
            records.push(MetadataRecord::Topic {
                name: CATALOG_TOPIC.into(),
                topic_id,
            });
            records.push(MetadataRecord::Partition {
                topic_id,
                partition: 0,
                registration: reg,
            });
        }
        image.apply_all(&records).expect("records apply");
        image
    }

    #[test]
    fn the_catalog_leader_hosts_and_the_others_forward_to_its_sql_endpoint() {
        let image = image(Some(1));
        assert_eq!(decide(&image, 1, true), Placement::Host);
        let forward = Placement::Forward {
            broker: 1,
            addr: "sql1:4566".into(),
        };
        assert_eq!(decide(&image, 2, true), forward);
        assert_eq!(decide(&image, 3, true), forward);
    }

    #[test]
    fn no_host_says_why() {
        assert_eq!(
            decide(&image(Some(1)), 1, false),
            Placement::NoHost(NoHost::NotCaughtUp),
            "an image not caught up may be stale: not even its own leadership counts"
        );
        assert_eq!(
            decide(&image(None), 1, true),
            Placement::NoHost(NoHost::NoCatalog)
        );
        assert_eq!(
            decide(&image(Some(-1)), 1, true),
            Placement::NoHost(NoHost::NoLeader)
        );
        assert_eq!(
            decide(&image(Some(2)), 1, true),
            Placement::NoHost(NoHost::HostDown(2))
        );
        assert_eq!(
            decide(&image(Some(4)), 1, true),
            Placement::NoHost(NoHost::HostDown(4))
        );
        assert_eq!(
            decide(&image(Some(3)), 1, true),
            Placement::NoHost(NoHost::NoListener(3))
        );
        // The host itself needs no listener to run the engine.
        assert_eq!(decide(&image(Some(3)), 3, true), Placement::Host);
        let message = NoHost::NoCatalog.to_string();
        assert!(message.contains(CATALOG_TOPIC), "{message}");
    }

    #[test]
    fn a_wildcard_listener_advertises_the_kafka_host() {
        let e = sql_endpoint("0.0.0.0:4566".parse().expect("addr"), "broker1.example");
        assert_eq!(
            (e.name.as_str(), e.host.as_str(), e.port),
            (SQL_LISTENER, "broker1.example", 4566)
        );
        let e = sql_endpoint("[::]:5000".parse().expect("addr"), "b2");
        assert_eq!((e.host.as_str(), e.port), ("b2", 5000));
        let e = sql_endpoint("127.0.0.2:4567".parse().expect("addr"), "b3");
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.2", 4567));
        assert_eq!(host_port("::1", 4566), "[::1]:4566");
    }
}
