//! Encodes real RecordBatch v2 bytes (uncompressed records, correct CRC-32C) for tests here
//! and in other crates. Not used by storage itself.

/// Builder for one v2 batch. Offsets start at 0; timestamps are absolute milliseconds.
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    base_timestamp: i64,
    attributes: i16,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<TestRecord>,
    /// Compress the records area with the codec of the attributes' compression bits.
    compress: bool,
}

#[derive(Clone, Debug)]
struct TestRecord {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

use crate::batch::push_zigzag as put_zigzag;

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_zigzag(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_zigzag(out, -1),
    }
}

impl BatchBuilder {
    /// A batch whose `baseTimestamp` is `base_timestamp`; add records with [`Self::record`].
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_timestamp,
            attributes: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
            compress: false,
        }
    }

    pub fn record(mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        self.records.push(TestRecord {
            timestamp,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        });
        self
    }

    /// Adds a header to the last record added.
    pub fn header(mut self, key: &[u8], value: Option<&[u8]>) -> Self {
        if let Some(r) = self.records.last_mut() {
            r.headers.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        }
        self
    }

    /// Adds `n` records with `value_len`-byte values, all at the base timestamp.
    pub fn records(mut self, n: usize, value_len: usize) -> Self {
        for i in 0..n {
            let value = vec![(i % 251) as u8; value_len];
            let ts = self.base_timestamp;
            self = self.record(ts, None, Some(&value));
        }
        self
    }

    /// Sets the compression bits without compressing: storage never decompresses.
    pub fn compression(mut self, codec: u8) -> Self {
        self.attributes = (self.attributes & !0x07) | (i16::from(codec) & 0x07);
        self
    }

    /// Sets the compression bits to `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd) and compresses
    /// the records area with it, as a client does.
    pub fn compressed(mut self, codec: u8) -> Self {
        self = self.compression(codec);
        self.compress = true;
        self
    }

    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self) -> Self {
        self.attributes |= 0x10;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut records = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            let mut body = vec![0u8]; // attributes
            put_zigzag(&mut body, r.timestamp - self.base_timestamp);
            put_zigzag(&mut body, i as i64);
            put_bytes(&mut body, r.key.as_deref());
            put_bytes(&mut body, r.value.as_deref());
            put_zigzag(&mut body, r.headers.len() as i64);
            for (k, v) in &r.headers {
                put_bytes(&mut body, Some(k));
                put_bytes(&mut body, v.as_deref());
            }
            put_zigzag(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        if self.compress {
            use crate::batch::Compression;
            let codec = match self.attributes & 0x07 {
                1 => Compression::Gzip,
                2 => Compression::Snappy,
                3 => Compression::Lz4,
                4 => Compression::Zstd,
                other => Compression::Unknown(other as u8),
            };
            records = crate::codec::compress(codec, &records).expect("compress");
        }
        let count = self.records.len() as i32;
        let max_timestamp = self
            .records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(self.base_timestamp);
        let mut out = Vec::with_capacity(crate::batch::HEADER_LEN + records.len());
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&(49 + records.len() as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(2); // magic
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&(count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&records);
        let crc = crc32c::crc32c(out.get(21..).unwrap_or_default());
        if let Some(dst) = out.get_mut(17..21) {
            dst.copy_from_slice(&crc.to_be_bytes());
        }
        out
    }
}
