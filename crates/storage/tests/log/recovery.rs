//! Recovery when a log opens: a torn or corrupt tail cut at the last whole batch, indexes
//! rebuilt, stray files cleaned.

use super::*;

/// Builds a log with a sealed segment and an active one; returns its dir, the bytes of all
/// batches, the base offset and file position of the last batch within the active segment.
fn crash_fixture(root: &Path) -> (PathBuf, LogConfig, Vec<u8>, i64, usize) {
    let size = batch(2, 1).len() as u64;
    let config = small_segments(size * 3);
    let (dir, log) = new_log(root, config.clone());
    let mut all = Vec::new();
    let mut last_base = 0;
    for i in 0..5 {
        let mut b = batch(2, 1_000 + i);
        last_base = log.append(&mut b, 1).expect("append").base_offset;
        all.extend_from_slice(&b);
    }
    assert_eq!(log.segment_count(), 2);
    drop(log); // no close: a crash
    let active_pos = size as usize; // second batch of the second segment
    (dir, config, all, last_base, active_pos)
}

#[test]
fn scan_recovery_truncates_at_every_byte_of_a_torn_last_batch() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, config, all, last_base, last_pos) = crash_fixture(root.path());
    let active = dir.join(format!("{:020}.log", 6));
    let active_bytes = fs::read(&active).expect("read active");
    let last_len = active_bytes.len() - last_pos;
    let kept = &all[..all.len() - last_len];
    for cut in 0..last_len {
        fs::write(&active, &active_bytes[..last_pos + cut]).expect("tear");
        let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Scan).expect("open");
        assert_eq!(report.truncated_bytes, cut as u64, "cut {cut}");
        assert_eq!(report.log_end_offset, last_base, "cut {cut}");
        assert_eq!(report.segments, 2);
        assert_eq!(fs::metadata(&active).expect("stat").len(), last_pos as u64);
        assert_eq!(read_all(&log, 0), kept, "cut {cut}");
        let info = log
            .append(&mut batch(1, 5), 1)
            .expect("append after recovery");
        assert_eq!(info.base_offset, last_base, "cut {cut}");
        drop(log);
    }
}

#[test]
fn scan_recovery_drops_garbage_and_corruption_after_valid_data() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, config, all, _last_base, _) = crash_fixture(root.path());
    let active = dir.join(format!("{:020}.log", 6));
    let active_bytes = fs::read(&active).expect("read active");

    // Garbage after the last whole batch, including a plausible length prefix.
    let mut damaged = active_bytes.clone();
    let garbage: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(73) ^ 0xAB).collect();
    damaged.extend_from_slice(&garbage);
    fs::write(&active, &damaged).expect("write");
    let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Scan).expect("open");
    assert_eq!(report.truncated_bytes, garbage.len() as u64);
    assert_eq!(report.log_end_offset, 10);
    assert_eq!(read_all(&log, 0), all);
    drop(log);

    // A zeroed tail, as after a crash on a filesystem that extends before writing data.
    let mut zeroed = active_bytes.clone();
    zeroed.extend_from_slice(&[0u8; 4096]);
    fs::write(&active, &zeroed).expect("write");
    let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Scan).expect("open");
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(report.log_end_offset, 10);
    drop(log);

    // A flipped byte inside the first batch of the active segment: it and everything after go.
    let mut flipped = active_bytes.clone();
    flipped[70] ^= 0x01;
    fs::write(&active, &flipped).expect("write");
    let (log, report) = Log::open(dir.clone(), config, Recovery::Scan).expect("open");
    assert_eq!(report.truncated_bytes, active_bytes.len() as u64);
    assert_eq!(report.log_end_offset, 6);
    assert_eq!(
        read_all(&log, 0),
        all[..active_bytes.len() / 2 * 3].to_vec()
    );
    assert_eq!(
        log.append(&mut batch(1, 1), 1).expect("append").base_offset,
        6
    );
}

#[test]
fn clean_open_with_torn_tail_still_truncates() {
    let root = tempfile::tempdir().expect("tempdir");
    let (dir, config, all, last_base, last_pos) = crash_fixture(root.path());
    let active = dir.join(format!("{:020}.log", 6));
    let active_bytes = fs::read(&active).expect("read active");
    fs::write(&active, &active_bytes[..active_bytes.len() - 3]).expect("tear");
    let (log, report) = Log::open(dir, config, Recovery::Clean).expect("open");
    assert_eq!(
        report.truncated_bytes,
        (active_bytes.len() - last_pos - 3) as u64
    );
    assert_eq!(report.log_end_offset, last_base);
    assert_eq!(
        read_all(&log, 0),
        all[..all.len() - (active_bytes.len() - last_pos)].to_vec()
    );
}

#[test]
fn missing_and_invalid_indexes_are_rebuilt() {
    let root = tempfile::tempdir().expect("tempdir");
    let size = batch(1, 1).len() as u64;
    let config = LogConfig {
        segment_bytes: size * 4,
        index_interval_bytes: size as u32,
        ..LogConfig::default()
    };
    let (dir, log) = new_log(root.path(), config.clone());
    for i in 0..10 {
        log.append(&mut batch(1, 1_000 + i * 10), 1)
            .expect("append");
    }
    let before = read_all(&log, 0);
    log.close().expect("close");
    drop(log);
    let sealed_index = dir.join(format!("{:020}.index", 4));
    let sealed_time = dir.join(format!("{:020}.timeindex", 4));
    let index_bytes = fs::read(&sealed_index).expect("read");
    let time_bytes = fs::read(&sealed_time).expect("read");
    assert_eq!(
        index_bytes.len(),
        3 * 8,
        "an entry for every batch but the first"
    );
    assert_eq!(time_bytes.len(), 3 * 12, "the max grew at every entry");

    for name in files_with_suffix(&dir, ".index") {
        fs::remove_file(dir.join(name)).expect("remove");
    }
    // A partial entry in a time index, and a time index pointing nowhere sensible.
    fs::write(dir.join(format!("{:020}.timeindex", 0)), [1u8; 13]).expect("write");
    let (log, report) = Log::open(dir.clone(), config.clone(), Recovery::Clean).expect("open");
    assert_eq!(report.rebuilt_indexes, 3);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(report.log_end_offset, 10);
    assert_eq!(fs::read(&sealed_index).expect("rebuilt"), index_bytes);
    assert_eq!(fs::read(&sealed_time).expect("rebuilt"), time_bytes);
    // The sealed segments' files are rewritten; the active one's index lives in memory
    // until the segment is sealed or the log closed.
    assert_eq!(files_with_suffix(&dir, ".index").len(), 2);
    assert_eq!(read_all(&log, 0), before);
    for offset in 0..10 {
        assert_eq!(
            bases(&log.read(offset, 1).expect("read").records),
            vec![offset]
        );
    }
    assert_eq!(
        log.offset_for_timestamp(1_035).expect("lookup"),
        Some((4, 1_040))
    );
    log.close().expect("close");
    drop(log);

    // Positions beyond the log file make an index invalid too.
    let bogus: Vec<u8> = [1u32.to_be_bytes(), 1_000_000u32.to_be_bytes()].concat();
    fs::write(&sealed_index, bogus).expect("write");
    let (_log, report) = Log::open(dir.clone(), config, Recovery::Clean).expect("open");
    assert_eq!(report.rebuilt_indexes, 1);
    assert_eq!(fs::read(&sealed_index).expect("rebuilt"), index_bytes);
}

#[test]
fn open_cleans_stray_files_and_handles_empty_dirs() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("t-1");
    fs::create_dir(&dir).expect("mkdir");
    let (log, report) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(report.segments, 1);
    assert_eq!(log.log_end_offset(), 0);
    log.append(&mut batch(3, 1), 1).expect("append");
    drop(log);
    fs::write(dir.join("log-start-offset.tmp"), b"junk").expect("write");
    fs::write(dir.join(format!("{:020}.log.deleted", 99)), b"junk").expect("write");
    fs::write(dir.join(format!("{:020}.index", 77)), b"").expect("write");
    let (log, _) = Log::open(dir.clone(), LogConfig::default(), Recovery::Scan).expect("open");
    assert_eq!(log.log_end_offset(), 3);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The active segment's index files are written only when it is sealed or closed.
    assert_eq!(
        names,
        vec![format!("{:020}.log", 0), "leader-epoch-checkpoint".into()]
    );
    log.close().expect("close");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            format!("{:020}.index", 0),
            format!("{:020}.log", 0),
            format!("{:020}.timeindex", 0),
            // The producer state at the log end.
            format!("{:020}.snapshot", 3),
            "leader-epoch-checkpoint".into(),
        ]
    );
    // create refuses a directory that already holds a log.
    assert!(matches!(
        Log::create(dir, LogConfig::default()),
        Err(StorageError::Io { .. })
    ));
}
