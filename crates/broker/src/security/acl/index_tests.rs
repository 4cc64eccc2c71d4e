//! The authorizer's decision table.

use std::net::IpAddr;

use super::index::{Check, Decision, Policy};
use super::*;

fn acl(
    rt: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    host: &str,
    op: AclOperation,
    perm: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        name: name.into(),
        pattern,
        principal: principal.into(),
        host: host.into(),
        operation: op,
        permission: perm,
    }
}

fn topic(
    name: &str,
    pattern: PatternType,
    who: &str,
    op: AclOperation,
    perm: Permission,
) -> AclBinding {
    acl(ResourceType::Topic, name, pattern, who, "*", op, perm)
}

const LOCAL: &str = "127.0.0.1";

fn decide(index: &AclIndex, policy: &Policy, who: &str, op: AclOperation, name: &str) -> Decision {
    index.decide(
        policy,
        &Check {
            principal: who,
            host: LOCAL.parse().expect("ip"),
            operation: op,
            resource_type: ResourceType::Topic,
            name,
        },
    )
}

use AclOperation::*;
use PatternType::*;
use Permission::*;

#[test]
fn literal_allow_and_the_implied_describe() {
    let index = AclIndex::new(&[topic("orders", Literal, "User:alice", Write, Allow)]);
    let p = Policy::default();
    assert_eq!(
        decide(&index, &p, "User:alice", Write, "orders"),
        Decision::AllowedByAcl
    );
    // WRITE implies DESCRIBE, not READ.
    assert_eq!(
        decide(&index, &p, "User:alice", Describe, "orders"),
        Decision::AllowedByAcl
    );
    assert_eq!(
        decide(&index, &p, "User:alice", Read, "orders"),
        Decision::NoMatchingAllow
    );
    assert_eq!(
        decide(&index, &p, "User:bob", Write, "orders"),
        Decision::NoMatchingAllow
    );
    // Another topic has no ACL at all.
    assert_eq!(
        decide(&index, &p, "User:alice", Write, "other"),
        Decision::NoAclFound(false)
    );
    assert!(!decide(&index, &p, "User:alice", Write, "other").allowed());
}

#[test]
fn implications_are_kafkas() {
    for (granted, asked, allowed) in [
        (Read, Describe, true),
        (Delete, Describe, true),
        (Alter, Describe, true),
        (AlterConfigs, DescribeConfigs, true),
        (All, ClusterAction, true),
        (Describe, Read, false),
        (DescribeConfigs, AlterConfigs, false),
        (Alter, AlterConfigs, false),
        (Write, IdempotentWrite, false),
        (Create, Describe, false),
    ] {
        let index = AclIndex::new(&[topic("t", Literal, "User:a", granted, Allow)]);
        let d = decide(&index, &Policy::default(), "User:a", asked, "t");
        assert_eq!(
            d.allowed(),
            allowed,
            "{granted} granted, {asked} asked: {d:?}"
        );
    }
}

#[test]
fn prefixed_and_wildcards() {
    let index = AclIndex::new(&[
        topic("logs-", Prefixed, "User:alice", Read, Allow),
        topic("*", Literal, "User:bob", Read, Allow),
        topic("pub", Literal, "User:*", Read, Allow),
    ]);
    let p = Policy::default();
    assert!(decide(&index, &p, "User:alice", Read, "logs-app").allowed());
    assert!(decide(&index, &p, "User:alice", Read, "logs-").allowed());
    assert!(!decide(&index, &p, "User:alice", Read, "logs").allowed());
    assert!(!decide(&index, &p, "User:alice", Read, "xlogs-app").allowed());
    // The literal `*` matches every topic, for bob only.
    assert!(decide(&index, &p, "User:bob", Read, "anything").allowed());
    assert!(decide(&index, &p, "User:bob", Read, "logs-app").allowed());
    // `User:*` matches every principal on `pub` only.
    assert!(decide(&index, &p, "User:carol", Read, "pub").allowed());
    // The wildcard topic ACL makes every topic "named": no fallback to the default.
    let open = Policy {
        allow_if_no_acl: true,
        ..Policy::default()
    };
    assert_eq!(
        decide(&index, &open, "User:carol", Read, "x"),
        Decision::NoMatchingAllow
    );
    // Multibyte names walk their prefixes on character boundaries.
    let index = AclIndex::new(&[topic("é", Prefixed, "User:a", Read, Allow)]);
    assert!(decide(&index, &p, "User:a", Read, "éa").allowed());
    assert!(!decide(&index, &p, "User:a", Read, "a").allowed());
}

#[test]
fn deny_wins() {
    let index = AclIndex::new(&[
        topic("*", Literal, "User:*", All, Allow),
        topic("secret", Prefixed, "User:bob", Read, Deny),
        topic("audit", Literal, "User:carol", All, Deny),
    ]);
    let p = Policy::default();
    assert!(decide(&index, &p, "User:bob", Read, "orders").allowed());
    assert_eq!(
        decide(&index, &p, "User:bob", Read, "secret-1"),
        Decision::DeniedByAcl
    );
    // A DENY of READ does not deny DESCRIBE (denials are not implied).
    assert!(decide(&index, &p, "User:bob", Describe, "secret-1").allowed());
    // DENY ALL denies everything.
    assert_eq!(
        decide(&index, &p, "User:carol", Describe, "audit"),
        Decision::DeniedByAcl
    );
}

#[test]
fn hosts() {
    let index = AclIndex::new(&[
        acl(
            ResourceType::Topic,
            "t",
            Literal,
            "User:a",
            "10.0.0.1",
            Read,
            Allow,
        ),
        acl(
            ResourceType::Topic,
            "t",
            Literal,
            "User:a",
            "127.0.0.1",
            Write,
            Deny,
        ),
        acl(
            ResourceType::Topic,
            "t",
            Literal,
            "User:a",
            "*",
            Write,
            Allow,
        ),
    ]);
    let p = Policy::default();
    let at = |host: &str, op| {
        index
            .decide(
                &p,
                &Check {
                    principal: "User:a",
                    host: host.parse::<IpAddr>().expect("ip"),
                    operation: op,
                    resource_type: ResourceType::Topic,
                    name: "t",
                },
            )
            .allowed()
    };
    assert!(at("10.0.0.1", Read));
    assert!(!at("10.0.0.2", Read));
    assert!(!at("127.0.0.1", Write));
    assert!(at("10.0.0.2", Write));
}

#[test]
fn super_users_and_no_acl_found() {
    let index = AclIndex::new(&[topic("t", Literal, "User:a", Read, Deny)]);
    let p = Policy {
        super_users: ["User:admin".to_string()].into(),
        allow_if_no_acl: false,
    };
    assert_eq!(
        decide(&index, &p, "User:admin", Read, "t"),
        Decision::SuperUser
    );
    assert_eq!(
        decide(&index, &p, "User:b", Read, "u"),
        Decision::NoAclFound(false)
    );
    let open = Policy {
        allow_if_no_acl: true,
        ..p.clone()
    };
    assert!(decide(&index, &open, "User:b", Read, "u").allowed());
    // A resource with ACLs never falls back to the default, even for another operation.
    assert_eq!(
        decide(&index, &open, "User:b", Write, "t"),
        Decision::NoMatchingAllow
    );
    // Other resource types are separate.
    let group = index.decide(
        &open,
        &Check {
            principal: "User:a",
            host: LOCAL.parse().expect("ip"),
            operation: Read,
            resource_type: ResourceType::Group,
            name: "t",
        },
    );
    assert_eq!(group, Decision::NoAclFound(true));
}

#[test]
fn allows_any_for_idempotent_producers() {
    let index = AclIndex::new(&[
        topic("a-", Prefixed, "User:w", Write, Allow),
        topic("b", Literal, "User:r", Read, Allow),
    ]);
    let p = Policy::default();
    let local: IpAddr = LOCAL.parse().expect("ip");
    assert!(index.allows_any(&p, "User:w", local, Write, ResourceType::Topic));
    assert!(!index.allows_any(&p, "User:r", local, Write, ResourceType::Topic));
    assert!(!index.allows_any(&p, "User:w", local, Write, ResourceType::Group));
}

#[test]
fn creation_is_validated_and_filters_match_as_kafka() {
    let ok = AclBinding::from_wire(2, "t", 3, "User:a", "*", 3, 3).expect("valid");
    assert_eq!(ok.resource_type, ResourceType::Topic);
    for (rt, name, pat, who, host, op, perm) in [
        (1, "t", 3, "User:a", "*", 3, 3),            // ANY resource
        (2, "t", 2, "User:a", "*", 3, 3),            // MATCH pattern
        (2, "t", 3, "alice", "*", 3, 3),             // no principal type
        (2, "t", 3, "User:a", "host.example", 3, 3), // not an IP
        (2, "t", 3, "User:a", "*", 1, 3),            // ANY operation
        (2, "t", 3, "User:a", "*", 3, 1),            // ANY permission
        (4, "c", 3, "User:a", "*", 3, 3),            // CLUSTER not kafka-cluster
        (2, "", 3, "User:a", "*", 3, 3),             // empty name
    ] {
        assert!(
            AclBinding::from_wire(rt, name, pat, who, host, op, perm).is_err(),
            "{rt} {name} {pat} {who} {host} {op} {perm}"
        );
    }
    let literal = topic("orders", Literal, "User:a", Read, Allow);
    let prefixed = topic("ord", Prefixed, "User:a", Read, Allow);
    let wildcard = topic("*", Literal, "User:b", Write, Deny);
    let f = |pat: i8, name: Option<&str>| {
        AclFilter::from_wire(2, name, pat, None, None, 1, 1).expect("filter")
    };
    let picks = |filter: AclFilter| [&literal, &prefixed, &wildcard].map(|a| filter.matches(a));
    assert_eq!(picks(f(1, None)), [true, true, true]);
    assert_eq!(picks(f(1, Some("orders"))), [true, false, false]);
    assert_eq!(picks(f(3, Some("orders"))), [true, false, false]);
    assert_eq!(picks(f(4, None)), [false, true, false]);
    assert_eq!(picks(f(2, Some("orders"))), [true, true, true]);
    assert_eq!(picks(f(2, Some("other"))), [false, false, true]);
    let by_principal =
        AclFilter::from_wire(1, None, 1, Some("User:b"), None, 1, 2).expect("filter");
    assert_eq!(picks(by_principal), [false, false, true]);
    assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
}
