//! The image view both sides of the differential suite are reduced to: the
//! root filesystem *relative to the base* (what the build's own layers add,
//! change or remove, merged in order) and the runtime config. Timestamps and
//! history wording are left out: they legitimately differ between builders.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// The blobs and index of an OCI archive, read whole (the cases are small).
struct Archive {
    files: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    fn open(path: &Path) -> Self {
        let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut files = BTreeMap::new();
        for entry in tar::Archive::new(f).entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            files.insert(name, bytes);
        }
        Self { files }
    }

    fn blob(&self, digest: &str) -> &[u8] {
        let path = format!("blobs/{}", digest.replacen(':', "/", 1));
        self.files
            .get(&path)
            .unwrap_or_else(|| panic!("archive lacks {path}"))
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(self.blob(digest)).unwrap()
    }

    /// The (manifest, config) of the archive's one image, descending through
    /// indexes (the host platform's manifest).
    fn image(&self) -> (Value, Value) {
        let mut doc: Value = serde_json::from_slice(&self.files["index.json"]).unwrap();
        loop {
            if let Some(list) = doc["manifests"].as_array() {
                let pick = list
                    .iter()
                    .find(|m| {
                        m["platform"]["architecture"].as_str()
                            == Some(kiln::oci::Platform::host().architecture.as_str())
                    })
                    .or(list.first())
                    .expect("an index without manifests");
                doc = self.json(pick["digest"].as_str().unwrap());
            } else {
                let config = self.json(doc["config"]["digest"].as_str().unwrap());
                return (doc, config);
            }
        }
    }
}

/// The diff_ids of the image in an OCI archive.
pub fn diff_ids(path: &Path) -> Vec<String> {
    let (_, config) = Archive::open(path).image();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(bytes)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else {
        out = bytes.to_vec();
    }
    out
}

/// One path of the merged own layers.
#[derive(Clone)]
enum Node {
    Entry {
        desc: String,
        content: Option<String>,
    },
    HardLink(String),
    Whiteout,
}

fn clean(path: &str) -> String {
    let p = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    format!("/{p}")
}

fn remove_tree(
    fs: &mut BTreeMap<String, Node>,
    opaque: &mut BTreeSet<String>,
    dir: &str,
    keep_self: bool,
) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = fs
        .keys()
        .filter(|k| k.starts_with(&prefix) || (!keep_self && k.as_str() == dir))
        .cloned()
        .collect();
    for k in doomed {
        fs.remove(&k);
        opaque.remove(&k);
    }
}

fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The view of the image in the OCI archive at `path`; `base` is the diff_ids
/// of the base image, whose layers (when the image starts with them) are left out.
pub fn image_view(path: &Path, base: &[String]) -> Value {
    let archive = Archive::open(path);
    let (manifest, config) = archive.image();
    let ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let skip = if !base.is_empty() && ids.len() >= base.len() && ids[..base.len()] == *base {
        base.len()
    } else {
        0
    };
    let layers = manifest["layers"].as_array().unwrap();
    let base_fs = render(&archive, &layers[..skip]);
    let own = render(&archive, &layers[skip..]);
    // COMPAT: the view is the final filesystem relative to the base, not how the
    // layers spell it: an own entry identical to the base's (a parent dir copied
    // up) is no change, a whiteout of a path the base lacks is invisible, and an
    // opaque dir is the removal of the base paths under it (BuildKit writes
    // whiteouts where kiln may write an opaque dir; both give the same tree).
    let mut out = Map::new();
    for (path, (text, opq)) in &own.0 {
        if text == "whiteout" {
            continue;
        }
        if *opq {
            for (b, _) in base_fs.0.range(format!("{path}/")..) {
                if !b.starts_with(&format!("{path}/")) {
                    break;
                }
                if !own.0.contains_key(b) {
                    out.insert(b.clone(), Value::String("removed".into()));
                }
            }
        }
        if base_fs.0.get(path).map(|(t, _)| t) == Some(text) {
            continue;
        }
        out.insert(path.clone(), Value::String(text.clone()));
    }
    for (path, (text, _)) in &own.0 {
        if text == "whiteout" && base_fs.0.contains_key(path) {
            out.insert(path.clone(), Value::String("removed".into()));
        }
    }
    let out = topmost_removals(out);
    let mut cfg = Map::new();
    config_view(&config, &mut cfg);
    json!({ "layers": layers.len() - skip, "config": cfg, "fs": out })
}

/// Keeps a `removed` only where its parent is not removed too.
fn topmost_removals(mut out: Map<String, Value>) -> Map<String, Value> {
    let removed: BTreeSet<String> = out
        .iter()
        .filter(|(_, v)| v.as_str() == Some("removed"))
        .map(|(k, _)| k.clone())
        .collect();
    for r in &removed {
        let mut p = r.as_str();
        while let Some((d, _)) = p.rsplit_once('/') {
            if d.is_empty() {
                break;
            }
            if removed.contains(d) {
                out.remove(r);
                break;
            }
            p = d;
        }
    }
    out
}

/// Path -> (description, is an opaque dir) of the merged `layers`.
fn render(archive: &Archive, layers: &[Value]) -> (BTreeMap<String, (String, bool)>,) {
    let mut fs: BTreeMap<String, Node> = BTreeMap::new();
    let mut opaque: BTreeSet<String> = BTreeSet::new();
    for layer in layers {
        let raw = decompress(archive.blob(layer["digest"].as_str().unwrap()));
        let mut tar = tar::Archive::new(&raw[..]);
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            let (dir, name) = path.rsplit_once('/').unwrap();
            let dir = if dir.is_empty() { "/" } else { dir };
            if name == ".wh..wh..opq" {
                remove_tree(&mut fs, &mut opaque, dir, true);
                opaque.insert(dir.to_string());
                continue;
            }
            if let Some(gone) = name.strip_prefix(".wh.") {
                let gone = if dir == "/" {
                    format!("/{gone}")
                } else {
                    format!("{dir}/{gone}")
                };
                remove_tree(&mut fs, &mut opaque, &gone, false);
                fs.insert(gone, Node::Whiteout);
                continue;
            }
            let h = entry.header().clone();
            let owner = format!("{}:{}", h.uid().unwrap(), h.gid().unwrap());
            let mode = h.mode().unwrap();
            let mut xattrs = Vec::new();
            if let Ok(Some(pax)) = entry.pax_extensions() {
                for ext in pax.flatten() {
                    if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    {
                        xattrs.push(format!(" xattr:{name}={}", hex::encode(ext.value_bytes())));
                    }
                }
            }
            let xattrs = xattrs.concat();
            use tar::EntryType as T;
            let node = match h.entry_type() {
                T::Directory => {
                    // A directory entry over a path that is no directory replaces it.
                    if !matches!(fs.get(&path), Some(Node::Entry { content: None, .. })) {
                        remove_tree(&mut fs, &mut opaque, &path, false);
                    }
                    Node::Entry {
                        desc: format!("dir {} {owner}{xattrs}", octal(mode)),
                        content: None,
                    }
                }
                T::Regular | T::Continuous => {
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).unwrap();
                    // Small text shows itself, so a diff says what differs.
                    let content = match std::str::from_utf8(&bytes) {
                        Ok(t) if bytes.len() <= 400 && !t.contains('\0') => {
                            format!("{} text:{}", bytes.len(), serde_json::to_string(t).unwrap())
                        }
                        _ => format!(
                            "{} sha256:{}",
                            bytes.len(),
                            hex::encode(Sha256::digest(&bytes))
                        ),
                    };
                    Node::Entry {
                        desc: format!("file {} {owner}{xattrs}", octal(mode)),
                        content: Some(content),
                    }
                }
                T::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    Node::Entry {
                        desc: format!("symlink {owner}{xattrs} -> {target}"),
                        content: None,
                    }
                }
                T::Link => {
                    let target = clean(&String::from_utf8_lossy(&entry.link_name_bytes().unwrap()));
                    Node::HardLink(target)
                }
                T::Char | T::Block => {
                    let kind = if h.entry_type() == T::Char {
                        "char"
                    } else {
                        "block"
                    };
                    let (maj, min) = (
                        h.device_major().ok().flatten().unwrap_or(0),
                        h.device_minor().ok().flatten().unwrap_or(0),
                    );
                    Node::Entry {
                        desc: format!("{kind} {maj},{min} {} {owner}", octal(mode)),
                        content: None,
                    }
                }
                T::Fifo => Node::Entry {
                    desc: format!("fifo {} {owner}", octal(mode)),
                    content: None,
                },
                other => Node::Entry {
                    desc: format!("tar-type-{:?}", other),
                    content: None,
                },
            };
            if !matches!(node, Node::Entry { content: None, .. })
                || !matches!(h.entry_type(), T::Directory)
            {
                remove_tree(&mut fs, &mut opaque, &path, true);
            }
            fs.insert(path, node);
        }
    }
    // Hard links: resolve each to its file and name the group by its first path.
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Node> = BTreeMap::new();
    for (path, node) in &fs {
        if let Node::HardLink(target) = node {
            let mut t = target.clone();
            while let Some(Node::HardLink(next)) = fs.get(&t) {
                t = next.clone();
            }
            let root = t.clone();
            groups
                .entry(root.clone())
                .or_insert_with(|| BTreeSet::from([root.clone()]))
                .insert(path.clone());
            let n = fs.get(&root).cloned().unwrap_or(Node::Entry {
                desc: format!("hardlink-to-base {root}"),
                content: None,
            });
            resolved.insert(path.clone(), n);
        }
    }
    let mut link_of: BTreeMap<String, String> = BTreeMap::new();
    for members in groups.values() {
        let first = members.iter().next().unwrap().clone();
        for m in members {
            link_of.insert(m.clone(), format!(" links:{}:{first}", members.len()));
        }
    }
    let mut out = BTreeMap::new();
    for (path, node) in &fs {
        let node = resolved.get(path).unwrap_or(node);
        let mut text = match node {
            Node::Entry { desc, content } => match content {
                Some(c) => format!("{desc} {c}"),
                None => desc.clone(),
            },
            Node::Whiteout => "whiteout".into(),
            Node::HardLink(t) => format!("hardlink {t}"),
        };
        if let Some(l) = link_of.get(path) {
            text.push_str(l);
        }
        out.insert(path.clone(), (text, opaque.contains(path)));
    }
    for dir in &opaque {
        out.entry(dir.clone())
            .or_insert_with(|| ("dir (opaque, no entry)".into(), true));
    }
    (out,)
}

/// The runtime config fields of the view.
fn config_view(config: &Value, cfg: &mut Map<String, Value>) {
    let c = &config["config"];
    for field in [
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
        "Healthcheck",
        "Shell",
        "OnBuild",
        "ArgsEscaped",
    ] {
        let v = &c[field];
        // COMPAT: absent, null and empty are one thing to a runtime.
        let empty = match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Bool(b) => !b,
            _ => false,
        };
        if !empty {
            cfg.insert(field.to_string(), v.clone());
        }
    }
}

/// The keys where `got` differs from `want` (`layers`, `config.FIELD`,
/// `fs:PATH`), and a readable report of them.
pub fn diff(want: &Value, got: &Value) -> (BTreeSet<String>, String) {
    let mut keys = BTreeSet::new();
    let mut report = String::new();
    let mut show = |key: String, w: Option<&Value>, g: Option<&Value>| {
        let fmt = |v: Option<&Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
        report.push_str(&format!(
            "  {key}\n    buildkit: {}\n    kiln:     {}\n",
            fmt(w),
            fmt(g)
        ));
        keys.insert(key);
    };
    if want["layers"] != got["layers"] {
        show("layers".into(), Some(&want["layers"]), Some(&got["layers"]));
    }
    for (section, prefix) in [("config", "config."), ("fs", "fs:")] {
        let empty = Map::new();
        let w = want[section].as_object().unwrap_or(&empty);
        let g = got[section].as_object().unwrap_or(&empty);
        let all: BTreeSet<&String> = w.keys().chain(g.keys()).collect();
        for k in all {
            if w.get(k) != g.get(k) {
                show(format!("{prefix}{k}"), w.get(k), g.get(k));
            }
        }
    }
    (keys, report)
}
