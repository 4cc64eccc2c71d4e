//! A small simple-query client over pgwire's message codec: what `weir sql` speaks.

use bytes::BytesMut;
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::Startup;
use pgwire::messages::{DecodeContext, PgWireBackendMessage, PgWireFrontendMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("ERROR: {message} (SQLSTATE {code})")]
    Server { code: String, message: String },
}

/// One statement's answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatementResult {
    /// Column names, for statements that return rows.
    pub columns: Option<Vec<String>>,
    /// Rows in text format; `None` is NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag (`SELECT 3`, `CREATE SOURCE`).
    pub tag: Option<String>,
}

pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    ctx: DecodeContext,
}

impl Client {
    /// Connects and starts up as `user` (any name is accepted without authentication).
    pub async fn connect(addr: &str, user: &str) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut client = Client {
            stream,
            buf: BytesMut::new(),
            ctx: DecodeContext::default(),
        };
        let mut startup = Startup::new();
        startup.parameters.insert("user".into(), user.into());
        startup.parameters.insert("database".into(), "weir".into());
        startup
            .parameters
            .insert("application_name".into(), "weir sql".into());
        client.send(PgWireFrontendMessage::Startup(startup)).await?;
        loop {
            match client.receive().await? {
                PgWireBackendMessage::ReadyForQuery(_) => return Ok(client),
                PgWireBackendMessage::ErrorResponse(e) => return Err(server_error(&e.fields)),
                PgWireBackendMessage::Authentication(a)
                    if !matches!(a, pgwire::messages::startup::Authentication::Ok) =>
                {
                    return Err(ClientError::Protocol(
                        "the server asks for authentication, which weir sql does not support yet"
                            .into(),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Runs `sql` (one or more statements) with the simple query protocol. Statements before
    /// an error keep their results; the error ends the list.
    pub async fn query(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<StatementResult>, Option<ClientError>), ClientError> {
        self.send(PgWireFrontendMessage::Query(Query::new(sql.to_string())))
            .await?;
        let mut results = Vec::new();
        let mut current = StatementResult::default();
        let mut error = None;
        loop {
            match self.receive().await? {
                PgWireBackendMessage::RowDescription(d) => {
                    current.columns = Some(d.fields.into_iter().map(|f| f.name).collect());
                }
                PgWireBackendMessage::DataRow(row) => current.rows.push(decode_row(&row)?),
                PgWireBackendMessage::CommandComplete(c) => {
                    current.tag = Some(c.tag);
                    results.push(std::mem::take(&mut current));
                }
                PgWireBackendMessage::EmptyQueryResponse(_) => {}
                PgWireBackendMessage::ErrorResponse(e) => error = Some(server_error(&e.fields)),
                PgWireBackendMessage::ReadyForQuery(_) => return Ok((results, error)),
                _ => {}
            }
        }
    }

    async fn send(&mut self, message: PgWireFrontendMessage) -> Result<(), ClientError> {
        let mut out = BytesMut::new();
        message
            .encode(&mut out)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    async fn receive(&mut self) -> Result<PgWireBackendMessage, ClientError> {
        loop {
            if let Some(m) = PgWireBackendMessage::decode(&mut self.buf, &self.ctx)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return Ok(m);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }
}

fn server_error(fields: &[(u8, String)]) -> ClientError {
    let field = |code: u8| {
        fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    ClientError::Server {
        code: field(b'C'),
        message: field(b'M'),
    }
}

/// A DataRow's text-format fields.
fn decode_row(row: &pgwire::messages::data::DataRow) -> Result<Vec<Option<String>>, ClientError> {
    let data = &row.data[..];
    let mut at = 0usize;
    let mut out = Vec::with_capacity(row.field_count.max(0) as usize);
    for _ in 0..row.field_count {
        let len_bytes: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ClientError::Protocol("short DataRow".into()))?;
        at += 4;
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        let value = data
            .get(at..at + len)
            .ok_or_else(|| ClientError::Protocol("short DataRow".into()))?;
        at += len;
        out.push(Some(String::from_utf8_lossy(value).into_owned()));
    }
    Ok(out)
}
