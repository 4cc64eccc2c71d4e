//! `TopicTable`: a source as a DataFusion table. A scan is one DataFusion partition per topic
//! partition, each reading read_committed from the log start to the last stable offset
//! sampled when the query is planned (so a query is bounded even while producers write), with
//! `LIMIT` pushed into the readers. An updating materialized view's topic holds upserts: its
//! scan (the design's `ViewTable`) keeps the last record per key and drops tombstoned keys.
//! A source with `dedup.key` is scanned as one stream, its partitions in turn, through the
//! pipeline's own `Dedup` (design §9), so a query drops the rows a view over it drops.
//! `INSERT` encodes rows in the source's format and appends them acks=all.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::records::Record;
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int64Array, ListArray, RecordBatch,
    RecordBatchOptions, StringArray, StructArray, TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::StreamExt;
use weir_broker::partition_access::{PartitionAccess, PartitionHandle};
use weir_broker::state::State;
use weir_format::RecordDecoder;
use weir_stream::graph::DedupSpec;
use weir_stream::source::dedup::Dedup;

use crate::append::{append_durably, NewRecord};
use crate::parser::Meta;
use crate::records::PartitionReader;
use crate::source::SourceDef;

/// A source's topic as a table.
pub struct TopicTable {
    def: Arc<SourceDef>,
    state: Arc<State>,
    defaults: HashMap<String, Expr>,
}

impl fmt::Debug for TopicTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicTable")
            .field("source", &self.def.name)
            .finish_non_exhaustive()
    }
}

impl TopicTable {
    pub fn def(&self) -> &Arc<SourceDef> {
        &self.def
    }

    pub fn new(def: Arc<SourceDef>, state: Arc<State>) -> TopicTable {
        let defaults = def
            .payload
            .fields()
            .iter()
            .zip(&def.defaults)
            .filter_map(|(f, d)| d.as_ref().map(|d| (f.name().clone(), d.literal.clone())))
            .collect();
        TopicTable {
            def,
            state,
            defaults,
        }
    }

    /// Every partition of the source's topic, wherever it is led.
    fn partitions(&self) -> DfResult<Vec<PartitionHandle>> {
        PartitionAccess::new(self.state.clone())
            .partitions(&self.def.topic)
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "source {}: topic {}: {e}",
                    self.def.name, self.def.topic
                ))
            })
    }

    pub(crate) fn topic(&self) -> DfResult<Arc<weir_broker::state::Topic>> {
        self.state.topic(&self.def.topic).ok_or_else(|| {
            DataFusionError::Execution(format!(
                "source {}: topic {} does not exist",
                self.def.name, self.def.topic
            ))
        })
    }

    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// What `INSERT` writes through: rows encoded in the source's format, appended acks=all.
    pub(crate) fn sink(&self) -> TopicSink {
        TopicSink {
            def: self.def.clone(),
            state: self.state.clone(),
        }
    }
}

#[async_trait]
impl TableProvider for TopicTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut parts: Vec<(PartitionHandle, i64, i64)> = Vec::new();
        for p in self.partitions()? {
            let marks = p
                .watermarks()
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            parts.push((p, marks.log_start_offset, marks.last_stable_offset));
        }
        let dedup = self
            .def
            .dedup_spec()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let scan = |parts: Vec<(PartitionHandle, i64, i64)>| {
            Arc::new(PartitionScan {
                def: self.def.clone(),
                parts,
                limit,
                dedup: dedup.clone(),
            }) as Arc<dyn PartitionStream>
        };
        // A source with `dedup.key` is read as one stream through one `Dedup`, partitions
        // in order, so a key repeated across partitions is seen once, as by a pipeline.
        let streams: Vec<Arc<dyn PartitionStream>> = if dedup.is_some() {
            vec![scan(parts)]
        } else {
            parts.into_iter().map(|p| scan(vec![p])).collect()
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            self.def.schema.clone(),
            streams,
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} into a source: sources are append-only"
            )));
        }
        if !matches!(
            self.def.kind,
            crate::parser::ObjectKind::Source | crate::parser::ObjectKind::Table
        ) {
            return Err(DataFusionError::Plan(format!(
                "cannot INSERT into materialized view {}: its rows come from its query",
                self.def.name
            )));
        }
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(self.sink()),
            None,
        )))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        crate::dml::delete(self, state, filters).await
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        crate::dml::update(self, state, assignments, filters).await
    }
}

/// One stream of a scan: a topic partition bounded at planning time (each partition, start
/// and end offset), or every partition in turn for a source that deduplicates.
#[derive(Debug)]
struct PartitionScan {
    def: Arc<SourceDef>,
    parts: Vec<(PartitionHandle, i64, i64)>,
    limit: Option<usize>,
    /// `dedup.key` / `dedup.within`: the rule a pipeline's source reader applies (design §9).
    dedup: Option<DedupSpec>,
}

impl PartitionStream for PartitionScan {
    fn schema(&self) -> &SchemaRef {
        &self.def.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batch_size = ctx.session_config().batch_size().max(1);
        let mut readers: VecDeque<PartitionReader> = self
            .parts
            .iter()
            .map(|(p, start, end)| PartitionReader::bounded(p.clone(), *start, *end))
            .collect();
        let Some(reader) = readers.pop_front() else {
            return Box::pin(RecordBatchStreamAdapter::new(
                self.def.schema.clone(),
                futures::stream::empty::<DfResult<RecordBatch>>(),
            ));
        };
        let state = ScanState {
            def: self.def.clone(),
            reader,
            next_readers: readers,
            dedup: self.dedup.clone().map(Dedup::new),
            duplicates: 0,
            pending: Vec::new(),
            left: self.limit.unwrap_or(usize::MAX),
            batch_size,
            skipped: 0,
            collapse: self.def.upsert_key.is_some(),
        };
        let stream = futures::stream::try_unfold(state, |mut s| async move {
            let batch = s.next_batch().await?;
            Ok(batch.map(|b| (b, s)))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.def.schema.clone(),
            stream,
        ))
    }
}

struct ScanState {
    def: Arc<SourceDef>,
    reader: PartitionReader,
    /// Partitions read after `reader` (a deduplicated source's scan reads them all).
    next_readers: VecDeque<PartitionReader>,
    /// Drops what a pipeline reading the source would drop as duplicates.
    dedup: Option<Dedup>,
    /// Rows dropped as duplicates.
    duplicates: u64,
    /// Records read but not yet decoded.
    pending: Vec<Record>,
    /// Rows still wanted (LIMIT).
    left: usize,
    batch_size: usize,
    /// Records that did not decode: a pipeline dead-letters them; a query skips them.
    skipped: u64,
    /// An upsert topic not yet collapsed to its last record per key.
    collapse: bool,
}

impl ScanState {
    /// Reads the whole (bounded) partition and keeps, per key, its last record unless that
    /// is a tombstone, in offset order: the view's contents as of the scan's bound.
    async fn collapse_by_key(&mut self) -> DfResult<()> {
        let mut latest: HashMap<Option<bytes::Bytes>, Record> = HashMap::new();
        while let Some(records) = self
            .reader
            .next_records()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        {
            // A keyless record names no row (a table's pipeline dead-letters it).
            for r in records.into_iter().filter(|r| r.key.is_some()) {
                latest.insert(r.key.clone(), r);
            }
        }
        let mut live: Vec<Record> = latest.into_values().filter(|r| r.value.is_some()).collect();
        // Popped from the end: newest offsets first in the vector.
        live.sort_by_key(|r| std::cmp::Reverse(r.offset));
        self.pending = live;
        Ok(())
    }

    /// The next rows wanted: decoded, then without duplicates (a source with `dedup.key`),
    /// never an empty batch before the end.
    async fn next_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        loop {
            if self.left == 0 {
                return Ok(None);
            }
            let Some(batch) = self.decode_batch().await? else {
                if self.duplicates > 0 {
                    tracing::debug!(source = %self.def.name, duplicates = self.duplicates,
                        "duplicate rows dropped by a query");
                }
                return Ok(None);
            };
            let batch = match self.dedup.as_mut() {
                Some(d) => {
                    let (kept, dropped) = d
                        .process(batch)
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    self.duplicates += dropped;
                    kept
                }
                None => batch,
            };
            if batch.num_rows() > 0 {
                self.left = self.left.saturating_sub(batch.num_rows());
                return Ok(Some(batch));
            }
        }
    }

    /// Up to a batch of decoded rows (LIMIT and batch size), `None` at the end.
    async fn decode_batch(&mut self) -> DfResult<Option<RecordBatch>> {
        if std::mem::take(&mut self.collapse) {
            self.collapse_by_key().await?;
        }
        let json_defaults: Vec<Option<serde_json::Value>> = self
            .def
            .defaults
            .iter()
            .map(|d| d.as_ref().map(|d| d.json.clone()))
            .collect();
        let mut decoder =
            RecordDecoder::new(self.def.format, self.def.payload.clone(), &json_defaults)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut meta = MetaColumns::default();
        let want = self.batch_size.min(self.left);
        while decoder.rows() < want {
            if self.pending.is_empty() {
                match self
                    .reader
                    .next_records()
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(e)))?
                {
                    Some(records) => {
                        self.pending = records;
                        self.pending.reverse();
                        continue;
                    }
                    None => match self.next_readers.pop_front() {
                        Some(next) => {
                            self.reader = next;
                            continue;
                        }
                        None => break,
                    },
                }
            }
            let Some(r) = self.pending.pop() else {
                continue;
            };
            match decoder.decode(r.value.as_deref()) {
                Ok(()) => meta.push(&r, self.reader.partition()),
                Err(e) => {
                    self.skipped += 1;
                    tracing::debug!(source = %self.def.name, partition = self.reader.partition(),
                        offset = r.offset, error = %e, "record skipped by a query");
                }
            }
        }
        let rows = decoder.rows();
        if rows == 0 {
            if self.skipped > 0 {
                tracing::info!(source = %self.def.name, partition = self.reader.partition(),
                    skipped = self.skipped, "records that do not decode were skipped by a query");
            }
            return Ok(None);
        }
        let mut columns = decoder.finish();
        for (m, _) in &self.def.includes {
            columns.push(meta.finish(*m));
        }
        let batch = RecordBatch::try_new_with_options(
            self.def.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        Ok(Some(batch))
    }
}

/// Metadata columns of the decoded rows (ad-hoc scans and pipelines' sources).
#[derive(Default)]
pub(crate) struct MetaColumns {
    keys: Vec<Option<bytes::Bytes>>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<i64>,
    headers: Vec<Vec<(String, Option<bytes::Bytes>)>>,
}

impl MetaColumns {
    fn push(&mut self, r: &Record, partition: i32) {
        self.push_parts(
            r.key.clone(),
            partition,
            r.offset,
            r.timestamp,
            r.headers.clone(),
        );
    }

    /// One record's metadata; `timestamp_ms` as Kafka gives it (milliseconds).
    pub(crate) fn push_parts(
        &mut self,
        key: Option<bytes::Bytes>,
        partition: i32,
        offset: i64,
        timestamp_ms: i64,
        headers: Vec<(String, Option<bytes::Bytes>)>,
    ) {
        self.keys.push(key);
        self.partitions.push(partition);
        self.offsets.push(offset);
        self.timestamps.push(timestamp_ms.saturating_mul(1000));
        self.headers.push(headers);
    }

    /// Forgets the rows pushed (after their columns were taken).
    pub(crate) fn clear(&mut self) {
        *self = MetaColumns::default();
    }

    pub(crate) fn finish(&self, m: Meta) -> ArrayRef {
        match m {
            Meta::Key => {
                let mut b = BinaryBuilder::new();
                for k in &self.keys {
                    b.append_option(k.as_deref());
                }
                Arc::new(b.finish())
            }
            Meta::Partition => Arc::new(Int32Array::from(self.partitions.clone())),
            Meta::Offset => Arc::new(Int64Array::from(self.offsets.clone())),
            Meta::Timestamp => Arc::new(
                TimestampMicrosecondArray::from(self.timestamps.clone())
                    .with_timezone(crate::types::UTC),
            ),
            Meta::Headers => {
                let DataType::List(item) = crate::types::headers_type() else {
                    unreachable!("headers are a list")
                };
                let DataType::Struct(fields) = item.data_type().clone() else {
                    unreachable!("header items are structs")
                };
                let keys: StringArray = self
                    .headers
                    .iter()
                    .flatten()
                    .map(|(k, _)| Some(k.as_str()))
                    .collect();
                let values: BinaryArray = self
                    .headers
                    .iter()
                    .flatten()
                    .map(|(_, v)| v.as_deref())
                    .collect();
                let items = StructArray::new(
                    fields,
                    vec![Arc::new(keys) as ArrayRef, Arc::new(values) as ArrayRef],
                    None,
                );
                let offsets = OffsetBuffer::from_lengths(self.headers.iter().map(Vec::len));
                Arc::new(ListArray::new(item, offsets, Arc::new(items), None))
            }
        }
    }
}

/// Writes INSERTed rows to the source's topic.
pub(crate) struct TopicSink {
    def: Arc<SourceDef>,
    state: Arc<State>,
}

impl fmt::Debug for TopicSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSink")
            .field("source", &self.def.name)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for TopicSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TopicSink: source={} topic={}",
            self.def.name, self.def.topic
        )
    }
}

#[async_trait]
impl DataSink for TopicSink {
    fn schema(&self) -> &SchemaRef {
        &self.def.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let partitions = PartitionAccess::new(self.state.clone())
            .partitions(&self.def.topic)
            .map_err(|_| {
                DataFusionError::Execution(format!("topic {} does not exist", self.def.topic))
            })?;
        let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX).max(1);
        let mut by_partition: BTreeMap<i32, Vec<NewRecord>> = BTreeMap::new();
        let mut written = 0u64;
        let mut round_robin = 0i32;
        let payload_names: Vec<&str> = self
            .def
            .payload
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let alias = |m: Meta| {
            self.def
                .includes
                .iter()
                .find(|(x, _)| *x == m)
                .map(|(_, a)| a.clone())
        };
        let (key_col, partition_col) = (alias(Meta::Key), alias(Meta::Partition));
        // A table's rows are keyed by their primary key: the JSON object of its columns, as
        // an upsert view's (§8).
        let table_key = self.def.upsert_key.clone();
        while let Some(batch) = data.next().await {
            let batch = batch?;
            let indices: Vec<usize> = payload_names
                .iter()
                .map(|n| batch.schema().index_of(n))
                .collect::<Result<_, _>>()?;
            let payload = batch.project(&indices)?;
            let payload = RecordBatch::try_new_with_options(
                self.def.payload.clone(),
                payload.columns().to_vec(),
                &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
            )?;
            let values = weir_format::encode::encode_values(self.def.format, &payload)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let keys = key_col
                .as_ref()
                .map(|k| batch.column_by_name(k).cloned())
                .unwrap_or_default();
            let table_keys = match &table_key {
                Some(key) => Some(
                    weir_format::encode::encode_values(
                        weir_format::Format::Json,
                        &payload.project(key)?,
                    )
                    .map_err(|e| DataFusionError::External(Box::new(e)))?,
                ),
                None => None,
            };
            let chosen = partition_col
                .as_ref()
                .map(|k| batch.column_by_name(k).cloned())
                .unwrap_or_default();
            for (row, value) in values.into_iter().enumerate() {
                let key = match &table_keys {
                    Some(t) => t.get(row).cloned().flatten(),
                    None => keys.as_ref().and_then(|k| binary_at(k.as_ref(), row)),
                };
                let partition = match chosen.as_ref().and_then(|c| int_at(c.as_ref(), row)) {
                    Some(p) if (0..count).contains(&p) => p,
                    Some(p) => {
                        return Err(DataFusionError::Execution(format!(
                            "topic {} has no partition {p}",
                            self.def.topic
                        )))
                    }
                    None => match &key {
                        Some(k) => weir_client::partitioner::partition_for_key(k, count),
                        None => {
                            round_robin = (round_robin + 1) % count;
                            round_robin
                        }
                    },
                };
                by_partition.entry(partition).or_default().push(NewRecord {
                    key,
                    value,
                    headers: Vec::new(),
                });
                written += 1;
            }
        }
        for (p, records) in by_partition {
            let partition = partitions
                .get(usize::try_from(p).unwrap_or(usize::MAX))
                .ok_or_else(|| {
                    DataFusionError::Execution(format!(
                        "topic {} lost partition {p}",
                        self.def.topic
                    ))
                })?;
            append_durably(partition, &records)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        Ok(written)
    }
}

fn binary_at(a: &dyn Array, row: usize) -> Option<Vec<u8>> {
    use datafusion::arrow::array::AsArray;
    if a.is_null(row) {
        return None;
    }
    match a.data_type() {
        DataType::Binary => Some(a.as_binary::<i32>().value(row).to_vec()),
        DataType::LargeBinary => Some(a.as_binary::<i64>().value(row).to_vec()),
        DataType::BinaryView => Some(a.as_binary_view().value(row).to_vec()),
        DataType::Utf8 => Some(a.as_string::<i32>().value(row).as_bytes().to_vec()),
        DataType::Utf8View => Some(a.as_string_view().value(row).as_bytes().to_vec()),
        _ => None,
    }
}

fn int_at(a: &dyn Array, row: usize) -> Option<i32> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int32Type;
    (a.data_type() == &DataType::Int32 && !a.is_null(row))
        .then(|| a.as_primitive::<Int32Type>().value(row))
}
