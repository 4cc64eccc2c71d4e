//! The listener's settings: `weir.http.listen` (`--http-listen`), default `127.0.0.1:9644`,
//! empty disables it; the sampling interval; the console's sessions and the probes' token
//! (`crate::auth`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The default address: loopback only, until authentication exists (issue 14).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9644";

pub const LISTEN_KEY: &str = "weir.http.listen";

/// How often the console samples the topics' counters for its rates and sparklines.
pub const SAMPLE_INTERVAL_KEY: &str = "weir.http.sample.interval.ms";
const DEFAULT_SAMPLE_INTERVAL_MS: u64 = 10_000;

/// `Authorization: Bearer <token>` required on `/metrics`, `/livez` and `/readyz` when set.
pub const METRICS_TOKEN_KEY: &str = "weir.http.metrics.token";
/// How long a console session lasts after its login.
pub const SESSION_TIMEOUT_KEY: &str = "weir.http.session.timeout.ms";
const DEFAULT_SESSION_TIMEOUT_MS: u64 = 3_600_000;
/// Marks the session cookie `Secure`: the console is reached over TLS (a proxy in front of
/// the listener, which itself speaks plain HTTP).
pub const COOKIE_SECURE_KEY: &str = "weir.http.cookie.secure";

const KEYS: [&str; 5] = [
    LISTEN_KEY,
    SAMPLE_INTERVAL_KEY,
    METRICS_TOKEN_KEY,
    SESSION_TIMEOUT_KEY,
    COOKIE_SECURE_KEY,
];

#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `None`: disabled.
    pub listen: Option<SocketAddr>,
    pub sample_interval: Duration,
    /// `weir.http.metrics.token`; never logged.
    pub metrics_token: Option<String>,
    pub session_timeout: Duration,
    pub cookie_secure: bool,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("sample_interval", &self.sample_interval)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[redacted]"),
            )
            .field("session_timeout", &self.session_timeout)
            .field("cookie_secure", &self.cookie_secure)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            listen: None,
            sample_interval: Duration::from_millis(DEFAULT_SAMPLE_INTERVAL_MS),
            metrics_token: None,
            session_timeout: Duration::from_millis(DEFAULT_SESSION_TIMEOUT_MS),
            cookie_secure: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    #[error("{key}={value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
}

impl HttpConfig {
    /// Whether `key` is one of the listener's settings.
    pub fn is_key(key: &str) -> bool {
        KEYS.contains(&key)
    }

    /// Reads `weir.http.*` from `pairs`; returns the other `weir.http.*` keys as unknown.
    pub fn from_pairs(
        pairs: &BTreeMap<String, String>,
    ) -> Result<(HttpConfig, Vec<String>), HttpConfigError> {
        let unknown = pairs
            .keys()
            .filter(|k| k.starts_with("weir.http.") && !HttpConfig::is_key(k))
            .cloned()
            .collect();
        let sample_interval = match pairs.get(SAMPLE_INTERVAL_KEY) {
            None => Duration::from_millis(DEFAULT_SAMPLE_INTERVAL_MS),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(HttpConfigError::Invalid {
                        key: SAMPLE_INTERVAL_KEY,
                        value: v.clone(),
                        reason: "must be a positive number of milliseconds".to_string(),
                    })
                }
            },
        };
        let metrics_token = match pairs.get(METRICS_TOKEN_KEY).map(|t| t.trim()) {
            None | Some("") => None,
            Some(t) if t.len() < 16 => {
                return Err(HttpConfigError::Invalid {
                    key: METRICS_TOKEN_KEY,
                    value: "[redacted]".to_string(),
                    reason: "a token must have at least 16 characters".to_string(),
                })
            }
            Some(t) => Some(t.to_string()),
        };
        let session_timeout = match pairs.get(SESSION_TIMEOUT_KEY) {
            None => Duration::from_millis(DEFAULT_SESSION_TIMEOUT_MS),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms >= 1000 => Duration::from_millis(ms),
                _ => {
                    return Err(HttpConfigError::Invalid {
                        key: SESSION_TIMEOUT_KEY,
                        value: v.clone(),
                        reason: "must be at least 1000 milliseconds".to_string(),
                    })
                }
            },
        };
        let cookie_secure = match pairs.get(COOKIE_SECURE_KEY).map(|v| v.trim()) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(HttpConfigError::Invalid {
                    key: COOKIE_SECURE_KEY,
                    value: v.to_string(),
                    reason: "expected true or false".to_string(),
                })
            }
        };
        let base = HttpConfig {
            listen: None,
            sample_interval,
            metrics_token,
            session_timeout,
            cookie_secure,
        };
        let value = pairs
            .get(LISTEN_KEY)
            .map_or(DEFAULT_LISTEN, String::as_str)
            .trim();
        if value.is_empty() {
            return Ok((base, unknown));
        }
        let invalid = |reason: String| HttpConfigError::Invalid {
            key: LISTEN_KEY,
            value: value.to_string(),
            reason,
        };
        let addr = value
            .to_socket_addrs()
            .map_err(|e| invalid(e.to_string()))?
            .next()
            .ok_or_else(|| invalid("resolves to no address".to_string()))?;
        Ok((
            HttpConfig {
                listen: Some(addr),
                ..base
            },
            unknown,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_to_loopback_9644_and_empty_disables() {
        let (c, unknown) = HttpConfig::from_pairs(&pairs(&[])).expect("config");
        assert_eq!(c.listen, Some("127.0.0.1:9644".parse().expect("addr")));
        assert!(unknown.is_empty());
        let (c, _) = HttpConfig::from_pairs(&pairs(&[(LISTEN_KEY, "")])).expect("config");
        assert_eq!(c.listen, None);
        let (c, unknown) = HttpConfig::from_pairs(&pairs(&[
            (LISTEN_KEY, "0.0.0.0:1"),
            ("weir.http.nope", "1"),
        ]))
        .expect("config");
        assert_eq!(c.listen, Some("0.0.0.0:1".parse().expect("addr")));
        assert_eq!(unknown, vec!["weir.http.nope".to_string()]);
        let e = HttpConfig::from_pairs(&pairs(&[(LISTEN_KEY, "nonsense")])).expect_err("bad");
        assert!(e.to_string().contains(LISTEN_KEY), "{e}");
        assert_eq!(c.sample_interval, Duration::from_secs(10));
        let (c, _) =
            HttpConfig::from_pairs(&pairs(&[(SAMPLE_INTERVAL_KEY, "500")])).expect("config");
        assert_eq!(c.sample_interval, Duration::from_millis(500));
        for bad in ["0", "-1", "x"] {
            let e = HttpConfig::from_pairs(&pairs(&[(SAMPLE_INTERVAL_KEY, bad)])).expect_err(bad);
            assert!(e.to_string().contains(SAMPLE_INTERVAL_KEY), "{e}");
        }
    }

    #[test]
    fn login_settings_and_the_token_never_shows() {
        let (c, unknown) = HttpConfig::from_pairs(&pairs(&[])).expect("config");
        assert_eq!(c.metrics_token, None);
        assert_eq!(c.session_timeout, Duration::from_secs(3600));
        assert!(!c.cookie_secure);
        assert!(unknown.is_empty());
        let token = "0123456789abcdef-secret";
        let (c, unknown) = HttpConfig::from_pairs(&pairs(&[
            (METRICS_TOKEN_KEY, token),
            (SESSION_TIMEOUT_KEY, "60000"),
            (COOKIE_SECURE_KEY, "true"),
        ]))
        .expect("config");
        assert!(unknown.is_empty());
        assert_eq!(c.metrics_token.as_deref(), Some(token));
        assert_eq!(c.session_timeout, Duration::from_secs(60));
        assert!(c.cookie_secure);
        assert!(!format!("{c:?}").contains("secret"));
        let e = HttpConfig::from_pairs(&pairs(&[(METRICS_TOKEN_KEY, "short-secret")]))
            .expect_err("short");
        assert!(!e.to_string().contains("short-secret"), "{e}");
        for (k, v) in [(SESSION_TIMEOUT_KEY, "10"), (COOKIE_SECURE_KEY, "yes")] {
            let e = HttpConfig::from_pairs(&pairs(&[(k, v)])).expect_err(v);
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}
