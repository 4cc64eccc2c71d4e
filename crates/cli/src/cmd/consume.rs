//! `weir consume` (placeholder until the client lands).

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// Topic to consume from.
    pub topic: String,
}

pub async fn run(_a: ConsumeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
