//! Work files of a build in progress: the hidden `.<name>.tmp-<pid>-*` siblings an
//! output is assembled in before it is renamed into place.
//!
//! They must not outlive the build. Errors remove them (`tempfile` guards); Ctrl-C
//! or SIGTERM removes the ones registered here before the process exits; and a
//! build killed outright (SIGKILL, power loss) leaves them behind, so every build
//! sweeps the ones whose owning process is gone. The owner is the pid in the name,
//! so a sweep never touches the work of a build running concurrently (another
//! process, or this one).
//!
//! Never: remove a path that does not carry a dead process's pid in this module's
//! name pattern.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Paths to remove if the process is interrupted.
static REGISTERED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The prefix of a work path for the output `name`: `.<name>.<kind>-<pid>-`.
pub(crate) fn prefix(name: &str, kind: &str) -> String {
    format!(".{name}.{kind}-{}-", std::process::id())
}

/// Removes `path` if the process is interrupted, until the guard is dropped
/// (the owner has renamed or removed it by then).
#[must_use]
pub(crate) struct Registration(PathBuf);

pub(crate) fn register(path: &Path) -> Registration {
    lock().push(path.to_owned());
    Registration(path.to_owned())
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut paths = lock();
        if let Some(i) = paths.iter().position(|p| *p == self.0) {
            paths.swap_remove(i);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves a usable list.
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on, SIGINT and SIGTERM remove the registered paths and end the
/// process with 130 or 143 (128 + the signal), as the default action would have.
pub fn remove_on_signal() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let (ready, installed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("mgw-signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut int), Ok(mut term)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        return;
                    };
                    let _ = ready.send(());
                    let code = tokio::select! {
                        _ = int.recv() => 130,
                        _ = term.recv() => 143,
                    };
                    for path in lock().drain(..) {
                        remove(&path);
                    }
                    std::process::exit(code);
                });
            });
        if spawned.is_ok() {
            // Until the handlers are in place a signal still ends the process;
            // what it leaves behind is swept by the next build.
            let _ = installed.recv();
        }
    });
}

fn remove(path: &Path) {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return,
    };
    if let Err(error) = result {
        tracing::warn!(path = %path.display(), %error, "cannot remove a work path");
    }
}

/// Removes the work paths of the output `name` in `dir` (of any kind) whose
/// owning process no longer runs. Returns how many it removed.
pub(crate) fn sweep(dir: &Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| owner(n, name)) else {
            continue;
        };
        if pid == own || running(pid) {
            continue;
        }
        tracing::info!(path = %entry.path().display(), pid, "removing the work path of an interrupted build");
        remove(&entry.path());
        removed += 1;
    }
    removed
}

/// The pid in `.<name>.<kind>-<pid>-<random>`.
fn owner(file_name: &str, name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_prefix(name)?;
    let rest = rest.strip_prefix('.')?;
    let (kind, rest) = rest.split_once('-')?;
    if !matches!(kind, "tmp" | "old") {
        return None;
    }
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Is process `pid` alive? Without `/proc` nothing can be told: assume it is.
fn running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(owner(".oci.tmp-123-Ab9xZ", "oci"), Some(123));
        assert_eq!(owner(".oci.old-7-x", "oci"), Some(7));
        assert_eq!(owner(".image.tar.tmp-42-abc.tmp", "image.tar"), Some(42));
        assert_eq!(owner(".oci.tmp-Ab9xZ", "oci"), None);
        assert_eq!(owner(".oci.tmp-12-", "oci"), None);
        assert_eq!(owner(".oci.new-12-x", "oci"), None);
        assert_eq!(owner(".ocix.tmp-12-x", "oci"), None);
        assert_eq!(owner("oci", "oci"), None);
    }

    #[test]
    fn sweep_removes_only_dead_owners() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot be running: above the kernel's pid_max limit (2^22).
        let dead = dir.path().join(".oci.tmp-4194305-abc");
        let mine = dir.path().join(format!("{}abc", prefix("oci", "tmp")));
        let init = dir.path().join(".oci.tmp-1-abc");
        let other = dir.path().join(".other.tmp-4194305-abc");
        for d in [&dead, &mine, &init, &other] {
            std::fs::create_dir_all(d.join("blobs")).unwrap();
        }
        let file = dir.path().join(".oci.old-4194305-x");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(sweep(dir.path(), "oci"), 2);
        assert!(!dead.exists() && !file.exists());
        assert!(mine.exists() && init.exists() && other.exists());
    }
}
