//! Kafka error codes the coordinator answers with.
//!
//! The coordinator speaks in Kafka's own `i16` codes because every answer it gives goes
//! straight into a response field; the broker never has to translate them.

use std::fmt;

/// A Kafka protocol error code (`i16` on the wire). `ErrorCode::NONE` is success.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    pub const UNKNOWN_SERVER_ERROR: Self = Self(-1);
    pub const NONE: Self = Self(0);
    pub const UNKNOWN_TOPIC_OR_PARTITION: Self = Self(3);
    pub const OFFSET_METADATA_TOO_LARGE: Self = Self(12);
    pub const COORDINATOR_LOAD_IN_PROGRESS: Self = Self(14);
    pub const COORDINATOR_NOT_AVAILABLE: Self = Self(15);
    pub const NOT_COORDINATOR: Self = Self(16);
    pub const ILLEGAL_GENERATION: Self = Self(22);
    pub const INCONSISTENT_GROUP_PROTOCOL: Self = Self(23);
    pub const INVALID_GROUP_ID: Self = Self(24);
    pub const UNKNOWN_MEMBER_ID: Self = Self(25);
    pub const INVALID_SESSION_TIMEOUT: Self = Self(26);
    pub const REBALANCE_IN_PROGRESS: Self = Self(27);
    pub const INVALID_REQUEST: Self = Self(42);
    /// What PRODUCER_FENCED was called before KIP-588; the broker answers it to request
    /// versions older than the one that introduced PRODUCER_FENCED.
    pub const INVALID_PRODUCER_EPOCH: Self = Self(47);
    pub const INVALID_TXN_STATE: Self = Self(48);
    pub const INVALID_PRODUCER_ID_MAPPING: Self = Self(49);
    pub const INVALID_TRANSACTION_TIMEOUT: Self = Self(50);
    pub const CONCURRENT_TRANSACTIONS: Self = Self(51);
    pub const NON_EMPTY_GROUP: Self = Self(68);
    pub const GROUP_ID_NOT_FOUND: Self = Self(69);
    pub const MEMBER_ID_REQUIRED: Self = Self(79);
    pub const GROUP_MAX_SIZE_REACHED: Self = Self(81);
    pub const FENCED_INSTANCE_ID: Self = Self(82);
    pub const UNSUPPORTED_ASSIGNOR: Self = Self(84);
    pub const GROUP_SUBSCRIBED_TO_TOPIC: Self = Self(86);
    pub const UNSTABLE_OFFSET_COMMIT: Self = Self(88);
    pub const PRODUCER_FENCED: Self = Self(90);
    pub const TRANSACTIONAL_ID_NOT_FOUND: Self = Self(105);
    pub const FENCED_MEMBER_EPOCH: Self = Self(110);
    pub const UNRELEASED_INSTANCE_ID: Self = Self(111);
    pub const STALE_MEMBER_EPOCH: Self = Self(113);

    /// Kafka's name for the code, for logs and test failures.
    pub fn name(self) -> &'static str {
        match self {
            Self::UNKNOWN_SERVER_ERROR => "UNKNOWN_SERVER_ERROR",
            Self::NONE => "NONE",
            Self::UNKNOWN_TOPIC_OR_PARTITION => "UNKNOWN_TOPIC_OR_PARTITION",
            Self::OFFSET_METADATA_TOO_LARGE => "OFFSET_METADATA_TOO_LARGE",
            Self::COORDINATOR_LOAD_IN_PROGRESS => "COORDINATOR_LOAD_IN_PROGRESS",
            Self::COORDINATOR_NOT_AVAILABLE => "COORDINATOR_NOT_AVAILABLE",
            Self::ILLEGAL_GENERATION => "ILLEGAL_GENERATION",
            Self::INCONSISTENT_GROUP_PROTOCOL => "INCONSISTENT_GROUP_PROTOCOL",
            Self::INVALID_GROUP_ID => "INVALID_GROUP_ID",
            Self::UNKNOWN_MEMBER_ID => "UNKNOWN_MEMBER_ID",
            Self::INVALID_SESSION_TIMEOUT => "INVALID_SESSION_TIMEOUT",
            Self::REBALANCE_IN_PROGRESS => "REBALANCE_IN_PROGRESS",
            Self::INVALID_REQUEST => "INVALID_REQUEST",
            Self::INVALID_PRODUCER_EPOCH => "INVALID_PRODUCER_EPOCH",
            Self::INVALID_TXN_STATE => "INVALID_TXN_STATE",
            Self::INVALID_PRODUCER_ID_MAPPING => "INVALID_PRODUCER_ID_MAPPING",
            Self::INVALID_TRANSACTION_TIMEOUT => "INVALID_TRANSACTION_TIMEOUT",
            Self::CONCURRENT_TRANSACTIONS => "CONCURRENT_TRANSACTIONS",
            Self::NON_EMPTY_GROUP => "NON_EMPTY_GROUP",
            Self::GROUP_ID_NOT_FOUND => "GROUP_ID_NOT_FOUND",
            Self::MEMBER_ID_REQUIRED => "MEMBER_ID_REQUIRED",
            Self::GROUP_MAX_SIZE_REACHED => "GROUP_MAX_SIZE_REACHED",
            Self::FENCED_INSTANCE_ID => "FENCED_INSTANCE_ID",
            Self::UNSUPPORTED_ASSIGNOR => "UNSUPPORTED_ASSIGNOR",
            Self::GROUP_SUBSCRIBED_TO_TOPIC => "GROUP_SUBSCRIBED_TO_TOPIC",
            Self::PRODUCER_FENCED => "PRODUCER_FENCED",
            Self::TRANSACTIONAL_ID_NOT_FOUND => "TRANSACTIONAL_ID_NOT_FOUND",
            Self::FENCED_MEMBER_EPOCH => "FENCED_MEMBER_EPOCH",
            Self::UNRELEASED_INSTANCE_ID => "UNRELEASED_INSTANCE_ID",
            Self::STALE_MEMBER_EPOCH => "STALE_MEMBER_EPOCH",
            _ => "UNKNOWN_ERROR_CODE",
        }
    }

    pub fn is_ok(self) -> bool {
        self == Self::NONE
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl From<ErrorCode> for i16 {
    fn from(code: ErrorCode) -> i16 {
        code.0
    }
}
