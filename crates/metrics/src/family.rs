//! A labelled family of one kind of metric, with a cap on the distinct values of its first
//! label (the topic or the group).
//!
//! Looking a series up allocates and takes a lock, so callers resolve a handle (`Arc<M>`) once
//! (a topic's handles when the topic is opened, an API's at start) and update that; the family
//! is only walked by a scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::metric::Counter;

/// The label value series beyond the cap are folded into.
pub const OTHER: &str = "_other";

pub struct Family<M> {
    label_names: &'static [&'static str],
    /// Distinct values the first label may take; beyond, [`OTHER`].
    cap: Option<usize>,
    make: fn() -> M,
    overflow: Option<Arc<Counter>>,
    inner: RwLock<Inner<M>>,
}

struct Inner<M> {
    series: BTreeMap<Vec<String>, Arc<M>>,
    /// Series per distinct first-label value (not counting [`OTHER`]): what the cap counts.
    values: BTreeMap<String, usize>,
}

impl<M> Family<M> {
    pub(crate) fn new(
        label_names: &'static [&'static str],
        cap: Option<usize>,
        make: fn() -> M,
        overflow: Option<Arc<Counter>>,
    ) -> Family<M> {
        Family {
            label_names,
            cap,
            make,
            overflow,
            inner: RwLock::new(Inner {
                series: BTreeMap::new(),
                values: BTreeMap::new(),
            }),
        }
    }

    pub fn label_names(&self) -> &'static [&'static str] {
        self.label_names
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<M>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<M>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The series for `values` (one per label name), created if new. When the first label's
    /// value would exceed the cap, the series with that label set to [`OTHER`] is returned
    /// instead and the family's overflow counter counts the refusal.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.label_names.len(), "label count");
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        if let Some(m) = self.read().series.get(&key) {
            return m.clone();
        }
        let mut inner = self.write();
        if let Some(m) = inner.series.get(&key) {
            return m.clone();
        }
        let mut key = key;
        if let (Some(cap), Some(first)) = (self.cap, key.first_mut()) {
            if first != OTHER && !inner.values.contains_key(first) && inner.values.len() >= cap {
                if let Some(o) = &self.overflow {
                    o.inc();
                }
                *first = OTHER.to_string();
                if let Some(m) = inner.series.get(&key) {
                    return m.clone();
                }
            }
        }
        if let Some(first) = key.first() {
            if first != OTHER {
                *inner.values.entry(first.clone()).or_insert(0) += 1;
            }
        }
        let m = Arc::new((self.make)());
        inner.series.insert(key, m.clone());
        m
    }

    /// Whether a series with first label `first` would be its own rather than folded into
    /// [`OTHER`] (the value is known, or the cap leaves room).
    pub fn admits(&self, first: &str) -> bool {
        let inner = self.read();
        first == OTHER
            || inner.values.contains_key(first)
            || self.cap.is_none_or(|cap| inner.values.len() < cap)
    }

    /// Removes every series whose first label is `value` (a deleted topic or group); handles
    /// still held keep working but are no longer exposed.
    pub fn remove_first(&self, value: &str) {
        let mut inner = self.write();
        inner
            .series
            .retain(|k, _| k.first().map(String::as_str) != Some(value));
        inner.values.remove(value);
    }

    /// Keeps only the series `keep` accepts (given their label values).
    pub fn retain(&self, mut keep: impl FnMut(&[String]) -> bool) {
        let mut inner = self.write();
        let Inner { series, values } = &mut *inner;
        series.retain(|k, _| {
            if keep(k) {
                return true;
            }
            if let Some(first) = k.first() {
                if let Some(n) = values.get_mut(first) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        values.remove(first);
                    }
                }
            }
            false
        });
    }

    /// Whether the series for exactly `values` exists (not folded into [`OTHER`]).
    pub fn contains(&self, values: &[&str]) -> bool {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        self.read().series.contains_key(&key)
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.read().series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the series (for rendering): label values and handles, sorted.
    pub fn snapshot(&self) -> Vec<(Vec<String>, Arc<M>)> {
        self.read()
            .series
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(cap: Option<usize>) -> (Family<Counter>, Arc<Counter>) {
        let overflow = Arc::new(Counter::new());
        (
            Family::new(
                &["topic", "kind"],
                cap,
                Counter::new,
                Some(overflow.clone()),
            ),
            overflow,
        )
    }

    #[test]
    fn the_same_labels_give_the_same_handle() {
        let (f, _) = family(None);
        f.with(&["a", "x"]).add(2);
        f.with(&["a", "x"]).add(3);
        assert_eq!(f.with(&["a", "x"]).get(), 5);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn values_beyond_the_cap_fold_into_other_and_are_counted() {
        let (f, overflow) = family(Some(2));
        f.with(&["a", "x"]).inc();
        f.with(&["b", "x"]).inc();
        // A second series of a known value is not a new value.
        f.with(&["a", "y"]).inc();
        f.with(&["c", "x"]).add(10);
        f.with(&["d", "x"]).add(5);
        assert_eq!(overflow.get(), 2);
        let snap = f.snapshot();
        let other: Vec<_> = snap
            .iter()
            .filter(|(k, _)| k[0] == OTHER)
            .map(|(k, m)| (k[1].clone(), m.get()))
            .collect();
        assert_eq!(other, vec![("x".to_string(), 15)]);
        assert!(f.admits("a") && !f.admits("e") && f.admits(OTHER));
        // Removing a value frees its slot.
        f.remove_first("a");
        assert!(f.admits("e"));
        f.with(&["e", "x"]).inc();
        assert_eq!(overflow.get(), 2);
        assert!(f.snapshot().iter().any(|(k, _)| k[0] == "e"));
        assert!(!f.snapshot().iter().any(|(k, _)| k[0] == "a"));
    }

    #[test]
    fn retain_drops_series_and_frees_their_values() {
        let (f, overflow) = family(Some(1));
        f.with(&["a", "x"]).inc();
        f.with(&["a", "y"]).inc();
        f.retain(|k| k[1] != "x");
        assert_eq!(f.len(), 1);
        f.retain(|_| false);
        assert!(f.is_empty());
        f.with(&["b", "x"]).inc();
        assert_eq!(overflow.get(), 0, "a's slot was freed");
    }
}
