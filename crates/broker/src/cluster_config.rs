//! The cluster keys (docs/design/cluster.md §8.1): `controller.quorum.voters` selects
//! cluster mode; the others tune it. Parsed and validated with the rest of the broker
//! config, so a bad value stops the broker at start with one line naming the key.

use crate::config::{invalid, parse, ConfigError};

/// One entry of `controller.quorum.voters`: a voter's id and internal listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    /// `host:port`, bracketing an IPv6 host.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The validated cluster settings. `voters` empty: the single-node default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    pub voters: Vec<Voter>,
    /// `min.insync.replicas` (the broker default of the topic key).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` (the broker default of the topic key).
    pub unclean_leader_election_enable: bool,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms` (Weir's default 500; Kafka's 2000).
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms` (Weir's default 2500; Kafka's 9000).
    pub session_timeout_ms: u64,
    /// `controller.quorum.election.timeout.ms` (Weir's default 500; Kafka's 1000): openraft
    /// waits up to four times it (twice for the leader's lease, then up to twice for the
    /// election timer) before a follower stands for election, so Kafka's figure made a dead
    /// controller cost 3-4 s before any broker could be fenced.
    pub election_timeout_ms: u64,
    /// `weir.internal.listen`: the internal listener of a non-voter.
    pub internal_listen: Option<String>,
    /// `auto.leader.rebalance.enable` (Kafka's default, true).
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (Kafka's default, 300).
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage` (Kafka's default, 10).
    pub leader_imbalance_per_broker_percentage: u32,
}

const VOTERS: &str = "controller.quorum.voters";

impl ClusterConfig {
    /// Whether `controller.quorum.voters` is set.
    pub fn is_cluster(&self) -> bool {
        !self.voters.is_empty()
    }

    /// This node's voter entry.
    pub fn own_voter(&self, node_id: i32) -> Option<&Voter> {
        self.voters.iter().find(|v| v.id == node_id)
    }

    pub(crate) fn parse<'a>(
        get: &impl Fn(&str) -> Option<&'a str>,
        node_id: i32,
    ) -> Result<ClusterConfig, ConfigError> {
        let voters = parse_voters(get(VOTERS).unwrap_or(""))?;
        let ms = |key: &str, default: &str| -> Result<u64, ConfigError> {
            let raw = get(key).unwrap_or(default);
            let v: i64 = parse(key, raw)?;
            u64::try_from(v)
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| invalid(key, raw, "must be positive"))
        };
        let min_isr_raw = get("min.insync.replicas").unwrap_or("1");
        let min_insync_replicas: i32 = parse("min.insync.replicas", min_isr_raw)?;
        if min_insync_replicas < 1 {
            return Err(invalid(
                "min.insync.replicas",
                min_isr_raw,
                "must be at least 1",
            ));
        }
        let config = ClusterConfig {
            min_insync_replicas,
            unclean_leader_election_enable: parse(
                "unclean.leader.election.enable",
                get("unclean.leader.election.enable").unwrap_or("false"),
            )?,
            rack: get("broker.rack")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            heartbeat_interval_ms: ms("broker.heartbeat.interval.ms", "500")?,
            session_timeout_ms: ms("broker.session.timeout.ms", "2500")?,
            election_timeout_ms: ms("controller.quorum.election.timeout.ms", "500")?,
            internal_listen: get("weir.internal.listen")
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
            auto_leader_rebalance_enable: parse(
                "auto.leader.rebalance.enable",
                get("auto.leader.rebalance.enable").unwrap_or("true"),
            )?,
            leader_imbalance_check_interval_seconds: ms(
                "leader.imbalance.check.interval.seconds",
                "300",
            )?,
            leader_imbalance_per_broker_percentage: {
                let key = "leader.imbalance.per.broker.percentage";
                let raw = get(key).unwrap_or("10");
                let v: i64 = parse(key, raw)?;
                u32::try_from(v)
                    .ok()
                    .filter(|v| *v <= 100)
                    .ok_or_else(|| invalid(key, raw, "must be between 0 and 100"))?
            },
            voters,
        };
        if config.heartbeat_interval_ms >= config.session_timeout_ms {
            return Err(invalid(
                "broker.heartbeat.interval.ms",
                &config.heartbeat_interval_ms.to_string(),
                &format!(
                    "must be below broker.session.timeout.ms ({})",
                    config.session_timeout_ms
                ),
            ));
        }
        if let Some(listen) = &config.internal_listen {
            if split_host_port(listen).is_none() {
                return Err(invalid(
                    "weir.internal.listen",
                    listen,
                    "expected HOST:PORT",
                ));
            }
        }
        if config.is_cluster() {
            let ids: Vec<String> = config.voters.iter().map(|v| v.id.to_string()).collect();
            let voter = config.own_voter(node_id).is_some();
            if !voter && config.internal_listen.is_none() {
                // A broker beyond the voters (an openraft learner, KRaft's observer)
                // registers through the voters and needs its own internal listener.
                return Err(invalid(
                    "node.id",
                    &node_id.to_string(),
                    &format!(
                        "is not one of controller.quorum.voters ({}): a broker that is not a voter needs weir.internal.listen (its internal listener)",
                        ids.join(", ")
                    ),
                ));
            }
            if voter && config.internal_listen.is_some() {
                return Err(invalid(
                    "weir.internal.listen",
                    config.internal_listen.as_deref().unwrap_or(""),
                    "a voter listens on its own controller.quorum.voters entry",
                ));
            }
        }
        Ok(config)
    }
}

/// `ID@HOST:PORT,...`, ids unique and non-negative; empty is no voters.
fn parse_voters(raw: &str) -> Result<Vec<Voter>, ConfigError> {
    let mut voters: Vec<Voter> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: &str| invalid(VOTERS, raw, &format!("entry {entry:?} {why}"));
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| bad("is not ID@HOST:PORT"))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad("has no valid node id (a whole number >= 0)"))?;
        let (host, port) =
            split_host_port(addr.trim()).ok_or_else(|| bad("is not ID@HOST:PORT"))?;
        if voters.iter().any(|v| v.id == id) {
            return Err(bad("repeats a node id"));
        }
        voters.push(Voter { id, host, port });
    }
    Ok(voters)
}

/// `host:port` or `[v6]:port`, the port 1-65535.
fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_matches(|c| c == '[' || c == ']');
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(pairs: &[(&str, &str)], node_id: i32) -> Result<ClusterConfig, String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ClusterConfig::parse(&|k: &str| map.get(k).map(String::as_str), node_id)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn without_voters_it_is_the_single_node_default() {
        let c = config(&[], 0).unwrap();
        assert!(!c.is_cluster());
        assert_eq!(
            (
                c.heartbeat_interval_ms,
                c.session_timeout_ms,
                c.election_timeout_ms
            ),
            (500, 2500, 500)
        );
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.rack, None);
    }

    #[test]
    fn voters_parse_and_select_cluster_mode() {
        let c = config(
            &[
                (VOTERS, "1@127.0.0.1:9201, 2@host-b:9202,3@[::1]:9203"),
                ("broker.rack", "r1"),
                ("min.insync.replicas", "2"),
                ("unclean.leader.election.enable", "true"),
                ("broker.session.timeout.ms", "4000"),
            ],
            2,
        )
        .unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.voters.len(), 3);
        assert_eq!(c.own_voter(2).unwrap().address(), "host-b:9202");
        assert_eq!(c.voters[2].address(), "[::1]:9203");
        assert_eq!(c.rack.as_deref(), Some("r1"));
        assert_eq!(c.min_insync_replicas, 2);
        assert!(c.unclean_leader_election_enable);
        assert_eq!(c.session_timeout_ms, 4000);
    }

    #[test]
    fn a_broker_beyond_the_voters_needs_its_internal_listener() {
        let c = config(
            &[
                (VOTERS, "1@127.0.0.1:9201,2@127.0.0.1:9202"),
                ("weir.internal.listen", "127.0.0.1:9204"),
            ],
            4,
        )
        .unwrap();
        assert!(c.is_cluster());
        assert!(c.own_voter(4).is_none());
        assert_eq!(c.internal_listen.as_deref(), Some("127.0.0.1:9204"));
    }

    #[test]
    fn bad_values_name_the_key_and_the_entry() {
        let voters = "1@a:1,2@b:2";
        for (pairs, node, needle) in [
            (
                vec![(VOTERS, "1@a:1,2@b")],
                1,
                "entry \"2@b\" is not ID@HOST:PORT",
            ),
            (vec![(VOTERS, "x@a:1")], 1, "no valid node id"),
            (vec![(VOTERS, "-1@a:1")], 1, "no valid node id"),
            (vec![(VOTERS, "1@a:1,1@b:2")], 1, "repeats a node id"),
            (vec![(VOTERS, "1@a:0")], 1, "is not ID@HOST:PORT"),
            (
                vec![(VOTERS, voters)],
                3,
                "for node.id: is not one of controller.quorum.voters (1, 2): a broker that is not a voter needs weir.internal.listen",
            ),
            (
                vec![(VOTERS, voters), ("weir.internal.listen", "h:1")],
                1,
                "weir.internal.listen",
            ),
            (
                vec![("weir.internal.listen", "nope")],
                1,
                "expected HOST:PORT",
            ),
            (vec![("min.insync.replicas", "0")], 1, "min.insync.replicas"),
            (
                vec![("unclean.leader.election.enable", "maybe")],
                1,
                "unclean.leader.election.enable",
            ),
            (
                vec![("broker.heartbeat.interval.ms", "3000")],
                1,
                "below broker.session.timeout.ms",
            ),
            (
                vec![("controller.quorum.election.timeout.ms", "0")],
                1,
                "must be positive",
            ),
        ] {
            let err = config(&pairs, node).expect_err(needle);
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
    }
}
