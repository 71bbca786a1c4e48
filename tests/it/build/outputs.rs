//! `-o` outputs read back with real tools, stdin Dockerfiles, the image ID
//! and metadata files, and reproducible digests with SOURCE_DATE_EPOCH.

use std::fs;
use std::process::Command;

use super::Env;
use crate::common::run as tool;

fn simple(env: &Env) -> std::path::PathBuf {
    env.context(
        "ctx",
        &[
            ("hello.txt", "hello\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n",
            ),
        ],
    )
}

#[test]
fn every_output_type_reads_back() {
    let env = Env::new();
    let ctx = simple(&env);
    let p = |s: &str| env.path(s).to_str().unwrap().to_string();
    let specs = [
        format!("type=oci,dest={}", p("img.tar")),
        format!("type=oci,dest={},tar=false", p("layout")),
        format!("type=docker,dest={}", p("docker.tar")),
        format!("type=local,dest={}", p("local")),
        format!("type=tar,dest={}", p("rootfs.tar")),
    ];
    // umoci 0.4.7 refuses a tag that resolves to an index holding an
    // attestation manifest ("tag is ambiguous"), BuildKit's as kiln's;
    // tests/it/build/attest.rs reads attested outputs back.
    let mut args = vec!["--provenance=false", "-t", "out:1"];
    for s in &specs {
        args.extend(["-o", s.as_str()]);
    }
    args.push(ctx.to_str().unwrap());
    env.build(&args);
    let (desc, _, _) = env.image("out:1");
    let inspect =
        tool(Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", p("img.tar"))]));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], desc.digest.to_string());
    let dinspect = tool(
        Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", p("docker.tar"))]),
    );
    assert!(dinspect.contains("\"Layers\""));
    kiln::oci::validate_layout(&env.path("layout")).unwrap();
    tool(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:1", p("layout")),
        &p("bundle"),
    ]));
    assert_eq!(
        fs::read_to_string(env.path("bundle/rootfs/hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(env.path("local/hello.txt")).unwrap(),
        "hello\n"
    );
    let listing = tool(Command::new("tar").args(["-tf", &p("rootfs.tar")]));
    assert_eq!(listing.trim(), "hello.txt");
    // Into a directory with files: merged over them, nothing of theirs lost.
    fs::write(env.path("local/mine.txt"), "mine").unwrap();
    fs::write(env.path("local/hello.txt"), "old").unwrap();
    env.build(&[
        "-o",
        &format!("type=local,dest={}", p("local")),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(env.path("local/mine.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        fs::read_to_string(env.path("local/hello.txt")).unwrap(),
        "hello\n"
    );
}

#[test]
fn no_tag_prints_the_id_and_writes_iidfile_and_metadata() {
    let env = Env::new();
    let ctx = simple(&env);
    let iid = env.path("iid");
    let meta = env.path("meta.json");
    let stdout = env.build(&[
        "--iidfile",
        iid.to_str().unwrap(),
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let id = fs::read_to_string(&iid).unwrap();
    assert_eq!(stdout.trim(), id);
    let store = env.store();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    // An untagged image is in the store by digest only.
    let desc: kiln::oci::Descriptor =
        serde_json::from_value(m["containerimage.descriptor"].clone()).unwrap();
    kiln::oci::validate(&store, &desc).unwrap();
    // Min provenance by default: the ID is the index's, as buildx prints it.
    assert_eq!(desc.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(desc.digest.to_string(), id);
    assert_eq!(m["containerimage.digest"], id);
    assert!(m.get("containerimage.config.digest").is_none());
    // Without attestations, the config digest, as docker's image ID.
    let bare = env.build(&[
        "--provenance=false",
        "--iidfile",
        iid.to_str().unwrap(),
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let id = fs::read_to_string(&iid).unwrap();
    assert_eq!(bare.trim(), id);
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let desc: kiln::oci::Descriptor =
        serde_json::from_value(m["containerimage.descriptor"].clone()).unwrap();
    assert_eq!(store.config_digest(&desc).unwrap().to_string(), id);
    assert_eq!(m["containerimage.config.digest"], id);
    assert_eq!(m["containerimage.digest"], desc.digest.to_string());
    // With -t, metadata names it the way buildx does.
    env.build(&[
        "-t",
        "named",
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["image.name"], "docker.io/library/named:latest");
}

#[test]
fn dockerfile_from_stdin() {
    let env = Env::new();
    let ctx = env.context("ctx", &[("a", "a")]);
    let out = env.kiln(
        &[
            "build",
            "-q",
            "-t",
            "stdin",
            "-f",
            "-",
            ctx.to_str().unwrap(),
        ],
        Some("FROM scratch\nCOPY a /a\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
    assert!(out.stderr.is_empty(), "-q prints no progress");
    assert!(env.rootfs("stdin").join("a").is_file());
}

#[test]
fn source_date_epoch_gives_the_same_digest_in_two_places() {
    let digests: Vec<String> = (0..2)
        .map(|i| {
            let env = Env::new();
            let ctx = env.context(
                &format!("ctx{i}"),
                &[
                    ("d/f", "same"),
                    (
                        "Dockerfile",
                        "FROM scratch\nWORKDIR /w\nCOPY d /d\nENV A=1\n",
                    ),
                ],
            );
            std::thread::sleep(std::time::Duration::from_millis(1100 * i as u64));
            let meta = env.path("m.json");
            env.build(&[
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                "--metadata-file",
                meta.to_str().unwrap(),
                ctx.to_str().unwrap(),
            ]);
            let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
            let store = env.store();
            let d: kiln::oci::Descriptor =
                serde_json::from_value(m["containerimage.descriptor"].clone()).unwrap();
            kiln::oci::validate(&store, &d).unwrap();
            let (_, c) = store.load_image(&d).unwrap();
            assert_eq!(c.created.as_deref(), Some("2023-11-14T22:13:20Z"));
            m["containerimage.digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn zstd_and_uncompressed_layers() {
    let env = Env::new();
    let ctx = simple(&env);
    for (c, mt) in [
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("uncompressed", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        env.build(&["--compression", c, "-t", c, ctx.to_str().unwrap()]);
        let (_, m, _) = env.image(c);
        assert_eq!(m.layers[0].media_type, mt);
    }
}

/// README's main job: the example image, no base and no network, into an
/// OCI archive.
#[test]
fn readme_example_builds_into_an_oci_archive() {
    let env = Env::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/build/example");
    let tar = env.path("example.tar");
    env.build(&[
        "-t",
        "example",
        "-o",
        &format!("type=oci,dest={}", tar.display()),
        example.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&tool(
        Command::new("skopeo").args(["inspect", &format!("oci-archive:{}", tar.display())]),
    ))
    .unwrap();
    assert_eq!(
        v["Labels"]["org.opencontainers.image.title"],
        "kiln example"
    );
    let fs_ = env.rootfs("example");
    assert_eq!(
        fs::read_to_string(fs_.join("srv/VERSION")).unwrap(),
        "1.0\n"
    );
    assert!(fs_.join("srv/site/index.html").is_file());
    assert_eq!(super::attrs(&fs_.join("srv/site/serve")).0, 0o755);
}

#[test]
fn dest_dash_streams_the_archive_to_stdout_and_nothing_else() {
    let env = Env::new();
    let ctx = simple(&env);
    let c = ctx.to_str().unwrap();
    let file = env.path("img.tar");
    env.build(&["-o", &format!("type=oci,dest={}", file.display()), c]);
    // -q too: the image ID must not land in the middle of the archive.
    for spec in [
        "type=oci,dest=-",
        "type=docker,dest=-",
        "type=tar,dest=-",
        "-",
    ] {
        let out = env.kiln(&["build", "-q", "-o", spec, c], None);
        assert!(
            out.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let streamed = env.path("streamed.tar");
        fs::write(&streamed, &out.stdout).unwrap();
        let names: Vec<String> = tar::Archive::new(fs::File::open(&streamed).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        if spec == "type=oci,dest=-" {
            // Byte for byte what dest=FILE writes.
            assert_eq!(out.stdout, fs::read(&file).unwrap());
            let o = tool(
                Command::new("skopeo")
                    .args(["inspect", &format!("oci-archive:{}", streamed.display())]),
            );
            assert!(o.contains("\"Digest\""));
        } else if spec == "type=docker,dest=-" {
            assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
        } else {
            assert_eq!(names, ["hello.txt"], "{spec}");
        }
    }
    // Nothing staged is left behind in the store.
    assert_eq!(fs::read_dir(env.root().join("tmp")).unwrap().count(), 0);
    for (spec, why) in [
        ("type=local,dest=-", "writes a directory"),
        ("type=oci,dest=-,tar=false", "writes a directory"),
    ] {
        let out = env.kiln(&["build", "-o", spec, c], None);
        assert_eq!(out.status.code(), Some(2), "{spec}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    }
    let two = env.kiln(&["build", "-o", "-", "-o", "type=oci,dest=-", c], None);
    assert_eq!(two.status.code(), Some(2));
}
