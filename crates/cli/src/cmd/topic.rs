//! `weir topic create|list|describe|alter|delete`.

use std::io::Write;

use anyhow::Context;
use weir_client::{ClientError, OffsetSpec};

use super::common::{connect, parse_key_value, stdout, Table};
use super::ConnectArgs;

#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics and their partition counts.
    List(ListArgs),
    /// Show a topic's partitions, offsets and configuration.
    Describe(DescribeArgs),
    /// Add partitions to a topic or change its configuration.
    Alter(AlterArgs),
    /// Delete topics.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    name: String,
    /// Number of partitions (-1: the broker default).
    #[arg(short = 'p', long, default_value_t = -1, allow_negative_numbers = true)]
    partitions: i32,
    /// Replication factor (-1: the broker default).
    #[arg(short = 'r', long, default_value_t = -1, allow_negative_numbers = true)]
    replicas: i16,
    /// Topic configuration, key=value (repeatable).
    #[arg(short = 'c', long = "config", value_parser = parse_key_value)]
    configs: Vec<(String, String)>,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Include internal topics.
    #[arg(short = 'a', long)]
    all: bool,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    name: String,
}

#[derive(clap::Args, Debug)]
pub struct AlterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    name: String,
    /// Grow the topic to this many partitions in total.
    #[arg(short = 'p', long)]
    partitions: Option<i32>,
    /// Set a configuration entry, key=value (repeatable).
    #[arg(long = "set", value_parser = parse_key_value)]
    set: Vec<(String, String)>,
    /// Remove a configuration entry, returning it to its default (repeatable).
    #[arg(long = "delete")]
    delete: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topics to delete.
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn run(c: TopicCommand) -> anyhow::Result<()> {
    match c {
        TopicCommand::Create(a) => create(a).await,
        TopicCommand::List(a) => list(a).await,
        TopicCommand::Describe(a) => describe(a).await,
        TopicCommand::Alter(a) => alter(a).await,
        TopicCommand::Delete(a) => delete(a).await,
    }
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    client
        .create_topic(&a.name, a.partitions, a.replicas, a.configs)
        .await
        .with_context(|| format!("create topic {:?}", a.name))?;
    let mut out = stdout();
    writeln!(out, "created {}", a.name)?;
    out.flush()?;
    Ok(())
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let meta = client.metadata(None).await.context("list topics")?;
    let mut topics: Vec<_> = meta
        .topics
        .into_iter()
        .filter(|t| a.all || !t.is_internal)
        .collect();
    topics.sort_by(|x, y| x.name.cmp(&y.name));
    let mut table = Table::new(["NAME", "PARTITIONS"]);
    for t in topics {
        table.row(vec![t.name, t.partitions.len().to_string()]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let context = || format!("describe topic {:?}", a.name);
    let mut client = connect(&a.connect).await?;
    let topic = client.topic(&a.name).await.with_context(context)?;

    let mut summary = Table::new(["NAME", &topic.name]);
    summary.row(vec![
        "TOPIC ID".into(),
        topic.topic_id.clone().unwrap_or_else(|| "-".into()),
    ]);
    summary.row(vec![
        "PARTITIONS".into(),
        topic.partitions.len().to_string(),
    ]);
    summary.row(vec!["INTERNAL".into(), topic.is_internal.to_string()]);

    // Size on disk is not part of Metadata; DescribeLogDirs has it where the broker
    // implements it, and the column is left out where it does not.
    let sizes = match client.partition_sizes(&a.name).await {
        Ok(sizes) => Some(sizes),
        Err(ClientError::Unsupported { .. }) => None,
        Err(e) => {
            eprintln!(
                "weir: describe topic {:?}: partition sizes unavailable: {e}",
                a.name
            );
            None
        }
    };
    // In cluster mode the replica set, ISR and leader epoch matter; a single node has
    // one replica per partition and keeps its narrower table.
    let cluster = super::cluster::describe_cluster_private(&a.connect)
        .await
        .ok()
        .flatten()
        .is_some();
    let mut header = vec!["PARTITION", "LEADER"];
    if cluster {
        header.extend(["EPOCH", "REPLICAS", "ISR"]);
    }
    header.extend(["LOG-START", "HIGH-WATERMARK"]);
    if sizes.is_some() {
        header.push("SIZE");
    }
    let mut partitions = Table::from_header(&header);
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    for p in &topic.partitions {
        let start = client
            .list_offsets(&a.name, p.partition, OffsetSpec::Earliest)
            .await
            .with_context(context)?;
        let end = client
            .list_offsets(&a.name, p.partition, OffsetSpec::Latest)
            .await
            .with_context(context)?;
        let mut row = vec![p.partition.to_string(), p.leader.to_string()];
        if cluster {
            row.extend([p.leader_epoch.to_string(), ids(&p.replicas), ids(&p.isr)]);
        }
        row.extend([start.offset.to_string(), end.offset.to_string()]);
        if let Some(sizes) = &sizes {
            row.push(
                sizes
                    .get(&p.partition)
                    .map_or_else(|| "-".into(), |s| s.to_string()),
            );
        }
        partitions.row(row);
    }

    let mut configs = client
        .describe_configs(&a.name)
        .await
        .with_context(context)?;
    configs.sort_by(|x, y| x.name.cmp(&y.name));
    let mut config_table = Table::new(["NAME", "VALUE", "SOURCE"]);
    for c in configs {
        let value = if c.sensitive {
            "(sensitive)".to_owned()
        } else {
            c.value.unwrap_or_else(|| "-".into())
        };
        config_table.row(vec![c.name, value, c.source.name().to_owned()]);
    }

    let mut out = stdout();
    summary.write(&mut out)?;
    writeln!(out, "\nPARTITIONS")?;
    partitions.write(&mut out)?;
    writeln!(out, "\nCONFIGS")?;
    config_table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn alter(a: AlterArgs) -> anyhow::Result<()> {
    if a.partitions.is_none() && a.set.is_empty() && a.delete.is_empty() {
        anyhow::bail!(
            "alter topic {:?}: nothing to change (use -p, --set or --delete)",
            a.name
        );
    }
    let context = || format!("alter topic {:?}", a.name);
    let mut client = connect(&a.connect).await?;
    if let Some(total) = a.partitions {
        client
            .create_partitions(&a.name, total)
            .await
            .with_context(context)?;
    }
    if !a.set.is_empty() || !a.delete.is_empty() {
        client
            .incremental_alter_configs(&a.name, a.set, a.delete)
            .await
            .with_context(context)?;
    }
    let mut out = stdout();
    writeln!(out, "altered {}", a.name)?;
    out.flush()?;
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let mut out = stdout();
    for name in &a.names {
        client
            .delete_topic(name)
            .await
            .with_context(|| format!("delete topic {name:?}"))?;
        writeln!(out, "deleted {name}")?;
    }
    out.flush()?;
    Ok(())
}
