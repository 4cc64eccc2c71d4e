//! How the client subcommands reach a secured listener: TLS and SASL flags (with `WEIR_*`
//! environment variables, in the spirit of rpk) and a Kafka client properties file
//! (`--client-config`, librdkafka's key names, like the Kafka tools' `--command-config`).
//! Flags override the file. The result is a [`weir_client::ClientSecurity`] every
//! connection of the command uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use weir_client::{ClientSecurity, SaslCredentials, SaslMechanism, TlsClient, TlsSettings};

/// A SASL user and password: the Kafka listeners' identity, also the console's (HTTP Basic).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoginArgs {
    /// SASL user name (SCRAM or PLAIN).
    #[arg(long, env = "WEIR_SASL_USER")]
    pub sasl_user: Option<String>,
    /// SASL password (visible in the process list: prefer WEIR_SASL_PASSWORD or
    /// --client-config).
    #[arg(long, env = "WEIR_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
}

/// TLS and SASL for the connections to the brokers.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    #[command(flatten)]
    pub login: LoginArgs,
    /// SASL mechanism: SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN.
    #[arg(long, env = "WEIR_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// Speak TLS (implied by --tls-ca).
    #[arg(long, env = "WEIR_TLS")]
    pub tls: bool,
    /// PEM file of the CA certificates that sign the brokers' certificates.
    #[arg(long, env = "WEIR_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM file of this client's certificate chain (mTLS); may also hold the key.
    #[arg(long, env = "WEIR_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file of this client's private key.
    #[arg(long, env = "WEIR_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The name to verify the broker's certificate against (default: the host dialled).
    #[arg(long, env = "WEIR_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// Kafka client properties (`security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`, `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`),
    /// one `key=value` a line.
    #[arg(long, env = "WEIR_CLIENT_CONFIG", value_name = "FILE")]
    pub client_config: Option<PathBuf>,
}

/// The settings after the file and the flags are merged; pure, so it is tested as a table.
#[derive(Debug, Default, PartialEq, Eq)]
struct Resolved {
    tls: Option<TlsFiles>,
    sasl: Option<(SaslMechanism, String, String)>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct TlsFiles {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    server_name: Option<String>,
}

/// Reads a properties file: `key=value` (or `key: value`) lines, `#` and `!` comments.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=').or_else(|| l.split_once(':'))?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn resolve(args: &SecurityArgs, props: &BTreeMap<String, String>) -> anyhow::Result<Resolved> {
    let prop = |k: &str| props.get(k).cloned();
    let path = |k: &str| props.get(k).map(PathBuf::from);
    let protocol = prop("security.protocol").map(|p| p.to_ascii_uppercase());
    let (proto_tls, proto_sasl) = match protocol.as_deref() {
        None | Some("PLAINTEXT") => (false, false),
        Some("SSL") => (true, false),
        Some("SASL_PLAINTEXT") => (false, true),
        Some("SASL_SSL") => (true, true),
        Some(other) => bail!(
            "security.protocol {other:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
        ),
    };
    let ca = args.tls_ca.clone().or_else(|| path("ssl.ca.location"));
    let cert = args
        .tls_cert
        .clone()
        .or_else(|| path("ssl.certificate.location"));
    let key = args.tls_key.clone().or_else(|| path("ssl.key.location"));
    let tls = (args.tls || proto_tls || args.tls_ca.is_some()).then(|| TlsFiles {
        ca,
        cert,
        key,
        server_name: args
            .tls_server_name
            .clone()
            .or_else(|| prop("weir.ssl.server.name")),
    });
    let user = args
        .login
        .sasl_user
        .clone()
        .or_else(|| prop("sasl.username"));
    let password = args
        .login
        .sasl_password
        .clone()
        .or_else(|| prop("sasl.password"));
    let mechanism = args
        .sasl_mechanism
        .clone()
        .or_else(|| prop("sasl.mechanism").or_else(|| prop("sasl.mechanisms")));
    let sasl = match (user, proto_sasl) {
        (None, false) => {
            if mechanism.is_some() || password.is_some() {
                bail!("a SASL mechanism or password without --sasl-user");
            }
            None
        }
        (None, true) => {
            bail!("security.protocol is SASL_* but no user is given (--sasl-user or sasl.username)")
        }
        (Some(user), _) => {
            let name = mechanism.unwrap_or_else(|| "SCRAM-SHA-512".to_owned());
            let m = SaslMechanism::parse(&name).with_context(|| {
                format!("SASL mechanism {name:?} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
            })?;
            let password = password.with_context(|| {
                format!("no password for SASL user {user:?} (--sasl-password, WEIR_SASL_PASSWORD or sasl.password)")
            })?;
            Some((m, user, password))
        }
    };
    Ok(Resolved { tls, sasl })
}

impl SecurityArgs {
    /// The client security these flags (and `--client-config`) ask for; the TLS files are
    /// read here, so a bad one fails before any connection.
    pub fn build(&self) -> anyhow::Result<ClientSecurity> {
        let props = match &self.client_config {
            Some(p) => read_properties(p)?,
            None => BTreeMap::new(),
        };
        let r = resolve(self, &props)?;
        let tls = match r.tls {
            Some(t) => Some(
                TlsClient::new(&TlsSettings {
                    ca_file: t.ca,
                    cert_file: t.cert,
                    key_file: t.key,
                    server_name: t.server_name,
                })
                .context("TLS settings")?,
            ),
            None => None,
        };
        let sasl = r.sasl.map(|(mechanism, user, password)| {
            Arc::new(SaslCredentials {
                mechanism,
                user,
                password,
            })
        });
        Ok(ClientSecurity { tls, sasl })
    }
}

fn read_properties(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read client config {}", path.display()))?;
    Ok(parse_properties(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, String> {
        parse_properties(text)
    }

    fn login(user: &str, password: &str) -> LoginArgs {
        LoginArgs {
            sasl_user: Some(user.into()),
            sasl_password: Some(password.into()),
        }
    }

    #[test]
    fn properties_take_comments_and_both_separators() {
        let p = props("# c\n! c\nsecurity.protocol = SASL_SSL\nsasl.username: alice\n\nbad\n");
        assert_eq!(
            p.get("security.protocol").map(String::as_str),
            Some("SASL_SSL")
        );
        assert_eq!(p.get("sasl.username").map(String::as_str), Some("alice"));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn flags_override_the_file_and_protocols_imply_tls_and_sasl() {
        let file = props(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=file\n\
             sasl.password=fpw\nssl.ca.location=/ca.pem\n",
        );
        let r = resolve(&SecurityArgs::default(), &file).unwrap();
        assert_eq!(
            r.sasl,
            Some((SaslMechanism::Plain, "file".into(), "fpw".into()))
        );
        assert_eq!(r.tls.unwrap().ca, Some(PathBuf::from("/ca.pem")));
        let args = SecurityArgs {
            login: login("flag", "pw"),
            sasl_mechanism: Some("scram-sha-256".into()),
            ..SecurityArgs::default()
        };
        let r = resolve(&args, &file).unwrap();
        assert_eq!(
            r.sasl,
            Some((SaslMechanism::ScramSha256, "flag".into(), "pw".into()))
        );
        // Nothing set: PLAINTEXT.
        assert_eq!(
            resolve(&SecurityArgs::default(), &BTreeMap::new()).unwrap(),
            Resolved::default()
        );
        // A CA alone means TLS; a user alone means SASL with SCRAM-SHA-512.
        let args = SecurityArgs {
            login: login("u", "p"),
            tls_ca: Some("/ca.pem".into()),
            ..SecurityArgs::default()
        };
        let r = resolve(&args, &BTreeMap::new()).unwrap();
        assert!(r.tls.is_some());
        assert_eq!(r.sasl.unwrap().0, SaslMechanism::ScramSha512);
    }

    #[test]
    fn incomplete_settings_are_refused_with_the_reason() {
        let cases: Vec<(SecurityArgs, &str, &str)> = vec![
            (
                SecurityArgs::default(),
                "security.protocol=SASL_SSL",
                "no user",
            ),
            (
                SecurityArgs::default(),
                "security.protocol=KERBEROS",
                "is not one of",
            ),
            (
                SecurityArgs::default(),
                "sasl.username=u",
                "no password for SASL user",
            ),
            (
                SecurityArgs::default(),
                "sasl.username=u\nsasl.password=p\nsasl.mechanism=GSSAPI",
                "is not PLAIN",
            ),
            (
                SecurityArgs::default(),
                "sasl.password=p",
                "without --sasl-user",
            ),
        ];
        for (args, file, want) in cases {
            let err = resolve(&args, &props(file)).unwrap_err().to_string();
            assert!(err.contains(want), "{file}: {err}");
        }
    }
}
