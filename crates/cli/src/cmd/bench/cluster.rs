//! `weir bench --cluster N`: what replication costs, measured against a single node in the
//! same run on the same machine.
//!
//! Bench starts one `weir serve` and measures acks=all produce and consume throughput to a
//! topic of replication factor 1, then stops it and starts N brokers on loopback (every one a
//! voter of the metadata quorum, `default.replication.factor` = min(3, N),
//! `min.insync.replicas` = 2) and measures the same scenarios against topics of that factor,
//! producing to the partition's leader; each cluster figure is printed as a ratio of the
//! single-node one. Then the idle cost: CPU seconds per minute of each broker process (from
//! `/proc/<pid>/stat`), idle for a stated window, once for the empty cluster and once holding
//! `--cluster-partitions` partitions × the replication factor (3,000 replicas by default),
//! beside the same partitions on the single node. Nothing is asserted.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use weir_client::Client;

use super::broker::{Broker, Started, WorkDir};
use super::machine::machine_line;
use super::tables::grouped;
use super::{
    consume, cpu_delta, create_topic, delete_topic, process_cpu_seconds, produce, restart,
    BenchArgs, Measured, Scenario, MB,
};

/// Throughput scenarios, each run once on the single node and once on the cluster:
/// (value bytes, producers). One partition: bench produces to its leader.
const SCENARIOS: [(usize, usize); 4] = [(100, 1), (100, 4), (1024, 1), (1024, 4)];
/// Time a broker gets after topic creation (or start) before its idle CPU is read.
const SETTLE: Duration = Duration::from_secs(5);
/// Idle CPU a broker should stay under: 1% of one core.
const IDLE_TARGET_SECONDS_PER_MINUTE: f64 = 0.6;

/// One throughput scenario on both setups.
struct Pair {
    name: String,
    single: Measured,
    cluster: Measured,
}

/// Idle CPU of each broker of one setup.
struct Idle {
    setup: String,
    replicas_per_broker: Vec<usize>,
    window: Duration,
    /// CPU seconds per minute, per broker, in node order.
    per_minute: Vec<f64>,
}

pub(super) fn run(args: &BenchArgs, brokers: usize) -> anyhow::Result<()> {
    if brokers < 2 {
        bail!("--cluster needs at least 2 brokers");
    }
    if args.brokers.is_some() {
        bail!("--cluster starts its own brokers; it does not take --brokers");
    }
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    let rf = brokers.min(3);
    let records = args
        .records
        .unwrap_or(if args.quick { 100_000 } else { 1_000_000 })
        .max(1);
    let idle_window = Duration::from_secs_f64(
        args.idle_seconds
            .unwrap_or(if args.quick { 20.0 } else { 60.0 })
            .max(1.0),
    );
    // Every replica keeps its active segment open.
    let wanted = args.cluster_partitions;
    let fd_limit = restart::open_files_limit();
    let partitions = wanted.min(fd_limit.map_or(wanted, |l| {
        l.saturating_sub(1_000) / restart::FILES_PER_PARTITION
    }));
    if partitions < wanted {
        eprintln!("note: RLIMIT_NOFILE is {fd_limit:?}: measuring {partitions} partitions");
    }
    println!(
        "# weir bench --cluster {brokers}{}\n",
        if args.quick { " --quick" } else { "" }
    );
    println!("{}\n", machine_line());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    eprintln!("single node ...");
    let single = Broker::start(&work_dir.path.join("single"))?;
    let single_result = rt.block_on(async {
        let throughput = throughput(&[&single], records).await?;
        let idle = idle_cpu(&[&single], "1 broker", partitions, 1, idle_window).await?;
        anyhow::Ok((throughput, idle))
    });
    let single_log = single.log().map(Path::to_path_buf);
    drop(single);
    let (single_rows, single_idle) =
        single_result.with_context(|| format!("single node; log: {single_log:?}"))?;

    eprintln!("{brokers} brokers ...");
    let nodes = start_cluster(&work_dir.path.join("cluster"), brokers, rf)?;
    let refs: Vec<&Broker> = nodes.iter().collect();
    let cluster_result = rt.block_on(async {
        wait_formed(&refs).await?;
        let empty = idle_cpu(&refs, &format!("{brokers} brokers"), 0, rf, idle_window).await?;
        let throughput = throughput(&refs, records).await?;
        let full = idle_cpu(
            &refs,
            &format!("{brokers} brokers"),
            partitions,
            rf,
            idle_window,
        )
        .await?;
        anyhow::Ok((empty, throughput, full))
    });
    let logs: Vec<_> = nodes
        .iter()
        .filter_map(|b| b.log())
        .map(Path::to_path_buf)
        .collect();
    drop(nodes);
    let (empty_idle, cluster_rows, full_idle) =
        cluster_result.with_context(|| format!("cluster; logs: {logs:?}"))?;
    for log in logs {
        let _ = std::fs::remove_file(log);
    }
    let _ = std::fs::remove_file(Started::log_path());

    let pairs: Vec<Pair> = single_rows
        .into_iter()
        .zip(cluster_rows)
        .map(|((name, single), (_, cluster))| Pair {
            name,
            single,
            cluster,
        })
        .collect();
    println!(
        "{records} records of 100 B per scenario ({} of 1 KiB), acks=all, 1 partition, \
         produced to its leader; the cluster's topics have replication factor {rf} and \
         min.insync.replicas 2; MB = 10^6 bytes of record values\n",
        (records * 3 / 10).max(1)
    );
    print_pairs(&pairs, brokers);
    println!();
    print_idle(&[single_idle, empty_idle, full_idle]);
    Ok(())
}

/// `n` voters on loopback, each with a data dir and log of its own.
fn start_cluster(dir: &Path, n: usize, rf: usize) -> anyhow::Result<Vec<Broker>> {
    let mut ports = Vec::new();
    for _ in 0..n {
        // Held until all are chosen, so no two nodes get the same port.
        ports.push(StdListener::bind("127.0.0.1:0")?);
    }
    let internal: Vec<u16> = ports
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    let client_ports: Vec<StdListener> = (0..n)
        .map(|_| StdListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()?;
    let client: Vec<u16> = client_ports
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    drop(ports);
    drop(client_ports);
    let voters = internal
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for (i, port) in client.iter().enumerate() {
        let id = i + 1;
        let settings = vec![
            format!("node.id={id}"),
            format!("controller.quorum.voters={voters}"),
            format!("default.replication.factor={rf}"),
            format!("min.insync.replicas={}", rf.min(2)),
        ];
        let log =
            std::env::temp_dir().join(format!("weir-bench-{}-node{id}.log", std::process::id()));
        let started = Started::spawn_logged(&dir.join(format!("node{id}")), *port, &settings, log)?;
        nodes.push(Broker::Started(started));
    }
    for node in &mut nodes {
        node.wait_until_listening()?;
    }
    Ok(nodes)
}

/// Until the first broker's metadata lists every broker and a controller.
async fn wait_formed(nodes: &[&Broker]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = nodes[0].addr();
    loop {
        let listed = match Client::connect(&addr).await {
            Ok(mut client) => client
                .metadata(Some(Vec::new()))
                .await
                .map(|m| (m.brokers.len(), m.controller_id))
                .ok(),
            Err(_) => None,
        };
        if let Some((count, controller)) = listed {
            if count == nodes.len() && controller >= 0 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the cluster did not form within 60 s (last: {listed:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sum of the brokers' CPU seconds, when every one can be read.
fn cpu_of(nodes: &[&Broker]) -> Option<f64> {
    nodes.iter().map(|b| b.cpu_seconds()).sum()
}

/// Every scenario of [`SCENARIOS`] (produce, then consume after the single-producer ones),
/// against fresh topics of the brokers' default replication factor.
async fn throughput(nodes: &[&Broker], records: u64) -> anyhow::Result<Vec<(String, Measured)>> {
    let addr = nodes[0].addr();
    let mut client = Client::connect(&addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let mut rows = Vec::new();
    for (i, (value_bytes, producers)) in SCENARIOS.into_iter().enumerate() {
        let scenario = Scenario {
            value_bytes,
            partitions: 1,
            records: if value_bytes >= 1024 {
                (records * 3 / 10).max(1)
            } else {
                records
            },
            producers,
        };
        let topic = format!("weir-bench-cluster-{}-{i}", std::process::id());
        let leader = create_topic(&mut client, &topic, 1).await?;
        let name = format!("produce {}", scenario.describe());
        eprintln!("  {name} ...");
        let measured = measure(nodes, produce(&leader, &topic, scenario, -1))
            .await
            .with_context(|| name.clone())?;
        rows.push((name, measured));
        if producers == 1 {
            let name = format!("consume {}", scenario.describe());
            eprintln!("  {name} ...");
            let measured = measure(nodes, consume(&leader, &topic, scenario))
                .await
                .with_context(|| name.clone())?;
            rows.push((name, measured));
        }
        delete_topic(&mut client, &topic).await;
    }
    Ok(rows)
}

/// Runs `work`, adding the CPU all brokers and this process spent on it.
async fn measure(
    nodes: &[&Broker],
    work: impl std::future::Future<Output = anyhow::Result<Measured>>,
) -> anyhow::Result<Measured> {
    let brokers_before = cpu_of(nodes);
    let client_before = process_cpu_seconds("self");
    let mut measured = work.await?;
    measured.broker_cpu = cpu_delta(brokers_before, cpu_of(nodes));
    measured.client_cpu = cpu_delta(client_before, process_cpu_seconds("self"));
    Ok(measured)
}

/// Creates `partitions` partitions of replication factor `rf` (none: the setup as it is),
/// waits until each has a leader and a full ISR, lets the brokers settle, then reads their
/// CPU over `window`.
async fn idle_cpu(
    nodes: &[&Broker],
    setup: &str,
    partitions: usize,
    rf: usize,
    window: Duration,
) -> anyhow::Result<Idle> {
    let addr = nodes[0].addr();
    let mut client = Client::connect(&addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let mut replicas = vec![0usize; nodes.len()];
    if partitions > 0 {
        let topic = format!("weir-bench-idle-{}", std::process::id());
        eprintln!("  creating {partitions} partitions × RF {rf} ...");
        let started = Instant::now();
        client
            .create_topic(&topic, i32::try_from(partitions)?, -1, Vec::new())
            .await
            .with_context(|| format!("create {topic}"))?;
        let deadline = started + Duration::from_secs(120);
        loop {
            let meta = client.metadata(Some(vec![topic.clone()])).await?;
            let parts = meta
                .topics
                .iter()
                .find(|t| t.name == topic && t.error_code == 0)
                .map(|t| t.partitions.as_slice())
                .unwrap_or_default();
            let ready = parts.len() == partitions
                && parts.iter().all(|p| p.leader >= 0 && p.isr.len() == rf);
            if ready {
                for p in parts {
                    for r in &p.replicas {
                        if let Some(n) = usize::try_from(*r - 1)
                            .ok()
                            .and_then(|i| replicas.get_mut(i))
                        {
                            *n += 1;
                        }
                    }
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("{topic}: not every partition has a leader and {rf} in-sync replicas after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        eprintln!(
            "  ({partitions} partitions led with full ISRs after {:.1} s)",
            started.elapsed().as_secs_f64()
        );
        if nodes.len() == 1 {
            replicas[0] = partitions;
        }
    }
    drop(client);
    eprintln!(
        "  idle for {:.0} s ...",
        window.as_secs_f64() + SETTLE.as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;
    let before: Vec<Option<f64>> = nodes.iter().map(|b| b.cpu_seconds()).collect();
    let start = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = start.elapsed();
    let per_minute = nodes
        .iter()
        .zip(before)
        .map(|(b, before)| {
            cpu_delta(before, b.cpu_seconds())
                .map(|s| s * 60.0 / elapsed.as_secs_f64())
                .context("read the broker's CPU time from /proc")
        })
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let setup = if partitions == 0 {
        format!("{setup}, no topics")
    } else {
        format!(
            "{setup}, {} partitions × RF {rf}",
            grouped(partitions as f64)
        )
    };
    Ok(Idle {
        setup,
        replicas_per_broker: replicas,
        window: elapsed,
        per_minute,
    })
}

fn print_pairs(pairs: &[Pair], brokers: usize) {
    println!(
        "| scenario | 1 broker: records/s | MB/s | {brokers} brokers: records/s | MB/s | \
         ratio to 1 broker | brokers' CPU s per GB: 1 broker | {brokers} brokers |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in pairs {
        let per_gb = |m: &Measured| {
            m.broker_cpu.map_or("-".to_owned(), |s| {
                format!("{:.1}", s / (m.value_bytes as f64 / 1e9).max(1e-12))
            })
        };
        println!(
            "| {} | {} | {:.1} | {} | {:.1} | {:.2} | {} | {} |",
            p.name,
            grouped(p.single.records_per_second()),
            p.single.bytes_per_second() / MB,
            grouped(p.cluster.records_per_second()),
            p.cluster.bytes_per_second() / MB,
            p.cluster.bytes_per_second() / p.single.bytes_per_second().max(1e-9),
            per_gb(&p.single),
            per_gb(&p.cluster),
        );
    }
}

fn print_idle(rows: &[Idle]) {
    println!(
        "| idle | replicas per broker | window s | CPU s per minute, per broker | max % of a \
         core | target: CPU s per minute |"
    );
    println!("|---|---|---:|---|---:|---:|");
    for r in rows {
        let replicas: Vec<String> = r
            .replicas_per_broker
            .iter()
            .map(|n| n.to_string())
            .collect();
        let cpu: Vec<String> = r.per_minute.iter().map(|s| format!("{s:.2}")).collect();
        let max = r.per_minute.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {} | {:.0} | {} | {:.2} | ≤ {IDLE_TARGET_SECONDS_PER_MINUTE} |",
            r.setup,
            replicas.join(" / "),
            r.window.as_secs_f64(),
            cpu.join(" / "),
            max / 60.0 * 100.0,
        );
    }
}
