//! Kafka's ACL model: resources, patterns, operations, bindings and filters (the wire codes
//! are Kafka's), the authorizer's index ([`index`]) and the durable store ([`store`]).
//!
//! Pure: no I/O outside [`store`], no broker types, so the decision table is unit-tested.

pub mod index;
#[cfg(test)]
mod index_tests;
pub mod store;

use serde::{Deserialize, Serialize};

pub use index::AclIndex;
pub use store::{AclStore, AclsError};

/// The one CLUSTER resource's name, as Kafka.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A LITERAL name that matches every resource of its type, and a principal or host that
/// matches every one.
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $code:literal, $kafka:literal;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant,)* }

        impl $name {
            /// The wire code.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// From the wire; `None` for UNKNOWN and codes Weir does not know.
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (`TRANSACTIONAL_ID`, `DESCRIBE_CONFIGS`).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $kafka,)* }
            }

            /// From Kafka's name, any case, `-` or `_` (`transactional-id`).
            pub fn parse(s: &str) -> Option<$name> {
                let s = s.to_ascii_uppercase().replace('-', "_");
                match s.as_str() { $($kafka => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

codes! {
    /// Kafka's `ResourceType` (ANY only in filters; DELEGATION_TOKEN and USER are never
    /// granted by Weir, but filters and bindings can name them).
    ResourceType {
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
    }
}

codes! {
    /// Kafka's `PatternType` (ANY and MATCH only in filters).
    PatternType {
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
}

codes! {
    /// Kafka's `AclOperation` (ANY only in filters).
    AclOperation {
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
    }
}

codes! {
    /// Kafka's `AclPermissionType` (ANY only in filters).
    Permission {
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
}

impl AclOperation {
    /// The operations whose ALLOW also allows `self`: itself, ALL, and Kafka's implications
    /// (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
    /// DESCRIBE_CONFIGS).
    pub fn allowed_by(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            Describe => &[Describe, Read, Write, Delete, Alter, All],
            DescribeConfigs => &[DescribeConfigs, AlterConfigs, All],
            Read => &[Read, All],
            Write => &[Write, All],
            Create => &[Create, All],
            Delete => &[Delete, All],
            Alter => &[Alter, All],
            ClusterAction => &[ClusterAction, All],
            AlterConfigs => &[AlterConfigs, All],
            IdempotentWrite => &[IdempotentWrite, All],
            All => &[All],
            Any => &[],
        }
    }
}

/// One ACL: Kafka's `AclBinding` (a resource pattern and an access control entry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    /// `User:alice` or `User:*`.
    pub principal: String,
    /// `*` or an IP address.
    pub host: String,
    pub operation: AclOperation,
    pub permission: Permission,
}

/// Why an ACL cannot be created (Kafka answers INVALID_REQUEST with the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAcl(pub String);

impl AclBinding {
    /// Builds a binding from the wire codes of CreateAcls, checking what Kafka checks: a
    /// concrete resource type, pattern, operation and permission, a `Type:name` principal, a
    /// `*` or IP host, a non-empty name, and `kafka-cluster` as the CLUSTER's name.
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: &str,
        pattern: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, InvalidAcl> {
        let bad = |m: String| Err(InvalidAcl(m));
        let resource_type = match ResourceType::from_code(resource_type) {
            Some(ResourceType::Any) | None => {
                return bad(format!("Invalid resource type {resource_type} for an ACL"))
            }
            Some(t) => t,
        };
        let pattern = match PatternType::from_code(pattern) {
            Some(p @ (PatternType::Literal | PatternType::Prefixed)) => p,
            _ => return bad(format!("Invalid pattern type {pattern} for an ACL")),
        };
        let operation = match AclOperation::from_code(operation) {
            Some(AclOperation::Any) | None => {
                return bad(format!("Invalid operation {operation} for an ACL"))
            }
            Some(o) => o,
        };
        let permission = match Permission::from_code(permission) {
            Some(Permission::Any) | None => {
                return bad(format!("Invalid permission type {permission} for an ACL"))
            }
            Some(p) => p,
        };
        if name.is_empty() {
            return bad("Resource name must not be empty".into());
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return bad(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if pattern == PatternType::Prefixed && name == WILDCARD {
            return bad("A PREFIXED pattern cannot be the wildcard '*'".into());
        }
        match principal.split_once(':') {
            Some((kind, who)) if !kind.is_empty() && !who.is_empty() => {}
            _ => {
                return bad(format!(
                    "Could not parse principal from `{principal}` (no colon is found between the principal type and name)"
                ))
            }
        }
        if host != WILDCARD && host.parse::<std::net::IpAddr>().is_err() {
            return bad(format!("Invalid host `{host}`: an IP address or `*`"));
        }
        Ok(AclBinding {
            resource_type,
            name: name.to_string(),
            pattern,
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        })
    }
}

impl AclBinding {
    /// The ACL as a metadata record's entry (cluster mode: ACLs are replicated metadata).
    pub fn to_entry(&self) -> weir_metadata::AclEntry {
        weir_metadata::AclEntry {
            resource_type: self.resource_type.code(),
            name: self.name.clone(),
            pattern_type: self.pattern.code(),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.code(),
            permission: self.permission.code(),
        }
    }

    /// An ACL of the metadata image, validated as CreateAcls validates (a record written
    /// by a later version with codes this one does not know is refused, not guessed at).
    pub fn from_entry(e: &weir_metadata::AclEntry) -> Result<AclBinding, InvalidAcl> {
        AclBinding::from_wire(
            e.resource_type,
            &e.name,
            e.pattern_type,
            &e.principal,
            &e.host,
            e.operation,
            e.permission,
        )
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} from {} on {}:{}:{}",
            self.principal,
            self.permission,
            self.operation,
            self.pattern,
            self.host,
            self.resource_type,
            self.pattern,
            self.name
        )
    }
}

/// Kafka's `AclBindingFilter`, from DescribeAcls and DeleteAcls: `None` fields match
/// anything, as do ANY codes; MATCH patterns select the ACLs that would apply to the named
/// resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: Permission,
}

impl AclFilter {
    /// From the wire codes; UNKNOWN or unheard-of codes are refused (INVALID_REQUEST).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<AclFilter, InvalidAcl> {
        let bad =
            |what: &str, code: i8| InvalidAcl(format!("Invalid {what} {code} in an ACL filter"));
        Ok(AclFilter {
            resource_type: ResourceType::from_code(resource_type)
                .ok_or_else(|| bad("resource type", resource_type))?,
            name: name.map(str::to_string),
            pattern: PatternType::from_code(pattern).ok_or_else(|| bad("pattern type", pattern))?,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: AclOperation::from_code(operation)
                .ok_or_else(|| bad("operation", operation))?,
            permission: Permission::from_code(permission)
                .ok_or_else(|| bad("permission type", permission))?,
        })
    }

    /// The filter that selects every ACL.
    pub fn everything() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: Permission::Any,
        }
    }

    /// Whether `acl` is selected (Kafka's `AclBindingFilter#matches`).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_resource(acl) && self.matches_entry(acl)
    }

    fn matches_resource(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern, PatternType::Any | PatternType::Match)
            && self.pattern != acl.pattern
        {
            return false;
        }
        let Some(name) = &self.name else { return true };
        if self.pattern == PatternType::Any || self.pattern == acl.pattern {
            return *name == acl.name;
        }
        match acl.pattern {
            PatternType::Literal => *name == acl.name || acl.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&acl.name),
            PatternType::Any | PatternType::Match => false,
        }
    }

    fn matches_entry(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }
}
