//! `weir cluster elect-leaders`, `weir cluster reassign` and `weir cluster unregister`:
//! leadership, replica placement and broker removal through Kafka's admin APIs
//! (ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments,
//! UnregisterBroker), so they work against any broker of the cluster.
//!
//! A reassignment plan is kafka-reassign-partitions' JSON:
//! `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use weir_client::client::{PartitionOutcome, ELECTION_PREFERRED, ELECTION_UNCLEAN};

use super::common::{connect, stdout, Table};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// Give each partition back to its first replica, if it is in sync.
    Preferred,
    /// Elect an out-of-sync replica where no in-sync one is left: may lose records.
    Unclean,
}

#[derive(clap::Args, Debug)]
pub struct ElectArgs {
    #[command(flatten)]
    connect: super::ConnectArgs,
    /// Which election.
    #[arg(long = "type", value_enum, default_value = "preferred")]
    election: Election,
    /// Only this topic (default: every partition of every topic).
    #[arg(long)]
    topic: Option<String>,
    /// Only these partitions of --topic (repeatable; default: all of them).
    #[arg(long, requires = "topic")]
    partition: Vec<i32>,
}

#[derive(clap::Args, Debug)]
pub struct ReassignArgs {
    #[command(flatten)]
    connect: super::ConnectArgs,
    /// A kafka-reassign-partitions JSON plan.
    #[arg(long, conflicts_with_all = ["topic", "drain", "list"])]
    plan: Option<PathBuf>,
    /// The partition to move (with --partition and --replicas or --cancel).
    #[arg(long, requires = "partition", conflicts_with_all = ["drain", "list"])]
    topic: Option<String>,
    #[arg(long, requires = "topic")]
    partition: Option<i32>,
    /// The new replicas, preferred leader first: `1,2,3`.
    #[arg(long, value_delimiter = ',', conflicts_with = "cancel")]
    replicas: Option<Vec<i32>>,
    /// Cancel the moves of --topic/--partition or of the plan's partitions.
    #[arg(long)]
    cancel: bool,
    /// Move every replica off this broker (to the brokers holding the fewest replicas).
    #[arg(long, value_name = "BROKER", conflicts_with_all = ["list", "cancel"])]
    drain: Option<i32>,
    /// List the moves in progress.
    #[arg(long)]
    list: bool,
    /// Wait until the moves are complete (at most this many seconds).
    #[arg(long, value_name = "SECONDS")]
    wait: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub struct UnregisterArgs {
    #[command(flatten)]
    connect: super::ConnectArgs,
    /// The broker to remove.
    #[arg(value_name = "BROKER")]
    id: i32,
}

/// `weir cluster unregister ID`.
pub async fn unregister(a: UnregisterArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    client
        .unregister_broker(a.id)
        .await
        .with_context(|| format!("unregister broker {}", a.id))?;
    writeln!(stdout(), "broker {} unregistered", a.id)?;
    Ok(())
}

/// kafka-reassign-partitions' plan.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    #[serde(default = "one")]
    version: i32,
    partitions: Vec<PlanPartition>,
}

fn one() -> i32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
struct PlanPartition {
    topic: String,
    partition: i32,
    #[serde(default)]
    replicas: Vec<i32>,
}

pub async fn elect(a: ElectArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let partitions = match &a.topic {
        None => None,
        Some(t) if a.partition.is_empty() => {
            let topic = client
                .topic(t)
                .await
                .with_context(|| format!("topic {t:?}"))?;
            Some(
                topic
                    .partitions
                    .iter()
                    .map(|p| (t.clone(), p.partition))
                    .collect(),
            )
        }
        Some(t) => Some(a.partition.iter().map(|p| (t.clone(), *p)).collect()),
    };
    let election = match a.election {
        Election::Preferred => ELECTION_PREFERRED,
        Election::Unclean => ELECTION_UNCLEAN,
    };
    let results = client
        .elect_leaders(election, partitions)
        .await
        .context("elect leaders")?;
    print_outcomes(&results, "elected")
}

/// One line per partition; fails when any partition failed for another reason than
/// "already led by the preferred replica".
fn print_outcomes(results: &[PartitionOutcome], done: &str) -> anyhow::Result<()> {
    const ELECTION_NOT_NEEDED: i16 = 84;
    let mut out = stdout();
    let mut table = Table::new(["TOPIC", "PARTITION", "RESULT"]);
    let mut failed = 0;
    for r in results {
        let result = match r.error_code {
            0 => done.to_string(),
            ELECTION_NOT_NEEDED => "not needed".to_string(),
            _ => {
                failed += 1;
                match &r.error_message {
                    Some(m) => format!("{}: {m}", r.error_name()),
                    None => r.error_name().to_string(),
                }
            }
        };
        table.row(vec![r.topic.clone(), r.partition.to_string(), result]);
    }
    if results.is_empty() {
        writeln!(out, "nothing to do")?;
    } else {
        table.write(&mut out)?;
    }
    out.flush()?;
    if failed > 0 {
        bail!("{failed} of {} partitions failed", results.len());
    }
    Ok(())
}

pub async fn reassign(a: ReassignArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    if a.list {
        return list(&mut client).await;
    }
    let moves: Vec<(String, i32, Option<Vec<i32>>)> = if let Some(path) = &a.plan {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let plan: Plan = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a reassignment plan", path.display()))?;
        if plan.version != 1 {
            bail!(
                "{}: plan version {} (expected 1)",
                path.display(),
                plan.version
            );
        }
        plan.partitions
            .into_iter()
            .map(|p| (p.topic, p.partition, (!a.cancel).then_some(p.replicas)))
            .collect()
    } else if let (Some(t), Some(p)) = (&a.topic, a.partition) {
        if !a.cancel && a.replicas.is_none() {
            bail!("give --replicas (or --cancel)");
        }
        vec![(t.clone(), p, a.replicas.clone())]
    } else if let Some(broker) = a.drain {
        drain_plan(&mut client, broker).await?
    } else {
        bail!("give --plan, --topic/--partition, --drain or --list");
    };
    if moves.is_empty() {
        println!("nothing to move");
        return Ok(());
    }
    let results = client
        .alter_partition_reassignments(moves.clone())
        .await
        .context("alter partition reassignments")?;
    print_outcomes(&results, if a.cancel { "cancelled" } else { "started" })?;
    if let Some(secs) = a.wait {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let wanted: Vec<(String, i32)> = moves.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        loop {
            let ongoing = client
                .list_partition_reassignments()
                .await
                .context("list partition reassignments")?;
            let left = ongoing
                .iter()
                .filter(|o| wanted.contains(&(o.topic.clone(), o.partition)))
                .count();
            if left == 0 {
                println!("complete");
                break;
            }
            if Instant::now() >= deadline {
                bail!("{left} moves still in progress after {secs} s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

async fn list(client: &mut weir_client::Client) -> anyhow::Result<()> {
    let ongoing = client
        .list_partition_reassignments()
        .await
        .context("list partition reassignments")?;
    let joined = |v: &[i32]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
        }
    };
    let mut table = Table::new(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
    for o in &ongoing {
        table.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            joined(&o.replicas),
            joined(&o.adding),
            joined(&o.removing),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// Every partition with a replica on `broker` gets it replaced by the live broker holding
/// the fewest replicas that the partition does not have yet (the leader keeps its place in
/// the order unless it is the drained broker).
async fn drain_plan(
    client: &mut weir_client::Client,
    broker: i32,
) -> anyhow::Result<Vec<(String, i32, Option<Vec<i32>>)>> {
    let md = client.metadata(None).await.context("metadata")?;
    let mut load: BTreeMap<i32, usize> = md
        .brokers
        .iter()
        .filter(|b| b.id != broker)
        .map(|b| (b.id, 0))
        .collect();
    for t in &md.topics {
        for p in &t.partitions {
            for r in &p.replicas {
                if let Some(n) = load.get_mut(r) {
                    *n += 1;
                }
            }
        }
    }
    let mut moves = Vec::new();
    for t in &md.topics {
        for p in &t.partitions {
            let Some(at) = p.replicas.iter().position(|r| *r == broker) else {
                continue;
            };
            let target = load
                .iter()
                .filter(|(b, _)| !p.replicas.contains(b))
                .min_by_key(|(b, n)| (**n, **b))
                .map(|(b, _)| *b)
                .with_context(|| {
                    format!(
                        "{}-{}: no other live broker can take its replica",
                        t.name, p.partition
                    )
                })?;
            if let Some(n) = load.get_mut(&target) {
                *n += 1;
            }
            let mut replicas = p.replicas.clone();
            if let Some(slot) = replicas.get_mut(at) {
                *slot = target;
            }
            moves.push((t.name.clone(), p.partition, Some(replicas)));
        }
    }
    Ok(moves)
}
