//! `tracing`: where OpenTelemetry spans go and how many are kept.

use crate::config::*;
use crate::wire::*;

use super::{Checker, bounded};

pub(super) fn check_tracing(c: &mut Checker<'_>, t: &Tracing) -> TracingCfg {
    let key = "tracing.otlp.endpoint";
    let endpoint = c
        .resolve(key, &t.otlp.endpoint)
        .unwrap_or_else(|| t.otlp.endpoint.clone());
    if c.env.is_some() || !endpoint.contains("${") {
        match endpoint.parse::<http::Uri>() {
            Ok(u) if u.scheme_str() == Some("http") && u.host().is_some() => {}
            Ok(_) => c.push(
                key,
                format!("`{endpoint}` must be an `http://host:port` URL (the OTLP/HTTP receiver)"),
            ),
            Err(e) => c.push(key, format!("`{endpoint}` is not a URL: {e}")),
        }
    }
    if !(0.0..=1.0).contains(&t.sample_ratio) {
        c.push(
            "tracing.sampleRatio",
            format!("{} is out of range (0 to 1)", t.sample_ratio),
        );
    }
    TracingCfg {
        traces_url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        sample_ratio: t.sample_ratio.clamp(0.0, 1.0),
        queue_size: bounded(c, "tracing.queueSize", t.queue_size, 1, 1 << 20),
    }
}
