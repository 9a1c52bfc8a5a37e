//! The sha256 of a file on disk, remembered by the file's stat identity, so a
//! rebuild with the same gateway binary does not read and hash its 16 MB again
//! (git's index and ccache do the same).
//!
//! An entry `<dir>/<dev>-<ino>` records the file's device, inode, size, mtime and
//! ctime next to its sha256; a lookup whose `fstat` of the opened file matches all
//! five takes the recorded digest without reading the file. ctime is the guard:
//! every write, `chmod` or `touch -r` sets it to the current time, and no
//! system call sets it back, so a binary rewritten in place with its size and
//! mtime restored still misses. One hole remains, the same as git's "racy
//! clean" entries: a write within one timestamp tick of the stat that recorded
//! the entry can leave ctime unchanged. So an entry is only recorded for a file
//! whose ctime is at least [`SETTLED`] older than the time the hashing started
//! (longer than any filesystem's timestamp granularity), and only if the file's
//! stat did not change while it was read. A freshly written file is hashed every
//! time until it has settled.
//!
//! Entries are written to a temporary file and renamed, without `fsync`: a lost
//! or torn entry (which does not parse, or does not match) costs one hash, never
//! a wrong digest. Like the layer cache, the index is an optimisation: when it
//! cannot be read or written the file is hashed.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Digest;
use super::digest::copy_hashed;

/// How long a file's ctime must lie before the hashing started for its digest
/// to be recorded: FAT's 2-second timestamps are the coarsest in use; ext4,
/// XFS, btrfs and tmpfs tick every few milliseconds.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stat {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file's last change lies [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let (Ok(secs), Ok(nanos)) = (u64::try_from(self.ctime.0), u32::try_from(self.ctime.1))
        else {
            return false;
        };
        UNIX_EPOCH + Duration::new(secs, nanos) + SETTLED <= now
    }
}

/// One recorded digest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    stat: Stat,
    sha256: String,
}

/// The sha256 and size of the file at `path` (following symlinks), taken from
/// the stat index in `dir` when the file has not changed since it was
/// recorded; else read and hashed, and recorded when it has settled.
pub(crate) fn digest(path: &Path, dir: Option<&Path>) -> io::Result<(Digest, u64)> {
    digest_at(path, dir, SystemTime::now())
}

/// [`digest`] with the time the hashing starts given (tests pass a later one).
fn digest_at(path: &Path, dir: Option<&Path>, now: SystemTime) -> io::Result<(Digest, u64)> {
    let mut file = File::open(path)?;
    let before = Stat::of(&file.metadata()?);
    let entry_path = dir.map(|d| d.join(format!("{}-{}", before.dev, before.ino)));
    if let Some(found) = entry_path.as_deref().and_then(|p| lookup(p, before)) {
        return Ok((found, before.size));
    }
    let (digest, size) = copy_hashed(&mut file, io::sink())?;
    let unchanged = Stat::of(&file.metadata()?) == before && size == before.size;
    if let Some(entry_path) = entry_path.filter(|_| unchanged && before.settled(now)) {
        let entry = Entry {
            stat: before,
            sha256: digest.to_string(),
        };
        if let Err(error) = record(&entry_path, &entry) {
            tracing::debug!(entry = %entry_path.display(), %error, "cannot record a file digest");
        }
    }
    Ok((digest, size))
}

fn lookup(entry_path: &Path, stat: Stat) -> Option<Digest> {
    let bytes = fs::read(entry_path).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    (entry.stat == stat).then_some(())?;
    entry.sha256.parse().ok()
}

fn record(entry_path: &Path, entry: &Entry) -> io::Result<()> {
    let dir = entry_path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = crate::fs::output_temp_file(dir, ".entry-")?;
    serde_json::to_writer(tmp.as_file(), entry)?;
    tmp.persist(entry_path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).map_or(0, |d| d.count())
    }

    /// Waits (with a deadline) until the filesystem's clock has ticked past
    /// `path`'s ctime, so a write now gives it a new ctime.
    fn wait_for_a_new_ctime(dir: &Path, path: &Path) {
        let old = fs::metadata(path).unwrap();
        let probe = dir.join("probe");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            fs::write(&probe, b"tick").unwrap();
            let now = fs::metadata(&probe).unwrap();
            if (now.ctime(), now.ctime_nsec()) > (old.ctime(), old.ctime_nsec()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the filesystem clock never ticked"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_settled_file_is_hashed_once_and_then_taken_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let (file, index) = (dir.path().join("gateway"), dir.path().join("files"));
        fs::write(&file, b"gateway one").unwrap();
        let expected = (Digest::of(b"gateway one"), 11);
        assert_eq!(digest_at(&file, Some(&index), later()).unwrap(), expected);
        assert_eq!(entries(&index), 1);
        // A hit does not read the file: a recorded digest for the same stat is
        // what comes back.
        let entry_path = fs::read_dir(&index)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut entry: Entry = serde_json::from_slice(&fs::read(&entry_path).unwrap()).unwrap();
        entry.sha256 = Digest::of(b"recorded").to_string();
        fs::write(&entry_path, serde_json::to_vec(&entry).unwrap()).unwrap();
        assert_eq!(
            digest_at(&file, Some(&index), later()).unwrap(),
            (Digest::of(b"recorded"), 11)
        );
        // A torn entry is a miss, not an error.
        fs::write(&entry_path, b"{\"dev\":").unwrap();
        assert_eq!(digest_at(&file, Some(&index), later()).unwrap(), expected);
    }

    /// The classic hole of stat caches: same size, mtime put back with
    /// `touch -r`. The ctime changed, so the file is hashed again.
    #[test]
    fn a_rewritten_file_with_its_size_and_mtime_restored_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let (file, index) = (dir.path().join("gateway"), dir.path().join("files"));
        fs::write(&file, b"gateway one").unwrap();
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        assert_eq!(
            digest_at(&file, Some(&index), later()).unwrap().0,
            Digest::of(b"gateway one")
        );
        wait_for_a_new_ctime(dir.path(), &file);
        fs::write(&file, b"gateway two").unwrap();
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
        assert_eq!(
            digest_at(&file, Some(&index), later()).unwrap().0,
            Digest::of(b"gateway two")
        );
    }

    /// A file changed within [`SETTLED`] of the hashing is not recorded: a
    /// second write in the same timestamp tick would not change its ctime.
    #[test]
    fn a_freshly_written_file_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (file, index) = (dir.path().join("gateway"), dir.path().join("files"));
        fs::write(&file, b"fresh").unwrap();
        assert_eq!(
            digest(&file, Some(&index)).unwrap(),
            (Digest::of(b"fresh"), 5)
        );
        assert_eq!(entries(&index), 0);
    }

    #[test]
    fn an_unusable_index_costs_time_not_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let (file, index) = (dir.path().join("gateway"), dir.path().join("files"));
        fs::write(&file, b"gateway").unwrap();
        fs::write(&index, b"a file where the index directory should be").unwrap();
        assert_eq!(
            digest_at(&file, Some(&index), later()).unwrap().0,
            Digest::of(b"gateway")
        );
        let err = digest(&dir.path().join("missing"), Some(&index)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
