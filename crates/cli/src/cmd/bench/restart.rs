//! Scenarios that stop and start the broker: start-up time and memory with many partitions
//! (after a clean stop and after kill -9), recovery time after kill -9 with a large log, and
//! the page-cache dropping the cold-read scenarios need.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use weir_client::{Client, Connection};

use super::{create_topic, produce, Scenario, Started};

/// How the page cache was emptied before a cold read, if it could be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDrop {
    /// `sync; echo 3 > /proc/sys/vm/drop_caches`: the whole machine's cache.
    DropCaches,
    /// posix_fadvise(POSIX_FADV_DONTNEED) on each file (through `dd iflag=nocache count=0`).
    Fadvise,
    NotPossible,
}

impl CacheDrop {
    pub fn describe(self) -> &'static str {
        match self {
            CacheDrop::DropCaches => "drop_caches",
            CacheDrop::Fadvise => "fadvise DONTNEED",
            CacheDrop::NotPossible => "not possible",
        }
    }
}

/// Empties the page cache of `files` (after writing back dirty pages): the whole cache when
/// this process may write /proc/sys/vm/drop_caches, else file by file.
pub fn drop_page_cache(files: &[PathBuf]) -> CacheDrop {
    let _ = Command::new("sync").status();
    if std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok() {
        return CacheDrop::DropCaches;
    }
    let all = files.iter().all(|f| {
        Command::new("dd")
            .arg(format!("if={}", f.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if all && !files.is_empty() {
        CacheDrop::Fadvise
    } else {
        CacheDrop::NotPossible
    }
}

/// Every `*.log` segment file under `dir`'s partition directories.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for part in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(part.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if file.path().extension().is_some_and(|e| e == "log") {
                out.push(file.path());
            }
        }
    }
    out
}

/// One start of the broker.
#[derive(Debug, Clone)]
pub struct StartRow {
    pub name: String,
    /// From spawning the process to its first ApiVersions answer.
    pub start: Duration,
    /// Resident memory right after start.
    pub rss_bytes: Option<u64>,
    /// The start-up time's limit, if there is a physical one (reading the data once).
    pub limit: Option<Duration>,
    /// The target from the issue, for the ratio.
    pub target: Option<Duration>,
}

/// Open files a broker holds per idle partition: its active segment's log (the indexes of
/// the active segment live in memory until it is sealed or closed). A partition with sealed
/// segments holds one more per sealed segment.
pub const FILES_PER_PARTITION: usize = 1;

/// How many of `wanted` partitions (in thousands) fit under an open-file limit, keeping
/// 1,000 descriptors for sockets and the broker's own files.
pub fn partitions_that_fit(wanted: usize, fd_limit: Option<usize>) -> usize {
    let fits = fd_limit.map_or(wanted, |l| {
        (l.saturating_sub(1_000) / FILES_PER_PARTITION) / 1_000 * 1_000
    });
    wanted.min(fits)
}

/// This process's soft limit on open files, from /proc/self/limits.
pub fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Resident set size of process `pid`, from /proc/<pid>/status.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Spawns a broker over `data_dir`; returns it once it answers, and how long that took.
async fn start(data_dir: &Path) -> anyhow::Result<(Started, Duration)> {
    let spawned = Instant::now();
    let mut broker = Started::spawn(data_dir)?;
    let deadline = spawned + Duration::from_secs(600);
    loop {
        if let Some(status) = broker.child.try_wait()? {
            anyhow::bail!(
                "the broker exited with {status}; see {}",
                broker.log.display()
            );
        }
        if Connection::connect_with_timeout(&broker.addr, Duration::from_secs(5))
            .await
            .is_ok()
        {
            return Ok((broker, spawned.elapsed()));
        }
        if Instant::now() > deadline {
            anyhow::bail!("the broker did not answer within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Creates `partitions` partitions (topics of up to 1,000), stops the broker cleanly and
/// restarts it, then kills it with SIGKILL and restarts it again.
pub async fn many_partitions(
    dir: &Path,
    partitions: usize,
    target: Duration,
) -> anyhow::Result<(Vec<StartRow>, Duration)> {
    let (mut broker, _) = start(dir).await?;
    let mut client = Client::connect(&broker.addr).await?;
    let created = Instant::now();
    let mut left = partitions;
    let mut n = 0;
    while left > 0 {
        let count = left.min(1000);
        client
            .create_topic(&format!("many-{n}"), i32::try_from(count)?, -1, Vec::new())
            .await
            .with_context(|| format!("create topic many-{n} with {count} partitions"))?;
        left -= count;
        n += 1;
    }
    let create_time = created.elapsed();
    drop(client);
    broker.terminate()?;

    let mut rows = Vec::new();
    let (mut broker, took) = start(dir).await?;
    rows.push(StartRow {
        name: format!(
            "start, {} partitions, after a clean stop",
            grouped(partitions)
        ),
        start: took,
        rss_bytes: super::rss_after_settling(broker.child.id()).await,
        limit: None,
        target: Some(target),
    });
    broker.kill9();
    let (mut broker, took) = start(dir).await?;
    rows.push(StartRow {
        name: format!("start, {} partitions, after kill -9", grouped(partitions)),
        start: took,
        rss_bytes: super::rss_after_settling(broker.child.id()).await,
        limit: None,
        target: Some(target),
    });
    broker.kill9();
    Ok((rows, create_time))
}

/// Writes `bytes` of 1 KiB records to 8 partitions with acks=1, kills the broker with
/// SIGKILL and measures the restart (which scans and checks every batch of the active
/// segments), with the page cache as the kill left it and, where possible, emptied.
pub async fn recovery(
    dir: &Path,
    bytes: u64,
    read_warm: f64,
    read_cold: f64,
) -> anyhow::Result<(Vec<StartRow>, CacheDrop)> {
    let (mut broker, _) = start(dir).await?;
    let mut client = Client::connect(&broker.addr).await?;
    let topic = "recovery";
    let leader = create_topic(&mut client, topic, 8).await?;
    let scenario = Scenario {
        value_bytes: 1024,
        partitions: 8,
        records: (bytes / 1024).max(1),
        producers: 1,
    };
    produce(&leader, topic, scenario, 1).await?;
    drop(client);
    broker.kill9();
    let data: u64 = segment_files(dir)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let gb = data as f64 / 1e9;
    let mut rows = Vec::new();
    let (mut broker, took) = start(dir).await?;
    rows.push(StartRow {
        name: format!("recovery after kill -9, {gb:.2} GB, page cache warm"),
        start: took,
        rss_bytes: rss_bytes(broker.child.id()),
        limit: Some(Duration::from_secs_f64(data as f64 / read_warm)),
        target: None,
    });
    broker.kill9();
    let method = drop_page_cache(&segment_files(dir));
    if method != CacheDrop::NotPossible {
        let (mut broker, took) = start(dir).await?;
        rows.push(StartRow {
            name: format!(
                "recovery after kill -9, {gb:.2} GB, page cache dropped ({})",
                method.describe()
            ),
            start: took,
            rss_bytes: rss_bytes(broker.child.id()),
            limit: Some(Duration::from_secs_f64(data as f64 / read_cold)),
            target: None,
        });
        broker.kill9();
    }
    Ok((rows, method))
}

fn grouped(n: usize) -> String {
    super::grouped(n as f64)
}
