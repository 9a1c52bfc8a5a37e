//! WSO2 3.x interceptors (`x-wso2-request-interceptor`,
//! `x-wso2-response-interceptor`, on an operation or at the top of its
//! document) as native filters: the value names a filter of the project's
//! `runtime/` crate, which then runs on those operations only (the bundle's
//! `Operation::filters`). An operation's interceptor replaces its document's
//! of the same kind, as in WSO2.
//!
//! Every place a filter is named is kept ([`FilterRef`]) so that a project
//! without `runtime/` ([`without_runtime`]), or whose compiled runtime lacks the
//! filter ([`missing`]), fails with the position that names it and how to add one.

use std::collections::BTreeSet;

use super::error::{Diagnostic, Origin};
use super::extensions::{Located, Policies};

/// A native filter a document names, and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FilterRef {
    pub name: String,
    /// The extension (`x-wso2-request-interceptor`).
    pub key: &'static str,
    pub origin: Origin,
}

const REQUEST: &str = "x-wso2-request-interceptor";
const RESPONSE: &str = "x-wso2-response-interceptor";

/// The filters an operation runs (its own interceptors, else its document's),
/// recording where each is named in `refs`.
pub fn for_operation(
    document: &Policies,
    operation: &Policies,
    refs: &mut BTreeSet<FilterRef>,
) -> Vec<String> {
    let pick = |f: fn(&Policies) -> &Option<Located<String>>| {
        f(operation).as_ref().or(f(document).as_ref())
    };
    let mut names: Vec<String> = Vec::new();
    for (key, named) in [
        (REQUEST, pick(|p| &p.request_interceptor)),
        (RESPONSE, pick(|p| &p.response_interceptor)),
    ] {
        let Some(named) = named else { continue };
        refs.insert(FilterRef {
            name: named.value.clone(),
            key,
            origin: named.origin.clone(),
        });
        if !names.contains(&named.value) {
            names.push(named.value.clone());
        }
    }
    names
}

fn how_to_add(name: &str) -> String {
    format!(
        "implement `mgw_gateway::filter::Filter` with `name()` returning \"{name}\" in `runtime/src/filters.rs` and register it in `runtime/src/main.rs`"
    )
}

/// The problems of a project that names filters and has no `runtime/`.
pub fn without_runtime(refs: &[FilterRef]) -> Vec<Diagnostic> {
    refs.iter()
        .map(|r| {
            Diagnostic::new(
                &r.origin,
                format!(
                    "`{}: {}` names a native filter, and this project has no `runtime/` crate: run `mgw init --runtime` in the project, then {}",
                    r.key,
                    r.name,
                    how_to_add(&r.name)
                ),
            )
        })
        .collect()
}

/// The references to filters the compiled runtime does not have (`have`).
pub fn missing(refs: &[FilterRef], have: &[String]) -> Vec<Diagnostic> {
    let listed = if have.is_empty() {
        "no filter".to_owned()
    } else {
        have.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    refs.iter()
        .filter(|r| !have.contains(&r.name))
        .map(|r| {
            Diagnostic::new(
                &r.origin,
                format!(
                    "`{}: {}` names a native filter that `runtime/` does not register (it has {listed}): {}",
                    r.key,
                    r.name,
                    how_to_add(&r.name)
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, line: usize) -> Option<Located<String>> {
        Some(Located {
            value: name.to_owned(),
            origin: Origin::file(format!("a.yaml:{line}")),
        })
    }

    #[test]
    fn an_operations_interceptor_replaces_its_documents_of_the_same_kind() {
        let document = Policies {
            request_interceptor: named("audit", 1),
            response_interceptor: named("stamp", 2),
            ..Policies::default()
        };
        let operation = Policies {
            request_interceptor: named("no-cats", 3),
            ..Policies::default()
        };
        let mut refs = BTreeSet::new();
        assert_eq!(
            for_operation(&document, &operation, &mut refs),
            ["no-cats", "stamp"]
        );
        assert_eq!(
            for_operation(&document, &Policies::default(), &mut refs),
            ["audit", "stamp"]
        );
        // Each place once, however many operations it applies to.
        assert_eq!(refs.len(), 3);
        let refs: Vec<_> = refs.into_iter().collect();
        let missing = missing(&refs, &["stamp".to_owned(), "audit".to_owned()]);
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0]
                .to_string()
                .contains("`x-wso2-request-interceptor: no-cats` names a native filter that `runtime/` does not register (it has `stamp`, `audit`)"),
            "{}",
            missing[0]
        );
    }
}
