//! `weir group list|describe|reset-offsets|delete`: consumer-group administration.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use anyhow::Context;
use weir_client::error::codes;
use weir_client::{
    Client, ClientError, CommittedOffset, ConsumerGroupDescription, GroupDescription, OffsetSpec,
    PartitionOffset,
};

use super::common::{connect, stdout, Table};
use super::ConnectArgs;

#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups with their state and member count.
    List(ListArgs),
    /// Show a group's members, their partitions, committed offsets and lag.
    Describe(DescribeArgs),
    /// Move the committed offsets of a group that has no members.
    ResetOffsets(ResetArgs),
    /// Delete groups and their committed offsets.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Group id.
    group: String,
}

#[derive(clap::Args, Debug)]
pub struct ResetArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Group id.
    group: String,
    /// Topic whose offsets to reset.
    #[arg(short = 't', long)]
    topic: String,
    /// Reset only this partition (repeatable; default: every partition of the topic).
    #[arg(short = 'p', long = "partition", value_parser = clap::value_parser!(i32).range(0..))]
    partitions: Vec<i32>,
    #[command(flatten)]
    target: ResetTarget,
    /// Print the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

/// Where `reset-offsets` moves each partition; exactly one is given.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// The log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset: skip everything not yet consumed.
    #[arg(long)]
    to_latest: bool,
    /// This offset, clamped to the partition's log start and end.
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// The first record at or after this time (milliseconds since the epoch), or the log end
    /// when there is none.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(i64).range(0..))]
    to_timestamp: Option<i64>,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Groups to delete.
    #[arg(required = true)]
    groups: Vec<String>,
}

/// A [`ResetTarget`] once clap has checked that exactly one flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
}

impl ResetTarget {
    fn target(&self) -> Target {
        match (self.to_offset, self.to_timestamp) {
            (Some(o), _) => Target::Offset(o),
            (_, Some(ts)) => Target::Timestamp(ts),
            _ if self.to_earliest => Target::Earliest,
            _ => Target::Latest,
        }
    }
}

pub async fn run(c: GroupCommand) -> anyhow::Result<()> {
    match c {
        GroupCommand::List(a) => list(a).await,
        GroupCommand::Describe(a) => describe(a).await,
        GroupCommand::ResetOffsets(a) => reset_offsets(a).await,
        GroupCommand::Delete(a) => delete(a).await,
    }
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let groups = client.list_groups().await.context("list groups")?;
    let ids: Vec<String> = groups.iter().map(|g| g.group_id.clone()).collect();
    let descriptions = client
        .describe_groups(&ids)
        .await
        .context("describe groups")?;
    let mut table = Table::new(["GROUP", "STATE", "PROTOCOL-TYPE", "PROTOCOL", "MEMBERS"]);
    for d in descriptions {
        table.row(vec![
            d.group_id,
            d.state,
            dash_if_empty(d.protocol_type),
            dash_if_empty(d.protocol),
            d.members.len().to_string(),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// One row of the offsets table of `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OffsetRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    member: Option<String>,
}

impl OffsetRow {
    /// How far the group is behind the log end; unknown until it has committed something.
    fn lag(&self) -> Option<i64> {
        Some(self.log_end? - self.committed?)
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.topic.clone(),
            self.partition.to_string(),
            or_dash(self.committed),
            or_dash(self.log_end),
            or_dash(self.lag()),
            self.member.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let group = a.group.as_str();
    let context = || format!("describe group {group:?}");
    let mut client = connect(&a.connect).await?;
    let description = client.describe_group(group).await.with_context(context)?;
    // DescribeGroups knows classic groups only: a KIP-848 group reads as Dead there.
    let consumer = if description.state == "Dead" {
        client
            .describe_consumer_group(group)
            .await
            .with_context(context)?
    } else {
        None
    };
    let committed = client
        .offset_fetch(group, None)
        .await
        .with_context(context)?;
    let committed: Vec<CommittedOffset> = committed
        .into_iter()
        .filter(|c| c.offset.is_some())
        .collect();
    if description.state == "Dead" && consumer.is_none() && committed.is_empty() {
        anyhow::bail!("group {group} does not exist");
    }

    let View {
        summary,
        members,
        owners,
    } = match &consumer {
        Some(cg) => consumer_view(group, cg),
        None => classic_view(group, &description),
    };

    let mut rows: BTreeMap<(String, i32), OffsetRow> = BTreeMap::new();
    let keys: BTreeSet<(String, i32)> = committed
        .iter()
        .map(|c| (c.topic.clone(), c.partition))
        .chain(owners.keys().cloned())
        .collect();
    for (topic, partition) in keys {
        let log_end = log_end_offset(&mut client, &topic, partition)
            .await
            .with_context(context)?;
        let row = OffsetRow {
            committed: committed
                .iter()
                .find(|c| c.topic == topic && c.partition == partition)
                .and_then(|c| c.offset),
            log_end,
            member: owners.get(&(topic.clone(), partition)).cloned(),
            topic: topic.clone(),
            partition,
        };
        rows.insert((topic, partition), row);
    }
    let mut offsets = Table::new([
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "MEMBER",
    ]);
    for row in rows.values() {
        offsets.row(row.cells());
    }

    let mut out = stdout();
    summary.write(&mut out)?;
    writeln!(out, "\nMEMBERS")?;
    members.write(&mut out)?;
    writeln!(out, "\nOFFSETS")?;
    offsets.write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// What `describe` prints of a group besides its offsets, and who owns which partition.
struct View {
    summary: Table,
    members: Table,
    owners: BTreeMap<(String, i32), String>,
}

/// A classic group, from DescribeGroups.
fn classic_view(group: &str, description: &GroupDescription) -> View {
    let is_consumer = description.protocol_type == "consumer";
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut members = Table::new(["MEMBER-ID", "CLIENT-ID", "HOST", "PARTITIONS"]);
    for m in &description.members {
        let assigned = if is_consumer {
            match m.consumer_assignment() {
                Ok(assignment) => {
                    for (topic, partitions) in &assignment {
                        for &p in partitions {
                            owners.insert((topic.clone(), p), m.member_id.clone());
                        }
                    }
                    format_assignment(&assignment)
                }
                Err(e) => {
                    eprintln!(
                        "weir: describe group {group:?}: member {}: unreadable assignment: {e}",
                        m.member_id
                    );
                    "?".into()
                }
            }
        } else {
            format!("({} bytes)", m.assignment.len())
        };
        members.row(vec![
            m.member_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
            assigned,
        ]);
    }
    let mut summary = Table::new(["GROUP", group]);
    summary.row(vec!["STATE".into(), description.state.clone()]);
    summary.row(vec![
        "PROTOCOL-TYPE".into(),
        dash_if_empty(description.protocol_type.clone()),
    ]);
    summary.row(vec![
        "PROTOCOL".into(),
        dash_if_empty(description.protocol.clone()),
    ]);
    summary.row(vec![
        "MEMBERS".into(),
        description.members.len().to_string(),
    ]);
    View {
        summary,
        members,
        owners,
    }
}

/// A KIP-848 consumer group, from ConsumerGroupDescribe: the partitions each member owns
/// now (a partition it is still to receive shows once it has).
fn consumer_view(group: &str, cg: &ConsumerGroupDescription) -> View {
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut members = Table::new(["MEMBER-ID", "CLIENT-ID", "HOST", "EPOCH", "PARTITIONS"]);
    for m in &cg.members {
        for (topic, partitions) in &m.assignment {
            for &p in partitions {
                owners.insert((topic.clone(), p), m.member_id.clone());
            }
        }
        members.row(vec![
            m.member_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
            m.member_epoch.to_string(),
            format_assignment(&m.assignment),
        ]);
    }
    let mut summary = Table::new(["GROUP", group]);
    summary.row(vec!["STATE".into(), cg.state.clone()]);
    // kafka-consumer-groups prints the protocol type "consumer" for both kinds; the group
    // protocol tells them apart.
    summary.row(vec!["PROTOCOL-TYPE".into(), "consumer".into()]);
    summary.row(vec!["GROUP-PROTOCOL".into(), "consumer (KIP-848)".into()]);
    summary.row(vec!["ASSIGNOR".into(), dash_if_empty(cg.assignor.clone())]);
    summary.row(vec!["GROUP-EPOCH".into(), cg.group_epoch.to_string()]);
    summary.row(vec![
        "ASSIGNMENT-EPOCH".into(),
        cg.assignment_epoch.to_string(),
    ]);
    summary.row(vec!["MEMBERS".into(), cg.members.len().to_string()]);
    View {
        summary,
        members,
        owners,
    }
}

/// The log end offset of a partition, or `None` when the topic or partition is gone (a
/// group keeps offsets of deleted topics until they expire).
async fn log_end_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, ClientError> {
    match client
        .list_offsets(topic, partition, OffsetSpec::Latest)
        .await
    {
        Ok(o) => Ok(Some(o.offset)),
        Err(e) if e.code() == Some(codes::UNKNOWN_TOPIC_OR_PARTITION) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn reset_offsets(a: ResetArgs) -> anyhow::Result<()> {
    let group = a.group.as_str();
    let topic = a.topic.as_str();
    let context = || format!("reset offsets of group {group:?}");
    let mut client = connect(&a.connect).await?;

    let description = client.describe_group(group).await.with_context(context)?;
    // A KIP-848 group reads as Dead in DescribeGroups: its members are counted here.
    if description.state == "Dead" {
        if let Some(cg) = client
            .describe_consumer_group(group)
            .await
            .with_context(context)?
        {
            let n = cg.members.len();
            if n > 0 {
                anyhow::bail!(
                    "group {group} is active ({}, {n} member{}); stop its consumers first",
                    cg.state,
                    if n == 1 { "" } else { "s" }
                );
            }
        }
    }
    if !matches!(description.state.as_str(), "Empty" | "Dead") {
        let n = description.members.len();
        anyhow::bail!(
            "group {group} is active ({}, {n} member{}); stop its consumers first",
            description.state,
            if n == 1 { "" } else { "s" }
        );
    }

    let meta = client
        .topic(topic)
        .await
        .with_context(|| format!("reset offsets of group {group:?}: topic {topic:?}"))?;
    let existing: BTreeSet<i32> = meta.partitions.iter().map(|p| p.partition).collect();
    let partitions: BTreeSet<i32> = if a.partitions.is_empty() {
        existing.clone()
    } else {
        a.partitions.iter().copied().collect()
    };
    if let Some(p) = partitions.iter().find(|p| !existing.contains(p)) {
        anyhow::bail!(
            "reset offsets of group {group:?}: topic {topic} has no partition {p} (it has {})",
            existing.len()
        );
    }

    let pairs: Vec<(String, i32)> = partitions.iter().map(|&p| (topic.to_owned(), p)).collect();
    let previous = client
        .offset_fetch(group, Some(&pairs))
        .await
        .with_context(context)?;
    let target = a.target.target();
    let mut new_offsets = Vec::with_capacity(partitions.len());
    for &partition in &partitions {
        let offset = target_offset(&mut client, topic, partition, target)
            .await
            .with_context(context)?;
        new_offsets.push(PartitionOffset {
            topic: topic.to_owned(),
            partition,
            offset,
        });
    }
    if !a.dry_run {
        client
            .offset_commit(group, &new_offsets)
            .await
            .with_context(context)?;
    }

    let mut table = Table::new(["TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"]);
    for o in &new_offsets {
        let before = previous
            .iter()
            .find(|c| c.topic == o.topic && c.partition == o.partition)
            .and_then(|c| c.offset);
        table.row(vec![
            o.topic.clone(),
            o.partition.to_string(),
            or_dash(before),
            o.offset.to_string(),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    if a.dry_run {
        eprintln!("weir: dry run: nothing committed");
    }
    Ok(())
}

/// The offset `target` names for one partition.
async fn target_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    target: Target,
) -> Result<i64, ClientError> {
    async fn offset(
        client: &mut Client,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<i64, ClientError> {
        Ok(client.list_offsets(topic, partition, spec).await?.offset)
    }
    match target {
        Target::Earliest => offset(client, topic, partition, OffsetSpec::Earliest).await,
        Target::Latest => offset(client, topic, partition, OffsetSpec::Latest).await,
        Target::Timestamp(ts) => {
            match offset(client, topic, partition, OffsetSpec::Timestamp(ts)).await? {
                // No record at or after `ts`: Kafka's tool moves to the log end.
                -1 => offset(client, topic, partition, OffsetSpec::Latest).await,
                found => Ok(found),
            }
        }
        Target::Offset(requested) => {
            let earliest = offset(client, topic, partition, OffsetSpec::Earliest).await?;
            let latest = offset(client, topic, partition, OffsetSpec::Latest).await?;
            let clamped = clamp_offset(requested, earliest, latest);
            if clamped != requested {
                eprintln!(
                    "weir: {topic}/{partition}: offset {requested} is outside \
                     [{earliest}, {latest}]; using {clamped}"
                );
            }
            Ok(clamped)
        }
    }
}

/// `requested`, moved into the partition's `[earliest, latest]` range, as Kafka's
/// `kafka-consumer-groups.sh --to-offset` does.
fn clamp_offset(requested: i64, earliest: i64, latest: i64) -> i64 {
    requested.min(latest).max(earliest)
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let results = client
        .delete_groups(&a.groups)
        .await
        .context("delete groups")?;
    let mut out = stdout();
    let mut failures = Vec::new();
    for (group, result) in results {
        match result {
            Ok(()) => writeln!(out, "deleted {group}")?,
            Err(e) => failures.push(delete_failure(&group, e.code(), &e.to_string())),
        }
    }
    out.flush()?;
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// Why deleting `group` failed, with what to do about the common cases.
fn delete_failure(group: &str, code: Option<i16>, error: &str) -> String {
    match code {
        Some(codes::NON_EMPTY_GROUP) => {
            format!("delete group {group:?}: it has members; stop its consumers first ({error})")
        }
        Some(codes::GROUP_ID_NOT_FOUND) => {
            format!("delete group {group:?}: no such group ({error})")
        }
        _ => format!("delete group {group:?}: {error}"),
    }
}

/// "orders:0,1 payments:3" for an assignment by topic; "-" when empty.
fn format_assignment(assignment: &BTreeMap<String, Vec<i32>>) -> String {
    if assignment.is_empty() {
        return "-".into();
    }
    assignment
        .iter()
        .map(|(topic, partitions)| {
            let ps: Vec<String> = partitions.iter().map(i32::to_string).collect();
            format!("{topic}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn or_dash(v: Option<i64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn dash_if_empty(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: GroupCommand,
    }

    fn row(committed: Option<i64>, log_end: Option<i64>) -> OffsetRow {
        OffsetRow {
            topic: "t".into(),
            partition: 0,
            committed,
            log_end,
            member: None,
        }
    }

    #[test]
    fn lag_is_log_end_minus_committed() {
        assert_eq!(row(Some(3), Some(10)).lag(), Some(7));
        assert_eq!(row(Some(10), Some(10)).lag(), Some(0));
        assert_eq!(row(None, Some(10)).lag(), None);
        assert_eq!(row(Some(3), None).lag(), None);
        assert_eq!(
            row(None, Some(10)).cells(),
            vec!["t", "0", "-", "10", "-", "-"]
        );
    }

    #[test]
    fn to_offset_is_clamped_to_the_log() {
        assert_eq!(clamp_offset(5, 2, 10), 5);
        assert_eq!(clamp_offset(0, 2, 10), 2);
        assert_eq!(clamp_offset(11, 2, 10), 10);
        assert_eq!(clamp_offset(0, 0, 0), 0);
    }

    #[test]
    fn assignment_is_listed_by_topic() {
        let mut a = BTreeMap::new();
        a.insert("b".to_owned(), vec![2]);
        a.insert("a".to_owned(), vec![0, 1]);
        assert_eq!(format_assignment(&a), "a:0,1 b:2");
        assert_eq!(format_assignment(&BTreeMap::new()), "-");
    }

    #[test]
    fn reset_needs_exactly_one_target() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                ["group", "reset-offsets", "g", "--topic", "t"]
                    .iter()
                    .chain(args),
            )
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&["--to-earliest", "--to-latest"]).is_err());
        assert!(parse(&["--to-offset", "-1"]).is_err());
        let targets = [
            (&["--to-earliest"][..], Target::Earliest),
            (&["--to-latest"][..], Target::Latest),
            (&["--to-offset", "7"][..], Target::Offset(7)),
            (
                &["--to-timestamp", "1700000000000"][..],
                Target::Timestamp(1_700_000_000_000),
            ),
        ];
        for (args, want) in targets {
            match parse(args).unwrap().command {
                GroupCommand::ResetOffsets(a) => assert_eq!(a.target.target(), want),
                other => panic!("parsed as {other:?}"),
            }
        }
        match parse(&["--to-latest", "-p", "1", "--partition", "3", "--dry-run"])
            .unwrap()
            .command
        {
            GroupCommand::ResetOffsets(a) => {
                assert_eq!(a.partitions, vec![1, 3]);
                assert!(a.dry_run);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn delete_failures_say_what_to_do() {
        assert_eq!(
            delete_failure("g", Some(codes::NON_EMPTY_GROUP), "NON_EMPTY_GROUP (68)"),
            "delete group \"g\": it has members; stop its consumers first (NON_EMPTY_GROUP (68))"
        );
        assert_eq!(
            delete_failure(
                "g",
                Some(codes::GROUP_ID_NOT_FOUND),
                "GROUP_ID_NOT_FOUND (69)"
            ),
            "delete group \"g\": no such group (GROUP_ID_NOT_FOUND (69))"
        );
        assert_eq!(
            delete_failure("g", None, "broker 127.0.0.1:9092"),
            "delete group \"g\": broker 127.0.0.1:9092"
        );
    }
}
