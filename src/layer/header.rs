//! Tar headers for packing: one ustar header per entry, preceded by a PAX extended
//! header only when ustar cannot say something (a long path or link name, a large size or
//! id, xattrs). Everything not taken from the entry is fixed (empty uname/gname, no
//! atime/ctime), so equal entries give equal bytes.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tar::{EntryType, Header};

use super::LayerError;

/// The largest value a 7-digit octal ustar field holds (uid, gid, device numbers).
const MAX_OCTAL_7: u64 = 0o7777777;
/// The largest value the 11-digit octal size and mtime fields hold.
const MAX_OCTAL_11: u64 = 0o77777777777;

/// Extended attributes as (name, value) pairs; also the shape of PAX records.
pub(super) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// What an entry is, with what its type needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    File { size: u64 },
    Symlink { target: Vec<u8> },
    HardLink { target: Vec<u8> },
    Char { major: u64, minor: u64 },
    Block { major: u64, minor: u64 },
    Fifo,
}

/// One tar entry's metadata, in the layer's terms.
#[derive(Clone, Debug)]
pub(super) struct EntryHeader {
    /// Relative path, `/`-separated, no leading `./` and no trailing `/`.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch, already clamped; negative values are written as 0.
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
}

impl EntryHeader {
    /// Writes the PAX header (if any) and the ustar header of this entry to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> Result<(), LayerError> {
        let mut name = self.path.clone();
        if self.kind == Kind::Dir {
            // COMPAT(buildkit): directories carry a trailing slash, as Go's tar writer emits.
            name.push(b'/');
        }
        let mut pax: Xattrs = Vec::new();
        let mut header = Header::new_ustar();
        if !set_ustar_name(&mut header, &name) {
            pax.push((b"path".to_vec(), name.clone()));
            set_ustar_name(&mut header, truncated(&name, 100));
        }
        let (entry_type, size) = self.type_and_size(&mut header, &mut pax)?;
        header.set_entry_type(entry_type);
        header.set_size(if size > MAX_OCTAL_11 { 0 } else { size });
        if size > MAX_OCTAL_11 {
            pax.push((b"size".to_vec(), size.to_string().into_bytes()));
        }
        header.set_mode(self.mode & 0o7777);
        header.set_uid(octal7_or_pax(self.uid, b"uid", &mut pax));
        header.set_gid(octal7_or_pax(self.gid, b"gid", &mut pax));
        let mtime = u64::try_from(self.mtime).unwrap_or(0);
        header.set_mtime(mtime.min(MAX_OCTAL_11));
        if mtime > MAX_OCTAL_11 {
            pax.push((b"mtime".to_vec(), mtime.to_string().into_bytes()));
        }
        for (key, value) in &self.xattrs {
            let mut k = b"SCHILY.xattr.".to_vec();
            k.extend_from_slice(key);
            pax.push((k, value.clone()));
        }
        header.set_cksum();
        if !pax.is_empty() {
            write_pax(w, &name, &pax).map_err(LayerError::Write)?;
        }
        w.write_all(header.as_bytes()).map_err(LayerError::Write)
    }

    /// Sets link names and device numbers; returns the entry type and data size.
    fn type_and_size(
        &self,
        header: &mut Header,
        pax: &mut Xattrs,
    ) -> Result<(EntryType, u64), LayerError> {
        let devices = |header: &mut Header, major: u64, minor: u64| {
            if major > MAX_OCTAL_7 || minor > MAX_OCTAL_7 {
                return Err(LayerError::Unsupported {
                    path: Path::new(std::ffi::OsStr::from_bytes(&self.path)).to_path_buf(),
                    what: "a device number above 2097151",
                });
            }
            let ustar = header.as_ustar_mut().expect("a ustar header");
            ustar.set_device_major(major as u32);
            ustar.set_device_minor(minor as u32);
            Ok(())
        };
        Ok(match &self.kind {
            Kind::Dir => (EntryType::Directory, 0),
            Kind::File { size } => (EntryType::Regular, *size),
            Kind::Fifo => (EntryType::Fifo, 0),
            Kind::Symlink { target } => {
                set_link_name(header, target, pax);
                (EntryType::Symlink, 0)
            }
            Kind::HardLink { target } => {
                set_link_name(header, target, pax);
                (EntryType::Link, 0)
            }
            Kind::Char { major, minor } => {
                devices(header, *major, *minor)?;
                (EntryType::Char, 0)
            }
            Kind::Block { major, minor } => {
                devices(header, *major, *minor)?;
                (EntryType::Block, 0)
            }
        })
    }
}

/// Writes `value` into a 7-digit field, or 0 there and a PAX record when it does not fit.
fn octal7_or_pax(value: u64, key: &[u8], pax: &mut Xattrs) -> u64 {
    if value > MAX_OCTAL_7 {
        pax.push((key.to_vec(), value.to_string().into_bytes()));
        0
    } else {
        value
    }
}

fn set_link_name(header: &mut Header, target: &[u8], pax: &mut Xattrs) {
    let ustar = header.as_ustar_mut().expect("a ustar header");
    let field = truncated(target, ustar.linkname.len());
    ustar.linkname[..field.len()].copy_from_slice(field);
    if target.len() > ustar.linkname.len() {
        pax.push((b"linkpath".to_vec(), target.to_vec()));
    }
}

fn truncated(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// Fits `name` into ustar's name (100) and prefix (155) fields, splitting at a `/`.
/// Returns false when it cannot.
fn set_ustar_name(header: &mut Header, name: &[u8]) -> bool {
    let ustar = header.as_ustar_mut().expect("a ustar header");
    ustar.name = [0; 100];
    ustar.prefix = [0; 155];
    if name.len() <= ustar.name.len() {
        ustar.name[..name.len()].copy_from_slice(name);
        return true;
    }
    // The name part is what follows the split slash; pick the leftmost split that fits
    // so the prefix stays as short as possible.
    let split = (0..name.len()).find(|&i| {
        name[i] == b'/' && i <= ustar.prefix.len() && name.len() - i - 1 <= ustar.name.len()
    });
    match split {
        Some(i) if i > 0 && i + 1 < name.len() => {
            ustar.prefix[..i].copy_from_slice(&name[..i]);
            ustar.name[..name.len() - i - 1].copy_from_slice(&name[i + 1..]);
            true
        }
        _ => false,
    }
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut rec = format!("{len} ").into_bytes();
    rec.extend_from_slice(key);
    rec.push(b'=');
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Writes a PAX extended header entry (type `x`) carrying `records` for `name`.
fn write_pax(w: &mut impl Write, name: &[u8], records: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
    let mut records = records.to_vec();
    records.sort();
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    // COMPAT(buildkit): Go names the PAX entry `PaxHeaders.0/<base>`; readers ignore it.
    let base = name
        .strip_suffix(b"/")
        .unwrap_or(name)
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or_default();
    let mut pax_name = b"PaxHeaders.0/".to_vec();
    pax_name.extend_from_slice(base);
    let mut header = Header::new_ustar();
    set_ustar_name(&mut header, truncated(&pax_name, 100));
    header.set_entry_type(EntryType::XHeader);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    w.write_all(header.as_bytes())?;
    w.write_all(&data)?;
    w.write_all(&[0; 512][..padding(data.len() as u64)])
}

/// The zero bytes that pad `len` bytes of data to a whole 512-byte block.
pub(super) fn padding(len: u64) -> usize {
    ((512 - len % 512) % 512) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind) -> EntryHeader {
        EntryHeader {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o4755,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            xattrs: vec![],
        }
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(String, u32, Option<String>)> {
        let mut all = bytes;
        all.extend_from_slice(&[0; 1024]);
        let mut ar = tar::Archive::new(&all[..]);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let mode = e.header().mode().unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), mode, link)
            })
            .collect()
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record(b"path", b"abc"), b"12 path=abc\n");
        let long = vec![b'x'; 95];
        let rec = pax_record(b"path", &long);
        assert_eq!(rec.len(), 105);
        assert!(rec.starts_with(b"105 path="));
    }

    #[test]
    fn short_names_need_no_pax_and_keep_setuid() {
        let mut out = Vec::new();
        entry("bin/su", Kind::File { size: 0 })
            .write_to(&mut out)
            .unwrap();
        assert_eq!(out.len(), 512, "a single ustar block");
        assert_eq!(&out[257..263], b"ustar\0");
        assert_eq!(read_back(out), vec![("bin/su".into(), 0o4755, None)]);
    }

    #[test]
    fn medium_names_split_into_prefix_and_long_ones_use_pax() {
        let medium = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let mut out = Vec::new();
        entry(&medium, Kind::Dir).write_to(&mut out).unwrap();
        assert_eq!(out.len(), 512, "prefix split, no PAX");
        let long = format!("{}/{}", "d".repeat(200), "f".repeat(150));
        let target = "t".repeat(150);
        entry(
            &long,
            Kind::Symlink {
                target: target.clone().into_bytes(),
            },
        )
        .write_to(&mut out)
        .unwrap();
        assert!(out.len() > 1024, "a PAX header precedes the entry");
        let back = read_back(out);
        assert_eq!(back[0].0, format!("{medium}/"));
        assert_eq!(back[1], (long, 0o4755, Some(target)));
    }

    #[test]
    fn huge_device_numbers_are_refused() {
        let err = entry(
            "dev/x",
            Kind::Char {
                major: 1 << 22,
                minor: 0,
            },
        )
        .write_to(&mut Vec::new())
        .unwrap_err();
        assert!(err.to_string().contains("device number"), "{err}");
    }
}
