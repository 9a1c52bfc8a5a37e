//! The image's SBOM: an SPDX 2.3 JSON document listing what is inside — the
//! gateway binary and the Rust crates statically linked into it (name, version,
//! licence, crates.io checksum), the base layer's files (or the base image),
//! and the bundle.
//!
//! The crate list is `gateway-crates.json` beside this file, embedded at compile
//! time. It is generated from the workspace, not guessed at run time: `cargo tree
//! -p mgw-gateway --target x86_64-unknown-linux-musl -e normal,no-proc-macro`
//! gives exactly the crates (and licences, from their manifests) that the static
//! gateway build links, with the features that build resolves, and `Cargo.lock`
//! gives their checksums. The unit test `embedded_crate_list_matches_the_workspace`
//! regenerates it and fails when it is stale (`MGW_BLESS=1` rewrites the file). A
//! build script was rejected: running cargo inside a build is fragile (locks,
//! offline CI), and a checked-in file is reviewable in diffs.
//!
//! The document is deterministic (no clock: `created` is the build's
//! `SOURCE_DATE_EPOCH`; the namespace derives from the image digest). It must
//! never list anything that is not in the image, nor hold a secret or a host path.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::oci::Digest;

/// The embedded crate list (see the module docs).
pub const GATEWAY_CRATES_JSON: &str = include_str!("gateway-crates.json");

/// One crate linked into the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct CrateEntry {
    pub name: String,
    pub version: String,
    /// SPDX licence expression from the crate's manifest (`MIT OR Apache-2.0`).
    pub license: Option<String>,
    /// sha256 of the `.crate` file from `Cargo.lock` (registry crates only).
    pub checksum: Option<String>,
}

/// The crates of the gateway binary.
pub fn gateway_crates() -> Vec<CrateEntry> {
    serde_json::from_str(GATEWAY_CRATES_JSON).expect("gateway-crates.json is valid (tested)")
}

/// A file of the base layer.
#[derive(Debug, Clone)]
pub struct BaseFile {
    pub path: String,
    pub sha256: Digest,
    pub license: Option<String>,
    pub comment: Option<String>,
}

/// What the image's base is.
#[derive(Debug, Clone)]
pub enum BaseContents {
    /// The embedded `base-image/` layer.
    Embedded(Vec<BaseFile>),
    /// Another image's layers (`--base`).
    Image { reference: String, digest: Digest },
}

/// A gateway executable the image holds.
#[derive(Debug, Clone)]
pub struct GatewayFile {
    /// `linux/arm64` for a platform of a multi-platform image, `None` otherwise.
    pub platform: Option<String>,
    pub sha256: Digest,
}

/// Everything the SBOM says.
#[derive(Debug, Clone)]
pub struct SbomInput {
    /// `registry/repository`.
    pub repository: String,
    pub tag: String,
    pub image_digest: Digest,
    pub created: String,
    pub gateway_version: String,
    /// The gateway executable in the image: one, or one per platform of a
    /// multi-platform image.
    pub gateways: Vec<GatewayFile>,
    pub bundle_digest: String,
    pub base: BaseContents,
}

/// `MIT/Apache-2.0` (old Cargo style) → `MIT OR Apache-2.0`.
fn spdx_license(license: Option<&str>) -> String {
    match license.map(str::trim).filter(|l| !l.is_empty()) {
        None => "NOASSERTION".to_owned(),
        Some(l) if l.contains('/') => l.split('/').map(str::trim).collect::<Vec<_>>().join(" OR "),
        Some(l) => l.to_owned(),
    }
}

/// SPDX ids allow letters, digits, `.` and `-`.
fn spdx_id(parts: &[&str]) -> String {
    let raw = parts.join("-");
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{cleaned}")
}

fn purl_oci(repository: &str, digest: &Digest) -> String {
    let (url, name) = repository.rsplit_once('/').unwrap_or(("", repository));
    let mut p = format!("pkg:oci/{name}@sha256%3A{}", digest.hex());
    if !url.is_empty() {
        p.push_str(&format!(
            "?repository_url={}",
            percent_encoding::utf8_percent_encode(repository, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    p
}

fn sha256(d: &Digest) -> Value {
    json!([{"algorithm": "SHA256", "checksumValue": d.hex()}])
}

/// Renames the image `doc` describes to `repository` (after `mgw push
/// --repository OTHER`): the document name and namespace, the image package's
/// name and purl. Its tag and digest stay.
pub fn retarget(doc: &mut Value, repository: &str) {
    let Some(image) = doc["packages"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["SPDXID"] == "SPDXRef-Image"))
    else {
        return;
    };
    let tag = image["versionInfo"].as_str().unwrap_or_default().to_owned();
    let Some(digest) = image["checksums"][0]["checksumValue"]
        .as_str()
        .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
    else {
        return;
    };
    image["name"] = json!(repository);
    image["externalRefs"][0]["referenceLocator"] = json!(purl_oci(repository, &digest));
    doc["name"] = json!(format!("{repository}:{tag}"));
    doc["documentNamespace"] = json!(namespace(repository, &digest));
}

fn namespace(repository: &str, digest: &Digest) -> String {
    format!(
        "{}/spdx/{}/sha256-{}",
        env!("CARGO_PKG_REPOSITORY").trim_end_matches('/'),
        repository,
        digest.hex()
    )
}

/// The SPDX 2.3 JSON document for an image.
pub fn document(input: &SbomInput) -> Value {
    let mut packages = Vec::new();
    let mut relationships = Vec::new();
    let rel = |a: &str, kind: &str, b: &str| json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b});

    let image_id = "SPDXRef-Image";
    packages.push(json!({
        "SPDXID": image_id,
        "name": input.repository,
        "versionInfo": input.tag,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": sha256(&input.image_digest),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "comment": "the OCI image; the checksum is its manifest digest",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl_oci(&input.repository, &input.image_digest),
        }],
    }));
    relationships.push(rel("SPDXRef-DOCUMENT", "DESCRIBES", image_id));

    let mut gateway_ids = Vec::new();
    for gateway in &input.gateways {
        let (id, comment) = match &gateway.platform {
            Some(platform) => (
                spdx_id(&["Gateway", platform]),
                format!(
                    "the static gateway executable {} of the {platform} image",
                    crate::gateway_binary::IMAGE_PATH
                ),
            ),
            None => (
                "SPDXRef-Gateway".to_owned(),
                format!(
                    "the static gateway executable {}",
                    crate::gateway_binary::IMAGE_PATH
                ),
            ),
        };
        packages.push(json!({
            "SPDXID": id,
            "name": "mgw-gateway",
            "versionInfo": input.gateway_version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": sha256(&gateway.sha256),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": env!("CARGO_PKG_LICENSE"),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "APPLICATION",
            "comment": comment,
        }));
        relationships.push(rel(image_id, "CONTAINS", &id));
        gateway_ids.push(id);
    }

    for c in gateway_crates() {
        let id = spdx_id(&["Crate", &c.name, &c.version]);
        let mut p = json!({
            "SPDXID": id,
            "name": c.name,
            "versionInfo": c.version,
            "downloadLocation": format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version),
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": spdx_license(c.license.as_deref()),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": format!("pkg:cargo/{}@{}", c.name, c.version),
            }],
        });
        if let Some(sum) = &c.checksum {
            p["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sum}]);
        } else {
            p["downloadLocation"] = json!("NOASSERTION");
        }
        packages.push(p);
        for gateway_id in &gateway_ids {
            relationships.push(rel(gateway_id, "STATIC_LINK", &id));
        }
    }

    match &input.base {
        BaseContents::Embedded(files) => {
            for f in files {
                let id = spdx_id(&["Base", f.path.trim_start_matches('/')]);
                let mut p = json!({
                    "SPDXID": id,
                    "name": f.path,
                    "downloadLocation": "NOASSERTION",
                    "filesAnalyzed": false,
                    "checksums": sha256(&f.sha256),
                    "licenseConcluded": "NOASSERTION",
                    "licenseDeclared": f.license.clone().unwrap_or_else(|| "NOASSERTION".to_owned()),
                    "copyrightText": "NOASSERTION",
                    "primaryPackagePurpose": "FILE",
                });
                if let Some(c) = &f.comment {
                    p["comment"] = json!(c);
                }
                packages.push(p);
                relationships.push(rel(image_id, "CONTAINS", &id));
            }
        }
        BaseContents::Image { reference, digest } => {
            let id = "SPDXRef-BaseImage";
            packages.push(json!({
                "SPDXID": id,
                "name": reference,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "checksums": sha256(digest),
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": "CONTAINER",
                "comment": "the base image (`--base`) whose layers this image reuses; the checksum is its manifest digest",
            }));
            relationships.push(rel(image_id, "DESCENDANT_OF", id));
        }
    }

    if let Ok(bundle) = input.bundle_digest.parse::<Digest>() {
        let id = "SPDXRef-Bundle";
        packages.push(json!({
            "SPDXID": id,
            "name": crate::bake::BUNDLE_PATH,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": sha256(&bundle),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "FILE",
            "comment": "the compiled bundle the gateway serves",
        }));
        relationships.push(rel(image_id, "CONTAINS", id));
    }

    let name = format!("{}:{}", input.repository, input.tag);
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": namespace(&input.repository, &input.image_digest),
        "creationInfo": {
            "created": input.created,
            "creators": [concat!("Tool: mgw-", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// The base layer's files, as the SBOM lists them.
pub fn embedded_base_files() -> Vec<BaseFile> {
    crate::oci::base::embedded_files()
        .into_iter()
        .map(|(path, bytes)| {
            let ca = path.ends_with("ca-certificates.crt");
            BaseFile {
                path: format!("/{path}"),
                sha256: Digest::of(bytes),
                license: ca.then(|| "MPL-2.0".to_owned()),
                comment: ca.then(|| {
                    "Debian 12 `ca-certificates` 20230311+deb12u1 (Mozilla's CA store); see base-image/README.md".to_owned()
                }),
            }
        })
        .collect()
}

/// Reads the workspace's crate graph for the gateway with `cargo tree` and
/// `Cargo.lock` (for [`GATEWAY_CRATES_JSON`] and its freshness test).
pub fn crates_from_workspace(
    workspace: &std::path::Path,
    cargo: &str,
) -> Result<Vec<CrateEntry>, String> {
    let out = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args([
            "tree",
            "-p",
            "mgw-gateway",
            "--target",
            "x86_64-unknown-linux-musl",
            "-e",
            "normal,no-proc-macro",
            "--prefix",
            "none",
            "-f",
            "{p}|{l}",
        ])
        .output()
        .map_err(|e| format!("cannot run `{cargo} tree`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`cargo tree` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock"))
        .map_err(|e| format!("cannot read `Cargo.lock`: {e}"))?;
    let checksums = lock_checksums(&lock);
    let mut crates: Vec<CrateEntry> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(" (*)");
            let (pkg, license) = line.split_once('|')?;
            let mut words = pkg.split_whitespace();
            let name = words.next()?.to_owned();
            let version = words.next()?.trim_start_matches('v').to_owned();
            // The gateway itself is its own package in the SBOM.
            if name == "mgw-gateway" {
                return None;
            }
            let checksum = checksums.get(&(name.clone(), version.clone())).cloned();
            Some(CrateEntry {
                name,
                version,
                license: Some(license.trim().to_owned()).filter(|l| !l.is_empty()),
                checksum,
            })
        })
        .collect();
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    crates.dedup();
    Ok(crates)
}

/// `(name, version) → checksum` from a `Cargo.lock`.
fn lock_checksums(lock: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut out = std::collections::BTreeMap::new();
    for block in lock.split("[[package]]") {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.strip_prefix(&format!("{key} = \""))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_owned)
            })
        };
        if let (Some(n), Some(v), Some(c)) = (field("name"), field("version"), field("checksum")) {
            out.insert((n, v), c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_crate_list_matches_the_workspace() {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let fresh = crates_from_workspace(workspace, &cargo).unwrap();
        assert!(fresh.len() > 20, "{fresh:?}");
        if std::env::var_os("MGW_BLESS").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/sbom/gateway-crates.json");
            std::fs::write(path, serde_json::to_string_pretty(&fresh).unwrap() + "\n").unwrap();
            return;
        }
        assert!(
            fresh == gateway_crates(),
            "builder/src/sbom/gateway-crates.json is stale (the gateway's dependencies changed); regenerate it with `MGW_BLESS=1 cargo test -p mgw-builder embedded_crate_list`"
        );
    }

    #[test]
    fn licences_are_spdx_expressions() {
        assert_eq!(spdx_license(Some("MIT/Apache-2.0")), "MIT OR Apache-2.0");
        assert_eq!(spdx_license(Some("Apache-2.0 / MIT")), "Apache-2.0 OR MIT");
        assert_eq!(spdx_license(None), "NOASSERTION");
        for c in gateway_crates() {
            let l = spdx_license(c.license.as_deref());
            assert!(!l.contains('/'), "{}: {l}", c.name);
        }
    }

    #[test]
    fn document_has_the_required_spdx_fields() {
        let input = SbomInput {
            repository: "127.0.0.1:5000/team/gw".into(),
            tag: "1.0.0-abc".into(),
            image_digest: Digest::of(b"m"),
            created: "1970-01-01T00:00:00Z".into(),
            gateway_version: "0.1.0".into(),
            gateways: vec![GatewayFile {
                platform: None,
                sha256: Digest::of(b"g"),
            }],
            bundle_digest: Digest::of(b"b").to_string(),
            base: BaseContents::Embedded(embedded_base_files()),
        };
        let doc = document(&input);
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["dataLicense"], "CC0-1.0");
        let packages = doc["packages"].as_array().unwrap();
        let mut ids = std::collections::BTreeSet::new();
        for p in packages {
            for key in ["SPDXID", "name", "downloadLocation"] {
                assert!(p[key].is_string(), "{key} missing in {p}");
            }
            assert!(
                ids.insert(p["SPDXID"].as_str().unwrap().to_owned()),
                "duplicate id {p}"
            );
        }
        assert!(packages.iter().any(|p| p["name"] == "tokio"));
        assert!(
            packages
                .iter()
                .any(|p| p["name"] == "/etc/ssl/certs/ca-certificates.crt")
        );
        for r in doc["relationships"].as_array().unwrap() {
            let a = r["spdxElementId"].as_str().unwrap();
            let b = r["relatedSpdxElement"].as_str().unwrap();
            assert!(a == "SPDXRef-DOCUMENT" || ids.contains(a));
            assert!(ids.contains(b));
        }
        assert_eq!(document(&input), doc, "deterministic");
    }

    #[test]
    fn a_multi_platform_image_lists_each_platforms_gateway() {
        let gateways = ["linux/amd64", "linux/arm64"].map(|p| GatewayFile {
            platform: Some(p.to_owned()),
            sha256: Digest::of(p.as_bytes()),
        });
        let doc = document(&SbomInput {
            repository: "127.0.0.1:5000/team/gw".into(),
            tag: "1.0.0-abc".into(),
            image_digest: Digest::of(b"index"),
            created: "1970-01-01T00:00:00Z".into(),
            gateway_version: "0.1.0".into(),
            gateways: gateways.to_vec(),
            bundle_digest: Digest::of(b"b").to_string(),
            base: BaseContents::Embedded(embedded_base_files()),
        });
        let relationships = doc["relationships"].as_array().unwrap();
        for g in &gateways {
            let id = spdx_id(&["Gateway", g.platform.as_deref().unwrap()]);
            let package = doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["SPDXID"] == id.as_str())
                .unwrap_or_else(|| panic!("no package {id}"));
            assert_eq!(package["checksums"][0]["checksumValue"], g.sha256.hex());
            let linked = |kind: &str, a: &str, b: &str| {
                relationships.iter().any(|r| {
                    r["relationshipType"] == kind
                        && r["spdxElementId"] == a
                        && r["relatedSpdxElement"] == b
                })
            };
            assert!(linked("CONTAINS", "SPDXRef-Image", &id));
            let tokio = doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "tokio")
                .unwrap();
            assert!(linked(
                "STATIC_LINK",
                &id,
                tokio["SPDXID"].as_str().unwrap()
            ));
        }
    }

    #[test]
    fn retargeting_renames_the_image_and_keeps_the_rest() {
        let input = |repository: &str| SbomInput {
            repository: repository.into(),
            tag: "1.0.0-abc".into(),
            image_digest: Digest::of(b"m"),
            created: "1970-01-01T00:00:00Z".into(),
            gateway_version: "0.1.0".into(),
            gateways: vec![GatewayFile {
                platform: None,
                sha256: Digest::of(b"g"),
            }],
            bundle_digest: Digest::of(b"b").to_string(),
            base: BaseContents::Embedded(embedded_base_files()),
        };
        let mut doc = document(&input("localhost:5000/petstore-gw"));
        retarget(&mut doc, "127.0.0.1:5001/team/other");
        assert_eq!(doc, document(&input("127.0.0.1:5001/team/other")));
    }
}
