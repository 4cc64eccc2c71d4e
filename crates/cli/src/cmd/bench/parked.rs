//! Broker CPU per produced batch while idle consumers long-poll other partitions.
//!
//! Each idle consumer is a connection with one Fetch parked at the end of an empty partition
//! of another topic (`max_wait_ms` of a minute, re-sent if it ever returns). One producer then
//! sends small batches (10 records of 100 B, acks=1, librdkafka's 5 in flight) to a partition
//! none of them reads. Parked fetches cost nothing until they wake, so a broker that wakes
//! only the fetches of the partition that grew spends the same CPU per batch with 1 or 1,000
//! of them; one that wakes every fetch on every append pays per parked fetch.
//!
//! The broker's CPU is its utime + stime from `/proc/PID/stat` before and after the batches;
//! a broker bench did not start needs `--broker-pid`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use weir_client::records::encode_batch;
use weir_client::{Client, Compression, FetchPosition, ProducePipeline, RawFetcher};

use super::{create_topic, delete_topic, process_cpu_seconds, records, MAX_IN_FLIGHT};

/// Parked fetches answer after this long at most; far longer than a measurement.
const MAX_WAIT_MS: i32 = 60_000;
/// Partitions the idle consumers are spread over.
const IDLE_PARTITIONS: i32 = 100;

/// One measurement: `consumers` parked fetches, `batches` produced.
pub struct ParkedRow {
    pub consumers: usize,
    pub batches: u64,
    pub elapsed: Duration,
    /// Broker CPU seconds for all the batches, when its process is known.
    pub broker_cpu: Option<f64>,
    /// Answers the idle consumers got meanwhile (none expected: nothing reached them).
    pub idle_answers: u64,
}

impl ParkedRow {
    pub fn cpu_per_batch_us(&self) -> Option<f64> {
        self.broker_cpu
            .map(|cpu| cpu * 1e6 / self.batches.max(1) as f64)
    }
}

/// Runs the scenario for each count of idle consumers against the broker at `addr`.
pub async fn run(
    addr: &str,
    broker_pid: Option<u32>,
    counts: &[usize],
    batches: u64,
) -> anyhow::Result<Vec<ParkedRow>> {
    let mut client = Client::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let run = std::process::id();
    let idle_topic = format!("weir-bench-idle-{run}");
    let hot_topic = format!("weir-bench-hot-{run}");
    let idle_leader = create_topic(&mut client, &idle_topic, IDLE_PARTITIONS).await?;
    let hot_leader = create_topic(&mut client, &hot_topic, 1).await?;
    let mut rows = Vec::new();
    for &consumers in counts {
        eprintln!("broker CPU per batch with {consumers} parked fetches ...");
        let row = measure(
            &idle_leader,
            &idle_topic,
            &hot_leader,
            &hot_topic,
            broker_pid,
            consumers,
            batches,
        )
        .await
        .with_context(|| format!("{consumers} parked fetches"))?;
        rows.push(row);
    }
    delete_topic(&mut client, &idle_topic).await;
    delete_topic(&mut client, &hot_topic).await;
    Ok(rows)
}

async fn measure(
    idle_leader: &str,
    idle_topic: &str,
    hot_leader: &str,
    hot_topic: &str,
    broker_pid: Option<u32>,
    consumers: usize,
    batches: u64,
) -> anyhow::Result<ParkedRow> {
    let answers = Arc::new(AtomicU64::new(0));
    let mut parked = tokio::task::JoinSet::new();
    // Opened one after another: a thousand handshakes at once would only test the listen
    // backlog.
    for i in 0..consumers {
        let mut fetcher = RawFetcher::connect(idle_leader, MAX_WAIT_MS, 1 << 20, 1 << 20)
            .await
            .with_context(|| format!("idle consumer {i}"))?;
        let position = FetchPosition {
            topic: idle_topic.to_owned(),
            partition: i32::try_from(i).unwrap_or(0) % IDLE_PARTITIONS,
            offset: 0,
        };
        let answers = answers.clone();
        parked.spawn(async move {
            loop {
                if fetcher.send(std::slice::from_ref(&position)).await.is_err() {
                    return;
                }
                if fetcher.receive().await.is_err() {
                    return;
                }
                answers.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // Every fetch reaches the broker and parks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let batch = encode_batch(&records(10, 100), Compression::None)?;
    let mut producer = ProducePipeline::connect(hot_leader, hot_topic, 1, MAX_IN_FLIGHT).await?;
    // Warm up the producer's connection and the partition before the clock starts.
    producer.send(&[(0, batch.clone())]).await?;
    producer.flush().await?;

    let answers_before = answers.load(Ordering::Relaxed);
    let cpu = || broker_pid.and_then(|pid| process_cpu_seconds(&pid.to_string()));
    let cpu_before = cpu();
    let start = Instant::now();
    for _ in 0..batches {
        producer.send(&[(0, batch.clone())]).await?;
    }
    producer.flush().await?;
    let elapsed = start.elapsed();
    let cpu_after = cpu();
    let idle_answers = answers.load(Ordering::Relaxed) - answers_before;
    parked.abort_all();
    while parked.join_next().await.is_some() {}
    Ok(ParkedRow {
        consumers,
        batches,
        elapsed,
        broker_cpu: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        idle_answers,
    })
}

/// Prints the rows as a markdown table.
pub fn print_table(rows: &[ParkedRow]) {
    println!("| idle long-polling consumers | batches | batches/s | broker CPU per batch | idle answers |");
    println!("|---:|---:|---:|---:|---:|");
    for r in rows {
        let rate = r.batches as f64 / r.elapsed.as_secs_f64().max(1e-9);
        let cpu = r
            .cpu_per_batch_us()
            .map_or("-".to_owned(), |us| format!("{us:.1} µs"));
        println!(
            "| {} | {} | {rate:.0} | {cpu} | {} |",
            r.consumers, r.batches, r.idle_answers
        );
    }
}
