//! `weir topic ...` (placeholder until the client lands).

#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// List topics.
    List(super::ConnectArgs),
}

pub async fn run(_c: TopicCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
