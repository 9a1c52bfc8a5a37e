//! Listeners: the API listener's TLS (addresses and limits are checked in the walk).

use crate::config::*;
use crate::wire::*;

use super::Checker;

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
