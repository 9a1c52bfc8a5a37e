//! Finding the static gateway binary to bake into an image, and checking that it
//! can run in an image built FROM scratch (a static ELF, no interpreter).
//!
//! A dynamically linked binary would build a perfectly valid image that fails at
//! start with "no such file or directory"; this module refuses it at build time.

use std::path::{Path, PathBuf};

use crate::platform::{self, Platform};

/// Where the binary sits inside every image.
pub const IMAGE_PATH: &str = "/usr/local/bin/mgw-gateway";

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("no {platform} gateway binary found (looked at {}); build one with `make gateway` or pass `--gateway-binary {platform}=PATH`", .candidates.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "))]
    NotFound {
        platform: Platform,
        candidates: Vec<PathBuf>,
    },
    #[error("cannot read gateway binary `{path}`")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gateway binary `{path}` is not a 64-bit little-endian ELF executable")]
    NotElf { path: PathBuf },
    #[error(
        "gateway binary `{path}` is dynamically linked (it asks for `{interpreter}`); images are built FROM scratch, so build it static: `make gateway`"
    )]
    Dynamic { path: PathBuf, interpreter: String },
    #[error("gateway binary `{path}` is for an unsupported machine type {machine:#x}")]
    Machine { path: PathBuf, machine: u16 },
}

/// The binary for `platform`: the explicit path, else the workspace's musl
/// release build for it next to this executable's target dir, else (for the
/// host's platform) `mgw-gateway` beside `mgw`.
pub fn locate(explicit: Option<&Path>, platform: Platform) -> Result<PathBuf, BinaryError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            // target/{debug,release}/mgw → target/<musl>/release/mgw-gateway
            if let Some(target) = dir.parent() {
                candidates.push(platform::workspace_binary(target, platform));
            }
            if platform == Platform::host() {
                candidates.push(dir.join("mgw-gateway"));
            }
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(BinaryError::NotFound {
            platform,
            candidates,
        })
}

/// Checks the binary is a static ELF and returns its OCI architecture (`amd64`, `arm64`).
pub fn check(path: &Path) -> Result<&'static str, BinaryError> {
    let bytes = std::fs::read(path).map_err(|source| BinaryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let not_elf = || BinaryError::NotElf {
        path: path.to_path_buf(),
    };
    // ELF64, little-endian.
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let machine = u16_at(18).ok_or_else(not_elf)?;
    let arch = match machine {
        0x3e => "amd64",
        0xb7 => "arm64",
        other => {
            return Err(BinaryError::Machine {
                path: path.to_path_buf(),
                machine: other,
            });
        }
    };
    let phoff = usize::try_from(u64_at(0x20).ok_or_else(not_elf)?).map_err(|_| not_elf())?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(not_elf)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(not_elf)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph).ok_or_else(not_elf)? == PT_INTERP {
            let off =
                usize::try_from(u64_at(ph + 8).ok_or_else(not_elf)?).map_err(|_| not_elf())?;
            let len =
                usize::try_from(u64_at(ph + 32).ok_or_else(not_elf)?).map_err(|_| not_elf())?;
            let interp = bytes.get(off..off.saturating_add(len)).unwrap_or_default();
            return Err(BinaryError::Dynamic {
                path: path.to_path_buf(),
                interpreter: String::from_utf8_lossy(interp)
                    .trim_end_matches('\0')
                    .to_owned(),
            });
        }
    }
    Ok(arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dynamic_and_non_elf() {
        // The test binary itself is dynamically linked (glibc target).
        let me = std::env::current_exe().unwrap();
        match check(&me) {
            Err(BinaryError::Dynamic { interpreter, .. }) => assert!(interpreter.contains("ld-")),
            Ok(_) => {} // a static test build is fine too
            Err(e) => panic!("{e}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, b"#!/bin/sh\n").unwrap();
        assert!(matches!(check(&p), Err(BinaryError::NotElf { .. })));
    }
}
