//! The cleaner's key → latest offset map, in a fixed amount of memory
//! (`log.cleaner.dedupe.buffer.size`).
//!
//! Keys are not stored, only a 128-bit hash of each (two independent 64-bit SipHash values),
//! as Kafka stores an MD5 of each key: 24 bytes a slot whatever the key size, so the buffer
//! bounds the number of keys one pass can deduplicate. Two keys sharing a 128-bit hash would
//! make the older one's record look superseded; at a million keys that is about one chance
//! in 10^26.

use std::hash::{DefaultHasher, Hasher};

/// Bytes of one slot: two hash halves and the offset.
pub const SLOT_BYTES: usize = 24;
/// Share of the slots that may be filled: probing stays short below it.
const LOAD_FACTOR: f64 = 0.9;

/// Open-addressing map from a key's hash to the latest offset seen for it.
pub struct OffsetMap {
    /// `[hash_hi, hash_lo, offset + 1]`; a zero third word marks an empty slot.
    slots: Vec<[u64; 3]>,
    len: usize,
    max_entries: usize,
}

fn hash(key: &[u8]) -> (u64, u64) {
    let half = |seed: u8| {
        // Fixed keys (DefaultHasher::new), so equal keys hash alike across calls.
        let mut h = DefaultHasher::new();
        h.write_u8(seed);
        h.write(key);
        h.finish()
    };
    (half(0x5a), half(0xa5))
}

impl OffsetMap {
    /// A map using at most `memory_bytes` of slots (at least one slot).
    pub fn new(memory_bytes: usize) -> OffsetMap {
        let n = (memory_bytes / SLOT_BYTES).max(1);
        let max_entries = ((n as f64 * LOAD_FACTOR) as usize).clamp(1, n);
        OffsetMap {
            slots: vec![[0; 3]; n],
            len: 0,
            max_entries,
        }
    }

    /// Forgets every key (the memory stays allocated for the next pass).
    pub fn clear(&mut self) {
        // Untouched pages of a fresh map stay unallocated until a pass needs them.
        if self.len > 0 {
            self.slots.fill([0; 3]);
            self.len = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys fit.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Room for `n` more keys (counting each as new).
    pub fn has_room_for(&self, n: usize) -> bool {
        self.len.saturating_add(n) <= self.max_entries
    }

    /// The slot holding `h`, or the empty slot where it would go.
    fn probe(&self, (hi, lo): (u64, u64)) -> usize {
        let n = self.slots.len();
        let mut i = (hi as usize) % n;
        // Terminates: at least one slot stays empty (max_entries < n) or the key is found,
        // and callers never insert beyond max_entries.
        for _ in 0..n {
            match self.slots.get(i) {
                Some(s) if s[2] == 0 || (s[0] == hi && s[1] == lo) => return i,
                _ => i = (i + 1) % n,
            }
        }
        i
    }

    /// Records `offset` as the latest for `key`. Returns false (and records nothing) when
    /// the key is new and the map is full.
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = hash(key);
        let i = self.probe(h);
        let Some(slot) = self.slots.get_mut(i) else {
            return false;
        };
        if slot[2] == 0 {
            if self.len >= self.max_entries {
                return false;
            }
            self.len += 1;
        } else if slot[0] != h.0 || slot[1] != h.1 {
            return false;
        }
        *slot = [h.0, h.1, (offset as u64).wrapping_add(1)];
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let h = hash(key);
        let slot = self.slots.get(self.probe(h))?;
        (slot[2] != 0 && slot[0] == h.0 && slot[1] == h.1).then(|| slot[2].wrapping_sub(1) as i64)
    }

    /// Bytes the map holds.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * SLOT_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_offset_wins_and_memory_is_bounded() {
        let mut m = OffsetMap::new(24 * 100);
        assert_eq!(m.memory_bytes(), 2400);
        assert_eq!(m.capacity(), 90);
        for round in 0..3i64 {
            for k in 0..90i64 {
                assert!(m.put(format!("key-{k}").as_bytes(), round * 1000 + k));
            }
        }
        assert_eq!(m.len(), 90);
        assert_eq!(m.get(b"key-7"), Some(2007));
        assert_eq!(m.get(b"key-90"), None);
        // Full: a new key is refused, a known one still updates.
        assert!(!m.has_room_for(1));
        assert!(!m.put(b"key-90", 5));
        assert!(m.put(b"key-3", 9999));
        assert_eq!(m.get(b"key-3"), Some(9999));
        assert_eq!(m.get(b"key-90"), None);
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.get(b"key-3"), None);
        assert!(m.put(b"", 0));
        assert_eq!(m.get(b""), Some(0));
    }
}
