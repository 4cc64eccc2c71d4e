//! The broker config keys Weir knows: Kafka's names, types and defaults, and which of them can
//! be changed at run time (AlterConfigs on the BROKER resource).
//!
//! Keys Weir reads have Weir's built-in default (which is Kafka's, except where the README says
//! otherwise). Kafka keys Weir has no use for yet are listed with Kafka's default so tools that
//! describe a broker find them; their documentation says Weir does not use them.

/// DescribeConfigs `config_type` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

/// Whether and where a key can be altered at run time, as Kafka allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Set at start-up only (config file, environment, `--set`).
    ReadOnly,
    /// Alterable for this broker or as the cluster-wide default (resource name "").
    Dynamic,
    /// Alterable for one named broker only, never as the cluster-wide default.
    PerBroker,
}

/// One broker config key.
#[derive(Debug, Clone, Copy)]
pub struct BrokerKey {
    pub name: &'static str,
    /// The built-in default; `None` is Kafka's null (no value).
    pub default: Option<&'static str>,
    pub ty: ConfigType,
    pub mode: Mode,
    /// Whether Weir acts on the value (others are accepted and shown for compatibility).
    pub used: bool,
    pub doc: &'static str,
}

impl BrokerKey {
    pub fn is_sensitive(&self) -> bool {
        self.ty == ConfigType::Password
    }

    /// The documentation DescribeConfigs returns.
    pub fn documentation(&self) -> String {
        if self.used {
            self.doc.to_string()
        } else {
            format!(
                "{} (Kafka's key, accepted for compatibility; Weir does not use it)",
                self.doc
            )
        }
    }

    /// Checks that `value` parses as this key's type.
    pub fn check_type(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        let ok = match self.ty {
            ConfigType::Boolean => {
                v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
            }
            ConfigType::Int => v.parse::<i32>().is_ok(),
            ConfigType::Short => v.parse::<i16>().is_ok(),
            ConfigType::Long => v.parse::<i64>().is_ok(),
            ConfigType::Double => v.parse::<f64>().is_ok_and(|d| !d.is_nan()),
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                true
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid value {value:?} for {}: expected {}",
                self.name,
                match self.ty {
                    ConfigType::Boolean => "true or false",
                    ConfigType::Int => "a 32-bit whole number",
                    ConfigType::Short => "a 16-bit whole number",
                    ConfigType::Long => "a 64-bit whole number",
                    _ => "a number",
                }
            ))
        }
    }
}

use ConfigType::{Boolean, Class, Double, Int, List, Long, Password, Short, String as Str};
use Mode::{Dynamic, ReadOnly};

const fn k(
    name: &'static str,
    default: Option<&'static str>,
    ty: ConfigType,
    mode: Mode,
    used: bool,
    doc: &'static str,
) -> BrokerKey {
    BrokerKey {
        name,
        default,
        ty,
        mode,
        used,
        doc,
    }
}

const LONG_MAX: Option<&str> = Some("9223372036854775807");
const INT_MAX: Option<&str> = Some("2147483647");

/// Every broker key, sorted by name. One line per key, so not formatted.
#[rustfmt::skip]
pub const BROKER_KEYS: &[BrokerKey] = &[
    k("advertised.listeners", None, Str, ReadOnly, true, "NAME://host:port per listener, given to clients that connected through it (from --advertise, else the listener's address)."),
    k("allow.everyone.if.no.acl.found", None, Boolean, ReadOnly, true, "Whether a resource no ACL names is open to every principal; default false once a listener authenticates (SASL or client certificates), true otherwise."),
    k("authorizer.class.name", Some(""), Str, ReadOnly, false, "The authorizer."),
    k("auto.create.topics.enable", Some("true"), Boolean, ReadOnly, true, "Metadata and Produce for a missing topic create it."),
    k("auto.leader.rebalance.enable", Some("true"), Boolean, ReadOnly, true, "The active controller gives partitions back their preferred leader (cluster mode)."),
    k("background.threads", Some("10"), Int, Dynamic, false, "Threads for background tasks."),
    k("broker.heartbeat.interval.ms", Some("500"), Int, ReadOnly, true, "How often a broker heartbeats to the active controller (cluster mode; Kafka: 2000)."),
    k("broker.id", Some("0"), Int, ReadOnly, true, "This broker's id (the same as node.id)."),
    k("broker.rack", None, Str, ReadOnly, true, "This broker's rack, for rack-aware replica placement (cluster mode)."),
    k("broker.session.timeout.ms", Some("2500"), Int, ReadOnly, true, "A broker without heartbeat for this long is fenced (cluster mode; Kafka: 9000)."),
    k("compression.type", Some("producer"), Str, Dynamic, false, "Default compression of topics; producer keeps the producer's."),
    k("connection.failed.authentication.delay.ms", Some("100"), Int, ReadOnly, true, "A failed SASL authentication is answered after this delay, then the connection closes."),
    k("connections.max.idle.ms", Some("600000"), Long, ReadOnly, true, "Idle connections are closed after this long (-1: never)."),
    k("connections.max.reauth.ms", Some("0"), Long, ReadOnly, true, "SASL sessions last this long and must re-authenticate (KIP-368); 0: forever."),
    k("controller.listener.names", None, Str, ReadOnly, false, "Listener names the controller uses."),
    k("controller.quorum.election.timeout.ms", Some("500"), Int, ReadOnly, true, "The metadata quorum's minimum election timeout (cluster mode; Kafka: 1000)."),
    k("controller.quorum.voters", Some(""), List, ReadOnly, true, "The metadata quorum: id@host:port of each voter's internal listener; set, it selects cluster mode."),
    k("default.replication.factor", Some("1"), Int, ReadOnly, true, "Replication factor of topics created without one."),
    k("delete.topic.enable", Some("true"), Boolean, ReadOnly, true, "Topics can be deleted."),
    k("fetch.max.bytes", Some("57671680"), Int, ReadOnly, false, "The most bytes one fetch response carries."),
    k("group.consumer.heartbeat.interval.ms", Some("5000"), Int, ReadOnly, true, "Heartbeat interval of KIP-848 consumer groups."),
    k("group.consumer.session.timeout.ms", Some("45000"), Int, ReadOnly, true, "Session timeout of KIP-848 consumer groups."),
    k("group.coordinator.rebalance.protocols", Some("classic,consumer"), List, ReadOnly, true, "Group protocols: the classic one and KIP-848's consumer protocol."),
    k("group.initial.rebalance.delay.ms", Some("300"), Int, ReadOnly, true, "How long a new classic group waits for more members before its first rebalance."),
    k("group.max.session.timeout.ms", Some("1800000"), Int, ReadOnly, true, "The longest session timeout a consumer may ask for."),
    k("group.max.size", INT_MAX, Int, ReadOnly, true, "The most members a group may have."),
    k("group.min.session.timeout.ms", Some("6000"), Int, ReadOnly, true, "The shortest session timeout a consumer may ask for."),
    k("inter.broker.listener.name", None, Str, ReadOnly, false, "The listener brokers use between themselves."),
    k("leader.imbalance.check.interval.seconds", Some("300"), Long, ReadOnly, true, "How often the active controller checks preferred-leader balance (cluster mode)."),
    k("leader.imbalance.per.broker.percentage", Some("10"), Int, ReadOnly, true, "Share of a broker's preferred leaderships led elsewhere above which they are moved back (cluster mode)."),
    k("listener.security.protocol.map", Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"), Str, ReadOnly, true, "Security protocol of each listener name."),
    k("listeners", None, Str, ReadOnly, true, "NAME://host:port of each listener (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL or a mapped name); default: PLAINTEXT on --listen."),
    k("log.cleaner.backoff.ms", Some("15000"), Long, Dynamic, true, "Sleep of the log cleaner when there is nothing to clean."),
    k("log.cleaner.dedupe.buffer.size", Some("134217728"), Long, Dynamic, true, "Memory of the log cleaner's key map."),
    k("log.cleaner.delete.retention.ms", Some("86400000"), Long, Dynamic, true, "Default delete.retention.ms of topics."),
    k("log.cleaner.enable", Some("true"), Boolean, ReadOnly, true, "Run the log cleaner."),
    k("log.cleaner.io.buffer.load.factor", Some("0.9"), Double, Dynamic, false, "Load factor of the log cleaner's key map."),
    k("log.cleaner.io.buffer.size", Some("524288"), Int, Dynamic, false, "I/O buffer of the log cleaner."),
    k("log.cleaner.io.max.bytes.per.second", Some("1.7976931348623157E308"), Double, Dynamic, true, "I/O throttle of the log cleaner."),
    k("log.cleaner.max.compaction.lag.ms", LONG_MAX, Long, Dynamic, true, "Default max.compaction.lag.ms of topics."),
    k("log.cleaner.min.cleanable.ratio", Some("0.5"), Double, Dynamic, true, "Default min.cleanable.dirty.ratio of topics."),
    k("log.cleaner.min.compaction.lag.ms", Some("0"), Long, Dynamic, true, "Default min.compaction.lag.ms of topics."),
    k("log.cleaner.threads", Some("1"), Int, Dynamic, true, "Threads of the log cleaner."),
    k("log.cleanup.policy", Some("delete"), List, Dynamic, true, "Default cleanup.policy of topics."),
    k("log.dir", Some("/tmp/kafka-logs"), Str, ReadOnly, true, "The data directory (from --data-dir; log.dirs wins)."),
    k("log.dirs", None, Str, ReadOnly, true, "The data directory (from --data-dir)."),
    k("log.flush.interval.messages", LONG_MAX, Long, Dynamic, false, "Default flush.messages of topics."),
    k("log.flush.interval.ms", Some("0"), Long, Dynamic, true, "Period of the background fsync of every log; 0 turns it off."),
    k("log.flush.offset.checkpoint.interval.ms", Some("60000"), Int, ReadOnly, false, "How often recovery points are written."),
    k("log.flush.scheduler.interval.ms", LONG_MAX, Long, ReadOnly, false, "How often logs are checked for a flush."),
    k("log.index.interval.bytes", Some("4096"), Int, Dynamic, true, "Default index.interval.bytes of topics: bytes between offset index entries."),
    k("log.index.size.max.bytes", Some("10485760"), Int, Dynamic, false, "Default segment.index.bytes of topics."),
    k("log.local.retention.bytes", Some("-2"), Long, Dynamic, false, "Default local.retention.bytes of topics (tiered storage)."),
    k("log.local.retention.ms", Some("-2"), Long, Dynamic, false, "Default local.retention.ms of topics (tiered storage)."),
    k("log.message.downconversion.enable", Some("true"), Boolean, Dynamic, false, "Default message.downconversion.enable of topics (deprecated)."),
    k("log.message.format.version", Some("3.0-IV1"), Str, ReadOnly, false, "Default message.format.version of topics (deprecated, ignored)."),
    k("log.message.timestamp.after.max.ms", LONG_MAX, Long, Dynamic, false, "Default message.timestamp.after.max.ms of topics."),
    k("log.message.timestamp.before.max.ms", LONG_MAX, Long, Dynamic, false, "Default message.timestamp.before.max.ms of topics."),
    k("log.message.timestamp.difference.max.ms", LONG_MAX, Long, Dynamic, false, "Default message.timestamp.difference.max.ms of topics (deprecated)."),
    k("log.message.timestamp.type", Some("CreateTime"), Str, Dynamic, true, "Default message.timestamp.type of topics: CreateTime or LogAppendTime."),
    k("log.preallocate", Some("false"), Boolean, Dynamic, false, "Default preallocate of topics."),
    k("log.retention.bytes", Some("-1"), Long, Dynamic, true, "Default retention.bytes of topics: size retention per partition (-1: none)."),
    k("log.retention.check.interval.ms", Some("300000"), Long, ReadOnly, true, "How often retention runs."),
    k("log.retention.hours", Some("168"), Int, Dynamic, true, "Default retention.ms of topics, in hours (log.retention.minutes and .ms win)."),
    k("log.retention.minutes", None, Int, Dynamic, true, "Default retention.ms of topics, in minutes (log.retention.ms wins)."),
    k("log.retention.ms", None, Long, Dynamic, true, "Default retention.ms of topics (-1 keeps forever)."),
    k("log.roll.hours", Some("168"), Int, Dynamic, true, "Default segment.ms of topics, in hours (log.roll.ms wins)."),
    k("log.roll.jitter.hours", Some("0"), Int, Dynamic, false, "Default segment.jitter.ms of topics, in hours."),
    k("log.roll.jitter.ms", None, Long, Dynamic, false, "Default segment.jitter.ms of topics."),
    k("log.roll.ms", None, Long, Dynamic, true, "Default segment.ms of topics: a segment older than this is rolled."),
    k("log.segment.bytes", Some("1073741824"), Int, Dynamic, true, "Default segment.bytes of topics: a segment is rolled at this size."),
    k("log.segment.delete.delay.ms", Some("60000"), Long, Dynamic, false, "Default file.delete.delay.ms of topics."),
    k("max.connection.creation.rate", INT_MAX, Int, Dynamic, false, "New connections per second the broker accepts."),
    k("max.connections", Some("10000"), Int, Dynamic, true, "Connections beyond this wait in the listen backlog until one closes."),
    k("max.connections.per.ip", INT_MAX, Int, Dynamic, true, "Connections allowed from one address; more are closed at accept and counted."),
    k("max.connections.per.ip.overrides", Some(""), Str, Dynamic, true, "Per-address limits, address:count pairs, comma-separated (IP addresses only)."),
    k("max.in.flight.requests.per.connection", Some("16"), Int, ReadOnly, true, "Requests read ahead on one connection (Weir's key)."),
    k("max.incremental.fetch.session.cache.slots", Some("1000"), Int, ReadOnly, false, "Incremental fetch sessions kept."),
    k("message.max.bytes", Some("1048588"), Int, Dynamic, true, "Default max.message.bytes of topics: the largest record batch."),
    k("metadata.log.dir", None, Str, ReadOnly, false, "Directory of the cluster metadata log."),
    k("min.insync.replicas", Some("1"), Int, Dynamic, false, "Default min.insync.replicas of topics."),
    k("node.id", Some("0"), Int, ReadOnly, true, "This broker's id."),
    k("num.io.threads", Some("8"), Int, Dynamic, false, "Request handler threads."),
    k("num.network.threads", Some("3"), Int, Dynamic, false, "Network threads."),
    k("num.partitions", Some("1"), Int, ReadOnly, true, "Partitions of a topic created without a count."),
    k("num.recovery.threads.per.data.dir", Some("1"), Int, Dynamic, false, "Threads that recover logs at start."),
    k("num.replica.fetchers", Some("1"), Int, Dynamic, false, "Replica fetcher threads."),
    k("offset.metadata.max.bytes", Some("4096"), Int, ReadOnly, true, "The largest metadata string of a committed offset."),
    k("offsets.commit.timeout.ms", Some("5000"), Int, ReadOnly, false, "How long an offset commit waits for replication."),
    k("offsets.retention.check.interval.ms", Some("600000"), Long, ReadOnly, true, "How often expired committed offsets are looked for."),
    k("offsets.retention.minutes", Some("10080"), Int, ReadOnly, true, "Committed offsets of an empty group are kept this long."),
    k("offsets.topic.num.partitions", Some("50"), Int, ReadOnly, false, "Partitions of the offsets topic."),
    k("offsets.topic.replication.factor", Some("3"), Short, ReadOnly, false, "Replication factor of the offsets topic."),
    k("principal.builder.class", Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"), Class, ReadOnly, false, "Builds the principal of a connection."),
    k("process.roles", Some("broker,controller"), List, ReadOnly, true, "Roles of this node: Weir is broker and controller."),
    k("producer.id.expiration.ms", Some("86400000"), Int, Dynamic, true, "An idempotent producer idle this long is forgotten."),
    k("queued.max.request.bytes", Some("104857600"), Long, ReadOnly, true, "Broker-wide budget of request bytes being read or handled (-1: unlimited)."),
    k("queued.max.requests", Some("500"), Int, ReadOnly, false, "Requests queued before network threads block."),
    k("remote.log.storage.system.enable", Some("false"), Boolean, ReadOnly, false, "Tiered storage."),
    k("replica.fetch.backoff.ms", Some("1000"), Int, ReadOnly, true, "A follower's pause after a failed fetch round (cluster mode)."),
    k("replica.fetch.max.bytes", Some("1048576"), Int, ReadOnly, true, "Bytes a follower fetches per partition (cluster mode)."),
    k("replica.fetch.min.bytes", Some("1"), Int, ReadOnly, true, "Bytes a follower's fetch waits for on the leader (cluster mode)."),
    k("replica.fetch.response.max.bytes", Some("10485760"), Int, ReadOnly, true, "Bytes of one follower fetch answer (cluster mode)."),
    k("replica.fetch.wait.max.ms", Some("2000"), Int, ReadOnly, true, "How long a follower's fetch parks on the leader (cluster mode; Kafka: 500)."),
    k("replica.high.watermark.checkpoint.interval.ms", Some("5000"), Long, ReadOnly, true, "How often the high watermarks of replicated partitions are written to replication-offset-checkpoint (cluster mode)."),
    k("replica.lag.time.max.ms", Some("30000"), Long, ReadOnly, true, "A follower not caught up for this long leaves the ISR (cluster mode)."),
    k("sasl.enabled.mechanisms", Some("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"), List, ReadOnly, true, "SASL mechanisms of the SASL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."),
    k("sasl.server.max.receive.size", Some("524288"), Int, ReadOnly, true, "The largest request frame before SASL authentication completes."),
    k("security.inter.broker.protocol", Some("PLAINTEXT"), Str, ReadOnly, false, "Security protocol between brokers."),
    k("socket.receive.buffer.bytes", Some("102400"), Int, ReadOnly, false, "SO_RCVBUF of connections."),
    k("socket.request.max.bytes", Some("104857600"), Int, ReadOnly, true, "Larger request frames close the connection."),
    k("socket.send.buffer.bytes", Some("102400"), Int, ReadOnly, false, "SO_SNDBUF of connections."),
    k("ssl.client.auth", Some("none"), Str, ReadOnly, true, "Client certificates on SSL listeners: none, requested or required."),
    k("ssl.key.location", None, Str, ReadOnly, true, "PEM file of the TLS private key (PKCS#8, PKCS#1 or SEC1); default: the ssl.keystore.location file."),
    k("ssl.key.password", None, Password, ReadOnly, false, "Password of the private key."),
    k("ssl.keystore.location", None, Str, ReadOnly, true, "PEM file of the TLS certificate chain, leaf first (and the key, unless ssl.key.location is set)."),
    k("ssl.keystore.password", None, Password, ReadOnly, false, "Password of the key store."),
    k("ssl.truststore.location", None, Str, ReadOnly, true, "PEM file of the CA certificates client certificates are checked against."),
    k("ssl.truststore.password", None, Password, ReadOnly, false, "Password of the trust store."),
    k("super.users", Some(""), List, ReadOnly, true, "Principals allowed every operation, ';'-separated (User:admin;User:CN=ops). They bypass the ACLs."),
    k("transaction.abort.timed.out.transaction.cleanup.interval.ms", Some("10000"), Int, ReadOnly, true, "How often timed-out transactions are aborted."),
    k("transaction.max.timeout.ms", Some("900000"), Int, ReadOnly, true, "The longest transaction.timeout.ms a producer may ask for."),
    k("transaction.partition.verification.enable", Some("true"), Boolean, Dynamic, false, "Verify a transaction's partitions before appending (KIP-890)."),
    k("transaction.state.log.min.isr", Some("2"), Int, ReadOnly, false, "min.insync.replicas of the transaction log."),
    k("transaction.state.log.replication.factor", Some("3"), Short, ReadOnly, false, "Replication factor of the transaction log."),
    k("transactional.id.expiration.ms", Some("604800000"), Int, ReadOnly, true, "A transactional id idle this long is forgotten."),
    k("unclean.leader.election.enable", Some("false"), Boolean, Dynamic, false, "Default unclean.leader.election.enable of topics."),
    k("weir.durability", Some("acks-all"), Str, ReadOnly, true, "When produces are answered relative to fsync: acks-all, always or none."),
    k("weir.internal.listen", None, Str, ReadOnly, true, "The internal listener of a broker that is not a voter (cluster mode)."),
    k("weir.metrics.lag.interval.ms", Some("10000"), Long, ReadOnly, true, "How often consumer-group lag is computed for /metrics."),
    k("weir.metrics.max.groups", Some("1000"), Int, ReadOnly, true, "Distinct group label values per metric; beyond, group=\"_other\"."),
    k("weir.metrics.max.topics", Some("1000"), Int, ReadOnly, true, "Distinct topic label values per metric; beyond, topic=\"_other\"."),
    k("weir.metrics.per.partition", Some("false"), Boolean, ReadOnly, true, "Export weir_partition_* series (offsets, size, lag per partition)."),
    k("weir.request.read.timeout.ms", Some("30000"), Long, ReadOnly, true, "A frame must arrive whole within this once its first byte did (-1: no limit)."),
    k("weir.ssl.handshake.timeout.ms", Some("10000"), Long, ReadOnly, true, "A TLS handshake not finished in this time is cut off."),
];

pub fn lookup(name: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS
        .binary_search_by(|k| k.name.cmp(name))
        .ok()
        .and_then(|i| BROKER_KEYS.get(i))
}

/// Keys that set the same value in other units, most specific first: the value of the first
/// one set wins (Kafka's synonyms).
pub fn synonyms(name: &str) -> &'static [&'static str] {
    const RETENTION: &[&str] = &[
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ];
    const ROLL: &[&str] = &["log.roll.ms", "log.roll.hours"];
    const JITTER: &[&str] = &["log.roll.jitter.ms", "log.roll.jitter.hours"];
    const ID: &[&str] = &["node.id", "broker.id"];
    const DIRS: &[&str] = &["log.dirs", "log.dir"];
    for group in [RETENTION, ROLL, JITTER, ID, DIRS] {
        if group.contains(&name) {
            return group;
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_unique_and_defaults_have_their_type() {
        for w in BROKER_KEYS.windows(2) {
            if let [a, b] = w {
                assert!(a.name < b.name, "{} before {}", a.name, b.name);
            }
        }
        for key in BROKER_KEYS {
            assert_eq!(lookup(key.name).map(|k| k.name), Some(key.name));
            if let Some(d) = key.default {
                assert_eq!(key.check_type(d), Ok(()), "{}", key.name);
            }
            assert!(!key.doc.is_empty());
        }
        assert!(lookup("no.such.key").is_none());
        let seg = lookup("log.segment.bytes").expect("key");
        assert!(seg.check_type("x").is_err());
        assert!(seg.check_type("4294967296").is_err(), "an INT");
        assert!(lookup("log.retention.ms")
            .expect("key")
            .check_type("4294967296")
            .is_ok());
        assert!(lookup("ssl.key.password").expect("key").is_sensitive());
    }
}
