//! The debug bundle (docs/design/operability.md §5): one `tar.gz` an operator attaches to a bug
//! report. Served by `/api/debug/bundle` from the running broker; `weir debug bundle` builds
//! the offline part ([`offline`]) from the data directory when the broker does not answer.
//!
//! Secrets never enter it: config values whose key looks like a secret ([`is_secret_key`]) are
//! replaced, and files of the data directory are listed (name and size), never read.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use weir_broker::state::State;

/// The gap between the two `/metrics` snapshots unless the request asks for another.
pub const DEFAULT_GAP: Duration = Duration::from_secs(5);

/// The longest gap a request may ask for (the request holds a connection meanwhile).
pub const MAX_GAP: Duration = Duration::from_secs(60);

/// Data-directory entries listed at most (a broker with 100,000 partitions has ~400,000
/// files; the listing says where it stopped).
const MAX_LISTED: usize = 200_000;

/// What a redacted value reads as.
pub const REDACTED: &str = "[redacted]";

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("writing the archive: {0}")]
    Archive(#[source] std::io::Error),
    #[error("encoding {part}: {source}")]
    Json {
        part: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A config key whose value must not leave the broker: `password`, `secret` or `token`
/// anywhere in it, `jaas` (a JAAS line carries a password), or ending in `key`.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "jaas"]
        .iter()
        .any(|w| k.contains(w))
        || k.ends_with("key")
}

/// `pairs` with the values of secret keys replaced.
pub fn redact<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> serde_json::Map<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let v = if is_secret_key(k) { REDACTED } else { v };
            (k.clone(), Value::String(v.to_string()))
        })
        .collect()
}

/// The archive being written: files under `weir-debug/`, in memory.
pub struct Archive {
    tar: tar::Builder<flate2::write::GzEncoder<Vec<u8>>>,
    mtime: u64,
}

impl Default for Archive {
    fn default() -> Archive {
        Archive::new()
    }
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            tar: tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
            mtime: now().as_secs(),
        }
    }

    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_cksum();
        self.tar
            .append_data(&mut header, format!("weir-debug/{name}"), bytes)
            .map_err(BundleError::Archive)
    }

    pub fn add_json(&mut self, name: &'static str, v: &impl Serialize) -> Result<(), BundleError> {
        let bytes = serde_json::to_vec_pretty(v)
            .map_err(|source| BundleError::Json { part: name, source })?;
        self.add(name, &bytes)
    }

    /// The `tar.gz` bytes.
    pub fn finish(self) -> Result<Vec<u8>, BundleError> {
        let gz = self.tar.into_inner().map_err(BundleError::Archive)?;
        gz.finish().map_err(BundleError::Archive)
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The parts a stopped broker still has: the data directory's listing and topic table, and
/// the machine's facts. `why` says why the broker's own parts are missing.
pub fn offline(data_dir: &Path, why: &str) -> Result<Vec<u8>, BundleError> {
    let mut a = Archive::new();
    a.add_json(
        "manifest.json",
        &manifest(
            "offline",
            Some(why),
            &["topics.json", "data-dir.txt", "system.txt"],
        ),
    )?;
    // MetaStore::open would create meta/ in a directory that is not a broker's.
    let table = if data_dir.join("meta").is_dir() {
        weir_broker::meta::MetaStore::open(data_dir)
            .and_then(|m| m.load_topics())
            .map_err(|e| e.to_string())
    } else {
        Err(format!("{} has no meta/ directory", data_dir.display()))
    };
    let topics = match table {
        Ok(records) => Value::Array(
            records
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "id": t.id.to_string(),
                        "partitions": t.partitions,
                        "configs": redact(&t.configs),
                    })
                })
                .collect(),
        ),
        Err(e) => json!({ "error": e }),
    };
    a.add_json("topics.json", &topics)?;
    a.add("data-dir.txt", listing(data_dir).as_bytes())?;
    a.add("system.txt", system_facts().as_bytes())?;
    a.finish()
}

fn manifest(mode: &str, why: Option<&str>, parts: &[&str]) -> Value {
    json!({
        "weir_version": env!("CARGO_PKG_VERSION"),
        "mode": mode,
        "created_unix_ms": u64::try_from(now().as_millis()).unwrap_or(u64::MAX),
        "note": why,
        "parts": parts,
    })
}

/// The running broker's bundle: everything [`offline`] has, plus the effective config, the
/// groups, two `/metrics` snapshots `gap` apart and the last log lines. Blocking for `gap`.
pub fn online(state: &Arc<State>, gap: Duration) -> Result<Vec<u8>, BundleError> {
    let first = state.metrics.registry.render();
    std::thread::sleep(gap);
    let second = state.metrics.registry.render();
    let mut a = Archive::new();
    let parts = [
        "config.json",
        "topics.json",
        "groups.json",
        "metrics-1.txt",
        "metrics-2.txt",
        "logs.txt",
        "data-dir.txt",
        "system.txt",
    ];
    a.add_json("manifest.json", &manifest("online", None, &parts))?;
    let effective = state.broker_configs.effective();
    a.add_json(
        "config.json",
        &json!({
            "listen": state.config.listen.to_string(),
            "advertise": format!("{}:{}", state.config.advertise.0, state.config.advertise.1),
            "data_dir": state.config.data_dir.display().to_string(),
            "node_id": state.config.node_id,
            "cluster_id": state.cluster_id,
            "settings": redact(&effective.raw),
        }),
    )?;
    a.add_json("topics.json", &topics(state))?;
    a.add_json("groups.json", &groups(state))?;
    a.add("metrics-1.txt", first.as_bytes())?;
    a.add(
        "metrics-2.txt",
        format!("# {} ms after metrics-1.txt\n{second}", gap.as_millis()).as_bytes(),
    )?;
    let mut logs = Vec::new();
    for line in crate::log_ring::global().lines() {
        let _ = writeln!(logs, "{line}");
    }
    a.add("logs.txt", &logs)?;
    a.add("data-dir.txt", listing(&state.config.data_dir).as_bytes())?;
    a.add("system.txt", system_facts().as_bytes())?;
    a.finish()
}

fn topics(state: &State) -> Value {
    Value::Array(
        state
            .topics()
            .iter()
            .map(|t| {
                let partitions: Vec<Value> = t
                    .all_partitions()
                    .iter()
                    .map(|p| {
                        json!({
                            "partition": p.index(),
                            "log_start_offset": p.log_start_offset(),
                            "high_watermark": p.high_watermark(),
                            "log_end_offset": p.log_end_offset(),
                            "size_bytes": p.size_bytes(),
                        })
                    })
                    .collect();
                json!({
                    "name": t.name,
                    "id": t.id.to_string(),
                    "partition_count": t.partition_count(),
                    "partitions": partitions,
                    "configs": redact(&t.configs()),
                })
            })
            .collect(),
    )
}

fn groups(state: &State) -> Value {
    Value::Array(
        state
            .groups
            .stats()
            .into_iter()
            .map(|g| {
                let offsets: Vec<Value> = g
                    .offsets
                    .iter()
                    .map(|(tp, o)| json!({"topic": tp.topic, "partition": tp.partition, "offset": o}))
                    .collect();
                json!({
                    "group_id": g.group_id,
                    "members": g.members,
                    "rebalances": g.rebalances,
                    "committed": offsets,
                    "lag_history": state.lag().history(&g.group_id),
                })
            })
            .collect(),
    )
}

/// `size path` per line, paths relative to `root`, depth first in name order. Files are not
/// opened (the SCRAM credentials file is listed by name only).
fn listing(root: &Path) -> String {
    let mut out = format!("# {}\n", root.display());
    let mut listed = 0usize;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(e) => {
                out.push_str(&format!("# cannot list {}: {e}\n", dir.display()));
                continue;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            if listed >= MAX_LISTED {
                out.push_str(&format!("# stopped after {MAX_LISTED} entries\n"));
                return out;
            }
            listed += 1;
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            match e.metadata() {
                Ok(m) if m.is_dir() => {
                    out.push_str(&format!("{:>12} {rel}/\n", "-"));
                    subdirs.push(path);
                }
                Ok(m) => out.push_str(&format!("{:>12} {rel}\n", m.len())),
                Err(err) => out.push_str(&format!("{:>12} {rel} ({err})\n", "?")),
            }
        }
        // Reversed so that the stack pops them in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    out
}

/// Memory, load, kernel, limits and CPUs of the machine, from `/proc`.
fn system_facts() -> String {
    let mut out = String::new();
    let mut section = |title: &str, body: String| {
        out.push_str(&format!("== {title}\n{}\n", body.trim_end()));
    };
    let read = |path: &str| {
        std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {path}: {e})"))
    };
    section(
        "uname",
        [
            "/proc/sys/kernel/ostype",
            "/proc/sys/kernel/osrelease",
            "/proc/sys/kernel/version",
            "/proc/sys/kernel/hostname",
        ]
        .iter()
        .map(|p| read(p).trim().to_string())
        .collect::<Vec<_>>()
        .join(" "),
    );
    section(
        "cpus",
        std::thread::available_parallelism()
            .map(|n| n.to_string())
            .unwrap_or_else(|e| e.to_string()),
    );
    section("/proc/loadavg", read("/proc/loadavg"));
    section("/proc/meminfo", read("/proc/meminfo"));
    let limits = read("/proc/self/limits");
    section(
        "open file limit",
        limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or("(not found)")
            .to_string(),
    );
    section("/proc/self/status (memory)", {
        read("/proc/self/status")
            .lines()
            .filter(|l| l.starts_with("Vm") || l.starts_with("Threads"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    out
}

#[derive(serde::Deserialize)]
pub(crate) struct BundleQuery {
    /// Milliseconds between the two metrics snapshots (default 5,000, at most 60,000).
    gap_ms: Option<u64>,
}

/// `GET /api/debug/bundle[?gap_ms=N]`: the online bundle as `application/gzip`.
pub(crate) async fn handler(
    axum::extract::State(shared): axum::extract::State<crate::Shared>,
    axum::extract::Query(q): axum::extract::Query<BundleQuery>,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let Some(state) = shared.state.get().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "recovering\n").into_response();
    };
    let gap = q
        .gap_ms
        .map_or(DEFAULT_GAP, Duration::from_millis)
        .min(MAX_GAP);
    match tokio::task::spawn_blocking(move || online(&state, gap)).await {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/gzip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"weir-debug.tar.gz\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "building the debug bundle failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "building the debug bundle panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "ssl.key.password",
            "sasl.jaas.config",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config",
            "weir.console.secret",
            "weir.metrics.token",
            "some.private.key",
            "API_KEY",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "ssl.key.location",
            "log.retention.ms",
            "ssl.keystore.location",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
        let pairs: std::collections::BTreeMap<String, String> = [
            ("a.password".to_string(), "hunter2".to_string()),
            ("a.b".to_string(), "1".to_string()),
        ]
        .into_iter()
        .collect();
        let r = redact(&pairs);
        assert_eq!(r["a.password"], REDACTED);
        assert_eq!(r["a.b"], "1");
    }

    #[test]
    fn offline_bundle_lists_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("meta")).expect("mkdir");
        std::fs::write(
            dir.path().join("meta/scram-credentials.json"),
            "SECRETSTUFF",
        )
        .expect("write");
        let bytes = offline(dir.path(), "broker down").expect("bundle");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut names = Vec::new();
        let mut all = String::new();
        for entry in tar.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            names.push(entry.path().expect("path").display().to_string());
            std::io::Read::read_to_string(&mut entry, &mut all).expect("read");
        }
        assert_eq!(
            names,
            vec![
                "weir-debug/manifest.json",
                "weir-debug/topics.json",
                "weir-debug/data-dir.txt",
                "weir-debug/system.txt"
            ]
        );
        assert!(all.contains("meta/scram-credentials.json"), "{all}");
        assert!(!all.contains("SECRETSTUFF"));
        assert!(all.contains("broker down"));
        assert!(all.contains("MemTotal"), "{all}");
    }
}
