//! `weir serve`: gather configuration (defaults < TOML file < `WEIR_*` environment < flags),
//! validate it into a [`BrokerConfig`] and run the broker until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use weir_broker::BrokerConfig;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address given to clients in metadata (defaults to the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML file of broker settings, with Kafka's key names (`log.retention.ms = 3600000`).
    #[arg(long, value_name = "FILE", env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// A broker setting with Kafka's key name, e.g. `--set num.partitions=6`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Address of the SQL listener (PostgreSQL wire protocol); empty disables it. Key
    /// `weir.sql.listen`, default 127.0.0.1:4566.
    #[arg(long, value_name = "HOST:PORT")]
    sql_listen: Option<String>,
    /// Address of the HTTP listener (`/metrics`, `/livez`, `/readyz`); empty disables it. Key
    /// `weir.http.listen`, default 127.0.0.1:9644.
    #[arg(long, value_name = "HOST:PORT")]
    http_listen: Option<String>,
    /// Log filter (tracing syntax), e.g. `info` or `weir_broker=debug`. RUST_LOG also works.
    #[arg(long, env = "WEIR_LOG", default_value = "info")]
    log: String,
}

/// Environment variables that are flags, not broker keys.
const FLAG_VARS: &[&str] = &[
    "WEIR_LISTEN",
    "WEIR_ADVERTISE",
    "WEIR_DATA_DIR",
    "WEIR_CONFIG",
    "WEIR_LOG",
    "WEIR_BROKERS",
    "WEIR_SQL_SERVER",
];

/// Whether `key` is a setting of the SQL service (`weir.sql.*`), which the broker does not
/// read but the SQL service does.
fn is_sql_key(key: &str) -> bool {
    #[cfg(feature = "sql")]
    {
        weir_sql::config::is_key(key)
    }
    #[cfg(not(feature = "sql"))]
    {
        let _ = key;
        false
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut pairs = BTreeMap::new();
    let mut listen = "127.0.0.1:9092".to_string();
    let mut advertise = None;
    let mut data_dir = PathBuf::from("./weir-data");

    if let Some(path) = &args.config {
        for (k, v) in read_toml(path)? {
            match k.as_str() {
                "listen" => listen = v,
                "advertise" => advertise = Some(v),
                "data_dir" | "data-dir" => data_dir = PathBuf::from(v),
                _ => {
                    pairs.insert(k, v);
                }
            }
        }
    }
    // WEIR_LOG_RETENTION_MS=1000 sets log.retention.ms, as Kafka's images map KAFKA_*;
    // WEIR_DURABILITY sets weir.durability. Other WEIR_* variables (a script's WEIR_BIN, say)
    // are not settings and are left alone.
    for (var, value) in std::env::vars() {
        if let Some(rest) = var.strip_prefix("WEIR_") {
            match var.as_str() {
                "WEIR_LISTEN" => listen = value,
                "WEIR_ADVERTISE" => advertise = Some(value),
                "WEIR_DATA_DIR" => data_dir = PathBuf::from(value),
                v if FLAG_VARS.contains(&v) => {}
                _ => {
                    let key = rest.to_ascii_lowercase().replace('_', ".");
                    let weir_key = format!("weir.{key}");
                    let known = |k: &str| {
                        weir_broker::broker_keys::lookup(k).is_some()
                            || is_sql_key(k)
                            || weir_http::HttpConfig::is_key(k)
                            || k == LOG_FORMAT_KEY
                    };
                    if known(&key) {
                        pairs.insert(key, value);
                    } else if known(&weir_key) {
                        pairs.insert(weir_key, value);
                    }
                }
            }
        }
    }
    if let Some(l) = args.listen {
        listen = l;
    }
    if let Some(a) = args.advertise {
        advertise = Some(a);
    }
    if let Some(d) = args.data_dir {
        data_dir = d;
    }
    for kv in &args.set {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--set {kv:?}: expected KEY=VALUE");
        };
        pairs.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(l) = args.sql_listen {
        pairs.insert("weir.sql.listen".to_string(), l);
    }
    if let Some(l) = args.http_listen {
        pairs.insert("weir.http.listen".to_string(), l);
    }
    // The log format is the binary's: logging starts once it is known (nothing above logs).
    init_tracing(&args.log, log_format(&pairs)?);
    pairs.remove(LOG_FORMAT_KEY);
    // weir.http.* keys are the HTTP listener's: split off before the broker sees them.
    let (http, unknown_http) = weir_http::HttpConfig::from_pairs(&pairs)?;
    for key in unknown_http {
        tracing::warn!(key, "ignoring unknown HTTP setting");
    }
    pairs.retain(|k, _| !k.starts_with("weir.http."));
    // weir.sql.* keys are the SQL service's: split off before the broker sees them.
    let sql_pairs: BTreeMap<String, String> = pairs
        .iter()
        .filter(|(k, _)| k.starts_with("weir.sql."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.retain(|k, _| !k.starts_with("weir.sql."));

    let listen_addr = resolve(&listen).with_context(|| format!("--listen {listen}"))?;
    let advertise = advertise
        .map(|a| split_host_port(&a).with_context(|| format!("--advertise {a}")))
        .transpose()?;
    let (config, unknown) = BrokerConfig::from_pairs(listen_addr, advertise, data_dir, pairs)?;
    for key in unknown {
        tracing::warn!(key, "ignoring unknown broker setting");
    }
    tracing::info!(
        listen = %config.listen,
        advertise = %format!("{}:{}", config.advertise.0, config.advertise.1),
        data_dir = %config.data_dir.display(),
        durability = ?config.durability,
        "starting weir"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(config, sql_pairs, http))
}

/// Runs the broker, with the services beside it and, in cluster mode, the quorum node.
async fn serve(
    config: BrokerConfig,
    sql_pairs: BTreeMap<String, String>,
    http: weir_http::HttpConfig,
) -> anyhow::Result<()> {
    // Without SQL the settings are `()`.
    #[cfg_attr(not(feature = "sql"), allow(clippy::let_unit_value))]
    let sql = sql_config(&sql_pairs)?;
    // Before the data directory is opened: /livez answers and /readyz says "recovering"
    // while the logs are replayed.
    let http = weir_http::HttpService::bind(&http).await?;
    match &http {
        Some(h) => {
            tracing::info!(http_listen = %h.local_addr(), "HTTP listener bound (/metrics, /livez, /readyz)")
        }
        None => tracing::info!("HTTP listener disabled (weir.http.listen is empty)"),
    }
    if !config.cluster.is_cluster() {
        let broker = weir_broker::Broker::open(config).await?;
        let (mut services, _) = services(sql, http.as_ref()).await?;
        services.extend(http.map(|h| Box::new(h) as Box<dyn weir_broker::Service>));
        broker.serve_with(shutdown_signal(), services).await?;
        return Ok(());
    }
    serve_cluster(config, sql, http).await
}

#[cfg(feature = "sql")]
type SqlSettings = weir_sql::SqlConfig;
#[cfg(not(feature = "sql"))]
type SqlSettings = ();

#[cfg(feature = "sql")]
fn sql_config(pairs: &BTreeMap<String, String>) -> anyhow::Result<SqlSettings> {
    let (sql, unknown) = weir_sql::SqlConfig::from_pairs(pairs)?;
    for key in unknown {
        tracing::warn!(key, "ignoring unknown SQL setting");
    }
    Ok(sql)
}

#[cfg(not(feature = "sql"))]
fn sql_config(pairs: &BTreeMap<String, String>) -> anyhow::Result<SqlSettings> {
    for key in pairs.keys() {
        tracing::warn!(key, "ignoring SQL setting: this weir was built without SQL");
    }
    Ok(())
}

/// The services started beside the Kafka listener: the SQL engine (its pipelines, and its
/// listener unless disabled), whose pipelines the console's page shows. Also the SQL
/// listener's address, which a broker of a cluster advertises.
#[cfg(feature = "sql")]
async fn services(
    sql: SqlSettings,
    http: Option<&weir_http::HttpService>,
) -> anyhow::Result<ServicesAndSql> {
    let mut services: Vec<Box<dyn weir_broker::Service>> = Vec::new();
    let service = weir_sql::SqlService::bind(sql).await?;
    if let Some(h) = http {
        h.set_pipelines(std::sync::Arc::new(super::serve_pipelines::SqlPipelines(
            service.engine(),
        )));
    }
    let addr = service.local_addr()?;
    match addr {
        Some(addr) => tracing::info!(sql_listen = %addr, "SQL listener bound"),
        None => {
            tracing::info!("SQL listener disabled (weir.sql.listen is empty); pipelines still run")
        }
    }
    services.push(Box::new(service));
    Ok((services, addr))
}

/// The services, and the SQL listener's address when there is one.
type ServicesAndSql = (
    Vec<Box<dyn weir_broker::Service>>,
    Option<std::net::SocketAddr>,
);

#[cfg(not(feature = "sql"))]
async fn services(
    _sql: SqlSettings,
    _http: Option<&weir_http::HttpService>,
) -> anyhow::Result<ServicesAndSql> {
    Ok((Vec::new(), None))
}

/// The `SQL` endpoint a broker registers, so the others forward SQL connections to it.
#[cfg(feature = "sql")]
fn sql_endpoints(
    sql: Option<std::net::SocketAddr>,
    config: &BrokerConfig,
) -> Vec<weir_metadata::Endpoint> {
    sql.map(|addr| weir_sql::service::placement::sql_endpoint(addr, &config.advertise.0))
        .into_iter()
        .collect()
}

#[cfg(not(feature = "sql"))]
fn sql_endpoints(
    _sql: Option<std::net::SocketAddr>,
    _config: &BrokerConfig,
) -> Vec<weir_metadata::Endpoint> {
    Vec::new()
}

/// Cluster mode: the broker opens (and locks) the data directory first, then the quorum
/// node starts beside it with its internal listener.
async fn serve_cluster(
    config: BrokerConfig,
    sql: SqlSettings,
    http: Option<weir_http::HttpService>,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    // Bound before the quorum node starts: the registration advertises the SQL listener.
    let (mut services, sql_addr) = services(sql, http.as_ref()).await?;
    let node_config = super::cluster_node::node_config(&config, sql_endpoints(sql_addr, &config))?;
    let data_dir = config.data_dir.clone();
    let broker = weir_broker::Broker::open(config).await?;
    let node = Arc::new(
        weir_controller::Node::start(node_config.clone(), &data_dir)
            .await
            .context("starting the metadata quorum node")?,
    );
    broker
        .state()
        .set_cluster_admin(Arc::new(super::cluster_node::NodeAdmin {
            node: node.clone(),
            image: broker.state().image.clone(),
        }));
    broker
        .state()
        .set_controller(Arc::new(super::cluster_node::NodeController(node.clone())));
    let data_plane = super::cluster_data::start(broker.state(), &node);
    let publisher =
        super::cluster_node::spawn_publisher(broker.state(), node.clone(), data_plane.clone());
    tracing::info!(
        node = node_config.node_id,
        internal = %node.local_addr(),
        voters = ?node_config.voters,
        voter = node_config.voters.contains_key(&node_config.node_id),
        "cluster mode: this node is a voter of the metadata quorum, or (not among the \
         voters) a learner receiving its log; topics, partition leadership, admin and \
         replication follow the cluster metadata"
    );
    services.extend(http.map(|h| Box::new(h) as Box<dyn weir_broker::Service>));
    let mut failed = None;
    let state = broker.state().clone();
    let shutdown = async {
        tokio::select! {
            () = shutdown_signal() => controlled_shutdown(&node, &state).await,
            reason = node.fatal() => {
                tracing::error!(%reason, "the metadata quorum node failed; stopping");
                failed = Some(reason);
            }
        }
        // Before the broker's clean-shutdown marker: the metadata log closes first.
        node.shutdown().await;
        publisher.abort();
        data_plane.shutdown();
    };
    broker.serve_with(shutdown, services).await?;
    if let Some(reason) = failed {
        bail!("the metadata quorum node failed: {reason}");
    }
    Ok(())
}

/// How long a SIGTERMed broker waits for the controller to move its leaderships away
/// (§4.7 step 4) before it stops anyway; below the 20 s a supervisor (and the tests) give a
/// SIGTERMed process.
const CONTROLLED_SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(15);

/// Controlled shutdown: leaderships move to other ISR members while this broker still
/// serves (clients get NOT_LEADER_OR_FOLLOWER and follow the new leaders), then it stops.
async fn controlled_shutdown(node: &weir_controller::Node, state: &weir_broker::state::State) {
    use weir_controller::ControlledShutdown as C;
    let started = std::time::Instant::now();
    // From here a request held for the lease is answered as soon as the controller fences
    // this broker (the end of the shutdown), not after the lease wait.
    state.image.begin_stopping();
    let outcome = node.controlled_shutdown(CONTROLLED_SHUTDOWN_BOUND).await;
    // The records are applied on the node; the broker follows them (replicas become
    // followers, waiting produces fail over) before the listeners close.
    let published = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        state.image.published(node.applied_index()),
    )
    .await
    .is_ok();
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        C::Done => tracing::info!(
            elapsed_ms,
            published,
            "controlled shutdown: leaderships moved"
        ),
        C::NotRegistered => tracing::info!("controlled shutdown: not registered, nothing to move"),
        C::Unanswered => tracing::warn!(
            elapsed_ms,
            "controlled shutdown: no controller answered; stopping without moving leaderships"
        ),
        C::Running | C::Requested => tracing::warn!(
            elapsed_ms,
            "controlled shutdown: not finished within {CONTROLLED_SHUTDOWN_BOUND:?}; stopping"
        ),
    }
}

/// `weir.log.format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    /// One JSON object a line (tracing-subscriber's JSON format), for log shippers.
    Json,
}

const LOG_FORMAT_KEY: &str = "weir.log.format";

fn log_format(pairs: &BTreeMap<String, String>) -> anyhow::Result<LogFormat> {
    match pairs.get(LOG_FORMAT_KEY).map(|v| v.trim()) {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => bail!("{LOG_FORMAT_KEY}={other:?}: expected text or json"),
    }
}

/// Logs to stderr and, formatted the same way, to the ring the debug bundle reads.
fn init_tracing(filter: &str, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter};
    // openraft narrates every vote and replication step at info: its warnings suffice
    // unless the operator asks for it by name.
    let filter = if filter.contains("openraft") {
        filter.to_string()
    } else {
        format!("{filter},openraft=warn")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let ring = || weir_http::log_ring::global().writer();
    // openraft's warnings repeat every 500 ms per unreachable peer: the first of each passes,
    // then one with a count per window.
    let (coalesce, summaries) = super::log_coalesce::Coalesce::new(super::log_coalesce::WINDOW);
    let registry = tracing_subscriber::registry().with(filter).with(coalesce);
    std::thread::Builder::new()
        .name("log-summaries".into())
        .spawn(move || loop {
            std::thread::sleep(super::log_coalesce::WINDOW);
            summaries.emit();
        })
        .ok();
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .with(fmt::layer().with_writer(ring).with_ansi(false))
            .init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .with(fmt::layer().json().with_writer(ring))
            .init(),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))
}

fn split_host_port(addr: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = addr.rsplit_once(':').context("expected HOST:PORT")?;
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port.parse()?,
    ))
}

/// Reads a TOML file into flat `a.b.c = "value"` pairs; dotted keys and tables both work.
fn read_toml(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut out)
        .with_context(|| format!("in {}", path.display()))?;
    Ok(out)
}

fn flatten(
    prefix: &str,
    v: &toml::Value,
    out: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out)?;
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Integer(i) => {
            out.insert(prefix.to_string(), i.to_string());
        }
        toml::Value::Boolean(b) => {
            out.insert(prefix.to_string(), b.to_string());
        }
        toml::Value::Float(f) => {
            out.insert(prefix.to_string(), f.to_string());
        }
        other => bail!("{prefix}: unsupported value {other:?} (use a string, number or boolean)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_flatten_to_kafka_names() {
        let dir = std::env::temp_dir().join(format!("weir-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("weir.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nlog.retention.ms = 5000\n\"auto.create.topics.enable\" = false\n[num]\npartitions = 3\n",
        )
        .expect("write");
        let pairs = read_toml(&path).expect("read");
        assert_eq!(
            pairs.get("log.retention.ms").map(String::as_str),
            Some("5000")
        );
        assert_eq!(
            pairs.get("auto.create.topics.enable").map(String::as_str),
            Some("false")
        );
        assert_eq!(pairs.get("num.partitions").map(String::as_str), Some("3"));
        assert_eq!(pairs.get("listen").map(String::as_str), Some("127.0.0.1:1"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("example.com:9093").expect("ok"),
            ("example.com".into(), 9093)
        );
        assert!(split_host_port("nope").is_err());
    }
}
