//! The per-route series: request counters by status class and the latency
//! histogram of every route, kept as one table built at start.
//!
//! Routes are fixed by the bundle, so their series need no label map: a
//! `prometheus_client` `Family` would keep each label set in a SipHash map (at
//! 1,000 routes, 5,000 counter entries and 1,000 histogram entries rehashed while
//! growing, 0.9 MiB at the peak of start-up, and an `Arc` per counter). Here each
//! route owns one [`Series`] in a `Vec`, and a scrape writes them as the
//! `requests` and `request_duration_seconds` families with the same names, labels
//! and values as before (`mgw_requests_total{api,operation,method,status_class}`,
//! `mgw_request_duration_seconds{api,operation}`), routes in bundle order.
//!
//! A route's counters and histogram (about 200 bytes) are allocated by its first
//! request: most routes of a large bundle are idle most of the time, and a
//! route never served is written as zeros, as it was when every series was
//! allocated at start (1,000 routes: 0.19 MB less at idle).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::bundle::Config;
use crate::histogram::LatencyHistogram;

/// The `status_class` label values, indexed like [`Series::by_class`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's labels and series.
#[derive(Debug)]
struct Series {
    /// Shared by the routes of one API.
    api: Arc<str>,
    operation: Box<str>,
    method: Box<str>,
    /// Allocated by the route's first request.
    counts: OnceLock<Box<Counts>>,
}

/// A route's counters, from its first request on.
#[derive(Debug, Default)]
struct Counts {
    by_class: [AtomicU64; 5],
    duration: LatencyHistogram,
}

/// The handles of one route, for the request path: no lock, no hashing.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    series: Arc<Series>,
}

impl RouteMetrics {
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        let counts = self.series.counts.get_or_init(Box::default);
        counts.by_class[class].fetch_add(1, Ordering::Relaxed);
        counts.duration.observe(elapsed.as_secs_f64());
    }
}

/// Every route's series, in `config.routes` order; registered once as a collector.
#[derive(Debug)]
pub struct RouteSeries {
    routes: Box<[Arc<Series>]>,
}

impl RouteSeries {
    pub fn new(config: &Config) -> Self {
        let apis: Vec<Arc<str>> = config.apis.iter().map(|a| a.name.as_str().into()).collect();
        let routes = config
            .routes
            .iter()
            .map(|r| {
                Arc::new(Series {
                    api: apis.get(r.api).cloned().unwrap_or_else(|| "".into()),
                    operation: r.operation_id.as_str().into(),
                    method: r.method.as_str().into(),
                    counts: OnceLock::new(),
                })
            })
            .collect();
        Self { routes }
    }

    /// The handles of every route, in `config.routes` order.
    pub fn handles(&self) -> impl ExactSizeIterator<Item = RouteMetrics> + '_ {
        self.routes.iter().map(|series| RouteMetrics {
            series: series.clone(),
        })
    }
}

// The registry ends each help text it is given with a period; a collector
// writes its descriptors itself, so the texts carry theirs.
impl Collector for RouteSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A family without series is left out, as the registry does for its own.
        if self.routes.is_empty() {
            return Ok(());
        }
        // What a route not served yet reports.
        let zero = Counts::default();
        let mut family = encoder.encode_descriptor(
            "requests",
            "Requests answered, by API, operation, method and status class.",
            None,
            MetricType::Counter,
        )?;
        for s in self.routes.iter() {
            let counts = s.counts.get().map_or(&zero, |c| c);
            for (class, count) in CLASSES.iter().zip(&counts.by_class) {
                let labels = [
                    ("api", &*s.api),
                    ("operation", &*s.operation),
                    ("method", &*s.method),
                    ("status_class", class),
                ];
                ConstCounter::new(count.load(Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "request_duration_seconds",
            "Time from request head to the end of the response body.",
            None,
            MetricType::Histogram,
        )?;
        for s in self.routes.iter() {
            let labels = [("api", &*s.api), ("operation", &*s.operation)];
            let counts = s.counts.get().map_or(&zero, |c| c);
            counts.duration.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
