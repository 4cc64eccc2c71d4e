//! `weir bench`: produce and consume throughput, next to the limits of the machine it runs on.
//!
//! One run measures the physical limits first (sequential write bandwidth of the data
//! directory's filesystem, buffered and with an fdatasync per MiB; loopback TCP bandwidth),
//! then runs each scenario against a broker (its own `weir serve` child unless `--brokers`
//! names one) and prints a markdown table of each figure and its ratio to the limit that
//! bounds it. Nothing is asserted: the numbers are for a person to read.
//!
//! The producer works the way librdkafka does: one connection, one record batch of up to
//! 1000 records (at most 1 MiB) per partition in each Produce request, and up to
//! [`MAX_IN_FLIGHT`] requests outstanding. Batches are encoded once before the clock starts,
//! so produce figures measure the broker and the wire, not this client's encoder; what
//! encoding would cost is measured on its own and shown in the second table. The consumer
//! fetches from offset 0 with the next Fetch sent before it decodes the current answer, and
//! decodes every record to count it.
//!
//! Beyond throughput it measures, each beside its limit or target: consume after the page
//! cache was emptied, end-to-end latency at a fixed rate ([`latency`]), start-up time and
//! memory with 1,000 and 10,000 partitions, and recovery time after kill -9 ([`restart`]),
//! and the broker's CPU per produced batch while 1, 100 and 1,000 idle consumers long-poll
//! other partitions ([`parked`]; `--parked-only` runs just that one).
//!
//! `weir bench --cluster 3` ([`cluster`]) compares 3 brokers with replication factor 3 to one
//! broker in the same run, and measures the idle CPU of 3,000 partition replicas.
//!
//! `weir bench nexmark` ([`nexmark`]) measures the streaming SQL engine instead: the Nexmark
//! queries' events/s per core beside the rate the sources alone read at.

mod broker;
mod cluster;
mod latency;
mod load;
mod machine;
#[cfg(feature = "sql")]
mod nexmark;
#[cfg(feature = "sql")]
mod nexmark_dump;
mod parked;
mod restart;
mod scrape;
mod tables;
mod tls;

use broker::{Broker, Started, WorkDir};
use load::{consume, consume_secured, encode_cost, produce, produce_secured, records};
use machine::{disk_read_bandwidth, disk_write_bandwidth, loopback_bandwidth, machine_line};
use tables::{
    grouped, mb, ms, print_cpu_table, print_latency_table, print_start_table, print_table,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use weir_client::records::{decode_batches, encode_batch, next_offset};
use weir_client::{
    Client, ClientSecurity, Compression, FetchPosition, ProducePipeline, ProducerRecord, RawFetcher,
};

const MIB: usize = 1024 * 1024;
/// Rates are printed in MB/s of 10^6 bytes, as disk and network vendors quote them.
const MB: f64 = 1e6;
/// Produce requests outstanding per connection (librdkafka's default).
const MAX_IN_FLIGHT: usize = 5;
/// Records per batch, per partition, per Produce request...
const BATCH_RECORDS: usize = 1000;
/// ...unless the batch would pass this size (the broker's default `message.max.bytes` is
/// 1 MiB + 12 bytes; a record adds a few bytes of framing to its value).
const BATCH_MAX_BYTES: usize = MIB - 16 * 1024;
/// Fetch answer limit.
const FETCH_MAX_BYTES: usize = 16 * MIB;
/// Smallest per-partition fetch limit.
const PARTITION_MIN_FETCH_BYTES: usize = MIB;
/// Linux reports process CPU time in ticks of 1/100 s (USER_HZ) on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[cfg(feature = "sql")]
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Broker to measure; without it, bench starts its own `weir serve` on a free port and
    /// stops it at the end.
    #[arg(short = 'b', long = "brokers")]
    pub brokers: Option<String>,
    /// Records per 100-byte scenario; 1 KiB scenarios use 3/10 of it [default: 1000000, or
    /// 100000 with --quick].
    #[arg(long)]
    pub records: Option<u64>,
    /// Directory for the disk test and the started broker's data [default: a new directory
    /// under the system temp directory, removed afterwards].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// About a tenth of the work: faster and noisier.
    #[arg(long)]
    pub quick: bool,
    /// Gigabytes (10^9 bytes) written before the kill -9 recovery test; 0 skips it
    /// [default: 5, or 0.25 with --quick].
    #[arg(long, value_name = "GB")]
    pub recovery_gb: Option<f64>,
    /// Seconds of each fixed-rate latency run [default: 10, or 2 with --quick].
    #[arg(long, value_name = "SECONDS")]
    pub latency_seconds: Option<f64>,
    /// Skip the start-up, memory and recovery scenarios (they restart the broker).
    #[arg(long)]
    pub no_restarts: bool,
    /// Run only the scenario of broker CPU per produced batch with idle long-polling
    /// consumers on other partitions.
    #[arg(long)]
    pub parked_only: bool,
    /// Batches produced in each parked-consumer run [default: 5000, or 1000 with --quick].
    #[arg(long)]
    pub parked_batches: Option<u64>,
    /// Process id of the `--brokers` broker, to read its CPU time from /proc (a broker bench
    /// starts itself is measured without it).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Run only the scrape-cost scenario: produce throughput with and without a scraper of
    /// `/metrics` every second (a broker bench starts itself).
    #[arg(long)]
    pub scrape_only: bool,
    /// Run only the TLS comparison: produce and consume over PLAINTEXT and over SSL
    /// listeners of one broker bench starts itself, alternating, and their ratio. Needs
    /// --tls-keystore and --tls-ca.
    #[arg(long)]
    pub tls_only: bool,
    /// PEM certificate chain and key for the SSL listener of the broker bench starts.
    #[arg(long, value_name = "FILE")]
    pub tls_keystore: Option<PathBuf>,
    /// PEM file of the CA that signed --tls-keystore, for bench's clients.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Run only the cluster comparison: acks=all throughput on this many brokers of bench's
    /// own (replication factor min(3, N)) as a ratio of one broker's, and the brokers' idle
    /// CPU holding --cluster-partitions partitions.
    #[arg(long, value_name = "BROKERS")]
    pub cluster: Option<usize>,
    /// Partitions of the cluster's idle-CPU measurement (each replicated min(3, N) times).
    #[arg(long, default_value_t = 1000)]
    pub cluster_partitions: usize,
    /// Seconds of each idle-CPU window of --cluster [default: 60, or 20 with --quick].
    #[arg(long, value_name = "SECONDS")]
    pub idle_seconds: Option<f64>,
}

/// Benchmarks other than the broker's.
#[cfg(feature = "sql")]
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// The Nexmark queries on the streaming SQL engine, in-process: events/s per core
    /// beside the rate the sources alone read at, and end-to-end latency at a fixed rate.
    Nexmark(nexmark::NexmarkArgs),
}

/// Idle long-polling consumers in the parked-fetch scenario.
const PARKED_CONSUMERS: [usize; 3] = [1, 100, 1000];

/// How much work each measurement does.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    disk_bytes: usize,
    loopback_bytes: usize,
    small_records: u64,
    large_records: u64,
    recovery_bytes: u64,
    latency_run: Duration,
}

impl Sizes {
    fn new(args: &BenchArgs) -> Sizes {
        let (disk, loopback, default_records) = if args.quick {
            (64 * MIB, 256 * MIB, 100_000)
        } else {
            (256 * MIB, 1024 * MIB, 1_000_000)
        };
        let small = args.records.unwrap_or(default_records).max(1);
        let (recovery_gb, latency_seconds) = if args.quick { (0.25, 2.0) } else { (5.0, 10.0) };
        Sizes {
            disk_bytes: disk,
            loopback_bytes: loopback,
            small_records: small,
            large_records: (small * 3 / 10).max(1),
            recovery_bytes: (args.recovery_gb.unwrap_or(recovery_gb).max(0.0) * 1e9) as u64,
            latency_run: Duration::from_secs_f64(
                args.latency_seconds.unwrap_or(latency_seconds).max(0.1),
            ),
        }
    }
}

/// The limits each scenario is compared with, in bytes per second.
#[derive(Debug, Clone, Copy)]
struct Limits {
    disk_buffered: f64,
    disk_fdatasync: f64,
    /// Sequential 1 MiB reads of a file in the page cache.
    read_cached: f64,
    /// The same after the cache was dropped, when it could be.
    read_cold: Option<f64>,
    cache_drop: restart::CacheDrop,
    /// Median time of a 4 KiB write plus fdatasync.
    fdatasync_latency: Duration,
    loopback: f64,
}

/// One produce or consume run.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    value_bytes: usize,
    partitions: i32,
    records: u64,
    /// Connections producing at once, each sending its share of the records.
    producers: usize,
}

impl Scenario {
    fn describe(&self) -> String {
        let size = if self.value_bytes >= 1024 {
            format!("{} KiB", self.value_bytes / 1024)
        } else {
            format!("{} B", self.value_bytes)
        };
        let parts = match self.partitions {
            1 => "1 partition".to_owned(),
            n => format!("{n} partitions"),
        };
        match self.producers {
            1 => format!("{size}, {parts}"),
            n => format!("{size}, {parts}, {n} producers"),
        }
    }

    fn records_per_batch(&self) -> usize {
        BATCH_RECORDS
            .min(BATCH_MAX_BYTES / (self.value_bytes + 16))
            .max(1)
    }
}

/// Records and payload bytes moved in some time, and the CPU the two processes used for it.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    records: u64,
    value_bytes: u64,
    elapsed: Duration,
    /// Seconds of CPU used by the broker process, when bench started it.
    broker_cpu: Option<f64>,
    /// Seconds of CPU used by this process.
    client_cpu: Option<f64>,
    /// Seconds this process spent decoding records (consume only).
    decode: Duration,
}

impl Measured {
    fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn bytes_per_second(&self) -> f64 {
        self.value_bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A row of the results table.
struct Row {
    name: String,
    measured: Measured,
    /// The limit this figure is compared with, in bytes per second.
    limit: f64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    #[cfg(feature = "sql")]
    let args = match args.command {
        Some(BenchCommand::Nexmark(a)) => return nexmark::run(a),
        None => args,
    };
    if args.parked_only {
        return run_parked_only(&args);
    }
    if args.tls_only {
        return tls::run(&args);
    }
    if args.scrape_only {
        return run_scrape_only(&args);
    }
    if let Some(brokers) = args.cluster {
        return cluster::run(&args, brokers);
    }
    let sizes = Sizes::new(&args);
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    println!("# weir bench{}\n", if args.quick { " --quick" } else { "" });
    println!("{}\n", machine_line());

    eprintln!(
        "measuring disk bandwidth in {} ...",
        work_dir.path.display()
    );
    // The first pass over memory the process (or, on a VM, the guest) never touched pays for
    // faulting pages in, which is not the page cache's speed: measure the second pass.
    disk_write_bandwidth(&work_dir.path, sizes.disk_bytes, false)?;
    let disk_buffered = disk_write_bandwidth(&work_dir.path, sizes.disk_bytes, false)?;
    let disk_fdatasync = disk_write_bandwidth(&work_dir.path, sizes.disk_bytes, true)?;
    let fdatasync_latency = latency::fdatasync_latency(&work_dir.path, 200)?;
    let (read_cached, read_cold, cache_drop) =
        disk_read_bandwidth(&work_dir.path, sizes.disk_bytes)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    eprintln!("measuring loopback TCP bandwidth ...");
    let loopback = rt.block_on(loopback_bandwidth(sizes.loopback_bytes))?;
    let limits = Limits {
        disk_buffered,
        disk_fdatasync,
        read_cached,
        read_cold,
        cache_drop,
        fdatasync_latency,
        loopback,
    };

    let broker_dir = work_dir.path.join("broker");
    let broker = match &args.brokers {
        Some(addr) => Broker::External(addr.clone(), args.broker_pid),
        None => Broker::start(&broker_dir)?,
    };
    let parked_batches = args
        .parked_batches
        .unwrap_or(if args.quick { 1000 } else { 5000 });
    let result = rt.block_on(async {
        let rows = run_scenarios(&broker, sizes, limits).await?;
        let parked = parked::run(
            &broker.addr(),
            broker.pid(),
            &PARKED_CONSUMERS,
            parked_batches,
        )
        .await?;
        Ok::<_, anyhow::Error>((rows, parked))
    });
    let broker_note = broker.describe();
    let log = broker.log().map(Path::to_path_buf);
    drop(broker);
    let ((rows, cpu_rows, latencies), parked_rows) = match (result, &log) {
        (Err(e), Some(log)) => return Err(e.context(format!("broker log: {}", log.display()))),
        (result, _) => result?,
    };
    if let Some(log) = log {
        // Kept only when something went wrong.
        let _ = std::fs::remove_file(log);
    }

    println!(
        "data dir: {} ({}); MB = 10^6 bytes of record values\n",
        work_dir.path.display(),
        broker_note
    );
    println!(
        "limits: disk write {} MB/s buffered, {} MB/s with fdatasync per MiB ({} MiB); \
         4 KiB write + fdatasync {} ms (median); disk read {} MB/s from page cache, {} \
         after emptying it ({}); loopback TCP {} MB/s ({} MiB, 1 connection)\n",
        mb(limits.disk_buffered),
        mb(limits.disk_fdatasync),
        sizes.disk_bytes / MIB,
        ms(limits.fdatasync_latency),
        mb(limits.read_cached),
        limits
            .read_cold
            .map_or("-".to_owned(), |r| format!("{} MB/s", mb(r))),
        limits.cache_drop.describe(),
        mb(limits.loopback),
        sizes.loopback_bytes / MIB,
    );
    print_table(&rows);
    println!();
    print_latency_table(&latencies, &limits);
    println!();
    print_cpu_table(&rows, &cpu_rows);
    println!();
    parked::print_table(&parked_rows);

    if args.brokers.is_none() && !args.no_restarts {
        let restarts = rt.block_on(run_restarts(&work_dir.path, sizes, limits))?;
        println!();
        print_start_table(&restarts);
    }
    Ok(())
}

/// Only the scrape-cost scenario, against a broker of bench's own.
fn run_scrape_only(args: &BenchArgs) -> anyhow::Result<()> {
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    println!("# weir bench --scrape-only\n");
    println!("{}\n", machine_line());
    let broker = Broker::start(&work_dir.path.join("broker"))?;
    let records = args
        .records
        .unwrap_or(if args.quick { 200_000 } else { 1_000_000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(scrape::run(&broker, records))
}

/// Only the parked-consumer scenario, against `--brokers` or a broker of bench's own.
fn run_parked_only(args: &BenchArgs) -> anyhow::Result<()> {
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    println!("# weir bench --parked-only\n");
    println!("{}\n", machine_line());
    let broker = match &args.brokers {
        Some(addr) => Broker::External(addr.clone(), args.broker_pid),
        None => Broker::start(&work_dir.path.join("broker"))?,
    };
    if broker.pid().is_none() {
        eprintln!("note: without --broker-pid the broker's CPU is not measured");
    }
    let batches = args
        .parked_batches
        .unwrap_or(if args.quick { 1000 } else { 5000 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(parked::run(
        &broker.addr(),
        broker.pid(),
        &PARKED_CONSUMERS,
        batches,
    ))?;
    println!("{}\n", broker.describe());
    parked::print_table(&rows);
    Ok(())
}

/// Start-up, memory and recovery, each on a broker of its own over its own directory.
async fn run_restarts(
    work: &Path,
    sizes: Sizes,
    limits: Limits,
) -> anyhow::Result<Vec<restart::StartRow>> {
    let mut rows = Vec::new();
    // Each idle partition keeps one file open (its active segment's log): measure the counts
    // this process's descriptor limit (inherited by the broker) allows, and say so.
    let fd_limit = restart::open_files_limit();
    for wanted in [1_000, 10_000] {
        let partitions = restart::partitions_that_fit(wanted, fd_limit);
        if partitions < wanted {
            eprintln!(
                "note: {wanted} partitions need about {} open files; RLIMIT_NOFILE is {}: \
                 measuring {partitions}",
                wanted * restart::FILES_PER_PARTITION,
                fd_limit.unwrap_or(0)
            );
        }
        if partitions == 0 {
            continue;
        }
        eprintln!("start-up with {partitions} partitions ...");
        let dir = work.join(format!("partitions-{partitions}"));
        let (mut start_rows, created) =
            restart::many_partitions(&dir, partitions, Duration::from_secs(5)).await?;
        eprintln!(
            "  ({partitions} partitions created in {:.2} s)",
            created.as_secs_f64()
        );
        rows.append(&mut start_rows);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if sizes.recovery_bytes > 0 {
        eprintln!(
            "recovery after kill -9 with {:.2} GB ...",
            sizes.recovery_bytes as f64 / 1e9
        );
        let dir = work.join("recovery");
        let (mut recovery_rows, _) = restart::recovery(
            &dir,
            sizes.recovery_bytes,
            limits.read_cached,
            limits.read_cold.unwrap_or(limits.read_cached),
        )
        .await?;
        rows.append(&mut recovery_rows);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Every restart scenario succeeded: the brokers' shared log holds nothing to read.
    let _ = std::fs::remove_file(Started::log_path());
    Ok(rows)
}

/// RSS of `pid` once it has had half a second to settle after answering its first request.
async fn rss_after_settling(pid: u32) -> Option<u64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    restart::rss_bytes(pid)
}

/// Every scenario in order: produce acks=1 and acks=all to fresh topics, then consume one.
async fn run_scenarios(
    broker: &Broker,
    sizes: Sizes,
    limits: Limits,
) -> anyhow::Result<(Vec<Row>, Vec<Row>, Vec<latency::Latency>)> {
    let addr = broker.addr();
    let mut client = Client::connect(&addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let mut produce_rows = Vec::new();
    let mut consume_rows = Vec::new();
    let mut encode_rows = Vec::new();
    let mut run_id = 0;
    for (value_bytes, records) in [(100, sizes.small_records), (1024, sizes.large_records)] {
        encode_rows.push(encode_cost(value_bytes, records));
        for (partitions, producers) in [(1, 1), (8, 1), (1, 4), (8, 4)] {
            let scenario = Scenario {
                value_bytes,
                partitions,
                records,
                producers,
            };
            let mut consumed_topic = None;
            for (acks, acks_name, limit) in [
                (1, "acks=1", limits.disk_buffered),
                (-1, "acks=all", limits.disk_fdatasync),
            ] {
                run_id += 1;
                let topic = format!("weir-bench-{}-{run_id}", std::process::id());
                let name = format!("produce {}, {acks_name}", scenario.describe());
                eprintln!("{name} ...");
                let leader = create_topic(&mut client, &topic, partitions).await?;
                let measured = broker
                    .measure(produce(&leader, &topic, scenario, acks))
                    .await
                    .with_context(|| name.clone())?;
                produce_rows.push(Row {
                    name,
                    measured,
                    limit,
                });
                match consumed_topic {
                    None if producers == 1 => consumed_topic = Some((topic, leader)),
                    _ => delete_topic(&mut client, &topic).await,
                }
            }
            if let Some((topic, leader)) = consumed_topic {
                let name = format!("consume {}", scenario.describe());
                eprintln!("{name} ...");
                let measured = broker
                    .measure(consume(&leader, &topic, scenario))
                    .await
                    .with_context(|| name.clone())?;
                consume_rows.push(Row {
                    name,
                    measured,
                    limit: limits.loopback,
                });
                // Again, from the disk, when the broker's files can be dropped from the cache.
                if let Some(dir) = broker.data_dir() {
                    let files: Vec<PathBuf> = restart::segment_files(dir)
                        .into_iter()
                        .filter(|f| {
                            f.parent().and_then(Path::file_name).is_some_and(|d| {
                                d.to_string_lossy().starts_with(&format!("{topic}-"))
                            })
                        })
                        .collect();
                    let method = restart::drop_page_cache(&files);
                    if method != restart::CacheDrop::NotPossible {
                        let name = format!(
                            "consume {}, page cache dropped ({})",
                            scenario.describe(),
                            method.describe()
                        );
                        eprintln!("{name} ...");
                        let measured = broker
                            .measure(consume(&leader, &topic, scenario))
                            .await
                            .with_context(|| name.clone())?;
                        consume_rows.push(Row {
                            name,
                            measured,
                            limit: limits.read_cold.unwrap_or(limits.read_cached),
                        });
                    }
                }
                delete_topic(&mut client, &topic).await;
            }
        }
    }
    produce_rows.extend(consume_rows);

    let mut latencies = Vec::new();
    for rate in [10_000, 50_000] {
        run_id += 1;
        let topic = format!("weir-bench-{}-{run_id}", std::process::id());
        eprintln!("end-to-end latency at {rate} records/s ...");
        let leader = create_topic(&mut client, &topic, 1).await?;
        let measured = latency::run(&leader, &topic, rate, sizes.latency_run, 1024)
            .await
            .with_context(|| format!("latency at {rate} records/s"))?;
        latencies.push(measured);
        delete_topic(&mut client, &topic).await;
    }
    Ok((produce_rows, encode_rows, latencies))
}

/// Creates `topic` and returns the address of its partitions' leader.
async fn create_topic(client: &mut Client, topic: &str, partitions: i32) -> anyhow::Result<String> {
    client
        .create_topic(topic, partitions, -1, Vec::new())
        .await
        .with_context(|| format!("create topic {topic}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let meta = client.metadata(Some(vec![topic.to_owned()])).await?;
        let leaders: Vec<i32> = meta
            .topics
            .iter()
            .filter(|t| t.name == topic && t.error_code == 0)
            .flat_map(|t| t.partitions.iter().map(|p| p.leader))
            .collect();
        if leaders.len() == partitions as usize && leaders.iter().all(|&l| l >= 0) {
            let first = leaders[0];
            if leaders.iter().any(|&l| l != first) {
                bail!("{topic}: partitions have different leaders; bench drives one broker");
            }
            let broker = meta
                .brokers
                .iter()
                .find(|b| b.id == first)
                .with_context(|| format!("leader {first} of {topic} is not in the metadata"))?;
            return Ok(broker.addr());
        }
        if Instant::now() > deadline {
            bail!("{topic}: partitions have no leader after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delete_topic(client: &mut Client, topic: &str) {
    if let Err(e) = client.delete_topic(topic).await {
        eprintln!("warning: could not delete {topic}: {e}");
    }
}

/// User plus system CPU seconds of process `pid` ("self" for this one), from /proc.
fn process_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

fn cpu_delta(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}
