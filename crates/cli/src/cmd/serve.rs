//! `weir serve` (placeholder).

#[derive(clap::Args, Debug)]
pub struct ServeArgs {}

pub fn run(_a: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
