//! `weir consume`: fetch records and print them through a kcat-style format string.

use std::io::Write;

use anyhow::Context;
use weir_client::{Client, ClientError, ConsumerRecord, FetchPosition, OffsetSpec};

use super::common::{connect, stdout};

/// Long-poll wait of each Fetch while following the log.
const MAX_WAIT_MS: i32 = 500;
/// Bytes per partition (and per response) of each Fetch.
const MAX_BYTES: i32 = 1024 * 1024;
const OFFSET_OUT_OF_RANGE: i16 = 1;

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// Topic to consume from.
    pub topic: String,
    /// Partitions to read (repeatable; default: all).
    #[arg(short = 'p', long = "partition")]
    pub partitions: Vec<i32>,
    /// Where to start: beginning, end, an offset N, -N (N before the end) or @TIMESTAMP_MS.
    #[arg(short = 'o', long, default_value = "beginning", allow_hyphen_values = true,
          value_parser = parse_start)]
    pub offset: Start,
    /// Stop after this many records in total.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Stop at the end of each partition instead of waiting for more.
    #[arg(short = 'e', long = "exit-at-end")]
    pub exit_at_end: bool,
    /// Output format: %k key, %v value, %o offset, %p partition, %t timestamp,
    /// %h headers, %T topic, %% percent; \n and \t escapes.
    #[arg(short = 'f', long, default_value = "%v\\n", value_parser = parse_format)]
    pub format: Format,
}

/// Where each partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Beginning,
    End,
    Offset(i64),
    /// This many records before the end (clamped at the log start).
    FromEnd(i64),
    Timestamp(i64),
}

fn parse_start(s: &str) -> Result<Start, String> {
    match s {
        "beginning" | "earliest" => Ok(Start::Beginning),
        "end" | "latest" => Ok(Start::End),
        _ => {
            if let Some(ts) = s.strip_prefix('@') {
                return ts.parse().map(Start::Timestamp).map_err(|_| {
                    format!("bad timestamp {ts:?}: expected milliseconds since the epoch")
                });
            }
            match s.parse::<i64>() {
                Ok(n) if n < 0 => Ok(Start::FromEnd(-n)),
                Ok(n) => Ok(Start::Offset(n)),
                Err(_) => Err(format!(
                    "bad offset {s:?}: expected beginning, end, N, -N or @TIMESTAMP_MS"
                )),
            }
        }
    }
}

/// One piece of a parsed format string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Key,
    Value,
    Offset,
    Partition,
    Timestamp,
    Headers,
    Topic,
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Token>);

fn parse_format(s: &str) -> Result<Format, String> {
    let mut tokens = Vec::new();
    let mut literal = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let field = match c {
            '%' => match chars.next() {
                Some('k') => Token::Key,
                Some('v') => Token::Value,
                Some('o') => Token::Offset,
                Some('p') => Token::Partition,
                Some('t') => Token::Timestamp,
                Some('h') => Token::Headers,
                Some('T') => Token::Topic,
                Some('%') => {
                    literal.push(b'%');
                    continue;
                }
                Some(other) => return Err(format!("unknown format token %{other}")),
                None => return Err("format ends with a lone %".into()),
            },
            '\\' => {
                match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('t') => literal.push(b'\t'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        literal.push(b'\\');
                        literal.extend_from_slice(other.to_string().as_bytes());
                    }
                    None => literal.push(b'\\'),
                }
                continue;
            }
            other => {
                let mut utf8 = [0; 4];
                literal.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                continue;
            }
        };
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        tokens.push(field);
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(Format(tokens))
}

impl Format {
    fn write(&self, out: &mut impl Write, topic: &str, r: &ConsumerRecord) -> std::io::Result<()> {
        for token in &self.0 {
            match token {
                Token::Literal(bytes) => out.write_all(bytes)?,
                Token::Key => out.write_all(r.key.as_deref().unwrap_or_default())?,
                Token::Value => out.write_all(r.value.as_deref().unwrap_or_default())?,
                Token::Offset => write!(out, "{}", r.offset)?,
                Token::Partition => write!(out, "{}", r.partition)?,
                Token::Timestamp => write!(out, "{}", r.timestamp)?,
                Token::Topic => out.write_all(topic.as_bytes())?,
                Token::Headers => {
                    for (i, (k, v)) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(k.as_bytes())?;
                        out.write_all(b"=")?;
                        out.write_all(v.as_deref().unwrap_or_default())?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A partition being read.
struct Cursor {
    partition: i32,
    offset: i64,
    done: bool,
}

async fn start_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    start: Start,
) -> anyhow::Result<i64> {
    let spec = match start {
        Start::Offset(n) => return Ok(n),
        Start::Beginning => OffsetSpec::Earliest,
        Start::End => OffsetSpec::Latest,
        Start::Timestamp(ts) => OffsetSpec::Timestamp(ts),
        Start::FromEnd(n) => {
            let end = client
                .list_offsets(topic, partition, OffsetSpec::Latest)
                .await?
                .offset;
            let begin = client
                .list_offsets(topic, partition, OffsetSpec::Earliest)
                .await?
                .offset;
            return Ok((end - n).max(begin));
        }
    };
    let found = client.list_offsets(topic, partition, spec).await?.offset;
    if found < 0 {
        // No record at or after the timestamp: start at the end.
        return Ok(client
            .list_offsets(topic, partition, OffsetSpec::Latest)
            .await?
            .offset);
    }
    Ok(found)
}

pub async fn run(a: ConsumeArgs) -> anyhow::Result<()> {
    let context = || format!("consume {:?}", a.topic);
    let mut client = connect(&a.connect).await?;
    let topic = client.topic(&a.topic).await.with_context(context)?;
    let partitions: Vec<i32> = if a.partitions.is_empty() {
        topic.partitions.iter().map(|p| p.partition).collect()
    } else {
        for p in &a.partitions {
            if !topic.partitions.iter().any(|m| m.partition == *p) {
                anyhow::bail!(
                    "consume {:?}: partition {p} does not exist (the topic has {})",
                    a.topic,
                    topic.partitions.len()
                );
            }
        }
        a.partitions.clone()
    };
    let mut cursors = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let offset = start_offset(&mut client, &a.topic, partition, a.offset)
            .await
            .with_context(|| format!("consume {}/{partition}: find start offset", a.topic))?;
        cursors.push(Cursor {
            partition,
            offset,
            done: false,
        });
    }

    let mut out = stdout();
    let mut remaining = a.count;
    let max_wait = if a.exit_at_end { 0 } else { MAX_WAIT_MS };
    while remaining != Some(0) && cursors.iter().any(|c| !c.done) {
        let positions: Vec<FetchPosition> = cursors
            .iter()
            .filter(|c| !c.done)
            .map(|c| FetchPosition {
                topic: a.topic.clone(),
                partition: c.partition,
                offset: c.offset,
            })
            .collect();
        let fetched = client
            .fetch_many(&positions, max_wait, MAX_BYTES)
            .await
            .with_context(context)?;
        for f in fetched {
            let Some(cursor) = cursors.iter_mut().find(|c| c.partition == f.partition) else {
                continue;
            };
            let data = match f.result {
                Ok(data) => data,
                Err(e) if e.code() == Some(OFFSET_OUT_OF_RANGE) => {
                    let earliest = client
                        .list_offsets(&a.topic, f.partition, OffsetSpec::Earliest)
                        .await
                        .with_context(context)?
                        .offset;
                    let reset = if cursor.offset < earliest {
                        earliest
                    } else {
                        client
                            .list_offsets(&a.topic, f.partition, OffsetSpec::Latest)
                            .await
                            .with_context(context)?
                            .offset
                    };
                    eprintln!(
                        "weir: {}/{}: offset {} is out of range, continuing from {reset}",
                        a.topic, f.partition, cursor.offset
                    );
                    cursor.offset = reset;
                    continue;
                }
                Err(e) if is_transient(&e) => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("consume {}/{}", a.topic, f.partition))
                }
            };
            for record in &data.records {
                if remaining == Some(0) {
                    break;
                }
                a.format.write(&mut out, &a.topic, record)?;
                cursor.offset = record.offset + 1;
                remaining = remaining.map(|n| n - 1);
            }
            if remaining != Some(0) {
                cursor.offset = cursor.offset.max(data.next_offset);
            }
            if a.exit_at_end && cursor.offset >= data.high_watermark {
                cursor.done = true;
            }
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(())
}

/// Errors a later fetch can recover from (the client has already dropped the stale leader).
fn is_transient(e: &ClientError) -> bool {
    matches!(e.code(), Some(5 | 6 | 74 | 75))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use weir_client::TimestampType;

    fn render(format: &str, r: &ConsumerRecord) -> String {
        let f = parse_format(format).unwrap();
        let mut out = Vec::new();
        f.write(&mut out, "orders", r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn format_tokens_and_escapes() {
        let r = ConsumerRecord {
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::Creation,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("b".into(), None),
            ],
        };
        assert_eq!(render("%v\\n", &r), "v\n");
        assert_eq!(
            render("%T/%p@%o\\t%t %k=%v [%h] 100%%", &r),
            "orders/2@41\t1700000000000 k=v [a=1,b=] 100%"
        );
        let keyless = ConsumerRecord { key: None, ..r };
        assert_eq!(render("<%k>", &keyless), "<>");
    }

    #[test]
    fn format_rejects_unknown_tokens() {
        assert!(parse_format("%x").is_err());
        assert!(parse_format("abc%").is_err());
    }

    #[test]
    fn start_offsets_parse() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(parse_start("-10"), Ok(Start::FromEnd(10)));
        assert_eq!(
            parse_start("@1700000000000"),
            Ok(Start::Timestamp(1_700_000_000_000))
        );
        assert!(parse_start("soon").is_err());
        assert!(parse_start("@x").is_err());
    }
}
