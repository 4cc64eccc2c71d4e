//! openraft's network on the internal transport: each RPC is one call on the peer's raft
//! connection, within the RPC's hard TTL.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{NodeId, NodeInfo, TypeConfig};
use crate::wire::{keys, CallError, Peers, Purpose};

#[derive(Clone)]
pub struct Network {
    peers: Arc<Peers>,
}

impl Network {
    pub fn new(peers: Arc<Peers>) -> Network {
        Network { peers }
    }
}

pub struct Client {
    peers: Arc<Peers>,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Client;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Client {
        // Voters carry no address in the membership; learners carry their internal listener.
        self.peers.learn(target, &node.internal);
        Client {
            peers: self.peers.clone(),
            target,
        }
    }
}

impl Client {
    async fn rpc<Req: Serialize, Resp: DeserializeOwned, E>(
        &self,
        key: i16,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .call(self.target, Purpose::Raft, key, req, ttl)
            .await
            .map_err(|e| match e {
                CallError::Timeout { after, .. } => RPCError::Timeout(Timeout {
                    action,
                    id: self.peers.me(),
                    target: self.target,
                    timeout: after,
                }),
                CallError::Connect { .. } | CallError::NoAddress(_) => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Client {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.rpc(keys::RAFT_APPEND, RPCTypes::AppendEntries, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(
            keys::RAFT_SNAPSHOT,
            RPCTypes::InstallSnapshot,
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.rpc(keys::RAFT_VOTE, RPCTypes::Vote, &rpc, &option)
            .await
    }
}
