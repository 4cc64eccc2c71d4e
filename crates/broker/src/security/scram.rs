//! SCRAM-SHA-256/512 (RFC 5802, RFC 7677) arithmetic and the stored credential.
//!
//! The broker keeps `StoredKey` and `ServerKey` per user and mechanism, never the password
//! nor `SaltedPassword`: a stolen credential file lets no one log in without a brute force of
//! every password through the iterated hash.

use std::num::NonZeroU32;

use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Kafka's bounds on SCRAM iterations (ScramMechanism's minIterations/maxIterations).
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// A SASL mechanism Weir offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    pub fn parse(s: &str) -> Option<Mechanism> {
        match s {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The `mechanism` code of the KIP-554 APIs (1: SHA-256, 2: SHA-512).
    pub fn from_code(code: i8) -> Option<Mechanism> {
        match code {
            1 => Some(Mechanism::ScramSha256),
            2 => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }

    pub fn code(self) -> i8 {
        match self {
            Mechanism::Plain => 0,
            Mechanism::ScramSha256 => 1,
            Mechanism::ScramSha512 => 2,
        }
    }

    /// The SCRAM mechanisms, PLAIN excluded.
    pub const SCRAM: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::ScramSha512];

    fn algorithms(
        self,
    ) -> (
        hmac::Algorithm,
        &'static digest::Algorithm,
        pbkdf2::Algorithm,
    ) {
        match self {
            Mechanism::ScramSha512 => (
                hmac::HMAC_SHA512,
                &digest::SHA512,
                pbkdf2::PBKDF2_HMAC_SHA512,
            ),
            // PLAIN has no hash of its own; it is checked against a SCRAM credential.
            Mechanism::ScramSha256 | Mechanism::Plain => (
                hmac::HMAC_SHA256,
                &digest::SHA256,
                pbkdf2::PBKDF2_HMAC_SHA256,
            ),
        }
    }

    /// The hash's output length.
    pub fn key_len(self) -> usize {
        self.algorithms().1.output_len()
    }

    /// `Hi(password, salt, i)`: PBKDF2 with the mechanism's HMAC, one block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.key_len()];
        let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.algorithms().2, iterations, salt, password, &mut out);
        out
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.algorithms().0, key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithms().1, data).as_ref().to_vec()
    }
}

/// What the broker stores for one user and mechanism (RFC 5802 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
}

impl ScramCredential {
    /// The credential from `SaltedPassword` (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
        }
    }

    /// The credential of `password` (offline user creation, tests).
    pub fn from_password(
        mechanism: Mechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        ScramCredential::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// Whether `password` is this credential's, in constant time once derived (PLAIN).
    pub fn matches_password(&self, mechanism: Mechanism, password: &str) -> bool {
        let salted = mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let candidate =
            ScramCredential::from_salted_password(mechanism, &salted, Vec::new(), self.iterations);
        bool::from(candidate.stored_key.ct_eq(&self.stored_key))
    }

    /// Checks a SCRAM client proof over `auth_message`; on success, the server signature.
    pub fn verify_proof(
        &self,
        mechanism: Mechanism,
        auth_message: &[u8],
        proof: &[u8],
    ) -> Option<Vec<u8>> {
        let client_signature = mechanism.hmac(&self.stored_key, auth_message);
        if proof.len() != client_signature.len() {
            return None;
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let ok = mechanism.hash(&client_key).ct_eq(&self.stored_key);
        bool::from(ok).then(|| mechanism.hmac(&self.server_key, auth_message))
    }
}

/// Random bytes from the system's generator (salts, nonces, secrets).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut out = vec![0u8; n];
    // The system generator fails only when the OS has no entropy source at all, where no
    // secure nonce can exist: refusing to run is the only safe answer.
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the system random generator failed");
    out
}

mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    /// RFC 7677 §3's example exchange, SCRAM-SHA-256, user "user", password "pencil".
    #[test]
    fn rfc7677_example_proof_and_signature() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let cred = ScramCredential::from_password(Mechanism::ScramSha256, "pencil", salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .expect("proof");
        let signature = cred
            .verify_proof(Mechanism::ScramSha256, auth_message.as_bytes(), &proof)
            .expect("the RFC's proof verifies");
        assert_eq!(
            STANDARD.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(cred
            .verify_proof(Mechanism::ScramSha256, auth_message.as_bytes(), &wrong)
            .is_none());
        assert!(cred.matches_password(Mechanism::ScramSha256, "pencil"));
        assert!(!cred.matches_password(Mechanism::ScramSha256, "pencil2"));
    }

    #[test]
    fn sha512_keys_have_its_length_and_the_credential_round_trips_json() {
        let cred = ScramCredential::from_password(Mechanism::ScramSha512, "pw", vec![1; 16], 4096);
        assert_eq!(cred.stored_key.len(), 64);
        let json = serde_json::to_string(&cred).expect("json");
        assert!(!json.contains("pw\""));
        assert_eq!(
            serde_json::from_str::<ScramCredential>(&json).expect("back"),
            cred
        );
    }
}
