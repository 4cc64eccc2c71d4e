//! End-to-end latency at a fixed rate: a producer sends 1 KiB records with acks=all at a set
//! rate while a consumer long-polls the same partition; each record carries the instant its
//! batch was handed to the producer, and the consumer notes when the record reached it.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use weir_client::records::{decode_batches, encode_batch};
use weir_client::{Compression, FetchPosition, ProducePipeline, ProducerRecord, RawFetcher};

use super::MAX_IN_FLIGHT;

/// How often the producer sends what has come due: like `linger.ms=1`.
const TICK: Duration = Duration::from_millis(1);
/// The consumer's `fetch.max.wait.ms`; `fetch.min.bytes` is 1, so an append answers at once.
const FETCH_MAX_WAIT_MS: i32 = 100;

/// Latency percentiles of one fixed-rate run.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub target_rate: u64,
    pub achieved_rate: f64,
    pub records: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

/// Produces `rate` records/s of `value_bytes` each to partition 0 of `topic` with acks=all
/// for `duration`, and measures when each reaches a consumer.
pub async fn run(
    leader: &str,
    topic: &str,
    rate: u64,
    duration: Duration,
    value_bytes: usize,
) -> anyhow::Result<Latency> {
    let origin = Instant::now();
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let mut fetcher = RawFetcher::connect(leader, FETCH_MAX_WAIT_MS, 16 << 20, 4 << 20).await?;
    let topic_name = topic.to_owned();
    let consumer = tokio::spawn(async move {
        let mut position = FetchPosition {
            topic: topic_name,
            partition: 0,
            offset: 0,
        };
        let mut latencies: Vec<u64> = Vec::with_capacity(total as usize);
        while (latencies.len() as u64) < total {
            fetcher.send(std::slice::from_ref(&position)).await?;
            let answer = fetcher.receive().await?;
            let arrived = origin.elapsed().as_nanos() as u64;
            for data in answer {
                let decoded = decode_batches(data.records, data.partition, position.offset)?;
                for r in &decoded.records {
                    let sent = r
                        .value
                        .as_ref()
                        .and_then(|v| v.get(..8))
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| anyhow::anyhow!("record without a send time"))?;
                    latencies.push(arrived.saturating_sub(sent));
                    position.offset = r.offset + 1;
                }
            }
        }
        anyhow::Ok(latencies)
    });

    let filler = vec![b'x'; value_bytes.saturating_sub(8)];
    let mut pipeline = ProducePipeline::connect(leader, topic, -1, MAX_IN_FLIGHT).await?;
    let max_batch = (super::BATCH_MAX_BYTES / (value_bytes + 16)).max(1) as u64;
    let mut tick = tokio::time::interval(TICK);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        // A producer that fell behind catches up in batches the broker accepts.
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64)
            .min(total)
            .min(sent + max_batch);
        if due <= sent {
            continue;
        }
        let stamp = origin.elapsed().as_nanos() as u64;
        let mut value = BytesMut::with_capacity(value_bytes.max(8));
        value.put_u64(stamp);
        value.extend_from_slice(&filler);
        let value: Bytes = value.freeze();
        let records: Vec<ProducerRecord> = (sent..due)
            .map(|_| ProducerRecord {
                value: Some(value.clone()),
                timestamp: -1,
                ..ProducerRecord::default()
            })
            .collect();
        let batch = encode_batch(&records, Compression::None)?;
        pipeline.send(&[(0, batch)]).await?;
        sent = due;
    }
    pipeline.flush().await?;
    let elapsed = start.elapsed();
    let mut latencies = tokio::time::timeout(Duration::from_secs(30), consumer)
        .await
        .map_err(|_| anyhow::anyhow!("the consumer did not see every record within 30 s"))???;
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_nanos(latencies.get(i).copied().unwrap_or(0))
    };
    Ok(Latency {
        target_rate: rate,
        achieved_rate: sent as f64 / elapsed.as_secs_f64(),
        records: latencies.len() as u64,
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
    })
}

/// Latency of a 4 KiB write followed by fdatasync in `dir`: the floor under an acks=all
/// answer (median of `rounds`).
pub fn fdatasync_latency(dir: &std::path::Path, rounds: usize) -> anyhow::Result<Duration> {
    use std::io::Write;
    let path = dir.join(".weir-bench-fsync.tmp");
    let mut file = std::fs::File::create(&path)?;
    let block = vec![0x42u8; 4096];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(start.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path)?;
    times.sort_unstable();
    Ok(times.get(times.len() / 2).copied().unwrap_or_default())
}
