//! Secured listeners: TLS (rustls, ring provider) and SASL (PLAIN, SCRAM-SHA-256/512) for
//! every connection a [`crate::Client`] or pipeline opens.
//!
//! Data flow: [`ClientSecurity`] is built once from the caller's settings (the CA file is
//! read and the client certificate loaded there, so a bad file fails before any connection).
//! [`crate::Connection`] opens TCP, wraps it in TLS when [`ClientSecurity::tls`] is set
//! ([`Stream`]), negotiates API versions, then, when SASL is set, runs SaslHandshake v1 and
//! SaslAuthenticate with the mechanism's tokens ([`crate::scram`]), as Kafka's clients do.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::scram::SaslMechanism;

/// Why the TLS settings cannot be used: the operator's files, reported before connecting.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read PEM {what} from {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("a client certificate needs its key (and the key its certificate)")]
    HalfClientIdentity,
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The SASL identity to authenticate as.
#[derive(Clone)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslCredentials {
    // The password never reaches a log line or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a TLS connection needs: the CA that signs the broker's certificate, optionally this
/// client's certificate and key (mTLS), and the name to verify instead of the host dialled.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
}

/// The TLS side, built once from [`TlsSettings`].
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = |source| TlsSetupError::Pem {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

impl TlsClient {
    /// Reads the files now: a missing or unreadable one fails here, before any connection.
    /// Without a CA file there is nothing to trust (no system store is bundled), which is
    /// refused rather than turned into "trust anything".
    pub fn new(settings: &TlsSettings) -> Result<TlsClient, TlsSetupError> {
        // ring, as the broker: no C build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let ca = settings
            .ca_file
            .as_deref()
            .ok_or_else(|| TlsSetupError::Empty {
                what: "CA certificates (set a CA file to trust the broker)",
                path: PathBuf::new(),
            })?;
        for cert in certificates(ca, "CA certificates")? {
            roots.add(cert)?;
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&settings.cert_file, &settings.key_file) {
            (Some(cert), key) => {
                let chain = certificates(cert, "client certificate")?;
                let key_path = key.as_deref().unwrap_or(cert);
                let key = PrivateKeyDer::from_pem_file(key_path).map_err(|source| {
                    TlsSetupError::Pem {
                        what: "private key",
                        path: key_path.to_path_buf(),
                        source,
                    }
                })?;
                builder.with_client_auth_cert(chain, key)?
            }
            (None, Some(_)) => return Err(TlsSetupError::HalfClientIdentity),
            (None, None) => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: settings.server_name.clone(),
        })
    }

    /// The TLS handshake over `tcp` to `addr` ("host:port"), verifying the broker's
    /// certificate against the configured name, else the host of `addr`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        tcp: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(addr).to_owned(),
        };
        let name = ServerName::try_from(host.clone()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host:?} is not a valid TLS server name: {e}"),
            )
        })?;
        self.connector.connect(name, tcp).await
    }
}

/// The host of "host:port" ("[::1]:9092" gives "::1").
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// How every connection of a client is secured: TLS, SASL, both or neither (PLAINTEXT).
/// Cheap to clone: the TLS configuration is shared.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<TlsClient>,
    pub sasl: Option<Arc<SaslCredentials>>,
}

impl ClientSecurity {
    /// PLAINTEXT: no TLS, no SASL.
    pub fn plaintext() -> ClientSecurity {
        ClientSecurity::default()
    }

    /// Kafka's name of the security protocol these settings speak.
    pub fn protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        }
    }
}

/// A connection's byte stream: plain TCP or TLS over it.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port_and_brackets() {
        assert_eq!(host_of("localhost:9092"), "localhost");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9092"), "::1");
        assert_eq!(host_of("nohost"), "nohost");
    }

    #[test]
    fn protocol_names_follow_kafka() {
        let mut s = ClientSecurity::plaintext();
        assert_eq!(s.protocol(), "PLAINTEXT");
        s.sasl = Some(Arc::new(SaslCredentials {
            mechanism: SaslMechanism::Plain,
            user: "u".into(),
            password: "hunter2".into(),
        }));
        assert_eq!(s.protocol(), "SASL_PLAINTEXT");
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");
    }

    #[test]
    fn tls_without_a_ca_or_with_half_an_identity_is_refused() {
        assert!(TlsClient::new(&TlsSettings::default()).is_err());
        let dir = std::env::temp_dir().join(format!("weir-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = TlsClient::new(&TlsSettings {
            ca_file: Some(empty.clone()),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(matches!(err, TlsSetupError::Empty { .. }), "{err}");
        let missing = TlsClient::new(&TlsSettings {
            ca_file: Some(dir.join("missing.pem")),
            ..TlsSettings::default()
        })
        .unwrap_err();
        assert!(matches!(missing, TlsSetupError::Pem { .. }), "{missing}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
