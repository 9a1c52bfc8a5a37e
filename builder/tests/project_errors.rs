//! Black-box tests of project loading and compilation: the example projects build
//! reproducibly, and every kind of broken project fails with a message naming the
//! file, the position and the key path.

mod support;

use std::path::{Path, PathBuf};

use mgw_builder::project::{self, InitOptions, ProjectError, openapi};
use mgw_bundle::{Bundle, Config, digest_of};
use proptest::prelude::*;
use support::{copy_dir, enable_scaffolded_auth};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    root().join("..").join("examples").join(name)
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

/// The rendered error of a project that must fail.
fn failure(dir: &Path) -> String {
    match project::build(dir) {
        Ok(c) => panic!(
            "{} built (digest {}), expected an error",
            dir.display(),
            c.digest
        ),
        Err(e) => {
            assert_eq!(e.exit_code(), 64, "{e}");
            e.to_string()
        }
    }
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected `{n}` in:\n{haystack}");
    }
}

#[test]
fn petstore_example_compiles_into_a_bundle_the_gateway_accepts() {
    let c = project::build(&example("petstore")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.bundle.gateway.name, "petstore");
    let api = &c.bundle.apis[0];
    assert_eq!(api.base_path, "/petstore/v1");
    let routes: Vec<String> = api
        .operations
        .iter()
        .map(|o| format!("{} {} {}", o.method, o.path, o.id))
        .collect();
    assert_eq!(
        routes,
        [
            "GET /pets listPets",
            "POST /pets createPet",
            "DELETE /pets/{petId} deletePet",
            "GET /pets/{petId} getPet",
        ]
    );
    assert_eq!(c.bundle.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(c.bundle.upstreams["petstore"].request_timeout_ms, 15_000);
    assert_eq!(c.summary.repository, "localhost:5000/petstore-gw");
    assert_eq!(c.summary.routes, 4);
    let vars: Vec<_> = c
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.default.as_deref()))
        .collect();
    assert_eq!(
        vars,
        [
            ("MGW_ADMIN_LISTEN", Some("0.0.0.0:9090")),
            ("MGW_LISTEN", Some("0.0.0.0:8080")),
            ("PETSTORE_UPSTREAM", Some("http://127.0.0.1:8081")),
        ]
    );
    // The bytes are the canonical form of the bundle, and the gateway loads them.
    let parsed = Bundle::from_json(&c.bytes).unwrap();
    assert_eq!(parsed, c.bundle);
    assert_eq!(c.digest, digest_of(&c.bytes));
    let env = std::collections::BTreeMap::<String, String>::new();
    Config::from_bundle(&parsed, c.digest.clone(), Some(&env)).unwrap();
    // No absolute path of this machine leaks into the bundle.
    let text = String::from_utf8(c.bytes.clone()).unwrap();
    assert!(!text.contains(env!("CARGO_MANIFEST_DIR")), "{text}");
}

#[test]
fn petstore_jwt_example_compiles_security_into_the_bundle() {
    let c = project::build(&example("petstore-jwt")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let api = &c.bundle.apis[0];
    let scheme = &api.security_schemes["petstore_auth"];
    assert_eq!(scheme.provider, "idp");
    assert_eq!(scheme.prefix.as_deref(), Some("Bearer"));
    let security = |id: &str| {
        api.operations
            .iter()
            .find(|o| o.id == id)
            .unwrap()
            .security
            .clone()
    };
    assert_eq!(security("listPets")[0]["petstore_auth"], ["pets:read"]);
    assert_eq!(security("createPet")[0]["petstore_auth"], ["pets:write"]);
    assert!(security("health").is_empty());
    assert!(api.cors.is_some());
    let text = String::from_utf8(c.bytes.clone()).unwrap();
    assert!(text.contains("\"kty\":\"EC\""), "the public key is inlined");
    let env = std::collections::BTreeMap::<String, String>::new();
    Config::from_bundle(&c.bundle, c.digest.clone(), Some(&env)).unwrap();
}

#[test]
fn wso2_example_takes_base_path_and_upstreams_from_extensions() {
    let c = project::build(&example("wso2-petstore")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let api = &c.bundle.apis[0];
    assert_eq!(api.base_path, "/petstore/1.0.5");
    assert_eq!(api.upstream, "x-wso2:petstore");
    assert_eq!(c.bundle.upstreams["x-wso2:petstore"].urls.len(), 2);
    let inventory = api
        .operations
        .iter()
        .find(|o| o.id == "getInventory")
        .unwrap();
    assert_eq!(
        inventory.upstream.as_deref(),
        Some("x-wso2:petstore:getInventory")
    );
    assert_eq!(
        c.bundle.upstreams["x-wso2:petstore:getInventory"].load_balancing,
        mgw_bundle::LoadBalancing::Failover
    );
}

#[test]
fn same_project_gives_same_bytes_anywhere() {
    let a = project::build(&example("petstore")).unwrap();
    let b = project::build(&example("petstore")).unwrap();
    assert_eq!(a.bytes, b.bytes);
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("somewhere").join("else");
    copy_dir(&example("petstore"), &copy);
    let c = project::build(&copy).unwrap();
    assert_eq!(a.bytes, c.bytes);
    assert_eq!(a.digest, c.digest);
}

#[test]
fn changing_one_line_of_the_spec_changes_the_digest() {
    let before = project::build(&example("petstore")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&example("petstore"), tmp.path());
    let spec = tmp.path().join("apis/petstore.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace("operationId: deletePet", "operationId: removePet"),
    )
    .unwrap();
    let after = project::build(tmp.path()).unwrap();
    assert_ne!(before.digest, after.digest);
    // Documentation-only changes do not change what the gateway does, and do not
    // change the bundle either.
    std::fs::write(
        &spec,
        text.replace("summary: Delete a pet", "summary: Remove a pet"),
    )
    .unwrap();
    assert_eq!(project::build(tmp.path()).unwrap().digest, before.digest);
}

#[test]
fn bad_yaml_names_file_and_position() {
    let e = failure(&fixture("bad-yaml"));
    assert_contains(&e, &["apis/api.yaml:8:3: invalid YAML"]);
}

#[test]
fn bad_yaml_in_mgw_yaml() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("mgw.yaml"), "name: x\nversion: [1\n").unwrap();
    let e = failure(tmp.path());
    assert_contains(&e, &["mgw.yaml:3:1: invalid YAML"]);
}

#[test]
fn dangling_ref_names_the_ref_and_what_exists() {
    let e = failure(&fixture("dangling-ref"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:8:17: `#/paths/~1items~1{id}/get/parameters/0/$ref`",
            "`#/components/parameters/ItemID` points to nothing",
            "did you mean `ItemId`?",
        ],
    );
}

#[test]
fn ref_cycle_across_files_is_reported_not_followed() {
    let e = failure(&fixture("ref-cycle"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:5:11: `#/paths/~1items/$ref`",
            "`$ref` cycle: `apis/api.yaml#/paths/~1items` → `apis/paths.yaml#/items` → `apis/api.yaml#/paths/~1items`",
        ],
    );
}

#[test]
fn duplicate_route_across_apis_names_both_operations_and_files() {
    let e = failure(&fixture("duplicate-route"));
    assert_contains(
        &e,
        &[
            "apis/items.yaml:5:5: `#/paths/~1{itemId}/get`",
            "`GET /shop/items/{itemId}` (operation `getItem` of API `items`)",
            "conflicts with operation `getCatalogItem` of API `catalog` at `apis/catalog.yaml:5:5`",
        ],
    );
}

#[test]
fn unknown_key_in_mgw_yaml_suggests_the_right_one() {
    let e = failure(&fixture("unknown-key"));
    assert_contains(
        &e,
        &["mgw.yaml:8:5: `apis[0].upsteam`: unknown key `upsteam` (did you mean `upstream`?)"],
    );
}

#[test]
fn missing_spec_points_at_mgw_yaml() {
    let e = failure(&fixture("missing-spec"));
    assert_contains(
        &e,
        &["mgw.yaml:8:11: `apis[0].spec`: file `apis/nope.yaml` does not exist"],
    );
}

#[test]
fn missing_mgw_yaml_suggests_init() {
    let tmp = tempfile::tempdir().unwrap();
    let e = failure(tmp.path());
    assert_contains(
        &e,
        &["mgw.yaml: file `mgw.yaml` does not exist", "mgw init"],
    );
}

#[test]
fn security_requirement_without_a_provider_is_not_silently_ignored() {
    let e = failure(&fixture("security"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:8:9: `#/paths/~1items/get/security`",
            "security scheme `oauth` (type `oauth2`) has no provider",
            "auth.schemes: {oauth: <provider>}",
        ],
    );
    assert!(!e.contains("health"), "`security: []` is open: {e}");
}

#[test]
fn unknown_operation_in_include_lists_the_valid_ones() {
    let e = failure(&fixture("unknown-operation"));
    assert_contains(
        &e,
        &[
            "mgw.yaml:11:31: `apis[0].include.operations[1]`: no operation `getItems` in `apis/api.yaml` (did you mean `getItem`?); its operationIds are `getItem` and `listItems`",
        ],
    );
}

#[test]
fn remote_refs_in_schemas_warn_and_escaping_refs_are_refused() {
    // A schema is never read by the gateway: its broken reference is a warning
    // (issue 12: unused parts of a document must not block the build).
    let c = project::build(&fixture("remote-ref")).unwrap();
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("apis/api.yaml:12:30:") && w.contains("is a remote reference")),
        "{warnings:?}"
    );
    // A path item is: there the same kind of problem stays an error.
    let e = failure(&fixture("escaping-ref"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:5:11: `#/paths/~1a/$ref`",
            "escapes the project directory",
        ],
    );
}

#[test]
fn unknown_mgw_extension_lists_the_known_ones() {
    let e = failure(&fixture("unknown-extension"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:7:7: `#/paths/~1a/get/x-wso2-throttle-tier`",
            "did you mean `x-wso2-throttling-tier`?",
            "`x-mgw-upstream`",
        ],
    );
}

#[test]
fn unknown_rate_limit_policies_are_build_errors_with_positions() {
    let e = failure(&fixture("unknown-rate-limit"));
    assert_contains(
        &e,
        &[
            "apis/api.yaml:4:19: `#/x-mgw-rate-limit`: no rate-limit policy named `Gld` (did you mean `Gold`?); declare it in `mgw.yaml` under `rateLimits.policies` (declared: `Gold` and `Silver`), or use `Unlimited`",
            "apis/api.yaml:9:31: `#/paths/~1items/get/x-wso2-throttling-tier`: no rate-limit policy named `Platinum`",
        ],
    );
    // `Unlimited` is WSO2's built-in "no limit".
    assert!(!e.contains("addItem"), "{e}");
}

#[test]
fn ratelimit_example_attaches_policies_at_both_levels() {
    let c = project::build(&example("petstore-ratelimit")).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let api = &c.bundle.apis[0];
    assert_eq!(api.rate_limit.as_deref(), Some("per-client"));
    let limits: Vec<String> = api
        .operations
        .iter()
        .map(|o| format!("{} {:?}", o.id, o.rate_limit))
        .collect();
    assert_eq!(
        limits,
        [
            "listPets None",
            "createPet Some(\"writes\")",
            "deletePet None",
            "getPet Some(\"lookups\")",
        ]
    );
    let r = c.bundle.rate_limits.as_ref().unwrap();
    assert_eq!(r.unauthenticated.as_deref(), Some("anonymous"));
    assert_eq!(r.policies["lookups"].requests, 3);
    assert_eq!(r.policies["lookups"].period_seconds, 60);
    assert_eq!(c.bundle.trusted_proxies, ["${MGW_TRUSTED_PROXIES:-}"]);
    let u = &c.bundle.upstreams["petstore"];
    assert_eq!(u.max_concurrent_requests, 256);
    assert_eq!(u.circuit_breaker.open_ms, 5_000);
    // The gateway accepts it, with the trusted ranges empty or set.
    let parsed = Bundle::from_json(&c.bytes).unwrap();
    let mut env = std::collections::BTreeMap::<String, String>::new();
    let cfg = Config::from_bundle(&parsed, c.digest.clone(), Some(&env)).unwrap();
    assert!(cfg.trusted_proxies.is_empty());
    env.insert(
        "MGW_TRUSTED_PROXIES".into(),
        "10.0.0.0/8, 192.168.0.0/16".into(),
    );
    let cfg = Config::from_bundle(&parsed, c.digest.clone(), Some(&env)).unwrap();
    assert_eq!(cfg.trusted_proxies.nets().len(), 2);
    env.insert("MGW_TRUSTED_PROXIES".into(), "10.0.0.1/8".into());
    let e = Config::from_bundle(&parsed, c.digest.clone(), Some(&env))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`trustedProxies[0]`: `10.0.0.1/8` has host bits set"),
        "{e}"
    );
}

#[test]
fn swagger2_openapi31_and_json_specs_load() {
    let c = project::build(&fixture("swagger2")).unwrap();
    assert_eq!(c.bundle.apis[0].base_path, "/legacy/v2");
    let ids: Vec<_> = c.bundle.apis[0]
        .operations
        .iter()
        .map(|o| o.id.as_str())
        .collect();
    assert_eq!(ids, ["listUsers", "get_users_id"]);
    assert_eq!(c.summary.apis[0].format, openapi::SpecFormat::Swagger2);

    let c = project::build(&fixture("openapi31")).unwrap();
    assert_eq!(c.bundle.apis[0].base_path, "/modern");
    assert_eq!(c.summary.apis[0].format, openapi::SpecFormat::OpenApi31);

    let c = project::build(&fixture("json-spec")).unwrap();
    let ops: Vec<_> = c.bundle.apis[0]
        .operations
        .iter()
        .map(|o| format!("{} {}", o.method, o.id))
        .collect();
    assert_eq!(ops, ["DELETE delete_orders_orderId", "GET getOrder"]);
}

#[test]
fn init_scaffolds_a_project_that_builds_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gw");
    let spec = example("petstore").join("apis/petstore.yaml");
    let outcome = project::init(&spec, &out, &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.name, "petstore");
    assert_eq!(outcome.version, "1.0.0");
    assert_eq!(outcome.base_path, "/v1");
    assert_eq!(
        outcome.upstream_variable.as_deref(),
        Some("PETSTORE_UPSTREAM_URL")
    );
    assert_eq!(
        outcome.files,
        ["apis/petstore.yaml", "apis/schemas/pet.yaml", "mgw.yaml"]
    );
    let text = std::fs::read_to_string(out.join("mgw.yaml")).unwrap();
    assert!(
        text.contains("- ${PETSTORE_UPSTREAM_URL:-http://127.0.0.1:8000/v1}"),
        "{text}"
    );
    assert!(
        text.contains("# operationIds: listPets, createPet, getPet, deletePet"),
        "{text}"
    );
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let c = project::build(&out).unwrap();
    assert_eq!(c.summary.routes, 4);

    match project::init(&spec, &out, &InitOptions::default()) {
        Err(ProjectError::AlreadyExists { path }) => assert!(path.ends_with("mgw.yaml"), "{path}"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

/// A scaffolded project is shared (committed, copied into a build container
/// that runs as another user): its files and folders get the umask's mode, as
/// an editor's would, not a temporary file's private 0600 / 0700.
#[test]
fn init_writes_files_and_folders_with_the_umask_s_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gw");
    let spec = example("petstore").join("apis/petstore.yaml");
    let options = InitOptions {
        runtime: true,
        ..InitOptions::default()
    };
    project::init(&spec, &out, &options).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::write(tmp.path().join("plain"), "").unwrap();
    std::fs::create_dir(tmp.path().join("plain-dir")).unwrap();
    let (file, dir) = (
        mode(&tmp.path().join("plain")),
        mode(&tmp.path().join("plain-dir")),
    );
    for f in ["mgw.yaml", "apis/petstore.yaml", "runtime/Cargo.toml"] {
        assert_eq!(mode(&out.join(f)), file, "{f}");
    }
    for d in ["apis", "runtime"] {
        assert_eq!(mode(&out.join(d)), dir, "{d}");
    }
}

#[test]
fn init_reports_what_still_stops_a_build() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture("security").join("apis/api.yaml");
    let outcome = project::init(&spec, tmp.path(), &InitOptions::default()).unwrap();
    assert_eq!(outcome.name, "fixture");
    assert_eq!(outcome.problems.len(), 1, "{:?}", outcome.problems);
    assert!(outcome.problems[0].message.contains("has no provider"));
}

#[test]
fn init_copies_referenced_files_from_sibling_folders_keeping_their_layout() {
    // OAI's petstore-separate: `spec/swagger.yaml` refers to `../common/Error.yaml`.
    let tmp = tempfile::tempdir().unwrap();
    let spec =
        root().join("../tests/corpus/oai-examples/v2.0/yaml/petstore-separate/spec/swagger.yaml");
    let outcome = project::init(&spec, tmp.path(), &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(
        outcome.files,
        [
            "apis/common/Error.yaml",
            "apis/spec/NewPet.yaml",
            "apis/spec/Pet.yaml",
            "apis/spec/parameters.yaml",
            "apis/spec/swagger.yaml",
            "mgw.yaml"
        ]
    );
    let text = std::fs::read_to_string(tmp.path().join("mgw.yaml")).unwrap();
    assert!(text.contains("spec: apis/spec/swagger.yaml"), "{text}");
    assert_eq!(project::build(tmp.path()).unwrap().summary.routes, 4);
}

#[test]
fn init_does_not_copy_non_document_files_a_ref_climbs_to() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("api")).unwrap();
    std::fs::write(
        tmp.path().join("secret.txt"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    let spec = tmp.path().join("api/spec.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: ok\n          content: {application/json: {schema: {$ref: '../secret.txt'}}}\n",
    )
    .unwrap();
    let out = tmp.path().join("gw");
    let outcome = project::init(&spec, &out, &InitOptions::default()).unwrap();
    assert_eq!(outcome.files, ["apis/spec.yaml", "mgw.yaml"]);
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.message.starts_with("`$ref` `../secret.txt`")),
        "{:?}",
        outcome.warnings
    );
}

#[test]
fn init_scaffolds_a_commented_provider_per_security_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture("security").join("apis/api.yaml");
    let outcome = project::init(&spec, tmp.path(), &InitOptions::default()).unwrap();
    // Commented: the first validate says what to fill in...
    assert!(
        outcome.problems[0]
            .message
            .contains("security scheme `oauth` (type `oauth2`) has no provider")
    );
    let manifest = tmp.path().join("mgw.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.contains("#auth:\n#  providers:\n#    oauth:    # oauth2 bearer tokens: signed JWTs (or `type: introspection`)\n#      type: jwt\n"),
        "{text}"
    );
    // ... and uncommented, the project builds.
    std::fs::write(&manifest, enable_scaffolded_auth(&text)).unwrap();
    let c = project::build(tmp.path()).unwrap();
    assert_eq!(c.summary.routes, 2);
}

/// An `openIdConnect` scheme names its discovery document: the scaffolded
/// provider finds its keys through it (`discoveryUrl`) under the issuer the
/// document is published for, and builds once uncommented.
#[test]
fn init_scaffolds_discovery_for_an_openid_connect_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("api.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3\ninfo: {title: Shop, version: 1.0.0}\nsecurity: [{oidc: [orders]}]\npaths:\n  /orders:\n    get: {operationId: listOrders, responses: {'200': {description: ok}}}\ncomponents:\n  securitySchemes:\n    oidc: {type: openIdConnect, openIdConnectUrl: 'https://kc.example/realms/shop/.well-known/openid-configuration'}\n",
    )
    .unwrap();
    let dir = tmp.path().join("gw");
    project::init(&spec, &dir, &InitOptions::default()).unwrap();
    let manifest = dir.join("mgw.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.contains("#      issuer: https://kc.example/realms/shop    # exactly the `issuer` the document at discoveryUrl names\n#      discoveryUrl: https://kc.example/realms/shop/.well-known/openid-configuration\n"),
        "{text}"
    );
    std::fs::write(&manifest, enable_scaffolded_auth(&text)).unwrap();
    let c = project::build(&dir).unwrap();
    let mgw_bundle::Provider::Jwt(j) = &c.bundle.auth.providers["oidc"] else {
        panic!("{:?}", c.bundle.auth.providers);
    };
    assert_eq!(j.issuer, "https://kc.example/realms/shop");
    assert_eq!(
        j.discovery_url.as_deref(),
        Some("https://kc.example/realms/shop/.well-known/openid-configuration")
    );
    assert_eq!(j.jwks_url, None);
}

#[test]
fn init_from_a_wso2_definition_keeps_its_endpoints_unless_told_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = example("wso2-petstore").join("api_definitions/petstore.yaml");
    let outcome = project::init(&spec, tmp.path(), &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(outcome.base_path, "/petstore/1.0.5");
    let compiled = project::build(tmp.path()).unwrap();
    assert_eq!(compiled.bundle.apis[0].upstream, "x-wso2:swagger-petstore");
    let text = std::fs::read_to_string(tmp.path().join("mgw.yaml")).unwrap();
    assert!(text.contains("\n# upstreams:\n"), "{text}");
    assert_eq!(outcome.upstream_variable, None);

    // An upstream URL given to init replaces the spec's endpoints, with a warning.
    let tmp = tempfile::tempdir().unwrap();
    let options = InitOptions {
        upstream_url: Some("http://127.0.0.1:9".into()),
        ..InitOptions::default()
    };
    let outcome = project::init(&spec, tmp.path(), &options).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0]
            .message
            .contains("`x-wso2-production-endpoints` is overridden")
    );
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z/{}$#~0-9._-]{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("#/components/schemas/A"),
            Just("#/paths/~1a"),
            Just("other.yaml#/x"),
            Just("#/"),
            Just("#"),
            Just("http://x/y"),
            Just("../x.yaml"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("$ref".to_string()),
            Just("paths".to_string()),
            Just("get".to_string()),
            Just("parameters".to_string()),
            Just("security".to_string()),
            Just("servers".to_string()),
            Just("operationId".to_string()),
            Just("x-wso2-production-endpoints".to_string()),
            Just("x-mgw-upstream".to_string()),
            Just("/a/{b}".to_string()),
            Just("components".to_string()),
            "[a-z{}/$-]{0,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

// 256 cases each (proptest's default); `PROPTEST_CASES=N` runs more.
proptest! {
    #[test]
    fn arbitrary_text_as_a_spec_never_panics(text in "\\PC{0,400}") {
        let _ = openapi::parse_spec_text("api.yaml", &text);
        let _ = openapi::parse_spec_text("api.json", &text);
    }

    #[test]
    fn yaml_like_text_as_a_spec_or_manifest_never_panics(text in "([-:{}\\[\\],&*!|>'\"#%@ \n\ta-z0-9$/~.]){0,300}") {
        let _ = openapi::parse_spec_text("api.yaml", &text);
        let _ = project::manifest::parse_manifest(&text);
        let _ = project::wso2_policies::parse("policies.yaml", &text);
    }

    #[test]
    fn wso2_policies_shaped_text_never_panics(
        name in "[A-Za-z0-9]{0,6}",
        count in "-?[0-9]{0,22}|x|",
        unit in "min|hour|sec|year|",
        section in "resourcePolicies|subscriptionPolicies|other",
    ) {
        let text = format!("{section}:\n  - {name}:\n     count: {count}\n     unitTime: {count}\n     timeUnit: {unit}\n     stopOnQuota: false\n");
        let _ = project::wso2_policies::parse("policies.yaml", &text);
    }

    #[test]
    fn arbitrary_documents_as_a_spec_never_panic(
        paths in json_value(),
        rest in json_value(),
        version in prop_oneof![Just("3.0.3"), Just("3.1.0"), Just("2.0")],
    ) {
        let key = if version == "2.0" { "swagger" } else { "openapi" };
        let doc = serde_json::json!({
            key: version,
            "info": {"title": "t", "version": "1"},
            "paths": paths,
            "components": rest.clone(),
            "x-wso2-production-endpoints": rest,
        });
        let json = doc.to_string();
        let _ = openapi::parse_spec_text("api.json", &json);
    }
}

/// One rule per fact: a base path `mgw validate` refuses is refused by the gateway's
/// own check with the same message, and `mgw validate` points at the line.
#[test]
fn bad_base_paths_are_refused_by_validate_exactly_as_the_gateway_refuses_them() {
    let good = project::build(&example("petstore")).unwrap().bundle;
    for bad in [
        "/petstore/../admin",
        "/petstore//v1",
        "/pet store",
        "/a/%2e%2e",
    ] {
        let rule = mgw_bundle::normalize_base_path(bad).unwrap_err();

        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&example("petstore"), tmp.path());
        let yaml = tmp.path().join("mgw.yaml");
        let text = std::fs::read_to_string(&yaml).unwrap();
        assert!(text.contains("\n    basePath: /petstore/v1\n"));
        let text = text.replace(
            "\n    basePath: /petstore/v1\n",
            &format!("\n    basePath: \"{bad}\"\n"),
        );
        std::fs::write(&yaml, text).unwrap();
        let e = failure(tmp.path());
        assert_contains(
            &e,
            &[&format!("mgw.yaml:71:15: `apis[0].basePath`: {rule}")],
        );

        let mut b = good.clone();
        b.apis[0].base_path = bad.into();
        let start = Config::from_bundle(&b, String::new(), Some(&no_env()));
        let Err(mgw_bundle::BundleError::Invalid(problems)) = start else {
            panic!("the gateway accepted base path `{bad}`");
        };
        assert!(
            problems
                .iter()
                .any(|p| p.key == "apis[0].basePath" && p.message == rule),
            "{bad}: {problems:?}"
        );
    }
}

fn no_env() -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::new()
}

/// Every example and fixture that builds is a bundle the gateway starts with: the
/// canonical bytes are read back as the gateway reads its file and checked with the
/// deployment environment's defaults (`${VAR:-default}`).
#[test]
fn everything_that_builds_starts_in_the_gateway() {
    let mut dirs = Vec::new();
    for parent in [
        root().join("..").join("examples"),
        root().join("tests").join("fixtures"),
    ] {
        for entry in std::fs::read_dir(&parent).unwrap() {
            let path = entry.unwrap().path();
            if path.join("mgw.yaml").is_file() {
                dirs.push(path);
            }
        }
    }
    dirs.sort();
    let mut started = Vec::new();
    for dir in &dirs {
        let is_example = dir.parent().is_some_and(|p| p.ends_with("examples"));
        let compiled = match project::build(dir) {
            Ok(c) => c,
            Err(e) => {
                assert!(!is_example, "example {} does not build: {e}", dir.display());
                continue;
            }
        };
        let bytes = compiled.bundle.to_canonical_json();
        let bundle = Bundle::from_json(&bytes).unwrap();
        if let Err(e) = Config::from_bundle(&bundle, digest_of(&bytes), Some(&no_env())) {
            panic!(
                "{} validates but the gateway refuses it: {e}",
                dir.display()
            );
        }
        started.push(dir.file_name().unwrap().to_string_lossy().into_owned());
    }
    for example in [
        "petstore",
        "petstore-jwt",
        "petstore-ratelimit",
        "wso2-petstore",
    ] {
        assert!(started.iter().any(|s| s == example), "{started:?}");
    }
}

#[test]
fn init_scaffold_comments_for_platforms_validation_mock_and_transforms_build_when_uncommented() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = fixture("openapi31").join("apis/api.yaml");
    let outcome = project::init(&spec, tmp.path(), &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    let manifest = tmp.path().join("mgw.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Uncomment the optional blocks the scaffold offers (and only those).
    let starts = [
        "  # platforms:",
        "    # validation:",
        "    # mock:",
        "    # transforms:",
    ];
    let mut in_block = false;
    let mut uncommented = 0;
    let enabled: String = text
        .lines()
        .map(|l| {
            let start = starts.iter().any(|s| l.starts_with(s));
            in_block = start || (in_block && l.starts_with("    #   "));
            if in_block {
                uncommented += 1;
                l.replacen("# ", "", 1)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(uncommented, 8, "{enabled}");
    std::fs::write(&manifest, enabled).unwrap();
    let c = project::build(tmp.path()).unwrap();
    assert_eq!(c.summary.platforms.len(), 2);
    let routes = &c.summary.apis[0].routes;
    assert!(!routes.is_empty());
    assert!(routes.iter().all(|r| r.validates && r.mock), "{routes:?}");
}

#[test]
fn init_leaves_out_operations_the_gateway_cannot_serve_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("api.yaml");
    // As OpenAI's document does: a second operation told apart by a query.
    std::fs::write(
        &spec,
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /responses:\n    post: {operationId: create, responses: {'200': {description: ok}}}\n  /responses?beta=true:\n    post: {operationId: betaCreate, responses: {'200': {description: ok}}}\n",
    )
    .unwrap();
    let out = tmp.path().join("gw");
    let outcome = project::init(&spec, &out, &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert!(
        outcome.warnings.iter().any(|w| w
            .message
            .starts_with("1 operation(s) of the spec cannot be served")),
        "{:?}",
        outcome.warnings
    );
    let text = std::fs::read_to_string(out.join("mgw.yaml")).unwrap();
    assert!(
        text.contains(
            "    #   betaCreate: path `/responses?beta=true` must not contain a query or fragment\n    exclude:\n      operations: [betaCreate]\n"
        ),
        "{text}"
    );
    let c = project::build(&out).unwrap();
    assert_eq!(c.summary.routes, 1);
}

#[test]
fn init_leaves_out_an_operation_on_another_operations_path_and_says_which_serves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("api.yaml");
    // As Xero's document does: one path twice, told apart by the value only.
    std::fs::write(
        &spec,
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /files/{FileID}:\n    get: {operationId: byId, parameters: [{name: FileID, in: path, required: true, schema: {type: string, format: uuid}}], responses: {'200': {description: ok}}}\n  /files/{FileName}:\n    get: {operationId: byName, parameters: [{name: FileName, in: path, required: true, schema: {type: string}}], responses: {'200': {description: ok}}}\n    delete: {operationId: remove, parameters: [{name: FileName, in: path, required: true, schema: {type: string}}], responses: {'204': {description: gone}}}\n",
    )
    .unwrap();
    let out = tmp.path().join("gw");
    let outcome = project::init(&spec, &out, &InitOptions::default()).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert!(
        outcome.warnings.iter().any(|w| w
            .message
            .starts_with("1 operation(s) of the spec cannot be served")),
        "{:?}",
        outcome.warnings
    );
    let text = std::fs::read_to_string(out.join("mgw.yaml")).unwrap();
    assert!(
        text.contains(
            "    #   byName: `GET /files/{FileName}` is `/files/{FileID}` of operation `byId` with other parameter names (OpenAPI does not allow that); its requests reach `byId`\n    exclude:\n      operations: [byName]\n"
        ),
        "{text}"
    );
    let c = project::build(&out).unwrap();
    let routes: Vec<_> = c.summary.apis[0]
        .routes
        .iter()
        .map(|r| r.operation_id.as_str())
        .collect();
    assert_eq!(routes, ["byId", "remove"]);
}
