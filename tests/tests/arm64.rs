//! The aarch64 gateway `make gateway` cross-compiles (cargo-zigbuild): a static
//! aarch64 ELF that, baked into an image and run under qemu-aarch64-static,
//! starts, answers `/readyz` and proxies a request.

use std::process::Command;
use std::time::Duration;

use mgw_tests::qemu::QemuGateway;
use mgw_tests::*;

/// `(e_machine, has PT_INTERP)` of a 64-bit little-endian ELF, read from its
/// header and program headers.
fn elf_facts(bytes: &[u8]) -> (u16, bool) {
    assert!(
        bytes.len() > 64 && &bytes[..4] == b"\x7fELF",
        "not an ELF file"
    );
    assert_eq!((bytes[4], bytes[5]), (2, 1), "not ELF64 little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    let phoff = usize::try_from(u64_at(0x20)).unwrap();
    let (phentsize, phnum) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP);
    (u16_at(18), interp)
}

#[test]
fn arm64_gateway_is_a_static_aarch64_elf_that_serves_under_qemu() {
    let bin = gateway_bin_arm64();
    const EM_AARCH64: u16 = 0xb7;
    let (machine, dynamic) = elf_facts(&std::fs::read(&bin).unwrap());
    assert_eq!(machine, EM_AARCH64, "`{}` is not aarch64", bin.display());
    assert!(!dynamic, "`{}` asks for an interpreter", bin.display());

    let out = tempfile::tempdir().unwrap();
    let built = run(Command::new(mgw_bin())
        .args(["build", "--output", "json", "--out"])
        .arg(out.path())
        .args(["--platform", "linux/arm64", "--gateway-binary"])
        .arg(format!("linux/arm64={}", bin.display()))
        .arg(root().join("examples/petstore")))
    .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&built.stdout).unwrap();
    assert_eq!(meta["architecture"], "arm64", "{meta}");
    let tag = meta["tag"].as_str().unwrap();

    let backend = Backend::start();
    let upstream = format!("http://{}/v1", backend.addr);
    let mut gw = QemuGateway::start(
        &out.path().join("petstore/oci"),
        tag,
        &[("PETSTORE_UPSTREAM", &upstream)],
    )
    .unwrap();
    gw.wait_ready(Duration::from_secs(60)).unwrap();
    let (status, body) = http_get(gw.api, "/petstore/v1/pets/7", &[]).unwrap();
    assert_eq!(status, 200, "{body}\n{}", gw.logs());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/v1/pets/7");
}
