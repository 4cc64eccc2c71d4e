//! The client side of SASL SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and PLAIN, as pure
//! functions over the exchanged messages: no socket, so the exchange is tested against the
//! RFC's own example.
//!
//! SCRAM in three messages: [`ScramClient::client_first`] (`n,,n=user,r=nonce`), then
//! [`ScramClient::client_final`] answers the server-first message (the combined nonce, the
//! salt and the iteration count) with the proof, and [`ScramClient::verify_server_final`]
//! checks the server's signature, so a broker that does not know the password cannot pass
//! as one that does. Channel binding is not used (`n,,`), as Kafka.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Kafka's lower bound on SCRAM iterations: a server asking fewer is refused (Kafka's
/// `ScramSaslClient` does the same), so a rogue broker cannot get a cheap-to-crack proof.
pub const MIN_ITERATIONS: u32 = 4096;
/// A server asking more than this is refused: the client would spend seconds of CPU on it.
pub const MAX_ITERATIONS: u32 = 1 << 20;

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// Parses Kafka's name (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`), case-insensitively.
    pub fn parse(s: &str) -> Option<SaslMechanism> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            _ => None,
        }
    }

    /// Kafka's name of the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn algorithms(
        self,
    ) -> (
        hmac::Algorithm,
        &'static digest::Algorithm,
        pbkdf2::Algorithm,
    ) {
        match self {
            SaslMechanism::ScramSha512 => (
                hmac::HMAC_SHA512,
                &digest::SHA512,
                pbkdf2::PBKDF2_HMAC_SHA512,
            ),
            SaslMechanism::ScramSha256 | SaslMechanism::Plain => (
                hmac::HMAC_SHA256,
                &digest::SHA256,
                pbkdf2::PBKDF2_HMAC_SHA256,
            ),
        }
    }
}

/// Why a SCRAM exchange cannot go on: the server's message is malformed, asks for something
/// unsafe, reports an error, or its signature is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed server message: {0}")]
    Malformed(String),
    #[error("the server's nonce does not extend the client's")]
    NonceMismatch,
    #[error("the server asks {0} iterations (accepted: {MIN_ITERATIONS}..={MAX_ITERATIONS})")]
    Iterations(u32),
    #[error("the server refused: {0}")]
    Server(String),
    #[error("the server's signature is wrong: it does not know this user's credential")]
    BadServerSignature,
}

/// The PLAIN token: `authzid NUL user NUL password`, with an empty authorization id.
pub fn plain_token(user: &str, password: &str) -> Vec<u8> {
    let mut t = Vec::with_capacity(user.len() + password.len() + 2);
    t.push(0);
    t.extend_from_slice(user.as_bytes());
    t.push(0);
    t.extend_from_slice(password.as_bytes());
    t
}

/// RFC 5802 `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One SCRAM exchange from the client's side.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: SaslMechanism,
    password: String,
    nonce: String,
    client_first_bare: String,
    /// Set by [`ScramClient::client_final`]: what the server's final message must carry.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A new exchange for `user` with a fresh random nonce.
    pub fn new(mechanism: SaslMechanism, user: &str, password: &str) -> ScramClient {
        use ring::rand::SecureRandom;
        let mut raw = [0u8; 24];
        // Without an entropy source no nonce is safe; the exchange then uses a zero nonce
        // only in a process that cannot run TLS either.
        let _ = ring::rand::SystemRandom::new().fill(&mut raw);
        Self::with_nonce(mechanism, user, password, &STANDARD.encode(raw))
    }

    /// An exchange with a given nonce (printable, no `,`): for tests against known vectors.
    pub fn with_nonce(
        mechanism: SaslMechanism,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        ScramClient {
            mechanism,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={},r={nonce}", sasl_name(user)),
            expected_server_signature: None,
        }
    }

    /// `n,,n=user,r=nonce`.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message (with the proof) that answers `server_first`.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => {
                    salt =
                        Some(STANDARD.decode(v).map_err(|e| {
                            ScramError::Malformed(format!("salt is not base64: {e}"))
                        })?)
                }
                Some(("i", v)) => {
                    iterations = Some(
                        v.parse::<u32>()
                            .map_err(|_| ScramError::Malformed(format!("iteration count {v:?}")))?,
                    )
                }
                Some(("e", v)) => return Err(ScramError::Server(v.to_owned())),
                // RFC 5802: `m=` (mandatory extensions) this client cannot honour.
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension".into())),
                _ => {}
            }
        }
        let missing = |what: &str| ScramError::Malformed(format!("no {what} in {server_first:?}"));
        let nonce = nonce.ok_or_else(|| missing("nonce"))?;
        let salt = salt.ok_or_else(|| missing("salt"))?;
        let iterations = iterations.ok_or_else(|| missing("iteration count"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let (mac, hash, kdf) = self.mechanism.algorithms();
        let mut salted = vec![0u8; hash.output_len()];
        let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(kdf, rounds, &salt, self.password.as_bytes(), &mut salted);
        let sign = |key: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(mac, key), data)
                .as_ref()
                .to_vec()
        };
        let client_key = sign(&salted, b"Client Key");
        let stored_key = digest::digest(hash, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = sign(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = sign(&salted, b"Server Key");
        self.expected_server_signature = Some(sign(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server-final message (`v=signature`, or `e=error`).
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_owned()));
        }
        let given = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .ok_or_else(|| ScramError::Malformed(format!("no verifier in {server_final:?}")))?;
        let given = STANDARD
            .decode(given)
            .map_err(|e| ScramError::Malformed(format!("verifier is not base64: {e}")))?;
        match &self.expected_server_signature {
            // Not secret (the server sent it): a plain comparison is fine.
            Some(expected) if *expected == given => Ok(()),
            _ => Err(ScramError::BadServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's example exchange, byte for byte.
    #[test]
    fn matches_the_rfc_7677_example() {
        let mut c = ScramClient::with_nonce(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            c.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            c.verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn refuses_unsafe_or_malformed_servers() {
        let fresh = || ScramClient::with_nonce(SaslMechanism::ScramSha512, "u", "p", "abc");
        let cases = [
            ("r=xyz123,s=AAAA,i=4096", ScramError::NonceMismatch),
            ("r=abc,s=AAAA,i=4096", ScramError::NonceMismatch),
            ("r=abcdef,s=AAAA,i=1", ScramError::Iterations(1)),
            (
                "r=abcdef,s=AAAA,i=99999999",
                ScramError::Iterations(99_999_999),
            ),
            ("e=unknown-user", ScramError::Server("unknown-user".into())),
        ];
        for (msg, want) in cases {
            assert_eq!(fresh().client_final(msg), Err(want), "{msg}");
        }
        for msg in [
            "r=abcdef,i=4096",
            "r=abcdef,s=!!,i=4096",
            "r=abcdef,s=AAAA,i=x",
            "",
        ] {
            assert!(
                matches!(fresh().client_final(msg), Err(ScramError::Malformed(_))),
                "{msg}"
            );
        }
        // A server final before any client final is never accepted.
        assert_eq!(
            fresh().verify_server_final("v=AAAA"),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn user_names_are_escaped_and_plain_tokens_are_nul_separated() {
        let c = ScramClient::with_nonce(SaslMechanism::ScramSha256, "a=b,c", "p", "n");
        assert_eq!(c.client_first(), "n,,n=a=3Db=2Cc,r=n");
        assert_eq!(plain_token("alice", "pw"), b"\0alice\0pw");
        assert_eq!(
            SaslMechanism::parse("scram-sha-512"),
            Some(SaslMechanism::ScramSha512)
        );
        assert_eq!(SaslMechanism::parse("GSSAPI"), None);
    }
}
