//! Early elections on evidence that the raft leader's process is gone (issue 11, failover
//! time; design §4.5).
//!
//! openraft 0.9 elects a new leader only once a follower's randomized election timer
//! fired (500-1000 ms at the default `controller.quorum.election.timeout.ms`) *and* the
//! other voters' leader lease (`election_timeout_max`, 1000 ms since they last heard the
//! leader) expired; a candidate that asks too early is refused and waits for its timer
//! again. After a SIGKILL of the active controller's node that took about 2 s, during
//! which nothing in the cluster changes: no broker is fenced, no partition the dead node
//! led gets a new leader, no lease (§4.9) is renewed.
//!
//! The same evidence the active controller uses to fence a broker at once (§4.7 step 3)
//! settles it here: the leader's internal listener **refuses** a connection. A node that
//! leads always has its listener bound (the node binds it before starting openraft), so
//! a refusal means the process is gone; a paused or cut-off leader times out instead and
//! keeps its lease. Every node's calls to the leader (heartbeat forwards, replica fetches)
//! record refusals in [`crate::wire::Peers`]; this task reads them every [`CHECK`], checks
//! once more with a fresh connection (a refusal noted before the leader's restart must not
//! depose it), and then asks openraft for an election (`Trigger::elect`), once per term.
//! When both surviving voters do so their first votes split, but both votes are then their
//! own uncommitted ones, which no lease protects: the first candidate of the next round wins
//! (one randomized timeout later). Elections stay openraft's: this only starts one sooner.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use crate::node::NodeInner;
use crate::types::NodeId;

/// How often the refusals are read (a lock and a metrics borrow).
const CHECK: Duration = Duration::from_millis(50);
/// The fresh connection that confirms a refusal.
const CONFIRM_TTL: Duration = Duration::from_millis(250);

/// What this node knows at one check.
#[derive(Clone, Debug)]
pub(crate) struct View<'a> {
    pub me: NodeId,
    pub is_voter: bool,
    pub state: ServerState,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// Peers whose listener refused a connection lately ([`crate::wire::Peers::refused`]).
    pub refused: &'a [(NodeId, u64)],
    /// The term this task last started an election in.
    pub elected_in: Option<u64>,
}

/// The leader to check for an early election, if any: a voter following a leader whose
/// listener refused a connection lately, and no early election started in this term yet.
pub(crate) fn suspect(view: &View<'_>) -> Option<NodeId> {
    let leader = view.leader?;
    let follows = view.is_voter && view.state == ServerState::Follower && leader != view.me;
    let fresh = view.elected_in.is_none_or(|t| view.term > t);
    (follows && fresh && view.refused.iter().any(|(id, _)| *id == leader)).then_some(leader)
}

pub(crate) async fn run(inner: Arc<NodeInner>) {
    let is_voter = inner.is_voter();
    if !is_voter || inner.config.voters.len() < 2 {
        return;
    }
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut elected_in = None;
    loop {
        tick.tick().await;
        let (state, leader, term) = {
            let m = inner.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader, m.current_term)
        };
        let refused = inner.peers.refused();
        let view = View {
            me: inner.id,
            is_voter,
            state,
            leader,
            term,
            refused: &refused,
            elected_in,
        };
        let Some(leader) = suspect(&view) else {
            continue;
        };
        if !inner.peers.refuses_now(leader, CONFIRM_TTL).await {
            continue;
        }
        tracing::info!(
            node = inner.id,
            leader,
            term,
            "the raft leader's listener refuses connections: electing at once"
        );
        elected_in = Some(term);
        if let Err(e) = inner.raft.trigger().elect().await {
            tracing::warn!(error = %e, "starting an election failed");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(refused: &[(NodeId, u64)]) -> View<'_> {
        View {
            me: 2,
            is_voter: true,
            state: ServerState::Follower,
            leader: Some(1),
            term: 7,
            refused,
            elected_in: None,
        }
    }

    #[test]
    fn a_follower_suspects_a_leader_whose_listener_refuses() {
        assert_eq!(suspect(&view(&[(1, 100)])), Some(1));
        assert_eq!(suspect(&view(&[(3, 100), (1, 100)])), Some(1));
    }

    #[test]
    fn nothing_without_a_refusal_of_the_leader_itself() {
        assert_eq!(suspect(&view(&[])), None);
        // Another broker is gone: the active controller fences it, no election.
        assert_eq!(suspect(&view(&[(3, 100)])), None);
        let no_leader = View {
            leader: None,
            ..view(&[(1, 100)])
        };
        assert_eq!(suspect(&no_leader), None);
    }

    #[test]
    fn only_voting_followers_start_elections() {
        let refused = [(1, 100)];
        let learner = View {
            is_voter: false,
            ..view(&refused)
        };
        assert_eq!(suspect(&learner), None);
        let candidate = View {
            state: ServerState::Candidate,
            ..view(&refused)
        };
        assert_eq!(suspect(&candidate), None);
        let leader = View {
            state: ServerState::Leader,
            leader: Some(2),
            ..view(&refused)
        };
        assert_eq!(suspect(&leader), None);
    }

    #[test]
    fn one_early_election_per_term() {
        let refused = [(1, 100)];
        let again = View {
            elected_in: Some(7),
            ..view(&refused)
        };
        assert_eq!(suspect(&again), None);
        // A later term with a leader that died too: again.
        let later = View {
            elected_in: Some(7),
            term: 9,
            ..view(&refused)
        };
        assert_eq!(suspect(&later), Some(1));
    }
}
