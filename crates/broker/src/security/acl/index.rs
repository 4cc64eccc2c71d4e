//! The authorizer's decision (Kafka's `StandardAuthorizer#authorize`) over an index of the
//! ACLs, so a check costs a map lookup per pattern kind plus the walk over the name's
//! prefixes, never a scan of every ACL.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::{AclBinding, AclOperation, PatternType, Permission, ResourceType, WILDCARD};

/// What the ACLs do not say: `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub super_users: HashSet<String>,
    /// When no ACL at all names a resource, whether everyone may use it.
    pub allow_if_no_acl: bool,
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub principal: &'a str,
    pub host: IpAddr,
    pub operation: AclOperation,
    pub resource_type: ResourceType,
    pub name: &'a str,
}

/// Why the answer is what it is (logged at debug on a denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    SuperUser,
    AllowedByAcl,
    DeniedByAcl,
    /// ACLs name the resource, none of them allows this.
    NoMatchingAllow,
    /// No ACL names the resource: `allow.everyone.if.no.acl.found` decided.
    NoAclFound(bool),
}

impl Decision {
    pub fn allowed(self) -> bool {
        matches!(
            self,
            Decision::SuperUser | Decision::AllowedByAcl | Decision::NoAclFound(true)
        )
    }
}

#[derive(Debug, Clone)]
struct Entry {
    principal: String,
    /// `None`: every host.
    host: Option<IpAddr>,
    operation: AclOperation,
    permission: Permission,
}

#[derive(Debug, Default)]
struct TypeIndex {
    /// LITERAL ACLs by name, the `*` wildcard among them.
    literal: HashMap<String, Vec<Entry>>,
    /// PREFIXED ACLs by prefix.
    prefixed: HashMap<String, Vec<Entry>>,
    /// The longest prefix, in bytes: the walk stops there.
    longest_prefix: usize,
}

/// The ACLs, indexed by resource type and name.
#[derive(Debug, Default)]
pub struct AclIndex {
    types: HashMap<ResourceType, TypeIndex>,
}

impl AclIndex {
    pub fn new<'a>(acls: impl IntoIterator<Item = &'a AclBinding>) -> AclIndex {
        let mut types: HashMap<ResourceType, TypeIndex> = HashMap::new();
        for acl in acls {
            let entry = Entry {
                principal: acl.principal.clone(),
                // Bindings are validated at creation; an unparsable host in a hand-edited
                // file matches no connection rather than every one.
                host: if acl.host == WILDCARD {
                    None
                } else {
                    Some(
                        acl.host
                            .parse()
                            .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
                    )
                },
                operation: acl.operation,
                permission: acl.permission,
            };
            let t = types.entry(acl.resource_type).or_default();
            match acl.pattern {
                PatternType::Prefixed => {
                    t.longest_prefix = t.longest_prefix.max(acl.name.len());
                    t.prefixed.entry(acl.name.clone()).or_default().push(entry);
                }
                _ => t.literal.entry(acl.name.clone()).or_default().push(entry),
            }
        }
        AclIndex { types }
    }

    /// Kafka's order: a super user may do anything; else a matching DENY wins; else a
    /// matching ALLOW (of the operation, ALL, or an operation implying it) allows; else, when
    /// no ACL names the resource at all, `allow.everyone.if.no.acl.found` decides.
    pub fn decide(&self, policy: &Policy, check: &Check<'_>) -> Decision {
        if policy.super_users.contains(check.principal) {
            return Decision::SuperUser;
        }
        let Some(t) = self.types.get(&check.resource_type) else {
            return Decision::NoAclFound(policy.allow_if_no_acl);
        };
        let mut found = false;
        let mut allowed = false;
        let allowing = check.operation.allowed_by();
        for entries in t.matching(check.name) {
            found = true;
            for e in entries {
                if !(e.principal == check.principal || e.principal == super::WILDCARD_PRINCIPAL)
                    || e.host.is_some_and(|h| h != check.host)
                {
                    continue;
                }
                match e.permission {
                    Permission::Deny
                        if e.operation == check.operation || e.operation == AclOperation::All =>
                    {
                        return Decision::DeniedByAcl
                    }
                    Permission::Allow if allowing.contains(&e.operation) => allowed = true,
                    _ => {}
                }
            }
        }
        if allowed {
            Decision::AllowedByAcl
        } else if found {
            Decision::NoMatchingAllow
        } else {
            Decision::NoAclFound(policy.allow_if_no_acl)
        }
    }

    /// Whether any ACL of `resource_type` ALLOWs `principal` `operation` on some resource
    /// (KIP-679: idempotent produce is allowed to whoever may WRITE any topic). DENYs are
    /// left to the per-topic checks at produce time.
    pub fn allows_any(
        &self,
        policy: &Policy,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if policy.super_users.contains(principal) {
            return true;
        }
        let Some(t) = self.types.get(&resource_type) else {
            return policy.allow_if_no_acl;
        };
        let allowing = operation.allowed_by();
        t.literal
            .values()
            .chain(t.prefixed.values())
            .flatten()
            .any(|e| {
                e.permission == Permission::Allow
                    && (e.principal == principal || e.principal == super::WILDCARD_PRINCIPAL)
                    && e.host.is_none_or(|h| h == host)
                    && allowing.contains(&e.operation)
            })
    }
}

impl TypeIndex {
    /// The entry lists that apply to `name`: its LITERAL ACLs, the `*` wildcard's, and the
    /// PREFIXED ACLs of every prefix of it.
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<Entry>> + 'a {
        let literal = self.literal.get(name);
        let wildcard = (name != WILDCARD)
            .then(|| self.literal.get(WILDCARD))
            .flatten();
        let prefixes = (!self.prefixed.is_empty())
            .then(|| {
                name.char_indices()
                    .map(|(i, c)| i + c.len_utf8())
                    .take_while(|end| *end <= self.longest_prefix)
                    .filter_map(|end| self.prefixed.get(&name[..end]))
            })
            .into_iter()
            .flatten();
        literal.into_iter().chain(wildcard).chain(prefixes)
    }
}
