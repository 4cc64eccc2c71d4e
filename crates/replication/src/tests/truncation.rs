use crate::{decide_truncation, EpochEndOffset, Truncation};

/// A follower's epoch cache: (epoch, start offset), ascending, and its log end; answers as
/// the log's `end_offset_for_epoch` does.
fn cache(entries: &'static [(i32, i64)], log_end: i64) -> impl Fn(i32) -> Option<(i32, i64)> {
    move |epoch| {
        let i = entries.iter().rposition(|(e, _)| *e <= epoch)?;
        let (found, _) = entries[i];
        let end = entries.get(i + 1).map_or(log_end, |(_, start)| *start);
        Some((found, end))
    }
}

fn answer(epoch: i32, end_offset: i64) -> EpochEndOffset {
    EpochEndOffset { epoch, end_offset }
}

fn done(offset: i64) -> Truncation {
    Truncation {
        offset,
        ask_again_for: None,
    }
}

#[test]
fn same_epoch_ending_earlier_on_the_leader_cuts_to_the_leaders_end() {
    // The follower led epoch 2 and wrote 100..120 the new leader never got.
    let local = cache(&[(0, 0), (2, 50)], 120);
    assert_eq!(
        decide_truncation(answer(2, 100), &local, 120, 90),
        done(100)
    );
}

#[test]
fn same_epoch_ending_later_on_the_leader_keeps_the_whole_log() {
    let local = cache(&[(0, 0), (2, 50)], 80);
    assert_eq!(decide_truncation(answer(2, 100), &local, 80, 60), done(80));
}

#[test]
fn leader_epoch_the_follower_never_had_asks_again_for_the_older_one() {
    // Follower: epochs 1 (0..40) and 3 (40..70). Leader: for epoch 3 the largest it knows
    // is 2, ending at 60; the follower never had 2, so it cuts where its epoch 1 ended and
    // asks again for 1.
    let local = cache(&[(1, 0), (3, 40)], 70);
    assert_eq!(
        decide_truncation(answer(2, 60), &local, 70, 30),
        Truncation {
            offset: 40,
            ask_again_for: Some(1),
        }
    );
    // The second answer: epoch 1 ends at 35 on the leader.
    assert_eq!(decide_truncation(answer(1, 35), &local, 40, 30), done(35));
}

#[test]
fn follower_without_so_old_an_epoch_keeps_only_what_the_leader_has() {
    let local = cache(&[(5, 10)], 30);
    assert_eq!(decide_truncation(answer(3, 20), &local, 30, 0), done(20));
    assert_eq!(decide_truncation(answer(3, 50), &local, 30, 0), done(30));
}

#[test]
fn undefined_answers_fall_back_to_the_leader_end_or_the_high_watermark() {
    let local = cache(&[(0, 0)], 30);
    // The leader knows no epoch at or below the asked one, but its end.
    assert_eq!(decide_truncation(answer(-1, 25), &local, 30, 10), done(25));
    // The leader knows no epochs at all: only the high watermark is safe.
    assert_eq!(decide_truncation(answer(-1, -1), &local, 30, 10), done(10));
    // ...never past the log end.
    assert_eq!(decide_truncation(answer(-1, -1), &local, 30, 45), done(30));
}

#[test]
fn logs_that_agree_are_not_cut() {
    let local = cache(&[(0, 0), (4, 10)], 30);
    assert_eq!(decide_truncation(answer(4, 30), &local, 30, 30), done(30));
}
