//! One module per subcommand.

pub mod acl;
pub mod bench;
pub mod client_security;
pub mod cluster;
mod cluster_data;
mod cluster_node;
mod cluster_ops;
mod common;
pub mod consume;
pub mod debug;
pub mod debug_bundle;
pub mod group;
mod log_coalesce;
pub mod produce;
pub mod serve;
#[cfg(feature = "sql")]
mod serve_pipelines;
#[cfg(feature = "sql")]
pub mod sql;
pub mod topic;
pub mod txn;
pub mod user;

/// Builds the runtime the client subcommands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Whether an error is a closed stdout (`weir consume | head`), which ends quietly.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The `--brokers` flag and the TLS/SASL flags every client subcommand shares.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Broker to bootstrap from: host:port, or a comma-separated list tried in order.
    #[arg(
        short = 'b',
        long = "brokers",
        env = "WEIR_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    #[command(flatten)]
    pub security: client_security::SecurityArgs,
}
