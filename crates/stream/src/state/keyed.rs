//! Keyed operator state: a map from encoded keys to values, with the keys changed since the
//! last checkpoint (so a checkpoint writes deltas: a hot key costs one record per epoch, not
//! one per input row) and the bytes it holds (for the pipeline's memory budget).
//!
//! Keys may have a deadline (µs of event time, [`super::expiry`]): an index by time frees
//! the due ones when the watermark reaches them, tombstoned at the next checkpoint like any
//! removal. Deadlines are not checkpointed: the operator sets them again at restore.
//!
//! Keys are bytes the operator chooses (a group key's [`super::codec::encode_row`], a
//! window's end followed by its group, a join key...); values implement [`StateValue`].

use std::collections::BTreeSet;

// DataFusion's maps: hashbrown with foldhash, randomly seeded per process. Every update
// hashes its key two to four times (the entry, the changed set); SipHash, std's default,
// was 5-8 % of a stateful Nexmark query's CPU.
use datafusion_common::hash_map::EntryRef;
use datafusion_common::{HashMap, HashSet};

use super::codec::CodecError;
use super::expiry::Expiry;

/// Bytes a map entry costs beyond its key and value (hash table slot, dirty-set entry).
const ENTRY_OVERHEAD: usize = 64;
/// Bytes a deadline costs beyond its key's two copies (tree and map slots, the time).
const DEADLINE_OVERHEAD: usize = 96;

/// A value kept in [`KeyedState`].
pub trait StateValue: Sized {
    /// Appends the value's durable form (starting with a version byte of its own).
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
    /// Heap bytes held, for the memory budget; must be cheap (called on every update).
    fn size(&self) -> usize;
}

/// One change to write at a checkpoint: the key and its encoded value, or `None` (a
/// tombstone) for a key removed since the last one.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

pub struct KeyedState<V> {
    map: HashMap<Vec<u8>, V>,
    dirty: HashSet<Vec<u8>>,
    bytes: usize,
    /// (deadline, key): keys freed once the watermark reaches their deadline.
    deadlines: BTreeSet<(i64, Vec<u8>)>,
    deadline_of: HashMap<Vec<u8>, i64>,
    /// With an idle-state TTL: the deadline every write gives its key.
    write_deadline: Option<i64>,
}

impl<V> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState {
            map: HashMap::default(),
            dirty: HashSet::default(),
            bytes: 0,
            deadlines: BTreeSet::new(),
            deadline_of: HashMap::default(),
            write_deadline: None,
        }
    }
}

impl<V: StateValue> KeyedState<V> {
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held by keys and values (dirty keys included).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &V)> {
        self.map.iter()
    }

    fn cost(key: &[u8], v: &V) -> usize {
        key.len() + v.size() + ENTRY_OVERHEAD
    }

    /// Runs `f` on `key`'s entry (`None` if absent); leaving `None` removes it. The key is
    /// marked changed for the next checkpoint.
    pub fn update<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Option<V>) -> R) -> R {
        // One lookup: a present entry is changed in its bucket (or removed), an absent one
        // inserted where the lookup found room; a hot key's update allocates nothing.
        let (out, kept) = match self.map.entry_ref(key) {
            EntryRef::Occupied(entry) => {
                let (mut out, mut freed, mut held) = (None, 0, None);
                entry.replace_entry_with(|_, old| {
                    freed = Self::cost(key, &old);
                    let mut slot = Some(old);
                    out = Some(f(&mut slot));
                    held = slot.as_ref().map(|v| Self::cost(key, v));
                    slot
                });
                self.bytes = self.bytes.saturating_sub(freed) + held.unwrap_or(0);
                match out {
                    Some(out) => (out, held.is_some()),
                    None => unreachable!("replace_entry_with runs its closure once"),
                }
            }
            EntryRef::Vacant(entry) => {
                let mut slot = None;
                let out = f(&mut slot);
                let kept = match slot {
                    Some(new) => {
                        self.bytes += Self::cost(key, &new);
                        entry.insert(new);
                        true
                    }
                    None => false,
                };
                (out, kept)
            }
        };
        if let (true, Some(at)) = (kept, self.write_deadline) {
            self.set_deadline(key, at);
        }
        if !self.dirty.contains(key) {
            self.dirty.insert(key.to_vec());
        }
        out
    }

    pub fn insert(&mut self, key: Vec<u8>, value: V) {
        self.update(&key, |slot| *slot = Some(value));
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.update(key, Option::take)
    }

    /// Whether `key` has a deadline.
    pub fn has_deadline(&self, key: &[u8]) -> bool {
        self.deadline_of.contains_key(key)
    }

    /// Sets (or moves) `key`'s deadline to `at`; a no-op when it is already there.
    pub fn set_deadline(&mut self, key: &[u8], at: i64) {
        match self.deadline_of.get(key) {
            Some(old) if *old == at => return,
            Some(old) => {
                self.deadlines.remove(&(*old, key.to_vec()));
            }
            None => self.bytes += 2 * key.len() + DEADLINE_OVERHEAD,
        }
        self.deadline_of.insert(key.to_vec(), at);
        self.deadlines.insert((at, key.to_vec()));
    }

    /// Frees every entry whose deadline is at or before `now`; how many there were.
    pub fn expire(&mut self, now: i64) -> usize {
        let mut freed = 0;
        while self.deadlines.first().is_some_and(|(at, _)| *at <= now) {
            let Some((_, key)) = self.deadlines.pop_first() else {
                break;
            };
            self.deadline_of.remove(&key);
            self.bytes = self.bytes.saturating_sub(2 * key.len() + DEADLINE_OVERHEAD);
            // A key removed meanwhile left its deadline behind: nothing to free.
            if self.map.contains_key(&key) {
                self.remove(&key);
                freed += 1;
            }
        }
        freed
    }

    /// Keys without a deadline.
    pub fn keys_without_deadline(&self) -> Vec<Vec<u8>> {
        self.map
            .keys()
            .filter(|k| !self.deadline_of.contains_key(*k))
            .cloned()
            .collect()
    }

    /// The watermark reached `w` (ms): with a TTL, later writes get `expiry`'s new
    /// deadline (and, at the first watermark, the keys written before it); then the due
    /// keys are freed. How many were.
    pub fn advance(&mut self, expiry: &mut Expiry, w: i64) -> usize {
        self.move_clock(expiry, w, false)
    }

    /// A processing-time TTL read the clock, `now_ms`: as [`advance`](Self::advance), and
    /// the keys written since the last reading (the changed set: called before
    /// [`take_changes`](Self::take_changes)) take the new deadline, their idleness counted
    /// from this reading; from the one before their write, a key written late in an epoch
    /// longer than the TTL would be freed at once. How many keys were freed.
    pub fn advance_clock(&mut self, expiry: &mut Expiry, now_ms: i64) -> usize {
        self.move_clock(expiry, now_ms, true)
    }

    /// [`advance`](Self::advance), and with `refresh_written` the changed keys' deadlines.
    fn move_clock(&mut self, expiry: &mut Expiry, w: i64, refresh_written: bool) -> usize {
        let Some((now, first)) = expiry.on_watermark(w) else {
            return 0;
        };
        self.write_deadline = expiry.write_deadline();
        if let Some(at) = self.write_deadline {
            let keys: Vec<Vec<u8>> = if first {
                self.keys_without_deadline()
            } else if refresh_written {
                let held = |k: &&Vec<u8>| self.map.contains_key(k.as_slice());
                self.dirty.iter().filter(held).cloned().collect()
            } else {
                Vec::new()
            };
            for key in keys {
                self.set_deadline(&key, at);
            }
        }
        self.expire(now)
    }

    /// The changes since the last call, as changelog entries; clears the changed set.
    pub fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        let mut out = Vec::with_capacity(self.dirty.len());
        for key in self.dirty.drain() {
            let value = match self.map.get(&key) {
                Some(v) => {
                    let mut buf = Vec::new();
                    v.encode(&mut buf)?;
                    Some(buf)
                }
                None => None,
            };
            out.push((key, value));
        }
        // Sorted, so a checkpoint's records do not depend on hash order.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Loads one committed entry at recovery (not marked changed).
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        let v = V::decode(value)?;
        if let Some(old) = self.map.get(key) {
            self.bytes = self.bytes.saturating_sub(Self::cost(key, old));
        }
        self.bytes += Self::cost(key, &v);
        self.map.insert(key.to_vec(), v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(i64);

    impl StateValue for Counter {
        fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
            out.extend_from_slice(&self.0.to_be_bytes());
            Ok(())
        }
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let a: [u8; 8] = bytes.try_into().map_err(|_| CodecError::Truncated)?;
            Ok(Counter(i64::from_be_bytes(a)))
        }
        fn size(&self) -> usize {
            8
        }
    }

    #[test]
    fn changes_are_deltas_with_tombstones_and_bytes_are_accounted() {
        let mut s: KeyedState<Counter> = KeyedState::default();
        s.insert(b"a".to_vec(), Counter(1));
        s.insert(b"b".to_vec(), Counter(2));
        assert_eq!(s.bytes(), 2 * (1 + 8 + ENTRY_OVERHEAD));
        let c = s.take_changes().expect("changes");
        assert_eq!(c.len(), 2);
        assert!(s.take_changes().expect("none").is_empty(), "cleared");
        s.update(b"a", |v| {
            if let Some(v) = v {
                v.0 += 10
            }
        });
        s.remove(b"b");
        assert_eq!(s.len(), 1);
        assert_eq!(s.bytes(), 1 + 8 + ENTRY_OVERHEAD);
        let c = s.take_changes().expect("changes");
        assert_eq!(
            c,
            vec![
                (b"a".to_vec(), Some(11i64.to_be_bytes().to_vec())),
                (b"b".to_vec(), None)
            ]
        );
        let mut back: KeyedState<Counter> = KeyedState::default();
        back.restore(b"a", &11i64.to_be_bytes()).expect("restore");
        assert_eq!(back.get(b"a").map(|c| c.0), Some(11));
        assert_eq!(back.bytes(), s.bytes());
        assert!(back.take_changes().expect("none").is_empty());
        assert!(back.restore(b"x", &[1]).is_err());
    }

    #[test]
    fn a_clock_reading_counts_idleness_of_keys_written_since_from_itself() {
        // A 1.6 s TTL (a 100 ms grain) read every 2 s: longer epochs than the TTL.
        let mut e = Expiry::new(None, Some(1_600));
        let mut s: KeyedState<Counter> = KeyedState::default();
        s.insert(b"old".to_vec(), Counter(1));
        assert_eq!(
            s.advance_clock(&mut e, 10_000),
            0,
            "first reading: deadlines set"
        );
        s.take_changes().expect("changes");
        // Written during the next epoch, after a reading it was idle before.
        s.insert(b"new".to_vec(), Counter(2));
        assert_eq!(
            s.advance_clock(&mut e, 12_000),
            1,
            "only the idle key is freed"
        );
        assert!(s.get(b"new").is_some() && s.get(b"old").is_none());
        s.take_changes().expect("changes");
        assert_eq!(s.advance_clock(&mut e, 13_000), 0, "idle 1 s of 1.6");
        assert_eq!(s.advance_clock(&mut e, 14_000), 1, "idle 2 s");
        assert!(s.is_empty());
    }

    #[test]
    fn due_keys_are_freed_with_tombstones_and_their_deadlines_accounted() {
        let mut s: KeyedState<Counter> = KeyedState::default();
        s.insert(b"a".to_vec(), Counter(1));
        s.insert(b"b".to_vec(), Counter(2));
        s.insert(b"c".to_vec(), Counter(3));
        let plain = s.bytes();
        s.set_deadline(b"a", 10);
        s.set_deadline(b"b", 20);
        s.set_deadline(b"b", 30); // moved
        assert!(s.bytes() > plain);
        assert_eq!(s.keys_without_deadline(), vec![b"c".to_vec()]);
        s.take_changes().expect("changes");
        assert_eq!(s.expire(9), 0);
        assert_eq!(s.expire(20), 1, "a, not b: its deadline moved to 30");
        assert_eq!(
            s.take_changes().expect("changes"),
            vec![(b"a".to_vec(), None)]
        );
        s.remove(b"b");
        assert_eq!(s.expire(100), 0, "b was removed before its deadline");
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.bytes(),
            1 + 8 + ENTRY_OVERHEAD,
            "only c left, no deadline"
        );
    }
}
