//! A project's native-filter runtime (`runtime/`, a Cargo crate whose `main`
//! registers filters and runs the gateway library): compiling it into the static
//! gateway executable an image carries, and asking that executable which filters
//! it has (the image's [`LABEL_FILTERS`]).
//!
//! The build is `cargo build --release --locked --target <musl triple>` run in
//! `runtime/` (so its `rust-toolchain.toml` picks the compiler), `cargo zigbuild`
//! for arm64 on an amd64 machine (as `make gateway-arm64`), with
//! `SOURCE_DATE_EPOCH` and `--remap-path-prefix` for the project directory and
//! `$CARGO_HOME`, so the executable holds no path of the machine that built it.
//! Cargo's messages go to a log file; a failure names it and quotes its end.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::env::Env;
use crate::platform::Platform;

pub mod scaffold;

/// The runtime crate's directory inside a project.
pub const DIR: &str = "runtime";
/// The image label listing the filters the gateway carries, comma-separated in
/// registration order.
pub const LABEL_FILTERS: &str = "io.mgw.filters";
/// The executable a runtime crate with several binaries must name its gateway.
pub const BINARY_NAME: &str = "mgw-gateway";
/// What `--remap-path-prefix` maps the project directory and `$CARGO_HOME` to.
const REMAPPED_PROJECT: &str = "/mgw-project";
const REMAPPED_CARGO_HOME: &str = "/cargo";
/// Lines of cargo's output quoted in a compile error.
const TAIL_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot run `cargo` to compile `{dir}`: {error}; install Rust (https://rustup.rs), or build the runtime yourself and pass it with `--gateway-binary`"
    )]
    CargoMissing {
        dir: PathBuf,
        // In the message, not the error chain: it reads best before the advice.
        error: std::io::Error,
    },
    #[error("cannot write cargo's log `{path}`")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "compiling `{dir}` for {platform} failed ({status}); cargo's output is in `{log}`, ending with:\n{tail}"
    )]
    Compile {
        dir: PathBuf,
        platform: Platform,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "compiling `{dir}` for {platform} gave no executable; `runtime/` needs a `[[bin]]` (or `src/main.rs`)"
    )]
    NoBinary { dir: PathBuf, platform: Platform },
    #[error(
        "`{dir}` builds several executables ({names}); name the gateway's `[[bin]]` `{BINARY_NAME}`"
    )]
    Ambiguous { dir: PathBuf, names: String },
    #[error(
        "compiling `{dir}` for {platform} on a {host} machine needs `cargo-zigbuild` and Zig (`pip install ziglang cargo-zigbuild`; with this repository, `scripts/install-zigbuild.sh` puts both in `target/tools`), or build it on a {platform} machine and pass it with `--gateway-binary {platform}=PATH`"
    )]
    CrossToolsMissing {
        dir: PathBuf,
        platform: Platform,
        host: Platform,
    },
    #[error("cannot list the filters of `{binary}`: {detail}")]
    ListFilters { binary: PathBuf, detail: String },
}

/// The project's `runtime/` directory, when it holds a `Cargo.toml`.
pub fn crate_dir(project: &Path) -> Option<PathBuf> {
    let dir = project.join(DIR);
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// How [`compile`] runs cargo.
#[derive(Debug, Clone)]
pub struct CargoBuild<'a> {
    /// The `runtime/` directory ([`crate_dir`]).
    pub dir: &'a Path,
    /// Where cargo's log goes (`runtime-<arch>.log`).
    pub log_dir: &'a Path,
    /// `SOURCE_DATE_EPOCH` for build scripts and the compiler.
    pub source_date_epoch: u64,
    /// For `RUSTFLAGS`/`CARGO_ENCODED_RUSTFLAGS` and `$CARGO_HOME`.
    pub env: &'a Env,
}

/// Compiles the runtime crate for `platform` and returns its executable.
pub fn compile(b: &CargoBuild<'_>, platform: Platform) -> Result<PathBuf, RuntimeError> {
    let dir = std::path::absolute(b.dir).unwrap_or_else(|_| b.dir.to_path_buf());
    std::fs::create_dir_all(b.log_dir).map_err(|source| RuntimeError::Log {
        path: b.log_dir.to_path_buf(),
        source,
    })?;
    let log = b
        .log_dir
        .join(format!("runtime-{}.log", platform.architecture()));
    let log_file = std::fs::File::create(&log).map_err(|source| RuntimeError::Log {
        path: log.clone(),
        source,
    })?;

    let mut cmd = Command::new("cargo");
    if platform == Platform::host() {
        cmd.arg("build");
    } else {
        // arm64 from another machine: cargo-zigbuild, Zig as the C cross toolchain.
        let zigbuild = find_program("cargo-zigbuild").ok_or(RuntimeError::CrossToolsMissing {
            dir: dir.clone(),
            platform,
            host: Platform::host(),
        })?;
        if let Some(path) = path_for_zig(&zigbuild) {
            cmd.env("PATH", path);
        }
        cmd.arg("zigbuild");
    }
    cmd.args(["--release", "--locked", "--target", platform.musl_target()])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(&dir)
        // The crate's rust-toolchain.toml, not the toolchain of whatever runs mgw.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTFLAGS")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags(b.env, &dir))
        .env("CFLAGS", cflags(b.env, &dir))
        .env("SOURCE_DATE_EPOCH", b.source_date_epoch.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut child = cmd.spawn().map_err(|error| RuntimeError::CargoMissing {
        dir: dir.clone(),
        error,
    })?;
    let manifest = dir.join("Cargo.toml");
    let mut executables = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(exe) = artifact_executable(&line, &manifest) {
                executables.push(exe);
            }
        }
    }
    let status = child.wait().map_err(|error| RuntimeError::CargoMissing {
        dir: dir.clone(),
        error,
    })?;
    if !status.success() {
        return Err(RuntimeError::Compile {
            dir,
            platform,
            status: status.to_string(),
            tail: tail(&log),
            log,
        });
    }
    pick_executable(executables, &dir, platform)
}

/// The user's flags (`CARGO_ENCODED_RUSTFLAGS`, else `RUSTFLAGS`) and the path
/// remaps, `\x1f`-separated.
fn rustflags(env: &Env, dir: &Path) -> String {
    let mut flags: Vec<String> = match env.var("CARGO_ENCODED_RUSTFLAGS") {
        Some(f) => f.split('\x1f').map(str::to_owned).collect(),
        None => env
            .var("RUSTFLAGS")
            .map(|f| f.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    flags.extend(
        remaps(env, dir).map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display())),
    );
    flags.join("\x1f")
}

/// The user's `CFLAGS` and the same remaps for C code build scripts compile
/// (`ring`, `mimalloc`), as `-ffile-prefix-map`.
fn cflags(env: &Env, dir: &Path) -> String {
    let mut flags: Vec<String> = env.var("CFLAGS").into_iter().collect();
    flags.extend(
        remaps(env, dir).map(|(from, to)| format!("-ffile-prefix-map={}={to}", from.display())),
    );
    flags.join(" ")
}

/// What builds would otherwise embed: the project directory (`runtime/`'s
/// parent) and `$CARGO_HOME` (registry sources).
fn remaps(env: &Env, dir: &Path) -> impl Iterator<Item = (PathBuf, &'static str)> {
    let project = dir.parent().unwrap_or(dir).to_path_buf();
    let cargo_home = env
        .var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    std::iter::once((project, REMAPPED_PROJECT)).chain(cargo_home.map(|h| (h, REMAPPED_CARGO_HOME)))
}

/// `(bin name, path)` of an executable cargo built for the crate at `manifest`.
fn artifact_executable(line: &str, manifest: &Path) -> Option<(String, PathBuf)> {
    let msg: serde_json::Value = serde_json::from_str(line).ok()?;
    if msg["reason"] != "compiler-artifact" || Path::new(msg["manifest_path"].as_str()?) != manifest
    {
        return None;
    }
    let exe = msg["executable"].as_str()?;
    let name = msg["target"]["name"].as_str().unwrap_or_default();
    Some((name.to_owned(), PathBuf::from(exe)))
}

fn pick_executable(
    mut executables: Vec<(String, PathBuf)>,
    dir: &Path,
    platform: Platform,
) -> Result<PathBuf, RuntimeError> {
    executables.dedup();
    match executables.len() {
        0 => Err(RuntimeError::NoBinary {
            dir: dir.to_path_buf(),
            platform,
        }),
        1 => Ok(executables.remove(0).1),
        _ => executables
            .iter()
            .find(|(name, _)| name == BINARY_NAME)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| RuntimeError::Ambiguous {
                dir: dir.to_path_buf(),
                names: executables
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
    }
}

/// The last [`TAIL_LINES`] lines of the log.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// The filters compiled into `binary` (a `platform` executable), as its
/// `--list-filters` prints them: run directly on its own platform, under
/// `qemu-aarch64-static` (or `qemu-aarch64`) for arm64 on another machine.
pub fn list_filters(binary: &Path, platform: Platform) -> Result<Vec<String>, RuntimeError> {
    let fail = |detail: String| RuntimeError::ListFilters {
        binary: binary.to_path_buf(),
        detail,
    };
    let mut cmd = if platform == Platform::host() {
        Command::new(binary)
    } else {
        let qemu = ["qemu-aarch64-static", "qemu-aarch64"]
            .into_iter()
            .find(|q| which(q))
            .ok_or_else(|| {
                fail(format!(
                    "it is a {platform} executable and neither `qemu-aarch64-static` nor `qemu-aarch64` is installed (apt-get install qemu-user-static), or build {} too",
                    Platform::host()
                ))
            })?;
        let mut c = Command::new(qemu);
        c.arg(binary);
        c
    };
    let out = cmd
        .arg("--list-filters")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "`--list-filters` ended with {}: {}; is it a gateway built with `mgw_gateway::cli::main_with`?",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

fn which(program: &str) -> bool {
    find_program(program).is_some()
}

/// `program`'s path on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The `PATH` for `cargo zigbuild` when Zig itself is not on it but
/// `cargo-zigbuild` was installed with pip into a virtualenv, as
/// `pip install ziglang cargo-zigbuild` does: cargo-zigbuild then finds Zig as
/// `python3 -m ziglang`, which only the virtualenv's Python can import, so that
/// `bin` directory goes first. `None`: leave `PATH` as it is.
fn path_for_zig(zigbuild: &Path) -> Option<std::ffi::OsString> {
    if which("zig") || std::env::var_os("CARGO_ZIGBUILD_ZIG_PATH").is_some() {
        return None;
    }
    let bin = std::fs::canonicalize(zigbuild)
        .ok()?
        .parent()?
        .to_path_buf();
    if !bin.join("python3").exists() && !bin.join("python").exists() {
        return None;
    }
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaps_the_project_and_cargo_home_after_the_users_flags() {
        let env = Env::from_map([("RUSTFLAGS", "-C debuginfo=0"), ("HOME", "/home/u")]);
        let flags = rustflags(&env, Path::new("/src/proj/runtime"));
        assert_eq!(
            flags.split('\x1f').collect::<Vec<_>>(),
            [
                "-C",
                "debuginfo=0",
                "--remap-path-prefix=/src/proj=/mgw-project",
                "--remap-path-prefix=/home/u/.cargo=/cargo",
            ]
        );
        assert_eq!(
            cflags(&env, Path::new("/src/proj/runtime")),
            "-ffile-prefix-map=/src/proj=/mgw-project -ffile-prefix-map=/home/u/.cargo=/cargo"
        );
    }

    #[test]
    fn picks_the_crates_one_executable_or_the_one_named_mgw_gateway() {
        let manifest = Path::new("/p/runtime/Cargo.toml");
        let line = |name: &str, manifest: &str, exe: &str| {
            serde_json::json!({"reason": "compiler-artifact", "manifest_path": manifest,
                "target": {"name": name}, "executable": exe})
            .to_string()
        };
        // A dependency's executable (another manifest) is not the runtime's.
        assert_eq!(
            artifact_executable(&line("x", "/dep/Cargo.toml", "/t/x"), manifest),
            None
        );
        let gw = artifact_executable(
            &line("mgw-gateway", "/p/runtime/Cargo.toml", "/t/gw"),
            manifest,
        )
        .unwrap();
        let tool = ("tool".to_owned(), PathBuf::from("/t/tool"));
        let dir = Path::new("/p/runtime");
        assert_eq!(
            pick_executable(vec![tool.clone(), gw.clone()], dir, Platform::Amd64).unwrap(),
            PathBuf::from("/t/gw")
        );
        let err = pick_executable(
            vec![tool.clone(), ("other".into(), "/t/o".into())],
            dir,
            Platform::Amd64,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`tool`, `other`"), "{err}");
        assert!(matches!(
            pick_executable(Vec::new(), dir, Platform::Amd64),
            Err(RuntimeError::NoBinary { .. })
        ));
    }
}
