//! Certificate reload without restart (issue 14): the server certificate chain and key are
//! re-read when their files' modification times change, checked at most once a second by the
//! next handshake. New handshakes get the new certificate; established connections keep the
//! session they negotiated.
//!
//! A replacement is taken only once it loads and its key matches its certificate, so a
//! renewal written file by file (certificate first, key second) serves the old pair until
//! both are in place. The client-CA truststore is read at start only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::tls::{certificates, TlsError};

/// How often a handshake may look at the files' modification times.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct ReloadingCert {
    certificates: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    inner: Mutex<Current>,
}

struct Current {
    key: Arc<CertifiedKey>,
    /// The files' modification times when `key` was loaded (or last refused).
    seen: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("certificates", &self.certificates)
            .field("key", &self.key)
            .finish()
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(
    certificates_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(certificates_path, "certificates")?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| TlsError::Pem {
        what: "private key",
        path: key_path.to_path_buf(),
        source,
    })?;
    Ok(CertifiedKey::from_der(chain, key, provider)?)
}

impl ReloadingCert {
    /// Loads the pair now: at start a bad file is the operator's error to report.
    pub fn new(
        certificates: &Path,
        key: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<ReloadingCert, TlsError> {
        let seen = (mtime(certificates), mtime(key));
        let loaded = load(certificates, key, &provider)?;
        Ok(ReloadingCert {
            certificates: certificates.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            inner: Mutex::new(Current {
                key: Arc::new(loaded),
                seen,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to serve, reloaded first if the files changed since the last look.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut cur = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if cur.checked.elapsed() < CHECK_EVERY {
            return cur.key.clone();
        }
        cur.checked = Instant::now();
        let now = (mtime(&self.certificates), mtime(&self.key));
        if now == cur.seen {
            return cur.key.clone();
        }
        match load(&self.certificates, &self.key, &self.provider) {
            Ok(k) => {
                tracing::info!(certificates = %self.certificates.display(), "TLS certificate reloaded; new connections use it");
                cur.key = Arc::new(k);
                cur.seen = now;
            }
            // Perhaps half written: tried again at the next look, the old pair served meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but do not load; still serving the previous certificate")
            }
        }
        cur.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_A: &str = include_str!("testdata/a.pem");
    const CERT_B: &str = include_str!("testdata/b.pem");

    #[allow(deprecated)]
    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn a_changed_pair_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.pem");
        std::fs::write(&path, CERT_A).expect("write");
        let r = ReloadingCert::new(&path, &path, provider()).expect("load");
        let first = r.current().cert[0].clone();

        // Broken: the old pair stays.
        std::fs::write(&path, "not a certificate").expect("write");
        r.inner.lock().expect("lock").checked -= CHECK_EVERY;
        bump(&path);
        assert_eq!(r.current().cert[0], first);

        std::fs::write(&path, CERT_B).expect("write");
        bump(&path);
        r.inner.lock().expect("lock").checked -= CHECK_EVERY;
        let second = r.current().cert[0].clone();
        assert_ne!(second, first, "the new certificate is served");
    }

    /// Moves the file's modification time forward (a rewrite within the file system's
    /// timestamp granularity would otherwise look unchanged).
    fn bump(path: &Path) {
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        let t = SystemTime::now() + Duration::from_secs(rand_secs());
        f.set_modified(t).expect("set mtime");
    }

    fn rand_secs() -> u64 {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
