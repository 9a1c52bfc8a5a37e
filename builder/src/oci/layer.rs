//! Reproducible layer tarballs.
//!
//! A layer's digest is part of the image digest, so the same entries must give the
//! same bytes on every machine, at every time. [`LayerBuilder`] collects entries with
//! the metadata the caller chooses and writes them in one canonical form:
//!
//! - entries sorted by path, component by component, so every directory comes before
//!   its children; missing parent directories are added (mode 0755, owner 0:0);
//! - owner, group and mode exactly as given; mtime = the caller's `SOURCE_DATE_EPOCH`
//!   (or 0); no user or group names, no atime/ctime, device numbers 0;
//! - ustar headers (`tar::Header::new_ustar`); a path too long for ustar's name and
//!   prefix fields gets a PAX `path` record, never a GNU long-name extension; no sparse
//!   entries (file contents are read and written in full);
//! - gzip with the backend and level pinned: flate2's pure-Rust `zlib-rs` backend
//!   (a port of zlib-ng, 2-3x faster than `miniz_oxide`; its SIMD paths only
//!   compare match lengths and slide the hash table, so the output does not depend
//!   on the CPU), level [`GZIP_LEVEL`], header mtime 0, no file name, OS byte 255.
//!   Any change of backend, level or `zlib-rs` version may change layer bytes; the
//!   `golden_layer_digest_pins_tar_and_gzip_output` test turns that into a failure,
//!   and [`GZIP_ID`] (part of the layer cache's key) must change with it.
//!
//! The tar streams through a sha256 writer (the `diff_id`) into the gzip encoder and
//! through a second sha256 writer (the blob digest and size) into a temporary file in
//! the blob directory, renamed to its digest at the end: a layer is never held in
//! memory and never read back. Files on disk are never followed through symlinks:
//! a symlink source is an error, checked when it is added and again when it is read.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::digest::HashingWriter;
use super::{Digest, MEDIA_TYPE_LAYER_GZIP, OciError};

/// gzip level of every layer: 6, zlib's default. Measured with miniz_oxide on a
/// 5.8 MiB static x86-64 binary (optimized build, 2 shared cores): level 1 takes 80 ms
/// for 2.60 MiB, level 3 186 ms for 2.23 MiB, level 6 365 ms for 2.17 MiB, level 9
/// 745 ms for 2.16 MiB. Level 9 doubles the time to save 0.5%.
pub const GZIP_LEVEL: u32 = 6;

/// Names the compression every layer gets (backend, its output-relevant version,
/// level, header fields): part of the layer cache's key, so a cached blob is only
/// used by a builder that would write the same bytes. Change it whenever the
/// golden digest test has to change.
pub const GZIP_ID: &str = "gzip zlib-rs-0.6 level-6 mtime-0 os-255";

/// Names the tar this module writes (ustar headers, PAX long paths, the entry and
/// metadata rules above): with [`GZIP_ID`], part of the layer cache's key, which
/// is computed from the entries ([`LayerBuilder::recipe`]) without writing the
/// tar. Change it whenever the golden digest test's `diff_id` has to change.
pub const TAR_ID: &str = "mgw-tar-1 ustar pax-path";

/// The gzip header's OS byte: 255, "unknown", so the host OS never shows up in a
/// layer.
const GZIP_OS_UNKNOWN: u8 = 255;

/// The largest mtime an 11-digit octal ustar field holds (year 2242).
pub(crate) const MAX_USTAR_MTIME: u64 = 0o777_7777_7777;
/// The largest uid/gid a 7-digit octal ustar field holds.
const MAX_USTAR_ID: u32 = 0o777_7777;
/// The largest file size an 11-digit octal ustar field holds (8 GiB - 1).
const MAX_USTAR_SIZE: u64 = 0o777_7777_7777;
/// The longest entry path accepted (Linux `PATH_MAX`).
const MAX_PATH_LEN: usize = 4096;
/// Mode of directories the builder adds because an entry below them needs them.
pub const IMPLIED_DIR_MODE: u32 = 0o755;

/// A layer blob written by [`LayerBuilder::write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// sha256 of the compressed blob: its name in `blobs/sha256/`.
    pub digest: Digest,
    /// sha256 of the uncompressed tar: the entry in the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// Always [`MEDIA_TYPE_LAYER_GZIP`] for layers this module writes.
    pub media_type: String,
    /// Where the blob is: `<blob_dir>/<digest hex>`.
    pub path: PathBuf,
}

/// Collects the entries of one layer; [`write`](Self::write) turns them into a blob.
///
/// Paths are absolute paths inside the image (`/etc/passwd`), without `.`/`..` or
/// empty components. Modes are permission bits including setuid/setgid/sticky
/// (at most `0o7777`).
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    /// Keyed by path components: `BTreeMap` order is the write order, and a path's
    /// parents are its prefixes, which always sort first.
    entries: BTreeMap<Vec<String>, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    mode: u32,
    uid: u32,
    gid: u32,
    content: Content,
    /// Added only because a child needed it; an explicit `add_dir` may replace it.
    implied: bool,
}

#[derive(Clone)]
enum Content {
    Dir,
    Bytes(Vec<u8>),
    Disk(PathBuf),
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir => f.write_str("Dir"),
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Self::Disk(path) => f.debug_tuple("Disk").field(path).finish(),
        }
    }
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory. Replaces a directory that was only implied by an earlier
    /// child; any other existing entry at `path` is an error.
    pub fn add_dir(
        &mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<&mut Self, OciError> {
        self.insert(path, mode, uid, gid, Content::Dir)
    }

    /// Adds a regular file with the given contents.
    pub fn add_file_bytes(
        &mut self,
        path: &str,
        bytes: impl Into<Vec<u8>>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<&mut Self, OciError> {
        let bytes = bytes.into();
        if bytes.len() as u64 > MAX_USTAR_SIZE {
            return Err(meta_error(
                path,
                "size",
                bytes.len(),
                "larger than 8 GiB - 1",
            ));
        }
        self.insert(path, mode, uid, gid, Content::Bytes(bytes))
    }

    /// Adds a regular file whose contents are read from `src` when the layer is
    /// written. Only the contents are taken: owner, mode and times come from the
    /// arguments and the epoch. `src` must be a regular file, not a symlink.
    pub fn add_file_from_disk(
        &mut self,
        path: &str,
        src: impl AsRef<Path>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<&mut Self, OciError> {
        let src = src.as_ref();
        let meta = fs::symlink_metadata(src).map_err(OciError::io("read metadata of", src))?;
        check_regular_file(src, &meta)?;
        self.insert(path, mode, uid, gid, Content::Disk(src.to_owned()))
    }

    /// Number of entries, including implied parent directories.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the layer has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry paths in the order they will be written (`/etc`, `/etc/passwd`, …).
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.entries
            .keys()
            .map(|components| format!("/{}", components.join("/")))
    }

    /// Writes the layer as a gzip-compressed tar into `blob_dir` (which must exist),
    /// named by its digest, with every mtime set to `epoch`. Not synced: the
    /// staging layout it is written into is synced as a whole before it is
    /// renamed into place (`Staging::sync`).
    pub fn write(&self, blob_dir: &Path, epoch: u64) -> Result<Layer, OciError> {
        let tmp = crate::fs::output_temp_file(blob_dir, ".layer-")
            .map_err(OciError::io("create a temporary file in", blob_dir))?;
        let tmp_path = tmp.path().to_owned();
        let write_err = || OciError::io("write layer", &tmp_path);

        // file <- buffer <- sha256+count (blob digest) <- gzip <- sha256 (diff_id) <- tar
        let compressed = HashingWriter::new(BufWriter::with_capacity(128 * 1024, tmp.as_file()));
        let gzip = GzBuilder::new()
            .mtime(0)
            .operating_system(GZIP_OS_UNKNOWN)
            .write(compressed, Compression::new(GZIP_LEVEL));
        let uncompressed = self.write_tar_to(HashingWriter::new(gzip), epoch, &tmp_path)?;
        let (gzip, diff_id, _) = uncompressed.finish();
        let compressed = gzip.finish().map_err(write_err())?;
        let (buffer, digest, size) = compressed.finish();
        buffer
            .into_inner()
            .map_err(|e| write_err()(e.into_error()))?;

        let path = blob_dir.join(digest.hex());
        tmp.persist(&path)
            .map_err(|e| OciError::io("move layer into place at", &path)(e.error))?;
        Ok(Layer {
            digest,
            diff_id,
            size,
            media_type: MEDIA_TYPE_LAYER_GZIP.to_owned(),
            path,
        })
    }

    /// A digest of everything the layer's tar is made of, without writing it: each
    /// entry's path, kind, owner, group and mode, its contents (bytes by their
    /// sha256, a file on disk by the sha256 and size `file_digest` gives), and
    /// `epoch`. With [`TAR_ID`], equal recipes mean equal tars.
    pub(crate) fn recipe(
        &self,
        epoch: u64,
        mut file_digest: impl FnMut(&Path) -> Result<(Digest, u64), OciError>,
    ) -> Result<Digest, OciError> {
        use std::fmt::Write as _;
        if epoch > MAX_USTAR_MTIME {
            return Err(OciError::SourceDateEpoch {
                value: epoch.to_string(),
            });
        }
        let mut recipe = format!("{TAR_ID}\nepoch {epoch}\n");
        for (components, entry) in &self.entries {
            let path = components.join("/");
            let (kind, contents) = match &entry.content {
                Content::Dir => ("dir", None),
                Content::Bytes(bytes) => ("file", Some((Digest::of(bytes), bytes.len() as u64))),
                Content::Disk(src) => ("file", Some(file_digest(src)?)),
            };
            // The path is length-prefixed: it may hold any byte but NUL.
            let _ = write!(
                recipe,
                "{} {path} {kind} {:o} {} {}",
                path.len(),
                entry.mode,
                entry.uid,
                entry.gid
            );
            if let Some((digest, size)) = contents {
                let _ = write!(recipe, " {size} {digest}");
            }
            recipe.push('\n');
        }
        Ok(Digest::of(recipe.as_bytes()))
    }

    /// Writes the entries as a plain (uncompressed) tar into `out` and returns it.
    /// `dest` names `out` in error messages.
    pub(crate) fn write_tar_to<W: Write>(
        &self,
        out: W,
        epoch: u64,
        dest: &Path,
    ) -> Result<W, OciError> {
        if epoch > MAX_USTAR_MTIME {
            return Err(OciError::SourceDateEpoch {
                value: epoch.to_string(),
            });
        }
        let sink_err = || OciError::io("write layer", dest);
        let mut tar = tar::Builder::new(out);
        for (components, entry) in &self.entries {
            let mut name = components.join("/");
            match &entry.content {
                Content::Dir => {
                    name.push('/');
                    let header = header(EntryType::Directory, entry, 0, epoch);
                    append(&mut tar, header, &name, epoch, io::empty()).map_err(sink_err())?;
                }
                Content::Bytes(bytes) => {
                    let header = header(EntryType::Regular, entry, bytes.len() as u64, epoch);
                    append(&mut tar, header, &name, epoch, bytes.as_slice()).map_err(sink_err())?;
                }
                Content::Disk(src) => {
                    let (file, len) = open_source(src, &name)?;
                    let header = header(EntryType::Regular, entry, len, epoch);
                    let mut reader = CountingReader::new(file.take(len));
                    // `tar` copies `dyn Read` to `dyn Write` 8 KiB at a time;
                    // through this buffer the file is read 256 KiB at a time.
                    let buffered = io::BufReader::with_capacity(256 * 1024, &mut reader);
                    append(&mut tar, header, &name, epoch, buffered).map_err(|e| {
                        // A read error is about the source; anything else, the sink.
                        match reader.read_error.take() {
                            Some(source) => OciError::Io {
                                action: "read",
                                path: src.clone(),
                                source,
                            },
                            None => sink_err()(e),
                        }
                    })?;
                    let mut file = reader.inner.into_inner();
                    let mut probe = [0u8; 1];
                    let grew = file.read(&mut probe).map_err(OciError::io("read", src))? != 0;
                    if reader.count != len || grew {
                        return Err(OciError::SourceChanged {
                            path: src.clone(),
                            expected: len,
                        });
                    }
                }
            }
        }
        tar.into_inner().map_err(sink_err())
    }

    fn insert(
        &mut self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        content: Content,
    ) -> Result<&mut Self, OciError> {
        let components = split_path(path)?;
        if mode > 0o7777 {
            return Err(meta_error(
                path,
                "mode",
                format!("{mode:#o}"),
                "at most 0o7777",
            ));
        }
        for (field, id) in [("uid", uid), ("gid", gid)] {
            if id > MAX_USTAR_ID {
                return Err(meta_error(path, field, id, "at most 2097151 (ustar limit)"));
            }
        }

        // Parents first: every proper prefix must be (or become) a directory.
        for depth in 1..components.len() {
            let parent = &components[..depth];
            match self.entries.get(parent) {
                Some(Entry {
                    content: Content::Dir,
                    ..
                }) => {}
                Some(_) => {
                    return Err(OciError::ParentIsFile {
                        parent: parent.join("/"),
                        path: components.join("/"),
                    });
                }
                None => {
                    self.entries.insert(
                        parent.to_vec(),
                        Entry {
                            mode: IMPLIED_DIR_MODE,
                            uid: 0,
                            gid: 0,
                            content: Content::Dir,
                            implied: true,
                        },
                    );
                }
            }
        }

        let is_dir = matches!(content, Content::Dir);
        match self.entries.get(&components) {
            None => {}
            Some(existing) if existing.implied && is_dir => {}
            Some(existing) if existing.implied => {
                let child = self
                    .entries
                    .range(components.clone()..)
                    .nth(1)
                    .map(|(child, _)| child.join("/"))
                    .unwrap_or_default();
                return Err(OciError::ParentIsFile {
                    parent: components.join("/"),
                    path: child,
                });
            }
            Some(_) => {
                return Err(OciError::DuplicateEntry {
                    path: components.join("/"),
                });
            }
        }
        self.entries.insert(
            components,
            Entry {
                mode,
                uid,
                gid,
                content,
                implied: false,
            },
        );
        Ok(self)
    }
}

fn meta_error(
    path: &str,
    field: &'static str,
    value: impl fmt::Display,
    reason: &'static str,
) -> OciError {
    OciError::InvalidEntryMeta {
        path: path.trim_start_matches('/').to_owned(),
        field,
        value: value.to_string(),
        reason,
    }
}

/// Splits an absolute image path into its components, rejecting anything that is
/// not one clean, unambiguous path.
fn split_path(path: &str) -> Result<Vec<String>, OciError> {
    let invalid = |reason| OciError::InvalidEntryPath {
        path: path.to_owned(),
        reason,
    };
    let relative = path
        .strip_prefix('/')
        .ok_or_else(|| invalid("must be absolute (start with `/`)"))?;
    if relative.is_empty() {
        return Err(invalid(
            "the root directory is implied and cannot be an entry",
        ));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(invalid("longer than 4096 bytes"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    relative
        .split('/')
        .map(|component| match component {
            "" => Err(invalid("has an empty component (`//` or a trailing `/`)")),
            "." | ".." => Err(invalid("has a `.` or `..` component")),
            _ => Ok(component.to_owned()),
        })
        .collect()
}

fn check_regular_file(src: &Path, meta: &fs::Metadata) -> Result<(), OciError> {
    if meta.file_type().is_symlink() {
        return Err(OciError::SymlinkSource {
            path: src.to_owned(),
        });
    }
    if !meta.is_file() {
        return Err(OciError::NotRegularFile {
            path: src.to_owned(),
        });
    }
    Ok(())
}

/// Opens a source file without following a symlink at its last component: the path
/// is checked with `lstat`, opened, and the open file must be the same inode.
fn open_source(src: &Path, name: &str) -> Result<(File, u64), OciError> {
    let before = fs::symlink_metadata(src).map_err(OciError::io("read metadata of", src))?;
    check_regular_file(src, &before)?;
    let file = File::open(src).map_err(OciError::io("open", src))?;
    let opened = file
        .metadata()
        .map_err(OciError::io("read metadata of", src))?;
    if !opened.is_file() || !same_file(&before, &opened) {
        return Err(OciError::SourceChanged {
            path: src.to_owned(),
            expected: before.len(),
        });
    }
    let len = opened.len();
    if len > MAX_USTAR_SIZE {
        return Err(meta_error(name, "size", len, "larger than 8 GiB - 1"));
    }
    Ok((file, len))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len()
}

fn header(kind: EntryType, entry: &Entry, size: u64, epoch: u64) -> Header {
    let mut header = Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(entry.mode);
    header.set_uid(u64::from(entry.uid));
    header.set_gid(u64::from(entry.gid));
    header.set_mtime(epoch);
    header.set_size(size);
    // Written as octal zeros like GNU tar and Go, for strict readers; cannot fail on
    // a ustar header.
    let _ = header.set_device_major(0);
    let _ = header.set_device_minor(0);
    header
}

/// Appends one entry; if `name` does not fit ustar's 100-byte name plus 155-byte
/// prefix, a PAX extended header carrying `path` goes first.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    mut header: Header,
    name: &str,
    epoch: u64,
    data: impl Read,
) -> io::Result<()> {
    if header.set_path(name).is_err() {
        let record = pax_record("path", name);
        let mut pax = Header::new_ustar();
        pax.set_entry_type(EntryType::XHeader);
        pax.set_mode(0o644);
        pax.set_uid(0);
        pax.set_gid(0);
        pax.set_mtime(epoch);
        pax.set_size(record.len() as u64);
        let _ = pax.set_device_major(0);
        let _ = pax.set_device_minor(0);
        set_raw_name(&mut pax, &format!("PaxHeaders.0/{}", last_component(name)));
        pax.set_cksum();
        tar.append(&pax, record.as_slice())?;

        // Readers without PAX support see a truncated name; PAX readers use `path`.
        set_raw_name(&mut header, last_component(name));
    }
    header.set_cksum();
    tar.append(&header, data)
}

fn last_component(name: &str) -> &str {
    let trimmed = name.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Puts at most 100 bytes of `name` (cut at a character boundary) into the ustar name
/// field and clears the prefix field.
fn set_raw_name(header: &mut Header, name: &str) {
    let mut end = name.len().min(100);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.name = [0; 100];
        ustar.prefix = [0; 155];
        ustar.name[..end].copy_from_slice(&name.as_bytes()[..end]);
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record,
/// its own digits included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// Counts bytes read and keeps a read error aside, so the caller can tell a failing
/// source from a failing sink.
struct CountingReader<R> {
    inner: R,
    count: u64,
    read_error: Option<io::Error>,
}

impl<R: Read> CountingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            count: 0,
            read_error: None,
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.read_error = Some(e);
                Err(io::Error::new(kind, "source read failed"))
            }
        }
    }
}

/// Parses a `SOURCE_DATE_EPOCH` value (<https://reproducible-builds.org/specs/source-date-epoch/>):
/// a decimal count of seconds since 1970-01-01T00:00:00Z.
///
/// The caller decides where the value comes from (the environment, a flag); an unset
/// variable means 0, and that choice belongs to the caller too.
pub fn parse_source_date_epoch(value: &str) -> Result<u64, OciError> {
    let trimmed = value.trim();
    let invalid = || OciError::SourceDateEpoch {
        value: value.to_owned(),
    };
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let seconds: u64 = trimmed.parse().map_err(|_| invalid())?;
    // Tar headers carry mtime in 11 octal digits; refuse what cannot be represented
    // instead of silently switching to a non-ustar encoding.
    if seconds > MAX_USTAR_MTIME {
        return Err(invalid());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use flate2::read::GzDecoder;
    use sha2::{Digest as _, Sha256};

    use super::*;

    fn sample() -> LayerBuilder {
        let mut layer = LayerBuilder::new();
        layer
            .add_file_bytes("/usr/local/bin/tool", b"#binary".to_vec(), 0o755, 0, 0)
            .unwrap()
            .add_file_bytes("/etc/mgw/bundle.json", b"{}".to_vec(), 0o444, 65532, 65532)
            .unwrap()
            .add_dir("/tmp", 0o1777, 0, 0)
            .unwrap()
            .add_dir("/etc", 0o700, 1, 2)
            .unwrap()
            .add_file_bytes("/etc-x", b"x".to_vec(), 0o600, 0, 0)
            .unwrap();
        layer
    }

    struct TarEntry {
        path: String,
        kind: EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: Vec<u8>,
    }

    fn read_tar(tar_bytes: &[u8]) -> Vec<TarEntry> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                assert!(header.as_ustar().is_some(), "not a ustar header");
                assert!(header.username_bytes().is_none_or(|b| b.is_empty()));
                assert!(header.groupname_bytes().is_none_or(|b| b.is_empty()));
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                TarEntry {
                    path: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
                    kind: header.entry_type(),
                    mode: header.mode().unwrap(),
                    uid: header.uid().unwrap(),
                    gid: header.gid().unwrap(),
                    mtime: header.mtime().unwrap(),
                    data,
                }
            })
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn same_entries_give_identical_bytes_in_different_directories() {
        let src = tempfile::tempdir().unwrap();
        let file = src.path().join("gateway");
        fs::write(&file, vec![7u8; 300_000]).unwrap();

        let build = |layer: &mut LayerBuilder| {
            let dir = tempfile::tempdir().unwrap();
            let written = layer.write(dir.path(), 1_700_000_000).unwrap();
            (written.clone(), fs::read(&written.path).unwrap(), dir)
        };
        let mut first = sample();
        first
            .add_file_from_disk("/app/gateway", &file, 0o755, 0, 0)
            .unwrap();
        // Same entries added in another order.
        let mut second = LayerBuilder::new();
        second
            .add_file_from_disk("/app/gateway", &file, 0o755, 0, 0)
            .unwrap()
            .add_file_bytes("/etc-x", b"x".to_vec(), 0o600, 0, 0)
            .unwrap()
            .add_dir("/etc", 0o700, 1, 2)
            .unwrap()
            .add_dir("/tmp", 0o1777, 0, 0)
            .unwrap()
            .add_file_bytes("/etc/mgw/bundle.json", b"{}".to_vec(), 0o444, 65532, 65532)
            .unwrap()
            .add_file_bytes("/usr/local/bin/tool", b"#binary".to_vec(), 0o755, 0, 0)
            .unwrap();

        let (a, a_bytes, _a_dir) = build(&mut first);
        let (b, b_bytes, _b_dir) = build(&mut second);
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.diff_id, b.diff_id);
        assert_eq!(a_bytes, b_bytes);
        // A different epoch is a different layer.
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(first.write(dir.path(), 0).unwrap().digest, a.digest);
    }

    #[test]
    fn entries_are_sorted_with_parents_first_and_implied_parents_added() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().write(dir.path(), 0).unwrap();
        let entries = read_tar(&gunzip(&fs::read(&layer.path).unwrap()));
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/mgw/",
                "etc/mgw/bundle.json",
                "etc-x",
                "tmp/",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/tool",
            ]
        );
        assert_eq!(
            sample().paths().collect::<Vec<_>>()[..3],
            ["/etc", "/etc/mgw", "/etc/mgw/bundle.json"]
        );
    }

    #[test]
    fn headers_carry_exactly_the_given_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().write(dir.path(), 1_234_567).unwrap();
        let entries = read_tar(&gunzip(&fs::read(&layer.path).unwrap()));
        let find = |p: &str| entries.iter().find(|e| e.path == p).unwrap();
        assert!(entries.iter().all(|e| e.mtime == 1_234_567));

        let etc = find("etc/");
        assert_eq!(
            (etc.kind, etc.mode, etc.uid, etc.gid),
            (EntryType::Directory, 0o700, 1, 2)
        );
        let tmp = find("tmp/");
        assert_eq!(
            (tmp.kind, tmp.mode, tmp.uid, tmp.gid),
            (EntryType::Directory, 0o1777, 0, 0)
        );
        let implied = find("etc/mgw/");
        assert_eq!(
            (implied.mode, implied.uid, implied.gid),
            (IMPLIED_DIR_MODE, 0, 0)
        );
        let bundle = find("etc/mgw/bundle.json");
        assert_eq!(
            (bundle.kind, bundle.mode, bundle.uid, bundle.gid),
            (EntryType::Regular, 0o444, 65532, 65532)
        );
        assert_eq!(bundle.data, b"{}");
        assert_eq!(find("usr/local/bin/tool").mode, 0o755);
    }

    #[test]
    fn gzip_header_has_no_time_name_or_host_os() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().write(dir.path(), 99).unwrap();
        let bytes = fs::read(&layer.path).unwrap();
        // magic, deflate, no flags (so no FNAME/FEXTRA), mtime 0, xfl 0, OS 255.
        assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn digests_recomputed_from_the_blob_match() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().write(dir.path(), 0).unwrap();
        let bytes = fs::read(&layer.path).unwrap();
        assert_eq!(layer.path, dir.path().join(layer.digest.hex()));
        assert_eq!(layer.size, bytes.len() as u64);
        assert_eq!(layer.digest.as_bytes()[..], Sha256::digest(&bytes)[..]);
        assert_eq!(
            layer.diff_id.as_bytes()[..],
            Sha256::digest(gunzip(&bytes))[..]
        );
        assert_eq!(layer.media_type, MEDIA_TYPE_LAYER_GZIP);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Pins tar layout, flate2 backend, level and miniz_oxide output: if this digest
    /// changes, every image digest changes. Update it only on purpose, and say so in
    /// the changelog.
    #[test]
    fn golden_layer_digest_pins_tar_and_gzip_output() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().write(dir.path(), 0).unwrap();
        assert_eq!(
            layer.digest.to_string(),
            "sha256:f762d027d28cdef9684a33bdd6411ab3bed3eb23e29052d8bd5293267e307996"
        );
        assert_eq!(
            layer.diff_id.to_string(),
            "sha256:122a1942db5d3b78822d8be4376145bd7bc006f694fd9330b392a5d6169454f2"
        );
    }

    #[test]
    fn long_paths_use_pax_not_gnu_extensions() {
        let long_dir = "d".repeat(120);
        let path = format!("/opt/{long_dir}/{}", "f".repeat(110));
        let mut layer = LayerBuilder::new();
        layer
            .add_file_bytes(&path, b"long".to_vec(), 0o644, 0, 0)
            .unwrap();
        let mut tar = layer.write_tar_to(Vec::new(), 0, Path::new("mem")).unwrap();
        let entries = read_tar(&tar);
        assert_eq!(entries.last().unwrap().path, &path[1..]);
        assert_eq!(entries.last().unwrap().data, b"long");
        assert!(entries.iter().any(|e| e.path == format!("opt/{long_dir}/")));

        // Raw headers: PAX `x` entries, never GNU `L`/`K`.
        let mut types = Vec::new();
        let mut raw = tar::Archive::new(Cursor::new(&mut tar));
        for entry in raw.entries().unwrap().raw(true) {
            types.push(entry.unwrap().header().entry_type());
        }
        assert!(types.contains(&EntryType::XHeader));
        assert!(!types.contains(&EntryType::GNULongName));
        assert!(!types.contains(&EntryType::GNULongLink));
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        // Crossing a digit boundary: body of 98 bytes + "100" = 100? no: 98 + 3 = 101.
        let value = "v".repeat(90);
        let record = pax_record("path", &value);
        let len: usize = std::str::from_utf8(&record)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, record.len());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_sources_are_rejected_when_added_and_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        let err = LayerBuilder::new()
            .add_file_from_disk("/x", &link, 0o644, 0, 0)
            .unwrap_err();
        assert!(matches!(err, OciError::SymlinkSource { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");

        // Swapped for a symlink after being added.
        let swapped = dir.path().join("swapped");
        fs::write(&swapped, b"ok").unwrap();
        let mut layer = LayerBuilder::new();
        layer
            .add_file_from_disk("/x", &swapped, 0o644, 0, 0)
            .unwrap();
        fs::remove_file(&swapped).unwrap();
        std::os::unix::fs::symlink(&target, &swapped).unwrap();
        let err = layer.write(dir.path(), 0).unwrap_err();
        assert!(matches!(err, OciError::SymlinkSource { .. }), "{err}");
    }

    #[test]
    fn directories_and_missing_files_are_not_file_sources() {
        let dir = tempfile::tempdir().unwrap();
        let err = LayerBuilder::new()
            .add_file_from_disk("/x", dir.path(), 0o644, 0, 0)
            .unwrap_err();
        assert!(matches!(err, OciError::NotRegularFile { .. }), "{err}");
        let err = LayerBuilder::new()
            .add_file_from_disk("/x", dir.path().join("missing"), 0o644, 0, 0)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot read metadata of `"),
            "{err}"
        );
    }

    #[test]
    fn conflicting_entries_are_errors() {
        let mut layer = LayerBuilder::new();
        layer
            .add_file_bytes("/etc/passwd", b"".to_vec(), 0o644, 0, 0)
            .unwrap();
        // An implied directory may become explicit once…
        layer.add_dir("/etc", 0o755, 0, 0).unwrap();
        // …but not twice.
        let err = layer.add_dir("/etc", 0o755, 0, 0).unwrap_err();
        assert_eq!(err.to_string(), "layer already has an entry `/etc`");
        let err = layer
            .add_file_bytes("/etc/passwd/x", b"".to_vec(), 0o644, 0, 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`/etc/passwd` is a file in this layer, so it cannot hold `/etc/passwd/x`"
        );
        layer
            .add_file_bytes("/usr/bin/a", b"".to_vec(), 0o644, 0, 0)
            .unwrap();
        let err = layer
            .add_file_bytes("/usr", b"".to_vec(), 0o644, 0, 0)
            .unwrap_err();
        assert!(matches!(err, OciError::ParentIsFile { .. }), "{err}");
    }

    #[test]
    fn bad_paths_and_metadata_are_rejected() {
        for (path, reason) in [
            ("etc/passwd", "must be absolute"),
            ("/", "root directory"),
            ("/etc//passwd", "empty component"),
            ("/etc/", "empty component"),
            ("/etc/../passwd", "`..`"),
            ("/./etc", "`.`"),
            ("/a\0b", "NUL"),
        ] {
            let err = LayerBuilder::new().add_dir(path, 0o755, 0, 0).unwrap_err();
            assert!(err.to_string().contains(reason), "{path}: {err}");
        }
        let long = format!("/{}", "a/".repeat(2100));
        assert!(
            LayerBuilder::new()
                .add_dir(long.trim_end_matches('/'), 0o755, 0, 0)
                .is_err()
        );

        let err = LayerBuilder::new()
            .add_dir("/x", 0o10755, 0, 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mode `0o10755` for layer entry `/x`: at most 0o7777"
        );
        assert!(
            LayerBuilder::new()
                .add_dir("/x", 0o755, 2_097_152, 0)
                .is_err()
        );
        assert!(
            LayerBuilder::new()
                .add_dir("/x", 0o755, 0, 2_097_151)
                .is_ok()
        );
    }

    #[test]
    fn an_epoch_beyond_ustar_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = sample().write(dir.path(), MAX_USTAR_MTIME + 1).unwrap_err();
        assert!(matches!(err, OciError::SourceDateEpoch { .. }), "{err}");
    }
}
