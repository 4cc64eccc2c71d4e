//! `weir user create|list|delete`: SCRAM users, through the Kafka API (KIP-554), or offline
//! in a stopped broker's data directory to create the first user (docs/design/security.md).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use weir_broker::security::scram::{random_bytes, Mechanism, MIN_ITERATIONS};

use super::common::{connect, stdout, Table};
use super::ConnectArgs;

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user or change its password (SCRAM-SHA-256 and SCRAM-SHA-512 credentials).
    Create(CreateArgs),
    /// List users and their SCRAM mechanisms.
    List(ListArgs),
    /// Delete a user's credentials.
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// User name.
    name: String,
    /// The password (visible in the process list: prefer --password-file or WEIR_PASSWORD).
    #[arg(long, env = "WEIR_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// A file whose first line is the password.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// SCRAM mechanism (repeatable); default both SCRAM-SHA-256 and SCRAM-SHA-512.
    #[arg(long = "mechanism")]
    mechanisms: Vec<String>,
    /// PBKDF2 iterations (4096..16384).
    #[arg(long, default_value_t = 8192)]
    iterations: u32,
    /// Write into this stopped broker's data directory instead of calling a broker: how the
    /// first user is created before a SASL listener accepts anyone.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// User name.
    name: String,
    /// Only this mechanism (repeatable); default every one the user has.
    #[arg(long = "mechanism")]
    mechanisms: Vec<String>,
}

pub async fn run(c: UserCommand) -> anyhow::Result<()> {
    match c {
        UserCommand::Create(a) => create(a).await,
        UserCommand::List(a) => list(a).await,
        UserCommand::Delete(a) => delete(a).await,
    }
}

fn mechanisms(names: &[String]) -> anyhow::Result<Vec<Mechanism>> {
    if names.is_empty() {
        return Ok(Mechanism::SCRAM.to_vec());
    }
    names
        .iter()
        .map(|n| match Mechanism::parse(&n.to_ascii_uppercase()) {
            Some(m) if m != Mechanism::Plain => Ok(m),
            _ => bail!("unknown SCRAM mechanism {n:?}: SCRAM-SHA-256 or SCRAM-SHA-512"),
        })
        .collect()
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let password = match (&a.password, &a.password_file) {
        (Some(p), None) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("read {}", f.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        _ => bail!("give exactly one of --password, --password-file or WEIR_PASSWORD"),
    };
    if password.is_empty() {
        bail!("empty password");
    }
    if !(MIN_ITERATIONS..=weir_broker::security::scram::MAX_ITERATIONS).contains(&a.iterations) {
        bail!("--iterations must be between 4096 and 16384");
    }
    let mechs = mechanisms(&a.mechanisms)?;
    if let Some(dir) = &a.data_dir {
        // The data directory's lock: never write under a running broker.
        let _lock = weir_broker::dir_lock::DirLock::acquire(dir).context(
            "the data directory is in use (stop the broker, or create the user through it)",
        )?;
        for m in &mechs {
            weir_broker::security::credentials::upsert_offline(
                dir,
                &a.name,
                *m,
                &password,
                a.iterations,
            )?;
        }
        println!("created {} in {}", a.name, dir.display());
        return Ok(());
    }
    let upsertions = mechs
        .iter()
        .map(|m| {
            let salt = random_bytes(24);
            weir_client::ScramUpsertion {
                user: a.name.clone(),
                mechanism: m.code(),
                iterations: i32::try_from(a.iterations).unwrap_or(i32::MAX),
                salted_password: m.salted_password(password.as_bytes(), &salt, a.iterations),
                salt,
            }
        })
        .collect();
    let mut client = connect(&a.connect).await?;
    client
        .alter_users(upsertions, Vec::new())
        .await
        .context("create user")?;
    println!("created {}", a.name);
    Ok(())
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let users = client.describe_users(&[]).await.context("list users")?;
    let mut table = Table::new(["USER", "MECHANISM", "ITERATIONS"]);
    for u in users {
        for (m, iterations) in u.credentials {
            let name = Mechanism::from_code(m)
                .map(Mechanism::name)
                .unwrap_or("UNKNOWN");
            table.row(vec![
                u.user.clone(),
                name.to_string(),
                iterations.to_string(),
            ]);
        }
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}

async fn delete(a: DeleteArgs) -> anyhow::Result<()> {
    let mut client = connect(&a.connect).await?;
    let mechs = if a.mechanisms.is_empty() {
        let users = client
            .describe_users(std::slice::from_ref(&a.name))
            .await
            .context("describe user")?;
        users
            .into_iter()
            .flat_map(|u| u.credentials.into_iter().map(|(m, _)| m))
            .collect()
    } else {
        mechanisms(&a.mechanisms)?
            .iter()
            .map(|m| m.code())
            .collect::<Vec<i8>>()
    };
    let deletions = mechs.into_iter().map(|m| (a.name.clone(), m)).collect();
    client
        .alter_users(Vec::new(), deletions)
        .await
        .context("delete user")?;
    println!("deleted {}", a.name);
    Ok(())
}
