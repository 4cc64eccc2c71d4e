//! `weir acl create|list|delete`: Kafka's ACLs through the ACL APIs, in the spirit of
//! `kafka-acls` (docs/design/security.md).

use std::io::Write;

use anyhow::{bail, Context};
use weir_broker::security::acl::{
    AclOperation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};
use weir_client::{AclEntry, AclQuery};

use super::common::{connect, stdout, Table};
use super::ConnectArgs;

#[derive(clap::Subcommand, Debug)]
pub enum AclCommand {
    /// Create ACLs: every principal × operation on the resource.
    Create(CreateArgs),
    /// List ACLs (all, or those matching the filters).
    List(FilterArgs),
    /// Delete the ACLs matching the filters.
    Delete(FilterArgs),
}

/// The resource: exactly one of these.
#[derive(clap::Args, Debug)]
pub struct ResourceArgs {
    /// A topic (`*`: every topic).
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group (`*`: every group).
    #[arg(long)]
    group: Option<String>,
    /// A transactional id (`*`: every one).
    #[arg(long)]
    transactional_id: Option<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
}

impl ResourceArgs {
    fn resource(&self) -> anyhow::Result<Option<(ResourceType, String)>> {
        let given: Vec<(ResourceType, String)> = [
            (ResourceType::Topic, self.topic.clone()),
            (ResourceType::Group, self.group.clone()),
            (ResourceType::TransactionalId, self.transactional_id.clone()),
            (
                ResourceType::Cluster,
                self.cluster.then(|| CLUSTER_NAME.to_string()),
            ),
        ]
        .into_iter()
        .filter_map(|(t, n)| Some((t, n?)))
        .collect();
        match given.len() {
            0 => Ok(None),
            1 => Ok(given.into_iter().next()),
            _ => bail!("give one of --topic, --group, --transactional-id or --cluster"),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    resource: ResourceArgs,
    /// Principal to allow (`User:alice`, `User:*`); repeatable.
    #[arg(long = "allow-principal")]
    allow: Vec<String>,
    /// Principal to deny; repeatable.
    #[arg(long = "deny-principal")]
    deny: Vec<String>,
    /// Operation (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
    /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL); repeatable.
    #[arg(long = "operation", required = true)]
    operations: Vec<String>,
    /// Host the ACL applies to: an IP address or `*`.
    #[arg(long, default_value = "*")]
    host: String,
    /// LITERAL or PREFIXED.
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
}

#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    resource: ResourceArgs,
    /// Only this principal's ACLs.
    #[arg(long)]
    principal: Option<String>,
    /// Only ACLs of this operation.
    #[arg(long)]
    operation: Option<String>,
    /// Only ALLOW or DENY ACLs.
    #[arg(long)]
    permission: Option<String>,
    /// ANY, MATCH (the ACLs that apply to the named resource), LITERAL or PREFIXED; default
    /// LITERAL with a resource name, ANY without.
    #[arg(long)]
    resource_pattern_type: Option<String>,
}

pub async fn run(c: AclCommand) -> anyhow::Result<()> {
    match c {
        AclCommand::Create(a) => create(a).await,
        AclCommand::List(a) => {
            let query = query(&a)?;
            let mut client = connect(&a.connect).await?;
            let acls = client.describe_acls(&query).await.context("list ACLs")?;
            print(acls)
        }
        AclCommand::Delete(a) => {
            let query = query(&a)?;
            let mut client = connect(&a.connect).await?;
            let acls = client.delete_acls(&query).await.context("delete ACLs")?;
            println!("deleted {} ACL(s)", acls.len());
            print(acls)
        }
    }
}

fn pattern(s: &str) -> anyhow::Result<PatternType> {
    PatternType::parse(s).with_context(|| {
        format!("unknown resource pattern type {s:?}: ANY, MATCH, LITERAL or PREFIXED")
    })
}

fn operation(s: &str) -> anyhow::Result<AclOperation> {
    AclOperation::parse(s).with_context(|| format!("unknown operation {s:?}"))
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let Some((resource_type, name)) = a.resource.resource()? else {
        bail!("give one of --topic, --group, --transactional-id or --cluster");
    };
    let pattern = pattern(&a.resource_pattern_type)?;
    if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
        bail!("an ACL's pattern type is LITERAL or PREFIXED");
    }
    if a.allow.is_empty() && a.deny.is_empty() {
        bail!("give at least one --allow-principal or --deny-principal");
    }
    let operations = a
        .operations
        .iter()
        .map(|o| operation(o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let principals = a
        .allow
        .iter()
        .map(|p| (p, Permission::Allow))
        .chain(a.deny.iter().map(|p| (p, Permission::Deny)));
    let mut acls = Vec::new();
    for (principal, permission) in principals {
        for op in &operations {
            acls.push(AclEntry {
                resource_type: resource_type.code(),
                name: name.clone(),
                pattern: pattern.code(),
                principal: principal.clone(),
                host: a.host.clone(),
                operation: op.code(),
                permission: permission.code(),
            });
        }
    }
    let mut client = connect(&a.connect).await?;
    client.create_acls(&acls).await.context("create ACLs")?;
    println!("created {} ACL(s)", acls.len());
    print(acls)
}

fn query(a: &FilterArgs) -> anyhow::Result<AclQuery> {
    let resource = a.resource.resource()?;
    let pattern = match &a.resource_pattern_type {
        Some(p) => pattern(p)?,
        None if resource.is_some() => PatternType::Literal,
        None => PatternType::Any,
    };
    Ok(AclQuery {
        resource_type: resource
            .as_ref()
            .map_or(ResourceType::Any, |(t, _)| *t)
            .code(),
        name: resource.map(|(_, n)| n),
        pattern: pattern.code(),
        principal: a.principal.clone(),
        host: None,
        operation: a
            .operation
            .as_deref()
            .map(operation)
            .transpose()?
            .unwrap_or(AclOperation::Any)
            .code(),
        permission: match a.permission.as_deref() {
            None => Permission::Any,
            Some(p) => Permission::parse(p).with_context(|| format!("unknown permission {p:?}"))?,
        }
        .code(),
    })
}

fn print(mut acls: Vec<AclEntry>) -> anyhow::Result<()> {
    acls.sort();
    let name = |code, f: fn(i8) -> Option<&'static str>| f(code).unwrap_or("UNKNOWN").to_string();
    let mut table = Table::new([
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
        "RESOURCE",
        "NAME",
        "PATTERN",
    ]);
    for a in acls {
        table.row(vec![
            a.principal,
            a.host,
            name(a.operation, |c| {
                AclOperation::from_code(c).map(AclOperation::name)
            }),
            name(a.permission, |c| {
                Permission::from_code(c).map(Permission::name)
            }),
            name(a.resource_type, |c| {
                ResourceType::from_code(c).map(ResourceType::name)
            }),
            a.name,
            name(a.pattern, |c| {
                PatternType::from_code(c).map(PatternType::name)
            }),
        ]);
    }
    let mut out = stdout();
    table.write(&mut out)?;
    out.flush()?;
    Ok(())
}
