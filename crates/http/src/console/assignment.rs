//! A classic consumer's assignment (`ConsumerProtocolAssignment`, opaque to the coordinator):
//! a version, then topics with their partitions. Later versions only add fields at the end,
//! so every version is read as far as the partitions.

use std::collections::BTreeMap;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.i16()?).ok()?;
        let (s, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

/// Partitions by topic; `None` when the bytes are not a consumer assignment. An empty
/// assignment (a rebalance in progress) is no partitions.
pub fn decode(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    if bytes.is_empty() {
        return Some(out);
    }
    let mut r = Reader(bytes);
    let _version = r.i16()?;
    let topics = r.i32()?;
    for _ in 0..topics.max(0) {
        let topic = r.string()?;
        let n = r.i32()?;
        // Each partition is 4 bytes: a count larger than what is left is garbage, not a
        // reason to allocate.
        if usize::try_from(n).ok()? > r.0.len() / 4 {
            return None;
        }
        let mut ps = Vec::with_capacity(usize::try_from(n).ok()?);
        for _ in 0..n {
            ps.push(r.i32()?);
        }
        out.entry(topic).or_insert_with(Vec::new).extend(ps);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(version: i16, topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes()); // user data: null
        b
    }

    #[test]
    fn decodes_topics_and_partitions() {
        let bytes = encode(3, &[("orders", &[0, 2]), ("audit", &[1])]);
        let got = decode(&bytes).expect("assignment");
        assert_eq!(got.get("orders"), Some(&vec![0, 2]));
        assert_eq!(got.get("audit"), Some(&vec![1]));
        assert_eq!(decode(&[]), Some(BTreeMap::new()));
    }

    #[test]
    fn refuses_garbage_without_allocating() {
        let mut bytes = encode(0, &[("t", &[0])]);
        bytes.truncate(9);
        assert_eq!(decode(&bytes), None);
        // A huge partition count with nothing behind it.
        let mut b = 0i16.to_be_bytes().to_vec();
        b.extend(1i32.to_be_bytes());
        b.extend(1i16.to_be_bytes());
        b.push(b't');
        b.extend(i32::MAX.to_be_bytes());
        assert_eq!(decode(&b), None);
    }
}
