//! The storage glue: openraft's own storage suite, then what it does not cover (restart
//! from disk, a torn tail, purge past the end, snapshots across nodes).

use std::collections::BTreeMap;
use std::path::Path;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder};
use tempfile::TempDir;
use weir_metadata::{BrokerRegistration, Endpoint, MetadataRecord};

use crate::types::{Entry, LogId, NodeInfo, RaftStorageError, TypeConfig, Vote};
use crate::{Change, LogStore, StateMachine};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), RaftStorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(dir.path()).expect("open log");
        let sm = StateMachine::open(dir.path()).expect("open sm");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("suite");
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64, records: Vec<MetadataRecord>) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(records),
    }
}

fn membership(term: u64, index: u64) -> Entry {
    let voters: BTreeMap<u64, NodeInfo> = (1..=3).map(|i| (i, NodeInfo::default())).collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(
            vec![voters.keys().copied().collect()],
            voters,
        )),
    }
}

fn broker(id: i32, epoch: i64) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        incarnation: uuid::Uuid::new_v4(),
        epoch,
        endpoints: vec![Endpoint {
            name: "PLAINTEXT".into(),
            host: "127.0.0.1".into(),
            port: 9092,
        }],
        rack: None,
        fenced: true,
        in_controlled_shutdown: false,
    })
}

fn cluster_id() -> MetadataRecord {
    MetadataRecord::ClusterId {
        cluster_id: "c1".into(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn indexes(log: &mut LogStore, range: std::ops::Range<u64>) -> Vec<u64> {
    log.try_get_log_entries(range)
        .await
        .expect("read")
        .iter()
        .map(|e| e.log_id.index)
        .collect()
}

fn active_segment(meta: &Path) -> std::path::PathBuf {
    let dir = meta.join(crate::log_store::LOG_DIR);
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

#[test]
fn vote_log_and_purge_survive_a_restart() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = LogStore::open(dir.path()).unwrap();
            assert!(log.is_pristine());
            log.blocking_append(vec![membership(1, 0), entry(1, 1, vec![cluster_id()])])
                .await
                .unwrap();
            log.save_vote(&Vote::new(2, 3)).await.unwrap();
            log.blocking_append((2..6).map(|i| entry(2, i, vec![broker(i as i32, i as i64)])))
                .await
                .unwrap();
            // A follower's conflict: entries from 4 on are replaced by another term's.
            log.truncate(log_id(2, 4)).await.unwrap();
            log.blocking_append(vec![entry(3, 4, vec![]), entry(3, 5, vec![])])
                .await
                .unwrap();
            log.purge(log_id(1, 1)).await.unwrap();
            assert!(!log.is_pristine());
        }
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(2, 3)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
        assert_eq!(state.last_log_id, Some(log_id(3, 5)));
        assert_eq!(indexes(&mut log, 0..100).await, vec![2, 3, 4, 5]);
        let entries = log.try_get_log_entries(4..6).await.unwrap();
        assert!(entries.iter().all(|e| e.log_id.leader_id.term == 3));
        let third = log.try_get_log_entries(3..4).await.unwrap();
        assert!(matches!(
            &third[0].payload,
            EntryPayload::Normal(r) if matches!(&r[..], [MetadataRecord::RegisterBroker(b)] if b.id == 3)
        ));
    });
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_entry() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = LogStore::open(dir.path()).unwrap();
            log.blocking_append((0..4).map(|i| entry(1, i, vec![broker(i as i32, 1)])))
                .await
                .unwrap();
        }
        // A crash in the middle of writing the next entry: half of its batch is on disk.
        let segment = active_segment(dir.path());
        let bytes = std::fs::read(&segment).unwrap();
        let mut torn = bytes.clone();
        torn.extend_from_slice(&bytes[..bytes.len() / 8]);
        std::fs::write(&segment, &torn).unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 3)));
        assert_eq!(indexes(&mut log, 0..10).await, vec![0, 1, 2, 3]);
        // And the log goes on from there.
        log.blocking_append(vec![entry(2, 4, vec![])])
            .await
            .unwrap();
        assert_eq!(indexes(&mut log, 0..10).await, vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn purge_past_the_end_restarts_the_log_after_it() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        log.blocking_append(vec![membership(1, 0), entry(1, 1, vec![])])
            .await
            .unwrap();
        // A snapshot up to 9 was installed: everything up to it is purged, and the leader's
        // next entries start at 10.
        log.purge(log_id(4, 9)).await.unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(4, 9)));
        assert_eq!(state.last_log_id, Some(log_id(4, 9)));
        log.blocking_append(vec![entry(4, 10, vec![])])
            .await
            .unwrap();
        drop(log);
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut log, 0..20).await, vec![10]);
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(log_id(4, 10))
        );
    });
}

#[test]
fn a_snapshot_moves_the_image_to_another_node_and_survives_restarts() {
    rt().block_on(async {
        let a = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(a.path()).unwrap();
        let mut applied = sm.subscribe();
        sm.apply(vec![
            membership(1, 0),
            entry(1, 1, vec![cluster_id()]),
            entry(1, 2, vec![broker(1, 1), broker(2, 2)]),
        ])
        .await
        .unwrap();
        for want in 0..3 {
            assert_eq!(applied.recv().await.unwrap().index, want);
        }
        let image = sm.image();
        assert_eq!(image.brokers().len(), 2);
        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 2)));

        // Installed on a node with nothing: same image, and a Reset for its subscribers.
        let b = tempfile::tempdir().unwrap();
        let mut other = StateMachine::open(b.path()).unwrap();
        let mut changes = other.subscribe();
        other
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        let got = changes.recv().await.unwrap();
        assert!(matches!(got.change, Change::Reset));
        assert_eq!(got.index, 2);
        assert_eq!(*other.image(), *image);
        let (last, membership) = other.applied_state().await.unwrap();
        assert_eq!(last, Some(log_id(1, 2)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 0)));

        // Both restart from their snapshot files.
        for dir in [a.path(), b.path()] {
            let mut again = StateMachine::open(dir).unwrap();
            assert_eq!(*again.image(), *image);
            assert_eq!(again.applied_state().await.unwrap().0, Some(log_id(1, 2)));
            let current = again
                .get_current_snapshot()
                .await
                .unwrap()
                .expect("snapshot");
            assert_eq!(current.meta.last_log_id, Some(log_id(1, 2)));
        }
    });
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        sm.apply(vec![membership(1, 0), entry(1, 1, vec![cluster_id()])])
            .await
            .unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        sm.apply(vec![entry(1, 2, vec![broker(1, 1)])])
            .await
            .unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        sm.apply(vec![entry(1, 3, vec![broker(2, 2)])])
            .await
            .unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let snapshots = dir.path().join(crate::state_machine::SNAPSHOT_DIR);
        // Only the newest two are kept.
        assert_eq!(std::fs::read_dir(&snapshots).unwrap().count(), 2);
        std::fs::write(snapshots.join("3-1.json"), b"{\"trunc").unwrap();
        let mut again = StateMachine::open(dir.path()).unwrap();
        assert_eq!(again.applied_state().await.unwrap().0, Some(log_id(1, 2)));
        assert_eq!(again.image().brokers().len(), 1);
    });
}

#[test]
fn a_batch_the_image_refuses_is_void_on_every_node() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        // The second record contradicts the image (a heartbeat change for a broker that
        // does not exist): the whole batch is skipped, the first record too.
        let bad = MetadataRecord::BrokerRegistrationChange {
            id: 9,
            epoch: 1,
            fenced: Some(false),
            in_controlled_shutdown: None,
        };
        sm.apply(vec![entry(1, 0, vec![cluster_id(), bad])])
            .await
            .unwrap();
        assert_eq!(sm.image().cluster_id(), None);
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 0)));
    });
}
