//! Writing output files: a temporary sibling renamed into place, created with
//! mode 0666 minus the umask like any file a build tool writes.
//!
//! A leaf: it knows only the work-path names of [`crate::scratch`], so every
//! layer (the OCI writer, the pull cache, the commands) can use it without
//! reaching up. It must never leave a half-written file under the final name.

use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

/// A temporary file in `dir` for an output that will be renamed into place. Created
/// with mode 0666 minus the umask, not `tempfile`'s private 0600, so blobs,
/// tarballs and JSON files are readable as users expect (none holds a secret).
pub(crate) fn output_temp_file(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Why [`write_atomic`] failed: the action and the path; the OS error is the
/// source (`{:#}` prints it after a colon).
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`", path.display())]
pub struct WriteError {
    pub action: &'static str,
    pub path: std::path::PathBuf,
    #[source]
    pub source: io::Error,
}

/// Writes a file atomically: a temporary sibling (a `.<name>.tmp-<pid>-*` work
/// path, removed on Ctrl-C and swept after a crash) renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    crate::scratch::sweep(dir, name);
    let err = |action, path: &Path| {
        let path = path.to_owned();
        move |source| WriteError {
            action,
            path,
            source,
        }
    };
    let mut tmp = output_temp_file(dir, &crate::scratch::prefix(name, "tmp"))
        .map_err(err("write in", dir))?;
    let _scratch = crate::scratch::register(tmp.path());
    io::Write::write_all(&mut tmp, bytes).map_err(err("write", path))?;
    tmp.as_file().sync_all().ok();
    tmp.persist(path).map_err(|e| err("write", path)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_work_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("build.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["build.json"]);
        let err = write_atomic(&dir.path().join("missing/x"), b"x").unwrap_err();
        assert!(err.to_string().contains("cannot write in"), "{err}");
    }
}
