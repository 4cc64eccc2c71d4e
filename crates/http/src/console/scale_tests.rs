//! Server time of every console page on a broker with 10,000 partitions (1,000 topics of 10)
//! and 1,000 groups, built in-process: `cargo nextest run -p weir-http --run-ignored
//! ignored-only scale` (add `--release` for the figures in the design doc). Prints the
//! median of several builds and renders of each page.

use std::time::{Duration, Instant};

use super::data;
use super::pages;
use super::rates::Rates;
use super::tests::{append, commit};

const TOPICS: usize = 1_000;
const PARTITIONS: i32 = 10;
const GROUPS: usize = 1_000;

/// A page's build and render; returns the bytes of HTML.
type Case<'a> = (&'static str, Box<dyn FnMut() -> usize + 'a>);

fn median(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..7 {
        let t = Instant::now();
        size = f();
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: builds 10,000 partitions and 1,000 groups (about a minute)"]
async fn scale_every_page_with_10k_partitions_and_1k_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = weir_broker::testkit::state(dir.path(), &[("log.segment.bytes", "1048576")]);
    let setup = Instant::now();
    for t in 0..TOPICS {
        let name = format!("topic-{t:04}");
        state
            .create_topic(&name, PARTITIONS, 1, Default::default())
            .await
            .expect("topic");
        append(&state, &name, 0, 10).await;
    }
    for g in 0..GROUPS {
        let topic = format!("topic-{:04}", g % TOPICS);
        let offsets: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
        commit(&state, &format!("group-{g:04}"), &topic, &offsets).await;
    }
    let rates = Rates::new(Duration::from_secs(10));
    for _ in 0..=super::rates::POINTS {
        rates.sample(&state, 10.0);
    }
    println!(
        "setup: {TOPICS} topics x {PARTITIONS} partitions, {GROUPS} groups in {:?}",
        setup.elapsed()
    );

    let s = &*state;
    let r = &rates;
    let ready = || crate::health::readiness(Some(s), false);
    let cases: Vec<Case<'_>> = vec![
        (
            "overview",
            Box::new(|| pages::overview(&data::overview(s, r, ready(), &data::everything)).len()),
        ),
        (
            "topics page 1",
            Box::new(|| pages::topics(&data::topic_list(s, r, 1, "", &data::everything)).len()),
        ),
        (
            "topics page 10",
            Box::new(|| pages::topics(&data::topic_list(s, r, 10, "", &data::everything)).len()),
        ),
        (
            "topics filtered",
            Box::new(|| {
                pages::topics(&data::topic_list(s, r, 1, "topic-05", &data::everything)).len()
            }),
        ),
        (
            "topic",
            Box::new(|| {
                pages::topic(
                    &data::topic_detail(s, r, "topic-0500", 1, &data::everything).expect("topic"),
                    "t",
                )
                .len()
            }),
        ),
        (
            "groups page 1",
            Box::new(|| pages::groups(&data::group_list(s, 1, "", &data::everything)).len()),
        ),
        (
            "groups page 10",
            Box::new(|| pages::groups(&data::group_list(s, 10, "", &data::everything)).len()),
        ),
        (
            "group",
            Box::new(|| {
                pages::group(
                    &data::group_detail(s, "group-0500", &data::everything).expect("group"),
                    "t",
                )
                .len()
            }),
        ),
        (
            "transactions",
            Box::new(|| pages::transactions(&data::transactions(s, 1, &data::everything)).len()),
        ),
    ];
    for (name, mut f) in cases {
        let (t, bytes) = median(&mut f);
        println!(
            "{name:>16}: {:>8.2} ms  ({bytes} bytes of HTML)",
            t.as_secs_f64() * 1000.0
        );
        // Not the 100 ms target (a debug build is several times slower than release): a
        // guard against a page that walks something quadratic.
        assert!(t < Duration::from_secs(1), "{name} took {t:?}");
    }
}
