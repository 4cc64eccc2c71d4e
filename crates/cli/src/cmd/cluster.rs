//! `weir cluster info`, `weir cluster config` (broker configs, altered at run time), and
//! `weir cluster elect-leaders` / `reassign` / `unregister` (in `cluster_ops`).

use std::io::Write;

use anyhow::Context;

use super::common::{connect, stdout, Table};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller, the brokers and the topic count.
    Info(super::ConnectArgs),
    /// Show or alter broker configs at run time (Kafka's dynamic broker configs).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Elect leaders: give partitions back to their preferred replica, or (unclean)
    /// to an out-of-sync one where no in-sync replica is left.
    ElectLeaders(super::cluster_ops::ElectArgs),
    /// Move partitions to other brokers (a kafka-reassign-partitions JSON plan, one
    /// partition, or every replica off a broker), list or cancel moves.
    Reassign(super::cluster_ops::ReassignArgs),
    /// Remove a broker's registration (kafka-cluster.sh unregister): the last step of
    /// removing a broker, once it holds no replicas (drain it first) or is stopped.
    /// Voters cannot be unregistered.
    Unregister(super::cluster_ops::UnregisterArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Show every broker config: value, source and whether it can be altered.
    Show(ConfigShowArgs),
    /// Set (`KEY=VALUE`) or remove (`--delete KEY`) dynamic broker configs. They are
    /// persisted by the broker and take effect at once; a removed key falls back to the
    /// cluster-wide default, then to the static config.
    Set(ConfigSetArgs),
}

/// Which broker resource: this broker by id (the default: the bootstrap broker), or the
/// cluster-wide default.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// The broker id (defaults to the broker at --brokers).
    #[arg(long, conflicts_with = "default")]
    broker: Option<i32>,
    /// The cluster-wide default that every broker uses unless it sets its own.
    #[arg(long)]
    default: bool,
}

#[derive(clap::Args, Debug)]
pub struct ConfigShowArgs {
    #[command(flatten)]
    connect: super::ConnectArgs,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Args, Debug)]
pub struct ConfigSetArgs {
    #[command(flatten)]
    connect: super::ConnectArgs,
    #[command(flatten)]
    target: Target,
    /// KEY=VALUE pairs to set.
    #[arg(value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Keys to remove from the dynamic config. Repeatable.
    #[arg(long, value_name = "KEY")]
    delete: Vec<String>,
}

pub async fn run(c: ClusterCommand) -> anyhow::Result<()> {
    match c {
        ClusterCommand::Info(connect_args) => info(connect_args).await,
        ClusterCommand::Config(ConfigCommand::Show(a)) => config_show(a).await,
        ClusterCommand::Config(ConfigCommand::Set(a)) => config_set(a).await,
        ClusterCommand::ElectLeaders(a) => super::cluster_ops::elect(a).await,
        ClusterCommand::Reassign(a) => super::cluster_ops::reassign(a).await,
        ClusterCommand::Unregister(a) => super::cluster_ops::unregister(a).await,
    }
}

/// The BROKER resource name of a target: "" for the default, else the broker's id.
async fn resource(client: &mut weir_client::Client, t: &Target) -> anyhow::Result<String> {
    if t.default {
        return Ok(String::new());
    }
    if let Some(id) = t.broker {
        return Ok(id.to_string());
    }
    let cluster = client
        .describe_cluster()
        .await
        .context("describe cluster")?;
    let id = if cluster.controller_id >= 0 {
        cluster.controller_id
    } else {
        cluster
            .brokers
            .first()
            .map(|b| b.id)
            .context("the cluster lists no broker")?
    };
    Ok(id.to_string())
}

async fn config_show(a: ConfigShowArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let name = resource(&mut client, &a.target).await?;
    let what = if name.is_empty() {
        "the cluster-wide default".to_string()
    } else {
        format!("broker {name}")
    };
    let mut configs = client
        .describe_resource_configs(weir_client::client::RESOURCE_BROKER, &name)
        .await
        .with_context(|| format!("describe configs of {what}"))?;
    configs.sort_by(|x, y| x.name.cmp(&y.name));
    let mut table = Table::new(["NAME", "VALUE", "SOURCE", "DYNAMIC"]);
    for c in configs {
        let value = if c.sensitive {
            "(sensitive)".to_owned()
        } else {
            c.value.unwrap_or_else(|| "-".into())
        };
        let dynamic = if c.read_only { "no" } else { "yes" };
        table.row(vec![
            c.name,
            value,
            c.source.name().to_owned(),
            dynamic.to_owned(),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn config_set(a: ConfigSetArgs) -> anyhow::Result<()> {
    if a.set.is_empty() && a.delete.is_empty() {
        anyhow::bail!("nothing to change (give KEY=VALUE pairs or --delete KEY)");
    }
    let set = a
        .set
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("{kv:?}: expected KEY=VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut client = connect(&a.connect).await?;
    let name = resource(&mut client, &a.target).await?;
    let what = if name.is_empty() {
        "the cluster-wide default".to_string()
    } else {
        format!("broker {name}")
    };
    client
        .alter_resource_configs(weir_client::client::RESOURCE_BROKER, &name, set, a.delete)
        .await
        .with_context(|| format!("alter configs of {what}"))?;
    let mut out = stdout();
    writeln!(out, "altered {what}")?;
    out.flush()?;
    Ok(())
}

async fn info(args: super::ConnectArgs) -> anyhow::Result<()> {
    if let Some(view) = describe_cluster_private(&args).await? {
        return info_cluster(view);
    }
    let mut client = connect(&args).await?;
    let cluster = client
        .describe_cluster()
        .await
        .context("describe cluster")?;
    let topics = client
        .metadata(None)
        .await
        .context("list topics")?
        .topics
        .len();

    let mut summary = Table::new(["CLUSTER ID", cluster.cluster_id.as_deref().unwrap_or("-")]);
    let controller = if cluster.controller_id < 0 {
        "-".to_owned()
    } else {
        cluster.controller_id.to_string()
    };
    summary.row(vec!["CONTROLLER".into(), controller]);
    summary.row(vec!["TOPICS".into(), topics.to_string()]);

    let mut brokers = cluster.brokers;
    brokers.sort_by_key(|b| b.id);
    let mut table = Table::new(["ID", "HOST:PORT", "RACK"]);
    for b in brokers {
        let id = if b.id == cluster.controller_id {
            format!("{}*", b.id)
        } else {
            b.id.to_string()
        };
        table.row(vec![id, b.addr(), b.rack.unwrap_or_else(|| "-".into())]);
    }

    let mut out = stdout();
    summary.write(&mut out)?;
    writeln!(out, "\nBROKERS")?;
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Asks the broker `WeirDescribeCluster` (Weir-private key 32100); `None` from a broker in
/// the single-node default.
pub(super) async fn describe_cluster_private(
    args: &super::ConnectArgs,
) -> anyhow::Result<Option<super::cluster_node::ClusterView>> {
    use bytes::Buf;
    let mut conn = super::common::connection(args).await?;
    let frame = weir_controller::wire::encode_request(
        weir_broker::cluster_admin::WEIR_DESCRIBE_CLUSTER,
        1,
        "weir-cli",
        b"",
    );
    let answer = conn
        .round_trip_raw(&frame, std::time::Duration::from_secs(20))
        .await
        .context("WeirDescribeCluster (a Weir broker older than cluster mode?)")?;
    let mut answer = answer;
    anyhow::ensure!(answer.len() >= 4, "short WeirDescribeCluster answer");
    let _correlation = answer.get_i32();
    let value: serde_json::Value =
        serde_json::from_slice(&answer).context("WeirDescribeCluster answer")?;
    if value.get("mode").and_then(|m| m.as_str()) != Some("cluster") {
        return Ok(None);
    }
    Ok(Some(
        serde_json::from_value(value).context("WeirDescribeCluster answer")?,
    ))
}

/// `weir cluster info` of a cluster: the brokers as the metadata image has them, the
/// active controller, and the voters' log ends as the active controller sees them.
fn info_cluster(view: super::cluster_node::ClusterView) -> anyhow::Result<()> {
    let dash = || "-".to_string();
    let mut summary = Table::new(["CLUSTER ID", view.cluster_id.as_deref().unwrap_or("-")]);
    summary.row(vec![
        "CONTROLLER".into(),
        view.controller.map_or_else(dash, |c| c.to_string()),
    ]);
    summary.row(vec!["TERM".into(), view.quorum.term.to_string()]);
    // A restarting broker answers from its own log until it caught up with the quorum.
    summary.row(vec![
        "IMAGE".into(),
        if view.caught_up {
            "caught-up".into()
        } else {
            "replaying (behind the quorum: brokers and partitions may be stale)".into()
        },
    ]);
    summary.row(vec!["TOPICS".into(), view.topics.to_string()]);
    summary.row(vec![
        "UNDER-REPLICATED".into(),
        view.under_replicated.len().to_string(),
    ]);
    summary.row(vec!["OFFLINE".into(), view.offline.len().to_string()]);

    let mut brokers = Table::new(["ID", "STATE", "EPOCH", "ENDPOINTS", "RACK"]);
    for b in &view.brokers {
        let controller = view.controller.is_some_and(|c| i64::from(b.id) == c as i64);
        let state = if b.fenced {
            "fenced"
        } else if b.in_controlled_shutdown {
            "shutting-down"
        } else {
            "unfenced"
        };
        let endpoints: Vec<String> = b
            .endpoints
            .iter()
            .map(|e| format!("{}://{}:{}", e.name, e.host, e.port))
            .collect();
        brokers.row(vec![
            if controller {
                format!("{}*", b.id)
            } else {
                b.id.to_string()
            },
            state.into(),
            b.epoch.to_string(),
            endpoints.join(","),
            b.rack.clone().unwrap_or_else(dash),
        ]);
    }

    let mut voters = Table::new(["VOTER", "INTERNAL", "LOG END", "LAG"]);
    for v in &view.quorum.voters {
        voters.row(vec![
            if view.controller == Some(v.id) {
                format!("{}*", v.id)
            } else {
                v.id.to_string()
            },
            v.internal.clone(),
            v.log_end.map_or_else(dash, |e| e.to_string()),
            v.lag.map_or_else(dash, |l| l.to_string()),
        ]);
    }
    // Brokers beyond the voters: openraft learners (KRaft's observers), no vote.
    let mut observers = Table::new(["OBSERVER", "INTERNAL", "LOG END", "LAG"]);
    for v in &view.quorum.observers {
        observers.row(vec![
            v.id.to_string(),
            v.internal.clone(),
            v.log_end.map_or_else(dash, |e| e.to_string()),
            v.lag.map_or_else(dash, |l| l.to_string()),
        ]);
    }

    let mut out = stdout();
    summary.write(&mut out)?;
    writeln!(out, "\nBROKERS")?;
    brokers.write(&mut out)?;
    writeln!(out, "\nQUORUM")?;
    voters.write(&mut out)?;
    if !view.quorum.observers.is_empty() {
        writeln!(out, "\nOBSERVERS")?;
        observers.write(&mut out)?;
    }
    for (title, list) in [
        ("UNDER-REPLICATED PARTITIONS", &view.under_replicated),
        ("OFFLINE PARTITIONS", &view.offline),
    ] {
        if list.is_empty() {
            continue;
        }
        let ids = |v: &[i32]| {
            if v.is_empty() {
                dash()
            } else {
                v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
            }
        };
        let mut table = Table::new([
            "TOPIC",
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "ELR",
            "LAST-KNOWN-ELR",
        ]);
        for p in list {
            table.row(vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.leader.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                ids(&p.elr),
                ids(&p.last_known_elr),
            ]);
        }
        writeln!(out, "\n{title}")?;
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(())
}
