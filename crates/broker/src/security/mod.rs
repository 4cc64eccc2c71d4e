//! Listeners, TLS, SASL and SCRAM credentials (docs/design/security.md).
//!
//! Kept apart from the connection and dispatch code: a connection gets a [`transport::Stream`]
//! (plain or TLS) and, on a SASL listener, runs every frame through a
//! [`sasl::Authenticator`] before dispatch. Handlers see the result as the connection's
//! principal ([`Principal`]), the seam the authorizer of the next increment will use.

pub mod config;
pub mod credentials;
pub mod listeners;
pub mod sasl;
#[cfg(test)]
mod sasl_tests;
pub mod scram;
pub mod scram_msg;
pub mod tls;
pub mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use config::{SecurityConfig, SecurityProtocol};
pub use credentials::{CredentialStore, CredentialsError};
pub use listeners::{ListenerInfo, ListenerSpec};

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

/// Kafka's ACL operations the handlers ask about (the next increment adds the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Describe,
    Alter,
}

/// Kafka's ACL resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Cluster,
    Topic(&'a str),
    Group(&'a str),
    TransactionalId(&'a str),
}

/// The broker's security state: credentials and the counters the metrics will export.
#[derive(Debug)]
pub struct Security {
    pub credentials: CredentialStore,
    pub config: SecurityConfig,
    failed_authentications: AtomicU64,
    successful_authentications: AtomicU64,
    failed_tls_handshakes: AtomicU64,
}

impl Security {
    pub fn new(config: SecurityConfig, credentials: CredentialStore) -> Security {
        Security {
            credentials,
            config,
            failed_authentications: AtomicU64::new(0),
            successful_authentications: AtomicU64::new(0),
            failed_tls_handshakes: AtomicU64::new(0),
        }
    }

    pub fn count_failed_authentication(&self) {
        self.failed_authentications.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_successful_authentication(&self) {
        self.successful_authentications
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_failed_tls_handshake(&self) {
        self.failed_tls_handshakes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `principal` may perform `operation` on `resource`: the one function every
    /// handler asks (Kafka's `Authorizer#authorize`). Until ACLs exist: super users may do
    /// anything; without `super.users` everyone may (Kafka without an authorizer); with it,
    /// cluster operations (SCRAM credentials) are the super users' only.
    pub fn authorize(
        &self,
        principal: &Principal,
        operation: Operation,
        resource: Resource<'_>,
    ) -> bool {
        let supers = &self.config.super_users;
        let allowed = supers.is_empty()
            || supers.iter().any(|s| s == principal.as_str())
            || !matches!(resource, Resource::Cluster);
        if !allowed {
            tracing::info!(%principal, ?operation, ?resource, "not authorized");
        }
        allowed
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
