//! Pieces the client subcommands share: connecting, flag parsers and table output.

use std::io::Write;

use anyhow::Context;
use weir_client::Client;

/// Connects to the bootstrap broker named by `--brokers`, with the TLS and SASL flags.
pub async fn connect(args: &super::ConnectArgs) -> anyhow::Result<Client> {
    let security = args.security.build()?;
    Client::connect_secured(
        &args.brokers,
        weir_client::connection::DEFAULT_REQUEST_TIMEOUT,
        security,
    )
    .await
    .context("connect")
}

/// One connection to the bootstrap broker (for Weir's private APIs), with the TLS and SASL
/// flags.
pub async fn connection(args: &super::ConnectArgs) -> anyhow::Result<weir_client::Connection> {
    let security = args.security.build()?;
    weir_client::Connection::connect_bootstrap(
        &args.brokers,
        std::time::Duration::from_secs(10),
        &security,
    )
    .await
    .context("connect")
}

/// Parses a `key=value` flag.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Left-aligned columns separated by two spaces, as `rpk` prints them.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// A table whose columns are decided at run time.
    pub fn from_header(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let width = widths.get(i).copied().unwrap_or(0);
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Buffered stdout; callers flush before returning so a closed pipe surfaces as an
/// `io::Error` (which `main` treats as a quiet exit).
pub fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_the_first_equals() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_key_value("a="), Ok(("a".into(), String::new())));
        assert!(parse_key_value("a").is_err());
        assert!(parse_key_value("=b").is_err());
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(["NAME", "PARTITIONS"]);
        t.row(vec!["orders".into(), "3".into()]);
        t.row(vec!["a".into(), "12".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME    PARTITIONS\norders  3\na       12\n"
        );
    }
}
