//! Event time of decoded rows (§6): a source's watermark column, BIGINT milliseconds or a
//! TIMESTAMP of any unit, read as milliseconds; the largest per read feeds the partition's
//! watermark, and rows behind the watermark already emitted are late.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::RecordBatch;
use arrow_schema::{DataType, TimeUnit};

use crate::error::StreamError;

/// `batch` without its rows whose event time (column `column`) is below `watermark_ms`, and
/// the dropped rows' indices in `batch` with their event times. Rows without an event time
/// are kept (they advance nothing).
pub fn drop_late(
    batch: RecordBatch,
    column: usize,
    watermark_ms: i64,
) -> Result<(RecordBatch, Vec<(usize, i64)>), StreamError> {
    if batch.num_rows() == 0 {
        return Ok((batch, Vec::new()));
    }
    let times = event_times_ms(&batch, column)?;
    let late: Vec<(usize, i64)> = times
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.filter(|t| *t < watermark_ms).map(|t| (i, t)))
        .collect();
    if late.is_empty() {
        return Ok((batch, late));
    }
    let keep: arrow_array::BooleanArray = times
        .iter()
        .map(|t| Some(t.is_none_or(|t| t >= watermark_ms)))
        .collect();
    Ok((
        arrow_select::filter::filter_record_batch(&batch, &keep)?,
        late,
    ))
}

/// The event times of `batch`'s column `column` in milliseconds (floored), BIGINT ms or a
/// TIMESTAMP of any unit.
pub fn event_times_ms(batch: &RecordBatch, column: usize) -> Result<Vec<Option<i64>>, StreamError> {
    let Some(c) = batch.columns().get(column) else {
        return Err(StreamError::Graph(format!("no watermark column {column}")));
    };
    Ok(match c.data_type() {
        DataType::Int64 => c.as_primitive::<Int64Type>().iter().collect(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => c
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => c
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|t| t.map(|t| t.div_euclid(1_000)))
            .collect(),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => c
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|t| t.map(|t| t.div_euclid(1_000_000)))
            .collect(),
        DataType::Timestamp(TimeUnit::Second, _) => c
            .as_primitive::<TimestampSecondType>()
            .iter()
            .map(|t| t.map(|t| t.saturating_mul(1_000)))
            .collect(),
        other => {
            return Err(StreamError::Graph(format!(
                "watermark column {column} is {other}, not BIGINT or TIMESTAMP"
            )))
        }
    })
}

/// The largest event time in `batch`'s column `column`, in milliseconds.
pub fn max_event_time(batch: &RecordBatch, column: usize) -> Result<Option<i64>, StreamError> {
    Ok(event_times_ms(batch, column)?.into_iter().flatten().max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::TimestampMicrosecondArray;
    use arrow_schema::{Field, Schema};

    #[test]
    fn late_rows_are_those_behind_the_watermark_in_any_unit() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let ts = TimestampMicrosecondArray::from(vec![Some(4_999_999), Some(5_000_000), None]);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ts)]).expect("batch");
        assert_eq!(max_event_time(&batch, 0).expect("max"), Some(5_000));
        let (kept, late) = drop_late(batch, 0, 5_000).expect("filter");
        assert_eq!((kept.num_rows(), late), (2, vec![(0, 4_999)]));
        assert!(max_event_time(&kept, 3).is_err());
    }
}
