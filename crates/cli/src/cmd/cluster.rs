//! `weir cluster info`.

use std::io::Write;

use anyhow::Context;

use super::common::{connect, stdout, Table};

#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show the cluster id, the controller, the brokers and the topic count.
    Info(super::ConnectArgs),
}

pub async fn run(c: ClusterCommand) -> anyhow::Result<()> {
    match c {
        ClusterCommand::Info(connect_args) => info(connect_args).await,
    }
}

async fn info(args: super::ConnectArgs) -> anyhow::Result<()> {
    let mut client = connect(&args).await?;
    let cluster = client
        .describe_cluster()
        .await
        .context("describe cluster")?;
    let topics = client
        .metadata(None)
        .await
        .context("list topics")?
        .topics
        .len();

    let mut summary = Table::new(["CLUSTER ID", cluster.cluster_id.as_deref().unwrap_or("-")]);
    let controller = if cluster.controller_id < 0 {
        "-".to_owned()
    } else {
        cluster.controller_id.to_string()
    };
    summary.row(vec!["CONTROLLER".into(), controller]);
    summary.row(vec!["TOPICS".into(), topics.to_string()]);

    let mut brokers = cluster.brokers;
    brokers.sort_by_key(|b| b.id);
    let mut table = Table::new(["ID", "HOST:PORT", "RACK"]);
    for b in brokers {
        let id = if b.id == cluster.controller_id {
            format!("{}*", b.id)
        } else {
            b.id.to_string()
        };
        table.row(vec![id, b.addr(), b.rack.unwrap_or_else(|| "-".into())]);
    }

    let mut out = stdout();
    summary.write(&mut out)?;
    writeln!(out, "\nBROKERS")?;
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}
