//! `weir`: one binary that serves the broker and talks to it.
//!
//! `weir serve` builds a [`weir_broker::BrokerConfig`] from defaults < TOML file < `WEIR_*`
//! environment < flags and runs the broker until SIGINT/SIGTERM. Every other subcommand is a
//! Kafka client (through `weir-client`) that talks to a broker over the wire protocol, prints
//! one clear line on error and exits non-zero.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "weir",
    version,
    about = "Weir: a Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker on a local data directory.
    Serve(cmd::serve::ServeArgs),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(cmd::topic::TopicCommand),
    /// Produce records read from stdin, one per line.
    Produce(cmd::produce::ProduceArgs),
    /// Consume records and print them with a format string.
    Consume(cmd::consume::ConsumeArgs),
    /// List, describe, reset the offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(cmd::group::GroupCommand),
    /// List and describe transactions and the producers partitions remember.
    #[command(subcommand)]
    Txn(cmd::txn::TxnCommand),
    /// Create, list and delete SCRAM users (SASL PLAIN and SCRAM).
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Create, list and delete ACLs (who may do what on which topic, group, transactional
    /// id or the cluster).
    #[command(subcommand)]
    Acl(cmd::acl::AclCommand),
    /// Cluster-wide information.
    #[command(subcommand)]
    Cluster(cmd::cluster::ClusterCommand),
    /// Measure produce and consume throughput against the machine's disk and network limits.
    Bench(cmd::bench::BenchArgs),
    /// Run SQL against a broker's SQL listener (PostgreSQL wire protocol).
    #[cfg(feature = "sql")]
    Sql(cmd::sql::SqlArgs),
    /// Offline checks of a data directory, and the debug bundle for bug reports.
    #[command(subcommand)]
    Debug(cmd::debug::DebugCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Topic(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::topic::run(c))),
        Command::Produce(a) => cmd::runtime().and_then(|rt| rt.block_on(cmd::produce::run(a))),
        Command::Consume(a) => cmd::runtime().and_then(|rt| rt.block_on(cmd::consume::run(a))),
        Command::Group(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::group::run(c))),
        Command::Txn(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::txn::run(c))),
        Command::User(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::user::run(c))),
        Command::Acl(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::acl::run(c))),
        Command::Cluster(c) => cmd::runtime().and_then(|rt| rt.block_on(cmd::cluster::run(c))),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Debug(c) => cmd::debug::run(c),
        #[cfg(feature = "sql")]
        Command::Sql(a) => cmd::runtime().and_then(|rt| rt.block_on(cmd::sql::run(a))),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if cmd::is_broken_pipe(&e) {
                return std::process::ExitCode::SUCCESS;
            }
            eprintln!("weir: {}", error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. Many errors already include their cause's text in
/// their own message (and keep it as their source too), so a cause whose text is already on
/// the line is not repeated.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::error_line;

    /// Like the broker's errors: the cause in the message and as the source.
    #[derive(Debug)]
    struct Bind(std::io::Error);

    impl std::fmt::Display for Bind {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot listen on 127.0.0.1:1: {}", self.0)
        }
    }

    impl std::error::Error for Bind {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let text = io.to_string();
        let e = anyhow::Error::new(Bind(io)).context("serve");
        let line = error_line(&e);
        assert_eq!(line.matches(&text).count(), 1, "{line}");
        assert!(line.starts_with("serve: cannot listen"), "{line}");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner");
    }
}
