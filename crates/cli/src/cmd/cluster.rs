//! `weir cluster ...` (placeholder until the client lands).

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show brokers and the controller.
    Info(super::ConnectArgs),
}

pub async fn run(_c: ClusterCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
