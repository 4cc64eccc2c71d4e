//! The DataFusion session every statement is planned in.

use datafusion::execution::session_state::{SessionState, SessionStateBuilder};

/// A session state with DataFusion's default functions, planner and optimizer rules.
pub fn new_state() -> SessionState {
    SessionStateBuilder::new().with_default_features().build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn plans_and_runs_select_one() {
        let ctx = SessionContext::new_with_state(new_state());
        let df = ctx.sql("SELECT 1 + 1 AS two").await.unwrap();
        assert_eq!(df.schema().field(0).name(), "two");
        let batches = df.collect().await.unwrap();
        let col = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(col.len(), 1);
        assert_eq!(col.value(0), 2);
    }
}
