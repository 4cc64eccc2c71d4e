//! The limits of the machine bench runs on: disk write and read bandwidth, loopback TCP
//! bandwidth, and a line naming the CPU.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{restart, MIB};

/// Sequential write bandwidth of the filesystem holding `dir`, in bytes per second: `total`
/// bytes in 1 MiB writes, either left to the page cache or each followed by fdatasync.
pub(super) fn disk_write_bandwidth(
    dir: &Path,
    total: usize,
    fdatasync_each: bool,
) -> anyhow::Result<f64> {
    let path = dir.join(".weir-bench-disk.tmp");
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let mut file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let start = Instant::now();
    for _ in 0..total / MIB {
        file.write_all(&chunk)?;
        if fdatasync_each {
            file.sync_data()?;
        }
    }
    let elapsed = start.elapsed();
    // Off the clock: leave no dirty pages behind to slow the next measurement.
    file.sync_all()?;
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Sequential read bandwidth of a `total`-byte file in `dir`, in bytes per second, in 1 MiB
/// reads: from the page cache (second pass), and after emptying the cache, if that works.
pub(super) fn disk_read_bandwidth(
    dir: &Path,
    total: usize,
) -> anyhow::Result<(f64, Option<f64>, restart::CacheDrop)> {
    use std::io::Read;
    let path = dir.join(".weir-bench-read.tmp");
    {
        let chunk: Vec<u8> = (0..MIB).map(|i| (i % 241) as u8).collect();
        let mut file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
        for _ in 0..total / MIB {
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
    }
    let read_all = || -> anyhow::Result<f64> {
        let mut file = File::open(&path)?;
        let mut buf = vec![0u8; MIB];
        let mut read = 0usize;
        let start = Instant::now();
        loop {
            match file.read(&mut buf)? {
                0 => break,
                n => read += n,
            }
        }
        Ok(read as f64 / start.elapsed().as_secs_f64())
    };
    read_all()?;
    let cached = read_all()?;
    let method = restart::drop_page_cache(std::slice::from_ref(&path));
    let cold = match method {
        restart::CacheDrop::NotPossible => None,
        _ => Some(read_all()?),
    };
    std::fs::remove_file(&path)?;
    Ok((cached, cold, method))
}

/// Loopback TCP bandwidth in bytes per second: one connection to a sink that reads and
/// discards, `total` bytes in 1 MiB writes.
pub(super) async fn loopback_bandwidth(total: usize) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sink = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; MIB];
        let mut received = 0usize;
        loop {
            match stream.read(&mut buf).await? {
                0 => return Ok::<_, std::io::Error>(received),
                n => received += n,
            }
        }
    });
    let mut stream = TcpStream::connect(addr).await?;
    let chunk = vec![0x5au8; MIB];
    let start = Instant::now();
    for _ in 0..total / MIB {
        stream.write_all(&chunk).await?;
    }
    stream.shutdown().await?;
    let received = sink.await??;
    let elapsed = start.elapsed();
    Ok(received as f64 / elapsed.as_secs_f64())
}

/// "machine: 2 × AMD EPYC (nproc 2)" from the scheduler and /proc/cpuinfo.
pub(super) fn machine_line() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("machine: nproc {nproc}, {model}")
}
