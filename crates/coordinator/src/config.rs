//! Coordinator settings, already validated by the broker's config layer.

/// Settings of the group coordinator. Names follow the Kafka broker configs they mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`: when a group goes from Empty to PreparingRebalance,
    /// wait this long (extended by further new members, up to the rebalance timeout) so a
    /// fleet of consumers starting together lands in one generation. 0 completes the first
    /// rebalance as soon as every member has joined.
    pub initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_group_size: usize,
    /// How long a brand-new member may wait in a JoinGroup before it is dropped. New members
    /// cannot heartbeat, and their socket is parked, so this is the only way to notice a
    /// client that went away mid-join. Kafka hard-codes 5 minutes.
    pub new_member_join_timeout_ms: u64,
    /// `offsets.retention.minutes` in milliseconds.
    pub offsets_retention_ms: u64,
    /// `offsets.retention.check.interval.ms`: an Empty group without offsets is forgotten this
    /// long after it became empty (Kafka forgets it at its next periodic check).
    pub offsets_retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// Mixed into generated member ids. Counters restart with the process, so the broker
    /// should pass something different on every start (e.g. start time or a random
    /// number); otherwise a client still holding an id from before a restart could collide
    /// with a freshly generated one. Tests use 0 so ids are exact.
    pub member_id_seed: u64,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol (KIP-848) member that sends
    /// no ConsumerGroupHeartbeat for this long is removed.
    pub consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`: handed to consumer-protocol members in every
    /// heartbeat answer.
    pub consumer_heartbeat_interval_ms: u64,
    /// `group.consumer.max.size`: members of one consumer-protocol group.
    pub consumer_max_group_size: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_group_size: usize::MAX,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            member_id_seed: 0,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_group_size: usize::MAX,
        }
    }
}
