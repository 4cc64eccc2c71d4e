//! CreateAcls, DescribeAcls and DeleteAcls (v1-v3): the ACLs of `security::acl`, changed
//! with DESCRIBE and ALTER on the cluster, as Kafka. On a single node they are stored in
//! the broker's file; in cluster mode they go to the active controller as metadata records
//! (`cluster::acls`) and the answer waits until this broker enforces them.

use std::collections::BTreeMap;

use weir_protocol::kafka_protocol::messages::create_acls_response::AclCreationResult;
use weir_protocol::kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use weir_protocol::kafka_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource,
};
use weir_protocol::kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use weir_protocol::ResponseError;

use super::{msg, str, Conn};
use crate::security::acl::{AclBinding, AclFilter, InvalidAcl};
use crate::security::{Operation, Resource};
use crate::state::State;

const NOT_AUTHORIZED: &str = "Cluster authorization failed.";

pub async fn create(state: &State, req: CreateAclsRequest, conn: &Conn) -> CreateAclsResponse {
    let mut r = CreateAclsResponse::default();
    let fail = |e: ResponseError, m: &str| {
        let mut res = AclCreationResult::default();
        res.error_code = e.code();
        res.error_message = msg(m);
        res
    };
    if !conn.may(state, Operation::Alter, Resource::Cluster) {
        r.results = req
            .creations
            .iter()
            .map(|_| fail(ResponseError::ClusterAuthorizationFailed, NOT_AUTHORIZED))
            .collect();
        return r;
    }
    let parsed: Vec<Result<AclBinding, InvalidAcl>> = req
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let stored: Result<(), (ResponseError, String)> = if valid.is_empty() {
        Ok(())
    } else if state.is_cluster() {
        state
            .cluster_create_acls(&valid)
            .await
            .map_err(|e| (crate::errors::admin_code(&e), e.to_string()))
    } else {
        state
            .security
            .acls
            .create(valid.clone())
            .await
            .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))
    };
    if let Err((_, e)) = &stored {
        tracing::error!(error = %e, "cannot store the ACLs");
    } else {
        for acl in &valid {
            tracing::info!(principal = %conn.principal, %acl, "ACL created");
        }
    }
    r.results = parsed
        .into_iter()
        .map(|p| match (p, &stored) {
            (Err(e), _) => fail(ResponseError::InvalidRequest, &e.0),
            (Ok(_), Err((code, e))) => fail(*code, e),
            (Ok(_), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    r
}

pub fn describe(state: &State, req: &DescribeAclsRequest, conn: &Conn) -> DescribeAclsResponse {
    let mut r = DescribeAclsResponse::default();
    if !conn.may(state, Operation::Describe, Resource::Cluster) {
        r.error_code = ResponseError::ClusterAuthorizationFailed.code();
        r.error_message = msg(NOT_AUTHORIZED);
        return r;
    }
    let filter = match AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = msg(e.0);
            return r;
        }
    };
    // Grouped by resource pattern, as Kafka answers.
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in state.security.acls.describe(&filter) {
        let mut d = AclDescription::default();
        d.principal = str(&acl.principal);
        d.host = str(&acl.host);
        d.operation = acl.operation.code();
        d.permission_type = acl.permission.code();
        by_resource
            .entry((acl.resource_type.code(), acl.name, acl.pattern.code()))
            .or_default()
            .push(d);
    }
    r.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            let mut res = DescribeAclsResource::default();
            res.resource_type = resource_type;
            res.resource_name = str(&name);
            res.pattern_type = pattern_type;
            res.acls = acls;
            res
        })
        .collect();
    r
}

pub async fn delete(state: &State, req: DeleteAclsRequest, conn: &Conn) -> DeleteAclsResponse {
    let mut r = DeleteAclsResponse::default();
    let fail = |e: ResponseError, m: &str| {
        let mut res = DeleteAclsFilterResult::default();
        res.error_code = e.code();
        res.error_message = msg(m);
        res
    };
    if !conn.may(state, Operation::Alter, Resource::Cluster) {
        r.filter_results = req
            .filters
            .iter()
            .map(|_| fail(ResponseError::ClusterAuthorizationFailed, NOT_AUTHORIZED))
            .collect();
        return r;
    }
    let parsed: Vec<Result<AclFilter, InvalidAcl>> = req
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let removed = if state.is_cluster() {
        state
            .cluster_delete_acls(&valid)
            .await
            .map_err(|e| (crate::errors::admin_code(&e), e.to_string()))
    } else {
        state
            .security
            .acls
            .delete(&valid)
            .await
            .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))
    };
    let mut removed = match removed {
        Ok(removed) => removed.into_iter(),
        Err((code, e)) => {
            tracing::error!(error = %e, "cannot store the ACLs");
            r.filter_results = parsed
                .iter()
                .map(|p| match p {
                    Err(bad) => fail(ResponseError::InvalidRequest, &bad.0),
                    Ok(_) => fail(code, &e),
                })
                .collect();
            return r;
        }
    };
    r.filter_results = parsed
        .into_iter()
        .map(|p| match p {
            Err(bad) => fail(ResponseError::InvalidRequest, &bad.0),
            Ok(_) => {
                let mut res = DeleteAclsFilterResult::default();
                res.matching_acls = removed
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|acl| {
                        tracing::info!(principal = %conn.principal, %acl, "ACL deleted");
                        let mut m = DeleteAclsMatchingAcl::default();
                        m.resource_type = acl.resource_type.code();
                        m.resource_name = str(&acl.name);
                        m.pattern_type = acl.pattern.code();
                        m.principal = str(&acl.principal);
                        m.host = str(&acl.host);
                        m.operation = acl.operation.code();
                        m.permission_type = acl.permission.code();
                        m
                    })
                    .collect();
                res
            }
        })
        .collect();
    r
}
