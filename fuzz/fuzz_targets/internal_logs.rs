//! Weir's own on-disk formats. The first byte picks the decoder:
//!
//! - 0: a transaction log record (`TxnRecord::decode`); its encoding is canonical, so what
//!   decodes must encode back to the same bytes.
//! - 1: an internal log read (record batches, as `internal_log::replay` decodes them), then
//!   every record as a group offsets log record and as a transaction log record.
//! - 2: a producer snapshot (`<offset>.snapshot`); 3: a segment's aborted-transaction index
//!   (`.txnindex`). Both encodings are canonical: what decodes encodes back to the same bytes.
//! - 4: the log start checkpoint (round-trips).
//! - 5: `meta/topics.json` (round-trips); 6: `meta/cluster.json`, `meta/producer-ids.json`,
//!   `meta/broker-configs.json`.
//! - 7: one group offsets log record from a length-prefixed key and value.
//!
//! Bit 3 of the first byte repairs batch CRCs for decoder 1. Must never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_broker::fuzzing::{decode_internal_log, decode_offsets_log_record};
use weir_broker::meta;
use weir_coordinator::txn::TxnRecord;
use weir_fuzz::{fix_crcs, Input};
use weir_protocol::kafka_protocol::records::{Record, TimestampType};
use weir_storage::fuzzing;

fn txn_record(bytes: &[u8]) {
    if let Ok(record) = TxnRecord::decode(bytes) {
        let encoded = record.encode();
        assert_eq!(
            encoded, bytes,
            "a decoded transaction record is not canonical"
        );
        assert_eq!(TxnRecord::decode(&encoded).ok(), Some(record));
    }
}

fn record(key: Option<Bytes>, value: Option<Bytes>) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key,
        value,
        headers: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(rest);
    match which & 7 {
        0 => txn_record(rest),
        1 => {
            let mut bytes = rest.to_vec();
            if which & 8 != 0 {
                fix_crcs(&mut bytes);
            }
            if let Ok(records) = decode_internal_log(Bytes::from(bytes)) {
                for r in records {
                    let _ = decode_offsets_log_record(&r);
                    if let Some(value) = &r.value {
                        txn_record(value);
                    }
                }
            }
        }
        2 => {
            if let Some(encoded) = fuzzing::producer_snapshot_reencode(rest) {
                if rest.starts_with(b"WPS1") {
                    // The previous format loads and is written back in the current one,
                    // which must then be canonical.
                    let again = fuzzing::producer_snapshot_reencode(&encoded)
                        .expect("a re-encoded producer snapshot decodes");
                    assert_eq!(again, encoded, "a re-encoded WPS1 snapshot is not canonical");
                } else {
                    assert_eq!(encoded, rest, "a decoded producer snapshot is not canonical");
                }
            }
        }
        3 => {
            if let Some(aborted) = fuzzing::decode_txn_index(rest) {
                assert_eq!(
                    fuzzing::encode_txn_index(&aborted),
                    rest,
                    "a decoded aborted-transaction index is not canonical"
                );
            }
        }
        4 => {
            let Ok(text) = text else { return };
            if let Some(offset) = fuzzing::parse_log_start_checkpoint(text) {
                let encoded = format!("0\n{offset}\n");
                assert_eq!(fuzzing::parse_log_start_checkpoint(&encoded), Some(offset));
            }
        }
        5 => {
            if let Ok(topics) = meta::decode_topics(rest) {
                let encoded = meta::encode_topics(topics.clone()).expect("encode topics");
                assert_eq!(meta::decode_topics(&encoded).ok(), Some(topics));
            }
        }
        6 => {
            let _ = meta::decode_cluster_id(rest);
            let _ = meta::decode_producer_ids(rest);
            let _ = meta::decode_broker_configs(rest);
        }
        _ => {
            let mut input = Input::new(rest);
            let flags = input.u8();
            let key = Bytes::copy_from_slice(input.chunk());
            let value = Bytes::copy_from_slice(input.rest());
            let _ = decode_offsets_log_record(&record(
                (flags & 1 == 0).then_some(key),
                (flags & 2 == 0).then_some(value),
            ));
        }
    }
});
