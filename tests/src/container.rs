//! A gateway image run the way users run it: unpacked by umoci and started by
//! runc ([`RuncContainer`]), or started by `docker run` on a harness dockerd
//! ([`DockerContainer`]). Both use the host network with the gateway's listeners
//! on free loopback ports, wait for `/readyz` with a deadline and fail with the
//! container's logs, and stop and remove the container when dropped, also when
//! an assertion failed first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{Dockerd, free_port, http_get, require, run, wait_for};

/// A container name unique on this machine for this run.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The gateway's two listeners, on free loopback ports.
fn listeners() -> (SocketAddr, SocketAddr) {
    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    (addr(free_port()), addr(free_port()))
}

/// Is the gateway at `admin` ready?
fn ready(admin: SocketAddr) -> bool {
    http_get(admin, "/readyz", &[]).is_ok_and(|(status, _)| status == 200)
}

/// Unpacks `layout:tag` (an OCI layout) with umoci into `into/bundle`, an OCI
/// runtime bundle; returns its path.
pub fn unpack(layout: &Path, tag: &str, into: &Path) -> Result<PathBuf> {
    require("umoci", "apt-get install umoci");
    let bundle = into.join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&bundle))?;
    Ok(bundle)
}

/// An image unpacked and run by runc: host network, read-only root, no
/// terminal, its own runc state directory. Killed and deleted on drop.
pub struct RuncContainer {
    dir: tempfile::TempDir,
    bundle: PathBuf,
    state: PathBuf,
    id: String,
    pub api: SocketAddr,
    pub admin: SocketAddr,
}

impl RuncContainer {
    /// Unpacks `layout:tag` and starts it detached, with `env` added to the
    /// image's environment (and `MGW_LISTEN`, `MGW_ADMIN_LISTEN`).
    pub fn start(layout: &Path, tag: &str, env: &[(&str, &str)]) -> Result<RuncContainer> {
        require("runc", "apt-get install runc");
        // Short paths: runc's state holds a unix socket (108 bytes at most).
        let dir = tempfile::Builder::new()
            .prefix("mgwrunc")
            .tempdir_in("/tmp")?;
        let bundle = unpack(layout, tag, dir.path())?;
        let (api, admin) = listeners();

        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path)?)
            .with_context(|| format!("`{}` is not JSON", cfg_path.display()))?;
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .context("config.json has no linux.namespaces")?
            .retain(|n| n["type"] != "network");
        cfg["root"]["readonly"] = true.into();
        cfg["process"]["terminal"] = false.into();
        let vars = cfg["process"]["env"]
            .as_array_mut()
            .context("config.json has no process.env")?;
        vars.push(format!("MGW_LISTEN={api}").into());
        vars.push(format!("MGW_ADMIN_LISTEN={admin}").into());
        vars.extend(env.iter().map(|(k, v)| format!("{k}={v}").into()));
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg)?)?;

        let log = std::fs::File::create(dir.path().join("container.log"))?;
        let container = RuncContainer {
            state: dir.path().join("state"),
            id: unique_name("mgw-test"),
            bundle,
            dir,
            api,
            admin,
        };
        let status = Command::new("runc")
            .arg("--root")
            .arg(&container.state)
            .args(["run", "--detach", "--bundle"])
            .arg(&container.bundle)
            .arg("--pid-file")
            .arg(container.dir.path().join("pid"))
            .arg(&container.id)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .context("cannot start runc")?;
        if !status.success() {
            bail!("runc run failed ({status}):\n{}", container.logs());
        }
        Ok(container)
    }

    /// The unpacked OCI runtime bundle.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// What the container wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("container.log")).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200; fails with the logs when the
    /// container stops first or after `limit`.
    pub fn wait_ready(&self, limit: Duration) -> Result<()> {
        match wait_for(limit, || {
            if ready(self.admin) {
                Some(true)
            } else {
                self.stopped().then_some(false)
            }
        }) {
            Some(true) => Ok(()),
            Some(false) => bail!("the gateway in runc stopped:\n{}", self.logs()),
            None => bail!(
                "the gateway in runc was not ready within {limit:?}:\n{}",
                self.logs()
            ),
        }
    }

    fn stopped(&self) -> bool {
        let out = self.runc(&["state", &self.id]);
        String::from_utf8_lossy(&out.stdout).contains("\"stopped\"")
    }

    /// The container's init process on the host.
    pub fn pid(&self) -> Result<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("pid"))?;
        text.trim()
            .parse()
            .with_context(|| format!("bad pid file {text:?}"))
    }

    /// Runs `runc ARGS` against this container's state directory.
    pub fn runc(&self, args: &[&str]) -> Output {
        Command::new("runc")
            .arg("--root")
            .arg(&self.state)
            .args(args)
            .output()
            .expect("runc was found at start")
    }

    /// Sends SIGTERM and waits until runc reports the container stopped.
    pub fn stop(&self, limit: Duration) -> Result<()> {
        let kill = self.runc(&["kill", &self.id, "TERM"]);
        if !kill.status.success() {
            bail!("runc kill: {}", String::from_utf8_lossy(&kill.stderr));
        }
        let stopped = wait_for(limit, || self.stopped().then_some(()));
        if stopped.is_none() {
            bail!(
                "the container did not stop within {limit:?} of SIGTERM:\n{}",
                self.logs()
            );
        }
        Ok(())
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = self.runc(&["kill", &self.id, "KILL"]);
        let _ = self.runc(&["delete", "--force", &self.id]);
    }
}

/// An image run by `docker run -d` on a harness [`Dockerd`]: host network,
/// read-only root, all capabilities dropped, no new privileges. Removed (`rm
/// -f`) on drop.
pub struct DockerContainer<'d> {
    docker: &'d Dockerd,
    name: String,
    pub api: SocketAddr,
    pub admin: SocketAddr,
}

impl<'d> DockerContainer<'d> {
    /// Starts `image` (already loaded or pullable) with `env` (and
    /// `MGW_LISTEN`, `MGW_ADMIN_LISTEN`).
    pub fn start(docker: &'d Dockerd, image: &str, env: &[(&str, &str)]) -> Result<Self> {
        let (api, admin) = listeners();
        let container = DockerContainer {
            docker,
            name: unique_name("mgw-test"),
            api,
            admin,
        };
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &container.name,
            "--network",
            "host",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        .map(str::to_owned)
        .to_vec();
        let vars = [
            ("MGW_LISTEN", api.to_string()),
            ("MGW_ADMIN_LISTEN", admin.to_string()),
        ];
        for (k, v) in vars
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(env.iter().copied())
        {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(image.to_owned());
        docker.docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(container)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `docker logs`: the gateway's stdout (analytics) and stderr (its log).
    pub fn logs(&self) -> String {
        match self.docker.docker(&["logs", &self.name]) {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("(no logs: {e:#})"),
        }
    }

    /// Waits until `/readyz` answers 200; fails with the logs when the
    /// container stops first or after `limit`.
    pub fn wait_ready(&self, limit: Duration) -> Result<()> {
        match wait_for(limit, || {
            if ready(self.admin) {
                Some(true)
            } else {
                (self.inspect("{{.State.Running}}").ok()? == "false").then_some(false)
            }
        }) {
            Some(true) => Ok(()),
            Some(false) => bail!("the gateway in docker stopped:\n{}", self.logs()),
            None => bail!(
                "the gateway in docker was not ready within {limit:?}:\n{}",
                self.logs()
            ),
        }
    }

    /// `docker stop` (the image's StopSignal, then SIGKILL after `timeout`)
    /// and the exit code.
    pub fn stop(&self, timeout: Duration) -> Result<i64> {
        let secs = timeout.as_secs().to_string();
        self.docker.docker(&["stop", "-t", &secs, &self.name])?;
        let out = self
            .docker
            .docker(&["inspect", "-f", "{{.State.ExitCode}}", &self.name])?;
        let code = String::from_utf8_lossy(&out.stdout);
        code.trim()
            .parse()
            .with_context(|| format!("bad exit code {code:?}"))
    }

    /// `docker inspect -f FORMAT` of the container, trimmed.
    pub fn inspect(&self, format: &str) -> Result<String> {
        let out = self.docker.docker(&["inspect", "-f", format, &self.name])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for DockerContainer<'_> {
    fn drop(&mut self) {
        let _ = self.docker.docker(&["rm", "-f", &self.name]);
    }
}
