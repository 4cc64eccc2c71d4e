//! The TLS acceptor (rustls, ring provider) from PEM files, and the principal of a client
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::config::{ClientAuth, TlsFiles};
use super::Principal;

/// Why the TLS material cannot be used: the operator's fault, reported at start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read PEM {what} from {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid client certificate authorities: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub(super) fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Builds the acceptor of every TLS listener from `files`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    // ring by choice (no C build); its provider is marked deprecated only for lacking the
    // post-quantum key exchange, which Kafka clients do not offer either.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Read now (a bad file fails the start) and again whenever the files change.
    let served =
        super::cert_reload::ReloadingCert::new(&files.certificates, &files.key, provider.clone())?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match (&files.truststore, files.client_auth) {
        (Some(path), ClientAuth::Requested | ClientAuth::Required) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates(path, "CA certificates")? {
                roots.add(ca)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if files.client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(Arc::new(served));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// `User:<subject DN>` in RFC 2253 form (most specific first: `CN=alice,O=Acme,C=GB`), as
/// Kafka's default `ssl.principal.mapping.rules`.
pub fn principal_of(cert: &CertificateDer<'_>) -> Option<Principal> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in parsed.subject().iter() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|a| {
                let oid = a.attr_type().to_id_string();
                let value = a
                    .as_str()
                    .map(escape)
                    .unwrap_or_else(|_| format!("#{}", hex(a.as_slice())));
                format!("{}={value}", short_name(&oid).unwrap_or(&oid))
            })
            .collect();
        rdns.push(attrs.join("+"));
    }
    rdns.reverse();
    Some(Principal::user(&rdns.join(",")))
}

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 §2.4 escaping.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1"), "\\#1");
    }
}
