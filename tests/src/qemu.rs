//! An arm64 image's gateway run on an x86_64 host: unpacked by umoci, its
//! entrypoint started under `qemu-aarch64-static` (user-mode emulation, no
//! binfmt registration needed) with the image's environment, the gateway's
//! listeners on free loopback ports, and every absolute path argument that the
//! rootfs holds (the binary, `--bundle`) taken from the rootfs. Killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::container::unpack;
use crate::{Guard, free_port, http_get, require, wait_for};

/// The gateway of an unpacked image, running under qemu-aarch64-static.
pub struct QemuGateway {
    dir: tempfile::TempDir,
    child: Guard,
    pub api: SocketAddr,
    pub admin: SocketAddr,
}

impl QemuGateway {
    /// Unpacks `layout:tag` and starts its entrypoint under qemu, with `env`
    /// added to the image's environment (and `MGW_LISTEN`, `MGW_ADMIN_LISTEN`).
    pub fn start(layout: &Path, tag: &str, env: &[(&str, &str)]) -> Result<QemuGateway> {
        require("qemu-aarch64-static", "apt-get install qemu-user-static");
        let dir = tempfile::tempdir()?;
        let bundle = unpack(layout, tag, dir.path())?;
        let rootfs = bundle.join("rootfs");
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
        let in_rootfs = |arg: &str| -> String {
            let inside = rootfs.join(arg.trim_start_matches('/'));
            if arg.starts_with('/') && inside.exists() {
                inside.display().to_string()
            } else {
                arg.to_owned()
            }
        };
        let args: Vec<String> = cfg["process"]["args"]
            .as_array()
            .context("config.json has no process.args")?
            .iter()
            .filter_map(|a| a.as_str())
            .map(in_rootfs)
            .collect();
        let api = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut cmd = Command::new("qemu-aarch64-static");
        cmd.args(&args).env_clear();
        for var in cfg["process"]["env"].as_array().into_iter().flatten() {
            if let Some((k, v)) = var.as_str().and_then(|s| s.split_once('=')) {
                cmd.env(k, v);
            }
        }
        cmd.env("MGW_LISTEN", api.to_string())
            .env("MGW_ADMIN_LISTEN", admin.to_string())
            .envs(env.iter().copied());
        let log = std::fs::File::create(dir.path().join("gateway.log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start qemu-aarch64-static")?;
        Ok(QemuGateway {
            dir,
            child: Guard(child),
            api,
            admin,
        })
    }

    /// The unpacked rootfs.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("bundle/rootfs")
    }

    /// What the gateway wrote so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200; fails with the logs when the process
    /// exits first or after `limit` (emulation is slow: give it seconds).
    pub fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let admin = self.admin;
        let child = &mut self.child.0;
        match wait_for(limit, || {
            if http_get(admin, "/readyz", &[]).is_ok_and(|(s, _)| s == 200) {
                Some(true)
            } else {
                child.try_wait().ok().flatten().map(|_| false)
            }
        }) {
            Some(true) => Ok(()),
            Some(false) => bail!("the gateway under qemu exited:\n{}", self.logs()),
            None => bail!(
                "the gateway under qemu was not ready within {limit:?}:\n{}",
                self.logs()
            ),
        }
    }
}
