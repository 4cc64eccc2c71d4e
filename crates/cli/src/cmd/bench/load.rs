//! The load `weir bench` drives: the records and the encoding cost, the pipelined producer
//! (up to [`MAX_IN_FLIGHT`] Produce requests outstanding) and the consumer that sends its
//! next Fetch before it decodes the current answer.

use super::*;

/// `n` records with `value_bytes`-byte values that do not compress to nothing.
pub(super) fn records(n: usize, value_bytes: usize) -> Vec<ProducerRecord> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let value: Vec<u8> = (0..value_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 26) as u8
        })
        .collect();
    let value = Bytes::from(value);
    (0..n)
        .map(|_| ProducerRecord {
            value: Some(value.clone()),
            timestamp: -1,
            ..ProducerRecord::default()
        })
        .collect()
}

/// What encoding the scenario's batches would cost this client, with no broker involved.
pub(super) fn encode_cost(value_bytes: usize, records_total: u64) -> Row {
    let scenario = Scenario {
        value_bytes,
        partitions: 1,
        records: records_total,
        producers: 1,
    };
    let per_batch = scenario.records_per_batch();
    let batch = records(per_batch, value_bytes);
    let rounds = (records_total as usize).div_ceil(per_batch).clamp(1, 200);
    let cpu_before = process_cpu_seconds("self");
    let start = Instant::now();
    for _ in 0..rounds {
        let encoded = encode_batch(&batch, Compression::None);
        std::hint::black_box(encoded.ok());
    }
    let elapsed = start.elapsed();
    let records = (rounds * per_batch) as u64;
    Row {
        name: format!("encode {value_bytes} B batches"),
        measured: Measured {
            records,
            value_bytes: records * value_bytes as u64,
            elapsed,
            client_cpu: cpu_delta(cpu_before, process_cpu_seconds("self")),
            ..Measured::default()
        },
        limit: f64::NAN,
    }
}

pub(super) async fn produce(
    leader: &str,
    topic: &str,
    scenario: Scenario,
    acks: i16,
) -> anyhow::Result<Measured> {
    produce_secured(leader, topic, scenario, acks, &ClientSecurity::plaintext()).await
}

/// [`produce`] over connections secured by `security` (the TLS comparison).
pub(super) async fn produce_secured(
    leader: &str,
    topic: &str,
    scenario: Scenario,
    acks: i16,
    security: &ClientSecurity,
) -> anyhow::Result<Measured> {
    let per_batch = scenario.records_per_batch();
    let batch = encode_batch(&records(per_batch, scenario.value_bytes), Compression::None)?;
    let batches = scenario.records.div_ceil(per_batch as u64);
    let producers = scenario.producers.max(1) as u64;
    let mut pipelines = Vec::new();
    for _ in 0..producers {
        pipelines.push(
            ProducePipeline::connect_secured(leader, security, topic, acks, MAX_IN_FLIGHT).await?,
        );
    }
    let partitions = u64::try_from(scenario.partitions)?;
    let start = Instant::now();
    let tasks: Vec<_> = pipelines
        .into_iter()
        .enumerate()
        .map(|(i, mut pipeline)| {
            // Producer i sends its share of the batches, round-robin over the partitions.
            let share = batches / producers + u64::from((i as u64) < batches % producers);
            let batch = batch.clone();
            tokio::spawn(async move {
                let mut sent = 0u64;
                while sent < share {
                    let in_request = partitions.min(share - sent);
                    let request: Vec<(i32, Bytes)> =
                        (0..in_request).map(|p| (p as i32, batch.clone())).collect();
                    pipeline.send(&request).await?;
                    sent += in_request;
                }
                pipeline.flush().await?;
                anyhow::Ok(sent)
            })
        })
        .collect();
    let mut sent = 0u64;
    for task in tasks {
        sent += task.await??;
    }
    let records = sent * per_batch as u64;
    Ok(Measured {
        records,
        value_bytes: records * scenario.value_bytes as u64,
        elapsed: start.elapsed(),
        ..Measured::default()
    })
}

pub(super) async fn consume(
    leader: &str,
    topic: &str,
    scenario: Scenario,
) -> anyhow::Result<Measured> {
    consume_secured(leader, topic, scenario, &ClientSecurity::plaintext()).await
}

/// [`consume`] over a connection secured by `security` (the TLS comparison).
pub(super) async fn consume_secured(
    leader: &str,
    topic: &str,
    scenario: Scenario,
    security: &ClientSecurity,
) -> anyhow::Result<Measured> {
    let partitions = usize::try_from(scenario.partitions)?;
    let partition_max = PARTITION_MIN_FETCH_BYTES.max(FETCH_MAX_BYTES / partitions);
    let mut fetcher = RawFetcher::connect_secured(
        leader,
        security,
        500,
        i32::try_from(FETCH_MAX_BYTES)?,
        i32::try_from(partition_max)?,
    )
    .await?;
    // Where each unfinished partition will be fetched from; the end is learned from the
    // first answer's high watermark.
    let mut positions: Vec<FetchPosition> = (0..scenario.partitions)
        .map(|partition| FetchPosition {
            topic: topic.to_owned(),
            partition,
            offset: 0,
        })
        .collect();
    let mut measured = Measured::default();
    let start = Instant::now();
    fetcher.send(&positions).await?;
    while fetcher.has_in_flight() {
        let answer = fetcher.receive().await?;
        let fetched_from: Vec<(i32, i64)> =
            positions.iter().map(|p| (p.partition, p.offset)).collect();
        for data in &answer {
            if let Some(pos) = positions.iter_mut().find(|p| p.partition == data.partition) {
                pos.offset = next_offset(&data.records).unwrap_or(pos.offset);
            }
        }
        positions.retain(|pos| {
            answer
                .iter()
                .find(|d| d.partition == pos.partition)
                .is_none_or(|d| pos.offset < d.high_watermark)
        });
        // Ask for the next range while this one is decoded.
        if !positions.is_empty() {
            fetcher.send(&positions).await?;
        }
        let decode_start = Instant::now();
        for data in answer {
            let from = fetched_from
                .iter()
                .find(|(p, _)| *p == data.partition)
                .map_or(0, |(_, o)| *o);
            let decoded = decode_batches(data.records, data.partition, from)?;
            measured.records += decoded.records.len() as u64;
            measured.value_bytes += decoded
                .records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64))
                .sum::<u64>();
        }
        measured.decode += decode_start.elapsed();
    }
    measured.elapsed = start.elapsed();
    let expected = scenario
        .records
        .div_ceil(scenario.records_per_batch() as u64)
        * scenario.records_per_batch() as u64;
    if measured.records != expected {
        bail!(
            "consumed {} records of {topic}, produced {expected}",
            measured.records
        );
    }
    Ok(measured)
}
