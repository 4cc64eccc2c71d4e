//! SCRAM credentials, durable in `<data-dir>/meta/scram-credentials.json`.
//!
//! A change is written (temp file, fsync, rename, fsync dir) before it is applied in memory
//! and answered, so an acknowledged AlterUserScramCredentials survives kill -9, and a failed
//! write changes nothing. In the cluster this file becomes metadata records; the interface
//! (get, describe, alter) stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use weir_protocol::ResponseError;

use super::meta_file::{self, MetaFileError};
use super::scram::{random_bytes, Mechanism, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

const FILE: &str = "scram-credentials.json";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the SCRAM credentials: {0}")]
    File(#[from] MetaFileError),
    #[error("the credentials write task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

type Users = BTreeMap<String, BTreeMap<Mechanism, ScramCredential>>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    users: Users,
}

/// One alteration of AlterUserScramCredentials.
#[derive(Debug, Clone)]
pub enum Alteration {
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
    Delete {
        user: String,
        mechanism: i8,
    },
}

impl Alteration {
    pub fn user(&self) -> &str {
        match self {
            Alteration::Upsert { user, .. } | Alteration::Delete { user, .. } => user,
        }
    }

    fn mechanism(&self) -> i8 {
        match self {
            Alteration::Upsert { mechanism, .. } | Alteration::Delete { mechanism, .. } => {
                *mechanism
            }
        }
    }
}

/// A user's outcome: `None` when every alteration of the user applied.
pub type UserResult = (String, Option<(ResponseError, String)>);

#[derive(Debug)]
pub struct CredentialStore {
    /// `<data-dir>/meta`.
    dir: PathBuf,
    users: RwLock<Users>,
    /// Serializes alterations so two never interleave their file writes.
    write: tokio::sync::Mutex<()>,
    /// Derives a stable fake salt for unknown users, so SCRAM's first answer does not tell
    /// them apart from real ones.
    fake_salt_key: Vec<u8>,
}

impl CredentialStore {
    /// Loads `<data_dir>/meta/scram-credentials.json` (none yet: no users).
    pub fn open(data_dir: &Path) -> Result<CredentialStore, CredentialsError> {
        let dir = data_dir.join("meta");
        let users = load(&dir)?;
        Ok(CredentialStore {
            dir,
            users: RwLock::new(users),
            write: tokio::sync::Mutex::new(()),
            fake_salt_key: random_bytes(32),
        })
    }

    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.read().get(user)?.get(&mechanism).cloned()
    }

    /// Every credential of `user` (PLAIN checks the password against any of them).
    pub fn all_of(&self, user: &str) -> Vec<(Mechanism, ScramCredential)> {
        self.read()
            .get(user)
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    /// Users and their (mechanism, iterations); never keys.
    pub fn describe(&self) -> Vec<(String, Vec<(Mechanism, u32)>)> {
        self.read()
            .iter()
            .map(|(u, m)| {
                (
                    u.clone(),
                    m.iter().map(|(k, c)| (*k, c.iterations)).collect(),
                )
            })
            .collect()
    }

    /// A credential for a user that does not exist: a salt that is the same at every
    /// attempt, keys that match nothing.
    pub fn fake(&self, user: &str, mechanism: Mechanism) -> ScramCredential {
        let salt = mechanism.hmac(&self.fake_salt_key, user.as_bytes());
        ScramCredential {
            salt: salt.into_iter().take(16).collect(),
            iterations: MIN_ITERATIONS,
            stored_key: random_bytes(mechanism.key_len()),
            server_key: random_bytes(mechanism.key_len()),
        }
    }

    /// Applies AlterUserScramCredentials with Kafka's rules: every alteration of a user
    /// applies or none does; a user with an invalid alteration gets its error.
    pub async fn alter(
        &self,
        alterations: Vec<Alteration>,
    ) -> Result<Vec<UserResult>, CredentialsError> {
        let _writing = self.write.lock().await;
        let mut next = self.read().clone();
        let mut results: BTreeMap<String, Option<(ResponseError, String)>> = BTreeMap::new();
        let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
        for a in &alterations {
            *seen
                .entry((a.user().to_string(), a.mechanism()))
                .or_default() += 1;
            results.entry(a.user().to_string()).or_insert(None);
        }
        let mut fail = |user: &str, e: ResponseError, m: String| {
            let slot = results.entry(user.to_string()).or_insert(None);
            if slot.is_none() {
                *slot = Some((e, m));
            }
        };
        for a in &alterations {
            let user = a.user();
            if user.is_empty() {
                fail(
                    user,
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty".into(),
                );
                continue;
            }
            if seen
                .get(&(user.to_string(), a.mechanism()))
                .copied()
                .unwrap_or(0)
                > 1
            {
                fail(
                    user,
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                );
                continue;
            }
            let Some(mechanism) = Mechanism::from_code(a.mechanism()) else {
                fail(
                    user,
                    ResponseError::UnsupportedSaslMechanism,
                    "Unknown SCRAM mechanism".into(),
                );
                continue;
            };
            match a {
                Alteration::Upsert {
                    iterations,
                    salt,
                    salted_password,
                    ..
                } => {
                    let Some(iterations) = u32::try_from(*iterations)
                        .ok()
                        .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
                    else {
                        fail(
                            user,
                            ResponseError::UnacceptableCredential,
                            format!(
                                "Iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"
                            ),
                        );
                        continue;
                    };
                    if salt.is_empty() || salted_password.len() != mechanism.key_len() {
                        fail(
                            user,
                            ResponseError::UnacceptableCredential,
                            "Salt and salted password must be present, the password of the mechanism's length".into(),
                        );
                        continue;
                    }
                    next.entry(user.to_string()).or_default().insert(
                        mechanism,
                        ScramCredential::from_salted_password(
                            mechanism,
                            salted_password,
                            salt.clone(),
                            iterations,
                        ),
                    );
                }
                Alteration::Delete { .. } => {
                    let removed = next.get_mut(user).and_then(|m| m.remove(&mechanism));
                    if removed.is_none() {
                        fail(
                            user,
                            ResponseError::ResourceNotFound,
                            "Attempt to delete a user credential that does not exist".into(),
                        );
                    }
                    if next.get(user).is_some_and(BTreeMap::is_empty) {
                        next.remove(user);
                    }
                }
            }
        }
        // A failed user keeps what it had.
        let current = self.read().clone();
        for (user, result) in &results {
            if result.is_some() {
                match current.get(user) {
                    Some(had) => next.insert(user.clone(), had.clone()),
                    None => next.remove(user),
                };
            }
        }
        let dir = self.dir.clone();
        let to_write = next.clone();
        tokio::task::spawn_blocking(move || save(&dir, to_write)).await??;
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = next;
        for (user, result) in &results {
            match result {
                None => tracing::info!(%user, "SCRAM credentials altered"),
                Some((e, m)) => {
                    tracing::info!(%user, error = ?e, reason = %m, "SCRAM credential alteration refused")
                }
            }
        }
        Ok(results.into_iter().collect())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Users> {
        self.users.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn load(dir: &Path) -> Result<Users, CredentialsError> {
    let file = meta_file::load::<CredentialsFile>(dir, FILE)?;
    Ok(file.map(|f| f.users).unwrap_or_default())
}

fn save(dir: &Path, users: Users) -> Result<(), CredentialsError> {
    Ok(meta_file::save(dir, FILE, &CredentialsFile { users })?)
}

/// Creates or replaces `user`'s credential for `mechanism` in a data directory the caller
/// holds the lock of (`weir user create --data-dir`, before the broker starts).
pub fn upsert_offline(
    data_dir: &Path,
    user: &str,
    mechanism: Mechanism,
    password: &str,
    iterations: u32,
) -> Result<(), CredentialsError> {
    let dir = data_dir.join("meta");
    let mut users = load(&dir)?;
    users.entry(user.to_string()).or_default().insert(
        mechanism,
        ScramCredential::from_password(mechanism, password, random_bytes(24), iterations),
    );
    save(&dir, users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32, password: &str) -> Alteration {
        let m = Mechanism::from_code(mechanism).unwrap_or(Mechanism::ScramSha256);
        let salt = b"salty".to_vec();
        Alteration::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salted_password: m.salted_password(
                password.as_bytes(),
                &salt,
                u32::try_from(iterations).unwrap_or(1),
            ),
            salt,
        }
    }

    #[tokio::test]
    async fn alterations_persist_and_failures_change_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::open(dir.path()).expect("open");
        let results = store
            .alter(vec![
                upsert("alice", 1, 4096, "pw"),
                upsert("alice", 2, 8192, "pw"),
                upsert("bob", 1, 100, "pw"),
                upsert("carol", 7, 4096, "pw"),
                upsert("dave", 1, 4096, "pw"),
                Alteration::Delete {
                    user: "dave".into(),
                    mechanism: 1,
                },
                Alteration::Delete {
                    user: "erin".into(),
                    mechanism: 1,
                },
            ])
            .await
            .expect("alter");
        let code = |u: &str| {
            results
                .iter()
                .find(|(n, _)| n == u)
                .and_then(|(_, r)| r.as_ref().map(|(e, _)| *e))
        };
        assert_eq!(code("alice"), None);
        assert_eq!(code("bob"), Some(ResponseError::UnacceptableCredential));
        assert_eq!(code("carol"), Some(ResponseError::UnsupportedSaslMechanism));
        assert_eq!(code("dave"), Some(ResponseError::DuplicateResource));
        assert_eq!(code("erin"), Some(ResponseError::ResourceNotFound));
        let described = store.describe();
        assert_eq!(described.len(), 1, "only alice applied: {described:?}");
        assert_eq!(
            described[0].1,
            vec![
                (Mechanism::ScramSha256, 4096),
                (Mechanism::ScramSha512, 8192)
            ]
        );
        // What a reopened broker sees, and no password in the file.
        let reopened = CredentialStore::open(dir.path()).expect("reopen");
        let cred = reopened
            .get("alice", Mechanism::ScramSha512)
            .expect("alice");
        assert!(cred.matches_password(Mechanism::ScramSha512, "pw"));
        let text = std::fs::read_to_string(dir.path().join("meta").join(FILE)).expect("file");
        assert!(!text.contains("\"pw\""));

        let results = reopened
            .alter(vec![Alteration::Delete {
                user: "alice".into(),
                mechanism: 1,
            }])
            .await
            .expect("delete");
        assert_eq!(results, vec![("alice".to_string(), None)]);
        assert!(reopened.get("alice", Mechanism::ScramSha256).is_none());
        assert!(reopened.get("alice", Mechanism::ScramSha512).is_some());
    }

    #[test]
    fn offline_creation_and_fake_salts_are_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        upsert_offline(dir.path(), "admin", Mechanism::ScramSha256, "secret", 4096)
            .expect("offline");
        let store = CredentialStore::open(dir.path()).expect("open");
        let cred = store.get("admin", Mechanism::ScramSha256).expect("admin");
        assert!(cred.matches_password(Mechanism::ScramSha256, "secret"));
        let a = store.fake("nobody", Mechanism::ScramSha256);
        let b = store.fake("nobody", Mechanism::ScramSha256);
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.salt, store.fake("other", Mechanism::ScramSha256).salt);
    }
}
