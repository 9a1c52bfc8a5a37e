//! WSO2 interceptors (`x-wso2-request-interceptor`) name native filters of the
//! project's `runtime/`: without `runtime/`, `mgw validate` refuses the project at
//! the line naming one; with a gateway that does not register it (here the stock
//! gateway, passed as the runtime's build with `--gateway-binary`, so no cargo
//! runs), `mgw build` refuses it at that line too, writing no image.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{MGW, gateway};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `examples/petstore` with `x-wso2-request-interceptor: audit` on `listPets`.
fn project(dir: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/petstore");
    std::fs::create_dir_all(dir.join("apis")).unwrap();
    std::fs::copy(example.join("mgw.yaml"), dir.join("mgw.yaml")).unwrap();
    let spec = std::fs::read_to_string(example.join("apis/petstore.yaml")).unwrap();
    let named = spec.replacen(
        "      operationId: listPets\n",
        "      operationId: listPets\n      x-wso2-request-interceptor: audit\n",
        1,
    );
    assert_ne!(named, spec);
    std::fs::write(dir.join("apis/petstore.yaml"), named).unwrap();
}

#[test]
fn an_interceptor_needs_a_runtime_that_registers_its_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gw");
    project(&dir);
    let line = "apis/petstore.yaml:14:7";

    let validate = Command::new(MGW)
        .arg("validate")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(64), "{}", text(&validate));
    let t = text(&validate);
    assert!(t.contains(line), "{t}");
    assert!(
        t.contains("`x-wso2-request-interceptor: audit` names a native filter, and this project has no `runtime/` crate: run `mgw init --runtime`"),
        "{t}"
    );

    // A runtime crate (never compiled: the executable is given).
    std::fs::create_dir_all(dir.join("runtime")).unwrap();
    std::fs::write(dir.join("runtime/Cargo.toml"), "[package]\n").unwrap();
    let validate = Command::new(MGW)
        .arg("validate")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(validate.status.success(), "{}", text(&validate));
    let out = tmp.path().join("out");
    let build = Command::new(MGW)
        .arg("build")
        .arg("--out")
        .arg(&out)
        .arg("--gateway-binary")
        .arg(gateway())
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(build.status.code(), Some(64), "{}", text(&build));
    let t = text(&build);
    assert!(t.contains(line), "{t}");
    assert!(
        t.contains("`x-wso2-request-interceptor: audit` names a native filter that `runtime/` does not register (it has no filter)"),
        "{t}"
    );
    assert!(!out.join("petstore/oci").exists(), "an image was written");
}
