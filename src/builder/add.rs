//! ADD's extras over COPY: recognising local tar archives (plain, gzip,
//! bzip2, xz — by magic bytes, never by name) and extracting them, fetching
//! http(s) URLs (with `--checksum`). Which sources are URLs is the plan's
//! [`crate::plan::CopySource`]; git sources never get here (planning refuses them).
//!
//! Invariants: extraction never writes outside its destination (it goes
//! through the layer unpacker's confinement, [`crate::layer::unpack_tar`]:
//! `..` that climbs out, writes through symlinks the archive made and hard
//! links out of the tree are refused with the entry named; the image's own
//! symlinked parents are followed as text, inside the destination); a fetched file whose digest differs from
//! `--checksum` is an error and is never staged.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::layer::LowerEntry;
use crate::layer::MergedFs;
use crate::oci::{Digest, DigestWriter};

/// Why ADD could not fetch or extract a source.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Reading or extracting an archive.
    #[error("extracting archive {path}")]
    Extract {
        /// The archive on the host.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An entry of the archive could not be extracted, or would land outside
    /// the destination.
    #[error("extracting archive {path}")]
    Unpack {
        /// The archive on the host.
        path: PathBuf,
        /// The cause, naming the entry.
        #[source]
        source: crate::layer::LayerError,
    },
    /// The HTTP request failed.
    #[error("fetching {url}")]
    Fetch {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// Writing the fetched body.
    #[error("downloading {url}")]
    Download {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The fetched content does not match `--checksum`.
    #[error("digest mismatch for {url}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// What `--checksum` said.
        expected: Digest,
        /// What the body hashes to.
        actual: Digest,
    },
}

/// The compression of a tar archive ADD unpacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A plain tar.
    Tar,
    /// gzip.
    Gzip,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
    /// zstd (BuildKit's untar has read it since moby's `DetectCompression` learnt
    /// its magic).
    Zstd,
}

/// Which archive `path` is, by its first bytes; `None` for anything else
/// (a compressed file that is not a tar stays a file, as BuildKit does).
pub fn archive_kind(path: &Path) -> io::Result<Option<ArchiveKind>> {
    let mut head = [0u8; 512];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    let kind = if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Gzip
    } else if head.starts_with(b"BZh") {
        ArchiveKind::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveKind::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::Zstd
    } else if n >= 262 && &head[257..262] == b"ustar" {
        ArchiveKind::Tar
    } else {
        return Ok(None);
    };
    if kind == ArchiveKind::Tar {
        return Ok(Some(kind));
    }
    // A compressed stream is an archive only when it holds a tar.
    f.rewind()?;
    let mut inner = [0u8; 262];
    let mut r = decoder(kind, f)?;
    let mut m = 0;
    while m < inner.len() {
        match r.read(&mut inner[m..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => m += k,
        }
    }
    Ok((m == inner.len() && &inner[257..262] == b"ustar").then_some(kind))
}

fn decoder<'a>(kind: ArchiveKind, f: File) -> io::Result<Box<dyn Read + 'a>> {
    let r = BufReader::new(f);
    Ok(match kind {
        ArchiveKind::Tar => Box::new(r),
        ArchiveKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        ArchiveKind::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
        ArchiveKind::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// Extracts the archive at `path` into the directory `dest`, keeping modes,
/// owners, mtimes and xattrs from the archive. A later entry replaces an
/// earlier one at the same path (a directory over a directory merges); an
/// entry whose cleaned path leaves `dest`, a write through a symlink, or a
/// hard link to outside the tree is refused, naming the entry.
// COMPAT(buildkit): docker's untar (moby `pkg/archive`) has the same
// replace rule and fails with "… is outside of …" where kiln refuses.
///
/// `beneath` is the image under `dest`: an entry whose parent is a symlink there
/// (merged-usr `lib -> usr/lib`) is written where the link leads, inside `dest`.
pub fn extract(
    path: &Path,
    kind: ArchiveKind,
    dest: &Path,
    beneath: Option<&dyn crate::layer::Lower>,
) -> Result<(), AddError> {
    let f = File::open(path).map_err(|source| AddError::Extract {
        path: path.into(),
        source,
    })?;
    let reader = decoder(kind, f).map_err(|source| AddError::Extract {
        path: path.into(),
        source,
    })?;
    let mode = crate::layer::UnpackMode::Archive;
    crate::layer::unpack_tar(reader, dest, mode, beneath).map_err(|source| AddError::Unpack {
        path: path.into(),
        source,
    })
}

/// The image beneath an archive's staged destination: what the target filesystem
/// has below `dest`, the destination's canonical path in it.
pub struct ImageBeneath<'a> {
    /// The target filesystem.
    pub view: &'a MergedFs,
    /// The destination's canonical path (symlinks resolved).
    pub dest: String,
}

impl crate::layer::Lower for ImageBeneath<'_> {
    fn lookup(&self, components: &[&OsStr]) -> io::Result<LowerEntry> {
        let mut path = self.dest.trim_end_matches('/').to_string();
        for c in components {
            // MergedFs speaks UTF-8 paths; a name it cannot hold is not beneath.
            let Some(c) = c.to_str() else {
                return Ok(LowerEntry::Missing);
            };
            path.push('/');
            path.push_str(c);
        }
        let node = self.view.resolve(&path, false).map_err(io::Error::other)?;
        Ok(match node {
            // Reached through a symlink that the staged tree has replaced with a
            // directory (or not there): nothing beneath this staged path.
            Some(n) if n.path != path => LowerEntry::Missing,
            None => LowerEntry::Missing,
            Some(n) if n.meta.is_dir() => LowerEntry::Dir {
                mode: n.meta.mode() & 0o7777,
                uid: n.meta.uid(),
                gid: n.meta.gid(),
            },
            Some(n) if n.meta.file_type().is_symlink() => {
                LowerEntry::Symlink(std::fs::read_link(&n.host)?)
            }
            Some(_) => LowerEntry::Other,
        })
    }
}

/// The file name ADD gives a URL's content: the last path segment.
pub fn url_file_name(url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(url)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let path = path.split_once('/').map(|(_, p)| p).unwrap_or("");
    match path.rsplit('/').find(|s| !s.is_empty()) {
        Some(name) => name.to_string(),
        // COMPAT(buildkit): a URL with no path names its file `index`.
        None => "index".to_string(),
    }
}

/// Seconds since the epoch of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace().skip(1);
    let day: i64 = it.next()?.parse().ok()?;
    let month = it.next()?;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == month)? as i64 + 1;
    let days = crate::oci::time::days_from_civil(year, m, day);
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// An agent that goes through the environment's proxy for `url`'s host.
// COMPAT(buildkit): buildkitd fetches ADD URLs with its own HTTPS_PROXY /
// HTTP_PROXY / NO_PROXY; kiln's process is the daemon, so it reads its own.
fn agent_for(url: &str) -> Result<ureq::Agent, AddError> {
    let mut builder = ureq::AgentBuilder::new();
    let proxies = crate::oci::registry::Proxies::from_env();
    let parsed = url::Url::parse(url).ok();
    let proxy = parsed.as_ref().and_then(|u| proxies.for_url(u));
    if let Some(proxy) = proxy {
        let proxy = ureq::Proxy::new(proxy).map_err(|source| AddError::Fetch {
            url: url.into(),
            source: Box::new(source),
        })?;
        builder = builder.proxy(proxy);
    }
    Ok(builder.build())
}

/// Downloads `url` into `dest` (created), verifying `checksum` when given.
/// Returns the time the file gets: `Last-Modified`, else the epoch.
// COMPAT(buildkit): its http source sets `time.Unix(0, 0)` when the server
// sends no Last-Modified, so the layer (and every key after an unpinned ADD)
// does not depend on when the download happened.
pub fn fetch(url: &str, expected: Option<&Digest>, dest: &Path) -> Result<i64, AddError> {
    let resp = agent_for(url)?
        .get(url)
        .call()
        .map_err(|source| AddError::Fetch {
            url: url.into(),
            source: Box::new(source),
        })?;
    let dl = |source| AddError::Download {
        url: url.into(),
        source,
    };
    let mtime = resp.header("Last-Modified").and_then(parse_http_date);
    let file = File::create(dest).map_err(dl)?;
    let mut w = DigestWriter::new(file);
    io::copy(&mut resp.into_reader(), &mut w).map_err(dl)?;
    let (mut file, sum, _) = w.finish();
    file.flush().map_err(dl)?;
    let actual = Digest::from_bytes(sum);
    if let Some(expected) = expected {
        if *expected != actual {
            // The content is not what the Dockerfile pinned: never stage it.
            let _ = std::fs::remove_file(dest);
            return Err(AddError::ChecksumMismatch {
                url: url.into(),
                expected: *expected,
                actual,
            });
        }
    }
    Ok(mtime.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn names_urls_and_git() {
        assert_eq!(url_file_name("http://h:1/a/b/c.tar.gz?x=1"), "c.tar.gz");
        assert_eq!(url_file_name("https://h/dir/"), "dir");
        assert_eq!(url_file_name("https://h"), "index");
    }

    #[test]
    fn sniffs_archives_by_content() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("f").unwrap();
        h.set_size(2);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        std::fs::write(t.path().join("plain"), &tar_bytes).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes).unwrap();
        std::fs::write(t.path().join("x.gz"), gz.finish().unwrap()).unwrap();
        let mut notar = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        notar.write_all(b"just text").unwrap();
        std::fs::write(t.path().join("text.gz"), notar.finish().unwrap()).unwrap();
        std::fs::write(t.path().join("readme.tar"), "not a tar").unwrap();
        let k = |n: &str| archive_kind(&t.path().join(n)).unwrap();
        assert_eq!(k("plain"), Some(ArchiveKind::Tar));
        assert_eq!(k("x.gz"), Some(ArchiveKind::Gzip));
        assert_eq!(k("text.gz"), None);
        assert_eq!(k("readme.tar"), None);
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        extract(&t.path().join("x.gz"), ArchiveKind::Gzip, &out, None).unwrap();
        assert_eq!(std::fs::read(out.join("f")).unwrap(), b"hi");
    }
}
