//! Weir's metrics: counters, gauges and histograms over atomics, grouped in labelled families
//! with a cap on topic and group label values, rendered in the Prometheus text exposition
//! format (0.0.4). No I/O and no runtime: the HTTP listener (`weir-http`) serves
//! [`Registry::render`], the broker updates handles it resolved once.
//!
//! Names follow Prometheus's conventions (`weir_` prefix, base units, `_total` counters); see
//! docs/design/operability.md §2 for the broker's metrics.

mod family;
mod metric;
mod registry;

pub use family::{Family, OTHER};
pub use metric::{Counter, Gauge, Histogram, LATENCY_SECONDS, MAX_BOUNDS};
pub use registry::{format_value, GaugeSink, Registry, CONTENT_TYPE};
