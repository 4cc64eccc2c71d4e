//! `weir bench --scrape-only`: the cost of scraping `/metrics` under load. Produce throughput is
//! measured in alternating rounds without and with a scraper fetching `/metrics` every second
//! from the broker's HTTP listener, in the same run against the same broker, and the medians
//! are compared.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_client::Client;

use super::{create_topic, produce, Broker, Measured, Scenario};

/// Rounds of each kind (without, then with the scraper, alternating).
const ROUNDS: usize = 5;

/// One GET of `/metrics` over a fresh connection; the body's length.
async fn scrape_once(http: &str) -> anyhow::Result<usize> {
    let mut s = tokio::net::TcpStream::connect(http)
        .await
        .with_context(|| format!("connect to {http}"))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        bail!("GET /metrics did not answer 200");
    }
    Ok(buf.len())
}

/// Scrapes every second until `stop`; counts scrapes and their total time in microseconds.
async fn scraper(
    http: String,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    micros: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let started = Instant::now();
        match scrape_once(&http).await {
            Ok(_) => {
                scrapes.fetch_add(1, Ordering::Relaxed);
                micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(e) => eprintln!("scrape failed: {e:#}"),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the rounds and prints the table.
pub(super) async fn run(broker: &Broker, records: u64) -> anyhow::Result<()> {
    let Some(http) = broker.http_addr() else {
        bail!("--scrape-only needs a broker bench starts itself (its HTTP port is known)");
    };
    scrape_once(&http).await.context("first scrape")?;
    let addr = broker.addr();
    let mut client = Client::connect(&addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    let scenario = Scenario {
        value_bytes: 100,
        partitions: 8,
        records,
        producers: 4,
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let (scrapes, micros) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for round in 0..ROUNDS * 2 {
        let scraping = round % 2 == 1;
        let topic = format!("weir-bench-scrape-{}-{round}", std::process::id());
        let leader = create_topic(&mut client, &topic, scenario.partitions).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let task = scraping.then(|| {
            tokio::spawn(scraper(
                http.clone(),
                stop.clone(),
                scrapes.clone(),
                micros.clone(),
            ))
        });
        let m: Measured = produce(&leader, &topic, scenario, -1).await?;
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = task {
            t.abort();
        }
        // Each round's data goes with it: rounds long enough for several scrapes write gigabytes.
        client
            .delete_topic(&topic)
            .await
            .with_context(|| format!("delete topic {topic}"))?;
        let rate = m.records_per_second();
        eprintln!(
            "round {round}: {} scraper: {:.0} records/s ({:.1} s)",
            if scraping { "with" } else { "without" },
            rate,
            m.elapsed.as_secs_f64()
        );
        if scraping {
            with.push(rate);
        } else {
            without.push(rate);
        }
    }
    let (a, b) = (median(without), median(with));
    let n = scrapes.load(Ordering::Relaxed);
    println!(
        "produce {}, acks=all, {records} records a round, {ROUNDS} rounds each, alternating\n",
        scenario.describe()
    );
    println!("| scraper | median records/s |");
    println!("|---|---|");
    println!("| none | {a:.0} |");
    println!("| GET /metrics every 1 s | {b:.0} |");
    println!(
        "\nratio with/without: {:.3}; {n} scrapes, {:.2} ms each on average",
        b / a,
        micros.load(Ordering::Relaxed) as f64 / 1000.0 / n.max(1) as f64
    );
    Ok(())
}
