//! `weir txn list|describe|producers`: transactions and the producers partitions remember.

use std::io::Write;

use anyhow::Context;

use super::common::{connect, stdout, Table};
use super::ConnectArgs;

#[derive(clap::Subcommand, Debug)]
pub enum TxnCommand {
    /// List transactional ids with their producer id and state.
    List(ListArgs),
    /// Show transactional ids: state, producer, timeout, when the transaction began and the
    /// partitions in it.
    Describe(DescribeArgs),
    /// Show the idempotent and transactional producers a topic's partitions remember, with
    /// the start offset of any open transaction (what holds the last stable offset back).
    Producers(ProducersArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Only transactions in this state (repeatable): Empty, Ongoing, PrepareCommit,
    /// PrepareAbort, CompleteCommit, CompleteAbort.
    #[arg(long = "state")]
    states: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Transactional ids.
    #[arg(required = true)]
    ids: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ProducersArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic.
    topic: String,
    /// Only this partition (repeatable; default: every partition).
    #[arg(short = 'p', long = "partition", value_parser = clap::value_parser!(i32).range(0..))]
    partitions: Vec<i32>,
}

pub async fn run(c: TxnCommand) -> anyhow::Result<()> {
    match c {
        TxnCommand::List(a) => list(a).await,
        TxnCommand::Describe(a) => describe(a).await,
        TxnCommand::Producers(a) => producers(a).await,
    }
}

fn or_dash(v: i64) -> String {
    if v < 0 {
        "-".into()
    } else {
        v.to_string()
    }
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let listed = client
        .list_transactions(&a.states)
        .await
        .context("list transactions")?;
    let mut table = Table::new(["TRANSACTIONAL-ID", "PRODUCER-ID", "STATE"]);
    for t in listed {
        table.row(vec![t.transactional_id, t.producer_id.to_string(), t.state]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let described = client
        .describe_transactions(&a.ids)
        .await
        .context("describe transactions")?;
    let mut table = Table::new([
        "TRANSACTIONAL-ID",
        "STATE",
        "PRODUCER-ID",
        "EPOCH",
        "TIMEOUT-MS",
        "STARTED-MS",
        "PARTITIONS",
    ]);
    for t in described {
        let partitions = if t.partitions.is_empty() {
            "-".to_owned()
        } else {
            t.partitions
                .iter()
                .map(|(topic, p)| format!("{topic}/{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        table.row(vec![
            t.transactional_id,
            t.state,
            t.producer_id.to_string(),
            t.producer_epoch.to_string(),
            t.timeout_ms.to_string(),
            or_dash(t.start_time_ms),
            partitions,
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn producers(a: ProducersArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let described = client
        .describe_producers(&a.topic, &a.partitions)
        .await
        .with_context(|| format!("describe producers of {}", a.topic))?;
    let mut table = Table::new([
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "TXN-START-OFFSET",
    ]);
    for p in described {
        table.row(vec![
            p.partition.to_string(),
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.last_sequence.to_string(),
            p.last_timestamp_ms.to_string(),
            or_dash(p.current_txn_start_offset),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}
