//! `weir bench nexmark`: the Nexmark queries on Weir's streaming SQL, in-process.
//!
//! A broker state is opened on a work directory (no listener) and the seeded generator's
//! events are appended to `person`, `auction` and `bid` before any clock starts. Then, for
//! each source, a view that reads and decodes every record and keeps none (`SELECT * FROM
//! src WHERE <first column> IS NULL`) measures the limit: what the source alone costs. Each
//! query's view is then created, timed from CREATE until its pipeline has committed every
//! input record (the results are then visible read_committed; the last checkpoint interval
//! is part of the time), and dropped. Pipelines run on the SQL engine's one thread
//! (`weir.sql.threads` = 1, `--threads` sets it: a pipeline's source stage then decodes in
//! parallel with its operators), so events/s is per core at the default; the process's CPU
//! seconds are printed
//! beside it, and the rows the view wrote (inserts and retractions: a first look at where
//! the time went) and the state it held at the end. With `--rate`, each query's end-to-end
//! latency follows: events appended at that rate, in batches every 10 ms, each timed from
//! its append until the epoch that consumed it committed. Commits are noted by a thread of their own ([`CommitSampler`]), not
//! by the appending loop: a loop that falls behind its schedule (a slow fsync on a loaded
//! disk) appends back to back while catching up and noticed commits seconds late, which was
//! most of the 4-11 s tails first reported (docs/BENCHMARKS.md). With `--dump DIR` the
//! generator's events are written to files instead ([`super::nexmark_dump`]), for running
//! the same input through another engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use weir_broker::state::State;
use weir_sql::engine::{Engine, Session};
use weir_sql::nexmark::generator::GeneratorConfig;
use weir_sql::nexmark::{load, select_of, sources_of, Counts, QUERIES, SOURCES, TOPICS};
use weir_sql::parser::parse;
use weir_sql::SqlConfig;

use super::broker::WorkDir;
use super::machine::machine_line;
use super::{cpu_delta, process_cpu_seconds};

#[derive(clap::Args, Debug)]
pub struct NexmarkArgs {
    /// Events generated (persons, auctions and bids, 1 : 3 : 46).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Queries to run (repeatable: `--query q0 --query q5`) [default: all].
    #[arg(long = "query")]
    pub queries: Vec<String>,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events per second for the latency runs; 0 skips them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds of each latency run.
    #[arg(long, default_value_t = 10.0)]
    pub latency_seconds: f64,
    /// `weir.sql.pipeline.memory.max.bytes` of the pipelines, in MiB (regular joins and
    /// per-key aggregates keep state for every key they have seen).
    #[arg(long, default_value_t = 4096)]
    pub memory_max_mib: usize,
    /// `weir.sql.checkpoint.interval.ms` of the pipelines.
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_ms: usize,
    /// `weir.sql.threads`: worker threads of the SQL engine's runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// `SET streaming.state_ttl` before the queries (event time, e.g. `'10 seconds'`):
    /// per-key state without a time bound (q17, q18, q20) is dropped once idle that long,
    /// so those results may differ from the batch query [default: no TTL].
    #[arg(long)]
    pub state_ttl: Option<String>,
    /// Directory for the broker's data [default: a new directory under the system temp
    /// directory, removed afterwards].
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Write the events as JSON lines to DIR/person.json, auction.json and bid.json (the
    /// records the bench would append, same seed and order) and exit: the input for
    /// another engine (`bench/nexmark/flink/run.py`).
    #[arg(long, value_name = "DIR")]
    pub dump: Option<std::path::PathBuf>,
    /// Create each query's view with `EMIT ON WINDOW CLOSE` (windows emit once, when the
    /// watermark closes them, as Flink's window aggregates do); a query it does not apply to
    /// is refused and listed.
    #[arg(long)]
    pub emit_on_window_close: bool,
    /// Plan HOP aggregates as the union of their windows, a row per window, instead of in
    /// panes of the slide (`weir.sql.hop.panes = false`): the before of an A/B in one binary.
    #[arg(long)]
    pub no_hop_panes: bool,
    /// Plan each aggregate of a query apart, even where two compute the same groups of the
    /// same input (`weir.sql.shared.aggregates = false`; q5 counts its windows twice then).
    #[arg(long)]
    pub no_shared_aggregates: bool,
}

/// How long one view may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(3600);

pub fn run(args: NexmarkArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.dump {
        let generator = GeneratorConfig {
            seed: args.seed,
            ..GeneratorConfig::default()
        };
        let started = Instant::now();
        let counts = super::nexmark_dump::dump(dir, generator, args.events)?;
        println!(
            "wrote {} events ({} persons, {} auctions, {} bids; seed {}) to {} in {:.1} s",
            counts.total(),
            counts.0[0],
            counts.0[1],
            counts.0[2],
            args.seed,
            dir.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let queries: Vec<(&str, &str)> = QUERIES
        .iter()
        .filter(|(n, _)| args.queries.is_empty() || args.queries.iter().any(|q| q == n))
        .copied()
        .collect();
    if queries.is_empty() {
        let known: Vec<&str> = QUERIES.iter().map(|(n, _)| *n).collect();
        bail!("no such query; the queries are {}", known.join(", "));
    }
    let work_dir = WorkDir::new(args.data_dir.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(bench(&args, &queries, &work_dir.path))
}

async fn bench(
    args: &NexmarkArgs,
    queries: &[(&str, &str)],
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let (config, _) = weir_broker::BrokerConfig::from_pairs(
        "127.0.0.1:0".parse()?,
        None,
        dir.to_path_buf(),
        BTreeMap::new(),
    )?;
    let state = Arc::new(State::open(config).context("open the broker state")?);
    state.txns.recover(&state).context("transaction recovery")?;
    println!("# weir bench nexmark --events {}\n", args.events);
    println!("{}\n", machine_line());
    let generator = GeneratorConfig {
        seed: args.seed,
        ..GeneratorConfig::default()
    };
    eprintln!("generating {} events ...", args.events);
    let started = Instant::now();
    let counts = load(&state, generator, 0, args.events).await?;
    println!(
        "generated and appended {} events ({} persons, {} auctions, {} bids) in {:.1} s, \
         before any clock started; seed {}; engine threads {}, checkpoint every {} ms, \
         memory budget {} MiB\n",
        counts.total(),
        counts.0[0],
        counts.0[1],
        counts.0[2],
        started.elapsed().as_secs_f64(),
        args.seed,
        args.threads,
        args.checkpoint_ms,
        args.memory_max_mib
    );
    let engine = Engine::start(
        state.clone(),
        SqlConfig {
            checkpoint_interval_ms: args.checkpoint_ms,
            threads: args.threads,
            pipeline_memory_max_bytes: args.memory_max_mib << 20,
            hop_panes: !args.no_hop_panes,
            shared_aggregates: !args.no_shared_aggregates,
            ..SqlConfig::default()
        },
    )
    .await?;
    let s = engine.session();
    run_sql(&s, SOURCES).await?;
    if let Some(ttl) = &args.state_ttl {
        println!("state TTL: {ttl} of event time (SET streaming.state_ttl)\n");
        run_sql(
            &s,
            &format!("SET streaming.state_ttl = '{}'", ttl.replace('\'', "")),
        )
        .await?;
    }

    if args.emit_on_window_close {
        println!("every view EMIT ON WINDOW CLOSE\n");
    }
    if args.no_hop_panes {
        println!("HOP aggregates as the union of their windows (weir.sql.hop.panes = false)\n");
    }
    if args.no_shared_aggregates {
        println!("every aggregate planned apart (weir.sql.shared.aggregates = false)\n");
    }

    // The limit: each source read and decoded, nothing kept.
    let mut read_seconds: BTreeMap<&str, f64> = BTreeMap::new();
    let mut read_cpu: BTreeMap<&str, Option<f64>> = BTreeMap::new();
    for (topic, first) in [("person", "id"), ("auction", "id"), ("bid", "auction")] {
        let view = format!("nexmark_read_{topic}");
        let sql = format!(
            "CREATE MATERIALIZED VIEW {view} AS SELECT * FROM {topic} WHERE {first} IS NULL"
        );
        let t = timed(&engine, &s, &view, &sql, &[topic], &counts).await?;
        read_seconds.insert(topic, t.seconds);
        read_cpu.insert(topic, t.cpu);
        run_sql(&s, &format!("DROP MATERIALIZED VIEW {view}")).await?;
    }
    println!("| query | input events | seconds | events/s | CPU s | events per CPU-second | source alone, events/s | of the source's rate | rows out | state MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (topic, secs) in &read_seconds {
        let n = counts.of(topic);
        let cpu = read_cpu.get(topic).copied().flatten();
        println!(
            "| read {topic} (limit) | {n} | {secs:.2} | {:.0} | {} | {} | | | | |",
            n as f64 / secs.max(1e-9),
            cpu.map_or(String::new(), |c| format!("{c:.2}")),
            cpu.map_or(String::new(), |c| format!("{:.0}", n as f64 / c.max(1e-9)))
        );
    }
    let mut refused = Vec::new();
    for (name, sql) in queries {
        let (view, query) = select_of(sql)?;
        let topics = sources_of(&s, &query).await?;
        let create = if args.emit_on_window_close {
            format!(
                "{} EMIT ON WINDOW CLOSE;",
                sql.trim_end().trim_end_matches(';')
            )
        } else {
            sql.to_string()
        };
        match timed(&engine, &s, &view, &create, &topics, &counts).await {
            Ok(t) => {
                let limit_secs: f64 = topics.iter().filter_map(|t| read_seconds.get(t)).sum();
                let rate = t.events as f64 / t.seconds.max(1e-9);
                let limit = t.events as f64 / limit_secs.max(1e-9);
                let cpu = t.cpu.map_or(String::new(), |c| format!("{c:.2}"));
                let per_cpu = t.cpu.map_or(String::new(), |c| {
                    format!("{:.0}", t.events as f64 / c.max(1e-9))
                });
                println!(
                    "| {name} | {} | {:.2} | {rate:.0} | {cpu} | {per_cpu} | {limit:.0} | {:.0} % | {} | {:.1} |",
                    t.events,
                    t.seconds,
                    100.0 * rate / limit.max(1e-9),
                    t.rows_out,
                    t.state_bytes as f64 / (1u64 << 20) as f64
                );
                run_sql(&s, &format!("DROP MATERIALIZED VIEW {view}")).await?;
            }
            Err(e) => refused.push((name, e)),
        }
    }
    for (name, e) in &refused {
        println!("\n{name}: not run: {e:#}");
    }
    if args.rate > 0 {
        latency_runs(args, queries, &engine, &s, &state, generator).await?;
    }
    engine.stop().await;
    drop(s);
    drop(engine);
    state.close()?;
    Ok(())
}

async fn run_sql(s: &Session, sql: &str) -> anyhow::Result<()> {
    for statement in parse(sql)? {
        s.execute(statement).await?;
    }
    Ok(())
}

struct Timed {
    events: u64,
    seconds: f64,
    cpu: Option<f64>,
    /// Rows the view's pipeline wrote (inserts and retractions), a first look at where the
    /// time went: an updating operator may write many rows per input event.
    rows_out: u64,
    /// Operator state held at the last commit.
    state_bytes: usize,
}

/// Creates `view` with `sql` and waits until its pipeline committed every record of
/// `topics`; its time and the process's CPU seconds meanwhile.
async fn timed(
    engine: &Engine,
    s: &Session,
    view: &str,
    sql: &str,
    topics: &[&str],
    counts: &Counts,
) -> anyhow::Result<Timed> {
    let ends = ends(engine, topics);
    let cpu_before = process_cpu_seconds("self");
    let started = Instant::now();
    run_sql(s, sql).await?;
    wait_committed(engine, view, &ends, started + TIMEOUT).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_delta(cpu_before, process_cpu_seconds("self"));
    let progress = engine
        .pipeline_reports()
        .into_iter()
        .find(|r| r.name == view)
        .and_then(|r| r.progress);
    Ok(Timed {
        events: topics.iter().map(|t| counts.of(t)).sum(),
        seconds,
        cpu,
        rows_out: progress.as_ref().map_or(0, |p| p.records_out),
        state_bytes: progress.as_ref().map_or(0, |p| p.state_bytes),
    })
}

/// Each topic's partition 0 and its end offset now.
fn ends(engine: &Engine, topics: &[&str]) -> Vec<((String, i32), i64)> {
    topics
        .iter()
        .map(|t| {
            let end = engine
                .state()
                .topic(t)
                .and_then(|t| t.partition(0))
                .map_or(0, |p| p.high_watermark());
            ((t.to_string(), 0), end)
        })
        .collect()
}

/// The offsets `view`'s pipeline has committed, or its failure.
fn committed(
    engine: &Engine,
    view: &str,
) -> anyhow::Result<Option<std::collections::HashMap<(String, i32), i64>>> {
    let Some(report) = engine
        .pipeline_reports()
        .into_iter()
        .find(|r| r.name == view)
    else {
        return Ok(None);
    };
    if report.status.starts_with("failed") {
        bail!("{view}: {}", report.status);
    }
    Ok(report.progress.map(|p| p.offsets))
}

async fn wait_committed(
    engine: &Engine,
    view: &str,
    ends: &[((String, i32), i64)],
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        if let Some(offsets) = committed(engine, view)? {
            if ends
                .iter()
                .all(|(k, end)| offsets.get(k).is_some_and(|o| o >= end))
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{view}: not caught up in {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Per query: events appended at `args.rate` for `args.latency_seconds`, each batch timed
/// from its append until the commit of the epoch that consumed it (as a [`CommitSampler`]
/// saw it), beside the latency the appending loop itself would have noticed and how far the
/// loop fell behind its schedule.
async fn latency_runs(
    args: &NexmarkArgs,
    queries: &[(&str, &str)],
    engine: &Arc<Engine>,
    s: &Session,
    state: &Arc<State>,
    generator: GeneratorConfig,
) -> anyhow::Result<()> {
    println!(
        "\nEnd-to-end latency at {} events/s for {} s (batches every 10 ms; append until the \
         epoch that consumed the event committed, when its results are visible \
         read_committed, as a thread polling every millisecond saw it; checkpoint every {} \
         ms). \"loop p99\": the same, as the appending loop noticed commits between batches \
         (the first version's measure); \"behind\": how far the loop fell behind its \
         schedule at worst:\n",
        args.rate, args.latency_seconds, args.checkpoint_ms
    );
    println!("| query | events | p50 ms | p99 ms | max ms | loop p99 ms | behind ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut next_event = args.events;
    for (name, sql) in queries {
        let (view, query) = select_of(sql)?;
        let topics = sources_of(s, &query).await?;
        if run_sql(s, sql).await.is_err() {
            continue;
        }
        // Catch up with what is already there before the clock matters.
        let backlog = ends(engine, &topics);
        wait_committed(engine, &view, &backlog, Instant::now() + TIMEOUT).await?;
        let sampler = CommitSampler::start(engine.clone(), view.clone());
        let per_batch = (args.rate / 100).max(1);
        let batches = (args.latency_seconds * 100.0).ceil() as u64;
        // (topic index, end offset after the batch, append instant, events of the batch)
        let mut appended: Vec<(usize, i64, Instant, u64)> = Vec::new();
        let mut pending: Vec<(usize, i64, Instant, u64)> = Vec::new();
        let mut noticed: Vec<(f64, u64)> = Vec::new();
        let mut behind = Duration::ZERO;
        let started = Instant::now();
        for b in 0..batches {
            // Between batches, note commits as they happen (1 ms resolution).
            let at = started + Duration::from_millis(10 * b);
            behind = behind.max(Instant::now().saturating_duration_since(at));
            while Instant::now() < at {
                collect(engine, &view, &topics, &mut pending, &mut noticed)?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let before = ends(engine, &TOPICS);
            let counts = load(state, generator, next_event, per_batch).await?;
            next_event += per_batch;
            let now = Instant::now();
            for (i, (_, start)) in before.iter().enumerate() {
                let n = counts.0.get(i).copied().unwrap_or(0);
                if n > 0 && TOPICS.get(i).is_some_and(|t| topics.contains(t)) {
                    appended.push((i, start + n as i64, now, n));
                    pending.push((i, start + n as i64, now, n));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            collect(engine, &view, &topics, &mut pending, &mut noticed)?;
            if pending.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{view}: input not consumed within 60 s after the latency run");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let samples = sampler.stop()?;
        let mut latencies: Vec<(f64, u64)> = Vec::with_capacity(appended.len());
        for (i, end, at, n) in appended {
            let Some(topic) = TOPICS.get(i) else { continue };
            let key = (topic.to_string(), 0);
            let first = samples
                .iter()
                .find(|(_, offsets)| offsets.get(&key).is_some_and(|o| *o >= end));
            if let Some((when, _)) = first {
                latencies.push((when.saturating_duration_since(at).as_secs_f64() * 1000.0, n));
            }
        }
        let (p50, p99, max) = percentiles(&mut latencies);
        let (_, loop_p99, _) = percentiles(&mut noticed);
        println!(
            "| {name} | {} | {p50:.0} | {p99:.0} | {max:.0} | {loop_p99:.0} | {} |",
            latencies.iter().map(|(_, n)| n).sum::<u64>(),
            behind.as_millis()
        );
        run_sql(s, &format!("DROP MATERIALIZED VIEW {view}")).await?;
    }
    Ok(())
}

/// p50, p99 and max of `latencies` (ms, weighted by events).
fn percentiles(latencies: &mut [(f64, u64)]) -> (f64, f64, f64) {
    latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = latencies.iter().map(|(_, n)| n).sum();
    let pct = |p: f64| {
        let want = (total as f64 * p).ceil() as u64;
        let mut seen = 0;
        for (ms, n) in latencies.iter() {
            seen += n;
            if seen >= want {
                return *ms;
            }
        }
        latencies.last().map_or(0.0, |l| l.0)
    };
    (pct(0.5), pct(0.99), latencies.last().map_or(0.0, |l| l.0))
}

/// A view's committed source offsets as they change, with the instant each change was
/// seen: polled every millisecond by a thread of its own, so that when a commit is noticed
/// does not depend on the appending loop keeping its schedule.
struct CommitSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Vec<Offsets>>>,
}

/// When a view's committed offsets were seen, and the offsets.
type Offsets = (Instant, HashMap<(String, i32), i64>);

impl CommitSampler {
    fn start(engine: Arc<Engine>, view: String) -> CommitSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples: Vec<Offsets> = Vec::new();
            loop {
                // Read before sampling: the last sample, taken after `stop`, sees the commit
                // the caller saw before stopping (a few ms late at worst, never missed).
                let last = flag.load(Ordering::Relaxed);
                if let Some(offsets) = committed(&engine, &view)? {
                    if samples.last().is_none_or(|(_, seen)| *seen != offsets) {
                        samples.push((Instant::now(), offsets));
                    }
                }
                if last {
                    return Ok(samples);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        CommitSampler { stop, thread }
    }

    fn stop(self) -> anyhow::Result<Vec<Offsets>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the commit sampler panicked"))?
    }
}

/// Moves the batches of `topics` that `view` has committed from `appended` to `latencies`
/// (milliseconds, events).
fn collect(
    engine: &Engine,
    view: &str,
    topics: &[&str],
    appended: &mut Vec<(usize, i64, Instant, u64)>,
    latencies: &mut Vec<(f64, u64)>,
) -> anyhow::Result<()> {
    let Some(offsets) = committed(engine, view)? else {
        return Ok(());
    };
    let now = Instant::now();
    appended.retain(|(i, end, at, n)| {
        let Some(topic) = TOPICS.get(*i).filter(|t| topics.contains(t)) else {
            return false;
        };
        if offsets
            .get(&(topic.to_string(), 0))
            .is_some_and(|o| o >= end)
        {
            latencies.push(((now - *at).as_secs_f64() * 1000.0, *n));
            return false;
        }
        true
    });
    Ok(())
}
