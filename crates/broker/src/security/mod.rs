//! Listeners, TLS, SASL and SCRAM credentials (docs/design/security.md).
//!
//! Kept apart from the connection and dispatch code: a connection gets a [`transport::Stream`]
//! (plain or TLS) and, on a SASL listener, runs every frame through a
//! [`sasl::Authenticator`] before dispatch. Handlers see the result as the connection's
//! principal ([`Principal`]), the seam the authorizer of the next increment will use.

pub mod acl;
mod cert_reload;
pub mod config;
pub mod credentials;
pub mod listeners;
pub mod meta_file;
pub mod sasl;
#[cfg(test)]
mod sasl_tests;
pub mod scram;
pub mod scram_msg;
pub mod tls;
pub mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use weir_metrics::{Counter, Family, Registry};

pub use acl::AclOperation as Operation;
pub use acl::{AclStore, AclsError};
pub use config::{SecurityConfig, SecurityProtocol};
pub use credentials::{CredentialStore, CredentialsError};
pub use listeners::{ListenerInfo, ListenerSpec};
pub use meta_file::MetaFileError;

/// Who a connection acts as: `User:ANONYMOUS` until SASL or a client certificate says
/// otherwise, as Kafka's `KafkaPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(Arc<str>);

impl Principal {
    pub fn anonymous() -> Principal {
        Principal(Arc::from("User:ANONYMOUS"))
    }

    pub fn user(name: &str) -> Principal {
        Principal(Arc::from(format!("User:{name}")))
    }

    /// `User:ANONYMOUS`, `User:alice`, `User:CN=alice,O=Acme`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_anonymous(&self) -> bool {
        &*self.0 == "User:ANONYMOUS"
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kafka's ACL resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Cluster,
    Topic(&'a str),
    Group(&'a str),
    TransactionalId(&'a str),
}

impl<'a> Resource<'a> {
    /// The ACL resource type and name (`kafka-cluster` for the cluster).
    pub fn acl(self) -> (acl::ResourceType, &'a str) {
        match self {
            Resource::Cluster => (acl::ResourceType::Cluster, acl::CLUSTER_NAME),
            Resource::Topic(n) => (acl::ResourceType::Topic, n),
            Resource::Group(n) => (acl::ResourceType::Group, n),
            Resource::TransactionalId(n) => (acl::ResourceType::TransactionalId, n),
        }
    }
}

/// Compares two secrets (tokens, session ids) in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The broker's security state: credentials, ACLs and the counters the metrics will export.
#[derive(Debug)]
pub struct Security {
    pub credentials: CredentialStore,
    pub acls: AclStore,
    pub config: SecurityConfig,
    /// `super.users` and `allow.everyone.if.no.acl.found`.
    policy: acl::index::Policy,
    failed_authentications: AtomicU64,
    successful_authentications: AtomicU64,
    failed_tls_handshakes: AtomicU64,
    /// The labelled counters on `/metrics`, once [`Security::register_metrics`] ran (unit
    /// tests build a `Security` without a registry).
    metrics: OnceLock<SecurityMetrics>,
}

/// Failures by kind, for `/metrics`: an operator sees a password guesser (by listener and
/// mechanism, or at the console's login) apart from a misconfigured client.
struct SecurityMetrics {
    /// `weir_sasl_authentication_failures_total{listener,mechanism}`.
    sasl: Arc<Family<Counter>>,
    /// `weir_console_login_failures_total{method}`: `form` or `basic`.
    console: Arc<Family<Counter>>,
    /// `weir_tls_handshake_failures_total{listener}`.
    tls: Arc<Family<Counter>>,
}

impl std::fmt::Debug for SecurityMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecurityMetrics")
    }
}

impl Security {
    pub fn new(config: SecurityConfig, credentials: CredentialStore, acls: AclStore) -> Security {
        let policy = acl::index::Policy {
            super_users: config.super_users.iter().cloned().collect(),
            allow_if_no_acl: config.allow_if_no_acl,
        };
        Security {
            credentials,
            acls,
            config,
            policy,
            failed_authentications: AtomicU64::new(0),
            successful_authentications: AtomicU64::new(0),
            failed_tls_handshakes: AtomicU64::new(0),
            metrics: OnceLock::new(),
        }
    }

    /// Puts the failure counters on `registry` (the broker's `/metrics`); once.
    pub fn register_metrics(&self, registry: &Registry) {
        let _ = self.metrics.set(SecurityMetrics {
            sasl: registry.counters(
                "weir_sasl_authentication_failures_total",
                "Failed SASL authentications (wrong password, unknown user, mechanism not enabled, malformed exchange), by listener and mechanism.",
                &["listener", "mechanism"],
                None,
            ),
            console: registry.counters(
                "weir_console_login_failures_total",
                "Failed console logins, by method (form: the login page; basic: HTTP Basic auth on /api).",
                &["method"],
                None,
            ),
            tls: registry.counters(
                "weir_tls_handshake_failures_total",
                "TLS handshakes that failed or timed out, by listener.",
                &["listener"],
                None,
            ),
        });
    }

    /// A failed SASL authentication on `listener`; `mechanism` is `unknown` for one the
    /// listener does not enable.
    pub fn count_failed_sasl(&self, listener: &str, mechanism: &str) {
        self.failed_authentications.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.sasl.with(&[listener, mechanism]).inc();
        }
    }

    /// A failed console login (`form` or `basic`); also counted with SASL's total, as the
    /// same credentials were guessed.
    pub fn count_failed_console_login(&self, method: &str) {
        self.failed_authentications.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.console.with(&[method]).inc();
        }
    }

    pub fn count_successful_authentication(&self) {
        self.successful_authentications
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_failed_tls_handshake(&self, listener: &str) {
        self.failed_tls_handshakes.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.tls.with(&[listener]).inc();
        }
    }

    /// Whether `principal`, connected from `host`, may perform `operation` on `resource`:
    /// the one function every handler asks (Kafka's `Authorizer#authorize`), answered from
    /// the ACLs, `super.users` and `allow.everyone.if.no.acl.found`.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        operation: Operation,
        resource: Resource<'_>,
    ) -> acl::index::Decision {
        let (resource_type, name) = resource.acl();
        self.acls.index().decide(
            &self.policy,
            &acl::index::Check {
                principal: principal.as_str(),
                host,
                operation,
                resource_type,
                name,
            },
        )
    }

    /// Whether `principal` is allowed `operation` on some resource of `resource_type`
    /// (KIP-679's idempotent producers: WRITE on any topic).
    pub fn authorize_any(
        &self,
        principal: &Principal,
        host: std::net::IpAddr,
        operation: Operation,
        resource_type: acl::ResourceType,
    ) -> bool {
        self.acls.index().allows_any(
            &self.policy,
            principal.as_str(),
            host,
            operation,
            resource_type,
        )
    }

    /// Whether `password` is `user`'s, checked against the stored SCRAM credentials as SASL
    /// PLAIN does (SaltedPassword derived with the stored salt and iterations, StoredKey
    /// compared in constant time). An unknown user costs the same derivation, so the time
    /// taken does not say whether the user exists. Blocking: PBKDF2 is milliseconds of CPU,
    /// callers on the runtime run it on the blocking pool. Counts nothing: the caller counts
    /// and delays failures as its protocol does.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        let known = self.credentials.all_of(user);
        if known.is_empty() {
            let fake = self.credentials.fake(user, scram::Mechanism::ScramSha256);
            let _ = fake.matches_password(scram::Mechanism::ScramSha256, password);
            return false;
        }
        known.iter().any(|(m, c)| c.matches_password(*m, password))
    }

    /// Failed SASL authentications since start (Kafka's `failed-authentication-total`).
    pub fn failed_authentications(&self) -> u64 {
        self.failed_authentications.load(Ordering::Relaxed)
    }

    /// Successful SASL authentications since start (`successful-authentication-total`).
    pub fn successful_authentications(&self) -> u64 {
        self.successful_authentications.load(Ordering::Relaxed)
    }

    /// TLS handshakes that failed or timed out since start.
    pub fn failed_tls_handshakes(&self) -> u64 {
        self.failed_tls_handshakes.load(Ordering::Relaxed)
    }
}
