//! Every API at every supported version: a request encoded as a client would, decoded,
//! handled against a real state, and the response decoded back at the same version.

use super::testkit::{round_trip, state};
use super::*;
use weir_protocol::kafka_protocol::messages::*;
use weir_protocol::versions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_fetch_stops_at_the_lso_and_lists_aborts() {
    use crate::partition::Acks;
    use weir_storage::testkit::BatchBuilder;
    use weir_storage::Marker;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    let topic = state
        .create_topic("tx", 1, 1, Default::default())
        .await
        .expect("create");
    let partition = topic.partition(0).expect("p0");
    let txn = |pid, n| {
        BatchBuilder::new(0)
            .records(n, 3)
            .producer(pid, 0, 0)
            .transactional()
            .build()
    };
    let append = |mut batch: Vec<u8>| {
        partition
            .append(&mut batch, Acks::Leader, crate::Durability::AcksAll, 0)
            .expect("append")
            .info
    };
    append(txn(5, 2));
    partition
        .append_marker(5, 0, Marker::Abort, 0, 0)
        .expect("abort: 2");
    append(txn(6, 1));
    assert_eq!(partition.last_stable_offset(), 3);

    for (isolation, want_end, want_aborts) in [(1i8, 3i64, Some(vec![(5i64, 0i64)])), (0, 4, None)]
    {
        let mut p = fetch_request::FetchPartition::default();
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(str("tx"));
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.max_bytes = 1 << 20;
        req.isolation_level = isolation;
        req.topics = vec![t];
        let r: FetchResponse = round_trip(&state, ApiKey::Fetch, 11, &req).await;
        let part = &r.responses[0].partitions[0];
        assert_eq!((part.high_watermark, part.last_stable_offset), (4, 3));
        let records = part.records.clone().expect("records");
        let end = weir_storage::batch::Batches::new(&records, weir_storage::batch::Check::Full)
            .map(|b| {
                let b = b.expect("whole batches");
                b.header.base_offset + b.header.offset_count()
            })
            .last();
        assert_eq!(end, Some(want_end), "isolation {isolation}");
        // Null and empty say the same: nothing aborted.
        let aborts = part
            .aborted_transactions
            .as_ref()
            .map(|a| {
                a.iter()
                    .map(|t| (t.producer_id.0, t.first_offset))
                    .collect::<Vec<_>>()
            })
            .filter(|a| !a.is_empty());
        assert_eq!(aborts, want_aborts, "isolation {isolation}");
    }
}

pub(super) fn range(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = versions::supported(key).expect("served");
    r.min..=r.max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_at_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    state
        .create_topic("t", 2, 1, Default::default())
        .await
        .expect("create");
    let topic = TopicName(str("t"));

    for v in range(ApiKey::ApiVersions) {
        let r: ApiVersionsResponse = round_trip(
            &state,
            ApiKey::ApiVersions,
            v,
            &ApiVersionsRequest::default(),
        )
        .await;
        assert_eq!(r.api_keys.len(), versions::SUPPORTED.len());
    }
    for v in range(ApiKey::Metadata) {
        let mut req = MetadataRequest::default();
        req.topics = if v == 0 { Some(vec![]) } else { None };
        let r: MetadataResponse = round_trip(&state, ApiKey::Metadata, v, &req).await;
        assert_eq!(r.topics.len(), 1, "v{v}");
        assert_eq!(r.topics[0].partitions.len(), 2);
    }
    for v in range(ApiKey::ListOffsets) {
        let mut p = list_offsets_request::ListOffsetsPartition::default();
        p.timestamp = -1;
        let mut t = list_offsets_request::ListOffsetsTopic::default();
        t.name = topic.clone();
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.topics = vec![t];
        let r: ListOffsetsResponse = round_trip(&state, ApiKey::ListOffsets, v, &req).await;
        assert_eq!(r.topics[0].partitions[0].offset, 0, "v{v}");
    }
    for v in range(ApiKey::Fetch) {
        let mut p = fetch_request::FetchPartition::default();
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        if v >= 13 {
            t.topic_id = state.topic("t").expect("t").id;
        } else {
            t.topic = topic.clone();
        }
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.max_bytes = 1 << 20;
        req.topics = vec![t];
        let r: FetchResponse = round_trip(&state, ApiKey::Fetch, v, &req).await;
        assert_eq!(r.responses[0].partitions[0].error_code, 0, "v{v}");
        assert_eq!(r.responses[0].partitions[0].high_watermark, 0, "v{v}");
    }
    for v in range(ApiKey::Produce) {
        let mut req = ProduceRequest::default();
        req.acks = 1;
        let mut t = produce_request::TopicProduceData::default();
        t.name = TopicName(str("missing-but-invalid!"));
        let mut p = produce_request::PartitionProduceData::default();
        p.records = Some(Bytes::from_static(b"x"));
        t.partition_data = vec![p];
        req.topic_data = vec![t];
        let r: ProduceResponse = round_trip(&state, ApiKey::Produce, v, &req).await;
        assert_eq!(
            r.responses[0].partition_responses[0].error_code,
            weir_protocol::ResponseError::InvalidTopicException.code()
        );
    }
    for v in range(ApiKey::DescribeConfigs) {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = str("t");
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![res];
        req.include_synonyms = true;
        let r: DescribeConfigsResponse = round_trip(&state, ApiKey::DescribeConfigs, v, &req).await;
        assert!(r.results[0]
            .configs
            .iter()
            .any(|c| c.name.as_str() == "retention.ms"));
    }
    let mut last_id = -1;
    for v in range(ApiKey::InitProducerId) {
        let mut req = InitProducerIdRequest::default();
        req.producer_id = ProducerId(-1);
        req.producer_epoch = -1;
        let r: InitProducerIdResponse = round_trip(&state, ApiKey::InitProducerId, v, &req).await;
        assert_eq!(r.error_code, 0);
        assert!(r.producer_id.0 > last_id, "ids are never reused");
        assert_eq!(r.producer_epoch, 0);
        last_id = r.producer_id.0;
    }
    for v in range(ApiKey::DescribeCluster) {
        let r: DescribeClusterResponse = round_trip(
            &state,
            ApiKey::DescribeCluster,
            v,
            &DescribeClusterRequest::default(),
        )
        .await;
        assert_eq!(r.brokers.len(), 1);
    }
    for v in range(ApiKey::SaslHandshake) {
        let r: SaslHandshakeResponse = round_trip(
            &state,
            ApiKey::SaslHandshake,
            v,
            &SaslHandshakeRequest::default(),
        )
        .await;
        assert_eq!(
            r.error_code,
            weir_protocol::ResponseError::UnsupportedSaslMechanism.code()
        );
    }
    for v in range(ApiKey::CreateTopics) {
        let mut t = create_topics_request::CreatableTopic::default();
        t.name = TopicName(str(&format!("c{v}")));
        t.num_partitions = 3;
        t.replication_factor = 1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        let r: CreateTopicsResponse = round_trip(&state, ApiKey::CreateTopics, v, &req).await;
        assert_eq!(
            r.topics[0].error_code, 0,
            "v{v}: {:?}",
            r.topics[0].error_message
        );
    }
    for v in range(ApiKey::CreatePartitions) {
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = TopicName(str(&format!("c{}", 2 + v)));
        t.count = 4;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        let r: CreatePartitionsResponse =
            round_trip(&state, ApiKey::CreatePartitions, v, &req).await;
        assert_eq!(
            r.results[0].error_code, 0,
            "v{v}: {:?}",
            r.results[0].error_message
        );
    }
    for v in range(ApiKey::IncrementalAlterConfigs) {
        let mut c = incremental_alter_configs_request::AlterableConfig::default();
        c.name = str("retention.ms");
        c.value = Some(str("1234"));
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = str("t");
        res.configs = vec![c];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![res];
        let r: IncrementalAlterConfigsResponse =
            round_trip(&state, ApiKey::IncrementalAlterConfigs, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0);
    }
    for v in range(ApiKey::AlterConfigs) {
        let mut res = alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = str("t");
        let mut req = AlterConfigsRequest::default();
        req.resources = vec![res];
        let r: AlterConfigsResponse = round_trip(&state, ApiKey::AlterConfigs, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0);
    }
    for v in range(ApiKey::DeleteRecords) {
        let mut p = delete_records_request::DeleteRecordsPartition::default();
        p.offset = 0;
        let mut t = delete_records_request::DeleteRecordsTopic::default();
        t.name = topic.clone();
        t.partitions = vec![p];
        let mut req = DeleteRecordsRequest::default();
        req.topics = vec![t];
        let r: DeleteRecordsResponse = round_trip(&state, ApiKey::DeleteRecords, v, &req).await;
        assert_eq!(r.topics[0].partitions[0].low_watermark, 0);
    }
    for v in range(ApiKey::FindCoordinator) {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req.coordinator_keys = vec![str("g")];
        } else {
            req.key = str("g");
        }
        let r: FindCoordinatorResponse = round_trip(&state, ApiKey::FindCoordinator, v, &req).await;
        let node = if v >= 4 {
            r.coordinators[0].node_id
        } else {
            r.node_id
        };
        assert_eq!(node.0, 0, "v{v}");
    }
    for v in range(ApiKey::JoinGroup) {
        let group = GroupId(str(&format!("g{v}")));
        let join = |member: &str| {
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = str("range");
            p.metadata = Bytes::from_static(b"meta");
            let mut req = JoinGroupRequest::default();
            req.group_id = group.clone();
            req.session_timeout_ms = 10_000;
            req.rebalance_timeout_ms = 10_000;
            req.member_id = str(member);
            req.protocol_type = str("consumer");
            req.protocols = vec![p];
            req
        };
        let mut r: JoinGroupResponse = round_trip(&state, ApiKey::JoinGroup, v, &join("")).await;
        if v >= 4 {
            assert_eq!(r.error_code, 79, "v{v}: MEMBER_ID_REQUIRED first");
            let id = r.member_id.to_string();
            r = round_trip(&state, ApiKey::JoinGroup, v, &join(&id)).await;
        }
        assert_eq!(r.error_code, 0, "v{v}");
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.members.len(), 1);
        let member = r.member_id.clone();

        let sv = v.min(5);
        let mut a = sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = member.clone();
        a.assignment = Bytes::from_static(b"assigned");
        let mut sync = SyncGroupRequest::default();
        sync.group_id = group.clone();
        sync.generation_id = 1;
        sync.member_id = member.clone();
        sync.assignments = vec![a];
        let s: SyncGroupResponse = round_trip(&state, ApiKey::SyncGroup, sv, &sync).await;
        assert_eq!((s.error_code, &s.assignment[..]), (0, &b"assigned"[..]));

        let mut hb = HeartbeatRequest::default();
        hb.group_id = group.clone();
        hb.generation_id = 1;
        hb.member_id = member.clone();
        let h: HeartbeatResponse = round_trip(&state, ApiKey::Heartbeat, v.min(4), &hb).await;
        assert_eq!(h.error_code, 0);

        let ov = v.max(2);
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = 42;
        let mut p0 = offset_commit_request::OffsetCommitRequestPartition::default();
        p0.committed_offset = 7;
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = topic.clone();
        // Partition 0 keeps an offset after OffsetDelete removes partition 1's, so the
        // group still exists for DeleteGroups.
        t.partitions = vec![p0, p];
        let mut commit = OffsetCommitRequest::default();
        commit.group_id = group.clone();
        commit.generation_id_or_member_epoch = 1;
        commit.member_id = member.clone();
        commit.topics = vec![t];
        let c: OffsetCommitResponse = round_trip(&state, ApiKey::OffsetCommit, ov, &commit).await;
        assert_eq!(c.topics[0].partitions[0].error_code, 0, "commit v{ov}");

        let mut fetch = OffsetFetchRequest::default();
        if v >= 8 {
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = group.clone();
            g.topics = None;
            fetch.groups = vec![g];
        } else {
            fetch.group_id = group.clone();
            fetch.topics = None;
        }
        let fv = if v >= 8 { v } else { v.clamp(2, 7) };
        let f: OffsetFetchResponse = round_trip(&state, ApiKey::OffsetFetch, fv, &fetch).await;
        let committed: Vec<(i32, i64)> = if v >= 8 {
            f.groups[0].topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.committed_offset))
                .collect()
        } else {
            f.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.committed_offset))
                .collect()
        };
        assert_eq!(committed, vec![(0, 7), (1, 42)], "fetch v{fv}");

        let mut d = DescribeGroupsRequest::default();
        d.groups = vec![group.clone()];
        let dr: DescribeGroupsResponse =
            round_trip(&state, ApiKey::DescribeGroups, v.min(5), &d).await;
        assert_eq!(dr.groups[0].group_state.as_str(), "Stable");
        assert_eq!(&dr.groups[0].members[0].member_assignment[..], b"assigned");

        let lr: ListGroupsResponse = round_trip(
            &state,
            ApiKey::ListGroups,
            v.min(5),
            &ListGroupsRequest::default(),
        )
        .await;
        assert!(lr.groups.iter().any(|g| g.group_id == group));

        let mut leave = LeaveGroupRequest::default();
        leave.group_id = group.clone();
        let lv = v.min(5);
        if lv >= 3 {
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = member.clone();
            leave.members = vec![m];
        } else {
            leave.member_id = member.clone();
        }
        let l: LeaveGroupResponse = round_trip(&state, ApiKey::LeaveGroup, lv, &leave).await;
        assert_eq!(l.error_code, 0);

        let mut od = OffsetDeleteRequest::default();
        od.group_id = group.clone();
        let mut odp = offset_delete_request::OffsetDeleteRequestPartition::default();
        odp.partition_index = 1;
        let mut odt = offset_delete_request::OffsetDeleteRequestTopic::default();
        odt.name = topic.clone();
        odt.partitions = vec![odp];
        od.topics = vec![odt];
        let o: OffsetDeleteResponse = round_trip(&state, ApiKey::OffsetDelete, 0, &od).await;
        assert_eq!(o.error_code, 0);

        let mut dg = DeleteGroupsRequest::default();
        dg.groups_names = vec![group.clone()];
        let g: DeleteGroupsResponse = round_trip(&state, ApiKey::DeleteGroups, v.min(2), &dg).await;
        assert_eq!(g.results[0].error_code, 0, "delete v{}", v.min(2));
    }
    for v in range(ApiKey::DeleteTopics) {
        let name = format!("c{}", 1 + v);
        let mut req = DeleteTopicsRequest::default();
        if v >= 6 {
            let mut t = delete_topics_request::DeleteTopicState::default();
            t.name = Some(TopicName(str(&name)));
            req.topics = vec![t];
        } else {
            req.topic_names = vec![TopicName(str(&name))];
        }
        let r: DeleteTopicsResponse = round_trip(&state, ApiKey::DeleteTopics, v, &req).await;
        assert_eq!(
            r.responses[0].error_code, 0,
            "v{v}: {:?}",
            r.responses[0].error_message
        );
        assert!(state.topic(&name).is_none());
    }
}

/// The transactional offset APIs at every version: AddOffsetsToTxn, TxnOffsetCommit
/// (pending, so OffsetFetch with require_stable says UNSTABLE_OFFSET_COMMIT), EndTxn,
/// then the committed offset; and the operator APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_at_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    state.txns.recover(&state).expect("recover");
    state
        .create_topic("t", 2, 1, Default::default())
        .await
        .expect("create");
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(str("tx")));
    init.transaction_timeout_ms = 60_000;
    init.producer_id = ProducerId(-1);
    init.producer_epoch = -1;
    for v in range(ApiKey::TxnOffsetCommit) {
        let av = v.min(*range(ApiKey::AddOffsetsToTxn).end());
        let group = GroupId(str(&format!("tg{v}")));
        // CONCURRENT_TRANSACTIONS until the last transaction's completion is logged.
        let mut r: InitProducerIdResponse =
            round_trip(&state, ApiKey::InitProducerId, 4, &init).await;
        for _ in 0..200 {
            if r.error_code != weir_protocol::ResponseError::ConcurrentTransactions.code() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            r = round_trip(&state, ApiKey::InitProducerId, 4, &init).await;
        }
        assert_eq!(r.error_code, 0);
        let (pid, epoch) = (r.producer_id, r.producer_epoch);

        let mut commit = TxnOffsetCommitRequest::default();
        commit.transactional_id = TransactionalId(str("tx"));
        commit.group_id = group.clone();
        commit.producer_id = pid;
        commit.producer_epoch = epoch;
        commit.generation_id = -1;
        let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = 100 + i64::from(v);
        p.committed_metadata = Some(str("m"));
        let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
        t.name = TopicName(str("t"));
        t.partitions = vec![p];
        commit.topics = vec![t];
        // Before AddOffsetsToTxn the group is not in the transaction.
        let c: TxnOffsetCommitResponse =
            round_trip(&state, ApiKey::TxnOffsetCommit, v, &commit).await;
        assert_eq!(
            c.topics[0].partitions[0].error_code, 48,
            "v{v}: INVALID_TXN_STATE"
        );

        let mut add = AddOffsetsToTxnRequest::default();
        add.transactional_id = TransactionalId(str("tx"));
        add.producer_id = pid;
        add.producer_epoch = epoch;
        add.group_id = group.clone();
        let a: AddOffsetsToTxnResponse =
            round_trip(&state, ApiKey::AddOffsetsToTxn, av, &add).await;
        assert_eq!(a.error_code, 0, "AddOffsetsToTxn v{av}");
        let c: TxnOffsetCommitResponse =
            round_trip(&state, ApiKey::TxnOffsetCommit, v, &commit).await;
        assert_eq!(c.topics[0].partitions[0].error_code, 0, "v{v}");
        let mut zombie = commit.clone();
        zombie.producer_epoch = epoch - 1;
        let c: TxnOffsetCommitResponse =
            round_trip(&state, ApiKey::TxnOffsetCommit, v, &zombie).await;
        assert_eq!(
            c.topics[0].partitions[0].error_code, 47,
            "v{v}: a zombie is fenced"
        );

        let fetch = |stable: bool| {
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = group.clone();
            let mut ft = offset_fetch_request::OffsetFetchRequestTopics::default();
            ft.name = TopicName(str("t"));
            ft.partition_indexes = vec![1];
            g.topics = Some(vec![ft]);
            let mut f = OffsetFetchRequest::default();
            f.groups = vec![g];
            f.require_stable = stable;
            f
        };
        let f: OffsetFetchResponse = round_trip(&state, ApiKey::OffsetFetch, 8, &fetch(true)).await;
        let part = &f.groups[0].topics[0].partitions[0];
        assert_eq!((part.error_code, part.committed_offset), (88, -1));
        let f: OffsetFetchResponse =
            round_trip(&state, ApiKey::OffsetFetch, 8, &fetch(false)).await;
        let part = &f.groups[0].topics[0].partitions[0];
        assert_eq!((part.error_code, part.committed_offset), (0, -1));

        let d: DescribeTransactionsResponse =
            round_trip(&state, ApiKey::DescribeTransactions, 0, &{
                let mut d = DescribeTransactionsRequest::default();
                d.transactional_ids = vec![TransactionalId(str("tx")), TransactionalId(str("no"))];
                d
            })
            .await;
        assert_eq!(
            d.transaction_states[0].transaction_state.as_str(),
            "Ongoing"
        );
        assert_eq!(d.transaction_states[0].producer_id, pid);
        assert_eq!(d.transaction_states[1].error_code, 105);
        for lv in range(ApiKey::ListTransactions) {
            let mut l = ListTransactionsRequest::default();
            l.state_filters = vec![str("Ongoing"), str("Bogus")];
            l.duration_filter = -1;
            let r: ListTransactionsResponse =
                round_trip(&state, ApiKey::ListTransactions, lv, &l).await;
            assert_eq!(r.transaction_states.len(), 1, "v{lv}");
            assert_eq!(r.unknown_state_filters.len(), 1, "v{lv}");
        }

        let mut end = EndTxnRequest::default();
        end.transactional_id = TransactionalId(str("tx"));
        end.producer_id = pid;
        end.producer_epoch = epoch;
        end.committed = true;
        let e: EndTxnResponse = round_trip(&state, ApiKey::EndTxn, 3, &end).await;
        assert_eq!(e.error_code, 0);
        // Markers are written in the background: wait for the offset to settle.
        let mut settled = None;
        for _ in 0..200 {
            let f: OffsetFetchResponse =
                round_trip(&state, ApiKey::OffsetFetch, 8, &fetch(true)).await;
            let part = &f.groups[0].topics[0].partitions[0];
            if part.error_code == 0 {
                settled = Some((part.committed_offset, part.metadata.clone()));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(settled, Some((100 + i64::from(v), Some(str("m")))), "v{v}");
    }
    let mut dp = DescribeProducersRequest::default();
    let mut t = describe_producers_request::TopicRequest::default();
    t.name = TopicName(str("t"));
    t.partition_indexes = vec![0, 9];
    dp.topics = vec![t];
    let r: DescribeProducersResponse = round_trip(&state, ApiKey::DescribeProducers, 0, &dp).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert!(r.topics[0].partitions[0].active_producers.is_empty());
    assert_eq!(r.topics[0].partitions[1].error_code, 3);
}
