//! A WSO2 Microgateway 3.x `policies.yaml`: the throttling tiers a 3.x project's
//! `x-wso2-throttling-tier` extensions name, read into rate-limit policies.
//!
//! WSO2 keeps tiers in three lists (`resourcePolicies`, `applicationPolicies`,
//! `subscriptionPolicies`) of one-key mappings `{NAME: {count, unitTime,
//! timeUnit}}`. A resource tier limits everyone calling the API or operation it
//! is attached to together (key `api`); application and subscription tiers limit
//! each consumer (key `consumer`). `mgw.yaml` names the file with
//! `rateLimits.wso2Policies`; `mgw init` sets that when it starts from a spec in
//! a 3.x project.
//!
//! Never: accept a tier mgw cannot enforce as WSO2 meant it (`stopOnQuota: false`
//! lets traffic through over the limit) — such a tier is not declared, and a spec
//! that names it is told why.

use std::collections::BTreeMap;

use mgw_bundle::{RateLimitKey, RateLimitPolicy};

use super::error::{Diagnostic, Origin, list, suggestion};
use super::manifest::UNLIMITED;
use super::refs::Loc;
use super::yaml::{self, Node};

/// The sections, and whether their tiers limit everyone together (`api`) or
/// each consumer.
const SECTIONS: [(&str, bool); 3] = [
    ("resourcePolicies", true),
    ("applicationPolicies", false),
    ("subscriptionPolicies", false),
];

/// WSO2 Microgateway 3.1's time units, in seconds (`ThrottlePolicy.java`).
const UNITS: [(&str, u64); 6] = [
    ("min", 60),
    ("hour", 3_600),
    ("day", 86_400),
    ("week", 7 * 86_400),
    ("month", 30 * 86_400),
    ("year", 365 * 86_400),
];

/// One tier, as a policy with the place its name is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub name: String,
    pub origin: Origin,
    pub policy: RateLimitPolicy,
    /// Why mgw cannot enforce this tier, if it cannot.
    pub refused: Option<String>,
}

/// Parses `text` (the file `file`, project-relative) into tiers. `Unlimited`
/// tiers are left out: that name always means no limit.
pub fn parse(file: &str, text: &str) -> Result<Vec<Tier>, Vec<Diagnostic>> {
    let root = yaml::parse(text, false)
        .map_err(|e| vec![Diagnostic::new(&Origin::new(file, "", e.mark), e.message)])?;
    let loc = Loc::new(file, vec![]);
    let mut diags = Vec::new();
    let mut tiers: Vec<Tier> = Vec::new();
    let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
    let Some(entries) = root.as_map() else {
        return Err(vec![Diagnostic::new(
            &loc.origin(root.mark),
            format!(
                "expected a WSO2 `policies.yaml` mapping with `resourcePolicies`, `applicationPolicies` or `subscriptionPolicies`, found {}",
                root.describe()
            ),
        )]);
    };
    for e in entries {
        let sloc = loc.child(e.key.clone());
        let Some(&(_, shared)) = SECTIONS.iter().find(|(n, _)| *n == e.key) else {
            diags.push(Diagnostic::new(
                &sloc.origin(e.key_mark),
                format!(
                    "unknown section `{}`{}; a WSO2 `policies.yaml` has `resourcePolicies`, `applicationPolicies` and `subscriptionPolicies`",
                    e.key,
                    suggestion(&e.key, SECTIONS.iter().map(|s| s.0))
                ),
            ));
            continue;
        };
        if e.value.is_null() {
            continue;
        }
        let Some(items) = e.value.as_seq() else {
            diags.push(Diagnostic::new(
                &sloc.origin(e.value.mark),
                format!(
                    "expected a list of tiers such as `- Gold: {{count: 5000, unitTime: 1, timeUnit: min}}`, found {}",
                    e.value.describe()
                ),
            ));
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let iloc = sloc.child(i.to_string());
            let one = item.as_map().filter(|m| m.len() == 1);
            let Some([t]) = one else {
                diags.push(Diagnostic::new(
                    &iloc.origin(item.mark),
                    "expected one tier, `NAME: {count: N, unitTime: N, timeUnit: min}`",
                ));
                continue;
            };
            let tloc = iloc.child(t.key.clone());
            let origin = tloc.origin(t.key_mark);
            if let Some(first) = seen.get(&t.key) {
                diags.push(Diagnostic::new(
                    &origin,
                    format!(
                        "tier `{}` is already defined at {}",
                        t.key,
                        first.position()
                    ),
                ));
                continue;
            }
            seen.insert(t.key.clone(), origin.clone());
            let key = if shared {
                RateLimitKey::Api
            } else {
                RateLimitKey::Consumer
            };
            let policy = tier(&t.value, &tloc, key, &mut diags);
            if let Some((policy, refused)) =
                policy.filter(|_| !t.key.eq_ignore_ascii_case(UNLIMITED))
            {
                tiers.push(Tier {
                    name: t.key.clone(),
                    origin,
                    policy,
                    refused,
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(tiers)
    } else {
        Err(diags)
    }
}

fn tier(
    node: &Node,
    loc: &Loc,
    key: RateLimitKey,
    diags: &mut Vec<Diagnostic>,
) -> Option<(RateLimitPolicy, Option<String>)> {
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::new(
            &loc.origin(node.mark),
            format!(
                "expected `{{count: N, unitTime: N, timeUnit: min}}`, found {}",
                node.describe()
            ),
        ));
        return None;
    };
    let before = diags.len();
    let mut count = None;
    let mut unit_time = None;
    let mut unit = None;
    let mut refused = None;
    for e in entries {
        let vloc = loc.child(e.key.clone());
        let origin = vloc.origin(e.value.mark);
        let number = || {
            e.value
                .as_text()
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|n| *n > 0)
        };
        match e.key.as_str() {
            "count" | "unitTime" => match number() {
                Some(n) if e.key == "count" => count = Some(n),
                Some(n) => unit_time = Some(n),
                None => diags.push(Diagnostic::new(
                    &origin,
                    format!("`{}` must be a whole number of at least 1", e.key),
                )),
            },
            "timeUnit" => {
                let text = e.value.as_text().unwrap_or_default();
                match UNITS.iter().find(|(n, _)| n.eq_ignore_ascii_case(text)) {
                    Some(&(_, s)) => unit = Some(s),
                    None => diags.push(Diagnostic::new(
                        &origin,
                        format!(
                            "`{text}` is not a WSO2 time unit; expected {}",
                            list(UNITS.iter().map(|u| u.0), 6)
                        ),
                    )),
                }
            }
            "stopOnQuota" => {
                match e.value.as_bool() {
                    Some(true) => {}
                    Some(false) => refused = Some(format!(
                        "`stopOnQuota: false` at {} lets requests through over the limit, which mgw does not do; drop `stopOnQuota` to enforce the tier, or name another",
                        origin.position()
                    )),
                    None => diags.push(Diagnostic::new(
                        &origin,
                        format!("`stopOnQuota` must be `true` or `false`, found {}", e.value.describe()),
                    )),
                }
            }
            other => diags.push(Diagnostic::new(
                &vloc.origin(e.key_mark),
                format!(
                    "unknown tier key `{other}`{}; a tier has `count`, `unitTime`, `timeUnit` and `stopOnQuota`",
                    suggestion(other, ["count", "unitTime", "timeUnit", "stopOnQuota"])
                ),
            )),
        }
    }
    for (name, missing) in [
        ("count", count.is_none()),
        ("unitTime", unit_time.is_none()),
        ("timeUnit", unit.is_none()),
    ] {
        if missing && diags.len() == before {
            diags.push(Diagnostic::new(
                &loc.origin(node.mark),
                format!("the tier needs `{name}`"),
            ));
        }
    }
    if diags.len() != before {
        return None;
    }
    let (Some(requests), Some(unit_time), Some(unit)) = (count, unit_time, unit) else {
        return None; // reported above
    };
    let Some(period_seconds) = unit_time.checked_mul(unit) else {
        diags.push(Diagnostic::new(
            &loc.child("unitTime").origin(node.mark),
            format!("`unitTime: {unit_time}` is too long a period"),
        ));
        return None;
    };
    let policy = RateLimitPolicy {
        requests,
        period_seconds,
        burst: None,
        key,
        scope: Default::default(),
        on_redis_failure: Default::default(),
    };
    Some((policy, refused))
}

/// The tiers mgw enforces, as policies by name with where each is written; and
/// the others, by name, with the reason.
pub fn policies(tiers: Vec<Tier>) -> (Enforced, BTreeMap<String, String>) {
    let mut enforced = BTreeMap::new();
    let mut refused = BTreeMap::new();
    for t in tiers {
        if let Some(why) = t.refused {
            refused.insert(t.name, why);
            continue;
        }
        enforced.insert(t.name, (t.policy, t.origin));
    }
    (enforced, refused)
}

/// Enforced tiers by name: the policy, and where the tier is written.
pub type Enforced = BTreeMap<String, (RateLimitPolicy, Origin)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wso2_tiers() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/corpus/wso2/tests/src/test/resources/policies.yaml"
        ))
        .unwrap();
        let (p, refused) = policies(parse("policies.yaml", &text).unwrap());
        assert!(p.contains_key("3PerMin") && !p.contains_key("Unlimited"));
        assert!(
            refused["allowOnLimitExceed"]
                .starts_with("`stopOnQuota: false` at policies.yaml:80:20 lets requests through"),
            "{refused:?}"
        );
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/corpus/wso2/distribution/resources/definitions/policies.yaml"
        ))
        .unwrap();
        let (p, refused) = policies(parse("policies.yaml", &text).unwrap());
        assert!(refused.is_empty());
        assert_eq!(p.len(), 11);
        assert_eq!(p["10kPerMin"].0.requests, 10_000);
        assert_eq!(p["10kPerMin"].0.period_seconds, 60);
        assert_eq!(p["10kPerMin"].0.key, RateLimitKey::Api);
        assert_eq!(p["Gold"].0.key, RateLimitKey::Consumer);
        assert_eq!(p["Gold"].1.position(), "policies.yaml:28:5");
    }

    #[test]
    fn no_tier_is_dropped_without_a_reason() {
        let e = parse(
            "p.yaml",
            "resourcePolicies:\n  - a: {count: 1, unitTime: 99999999999999999999, timeUnit: min}\n  - b: {count: 1, unitTime: 999999999999999999, timeUnit: year}\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[1].to_string()
                .contains("`unitTime: 999999999999999999` is too long a period"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_tiers_are_located() {
        let e = parse(
            "p.yaml",
            "resourcePolicies:\n  - a: {count: 0, unitTime: 1, timeUnit: sec}\n  - a: {count: 1, unitTime: 1, timeUnit: min}\nsubscription: []\n",
        )
        .unwrap_err();
        let all: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert!(
            all[0].contains(
                "p.yaml:2:16: `#/resourcePolicies/0/a/count`: `count` must be a whole number"
            ),
            "{all:?}"
        );
        assert!(all[1].contains("`sec` is not a WSO2 time unit"), "{all:?}");
        assert!(
            all[2].contains(
                "p.yaml:3:5: `#/resourcePolicies/1/a`: tier `a` is already defined at p.yaml:2:5"
            ),
            "{all:?}"
        );
        assert!(
            all[3]
                .contains("unknown section `subscription` (did you mean `subscriptionPolicies`?)"),
            "{all:?}"
        );
    }
}
