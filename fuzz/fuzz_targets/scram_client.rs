//! What Weir's client reads from a broker during SASL SCRAM: the server-first message (nonce,
//! salt, iteration count) and the server-final message (signature or error). A broker, or
//! something pretending to be one, must not crash the CLI or make it accept a signature it
//! did not compute. Must never panic; an accepted server-first extends the client's nonce and
//! asks iterations within the bounds; a server-final is accepted only after a client-final.
//!
//! Input: the server-first message, then (after the first NUL) the server-final message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_client::scram::{SaslMechanism, ScramClient, MAX_ITERATIONS, MIN_ITERATIONS};

fuzz_target!(|data: &[u8]| {
    let (first, last) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let first = String::from_utf8_lossy(first);
    let last = String::from_utf8_lossy(last);
    let mechanism = if data.len() % 2 == 0 {
        SaslMechanism::ScramSha256
    } else {
        SaslMechanism::ScramSha512
    };
    let mut client = ScramClient::with_nonce(mechanism, "user", "pencil", "fuzznonce");
    assert!(client.verify_server_final(&last).is_err(), "no final before the proof");
    if client.client_final(&first).is_ok() {
        // The client takes the last `i=` of the message.
        let iterations = first
            .split(',')
            .rev()
            .find_map(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse::<u32>().ok())
            .expect("an accepted server-first names its iterations");
        assert!((MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations));
        let _ = client.verify_server_final(&last);
    }
});
