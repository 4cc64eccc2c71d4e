//! Tests drive `ControllerLogic` the way the controller glue will: every call's records
//! are applied to the image (and kept in a journal) before the next call.

mod admin;
mod brokers;
mod elr;
mod partitions;
mod records;
mod restarts;
mod topics;

use uuid::Uuid;

use crate::{
    BrokerHeartbeat, BrokerId, BrokerRegistrationRequest, ControllerConfig, ControllerLogic,
    ControllerReply, ControllerRequest, CreatableTopic, Endpoint, MetadataDelta, MetadataImage,
    MetadataRecord, PartitionRegistration,
};

pub(crate) const SESSION: u64 = 9_000;

pub(crate) struct Cluster {
    pub image: MetadataImage,
    pub logic: ControllerLogic,
    pub journal: Vec<MetadataRecord>,
    pub now: u64,
    pub last_delta: MetadataDelta,
}

impl Cluster {
    pub fn new() -> Self {
        Self::with_config(ControllerConfig::default())
    }

    pub fn with_config(config: ControllerConfig) -> Self {
        let logic = ControllerLogic::new(config);
        let mut c = Self {
            image: MetadataImage::new(),
            journal: Vec::new(),
            now: 1_000,
            last_delta: MetadataDelta::default(),
            logic,
        };
        let boot = c.logic.bootstrap(&c.image, "test-cluster");
        c.commit(boot);
        c
    }

    /// Brokers `0..n`, registered and unfenced; rack of broker `i` is `racks[i % len]`
    /// (no rack when `racks` is empty).
    pub fn with_brokers(n: i32, racks: &[&str]) -> Self {
        let mut c = Self::new();
        for id in 0..n {
            let rack = usize::try_from(id)
                .ok()
                .and_then(|i| racks.get(i % racks.len().max(1)))
                .map(|r| r.to_string());
            c.register(id, rack);
            c.heartbeat(id);
        }
        c
    }

    pub fn commit(&mut self, records: Vec<MetadataRecord>) {
        self.last_delta = self.image.apply_all(&records).expect("records apply");
        self.journal.extend(records);
    }

    pub fn request(&mut self, request: ControllerRequest) -> ControllerReply {
        let (records, reply) = self.logic.handle(&self.image, request, self.now);
        self.commit(records);
        reply
    }

    /// Handles without applying: the records and the reply.
    pub fn decide(&mut self, request: ControllerRequest) -> (Vec<MetadataRecord>, ControllerReply) {
        self.logic.handle(&self.image, request, self.now)
    }

    pub fn tick(&mut self) -> Vec<MetadataRecord> {
        let records = self.logic.tick(&self.image, self.now);
        self.commit(records.clone());
        records
    }

    pub fn register(&mut self, id: BrokerId, rack: Option<String>) -> i64 {
        let reply = self.request(ControllerRequest::RegisterBroker(
            BrokerRegistrationRequest {
                id,
                incarnation: Uuid::new_v4(),
                endpoints: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.1".into(),
                    port: 9092 + u16::try_from(id).unwrap(),
                }],
                rack,
            },
        ));
        match reply {
            ControllerReply::RegisterBroker(Ok(epoch)) => epoch,
            other => panic!("registration of {id}: {other:?}"),
        }
    }

    pub fn epoch(&self, id: BrokerId) -> i64 {
        self.image.broker(id).unwrap().epoch
    }

    pub fn heartbeat_with(
        &mut self,
        id: BrokerId,
        want_fence: bool,
        want_shutdown: bool,
    ) -> ControllerReply {
        let epoch = self.epoch(id);
        self.request(ControllerRequest::BrokerHeartbeat(BrokerHeartbeat {
            id,
            epoch,
            caught_up: true,
            want_fence,
            want_shutdown,
        }))
    }

    pub fn heartbeat(&mut self, id: BrokerId) -> ControllerReply {
        self.heartbeat_with(id, false, false)
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32, rf: i16) -> Uuid {
        match self.request(create(name, partitions, rf)) {
            ControllerReply::CreateTopics(mut v) => v.remove(0).1.unwrap().topic_id,
            other => panic!("{other:?}"),
        }
    }

    pub fn partition(&self, topic: Uuid, p: i32) -> &PartitionRegistration {
        self.image.partition(topic, p).unwrap()
    }
}

pub(crate) fn create(name: &str, partitions: i32, rf: i16) -> ControllerRequest {
    ControllerRequest::CreateTopics {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignment: None,
            configs: Vec::new(),
        }],
        validate_only: false,
    }
}

/// The single error code of a one-topic CreateTopics reply.
pub(crate) fn create_error(reply: &ControllerReply) -> i16 {
    match reply {
        ControllerReply::CreateTopics(v) => v[0].1.as_ref().unwrap_err().code(),
        other => panic!("{other:?}"),
    }
}
