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
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
                if u.query().is_some() {
                    c.push(key, format!("`{endpoint}` must not have a query"));
                }
            }
            Ok(_) => c.push(
                key,
                format!(
                    "`{endpoint}` must be an `http://host:port` or `https://host:port` URL (the OTLP receiver)"
                ),
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
    let ca_key = "tracing.otlp.caFile";
    let ca_file = t
        .otlp
        .ca_file
        .as_ref()
        .map(|f| c.resolve(ca_key, f).unwrap_or_else(|| f.clone()))
        .filter(|f| !f.is_empty());
    if ca_file.is_some() && endpoint.starts_with("http://") {
        c.push(ca_key, "is only used with an `https://` endpoint");
    }
    let path = match t.otlp.protocol {
        OtlpProtocol::Http => "/v1/traces",
        OtlpProtocol::Grpc => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    };
    TracingCfg {
        traces_url: format!("{}{path}", endpoint.trim_end_matches('/')),
        protocol: t.otlp.protocol,
        ca_file,
        sample_ratio: t.sample_ratio.clamp(0.0, 1.0),
        queue_size: bounded(c, "tracing.queueSize", t.queue_size, 1, 1 << 20),
    }
}
