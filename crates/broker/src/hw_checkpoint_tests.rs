use std::path::Path;
use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::state::State;

use super::*;

fn entries(list: &[(&str, i32, i64)]) -> HighWatermarks {
    list.iter()
        .map(|(t, p, o)| ((t.to_string(), *p), *o))
        .collect()
}

fn decode_err(text: &str) -> String {
    decode(text, Path::new("/d/replication-offset-checkpoint"))
        .expect_err("malformed")
        .to_string()
}

#[test]
fn kafkas_format_round_trips() {
    let hw = entries(&[("orders", 0, 1200), ("orders", 1, 977), ("a.b-c_d", 12, 0)]);
    let text = encode(&hw);
    assert_eq!(text, "0\n3\na.b-c_d 12 0\norders 0 1200\norders 1 977\n");
    assert_eq!(decode(&text, Path::new("f")).expect("decode"), hw);
    assert_eq!(encode(&HighWatermarks::new()), "0\n0\n");
    assert_eq!(
        decode("0\n0\n", Path::new("f")).expect("empty"),
        HighWatermarks::new()
    );
}

#[test]
fn a_file_kafka_wrote_reads() {
    // Kafka writes no trailing blank line issues; a final newline or none both read.
    let text = "0\n2\n__consumer_offsets 7 4411\nclicks 0 42";
    assert_eq!(
        decode(text, Path::new("f")).expect("decode"),
        entries(&[("__consumer_offsets", 7, 4411), ("clicks", 0, 42)])
    );
}

#[test]
fn damaged_files_are_refused_with_the_line_and_the_reason() {
    let e = decode_err("");
    assert!(e.contains("line 1: empty file"), "{e}");
    let e = decode_err("1\n0\n");
    assert!(e.contains("line 1: version \"1\""), "{e}");
    let e = decode_err("0\nx\n");
    assert!(e.contains("line 2: entry count \"x\""), "{e}");
    let e = decode_err("0\n2\norders 0 5\n");
    assert!(e.contains("2 entries announced, 1 found"), "{e}");
    let e = decode_err("0\n1\norders 0\n");
    assert!(
        e.contains("line 3") && e.contains("is not \"topic partition offset\""),
        "{e}"
    );
    let e = decode_err("0\n1\norders zero 5\n");
    assert!(e.contains("line 3: partition \"zero\""), "{e}");
    let e = decode_err("0\n1\norders 0 -4\n");
    assert!(e.contains("line 3: offset \"-4\""), "{e}");
    let e = decode_err("0\n2\norders 0 5\norders 0 6\n");
    assert!(e.contains("line 4") && e.contains("repeated"), "{e}");
    let e = decode_err("0\n1\norders 0 5\nextra 1 1\n");
    assert!(
        e.contains("line 4") && e.contains("after the 1 announced"),
        "{e}"
    );
    assert!(
        e.contains("/d/replication-offset-checkpoint"),
        "names the file: {e}"
    );
}

#[test]
fn write_then_read_and_no_file_is_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(read(dir.path()).expect("none"), HighWatermarks::new());
    let hw = entries(&[("t", 0, 5), ("t", 1, 9)]);
    write(dir.path(), &hw).expect("write");
    assert_eq!(read(dir.path()).expect("read"), hw);
    std::fs::write(dir.path().join(FILE), "0\n3\nt 0 5\n").expect("damage");
    assert!(matches!(
        read(dir.path()),
        Err(CheckpointError::Malformed { line: 4, .. })
    ));
}

fn state(dir: &Path, cluster: bool) -> Result<Arc<State>, crate::state::AdminError> {
    let mut raw = std::collections::BTreeMap::new();
    if cluster {
        raw.insert(
            "controller.quorum.voters".to_string(),
            "1@127.0.0.1:9093".to_string(),
        );
        raw.insert("node.id".to_string(), "1".to_string());
    }
    let (config, _) = BrokerConfig::from_pairs(
        "127.0.0.1:0".parse().expect("addr"),
        None,
        dir.to_path_buf(),
        raw,
    )
    .expect("config");
    State::open(config).map(Arc::new)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_replicated_partitions_are_checkpointed_and_read_back_in_cluster_mode() {
    use crate::config::Durability;
    use crate::partition::Acks;

    let dir = tempfile::tempdir().expect("tempdir");
    let s = state(dir.path(), true).expect("open");
    assert!(cluster_mode(&s.config));
    // In cluster mode topics come from the image: two local replicas of "t", as the
    // publisher would host them.
    let id = uuid::Uuid::from_u128(1);
    let mut image = weir_metadata::MetadataImage::new();
    let mut records = vec![weir_metadata::MetadataRecord::Topic {
        name: "t".into(),
        topic_id: id,
    }];
    for p in 0..2 {
        records.push(weir_metadata::MetadataRecord::Partition {
            topic_id: id,
            partition: p,
            registration: weir_metadata::PartitionRegistration::new(vec![1]),
        });
    }
    image.apply_all(&records).expect("image");
    let hosted: Vec<Arc<crate::partition::Partition>> = (0..2)
        .map(|p| {
            let log = weir_storage::Log::create(
                dir.path().join(format!("t-{p}")),
                weir_storage::LogConfig::default(),
            )
            .expect("log");
            Arc::new(crate::partition::Partition::leader(p, log))
        })
        .collect();
    s.sync_cluster_topics(&image, &|_, p| hosted.get(p as usize).cloned());
    let topic = s.topic("t").expect("topic");
    let p0 = topic.partition(0).expect("p0");
    let mut batch = weir_storage::testkit::BatchBuilder::new(0)
        .records(4, 8)
        .build();
    p0.append(&mut batch, Acks::Leader, Durability::None, 0)
        .expect("append");
    p0.become_follower(1, 2).expect("follow");
    // Partition 1 leads alone: its log end is its high watermark, nothing to keep.
    assert_eq!(collect(&s), entries(&[("t", 0, 4)]));
    let written = checkpoint(&s, None).expect("write");
    assert_eq!(read(dir.path()).expect("read"), written);
    // Unchanged: not rewritten (the file's mtime would move; removing it shows it).
    std::fs::remove_file(dir.path().join(FILE)).expect("rm");
    checkpoint(&s, Some(&written)).expect("same");
    assert!(!dir.path().join(FILE).exists());
    checkpoint(&s, None).expect("write again");
    s.close().expect("close");
    drop(s);
    let s = state(dir.path(), true).expect("reopen");
    assert_eq!(s.checkpointed_high_watermarks, entries(&[("t", 0, 4)]));
}

#[test]
fn a_damaged_checkpoint_stops_a_cluster_start_and_is_ignored_on_one_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(FILE), "0\n1\n").expect("damage");
    let e = state(dir.path(), true).map(|_| ()).expect_err("refused");
    assert!(
        e.to_string()
            .contains("replication-offset-checkpoint line 3"),
        "{e}"
    );
    let s = state(dir.path(), false).expect("single node never reads it");
    assert!(s.checkpointed_high_watermarks.is_empty());
}
