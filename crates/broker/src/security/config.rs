//! The security keys (Kafka's names; docs/design/security.md), validated at start.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{invalid, parse, ConfigError};

use super::listeners::{self, ListenerSpec};
use super::scram::Mechanism;

/// Kafka's security protocols: what a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// Where the TLS material is (PEM files), read when the listeners are bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `ssl.keystore.location`: the certificate chain, leaf first.
    pub certificates: PathBuf,
    /// `ssl.key.location`, else the keystore file.
    pub key: PathBuf,
    /// `ssl.truststore.location`: CAs of client certificates.
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

/// The validated security settings.
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Every listener; at least one (PLAINTEXT on `--listen` by default).
    pub listeners: Vec<ListenerSpec>,
    /// Needed (and checked) when a listener speaks TLS.
    pub tls: Option<TlsFiles>,
    /// `weir.ssl.handshake.timeout.ms`.
    pub handshake_timeout: Duration,
    /// `sasl.enabled.mechanisms`.
    pub mechanisms: Vec<Mechanism>,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_authentication_delay: Duration,
    /// `connections.max.reauth.ms`; `None` (0): sessions never expire.
    pub max_reauth: Option<Duration>,
    /// `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// `sasl.server.max.receive.size`: the largest frame before SASL authentication.
    pub max_receive_before_auth: usize,
    /// `allow.everyone.if.no.acl.found`: default false once a listener authenticates
    /// clients, true otherwise (a broker without authentication stays open, as before).
    pub allow_if_no_acl: bool,
}

impl SecurityConfig {
    /// Parses the keys, `listen`/`advertise` being the `--listen`/`--advertise` flags.
    pub fn parse(
        get: &dyn Fn(&str) -> Option<String>,
        listen: std::net::SocketAddr,
        advertise: Option<(String, u16)>,
    ) -> Result<SecurityConfig, ConfigError> {
        let listeners = listeners::parse(get, listen, advertise)?;
        let ms = |key: &str, default: u64| -> Result<u64, ConfigError> {
            get(key).map_or(Ok(default), |v| parse(key, &v))
        };
        let tls_wanted = listeners.iter().any(|l| l.protocol.tls());
        let tls = match get("ssl.keystore.location") {
            None if tls_wanted => {
                return Err(invalid(
                    "ssl.keystore.location",
                    "",
                    "an SSL or SASL_SSL listener needs a PEM certificate file",
                ))
            }
            None => None,
            Some(certs) => {
                if get("ssl.key.password").is_some_and(|p| !p.is_empty()) {
                    return Err(invalid(
                        "ssl.key.password",
                        "(hidden)",
                        "encrypted private keys are not supported; give an unencrypted PEM key \
                         readable only by the broker",
                    ));
                }
                let client_auth = match get("ssl.client.auth")
                    .unwrap_or_else(|| "none".into())
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "none" => ClientAuth::None,
                    "requested" => ClientAuth::Requested,
                    "required" => ClientAuth::Required,
                    other => {
                        return Err(invalid(
                            "ssl.client.auth",
                            other,
                            "expected none, requested or required",
                        ))
                    }
                };
                let truststore = get("ssl.truststore.location").map(PathBuf::from);
                if client_auth != ClientAuth::None && truststore.is_none() {
                    return Err(invalid(
                        "ssl.truststore.location",
                        "",
                        "ssl.client.auth needs the CAs that sign client certificates",
                    ));
                }
                Some(TlsFiles {
                    key: get("ssl.key.location")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from(&certs)),
                    certificates: PathBuf::from(certs),
                    truststore,
                    client_auth,
                })
            }
        };
        let mechanisms = get("sasl.enabled.mechanisms")
            .unwrap_or_else(|| "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into())
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                Mechanism::parse(m).ok_or_else(|| {
                    invalid(
                        "sasl.enabled.mechanisms",
                        m,
                        "Weir offers PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if mechanisms.is_empty() && listeners.iter().any(|l| l.protocol.sasl()) {
            return Err(invalid(
                "sasl.enabled.mechanisms",
                "",
                "a SASL listener needs at least one mechanism",
            ));
        }
        let reauth = ms("connections.max.reauth.ms", 0)?;
        let authenticates = authenticates(&listeners, tls.as_ref());
        let allow_if_no_acl = match get("allow.everyone.if.no.acl.found") {
            None => !authenticates,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(invalid(
                        "allow.everyone.if.no.acl.found",
                        other,
                        "expected true or false",
                    ))
                }
            },
        };
        Ok(SecurityConfig {
            allow_if_no_acl,
            listeners,
            tls,
            handshake_timeout: Duration::from_millis(ms("weir.ssl.handshake.timeout.ms", 10_000)?),
            mechanisms,
            failed_authentication_delay: Duration::from_millis(ms(
                "connection.failed.authentication.delay.ms",
                100,
            )?),
            max_reauth: (reauth > 0).then(|| Duration::from_millis(reauth)),
            max_receive_before_auth: usize::try_from(ms("sasl.server.max.receive.size", 524_288)?)
                .unwrap_or(usize::MAX),
            super_users: get("super.users")
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// Whether any listener authenticates clients (SASL or required client certificates).
    pub fn authenticates(&self) -> bool {
        authenticates(&self.listeners, self.tls.as_ref())
    }
}

fn authenticates(listeners: &[ListenerSpec], tls: Option<&TlsFiles>) -> bool {
    listeners.iter().any(|l| l.protocol.sasl())
        || (listeners.iter().any(|l| l.protocol.tls())
            && tls.is_some_and(|t| t.client_auth != ClientAuth::None))
}
