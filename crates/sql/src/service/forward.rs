//! SQL connections a broker does not serve itself (design §14): forwarded, bytes as they
//! are, to the SQL listener of the broker hosting the engine, or, while there is none to
//! reach, refused the way PostgreSQL refuses a connection it cannot take yet: an
//! `ErrorResponse` with SQLSTATE 57P03 (`cannot_connect_now`) and the reason, in answer to
//! the client's startup message (an SSLRequest or GSSENCRequest first gets 'N', as the
//! listener answers them).
//!
//! Data flow: accept -> [`connect`] to the host -> [`pipe`] until either side closes or
//! the host moves (the caller's `until`), which closes the client's connection too (clients
//! reconnect, and reach the new host). Without a host: [`refuse`].

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long connecting to the host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refused client may take to send its startup message.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL's limit on a startup message (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP: usize = 10_000;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// SQLSTATE `cannot_connect_now`.
pub const CANNOT_CONNECT_NOW: &str = "57P03";

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {addr}: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout { addr: String },
}

/// Connects to the hosting broker's SQL listener.
pub async fn connect(addr: &str) -> Result<TcpStream, ForwardError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(source)) => Err(ForwardError::Connect {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(ForwardError::ConnectTimeout {
            addr: addr.to_string(),
        }),
    }
}

/// Copies bytes both ways until either side closes or `until` resolves; both connections
/// close then.
pub async fn pipe(mut client: TcpStream, mut host: TcpStream, until: impl Future<Output = ()>) {
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut host) => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "forwarded SQL connection ended");
            }
        }
        () = until => tracing::debug!("the SQL host moved; closing a forwarded connection"),
    }
}

/// The first message of a PostgreSQL connection, as far as its bytes go.
#[derive(Debug, PartialEq, Eq)]
pub enum Opening {
    /// Not all of it has arrived.
    Incomplete,
    /// An SSLRequest or GSSENCRequest (8 bytes): answered 'N', then the startup message
    /// follows.
    EncryptionRequest,
    /// A CancelRequest: there is nothing to cancel here; the connection is closed.
    CancelRequest,
    /// A startup message of this many bytes.
    Startup(usize),
    /// Not PostgreSQL's protocol, or a length out of bounds.
    Invalid(String),
}

/// Classifies the bytes received so far: a length (int32, itself included), then a code.
pub fn opening(buf: &[u8]) -> Opening {
    let (Some(len), Some(code)) = (int32(buf, 0), int32(buf, 4)) else {
        return Opening::Incomplete;
    };
    let Some(len) = usize::try_from(len)
        .ok()
        .filter(|l| (8..=MAX_STARTUP).contains(l))
    else {
        return Opening::Invalid(format!("a startup message of {len} bytes"));
    };
    match code {
        SSL_REQUEST | GSSENC_REQUEST if len == 8 => Opening::EncryptionRequest,
        CANCEL_REQUEST if len == 16 => Opening::CancelRequest,
        // Protocol 3.x (the major version in the high 16 bits).
        c if c >> 16 == 3 => {
            if buf.len() < len {
                Opening::Incomplete
            } else {
                Opening::Startup(len)
            }
        }
        c => Opening::Invalid(format!("request code {c} in a {len}-byte startup message")),
    }
}

fn int32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// A FATAL `ErrorResponse` with SQLSTATE `code` and `message`.
pub fn error_response(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        // A NUL would end the field early: PostgreSQL's strings are NUL-terminated.
        fields.extend(value.bytes().filter(|b| *b != 0));
        fields.push(0);
    }
    fields.push(0);
    let len = i32::try_from(fields.len() + 4).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(fields.len() + 5);
    out.push(b'E');
    out.extend(len.to_be_bytes());
    out.extend(fields);
    out
}

/// Answers the client's startup message with 57P03 and `reason`, then closes.
pub async fn refuse(mut client: TcpStream, reason: &str) {
    match tokio::time::timeout(STARTUP_TIMEOUT, answer_startup(&mut client, reason)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "refusing an SQL connection failed"),
        Err(_) => tracing::debug!("an SQL client sent no startup message in time"),
    }
}

/// Reads the client's opening (an encryption request answered 'N', then the startup
/// message) and answers the startup message with 57P03 and `reason`.
async fn answer_startup(client: &mut TcpStream, reason: &str) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        match opening(&buf) {
            Opening::Incomplete => {
                let mut chunk = [0u8; 1024];
                let n = client.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
            Opening::EncryptionRequest => {
                buf.drain(..8);
                client.write_all(b"N").await?;
            }
            Opening::CancelRequest => return Ok(()),
            Opening::Startup(_) => {
                client
                    .write_all(&error_response(CANNOT_CONNECT_NOW, reason))
                    .await?;
                return client.flush().await;
            }
            Opening::Invalid(what) => {
                tracing::debug!(what = %what, "not a PostgreSQL client; closing");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(code: i32, body: &[u8]) -> Vec<u8> {
        let len = i32::try_from(8 + body.len()).expect("small");
        let mut out = len.to_be_bytes().to_vec();
        out.extend(code.to_be_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn openings_are_classified_as_their_bytes_arrive() {
        assert_eq!(opening(&[]), Opening::Incomplete);
        assert_eq!(opening(&[0, 0, 0]), Opening::Incomplete);
        assert_eq!(
            opening(&message(SSL_REQUEST, b"")),
            Opening::EncryptionRequest
        );
        assert_eq!(
            opening(&message(GSSENC_REQUEST, b"")),
            Opening::EncryptionRequest
        );
        assert_eq!(
            opening(&message(CANCEL_REQUEST, &[0; 8])),
            Opening::CancelRequest
        );
        let startup = message(196_608, b"user\0me\0database\0weir\0\0");
        assert_eq!(opening(&startup), Opening::Startup(startup.len()));
        // Part of it: wait for the rest.
        assert_eq!(opening(&startup[..12]), Opening::Incomplete);
        // Protocol 3.2 (PostgreSQL 18) is still 3.x.
        assert_eq!(opening(&message(196_610, b"\0")), Opening::Startup(9));
    }

    #[test]
    fn what_is_not_a_startup_message_is_invalid_not_a_panic() {
        // An HTTP request, a Kafka request, a huge or negative length.
        assert!(matches!(
            opening(b"GET / HTTP/1.1\r\n"),
            Opening::Invalid(_)
        ));
        assert!(matches!(
            opening(&message(0x0012_0003, b"")),
            Opening::Invalid(_)
        ));
        let mut huge = message(196_608, b"");
        huge[0..4].copy_from_slice(&1_000_000i32.to_be_bytes());
        assert!(matches!(opening(&huge), Opening::Invalid(_)));
        let mut negative = message(196_608, b"");
        negative[0..4].copy_from_slice(&(-8i32).to_be_bytes());
        assert!(matches!(opening(&negative), Opening::Invalid(_)));
        // An SSLRequest with a body is not one.
        assert!(matches!(
            opening(&message(SSL_REQUEST, b"xx")),
            Opening::Invalid(_)
        ));
    }

    #[test]
    fn the_error_response_is_postgresql_framing() {
        let got = error_response(CANNOT_CONNECT_NOW, "no host\0yet");
        let body = b"SFATAL\0VFATAL\0C57P03\0Mno hostyet\0\0";
        let mut want = vec![b'E'];
        want.extend(i32::try_from(body.len() + 4).expect("small").to_be_bytes());
        want.extend(body);
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_refused_client_gets_n_then_57p03() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            refuse(socket, "no broker hosts the SQL engine").await;
        });
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(&message(SSL_REQUEST, b""))
            .await
            .expect("ssl");
        let mut n = [0u8; 1];
        client.read_exact(&mut n).await.expect("answer");
        assert_eq!(&n, b"N");
        client
            .write_all(&message(196_608, b"user\0me\0\0"))
            .await
            .expect("startup");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("read");
        assert_eq!(
            answer,
            error_response(CANNOT_CONNECT_NOW, "no broker hosts the SQL engine")
        );
        server.await.expect("server");
    }
}
