//! The aborted-transaction index of one segment, `<base offset>.txnindex` (Kafka's name): the
//! transactions whose abort marker lies in that segment, for read_committed fetches.
//!
//! Derived data, like the offset and time indexes: the active segment's entries live in
//! memory and the file is written whole (tmp, fsync, rename) when the segment is sealed or
//! the log closed, before the producer snapshot of that point. So an abort costs no I/O, the
//! entries below the newest snapshot are durable, and the ones after it are found again by
//! the replay from that snapshot after a crash. The files go with their segments when
//! retention or DeleteRecords deletes them.

use crate::producer::AbortedTxn;

/// File name suffix of a segment's aborted-transaction index.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// producer id, first offset, last offset (the marker's): three big-endian i64.
const ENTRY_LEN: usize = 24;
/// Entry count (u32) and the CRC-32C of the entries (u32).
const TRAILER_LEN: usize = 8;

/// The file's bytes: the entries, then the count and a CRC-32C over the entries.
pub(crate) fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN + TRAILER_LEN);
    for a in entries {
        out.extend_from_slice(&a.producer_id.to_be_bytes());
        out.extend_from_slice(&a.first_offset.to_be_bytes());
        out.extend_from_slice(&a.last_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a whole file; `None` if it is cut, damaged or not in marker order (then the
/// segment's entries are rebuilt from the log).
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<AbortedTxn>> {
    let body_len = bytes.len().checked_sub(TRAILER_LEN)?;
    let (body, trailer) = bytes.split_at_checked(body_len)?;
    let (count, crc) = trailer.split_first_chunk::<4>()?;
    let crc: [u8; 4] = crc.try_into().ok()?;
    if body.len() % ENTRY_LEN != 0
        || usize::try_from(u32::from_be_bytes(*count)).ok()? != body.len() / ENTRY_LEN
        || crc32c::crc32c(body) != u32::from_be_bytes(crc)
    {
        return None;
    }
    let mut out: Vec<AbortedTxn> = Vec::with_capacity(body.len() / ENTRY_LEN);
    for chunk in body.chunks_exact(ENTRY_LEN) {
        let field = |i: usize| {
            chunk
                .get(i * 8..i * 8 + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes)
        };
        let a = AbortedTxn {
            producer_id: field(0)?,
            first_offset: field(1)?,
            last_offset: field(2)?,
        };
        let ordered = out.last().is_none_or(|p| p.last_offset < a.last_offset);
        if a.producer_id < 0 || a.first_offset > a.last_offset || !ordered {
            return None;
        }
        out.push(a);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let entries = vec![
            AbortedTxn {
                producer_id: 3,
                first_offset: 10,
                last_offset: 14,
            },
            AbortedTxn {
                producer_id: 1,
                first_offset: 2,
                last_offset: 20,
            },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes), Some(entries.clone()));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 1;
            assert_eq!(decode(&flipped), None, "flip at {i}");
        }
        let reversed: Vec<_> = entries.iter().rev().copied().collect();
        assert_eq!(decode(&encode(&reversed)), None, "out of marker order");
    }
}
