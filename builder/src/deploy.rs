//! From a built image to deployable artifacts, with the image pinned by digest.
//!
//! [`helm_values`] writes the values the `helm/` chart needs to run exactly this
//! image (`image.repository` + `image.digest`, the bundle's required variables, the
//! drain time); [`resolve`] rewrites container images in Kubernetes manifests the
//! way `ko resolve` does. Both only read build metadata; they never contact a
//! registry and never write secret values anywhere.

use serde_yaml::Value;

use crate::project::EnvVar;

/// The image name used as a placeholder in `k8s/` manifests.
pub const PLACEHOLDER: &str = "mgw-gateway";

/// Listener variables the chart sets itself from its port settings.
const CHART_MANAGED: &[&str] = &["MGW_LISTEN", "MGW_ADMIN_LISTEN"];

/// What deployment artifacts need to know about an image.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub repository: String,
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    pub env: Vec<EnvVar>,
    /// The bundle's drain grace, in whole seconds (rounded up).
    pub drain_seconds: u64,
}

impl Pinned {
    pub fn image_ref(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }
}

/// Helm values for the `mgw-gateway` chart, as commented YAML.
pub fn helm_values(p: &Pinned) -> String {
    let mut out = String::new();
    out.push_str("# Written by `mgw`: pins this gateway image for the mgw-gateway Helm chart.\n");
    out.push_str("# Layer your environment's values on top (upstream URLs, secrets, replicas):\n");
    out.push_str("#   helm install petstore ./helm -f values.yaml -f values-prod.yaml\n");
    out.push_str("image:\n");
    out.push_str(&format!("  repository: {}\n", yaml_str(&p.repository)));
    out.push_str(&format!("  digest: {}\n", yaml_str(&p.digest)));
    out.push_str(&format!("  tag: {}\n", yaml_str(&p.tag)));
    let required: Vec<&EnvVar> = p
        .env
        .iter()
        .filter(|v| v.required() && !CHART_MANAGED.contains(&v.name.as_str()))
        .collect();
    out.push_str(
        "# Bundle variables without a default: every environment must set them (`env:`).\n",
    );
    if required.is_empty() {
        out.push_str("requiredEnv: []\n");
    } else {
        out.push_str("requiredEnv:\n");
        for v in &required {
            out.push_str(&format!("  - {}\n", yaml_str(&v.name)));
        }
    }
    out.push_str("# Bundle variables with a default; set them here to override.\n");
    out.push_str("env: {}\n");
    for v in p
        .env
        .iter()
        .filter(|v| !v.required() && !CHART_MANAGED.contains(&v.name.as_str()))
    {
        out.push_str(&format!(
            "#  {}: {}\n",
            v.name,
            yaml_str(v.default.as_deref().unwrap_or_default())
        ));
    }
    out.push_str("lifecycle:\n");
    out.push_str(&format!("  drainSeconds: {}\n", p.drain_seconds));
    out
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot parse manifests from `{source_name}`: {error}")]
    Parse {
        source_name: String,
        error: serde_yaml::Error,
    },
    #[error(
        "`{source_name}` has no container image named `{PLACEHOLDER}` or `{repository}`; nothing to pin"
    )]
    NothingPinned {
        source_name: String,
        repository: String,
    },
}

/// Rewrites every `image:` of a container that names the placeholder or the
/// image's repository (with any tag or digest) to `repository@digest`. Returns
/// the documents as YAML and how many images were pinned.
pub fn resolve(yaml: &str, source_name: &str, p: &Pinned) -> Result<(String, usize), ResolveError> {
    let mut docs = Vec::new();
    let mut pinned = 0;
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let mut v = <Value as serde::Deserialize>::deserialize(doc).map_err(|error| {
            ResolveError::Parse {
                source_name: source_name.to_owned(),
                error,
            }
        })?;
        if v.is_null() {
            continue;
        }
        pin_images(&mut v, p, &mut pinned);
        docs.push(v);
    }
    if pinned == 0 {
        return Err(ResolveError::NothingPinned {
            source_name: source_name.to_owned(),
            repository: p.repository.clone(),
        });
    }
    let mut out = String::new();
    for d in &docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(d).unwrap_or_default());
    }
    Ok((out, pinned))
}

fn names_our_image(image: &str, repository: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    // Strip a tag, but not a registry port (`host:5000/repo`).
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    name == PLACEHOLDER || name == repository
}

fn pin_images(v: &mut Value, p: &Pinned, pinned: &mut usize) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                if k.as_str() == Some("image") {
                    if let Value::String(s) = val {
                        if names_our_image(s, &p.repository) {
                            *s = p.image_ref();
                            *pinned += 1;
                            continue;
                        }
                    }
                }
                pin_images(val, p, pinned);
            }
        }
        Value::Sequence(seq) => seq.iter_mut().for_each(|x| pin_images(x, p, pinned)),
        Value::Tagged(t) => pin_images(&mut t.value, p, pinned),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> Pinned {
        Pinned {
            repository: "localhost:5000/petstore-gw".into(),
            tag: "1.0.0-abc".into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            env: vec![
                EnvVar {
                    name: "PETS_URL".into(),
                    default: None,
                    used_by: vec![],
                },
                EnvVar {
                    name: "MGW_LISTEN".into(),
                    default: Some("0.0.0.0:8080".into()),
                    used_by: vec![],
                },
                EnvVar {
                    name: "TIMEOUT".into(),
                    default: Some("5".into()),
                    used_by: vec![],
                },
            ],
            drain_seconds: 20,
        }
    }

    #[test]
    fn values_pin_the_digest_and_list_required_env() {
        let v: Value = serde_yaml::from_str(&helm_values(&pinned())).unwrap();
        assert_eq!(v["image"]["digest"].as_str().unwrap(), pinned().digest);
        assert_eq!(
            v["image"]["repository"].as_str().unwrap(),
            "localhost:5000/petstore-gw"
        );
        assert_eq!(v["requiredEnv"][0].as_str().unwrap(), "PETS_URL");
        assert_eq!(v["requiredEnv"].as_sequence().unwrap().len(), 1);
        assert_eq!(v["lifecycle"]["drainSeconds"].as_u64(), Some(20));
    }

    #[test]
    fn resolve_pins_placeholder_and_repository_only() {
        let yaml = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          image: mgw-gateway\n        - name: b\n          image: localhost:5000/petstore-gw:old\n        - name: c\n          image: nginx:1.27\n---\nkind: Service\n";
        let (out, n) = resolve(yaml, "x", &pinned()).unwrap();
        assert_eq!(n, 2);
        assert!(out.contains("nginx:1.27"));
        assert_eq!(out.matches("localhost:5000/petstore-gw@sha256:").count(), 2);
        assert!(matches!(
            resolve("kind: Service\n", "y", &pinned()),
            Err(ResolveError::NothingPinned { .. })
        ));
    }
}
