//! `weir debug verify`: an offline consistency check of a data directory (the broker must
//! not be running on it). Checks every partition log the topic table names and the internal
//! logs under `meta/` with `weir_storage::verify`; exits non-zero on any inconsistency.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use weir_broker::meta::MetaStore;
use weir_storage::verify::{self, LogVerification, Mode};

#[derive(clap::Subcommand, Debug)]
pub enum DebugCommand {
    /// Check every log of a stopped broker's data directory: batch CRCs, contiguous offsets
    /// across segments, index entries on batch boundaries. After a crash, a torn tail of an
    /// active segment (which recovery truncates) is reported but allowed.
    Verify(VerifyArgs),
    /// Write one archive for a bug report: the running broker's effective config (secrets
    /// redacted), topics, groups, two /metrics snapshots, recent logs, the data directory's
    /// listing and system facts; the offline part alone when the broker does not answer.
    Bundle(super::debug_bundle::BundleArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The broker's data directory.
    #[arg(long, default_value = "./weir-data")]
    pub data_dir: PathBuf,
    /// Allow no damage at all, as after a clean shutdown. Without it the mode follows the
    /// clean-shutdown marker: present means strict, absent means "after a crash".
    #[arg(long)]
    pub strict: bool,
    /// Print every note (damage recovery repairs), not just problems.
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(c: DebugCommand) -> anyhow::Result<()> {
    match c {
        DebugCommand::Verify(args) => verify_data_dir(&args),
        DebugCommand::Bundle(args) => super::debug_bundle::run(&args),
    }
}

fn verify_data_dir(args: &VerifyArgs) -> anyhow::Result<()> {
    let data = &args.data_dir;
    let meta = data.join("meta");
    if !meta.is_dir() {
        bail!("{} is not a Weir data directory (no meta/)", data.display());
    }
    let clean_marker = meta.join("clean-shutdown").exists();
    let mode = if args.strict || clean_marker {
        Mode::Clean
    } else {
        Mode::AfterCrash
    };
    let topics = MetaStore::open(data)
        .and_then(|m| m.load_topics())
        .context("read the topic table")?;

    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    let mut known = BTreeSet::new();
    for t in &topics {
        for p in 0..t.partitions {
            let name = format!("{}-{p}", t.name);
            known.insert(name.clone());
            dirs.push((name.clone(), data.join(name)));
        }
    }
    for internal in sorted_subdirs(&meta)? {
        // The metadata quorum's snapshots are JSON files, not a log (cluster mode).
        if internal == weir_controller::SNAPSHOT_DIR {
            continue;
        }
        let name = format!("meta/{internal}");
        dirs.push((name, meta.join(internal)));
    }

    let mut out = std::io::stdout().lock();
    let mut problems = 0usize;
    let mut tails = 0usize;
    for (name, dir) in &dirs {
        if !dir.is_dir() {
            problems += 1;
            writeln!(
                out,
                "FAIL  {name}: the topic table names it but its directory is missing"
            )?;
            continue;
        }
        let v = verify::verify_log_dir(dir, mode).with_context(|| format!("verify {name}"))?;
        problems += v.problems.len();
        tails += usize::from(v.unclean_tail.is_some());
        print_log(&mut out, name, &v, args.verbose)?;
    }
    let mut orphans = 0;
    for d in sorted_subdirs(data)? {
        if d != "meta" && !known.contains(&d) {
            orphans += 1;
            writeln!(
                out,
                "NOTE  {d}: not in the topic table (a deleted topic; removed at next start)"
            )?;
        }
    }
    let mode_name = match mode {
        Mode::Clean => "strict",
        Mode::AfterCrash => "after-crash",
    };
    writeln!(
        out,
        "verified {} logs ({mode_name}): {problems} problems, {tails} unclean tails, {orphans} orphan directories",
        dirs.len()
    )?;
    out.flush()?;
    if problems > 0 {
        bail!("{problems} inconsistencies in {}", data.display());
    }
    Ok(())
}

fn print_log(
    out: &mut impl Write,
    name: &str,
    v: &LogVerification,
    verbose: bool,
) -> std::io::Result<()> {
    let status = if !v.problems.is_empty() {
        "FAIL"
    } else if v.unclean_tail.is_some() {
        "TAIL"
    } else {
        "OK"
    };
    writeln!(
        out,
        "{status:<5} {name}: segments={} batches={} bytes={} start={} end={}",
        v.segments, v.batches, v.bytes, v.log_start, v.log_end
    )?;
    if let Some(t) = &v.unclean_tail {
        writeln!(
            out,
            "      unclean tail: {} bytes at byte {} of {} ({}); recovery truncates it",
            t.bytes,
            t.position,
            t.segment.display(),
            t.reason
        )?;
    }
    for p in &v.problems {
        writeln!(out, "      problem: {p}")?;
    }
    if verbose {
        for n in &v.notes {
            writeln!(out, "      note: {n}")?;
        }
    }
    Ok(())
}

fn sorted_subdirs(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}
