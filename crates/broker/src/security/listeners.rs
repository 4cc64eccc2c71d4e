//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use crate::config::ConfigError;

use super::config::SecurityProtocol;
use crate::config::invalid;

/// One configured listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The listener name (`PLAINTEXT`, `SASL_SSL`, or a mapped name like `INTERNAL`).
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: SocketAddr,
    /// From `advertised.listeners`; `None`: the bound address.
    pub advertise: Option<(String, u16)>,
}

/// A bound listener as connections see it: what to advertise to clients that came through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// host and port handed out in Metadata, FindCoordinator and DescribeCluster.
    pub advertise: (String, u16),
}

impl ListenerInfo {
    /// The listener of a bound socket; an advertised port 0 (a test's ephemeral port) becomes
    /// the bound one.
    pub fn bound(spec: &ListenerSpec, local: SocketAddr) -> ListenerInfo {
        let (host, port) = spec
            .advertise
            .clone()
            .unwrap_or_else(|| (local.ip().to_string(), local.port()));
        ListenerInfo {
            name: spec.name.clone(),
            protocol: spec.protocol,
            advertise: (host, if port == 0 { local.port() } else { port }),
        }
    }

    /// A PLAINTEXT listener advertising `advertise` (tests and tools that build a state
    /// without binding).
    pub fn plaintext(advertise: (String, u16)) -> ListenerInfo {
        ListenerInfo {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            advertise,
        }
    }
}

/// Parses the listener keys. Without `listeners`, one PLAINTEXT listener on `listen`
/// advertising `advertise` (the `--listen`/`--advertise` flags).
pub fn parse(
    get: &dyn Fn(&str) -> Option<String>,
    listen: SocketAddr,
    advertise: Option<(String, u16)>,
) -> Result<Vec<ListenerSpec>, ConfigError> {
    let map = protocol_map(get("listener.security.protocol.map").as_deref())?;
    let Some(value) = get("listeners").filter(|v| !v.trim().is_empty()) else {
        return Ok(vec![ListenerSpec {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            bind: listen,
            advertise,
        }]);
    };
    let advertised: BTreeMap<String, (String, u16)> = match get("advertised.listeners") {
        None => BTreeMap::new(),
        Some(a) => entries("advertised.listeners", &a)?
            .into_iter()
            .map(|(name, host, port)| (name, (host, port)))
            .collect(),
    };
    let mut specs: Vec<ListenerSpec> = Vec::new();
    for (name, host, port) in entries("listeners", &value)? {
        let protocol = *map.get(&name).ok_or_else(|| {
            invalid(
                "listeners",
                &name,
                "not a security protocol and not in listener.security.protocol.map",
            )
        })?;
        let host = if host.is_empty() { "0.0.0.0" } else { &host };
        let bind = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| invalid("listeners", &format!("{host}:{port}"), "cannot resolve"))?;
        if specs.iter().any(|s| s.name == name) {
            return Err(invalid("listeners", &name, "listener names must be unique"));
        }
        if specs.iter().any(|s| s.bind == bind && port != 0) {
            return Err(invalid("listeners", &value, "two listeners on one address"));
        }
        let advertise = advertised.get(&name).cloned();
        specs.push(ListenerSpec {
            name,
            protocol,
            bind,
            advertise,
        });
    }
    if let Some(unknown) = advertised
        .keys()
        .find(|n| !specs.iter().any(|s| &s.name == *n))
    {
        return Err(invalid(
            "advertised.listeners",
            unknown,
            "names no listener in `listeners`",
        ));
    }
    if specs.is_empty() {
        return Err(invalid("listeners", &value, "no listener"));
    }
    Ok(specs)
}

/// `NAME://host:port` entries, comma separated; `[v6]:port` allowed, empty host allowed.
fn entries(key: &str, value: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let bad = |why: &str| invalid(key, e, why);
            let (name, rest) = e
                .split_once("://")
                .ok_or_else(|| bad("expected NAME://host:port"))?;
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected NAME://host:port"))?;
            let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Ok((name.trim().to_ascii_uppercase(), host.to_string(), port))
        })
        .collect()
}

fn protocol_map(value: Option<&str>) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let mut map: BTreeMap<String, SecurityProtocol> = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .map(|p| (p.name().to_string(), p))
    .collect();
    for pair in value.unwrap_or("").split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let bad = |why: &str| invalid("listener.security.protocol.map", pair, why);
        let (name, proto) = pair
            .split_once(':')
            .ok_or_else(|| bad("expected NAME:PROTOCOL"))?;
        let proto = SecurityProtocol::parse(proto.trim()).ok_or_else(|| bad("unknown protocol"))?;
        map.insert(name.trim().to_ascii_uppercase(), proto);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(pairs: &[(&str, &str)]) -> Result<Vec<ListenerSpec>, ConfigError> {
        let pairs: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(
            &|k| pairs.get(k).cloned(),
            "127.0.0.1:9092".parse().expect("addr"),
            Some(("flag-host".into(), 1)),
        )
    }

    #[test]
    fn without_listeners_the_flag_is_the_plaintext_listener() {
        let l = parse_with(&[]).expect("ok");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(l[0].advertise, Some(("flag-host".into(), 1)));
    }

    #[test]
    fn several_listeners_with_advertised_and_mapped_names() {
        let l = parse_with(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:0,SASL_SSL://:9094,INTERNAL://[::1]:9095",
            ),
            ("advertised.listeners", "SASL_SSL://public.example:19094"),
            ("listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT"),
        ])
        .expect("ok");
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(l[1].bind, "0.0.0.0:9094".parse().expect("addr"));
        assert_eq!(l[1].advertise, Some(("public.example".into(), 19094)));
        assert_eq!(l[2].protocol, SecurityProtocol::SaslPlaintext);
        assert_eq!(l[2].bind, "[::1]:9095".parse().expect("addr"));
        let bound = ListenerInfo::bound(&l[0], "127.0.0.1:4321".parse().expect("addr"));
        assert_eq!(bound.advertise, ("127.0.0.1".into(), 4321));
    }

    #[test]
    fn refuses_unknown_names_and_bad_entries() {
        assert!(parse_with(&[("listeners", "FOO://:1")]).is_err());
        assert!(parse_with(&[("listeners", "PLAINTEXT:1")]).is_err());
        assert!(parse_with(&[("listeners", "PLAINTEXT://h:x")]).is_err());
        assert!(parse_with(&[("listeners", "PLAINTEXT://:1,PLAINTEXT://:2")]).is_err());
        assert!(parse_with(&[
            ("listeners", "PLAINTEXT://:1"),
            ("advertised.listeners", "SSL://h:2")
        ])
        .is_err());
    }
}
