//! `weir debug bundle`: fetch the running broker's debug bundle from its HTTP listener
//! (`/api/debug/bundle`) into a file; when the broker does not answer, build the offline part
//! (data-directory listing, topic table, system facts) from the data directory instead.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args, Debug)]
pub struct BundleArgs {
    /// Where to write the archive (tar.gz); default `weir-debug-<unix seconds>.tar.gz`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The broker's HTTP listener (`weir.http.listen`).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9644")]
    pub http: String,
    /// The data directory, read when the broker does not answer.
    #[arg(long, value_name = "DIR", default_value = "./weir-data")]
    pub data_dir: PathBuf,
    /// Milliseconds between the two /metrics snapshots the broker takes.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub gap_ms: u64,
    /// A SCRAM user of the broker, sent as HTTP Basic auth when the console needs a login
    /// (a broker with a SASL listener); the user needs ALTER on the cluster or super user.
    #[command(flatten)]
    pub login: super::client_security::LoginArgs,
}

pub fn run(args: &BundleArgs) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("weir-debug-{secs}.tar.gz"))
    });
    let authorization = basic_authorization(&args.login)?;
    let bytes = match fetch(&args.http, args.gap_ms, authorization.as_deref()) {
        Ok(bytes) => {
            eprintln!("bundle from the broker at {}", args.http);
            bytes
        }
        Err(Unreachable(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            // The broker answered but refused: the offline bundle would hide the reason.
            bail!("the broker at {} refused the bundle: {e}", args.http);
        }
        Err(Unreachable(e)) => {
            let why = format!("broker not reachable at {}: {e}", args.http);
            eprintln!(
                "{why}; building the offline bundle from {}",
                args.data_dir.display()
            );
            if !args.data_dir.is_dir() {
                bail!("{why}, and {} is not a directory", args.data_dir.display());
            }
            weir_http::bundle::offline(&args.data_dir, &why)?
        }
    };
    std::fs::write(&out, &bytes).with_context(|| format!("write {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

/// The broker did not answer (nothing listens, or it hung): the offline bundle is the fallback.
/// Any answer that is not a bundle is an error instead.
struct Unreachable(std::io::Error);

impl From<std::io::Error> for Unreachable {
    fn from(e: std::io::Error) -> Unreachable {
        Unreachable(e)
    }
}

/// `Authorization: Basic …` for `--sasl-user`/`--sasl-password`, if given.
fn basic_authorization(
    login: &super::client_security::LoginArgs,
) -> anyhow::Result<Option<String>> {
    use base64::Engine;
    match (&login.sasl_user, &login.sasl_password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => {
            anyhow::ensure!(
                !user.contains(':'),
                "a user name with ':' cannot log in with HTTP Basic auth"
            );
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Ok(Some(format!("Basic {token}")))
        }
        (Some(_), None) => bail!("--sasl-user without --sasl-password (or WEIR_SASL_PASSWORD)"),
        (None, Some(_)) => bail!("--sasl-password without --sasl-user"),
    }
}

fn fetch(http: &str, gap_ms: u64, authorization: Option<&str>) -> Result<Vec<u8>, Unreachable> {
    let addr: SocketAddr = http.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "resolves to no address")
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    // The broker waits `gap_ms` between its two snapshots before answering.
    stream.set_read_timeout(Some(
        Duration::from_millis(gap_ms) + Duration::from_secs(60),
    ))?;
    // HTTP/1.0: the answer has a length or ends with the connection, never chunked.
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /api/debug/bundle?gap_ms={gap_ms} HTTP/1.0\r\nHost: {http}\r\n{auth}\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let bad = |what: String| Unreachable(std::io::Error::other(what));
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no HTTP header in the answer".into()))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = response.split_off(split + 4);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "401" || status == "403" {
        let text = String::from_utf8_lossy(&body);
        let hint = if authorization.is_none() {
            " (the console needs a login: --sasl-user and --sasl-password)"
        } else {
            ""
        };
        return Err(Unreachable(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("HTTP {status}: {}{hint}", text.trim()),
        )));
    }
    if status != "200" {
        let text = String::from_utf8_lossy(&body);
        return Err(bad(format!("HTTP {status}: {}", text.trim())));
    }
    Ok(body)
}
