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
    write_atomic_all(&[(path, bytes)])
}

/// [`write_atomic`] for several files: every temporary sibling is written, then
/// all are synced together ([`sync_together`]), then each is renamed into place
/// in order. A failure leaves the files not yet renamed as they were.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<(), WriteError> {
    let err = |action, path: &Path| {
        let path = path.to_owned();
        move |source| WriteError {
            action,
            path,
            source,
        }
    };
    let mut temps = Vec::with_capacity(files.len());
    for &(path, bytes) in files {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        crate::scratch::sweep(dir, name);
        let mut tmp = output_temp_file(dir, &crate::scratch::prefix(name, "tmp"))
            .map_err(err("write in", dir))?;
        let scratch = crate::scratch::register(tmp.path());
        io::Write::write_all(&mut tmp, bytes).map_err(err("write", path))?;
        temps.push((tmp, scratch, path));
    }
    let handles: Vec<&std::fs::File> = temps.iter().map(|(tmp, _, _)| tmp.as_file()).collect();
    sync_together(&handles).ok();
    for (tmp, _scratch, path) in temps {
        tmp.persist(path).map_err(|e| err("write", path)(e.error))?;
    }
    Ok(())
}

/// Makes `files` durable together: their `fsync`s run at once, one thread each,
/// so the filesystem's journal takes them in one commit (ext4 and XFS batch
/// concurrent commits) instead of one commit after another. For the parts of an
/// output about to be renamed into place: the rename must not reach the disk
/// before what it names. Returns the first error.
pub(crate) fn sync_together(files: &[&std::fs::File]) -> io::Result<()> {
    let Some((first, rest)) = files.split_first() else {
        return Ok(());
    };
    std::thread::scope(|scope| {
        let mut results = Vec::with_capacity(files.len());
        let threads: Vec<_> = rest
            .iter()
            .filter_map(|&file| {
                let thread =
                    std::thread::Builder::new().spawn_scoped(scope, move || file.sync_all());
                // No thread to spare: this one syncs it.
                thread.map_err(|_| results.push(file.sync_all())).ok()
            })
            .collect();
        results.push(first.sync_all());
        for thread in threads {
            results.push(
                thread
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a sync thread panicked"))),
            );
        }
        results
            .into_iter()
            .collect::<io::Result<Vec<()>>>()
            .map(drop)
    })
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

    /// Several files: all written (and synced) before the first is renamed, so
    /// one that cannot be written leaves every earlier one as it was.
    #[test]
    fn write_atomic_all_renames_nothing_unless_everything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        write_atomic_all(&[(&a, b"a1"), (&b, b"b1")]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"a1");
        assert_eq!(std::fs::read(&b).unwrap(), b"b1");
        let missing = dir.path().join("missing/c.json");
        let err = write_atomic_all(&[(&a, b"a2"), (&missing, b"c")]).unwrap_err();
        assert!(err.to_string().contains("cannot write in"), "{err}");
        assert_eq!(std::fs::read(&a).unwrap(), b"a1", "a.json is untouched");
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a.json", "b.json"], "no work path is left");
    }
}
