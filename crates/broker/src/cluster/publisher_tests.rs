//! The publisher against images built from records, as the quorum would apply them.

use std::sync::Arc;

use uuid::Uuid;
use weir_metadata::{
    BrokerRegistration, LeaderRecovery, MetadataImage, MetadataRecord, PartitionChange,
    PartitionRegistration,
};

use super::*;
use crate::partition::Role;

const LOCAL: i32 = 1;

fn reg(replicas: &[i32], leader: i32, epoch: i32) -> PartitionRegistration {
    PartitionRegistration {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        elr: Vec::new(),
        last_known_elr: Vec::new(),
        adding: Vec::new(),
        removing: Vec::new(),
        leader,
        leader_epoch: epoch,
        partition_epoch: 0,
        leader_recovery: LeaderRecovery::default(),
    }
}

fn broker(id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        incarnation: Uuid::new_v4(),
        epoch: i64::from(id) * 10,
        endpoints: Vec::new(),
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
    })
}

fn topic(name: &str, id: Uuid, partitions: &[PartitionRegistration]) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_string(),
        topic_id: id,
    }];
    for (p, r) in partitions.iter().enumerate() {
        records.push(MetadataRecord::Partition {
            topic_id: id,
            partition: i32::try_from(p).expect("small"),
            registration: r.clone(),
        });
    }
    records
}

/// The quorum's image and the entries applied so far.
struct Quorum {
    image: MetadataImage,
    index: u64,
}

impl Quorum {
    fn new() -> Quorum {
        let mut q = Quorum {
            image: MetadataImage::new(),
            index: 0,
        };
        q.image
            .apply_all(&[broker(1), broker(2), broker(3)])
            .expect("brokers");
        q
    }

    /// Applies `records` as one entry and publishes it.
    async fn commit(&mut self, publisher: &mut Publisher, records: &[MetadataRecord]) {
        let delta = self.image.apply_all(records).expect("records apply");
        self.index += 1;
        publisher
            .apply(
                self.index,
                Arc::new(self.image.clone()),
                &Change::Delta(Box::new(delta)),
            )
            .await
            .expect("published");
    }
}

fn publisher(dir: &std::path::Path) -> Publisher {
    let (config, _) = BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        Default::default(),
    )
    .expect("config");
    Publisher::new(LOCAL, Arc::new(config), 1, Default::default())
}

#[tokio::test]
async fn records_only_until_caught_up_then_creates_the_local_replicas_with_their_roles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = publisher(dir.path());
    let mut q = Quorum::new();
    let id = Uuid::new_v4();
    let parts = [
        reg(&[1], 1, 0),       // leads alone
        reg(&[1, 2, 3], 1, 0), // replicated leader
        reg(&[2, 1, 3], 2, 0), // follows 2
        reg(&[2, 3], 2, 0),    // not a replica here
    ];
    q.commit(&mut p, &topic("t", id, &parts)).await;
    assert!(!dir.path().join("t-0").exists(), "nothing before catch-up");
    assert!(p.replica(id, 0).is_none());
    assert_eq!(p.image_cell().index(), 1);
    assert!(p.image_cell().image().topic(id).is_some());

    p.caught_up().await.expect("caught up");
    let alone = p.replica(id, 0).expect("replica 0");
    assert_eq!(alone.role(), Role::Leader);
    assert!(!alone.is_replicated());
    let replicated = p.replica(id, 1).expect("replica 1");
    assert_eq!(replicated.role(), Role::Leader);
    assert!(replicated.is_replicated());
    assert_eq!(replicated.isr(), Some(vec![1, 2, 3]));
    let follower = p.replica(id, 2).expect("replica 2");
    assert_eq!(follower.role(), Role::Follower);
    assert_eq!(follower.leader_id(), Some(2));
    assert!(p.replica(id, 3).is_none());
    assert!(!dir.path().join("t-3").exists());
    for part in 0..3 {
        assert_eq!(
            read_partition_metadata(&dir.path().join(format!("t-{part}"))),
            Some(id)
        );
    }
}

#[tokio::test]
async fn roles_change_only_for_a_newer_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = publisher(dir.path());
    let mut q = Quorum::new();
    p.caught_up().await.expect("caught up");
    let id = Uuid::new_v4();
    q.commit(&mut p, &topic("t", id, &[reg(&[1, 2], 1, 0)]))
        .await;
    let old_image = Arc::new(q.image.clone());
    let replica = p.replica(id, 0).expect("replica");
    assert_eq!(replica.role(), Role::Leader);

    // Leadership moves to 2: epoch 1, this replica follows.
    q.commit(
        &mut p,
        &[MetadataRecord::PartitionChange(PartitionChange {
            topic_id: id,
            partition: 0,
            leader: Some(2),
            ..Default::default()
        })],
    )
    .await;
    assert_eq!(replica.role(), Role::Follower);
    assert_eq!(replica.leader_epoch(), 1);
    assert_eq!(replica.leader_id(), Some(2));

    // An older image (as a stale reset would carry) does not take the role back.
    p.apply(q.index + 1, old_image, &Change::Reset)
        .await
        .expect("reset");
    assert_eq!(replica.role(), Role::Follower);
    assert_eq!(replica.leader_epoch(), 1);

    // The ISR shrinks under the same epoch: a follower keeps following.
    q.commit(
        &mut p,
        &[MetadataRecord::PartitionChange(PartitionChange {
            topic_id: id,
            partition: 0,
            isr: Some(vec![2]),
            ..Default::default()
        })],
    )
    .await;
    assert_eq!(replica.role(), Role::Follower);
    assert_eq!(replica.leader_epoch(), 1);
}

#[tokio::test]
async fn a_deleted_topic_goes_by_id_and_a_recreated_name_starts_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = publisher(dir.path());
    let mut q = Quorum::new();
    p.caught_up().await.expect("caught up");
    let old = Uuid::new_v4();
    q.commit(&mut p, &topic("t", old, &[reg(&[1], 1, 0)])).await;
    let replica = p.replica(old, 0).expect("replica");
    std::fs::write(dir.path().join("t-0").join("marker"), b"old data").expect("marker");

    q.commit(&mut p, &[MetadataRecord::RemoveTopic { topic_id: old }])
        .await;
    assert!(p.replica(old, 0).is_none());
    assert!(!dir.path().join("t-0").exists());
    assert!(matches!(
        replica.become_leader(5),
        Err(PartitionError::Deleted)
    ));

    let new = Uuid::new_v4();
    q.commit(&mut p, &topic("t", new, &[reg(&[1], 1, 0)])).await;
    assert_eq!(read_partition_metadata(&dir.path().join("t-0")), Some(new));
    assert!(!dir.path().join("t-0").join("marker").exists());
}

#[tokio::test]
async fn catch_up_removes_strays_by_topic_id_and_keeps_what_it_cannot_attribute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut q = Quorum::new();
    let kept = Uuid::new_v4();
    let moved = Uuid::new_v4();
    q.image
        .apply_all(&topic("kept", kept, &[reg(&[1], 1, 0)]))
        .expect("kept");
    q.image
        .apply_all(&topic("moved", moved, &[reg(&[2], 2, 0)]))
        .expect("moved");
    // Left by an earlier run: a replica of a topic deleted while this broker was down, a
    // replica reassigned away, one still wanted, and a directory without a topic id.
    let mk = |name: &str, id: Option<Uuid>| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        if let Some(id) = id {
            write_partition_metadata(&d, id).expect("partition.metadata");
        }
    };
    mk("gone-0", Some(Uuid::new_v4()));
    mk("moved-0", Some(moved));
    mk("kept-0", Some(kept));
    mk("unknown-0", None);

    let mut p = publisher(dir.path());
    q.index += 1;
    p.apply(q.index, Arc::new(q.image.clone()), &Change::Reset)
        .await
        .expect("recorded");
    assert!(
        dir.path().join("gone-0").exists(),
        "nothing removed before catch-up"
    );
    p.caught_up().await.expect("caught up");
    assert!(!dir.path().join("gone-0").exists());
    assert!(!dir.path().join("moved-0").exists());
    assert!(dir.path().join("unknown-0").exists());
    assert_eq!(
        p.replica(kept, 0).expect("kept replica").role(),
        Role::Leader
    );
}
