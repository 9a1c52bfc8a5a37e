//! Content digests, and the writers that compute them while bytes stream past.
//!
//! Every blob this module writes is named by its sha256, and the layer's `diff_id` is
//! the sha256 of its uncompressed tar; both are computed on the way to disk so a
//! layer is never held in memory or read twice. Only sha256 exists here: it is what
//! every registry and runtime accepts, and one algorithm means one way to name a blob.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A sha256 content digest, displayed as `sha256:<64 lowercase hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix: the blob's file
    /// name under `blobs/sha256/`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Converts into `oci-spec`'s digest type, for descriptors.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // A `sha256:` + 64 hex string is always a valid OCI digest.
        oci_spec::image::Digest::from_str(&self.to_string()).expect("sha256 digest is valid")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDigestError(String);

impl fmt::Display for ParseDigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a sha256 digest: expected `sha256:` followed by 64 lowercase hex characters",
            self.0
        )
    }
}

impl std::error::Error for ParseDigestError {}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDigestError(s.to_owned());
        let hex_part = s.strip_prefix("sha256:").ok_or_else(err)?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(err());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| err())?;
        Ok(Self(bytes))
    }
}

/// A writer that hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, the digest and the byte count of what was written.
    pub(crate) fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes per read when hashing or copying a file: a 16 MB binary in 64 reads
/// (`io::copy` into a hashing writer reads 8 KiB at a time), while the buffer
/// still fits in L2.
const CHUNK: usize = 256 * 1024;

/// Copies everything `reader` yields into `writer` in one pass, hashing it on the
/// way; returns the digest and the byte count.
pub(crate) fn copy_hashed(
    mut reader: impl Read,
    mut writer: impl Write,
) -> io::Result<(Digest, u64)> {
    let mut buf = vec![0u8; CHUNK];
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        count += n as u64;
    }
    Ok((Digest(hasher.finalize().into()), count))
}

/// Hashes everything `reader` yields; returns the digest and the byte count.
pub(crate) fn digest_reader(reader: impl Read) -> io::Result<(Digest, u64)> {
    copy_hashed(reader, io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_other_forms() {
        let d = Digest::of(b"mgw");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.to_oci().to_string(), d.to_string());
        for bad in [
            d.hex(),
            format!("sha512:{}", d.hex()),
            format!("sha256:{}", d.hex().to_uppercase()),
            format!("sha256:{}", &d.hex()[1..]),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hashing_writer_matches_one_shot_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, count) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(count, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!(
            digest_reader(&b"hello world"[..]).unwrap(),
            (Digest::of(b"hello world"), 11)
        );
    }
}
