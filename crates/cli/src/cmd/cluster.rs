//! `weir cluster info` and `weir cluster config` (broker configs, altered at run time).

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
