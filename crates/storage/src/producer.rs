//! Idempotent-producer state of one partition: for each producer id, its epoch and the
//! sequence ranges of its last five batches (Kafka keeps five, matching
//! `max.in.flight.requests.per.connection ≤ 5` for idempotent producers).
//!
//! Checked under the append lock, so the sequence check and the offset assignment are one
//! atomic step. A retried batch that is already in the log is answered with its original
//! offsets instead of being written twice.
//!
//! The state survives restarts through snapshots, as Kafka's does: each roll (and a clean
//! close) writes `<offset>.snapshot`, the state as of that offset; opening loads the newest
//! valid snapshot and replays the batch headers after it (see `Log::open`).

use std::collections::{HashMap, VecDeque};

use crate::error::StorageError;

/// How many batches per producer are remembered for duplicate detection.
pub const REMEMBERED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSeq {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    epoch: i16,
    batches: VecDeque<BatchSeq>,
    /// When this producer last appended (wall clock, ms): the clock of its expiry.
    last_append_ms: i64,
    /// First offset of the producer's open transaction on this partition, if any.
    ongoing_txn: Option<i64>,
    /// The coordinator epoch of the last marker written for this producer: a marker from an
    /// older coordinator (one that lost its shard) is refused.
    coordinator_epoch: i32,
}

/// A transaction that was aborted on this partition: read_committed consumers skip the
/// producer's batches in `[first_offset, last_offset]` (the last is the abort marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// One producer's state on a partition, for DescribeProducers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the last record appended, -1 if none is remembered.
    pub last_sequence: i32,
    /// When the producer last appended (wall clock, ms).
    pub last_timestamp_ms: i64,
    /// First offset of its open transaction here, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// What the sequence check decided for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Append,
    /// Already in the log at these offsets.
    Duplicate {
        first_offset: i64,
        last_offset: i64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Producers {
    map: HashMap<i64, Entry>,
}

/// The sequence after `seq`; sequences wrap from `i32::MAX` to 0.
fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch starting at `first` holding `count` offsets.
pub(crate) fn last_seq(first: i32, count: i64) -> i32 {
    let span = (count - 1).clamp(0, i64::from(i32::MAX));
    let last = i64::from(first) + span;
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(i32::MAX)
}

impl Producers {
    /// Decides whether a batch of `producer_id` may be appended.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    ) -> Result<Verdict, StorageError> {
        let Some(entry) = self.map.get(&producer_id) else {
            // Unknown producer (new, or its state aged out with the log): any start is fine.
            return Ok(Verdict::Append);
        };
        if epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts the sequence at 0.
            return if first_seq == 0 {
                Ok(Verdict::Append)
            } else {
                Err(StorageError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    got: first_seq,
                })
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(Verdict::Duplicate {
                first_offset: b.first_offset,
                last_offset: b.last_offset,
            });
        }
        match entry.batches.back() {
            Some(last) if first_seq != next_seq(last.last_seq) => {
                Err(StorageError::OutOfOrderSequence {
                    producer_id,
                    expected: next_seq(last.last_seq),
                    got: first_seq,
                })
            }
            _ => Ok(Verdict::Append),
        }
    }

    /// Records an appended data batch, appended at `at_ms`; a transactional one opens the
    /// producer's transaction if none is open.
    pub fn record_txn(&mut self, producer_id: i64, epoch: i16, seq: BatchSeq, at_ms: i64) {
        self.record(producer_id, epoch, seq, at_ms);
        if let Some(entry) = self.map.get_mut(&producer_id) {
            entry.ongoing_txn.get_or_insert(seq.first_offset);
        }
    }

    /// Checks a transaction marker: one from an older producer epoch is a zombie's, one from
    /// an older coordinator epoch than the last marker's comes from a coordinator that lost
    /// its shard (Kafka's TRANSACTION_COORDINATOR_FENCED).
    pub fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), StorageError> {
        match self.map.get(&producer_id) {
            Some(e) if epoch < e.epoch => Err(StorageError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current: e.epoch,
            }),
            Some(e) if coordinator_epoch < e.coordinator_epoch => {
                Err(StorageError::TransactionCoordinatorFenced {
                    producer_id,
                    coordinator_epoch,
                    current: e.coordinator_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Remembers the coordinator epoch of a marker just written for `producer_id` (after
    /// [`Producers::end_txn`]).
    pub fn marker_coordinator(&mut self, producer_id: i64, coordinator_epoch: i32) {
        if let Some(e) = self.map.get_mut(&producer_id) {
            e.coordinator_epoch = e.coordinator_epoch.max(coordinator_epoch);
        }
    }

    /// A marker at `offset` ends the producer's open transaction; an abort is returned for the
    /// aborted-transaction index.
    pub fn end_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        offset: i64,
        at_ms: i64,
    ) -> Option<AbortedTxn> {
        let entry = self.map.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(at_ms);
        let first = entry.ongoing_txn.take()?;
        (!commit).then_some(AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
        })
    }

    /// Whether `producer_id` has an open transaction on this partition.
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.map
            .get(&producer_id)
            .is_some_and(|e| e.ongoing_txn.is_some())
    }

    /// The first offset of the oldest open transaction: the last stable offset, if any is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.map.values().filter_map(|e| e.ongoing_txn).min()
    }

    /// Records an appended batch, appended at `at_ms`.
    pub fn record(&mut self, producer_id: i64, epoch: i16, seq: BatchSeq, at_ms: i64) {
        let entry = self.map.entry(producer_id).or_default();
        entry.last_append_ms = entry.last_append_ms.max(at_ms);
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(seq);
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// The last offset of `producer_id`'s newest remembered data batch under `epoch`.
    pub fn last_offset(&self, producer_id: i64, epoch: i16) -> Option<i64> {
        let entry = self.map.get(&producer_id).filter(|e| e.epoch == epoch)?;
        entry.batches.back().map(|b| b.last_offset)
    }

    /// The last offset of each remembered producer's newest data batch (the batch the log
    /// cleaner keeps, so the producer's sequence survives a rebuild from the log).
    pub fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.map
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Every remembered producer, by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .map
            .iter()
            .map(|(id, e)| ActiveProducer {
                producer_id: *id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp_ms: e.last_append_ms,
                current_txn_start_offset: e.ongoing_txn,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Forgets producers idle for longer than `expiration_ms` (`producer.id.expiration.ms`);
    /// returns how many. A forgotten producer is accepted again from any sequence.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.map.len();
        let cutoff = now_ms.saturating_sub(expiration_ms);
        // An open transaction keeps its producer: the coordinator will end it.
        self.map
            .retain(|_, e| e.last_append_ms >= cutoff || e.ongoing_txn.is_some());
        before - self.map.len()
    }

    /// The snapshot of this state as of `offset` (every batch below it applied, none above):
    /// see [`decode_snapshot`] for the layout.
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut ids: Vec<_> = self.map.keys().copied().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(20 + ids.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&u32::try_from(ids.len()).unwrap_or(u32::MAX).to_be_bytes());
        for id in ids {
            let Some(e) = self.map.get(&id) else { continue };
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_append_ms.to_be_bytes());
            out.extend_from_slice(&e.ongoing_txn.unwrap_or(-1).to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            // At most REMEMBERED_BATCHES (5), so it fits a byte.
            out.push(u8::try_from(e.batches.len()).unwrap_or(u8::MAX));
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }
}

/// File name suffix of a producer snapshot: `<offset, 20 digits>.snapshot` holds the
/// producer state as of that offset (Kafka's naming).
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// First bytes of a snapshot: format and version.
const SNAPSHOT_MAGIC: &[u8; 4] = b"WPS2";
/// The version before coordinator epochs (read, never written: its entries' coordinator
/// epoch is 0, which fences nothing).
const SNAPSHOT_MAGIC_V1: &[u8; 4] = b"WPS1";

/// Decodes a snapshot: the offset it describes the state at, and the state. `None` unless the
/// bytes are one whole, undamaged snapshot (a cut or flipped one fails its CRC-32C), so a
/// damaged snapshot is never taken for a smaller state.
///
/// Layout (big-endian): magic `WPS2`, offset i64, producer count u32, then per producer in
/// increasing id order: id i64, epoch i16, last append ms i64, first offset of its open
/// transaction i64 (-1: none), coordinator epoch of its last marker i32 (absent in `WPS1`),
/// batch count u8 (≤ 5), and per remembered batch first and
/// last sequence (i32 each) and first and last offset (i64 each); last, the CRC-32C of
/// everything before it.
pub fn decode_snapshot(bytes: &[u8]) -> Option<(i64, Producers)> {
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32c::crc32c(body) != u32::from_be_bytes(*crc) {
        return None;
    }
    let mut r = Reader(body);
    let v2 = match r.take::<4>()? {
        m if m == *SNAPSHOT_MAGIC => true,
        m if m == *SNAPSHOT_MAGIC_V1 => false,
        _ => return None,
    };
    let offset = i64::from_be_bytes(r.take()?);
    let count = u32::from_be_bytes(r.take()?);
    let mut p = Producers::default();
    let mut previous = None;
    for _ in 0..count {
        let id = i64::from_be_bytes(r.take()?);
        // Strictly increasing ids: one encoding per state, and no producer twice.
        if id < 0 || previous.is_some_and(|p| id <= p) {
            return None;
        }
        previous = Some(id);
        let epoch = i16::from_be_bytes(r.take()?);
        let last_append_ms = i64::from_be_bytes(r.take()?);
        let ongoing = i64::from_be_bytes(r.take()?);
        let coordinator_epoch = if v2 { i32::from_be_bytes(r.take()?) } else { 0 };
        let [n] = r.take::<1>()?;
        if usize::from(n) > REMEMBERED_BATCHES || ongoing < -1 {
            return None;
        }
        let mut batches = VecDeque::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push_back(BatchSeq {
                first_seq: i32::from_be_bytes(r.take()?),
                last_seq: i32::from_be_bytes(r.take()?),
                first_offset: i64::from_be_bytes(r.take()?),
                last_offset: i64::from_be_bytes(r.take()?),
            });
        }
        p.map.insert(
            id,
            Entry {
                epoch,
                batches,
                last_append_ms,
                ongoing_txn: (ongoing >= 0).then_some(ongoing),
                coordinator_epoch,
            },
        );
    }
    r.0.is_empty().then_some((offset, p))
}

/// A cursor over a byte slice for decoding.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(first_seq: i32, last_seq: i32, first_offset: i64) -> BatchSeq {
        BatchSeq {
            first_seq,
            last_seq,
            first_offset,
            last_offset: first_offset + i64::from(last_seq - first_seq),
        }
    }

    #[test]
    fn in_order_duplicate_and_gap() {
        let mut p = Producers::default();
        assert_eq!(p.check(7, 0, 0, 9).expect("first"), Verdict::Append);
        p.record(7, 0, seq(0, 9, 100), 0);
        assert_eq!(p.check(7, 0, 10, 14).expect("next"), Verdict::Append);
        p.record(7, 0, seq(10, 14, 110), 0);
        assert_eq!(
            p.check(7, 0, 0, 9).expect("dup"),
            Verdict::Duplicate {
                first_offset: 100,
                last_offset: 109
            }
        );
        assert!(matches!(
            p.check(7, 0, 16, 20),
            Err(StorageError::OutOfOrderSequence {
                expected: 15,
                got: 16,
                ..
            })
        ));
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut p = Producers::default();
        p.record(1, 3, seq(0, 0, 0), 0);
        assert!(matches!(
            p.check(1, 2, 1, 1),
            Err(StorageError::InvalidProducerEpoch { current: 3, .. })
        ));
        assert!(matches!(
            p.check(1, 4, 5, 5),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(p.check(1, 4, 0, 0).expect("new epoch"), Verdict::Append);
        p.record(1, 4, seq(0, 0, 1), 0);
        assert_eq!(p.check(1, 4, 1, 1).expect("next"), Verdict::Append);
    }

    #[test]
    fn only_five_batches_are_remembered_and_sequences_wrap() {
        let mut p = Producers::default();
        for i in 0..7 {
            p.record(1, 0, seq(i, i, i64::from(i)), 0);
        }
        // Batch 0 and 1 aged out: a retry of them is no longer recognised.
        assert!(matches!(
            p.check(1, 0, 0, 0),
            Err(StorageError::OutOfOrderSequence {
                expected: 7,
                got: 0,
                ..
            })
        ));
        assert_eq!(
            p.check(1, 0, 6, 6).expect("dup"),
            Verdict::Duplicate {
                first_offset: 6,
                last_offset: 6
            }
        );
        assert_eq!(last_seq(i32::MAX, 3), 1);
        assert_eq!(next_seq(i32::MAX), 0);
    }

    #[test]
    fn idle_producers_expire() {
        let mut p = Producers::default();
        p.record(1, 0, seq(0, 0, 0), 1_000);
        p.record(2, 0, seq(0, 0, 1), 5_000);
        assert_eq!(p.expire(6_000, 2_000), 1);
        // Producer 1 is forgotten: its retry is no longer a duplicate, any sequence starts it.
        assert_eq!(p.check(1, 0, 0, 0).expect("forgotten"), Verdict::Append);
        assert_eq!(p.check(1, 0, 9, 9).expect("any start"), Verdict::Append);
        assert_eq!(
            p.check(2, 0, 0, 0).expect("kept"),
            Verdict::Duplicate {
                first_offset: 1,
                last_offset: 1
            }
        );
    }

    #[test]
    fn transactions_open_close_and_abort() {
        let mut p = Producers::default();
        p.record_txn(1, 0, seq(0, 1, 10), 0);
        p.record_txn(2, 0, seq(0, 0, 12), 0);
        p.record_txn(1, 0, seq(2, 2, 13), 0);
        assert_eq!(p.first_unstable_offset(), Some(10));
        assert_eq!(
            p.end_txn(1, 0, true, 14, 0),
            None,
            "a commit is not indexed"
        );
        assert_eq!(p.first_unstable_offset(), Some(12));
        assert_eq!(
            p.end_txn(2, 0, false, 15, 0),
            Some(AbortedTxn {
                producer_id: 2,
                first_offset: 12,
                last_offset: 15
            })
        );
        assert_eq!(p.first_unstable_offset(), None);
        assert!(p.check_marker(2, 0, 0).is_ok());
        p.end_txn(2, 1, false, 16, 0);
        assert!(matches!(
            p.check_marker(2, 0, 0),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
        // A marker from coordinator epoch 5 fences the coordinators before it.
        p.marker_coordinator(2, 5);
        assert!(p.check_marker(2, 1, 5).is_ok());
        assert!(p.check_marker(2, 1, 6).is_ok());
        assert!(matches!(
            p.check_marker(2, 1, 4),
            Err(StorageError::TransactionCoordinatorFenced { current: 5, .. })
        ));
        // Remembering never goes back.
        p.marker_coordinator(2, 3);
        assert!(p.check_marker(2, 1, 4).is_err());
        // An open transaction survives expiry.
        p.record_txn(3, 0, seq(0, 0, 17), 0);
        p.expire(1_000_000, 10);
        assert_eq!(p.first_unstable_offset(), Some(17));
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut p = Producers::default();
        p.record(5, 1, seq(0, 4, 10), 7);
        p.record(5, 1, seq(5, 9, 15), 8);
        p.record_txn(9, 0, seq(0, 0, 20), 9);
        // A producer known only by its epoch (a marker bumped it; no batch remembered).
        p.end_txn(11, 3, false, 21, 10);
        p.marker_coordinator(11, 4);
        let bytes = p.encode_snapshot(22);
        let (offset, q) = decode_snapshot(&bytes).expect("decode");
        assert_eq!(offset, 22);
        assert_eq!(q, p);
        assert_eq!(q.encode_snapshot(22), bytes);
        for cut in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(decode_snapshot(&flipped).is_none(), "flip at {i}");
        }
    }
}
