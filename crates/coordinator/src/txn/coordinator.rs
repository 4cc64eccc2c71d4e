//! The [`TxnCoordinator`]: the entry points for transactional APIs, timers and recovery.
//!
//! Follows Apache Kafka's `TransactionCoordinator` and `TransactionMetadata` (transaction
//! protocol v1). Kafka's "pending transition" (a state change waiting for its log append)
//! has no counterpart: every change is applied at once and its [`TxnOutput::PersistState`]
//! must be durable before the broker answers.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, info, warn};

use crate::{ErrorCode, TopicPartition};

use super::{
    InitRequest, InitResult, TxnConfig, TxnDescription, TxnError, TxnListing, TxnMember, TxnOutput,
    TxnRecord, TxnState, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Every transactional id this broker coordinates, as a pure state machine.
///
/// Every call takes the current time; nothing happens between calls. Calls return the
/// [`TxnOutput`]s the broker must carry out, in order, together with the answer to the
/// request (if any). Answer only after carrying out the outputs.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, TxnRecord>,
    /// False until [`TxnCoordinator::recover`]: the log may still hold a newer record for
    /// any id, so requests are refused with COORDINATOR_LOAD_IN_PROGRESS.
    loaded: bool,
    /// When the last tick ran, to space ticks by the check interval.
    last_tick_ms: Option<u64>,
}

/// `(outputs to carry out in order, the answer to send once they are done)`. Errors come
/// with outputs only from InitProducerId, whose CONCURRENT_TRANSACTIONS answer may start an
/// abort.
pub type TxnStep<T> = (Vec<TxnOutput>, Result<T, TxnError>);

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            txns: BTreeMap::new(),
            loaded: false,
            last_tick_ms: None,
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Whether [`TxnCoordinator::recover`] has run.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Replays one transaction log record, oldest first; a later record for the same id
    /// replaces an earlier one and a tombstone removes it.
    pub fn load(&mut self, record: TxnRecord) {
        if record.is_tombstone() {
            self.txns.remove(&record.transactional_id);
            return;
        }
        let mut record = record;
        if record.state == TxnState::PrepareEpochFence {
            // Never logged by Weir. Fencing happens while Ongoing, and keeping it Ongoing
            // lets the timeout abort it.
            warn!(transactional_id = %record.transactional_id, "PrepareEpochFence in the log, loading as Ongoing");
            record.state = TxnState::Ongoing;
        }
        self.txns.insert(record.transactional_id.clone(), record);
    }

    /// Ends loading: from now on requests are served. Re-issues the markers of every
    /// transaction whose decision was logged but not its completion, so a broker killed
    /// between PrepareCommit and CompleteCommit still commits (and likewise aborts). Open
    /// (Ongoing) transactions stay open until their timeout aborts them.
    pub fn recover(&mut self, now_ms: u64) -> Vec<TxnOutput> {
        self.loaded = true;
        let out: Vec<TxnOutput> = self
            .txns
            .values()
            .filter(|txn| txn.state.is_preparing())
            .map(write_markers)
            .collect();
        info!(
            now_ms,
            transactional_ids = self.txns.len(),
            completing = out.len(),
            "transaction state loaded"
        );
        out
    }

    /// InitProducerId. `alloc` hands out a new, never-used producer id; it is called only
    /// when one is needed.
    ///
    /// If the transactional id has a transaction open, that transaction is aborted (fencing
    /// its producer with a bumped epoch) and the answer is CONCURRENT_TRANSACTIONS: the
    /// client retries, and once the abort completes it gets the epoch after that.
    pub fn init_producer_id(
        &mut self,
        now_ms: u64,
        req: InitRequest,
        alloc: &mut dyn FnMut() -> i64,
    ) -> TxnStep<InitResult> {
        let Some(transactional_id) = req.transactional_id else {
            // Idempotent producer: always a fresh id, nothing to remember.
            let result = InitResult {
                producer_id: alloc(),
                producer_epoch: 0,
            };
            return (Vec::new(), Ok(result));
        };
        let mut out = Vec::new();
        let result = self.init_transactional(
            now_ms,
            transactional_id,
            req.transaction_timeout_ms,
            (req.producer_id, req.producer_epoch),
            alloc,
            &mut out,
        );
        (out, result)
    }

    fn init_transactional(
        &mut self,
        now_ms: u64,
        transactional_id: String,
        timeout_ms: i32,
        (expected_id, expected_epoch): (i64, i16),
        alloc: &mut dyn FnMut() -> i64,
        out: &mut Vec<TxnOutput>,
    ) -> Result<InitResult, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::EmptyTransactionalId);
        }
        let expected = match (expected_id, expected_epoch) {
            (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => {
                return Err(TxnError::InconsistentProducerIdAndEpoch {
                    producer_id: expected_id,
                    producer_epoch: expected_epoch,
                })
            }
            (id, epoch) => Some((id, epoch)),
        };
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_timeout_max_ms {
            return Err(TxnError::InvalidTimeout {
                timeout_ms,
                max_ms: self.config.transaction_timeout_max_ms,
            });
        }
        if !self.loaded {
            return Err(TxnError::LoadInProgress);
        }
        let txn = self
            .txns
            .entry(transactional_id.clone())
            .or_insert_with(|| {
                // Epoch -1: the bump below makes it 0, and any KIP-360 expectation is
                // accepted (the producer's old id expired; it gets a new one).
                let producer_id = alloc();
                debug!(%transactional_id, producer_id, "new transactional id");
                TxnRecord {
                    transactional_id: transactional_id.clone(),
                    producer_id,
                    producer_epoch: NO_PRODUCER_EPOCH,
                    last_producer_id: NO_PRODUCER_ID,
                    last_producer_epoch: NO_PRODUCER_EPOCH,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    txn_start_ms: None,
                    last_update_ms: now_ms,
                }
            });

        if let Some((id, epoch)) = expected {
            // Kafka's `isValidProducerId`: the current id, or the previous one when this
            // is the retry of an InitProducerId that rotated the id on an exhausted epoch.
            let valid = txn.producer_epoch == NO_PRODUCER_EPOCH
                || id == txn.producer_id
                || (id == txn.last_producer_id && epoch_exhausted(epoch));
            if !valid {
                return Err(fenced(txn, id, epoch));
            }
        }

        match txn.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(concurrent(txn)),
            TxnState::Ongoing => {
                info!(%transactional_id, "InitProducerId aborts the open transaction");
                fence_and_abort(txn, now_ms, out);
                Err(concurrent(txn))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let asked_epoch = expected.map(|(_, epoch)| epoch);
                let (producer_id, epoch, last_epoch) = if epoch_exhausted(txn.producer_epoch)
                    && asked_epoch.is_none_or(|epoch| epoch == txn.producer_epoch)
                {
                    // Rotate: a new producer id at epoch 0. Remember the old epoch only
                    // for a KIP-360 producer, which may retry with it.
                    let last_epoch = if expected.is_some() {
                        txn.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    (alloc(), 0, last_epoch)
                } else {
                    let (epoch, last_epoch) = next_epoch(txn, asked_epoch)
                        .ok_or_else(|| fenced(txn, expected_id, expected_epoch))?;
                    (txn.producer_id, epoch, last_epoch)
                };
                txn.last_producer_id = txn.producer_id;
                txn.producer_id = producer_id;
                txn.producer_epoch = epoch;
                txn.last_producer_epoch = last_epoch;
                txn.timeout_ms = timeout_ms;
                txn.state = TxnState::Empty;
                txn.partitions.clear();
                txn.groups.clear();
                txn.txn_start_ms = None;
                txn.last_update_ms = now_ms;
                out.push(TxnOutput::PersistState(txn.clone()));
                Ok(InitResult {
                    producer_id,
                    producer_epoch: epoch,
                })
            }
            TxnState::PrepareEpochFence | TxnState::Dead => Err(invalid(txn, "InitProducerId")),
        }
    }

    /// AddPartitionsToTxn. One answer for every partition; the broker answers partitions
    /// it refused itself (unknown topic, ...) on its own and does not pass them in.
    pub fn add_partitions(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<TopicPartition>,
    ) -> TxnStep<()> {
        let members = partitions.into_iter().map(TxnMember::Partition).collect();
        self.add_members(
            now_ms,
            transactional_id,
            producer_id,
            producer_epoch,
            members,
        )
    }

    /// AddOffsetsToTxn: the producer will send TxnOffsetCommit for `group_id`, so the
    /// markers must reach that group.
    pub fn add_offsets(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group_id: &str,
    ) -> TxnStep<()> {
        let members = vec![TxnMember::Group(group_id.to_owned())];
        self.add_members(
            now_ms,
            transactional_id,
            producer_id,
            producer_epoch,
            members,
        )
    }

    /// Adds partitions and groups to the producer's transaction, opening it if none is.
    pub fn add_members(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        members: Vec<TxnMember>,
    ) -> TxnStep<()> {
        let mut out = Vec::new();
        let result = self
            .producer_txn(transactional_id, producer_id, producer_epoch)
            .and_then(|txn| match txn.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => Err(concurrent(txn)),
                TxnState::Ongoing if members.iter().all(|member| has_member(txn, member)) => Ok(()),
                TxnState::Ongoing
                | TxnState::Empty
                | TxnState::CompleteCommit
                | TxnState::CompleteAbort => {
                    if txn.state != TxnState::Ongoing {
                        debug!(transactional_id, "transaction begins");
                        txn.txn_start_ms = Some(now_ms);
                        txn.state = TxnState::Ongoing;
                    }
                    for member in members {
                        match member {
                            TxnMember::Partition(tp) => txn.partitions.insert(tp),
                            TxnMember::Group(group) => txn.groups.insert(group),
                        };
                    }
                    txn.last_producer_id = txn.producer_id;
                    txn.last_update_ms = now_ms;
                    out.push(TxnOutput::PersistState(txn.clone()));
                    Ok(())
                }
                TxnState::PrepareEpochFence | TxnState::Dead => {
                    Err(invalid(txn, "AddPartitionsToTxn"))
                }
            });
        (out, result)
    }

    /// EndTxn. On success the decision is logged ([`TxnOutput::PersistState`] in Prepare*)
    /// and the markers requested; the client is answered once the record is durable,
    /// without waiting for the markers.
    ///
    /// A retry of a decision already completed succeeds; a retry while its markers are
    /// still being written gets CONCURRENT_TRANSACTIONS (the client retries until they
    /// are), as in Kafka. The other decision gets INVALID_TXN_STATE.
    pub fn end_txn(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> TxnStep<()> {
        let mut out = Vec::new();
        let operation = if commit {
            "EndTxn(commit)"
        } else {
            "EndTxn(abort)"
        };
        let result = self
            .producer_txn(transactional_id, producer_id, producer_epoch)
            .and_then(|txn| match (txn.state, commit) {
                (TxnState::Ongoing, _) => {
                    txn.state = if commit {
                        TxnState::PrepareCommit
                    } else {
                        TxnState::PrepareAbort
                    };
                    txn.last_producer_id = txn.producer_id;
                    txn.last_update_ms = now_ms;
                    debug!(transactional_id, state = %txn.state, "transaction decided");
                    out.push(TxnOutput::PersistState(txn.clone()));
                    out.push(write_markers(txn));
                    Ok(())
                }
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    Err(concurrent(txn))
                }
                _ => Err(invalid(txn, operation)),
            });
        (out, result)
    }

    /// The broker has written every marker (and settled every group) of the last
    /// [`TxnOutput::WriteMarkers`] for this id: the transaction completes.
    pub fn markers_written(
        &mut self,
        now_ms: u64,
        transactional_id: &str,
    ) -> Result<Vec<TxnOutput>, TxnError> {
        let txn = self
            .txns
            .get_mut(transactional_id)
            .ok_or_else(|| TxnError::NotFound {
                transactional_id: transactional_id.to_owned(),
            })?;
        txn.state = match txn.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Err(invalid(txn, "completing markers")),
        };
        txn.partitions.clear();
        txn.groups.clear();
        txn.last_producer_id = txn.producer_id;
        txn.last_update_ms = now_ms;
        debug!(transactional_id, state = %txn.state, "transaction complete");
        Ok(vec![TxnOutput::PersistState(txn.clone())])
    }

    /// Aborts transactions open longer than their timeout (bumping the epoch, so the
    /// producer is fenced) and forgets transactional ids idle for longer than
    /// `transactional_id_expiration_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<TxnOutput> {
        let mut out = Vec::new();
        if !self.loaded {
            return out;
        }
        self.last_tick_ms = Some(now_ms);
        let expiration_ms = self.config.transactional_id_expiration_ms;
        let mut expired = Vec::new();
        for (transactional_id, txn) in &mut self.txns {
            if txn.state == TxnState::Ongoing && timeout_deadline(txn) <= now_ms {
                info!(%transactional_id, "transaction timed out, aborting");
                fence_and_abort(txn, now_ms, &mut out);
            } else if txn.state.is_idle()
                && txn.last_update_ms.saturating_add(expiration_ms) <= now_ms
            {
                info!(%transactional_id, "transactional id expired");
                txn.state = TxnState::Dead;
                txn.last_update_ms = now_ms;
                out.push(TxnOutput::PersistState(txn.clone()));
                expired.push(transactional_id.clone());
            }
        }
        for transactional_id in expired {
            self.txns.remove(&transactional_id);
        }
        out
    }

    /// When [`TxnCoordinator::tick`] next has work, spaced at least
    /// `abort_timed_out_check_interval_ms` after the last tick. `None` while loading or
    /// with nothing to time out.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.loaded {
            return None;
        }
        let expiration_ms = self.config.transactional_id_expiration_ms;
        let earliest = self
            .txns
            .values()
            .filter_map(|txn| match txn.state {
                TxnState::Ongoing => Some(timeout_deadline(txn)),
                state if state.is_idle() => Some(txn.last_update_ms.saturating_add(expiration_ms)),
                _ => None,
            })
            .min()?;
        let interval = self.config.abort_timed_out_check_interval_ms;
        Some(match self.last_tick_ms {
            Some(last) => earliest.max(last.saturating_add(interval)),
            None => earliest,
        })
    }

    /// DescribeTransactions, one answer per id in the order asked.
    pub fn describe(&self, transactional_ids: &[String]) -> Vec<TxnDescription> {
        transactional_ids
            .iter()
            .map(|transactional_id| {
                let found = self.txns.get(transactional_id).filter(|_| self.loaded);
                match found {
                    Some(txn) => TxnDescription {
                        error: ErrorCode::NONE,
                        transactional_id: transactional_id.clone(),
                        state: txn.state,
                        producer_id: txn.producer_id,
                        producer_epoch: txn.producer_epoch,
                        timeout_ms: txn.timeout_ms,
                        txn_start_ms: txn.txn_start_ms,
                        partitions: txn.partitions.iter().cloned().collect(),
                        groups: txn.groups.iter().cloned().collect(),
                    },
                    None => TxnDescription {
                        error: if self.loaded {
                            ErrorCode::TRANSACTIONAL_ID_NOT_FOUND
                        } else {
                            ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                        },
                        transactional_id: transactional_id.clone(),
                        state: TxnState::Dead,
                        producer_id: NO_PRODUCER_ID,
                        producer_epoch: NO_PRODUCER_EPOCH,
                        timeout_ms: -1,
                        txn_start_ms: None,
                        partitions: Vec::new(),
                        groups: Vec::new(),
                    },
                }
            })
            .collect()
    }

    /// ListTransactions, in transactional id order. An empty filter matches everything.
    /// State names the broker could not parse go to `unknown_state_filters` and are not
    /// passed here.
    pub fn list(
        &self,
        state_filter: &[TxnState],
        producer_id_filter: &[i64],
    ) -> Result<Vec<TxnListing>, TxnError> {
        if !self.loaded {
            return Err(TxnError::LoadInProgress);
        }
        Ok(self
            .txns
            .values()
            .filter(|txn| state_filter.is_empty() || state_filter.contains(&txn.state))
            .filter(|txn| {
                producer_id_filter.is_empty() || producer_id_filter.contains(&txn.producer_id)
            })
            .map(|txn| TxnListing {
                transactional_id: txn.transactional_id.clone(),
                producer_id: txn.producer_id,
                state: txn.state,
            })
            .collect())
    }

    /// Whether the producer's open transaction holds `member`: TxnOffsetCommit is only
    /// accepted for a group added with AddOffsetsToTxn, so the group's pending commits
    /// are sure to be settled by the transaction's markers. Fencing and unknown ids fail
    /// as for AddPartitionsToTxn; a transaction without the member is INVALID_TXN_STATE.
    pub fn verify_member(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member: &TxnMember,
    ) -> Result<(), TxnError> {
        self.verify(transactional_id, producer_id, producer_epoch, |m| {
            m == member
        })
    }

    /// KIP-890 verification (AddPartitionsToTxn with `verify_only`): whether the producer's
    /// transaction is Ongoing under this producer id and epoch and holds a member that
    /// `holds` accepts. A partition leader asks this before the first transactional batch of
    /// a producer it has no open transaction for, a group coordinator before pending offsets
    /// (a group on another broker is named by its `__consumer_offsets` partition, so `holds`
    /// maps the transaction's groups to their partitions). Nothing changes: a refused late
    /// request is what keeps a decided transaction from being reopened behind its markers.
    /// Fencing and unknown ids fail as for AddPartitionsToTxn; any other state, or a
    /// transaction without such a member, is INVALID_TXN_STATE.
    pub fn verify(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        holds: impl Fn(&TxnMember) -> bool,
    ) -> Result<(), TxnError> {
        let txn = self.producer_txn(transactional_id, producer_id, producer_epoch)?;
        let member_held = txn
            .partitions
            .iter()
            .map(|tp| TxnMember::Partition(tp.clone()))
            .chain(txn.groups.iter().map(|g| TxnMember::Group(g.clone())))
            .any(|m| holds(&m));
        if txn.state == TxnState::Ongoing && member_held {
            Ok(())
        } else {
            Err(invalid(txn, "verification"))
        }
    }

    /// The transaction of a producer making a transactional request, after Kafka's
    /// checks: known id, same producer id, same epoch.
    fn producer_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&mut TxnRecord, TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::EmptyTransactionalId);
        }
        if !self.loaded {
            return Err(TxnError::LoadInProgress);
        }
        let txn = self
            .txns
            .get_mut(transactional_id)
            .filter(|txn| txn.producer_id == producer_id)
            .ok_or_else(|| TxnError::ProducerIdMapping {
                transactional_id: transactional_id.to_owned(),
                producer_id,
            })?;
        if txn.producer_epoch != producer_epoch {
            return Err(fenced(txn, producer_id, producer_epoch));
        }
        Ok(txn)
    }
}

/// Kafka's `TransactionMetadata.isEpochExhausted`: one epoch is kept in reserve so the
/// coordinator can still fence the last producer.
fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Kafka's `prepareIncrementProducerEpoch` (KIP-360): `(epoch, last epoch)` for an
/// InitProducerId on an idle transactional id, or `None` if the producer is fenced.
fn next_epoch(txn: &TxnRecord, expected_epoch: Option<i16>) -> Option<(i16, i16)> {
    let current = txn.producer_epoch;
    // Exhausted epochs were rotated before getting here, unless the producer is retrying.
    let bumped = current.checked_add(1);
    match expected_epoch {
        // A first initialization, or a client without KIP-360.
        None => Some((bumped?, NO_PRODUCER_EPOCH)),
        // Continuing after an error, and nobody else has initialized since.
        Some(epoch) if current == NO_PRODUCER_EPOCH || epoch == current => Some((bumped?, current)),
        // Retrying an InitProducerId that succeeded: the same answer again.
        Some(epoch) if epoch == txn.last_producer_epoch => Some((current, txn.last_producer_epoch)),
        Some(_) => None,
    }
}

/// Kafka's `prepareFenceProducerEpoch` then `endTransaction(ABORT, isFromClient = false)`:
/// bump the epoch (never returned to anyone, it only fences the producer), log
/// PrepareAbort and request abort markers under the new epoch.
fn fence_and_abort(txn: &mut TxnRecord, now_ms: u64, out: &mut Vec<TxnOutput>) {
    match txn.producer_epoch.checked_add(1) {
        Some(epoch) => txn.producer_epoch = epoch,
        // Only reachable from a hand-made log: epochs handed out stop at i16::MAX - 1.
        None => warn!(transactional_id = %txn.transactional_id, "cannot bump epoch past i16::MAX"),
    }
    txn.last_producer_id = txn.producer_id;
    txn.last_producer_epoch = NO_PRODUCER_EPOCH;
    txn.state = TxnState::PrepareAbort;
    txn.last_update_ms = now_ms;
    out.push(TxnOutput::PersistState(txn.clone()));
    out.push(write_markers(txn));
}

fn write_markers(txn: &TxnRecord) -> TxnOutput {
    TxnOutput::WriteMarkers {
        transactional_id: txn.transactional_id.clone(),
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
        commit: txn.state == TxnState::PrepareCommit,
        partitions: txn.partitions.iter().cloned().collect(),
        groups: txn.groups.iter().cloned().collect(),
    }
}

/// The first time at which an Ongoing transaction has timed out (Kafka aborts when
/// `start + timeout < now`).
fn timeout_deadline(txn: &TxnRecord) -> u64 {
    let start = txn.txn_start_ms.unwrap_or(txn.last_update_ms);
    let timeout = u64::try_from(txn.timeout_ms).unwrap_or(0);
    start.saturating_add(timeout).saturating_add(1)
}

fn has_member(txn: &TxnRecord, member: &TxnMember) -> bool {
    match member {
        TxnMember::Partition(tp) => txn.partitions.contains(tp),
        TxnMember::Group(group) => txn.groups.contains(group),
    }
}

fn fenced(txn: &TxnRecord, producer_id: i64, producer_epoch: i16) -> TxnError {
    TxnError::Fenced {
        transactional_id: txn.transactional_id.clone(),
        producer_id,
        producer_epoch,
        current_producer_id: txn.producer_id,
        current_epoch: txn.producer_epoch,
    }
}

fn concurrent(txn: &TxnRecord) -> TxnError {
    TxnError::Concurrent {
        transactional_id: txn.transactional_id.clone(),
        state: txn.state,
    }
}

fn invalid(txn: &TxnRecord, operation: &'static str) -> TxnError {
    TxnError::InvalidState {
        transactional_id: txn.transactional_id.clone(),
        state: txn.state,
        operation,
    }
}
