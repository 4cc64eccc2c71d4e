//! The three kinds of metric, each a few atomics: updating one is a relaxed atomic operation,
//! never a lock or an allocation, so hot paths (produce, fetch) can afford them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically increasing count (`_total`).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Mirrors a count kept elsewhere (a group's generation): the counter never goes back.
    pub fn raise_to(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }
}

/// A value that goes up and down. Stored as the bits of an `f64`, since some gauges are
/// fractional (lag in seconds) and Prometheus values are floats anyway.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub const fn new() -> Gauge {
        // 0.0's bit pattern is all zeroes.
        Gauge(AtomicU64::new(0))
    }

    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn add(&self, d: f64) {
        // A CAS loop: gauges change per connection or per interval, not per request.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + d).to_bits())
            });
    }

    pub fn inc(&self) {
        self.add(1.0);
    }

    pub fn dec(&self) {
        self.add(-1.0);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The most bucket bounds a histogram may have (the `+Inf` bucket is extra).
pub const MAX_BOUNDS: usize = 23;

/// Seconds buckets for latencies, 0.1 ms to 10 s in steps of about ×2.5 (1-2.5-5 per decade,
/// so the bounds read as round numbers).
pub const LATENCY_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram with fixed bucket bounds (seconds, usually). Buckets are kept per bucket, not
/// cumulative, so an observation touches one bucket; the exposition sums them up.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// `buckets[i]` counts observations in `(bounds[i-1], bounds[i]]`; the one after the last
    /// bound counts the rest (`+Inf`).
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    count: AtomicU64,
    /// The sum in nanoseconds (integral, so it can be added atomically); latencies only.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (ascending, at most [`MAX_BOUNDS`]; extra bounds are ignored).
    /// `const`, so a process-wide histogram can be a `static`.
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        let bounds = if bounds.len() > MAX_BOUNDS {
            bounds.split_at(MAX_BOUNDS).0
        } else {
            bounds
        };
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; MAX_BOUNDS + 1],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// A latency histogram over [`LATENCY_SECONDS`].
    pub const fn latency() -> Histogram {
        Histogram::new(LATENCY_SECONDS)
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Cumulative counts per bound, then the `+Inf` count. Read bucket by bucket without a
    /// lock, so a scrape racing observations may see `+Inf` differ from `_count` by the
    /// observations in flight; `_count` is taken as the `+Inf` bucket to keep them equal.
    pub fn cumulative(&self) -> (Vec<u64>, u64) {
        let mut acc = 0u64;
        let mut out = Vec::with_capacity(self.bounds.len());
        for b in self.buckets.iter().take(self.bounds.len()) {
            acc = acc.saturating_add(b.load(Ordering::Relaxed));
            out.push(acc);
        }
        let inf = self
            .buckets
            .get(self.bounds.len())
            .map_or(0, |b| b.load(Ordering::Relaxed));
        (out, acc.saturating_add(inf))
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::latency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        static H: Histogram = Histogram::new(&[0.001, 0.01, 0.1]);
        H.observe(Duration::from_micros(500));
        H.observe(Duration::from_millis(1)); // on the bound: le="0.001"
        H.observe(Duration::from_millis(50));
        H.observe(Duration::from_secs(3));
        let (cum, total) = H.cumulative();
        assert_eq!(cum, vec![2, 2, 3]);
        assert_eq!(total, 4);
        assert_eq!(H.count(), 4);
        assert!((H.sum_seconds() - 3.0515).abs() < 1e-9);
    }

    #[test]
    fn gauge_goes_both_ways_and_holds_fractions() {
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1.0);
        g.set(2.5);
        assert_eq!(g.get(), 2.5);
    }

    #[test]
    fn latency_bounds_ascend_and_fit() {
        assert!(LATENCY_SECONDS.len() <= MAX_BOUNDS);
        assert!(LATENCY_SECONDS.windows(2).all(|w| w[0] < w[1]));
    }
}
