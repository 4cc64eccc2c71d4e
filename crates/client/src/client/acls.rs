//! ACLs: CreateAcls, DescribeAcls and DeleteAcls, as `weir acl` uses them. Codes are Kafka's
//! (resource type 2 TOPIC, pattern 3 LITERAL, operation 3 READ, permission 3 ALLOW, ...).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};

use super::{text, Client};
use crate::error::ClientError;

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    pub resource_type: i8,
    pub name: String,
    pub pattern: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A filter of DescribeAcls and DeleteAcls: `None` matches anything, as do the ANY codes (1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclQuery {
    pub resource_type: i8,
    pub name: Option<String>,
    pub pattern: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl Default for AclQuery {
    /// Every ACL.
    fn default() -> AclQuery {
        AclQuery {
            resource_type: 1,
            name: None,
            pattern: 1,
            principal: None,
            host: None,
            operation: 1,
            permission: 1,
        }
    }
}

impl Client {
    /// Creates `acls`; the first refused one is the error.
    pub async fn create_acls(&mut self, acls: &[AclEntry]) -> Result<(), ClientError> {
        let mut req = CreateAclsRequest::default();
        req.creations = acls
            .iter()
            .map(|a| {
                let mut c = AclCreation::default();
                c.resource_type = a.resource_type;
                c.resource_name = text(&a.name);
                c.resource_pattern_type = a.pattern;
                c.principal = text(&a.principal);
                c.host = text(&a.host);
                c.operation = a.operation;
                c.permission_type = a.permission;
                c
            })
            .collect();
        let resp = self.admin().await?.send(req).await?;
        for r in resp.results {
            ClientError::check(ApiKey::CreateAcls, r.error_code, r.error_message.as_deref())?;
        }
        Ok(())
    }

    /// The ACLs `query` selects.
    pub async fn describe_acls(&mut self, query: &AclQuery) -> Result<Vec<AclEntry>, ClientError> {
        let mut req = DescribeAclsRequest::default();
        req.resource_type_filter = query.resource_type;
        req.resource_name_filter = query.name.as_deref().map(text);
        req.pattern_type_filter = query.pattern;
        req.principal_filter = query.principal.as_deref().map(text);
        req.host_filter = query.host.as_deref().map(text);
        req.operation = query.operation;
        req.permission_type = query.permission;
        let resp = self.admin().await?.send(req).await?;
        ClientError::check(
            ApiKey::DescribeAcls,
            resp.error_code,
            resp.error_message.as_deref(),
        )?;
        let mut out = Vec::new();
        for r in resp.resources {
            for a in r.acls {
                out.push(AclEntry {
                    resource_type: r.resource_type,
                    name: r.resource_name.to_string(),
                    pattern: r.pattern_type,
                    principal: a.principal.to_string(),
                    host: a.host.to_string(),
                    operation: a.operation,
                    permission: a.permission_type,
                });
            }
        }
        Ok(out)
    }

    /// Deletes what `query` selects and returns the deleted ACLs.
    pub async fn delete_acls(&mut self, query: &AclQuery) -> Result<Vec<AclEntry>, ClientError> {
        let mut f = DeleteAclsFilter::default();
        f.resource_type_filter = query.resource_type;
        f.resource_name_filter = query.name.as_deref().map(text);
        f.pattern_type_filter = query.pattern;
        f.principal_filter = query.principal.as_deref().map(text);
        f.host_filter = query.host.as_deref().map(text);
        f.operation = query.operation;
        f.permission_type = query.permission;
        let mut req = DeleteAclsRequest::default();
        req.filters = vec![f];
        let resp = self.admin().await?.send(req).await?;
        let mut out = Vec::new();
        for r in resp.filter_results {
            ClientError::check(ApiKey::DeleteAcls, r.error_code, r.error_message.as_deref())?;
            for m in r.matching_acls {
                out.push(AclEntry {
                    resource_type: m.resource_type,
                    name: m.resource_name.to_string(),
                    pattern: m.pattern_type,
                    principal: m.principal.to_string(),
                    host: m.host.to_string(),
                    operation: m.operation,
                    permission: m.permission_type,
                });
            }
        }
        Ok(out)
    }
}
