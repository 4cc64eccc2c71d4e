//! Produce and fetch rates per topic and for the broker: the topics' counters sampled every
//! `weir.http.sample.interval.ms` (10 s) into a ring of [`POINTS`] (1 h), for the overview's
//! chart and the topics' sparklines. Rates are computed from counter deltas, so a scrape or a
//! page view costs nothing on the produce path.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use weir_broker::metrics::TopicTotals;
use weir_broker::state::State;

/// Points kept per ring: an hour at the default 10 s interval.
pub const POINTS: usize = 360;

/// Rates over one interval, per second. `f32`: a ring is 16 bytes a point, 5.6 KiB a topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rate {
    pub produced_bytes: f32,
    pub produced_records: f32,
    pub fetched_bytes: f32,
    pub fetched_records: f32,
}

impl Rate {
    fn between(old: TopicTotals, new: TopicTotals, seconds: f64) -> Rate {
        // A counter only goes back when its topic was recreated under the same name; the
        // topic id check catches that, and `saturating_sub` keeps a race harmless.
        let per_s = |a: u64, b: u64| (b.saturating_sub(a) as f64 / seconds) as f32;
        Rate {
            produced_bytes: per_s(old.produced_bytes, new.produced_bytes),
            produced_records: per_s(old.produced_records, new.produced_records),
            fetched_bytes: per_s(old.fetched_bytes, new.fetched_bytes),
            fetched_records: per_s(old.fetched_records, new.fetched_records),
        }
    }

    fn add(&mut self, o: Rate) {
        self.produced_bytes += o.produced_bytes;
        self.produced_records += o.produced_records;
        self.fetched_bytes += o.fetched_bytes;
        self.fetched_records += o.fetched_records;
    }
}

struct TopicRing {
    /// The topic's id: a topic recreated under the same name starts a new ring.
    id: u128,
    last: TopicTotals,
    ring: VecDeque<Rate>,
}

#[derive(Default)]
struct Inner {
    topics: HashMap<String, TopicRing>,
    broker: VecDeque<Rate>,
}

/// The rings, shared by the sampler and the pages.
pub struct Rates {
    pub interval: Duration,
    inner: Mutex<Inner>,
}

fn push(ring: &mut VecDeque<Rate>, r: Rate) {
    if ring.len() == POINTS {
        ring.pop_front();
    }
    ring.push_back(r);
}

impl Rates {
    pub fn new(interval: Duration) -> Rates {
        Rates {
            interval,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One sample, `seconds` after the previous one. A topic seen for the first time (or
    /// recreated) only sets its baseline; topics gone are forgotten. Topics folded into the
    /// metrics' `_other` series have no rates of their own and get no ring.
    pub fn sample(&self, state: &State, seconds: f64) {
        let topics = state.topics();
        let mut inner = self.lock();
        let mut total = Rate::default();
        let mut seen = std::collections::HashSet::with_capacity(topics.len());
        for t in &topics {
            let Some(now) = t.metrics.totals() else {
                continue;
            };
            seen.insert(t.name.as_str());
            let id = t.id.as_u128();
            match inner.topics.get_mut(&t.name) {
                Some(r) if r.id == id => {
                    let rate = Rate::between(r.last, now, seconds);
                    r.last = now;
                    push(&mut r.ring, rate);
                    total.add(rate);
                }
                _ => {
                    inner.topics.insert(
                        t.name.clone(),
                        TopicRing {
                            id,
                            last: now,
                            ring: VecDeque::new(),
                        },
                    );
                }
            }
        }
        inner.topics.retain(|name, _| seen.contains(name.as_str()));
        push(&mut inner.broker, total);
    }

    /// A topic's ring, oldest first (empty before its second sample).
    pub fn topic(&self, name: &str) -> Vec<Rate> {
        self.lock()
            .topics
            .get(name)
            .map(|r| r.ring.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The broker's ring (the sum over topics), oldest first.
    pub fn broker(&self) -> Vec<Rate> {
        self.lock().broker.iter().copied().collect()
    }

    /// Samples every interval until the listener stops.
    pub async fn run(self: std::sync::Arc<Self>, state: std::sync::Arc<State>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            let now = tokio::time::Instant::now();
            let seconds = now.duration_since(last).as_secs_f64().max(0.001);
            last = now;
            let (rates, state) = (self.clone(), state.clone());
            if let Err(e) = tokio::task::spawn_blocking(move || rates.sample(&state, seconds)).await
            {
                tracing::error!(error = %e, "console rate sampler panicked");
            }
        }
    }
}
