//! `weir produce`: one record per stdin line, batched per partition.

use std::io::BufRead;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use weir_client::{partition_for_key, Client, Compression, ProducerRecord};

use super::common::{connect, parse_key_value};

/// A partition's pending records are sent once they reach this many...
const BATCH_RECORDS: usize = 1000;
/// ...or this many bytes of keys and values...
const BATCH_BYTES: usize = 1024 * 1024;
/// ...or when stdin has been quiet this long, so interactive input is not held back.
const LINGER: Duration = Duration::from_millis(100);

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// Topic to produce to.
    pub topic: String,
    /// Partition to write to (default: hash of the key, or round robin without keys).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Split each line at the first SEP into key and value.
    #[arg(short = 'k', long = "key-delimiter", value_name = "SEP")]
    pub key_delimiter: Option<String>,
    /// Header added to every record, key=value (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_key_value)]
    pub headers: Vec<(String, String)>,
    /// Compression codec for record batches.
    #[arg(short = 'z', long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    /// Acknowledgements to wait for: -1 all in-sync replicas, 1 the leader, 0 none.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i16).range(-1..=1))]
    pub acks: i16,
}

/// Where records without an explicit partition go.
struct Partitioner {
    fixed: Option<i32>,
    partitions: i32,
    next: i32,
}

impl Partitioner {
    fn pick(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        match key {
            Some(k) => partition_for_key(k, self.partitions),
            None => {
                let p = self.next;
                self.next = (self.next + 1) % self.partitions;
                p
            }
        }
    }
}

/// Records waiting to be sent, per partition.
struct Pending {
    records: Vec<ProducerRecord>,
    bytes: usize,
}

struct Producer {
    client: Client,
    topic: String,
    acks: i16,
    compression: Compression,
    pending: Vec<Pending>,
    produced: u64,
}

impl Producer {
    async fn add(&mut self, partition: i32, record: ProducerRecord) -> anyhow::Result<()> {
        let index = usize::try_from(partition).context("negative partition")?;
        if self.pending.len() <= index {
            self.pending.resize_with(index + 1, || Pending {
                records: Vec::new(),
                bytes: 0,
            });
        }
        let size =
            record.key.as_ref().map_or(0, Bytes::len) + record.value.as_ref().map_or(0, Bytes::len);
        let full = {
            let p = &mut self.pending[index];
            p.records.push(record);
            p.bytes += size;
            p.records.len() >= BATCH_RECORDS || p.bytes >= BATCH_BYTES
        };
        if full {
            self.flush(index).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, index: usize) -> anyhow::Result<()> {
        let Some(p) = self.pending.get_mut(index) else {
            return Ok(());
        };
        if p.records.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut p.records);
        p.bytes = 0;
        let partition = i32::try_from(index)?;
        self.client
            .produce(
                &self.topic,
                partition,
                &records,
                self.acks,
                self.compression,
            )
            .await
            .with_context(|| format!("produce to {}/{partition}", self.topic))?;
        self.produced += records.len() as u64;
        Ok(())
    }

    async fn flush_all(&mut self) -> anyhow::Result<()> {
        for index in 0..self.pending.len() {
            self.flush(index).await?;
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        self.pending.iter().any(|p| !p.records.is_empty())
    }
}

/// Splits `line` at the first `sep` into key and value; a line without `sep` has no key.
fn split_key(line: &[u8], sep: &[u8]) -> (Option<Bytes>, Bytes) {
    if !sep.is_empty() {
        if let Some(at) = line.windows(sep.len()).position(|w| w == sep) {
            return (
                Some(Bytes::copy_from_slice(&line[..at])),
                Bytes::copy_from_slice(&line[at + sep.len()..]),
            );
        }
    }
    (None, Bytes::copy_from_slice(line))
}

/// Reads stdin lines on a thread (the runtime has no async stdin) and hands them over.
fn spawn_stdin_reader() -> tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4 * BATCH_RECORDS);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

pub async fn run(a: ProduceArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let partitions = client
        .partition_count(&a.topic)
        .await
        .with_context(|| format!("produce to {:?}", a.topic))?;
    if let Some(p) = a.partition {
        if !(0..partitions).contains(&p) {
            anyhow::bail!(
                "produce to {:?}: partition {p} does not exist (the topic has {partitions})",
                a.topic
            );
        }
    }
    let mut partitioner = Partitioner {
        fixed: a.partition,
        partitions: partitions.max(1),
        next: 0,
    };
    let headers: Vec<(String, Option<Bytes>)> = a
        .headers
        .into_iter()
        .map(|(k, v)| (k, Some(Bytes::from(v))))
        .collect();
    let mut producer = Producer {
        client,
        topic: a.topic,
        acks: a.acks,
        compression: a.compression.into(),
        pending: Vec::new(),
        produced: 0,
    };
    let sep = a.key_delimiter.map(String::into_bytes);
    let mut lines = spawn_stdin_reader();
    loop {
        let line = if producer.has_pending() {
            match tokio::time::timeout(LINGER, lines.recv()).await {
                Ok(line) => line,
                Err(_) => {
                    producer.flush_all().await?;
                    continue;
                }
            }
        } else {
            lines.recv().await
        };
        let Some(line) = line else { break };
        let line = line.context("read stdin")?;
        let (key, value) = match &sep {
            Some(sep) => split_key(&line, sep),
            None => (None, Bytes::from(line)),
        };
        let partition = partitioner.pick(key.as_deref());
        let record = ProducerRecord {
            key,
            value: Some(value),
            headers: headers.clone(),
            timestamp: -1,
        };
        producer.add(partition, record).await?;
    }
    producer.flush_all().await?;
    eprintln!("produced {} records", producer.produced);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_split_at_the_first_separator() {
        assert_eq!(
            split_key(b"k1::v::x", b"::"),
            (Some(Bytes::from_static(b"k1")), Bytes::from_static(b"v::x"))
        );
        assert_eq!(
            split_key(b"no-sep", b":"),
            (None, Bytes::from_static(b"no-sep"))
        );
        assert_eq!(
            split_key(b":v", b":"),
            (Some(Bytes::new()), Bytes::from_static(b"v"))
        );
    }

    #[test]
    fn keyless_records_go_round_robin_and_keys_hash() {
        let mut p = Partitioner {
            fixed: None,
            partitions: 3,
            next: 0,
        };
        let picks: Vec<_> = (0..4).map(|_| p.pick(None)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0]);
        assert_eq!(p.pick(Some(b"21")), partition_for_key(b"21", 3));
        let mut fixed = Partitioner {
            fixed: Some(2),
            partitions: 3,
            next: 0,
        };
        assert_eq!(fixed.pick(Some(b"x")), 2);
    }
}
