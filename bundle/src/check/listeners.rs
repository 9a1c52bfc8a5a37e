//! Listeners: addresses, connection limits and the API listener's TLS.

use std::net::SocketAddr;
use std::time::Duration;

use crate::config::*;
use crate::wire::*;

use super::{Checker, bounded};

pub(super) fn check_tls(c: &mut Checker<'_>, api: &Listener, apis: &[Api]) -> Option<TlsCfg> {
    let needs_certs = apis.iter().any(|a| a.mtls.is_some());
    let Some(t) = &api.tls else {
        if needs_certs {
            c.push(
                "listeners.api.tls",
                "an API asks for client certificates (`mtls`), so the API listener needs TLS with `clientCaFile`",
            );
        }
        return None;
    };
    let client_ca_file = t
        .client_ca_file
        .as_ref()
        .and_then(|f| c.resolve("listeners.api.tls.clientCaFile", f));
    let client_auth = t.client_auth.unwrap_or(if t.client_ca_file.is_some() {
        ClientAuth::Optional
    } else {
        ClientAuth::None
    });
    if client_auth != ClientAuth::None && t.client_ca_file.is_none() {
        c.push(
            "listeners.api.tls.clientAuth",
            "client certificates need `clientCaFile` to verify them",
        );
    }
    if needs_certs && client_auth == ClientAuth::None {
        c.push(
            "listeners.api.tls.clientAuth",
            "an API asks for client certificates (`mtls`), so `clientAuth` cannot be `none`",
        );
    }
    Some(TlsCfg {
        cert_file: c
            .resolve("listeners.api.tls.certFile", &t.cert_file)
            .unwrap_or_default(),
        key_file: c
            .resolve("listeners.api.tls.keyFile", &t.key_file)
            .unwrap_or_default(),
        client_ca_file,
        client_auth,
        reload_interval: TlsCfg::RELOAD_INTERVAL,
    })
}

/// The API and admin addresses; with an environment they must differ.
pub(super) fn check_listeners(c: &mut Checker<'_>, l: &Listeners) -> (SocketAddr, SocketAddr) {
    let api_addr = socket_addr(c, "listeners.api.address", &l.api.address);
    let admin_addr = socket_addr(c, "listeners.admin.address", &l.admin.address);
    if c.env.is_some() && api_addr == admin_addr && api_addr.port() != 0 {
        c.push(
            "listeners.admin.address",
            format!("`{admin_addr}` is also the API listener; the admin port must differ"),
        );
    }
    (api_addr, admin_addr)
}

fn socket_addr(c: &mut Checker<'_>, key: &str, template: &str) -> SocketAddr {
    let fallback = SocketAddr::from(([0, 0, 0, 0], 0));
    let Some(value) = c.resolve(key, template) else {
        return fallback;
    };
    match value.parse() {
        Ok(a) => a,
        Err(_) => {
            c.push(
                key,
                format!("`{value}` is not a socket address (expected `host:port` such as `0.0.0.0:8080` or `[::]:8080`)"),
            );
            fallback
        }
    }
}

pub(super) fn check_limits(c: &mut Checker<'_>, l: &Limits) -> LimitsCfg {
    let limits = LimitsCfg {
        header_read_timeout: c.millis("limits.headerReadTimeoutMs", l.header_read_timeout_ms),
        max_header_bytes: bounded(
            c,
            "limits.maxHeaderBytes",
            l.max_header_bytes,
            1024,
            1 << 20,
        ),
        max_headers: bounded(c, "limits.maxHeaders", l.max_headers, 1, 1000),
        idle_timeout: c.millis("limits.idleTimeoutMs", l.idle_timeout_ms),
        shutdown_grace: Duration::from_millis(l.shutdown_grace_ms),
        h2_max_concurrent_streams: l.h2_max_concurrent_streams,
    };
    if limits.h2_max_concurrent_streams == 0 {
        c.push("limits.h2MaxConcurrentStreams", "must be greater than 0");
    }
    limits
}
