//! `weir bench nexmark --dump DIR`: the generator's events as files, for other engines.
//!
//! Events `0..N` of the seeded generator (the very events `weir bench nexmark` appends to its
//! topics, in the same order and encoding) are written as JSON lines to `DIR/person.json`,
//! `DIR/auction.json` and `DIR/bid.json`, one file per source. Another engine (Flink's
//! filesystem source with the `json` format, `bench/nexmark/flink/run.py`) then reads
//! exactly the input Weir read. Each file is in event-time order, as each topic is.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use weir_sql::nexmark::generator::{Generator, GeneratorConfig};
use weir_sql::nexmark::{Counts, TOPICS};

/// Writes events `0..events` of `config`'s run to `dir` (created if missing; the three
/// files are replaced). Returns what was written per source.
pub(super) fn dump(dir: &Path, config: GeneratorConfig, events: u64) -> anyhow::Result<Counts> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::with_capacity(TOPICS.len());
    for topic in TOPICS {
        let path = dir.join(format!("{topic}.json"));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        files.push((path, BufWriter::with_capacity(1 << 20, file)));
    }
    let generator = Generator::new(config);
    let mut counts = Counts::default();
    for n in 0..events {
        let event = generator.event(n);
        let i = TOPICS
            .iter()
            .position(|t| *t == event.topic())
            .context("an event of no known source")?;
        let (path, out) = files.get_mut(i).context("an event of no known source")?;
        writeln!(out, "{}", event.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
        if let Some(c) = counts.0.get_mut(i) {
            *c += 1;
        }
    }
    for (path, out) in files {
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(counts)
}
