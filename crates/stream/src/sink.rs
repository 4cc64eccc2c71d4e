//! Sinks: rows encoded into records, routed to partitions as Kafka's default partitioner
//! does (murmur2 of the key; keyless rows stick to one partition per batch), buffered until
//! the pipeline appends them in the epoch's transaction.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use bytes::Bytes;
use weir_broker::partition_access::PartitionHandle;

use crate::error::StreamError;
use crate::format::{SinkEncoder, SinkRecord};
use crate::txn::EpochTxn;

pub struct SinkOp {
    pub topic: String,
    partitions: Vec<PartitionHandle>,
    encoder: Box<dyn SinkEncoder>,
    pending: Vec<Vec<SinkRecord>>,
    pending_bytes: usize,
    /// Upsert sinks: per partition, each pending key's place in `pending`.
    upserts: Option<Vec<HashMap<Bytes, usize>>>,
    sticky: usize,
    scratch: Vec<SinkRecord>,
    /// The last barrier that reached this sink.
    pub barrier: u64,
}

impl SinkOp {
    pub fn new(
        topic: String,
        partitions: Vec<PartitionHandle>,
        encoder: Box<dyn SinkEncoder>,
        upsert: bool,
    ) -> SinkOp {
        let n = partitions.len();
        SinkOp {
            topic,
            partitions,
            encoder,
            pending: (0..n).map(|_| Vec::new()).collect(),
            pending_bytes: 0,
            upserts: upsert.then(|| (0..n).map(|_| HashMap::new()).collect()),
            sticky: 0,
            scratch: Vec::new(),
            barrier: 0,
        }
    }

    /// Bytes encoded and not yet appended.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether records wait for the barrier (upserts) rather than going out at once.
    pub fn is_upsert(&self) -> bool {
        self.upserts.is_some()
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), StreamError> {
        let n = self.partitions.len();
        if n == 0 {
            return Err(StreamError::UnknownTopic(self.topic.clone()));
        }
        self.scratch.clear();
        self.encoder
            .encode(batch, &mut self.scratch)
            .map_err(StreamError::Encode)?;
        self.sticky = (self.sticky + 1) % n;
        for r in self.scratch.drain(..) {
            let p = match &r.key {
                Some(k) => partition_for_key(k, n),
                None => self.sticky,
            };
            self.pending_bytes += r.size();
            let Some(q) = self.pending.get_mut(p) else {
                continue;
            };
            let index = self.upserts.as_mut().and_then(|u| u.get_mut(p));
            match (index, r.key.clone()) {
                (Some(index), Some(key)) => match index.get(&key) {
                    // A later change of the key replaces the pending one: the last wins.
                    Some(&at) => {
                        if let Some(old) = q.get_mut(at) {
                            self.pending_bytes = self.pending_bytes.saturating_sub(old.size());
                            *old = r;
                        }
                    }
                    None => {
                        index.insert(key, q.len());
                        q.push(r);
                    }
                },
                _ => q.push(r),
            }
        }
        Ok(())
    }

    /// Appends the buffered records in the epoch's transaction; returns how many.
    pub async fn flush(&mut self, txn: &mut EpochTxn) -> Result<u64, StreamError> {
        let mut n = 0;
        for (partition, pending) in self.partitions.iter().zip(self.pending.iter_mut()) {
            if !pending.is_empty() {
                txn.append(&self.topic, partition, pending).await?;
                n += pending.len() as u64;
                pending.clear();
            }
        }
        for index in self.upserts.iter_mut().flatten() {
            index.clear();
        }
        self.pending_bytes = 0;
        Ok(n)
    }
}

/// Kafka's default partition for a keyed record: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> usize {
    let hash = murmur2(key) & 0x7fff_ffff;
    usize::try_from(hash).unwrap_or(0) % partitions.max(1)
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`): 32-bit, seed 0x9747b28c, words read
/// little-endian.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(&b) = rest.first() {
        h ^= u32::from(b);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_partitioner() {
        // Known hashes of Kafka's murmur2 (the Java client's test vectors).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }
}
