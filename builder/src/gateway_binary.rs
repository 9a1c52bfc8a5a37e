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
/// Reads the ELF header, the program header table and the interpreter's name
/// only, not the whole (16 MB) binary.
pub fn check(path: &Path) -> Result<&'static str, BinaryError> {
    use std::os::unix::fs::FileExt;
    let read_error = |source| BinaryError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let file_len = file.metadata().map_err(read_error)?.len();
    let not_elf = || BinaryError::NotElf {
        path: path.to_path_buf(),
    };
    // `len` bytes at `offset`; `None` when they are not all in the file.
    let read_at = |offset: u64, len: u64| -> Result<Option<Vec<u8>>, BinaryError> {
        if offset.checked_add(len).is_none_or(|end| end > file_len) {
            return Ok(None);
        }
        let mut buf = vec![0; usize::try_from(len).map_err(|_| not_elf())?];
        file.read_exact_at(&mut buf, offset).map_err(read_error)?;
        Ok(Some(buf))
    };
    // ELF64, little-endian.
    let header = read_at(0, 64)?.ok_or_else(not_elf)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u64_at = |b: &[u8], o: usize| {
        u64::from_le_bytes(<[u8; 8]>::try_from(&b[o..o + 8]).expect("8 bytes"))
    };
    let arch = match u16_at(&header, 18) {
        0x3e => "amd64",
        0xb7 => "arm64",
        other => {
            return Err(BinaryError::Machine {
                path: path.to_path_buf(),
                machine: other,
            });
        }
    };
    let phoff = u64_at(&header, 0x20);
    let phentsize = usize::from(u16_at(&header, 0x36));
    let phnum = usize::from(u16_at(&header, 0x38));
    // An ELF64 program header is 56 bytes; the fields read below are within them.
    if phnum > 0 && phentsize < 56 {
        return Err(not_elf());
    }
    let table = read_at(phoff, (phentsize * phnum) as u64)?.ok_or_else(not_elf)?;
    const PT_INTERP: u32 = 3;
    for ph in table.chunks_exact(phentsize.max(1)).take(phnum) {
        if u32_at(ph, 0) == PT_INTERP {
            let (off, len) = (u64_at(ph, 8), u64_at(ph, 32));
            let interp = read_at(off, len)?.unwrap_or_default();
            return Err(BinaryError::Dynamic {
                path: path.to_path_buf(),
                interpreter: String::from_utf8_lossy(&interp)
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
