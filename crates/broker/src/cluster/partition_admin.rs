//! Leadership and replica placement through the quorum (design §5.7): ElectLeaders and
//! AlterPartitionReassignments become typed [`ControllerRequest`]s; the answer waits until
//! this broker published the result (as topic admin does), so a Metadata right after an
//! election names the new leaders.

use weir_metadata::{
    ControllerReply, ControllerRequest, ElectionType, MetadataError, Reassignment,
};

use super::topics::unexpected;
use crate::state::{AdminError, State};

/// Each partition's outcome, in request order.
pub type PartitionResults = Vec<(String, i32, Result<(), MetadataError>)>;

impl State {
    /// ElectLeaders: `partitions: None` elects for every partition.
    pub async fn cluster_elect_leaders(
        &self,
        election_type: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<PartitionResults, AdminError> {
        let request = ControllerRequest::ElectLeaders {
            election_type,
            partitions,
        };
        match self.submit(request).await? {
            ControllerReply::ElectLeaders(results) => Ok(results),
            other => Err(unexpected(&other)),
        }
    }

    /// UnregisterBroker: removes `id`'s registration (refused for a voter, and for a live
    /// broker that still holds replicas). The outer error: the quorum did not answer.
    pub async fn cluster_unregister_broker(
        &self,
        id: i32,
    ) -> Result<Result<(), MetadataError>, AdminError> {
        match self
            .submit(ControllerRequest::UnregisterBroker { id })
            .await?
        {
            ControllerReply::UnregisterBroker(result) => Ok(result),
            other => Err(unexpected(&other)),
        }
    }

    /// AlterPartitionReassignments: start, replace or (with no replicas) cancel moves.
    pub async fn cluster_reassign(
        &self,
        partitions: Vec<Reassignment>,
    ) -> Result<PartitionResults, AdminError> {
        let request = ControllerRequest::AlterPartitionReassignments { partitions };
        match self.submit(request).await? {
            ControllerReply::AlterPartitionReassignments(results) => Ok(results),
            other => Err(unexpected(&other)),
        }
    }
}
