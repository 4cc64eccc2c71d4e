//! ACLs as replicated metadata (docs/design/security.md, "Authorization"): in cluster mode
//! CreateAcls and DeleteAcls become `AccessControlEntry` / `RemoveAccessControlEntry`
//! records through the active controller, and every broker's ACL index is rebuilt from its
//! metadata image by the publisher, so an ACL created through any broker is enforced by all
//! and survives restarts with the metadata log.

use std::collections::BTreeSet;

use weir_metadata::{AclEntry, ControllerReply, ControllerRequest, MetadataImage};

use crate::security::acl::{AclBinding, AclFilter};
use crate::state::{AdminError, State};

impl State {
    /// Makes the ACL index the image's ACLs. An entry this version cannot read (a code
    /// from a later version) is left out and logged: it grants nothing here, and a DENY
    /// among them is logged at error so an operator sees it is not enforced.
    pub fn sync_cluster_acls(&self, image: &MetadataImage) {
        let acls: BTreeSet<AclBinding> = image
            .acls()
            .iter()
            .filter_map(|e| match AclBinding::from_entry(e) {
                Ok(b) => Some(b),
                Err(why) => {
                    tracing::error!(acl = ?e, %why, "an ACL of the metadata image is not understood; not enforced");
                    None
                }
            })
            .collect();
        tracing::debug!(acls = acls.len(), "ACLs follow the metadata image");
        self.security.acls.replace_replicated(acls);
    }

    /// CreateAcls through the quorum; answered once this broker enforces them.
    pub async fn cluster_create_acls(&self, acls: &[AclBinding]) -> Result<(), AdminError> {
        let request = ControllerRequest::CreateAcls {
            acls: acls.iter().map(AclBinding::to_entry).collect(),
        };
        match self.submit(request).await? {
            ControllerReply::CreateAcls(r) => r.map_err(AdminError::Controller),
            other => Err(super::topics::unexpected(&other)),
        }
    }

    /// DeleteAcls through the quorum: the filters are resolved against this broker's ACLs,
    /// the controller removes those still in force, and each filter is answered with the
    /// removed ACLs it selects (an ACL two filters select is reported under both, as Kafka).
    pub async fn cluster_delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, AdminError> {
        let all = self.security.acls.describe(&AclFilter::everything());
        let selected: Vec<AclEntry> = all
            .iter()
            .filter(|a| filters.iter().any(|f| f.matches(a)))
            .map(AclBinding::to_entry)
            .collect();
        if selected.is_empty() {
            return Ok(filters.iter().map(|_| Vec::new()).collect());
        }
        let removed: BTreeSet<AclEntry> = match self
            .submit(ControllerRequest::DeleteAcls { acls: selected })
            .await?
        {
            ControllerReply::DeleteAcls(r) => {
                r.map_err(AdminError::Controller)?.into_iter().collect()
            }
            other => return Err(super::topics::unexpected(&other)),
        };
        Ok(filters
            .iter()
            .map(|f| {
                all.iter()
                    .filter(|a| f.matches(a) && removed.contains(&a.to_entry()))
                    .cloned()
                    .collect()
            })
            .collect())
    }
}
