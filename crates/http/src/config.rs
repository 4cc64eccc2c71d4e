//! The listener's setting: `weir.http.listen` (`--http-listen`), default `127.0.0.1:9644`;
//! empty disables it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The default address: loopback only, until authentication exists (issue 14).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9644";

pub const LISTEN_KEY: &str = "weir.http.listen";

/// How often the console samples the topics' counters for its rates and sparklines.
pub const SAMPLE_INTERVAL_KEY: &str = "weir.http.sample.interval.ms";
const DEFAULT_SAMPLE_INTERVAL_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `None`: disabled.
    pub listen: Option<SocketAddr>,
    pub sample_interval: Duration,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            listen: None,
            sample_interval: Duration::from_millis(DEFAULT_SAMPLE_INTERVAL_MS),
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
        key == LISTEN_KEY || key == SAMPLE_INTERVAL_KEY
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
        let value = pairs
            .get(LISTEN_KEY)
            .map_or(DEFAULT_LISTEN, String::as_str)
            .trim();
        if value.is_empty() {
            return Ok((
                HttpConfig {
                    listen: None,
                    sample_interval,
                },
                unknown,
            ));
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
                sample_interval,
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
}
