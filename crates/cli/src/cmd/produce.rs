//! `weir produce` (placeholder until the client lands).

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: super::ConnectArgs,
    /// Topic to produce to.
    pub topic: String,
}

pub async fn run(_a: ProduceArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
