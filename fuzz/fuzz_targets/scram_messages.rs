//! The SCRAM client messages a SASL listener parses before anyone is authenticated
//! (client-first, client-final) and the PLAIN-free parts of the SASL stage. Must never panic;
//! a parsed client-first re-encodes (user escaped again) to a message that parses to the same
//! user and nonce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_broker::security::scram_msg::{encode_saslname, parse_client_final, parse_client_first};

fuzz_target!(|data: &[u8]| {
    if let Ok(first) = parse_client_first(data) {
        let again = format!("n,,n={},r={}", encode_saslname(&first.user), first.nonce);
        let reparsed = parse_client_first(again.as_bytes()).expect("re-encoded client-first");
        assert_eq!(reparsed.user, first.user);
        assert_eq!(reparsed.nonce, first.nonce);
        assert!(first.bare.len() < data.len());
    }
    if let Ok(fin) = parse_client_final(data) {
        assert!(fin.without_proof.len() < data.len());
        assert!(!fin.nonce.is_empty());
    }
});
