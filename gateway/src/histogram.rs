//! A fixed-bucket Prometheus histogram of atomics, for the latency series.
//!
//! `prometheus_client`'s `Histogram` keeps its buckets in a `Vec` behind a mutex
//! and carries native-histogram state: about 700 bytes per series and a lock on
//! every observation. The gateway makes one series per route at start (1,000
//! routes: 0.7 MiB), so its latencies use this instead: one allocation of a
//! few atomics, observed without a lock, encoded exactly like the classic
//! histogram (cumulative buckets, `+Inf` last).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0, 30.0,
];

/// Buckets with `+Inf`.
const SLOTS: usize = LATENCY_BUCKETS.len() + 1;

#[derive(Debug, Default)]
struct Inner {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; SLOTS],
    /// The `f64` sum's bits.
    sum: AtomicU64,
}

/// A latency histogram over [`LATENCY_BUCKETS`]; clones share the series.
#[derive(Clone, Debug, Default)]
pub struct LatencyHistogram {
    inner: Arc<Inner>,
}

impl LatencyHistogram {
    /// Records one observation, in seconds.
    pub fn observe(&self, seconds: f64) {
        // NaN compares false everywhere and lands in `+Inf`, as it does in
        // `prometheus_client`'s histogram.
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(SLOTS - 1);
        self.inner.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(f64::INFINITY, 0u64); SLOTS];
        let mut count = 0u64;
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n = self.inner.buckets[i].load(Ordering::Relaxed);
            // The last slot is `+Inf`.
            *slot = (LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n);
            count += n;
        }
        let sum = f64::from_bits(self.inner.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;

    use super::*;

    fn text(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        out
    }

    /// The same observations give the same exposition text as the library's
    /// classic histogram (bounds, cumulative counts, `+Inf`, sum and count).
    #[test]
    fn encodes_like_the_classic_histogram() {
        let values = [
            0.00005,
            0.0001,
            0.0003,
            0.02,
            0.02,
            0.7,
            31.0,
            1e9,
            f64::NAN,
        ];
        let ours = LatencyHistogram::default();
        let theirs = Histogram::new(LATENCY_BUCKETS);
        for v in values.iter().filter(|v| !v.is_nan()) {
            ours.observe(*v);
            theirs.observe(*v);
        }
        let expected = text(|r| r.register("lat", "latency", theirs));
        assert!(
            expected.contains(r#"lat_bucket{le="+Inf"} 8"#),
            "{expected}"
        );
        assert_eq!(
            text(|r| r.register("lat", "latency", ours.clone())),
            expected
        );
        // NaN counts in `+Inf` (the sum becomes NaN, as in the library).
        ours.observe(f64::NAN);
        let after = text(|r| r.register("lat", "latency", ours));
        assert!(after.contains(r#"lat_bucket{le="+Inf"} 9"#), "{after}");
        assert!(after.contains(r#"lat_bucket{le="30.0"} 6"#), "{after}");
    }
}
