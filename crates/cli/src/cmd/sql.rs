//! `weir sql`: runs SQL against the SQL listener. `-c` and `-f` run their statements and stop
//! at the first error (exit code 1); without them, statements come from stdin: a prompt on a
//! terminal (statements end with `;`), the whole input at once in a pipe. On a terminal,
//! results are aligned tables; in pipes, tab-separated rows without headers (NULL is empty)
//! and command tags on stderr.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use weir_sql::client::{Client, ClientError, StatementResult};

#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// The SQL listener's address.
    #[arg(
        long,
        value_name = "HOST:PORT",
        env = "WEIR_SQL_SERVER",
        default_value = "127.0.0.1:4566"
    )]
    server: String,
    /// Statements to run (repeatable; each is sent as one query).
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Vec<String>,
    /// A file of statements to run.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
}

pub async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.server, "weir").await?;
    let pretty = std::io::stdout().is_terminal();
    let mut batches: Vec<String> = args.command.clone();
    if let Some(path) = &args.file {
        batches.push(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
    }
    if !batches.is_empty() {
        for sql in batches {
            run_one(&mut client, &sql, pretty).await?;
        }
        return Ok(());
    }
    if std::io::stdin().is_terminal() {
        return repl(&mut client, pretty).await;
    }
    let mut sql = String::new();
    std::io::stdin().read_to_string(&mut sql)?;
    run_one(&mut client, &sql, pretty).await
}

async fn run_one(client: &mut Client, sql: &str, pretty: bool) -> anyhow::Result<()> {
    let (results, error) = client.query(sql).await?;
    print_results(&results, pretty)?;
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Reads statements ending with `;` until end of input; errors are printed, not fatal.
async fn repl(client: &mut Client, pretty: bool) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let mut pending = String::new();
    loop {
        eprint!(
            "{}",
            if pending.is_empty() {
                "weir=> "
            } else {
                "weir-> "
            }
        );
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(());
        }
        pending.push_str(&line);
        if !line.trim_end().ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut pending);
        match client.query(&sql).await {
            Ok((results, error)) => {
                print_results(&results, pretty)?;
                if let Some(e) = error {
                    eprintln!("{e}");
                }
            }
            Err(e @ (ClientError::Io(_) | ClientError::Closed)) => return Err(e.into()),
            Err(e) => eprintln!("{e}"),
        }
    }
}

fn print_results(results: &[StatementResult], pretty: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for r in results {
        match (&r.columns, pretty) {
            (Some(columns), true) => print_table(&mut out, columns, &r.rows)?,
            (Some(_), false) => {
                for row in &r.rows {
                    let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
                    writeln!(out, "{}", cells.join("\t"))?;
                }
            }
            (None, true) => {
                if let Some(tag) = &r.tag {
                    writeln!(out, "{tag}")?;
                }
            }
            (None, false) => {
                if let Some(tag) = &r.tag {
                    eprintln!("{tag}");
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn print_table(
    out: &mut impl Write,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.as_deref().unwrap_or("").chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect::<Vec<_>>()
            .join("|")
    };
    writeln!(
        out,
        "{}",
        line(columns.iter().map(String::as_str).collect())
    )?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    )?;
    for row in rows {
        writeln!(
            out,
            "{}",
            line(row.iter().map(|c| c.as_deref().unwrap_or("")).collect())
        )?;
    }
    let n = rows.len();
    writeln!(out, "({n} row{})\n", if n == 1 { "" } else { "s" })
}
