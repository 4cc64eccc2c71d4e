//! Connections per client address, Kafka's `max.connections.per.ip` and
//! `max.connections.per.ip.overrides`.
//!
//! `max.connections` bounds the broker as a whole by not accepting (clients wait in the
//! listen backlog, `server.rs`); the per-address limit is checked right after accept: a
//! connection beyond its address's limit is closed at once, before TLS or any read, and
//! counted (`weir_connections_rejected_total{reason="per_ip"}`), as Kafka's
//! `ConnectionQuotas` does. One address cannot then take every `max.connections` slot.
//! Both keys are dynamic: each accept reads the limits in force.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::{invalid, ConfigError};

/// The per-address limits, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerIpLimits {
    /// `max.connections.per.ip` (default unlimited: `i32::MAX`).
    pub default: usize,
    /// `max.connections.per.ip.overrides`: `address:count` pairs, comma-separated.
    pub overrides: BTreeMap<IpAddr, usize>,
}

impl Default for PerIpLimits {
    fn default() -> PerIpLimits {
        PerIpLimits {
            default: i32::MAX as usize,
            overrides: BTreeMap::new(),
        }
    }
}

impl PerIpLimits {
    /// Reads both keys. Overrides name IP addresses (Kafka also takes host names and
    /// resolves them; Weir does not resolve names at accept, so a name is refused here).
    pub fn parse(get: &dyn Fn(&str) -> Option<String>) -> Result<PerIpLimits, ConfigError> {
        const KEY: &str = "max.connections.per.ip";
        const OVERRIDES: &str = "max.connections.per.ip.overrides";
        let default = match get(KEY).as_deref() {
            None => i32::MAX as usize,
            Some(v) => v
                .trim()
                .parse::<i32>()
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| invalid(KEY, v, "must be a whole number >= 0"))?,
        };
        let mut overrides = BTreeMap::new();
        let overrides_text = get(OVERRIDES).unwrap_or_default();
        for entry in overrides_text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            // The count follows the last ':' (an IPv6 address holds several).
            let (addr, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| invalid(OVERRIDES, entry, "expected address:count"))?;
            let addr = addr.trim().trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = addr.parse().map_err(|_| {
                invalid(
                    OVERRIDES,
                    entry,
                    "the address must be an IP address (names are not resolved)",
                )
            })?;
            let count = count
                .trim()
                .parse::<i32>()
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(OVERRIDES, entry, "the count must be a whole number >= 0")
                })?;
            overrides.insert(ip, count);
        }
        Ok(PerIpLimits { default, overrides })
    }

    /// The limit of connections from `ip`.
    pub fn limit(&self, ip: IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.default)
    }
}

/// Open connections by client address.
#[derive(Debug, Default)]
pub struct PerIpCounts {
    /// Taken for one insert or decrement per connection open and close; never across an await.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection of an address; the count drops with it.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<PerIpCounts>,
    ip: IpAddr,
}

impl PerIpCounts {
    /// A slot for a new connection from `ip`, or `None` when `limit` are already open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<PerIpLimits, ConfigError> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        PerIpLimits::parse(&|k| map.get(k).cloned())
    }

    #[test]
    fn overrides_win_over_the_default() {
        let l = parse(&[
            ("max.connections.per.ip", "3"),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.2:0, [::1]:7,10.0.0.1:100",
            ),
        ])
        .unwrap();
        assert_eq!(l.limit("127.0.0.1".parse().unwrap()), 3);
        assert_eq!(l.limit("127.0.0.2".parse().unwrap()), 0);
        assert_eq!(l.limit("::1".parse().unwrap()), 7);
        assert_eq!(l.limit("10.0.0.1".parse().unwrap()), 100);
        assert_eq!(parse(&[]).unwrap(), PerIpLimits::default());
    }

    #[test]
    fn bad_values_are_refused_with_the_entry() {
        for (k, v, why) in [
            ("max.connections.per.ip", "-1", ">= 0"),
            ("max.connections.per.ip", "many", ">= 0"),
            (
                "max.connections.per.ip.overrides",
                "localhost:3",
                "IP address",
            ),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.1",
                "address:count",
            ),
            ("max.connections.per.ip.overrides", "127.0.0.1:x", "count"),
        ] {
            let err = parse(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(why), "{k}={v}: {err}");
        }
    }

    #[test]
    fn slots_count_per_address_and_free_on_drop() {
        let counts = Arc::new(PerIpCounts::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = counts.admit(a, 2).expect("first");
        let second = counts.admit(a, 2).expect("second");
        assert!(counts.admit(a, 2).is_none(), "the third is over the limit");
        let other = counts
            .admit(b, 2)
            .expect("another address has its own count");
        assert_eq!(counts.open(a), 2);
        drop(first);
        assert_eq!(counts.open(a), 1);
        let again = counts.admit(a, 2).expect("a slot came free");
        drop((second, again, other));
        assert_eq!(counts.open(a), 0);
        assert!(
            counts.admit(a, 0).is_none(),
            "a limit of 0 refuses every connection"
        );
        assert!(
            counts.open.lock().unwrap().is_empty(),
            "no entry is left behind"
        );
    }
}
