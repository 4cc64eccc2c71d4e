//! `RowId`: appends a hidden `_row_id BIGINT` to each row of an append-only input, unique
//! among every row the pipeline has numbered. It gives an append-only input a stream key
//! where an updating operator needs one (design §5.4): a join of a source with an updating
//! aggregate (Nexmark q7) emits and retracts rows identified by both inputs' keys, and equal
//! source rows must stay distinct rows of the result.
//!
//! The next number is operator state, checkpointed with the epoch: after a crash the state
//! and the sources' offsets come back from the same checkpoint, so rows numbered in the
//! aborted epoch (whose output was aborted too) are numbered again, and every number a
//! committed row or a join's state holds stays unique. (A number from partition and offset
//! would need the offset carried through every operator below; this works over any
//! append-only input: maps, unions, interval joins.)

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use datafusion_common::ScalarValue;

use crate::error::StreamError;
use crate::state::codec::{self, CodecError};
use crate::state::{Change, KeyedState, StateValue, Stateful};

/// The name of the column `RowId` appends.
pub const ROW_ID: &str = "_row_id";

/// The state's one key.
const KEY: &[u8] = b"next";

/// The next number to give.
struct Next(i64);

impl StateValue for Next {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        codec::encode_row(&[ScalarValue::Int64(Some(self.0))], out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        match codec::decode_row(bytes)?.as_slice() {
            [ScalarValue::Int64(Some(n))] if *n >= 0 => Ok(Next(*n)),
            other => Err(CodecError::Invalid(format!("row id state: {other:?}"))),
        }
    }

    fn size(&self) -> usize {
        8
    }
}

pub struct RowIdOp {
    state: KeyedState<Next>,
    /// The input's columns, then `_row_id`.
    schema: SchemaRef,
}

impl RowIdOp {
    /// `schema` is the output edge's: the input's columns, then `_row_id BIGINT`.
    pub fn new(input: &SchemaRef, schema: SchemaRef) -> Result<RowIdOp, StreamError> {
        let last = schema.fields().last();
        if schema.fields().len() != input.fields().len() + 1
            || last.is_none_or(|f| f.data_type() != &arrow_schema::DataType::Int64)
        {
            return Err(StreamError::Graph(format!(
                "row id: {} input columns for {} output columns (the input's, then a BIGINT)",
                input.fields().len(),
                schema.fields().len()
            )));
        }
        Ok(RowIdOp {
            state: KeyedState::default(),
            schema,
        })
    }

    /// `batch`'s rows, each numbered.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>, StreamError> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let first = self.state.get(KEY).map_or(0, |v| v.0);
        let end = first
            .checked_add(n as i64)
            .ok_or_else(|| StreamError::Graph("row id: numbers exhausted".into()))?;
        self.state.insert(KEY.to_vec(), Next(end));
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(Int64Array::from_iter_values(first..end)));
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

impl Stateful for RowIdOp {
    fn state_bytes(&self) -> usize {
        self.state.bytes()
    }

    fn take_changes(&mut self) -> Result<Vec<Change>, CodecError> {
        self.state.take_changes()
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), CodecError> {
        if key != KEY {
            return Err(CodecError::Invalid("row id state of another layout".into()));
        }
        self.state.restore(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_schema::{DataType, Field, Schema};

    fn schemas() -> (SchemaRef, SchemaRef) {
        let input = Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)]));
        let out = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Utf8, true),
            Field::new(ROW_ID, DataType::Int64, false),
        ]));
        (input, out)
    }

    fn ids(b: Option<RecordBatch>) -> Vec<i64> {
        let b = b.expect("rows");
        let c = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ids");
        (0..c.len()).map(|i| c.value(i)).collect()
    }

    #[test]
    fn numbers_are_unique_and_resume_from_the_checkpoint() {
        let (input, out) = schemas();
        let batch = |vs: &[&str]| {
            let a = arrow_array::StringArray::from(vs.to_vec());
            RecordBatch::try_new(input.clone(), vec![Arc::new(a)]).expect("batch")
        };
        let mut op = RowIdOp::new(&input, out.clone()).expect("op");
        // Equal rows get distinct numbers.
        assert_eq!(ids(op.process(&batch(&["a", "a"])).expect("1")), [0, 1]);
        let checkpoint = op.take_changes().expect("changes");
        assert_eq!(ids(op.process(&batch(&["b"])).expect("2")), [2]);
        // A crash after the first checkpoint: the aborted epoch's rows are numbered again,
        // after the committed ones.
        let mut back = RowIdOp::new(&input, out).expect("op");
        for (k, v) in &checkpoint {
            back.restore(k, v.as_deref().expect("value"))
                .expect("restore");
        }
        assert_eq!(ids(back.process(&batch(&["b", "c"])).expect("3")), [2, 3]);
        assert!(back.restore(b"other", &[]).is_err());
        assert!(op.process(&batch(&[])).expect("empty").is_none());
    }
}
