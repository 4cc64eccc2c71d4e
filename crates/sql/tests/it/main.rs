//! The SQL crate's integration tests, in one test binary: every binary that links DataFusion
//! costs a long link and ~670 MB, so the suites are modules of this one.

mod common;

mod aggregates;
mod ddl;
mod engine;
mod hop_panes;
mod hosting;
mod interval_joins;
mod joins;
mod nexmark;
mod pipelines;
mod q7_bounds;
mod row_errors;
mod shared_aggregates;
mod slt;
mod source_dedup;
mod state_cleaning;
mod tables;
mod topn;
mod upgrade;
mod view_chains;
mod views;
mod windows;
