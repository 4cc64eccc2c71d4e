//! A classic group's membership timers: pending member ids, sessions, the join deadline of
//! a rebalance and the SyncGroup deadline, fired by [`Group::expire_members`] at the time the
//! broker's timer wakes for ([`Group::next_member_deadline`]).

use tracing::{debug, info};

use super::{Ctx, Group, JoinTimer, Member};
use crate::types::GroupState;

impl Group {
    /// Fires every membership timer due at `ctx.now`.
    pub fn expire_members(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        let before = self.pending_members.len();
        self.pending_members.retain(|p| p.deadline_ms > now);
        if self.pending_members.len() != before {
            debug!(group = %self.id, "pending members expired");
            self.try_complete_join(ctx);
        }

        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.session_expiry().is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_update(&id, "session timeout expired", ctx);
        }

        self.try_complete_join(ctx);

        if let Some(pending) = self.pending_sync.take_if(|p| p.deadline_ms <= now) {
            if matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            ) {
                for id in &pending.members {
                    info!(group = %self.id, member = %id, "no SyncGroup in time; removed");
                    self.remove_member(id, ctx);
                }
                self.prepare_rebalance("members did not sync in time", ctx);
            }
        }
    }

    /// The earliest membership timer.
    pub fn next_member_deadline(&self) -> Option<u64> {
        let pending = self.pending_members.iter().map(|p| p.deadline_ms);
        let sessions = self.members.iter().filter_map(Member::session_expiry);
        let join = self
            .join_timer
            .filter(|_| self.state == GroupState::PreparingRebalance)
            .map(JoinTimer::deadline_ms);
        let sync = self.pending_sync.as_ref().map(|p| p.deadline_ms);
        pending.chain(sessions).chain(join).chain(sync).min()
    }
}
