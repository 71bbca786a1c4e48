//! An attested image through a real registry: `--push` sends the image
//! manifest, the attestation manifest and their blobs, then the index under
//! the tag; skopeo reads the index back, `kiln pull` of it works, `kiln
//! push` of a stored attested image sends the index too.

use kiln::oci::Platform;

use super::server::{Auth, Registry};
use super::{has_skopeo, pull_back, reference, skopeo};
use crate::build::Env;
use crate::common::ok;

#[test]
fn push_sends_the_index_with_its_attestation_manifest() {
    let reg = Registry::start(false, Auth::None);
    let (env, ctx) = Env::busybox_dockerfile("FROM busybox\nRUN echo hi > /hi\n");
    let name = format!("{}/attested:1", reg.host);
    let meta = env.path("meta.json");
    let out = env.build(&[
        "--provenance=mode=max",
        "--push",
        "-t",
        &name,
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    let _ = out;
    let (stored, m, _) = env.image(&name);
    assert_eq!(stored.media_type, "application/vnd.oci.image.index.v1+json");
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(
        md["containerimage.digest"],
        stored.digest.to_string().as_str()
    );

    // The registry has the index under the tag, both manifests by digest.
    let requests = reg.requests_since(0);
    let index_put = requests
        .iter()
        .position(|l| l.starts_with("PUT /v2/attested/manifests/1 ") && l.ends_with(" 201"))
        .expect("the index put under the tag");
    let child_puts: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("PUT /v2/attested/manifests/sha256:") && l.ends_with(" 201"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(child_puts.len(), 2, "{requests:?}");
    assert!(child_puts.iter().all(|i| *i < index_put), "{requests:?}");

    // kiln pull of it: the platform's image.
    let (_d, _store, got) = pull_back(&reference(&reg, "attested:1"));
    assert_eq!(
        got.manifest.digest,
        env.store().load_manifest(&stored).unwrap().1.digest
    );
    assert_eq!(got.manifest.digest.to_string(), {
        let index: kiln::oci::Index =
            serde_json::from_slice(&env.store().read_blob(&stored.digest).unwrap()).unwrap();
        index.manifests[0].digest.to_string()
    });
    let _ = m;

    if has_skopeo() {
        let raw = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{name}"),
        ]);
        let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let att = &index["manifests"][1];
        assert_eq!(
            att["annotations"]["vnd.docker.reference.type"],
            "attestation-manifest"
        );
        assert_eq!(att["platform"]["os"], "unknown");
        let digest = att["digest"].as_str().unwrap();
        let raw = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{}/attested@{digest}", reg.host),
        ]);
        let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], "application/vnd.in-toto+json");
        assert_eq!(
            m["layers"][0]["annotations"]["in-toto.io/predicate-type"],
            "https://slsa.dev/provenance/v1"
        );
        // skopeo copies the whole index (every manifest and blob) back out.
        let dir = env.path("copied");
        skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:x", dir.display()),
        ]);
        kiln::oci::validate_layout(&dir).unwrap();
    }

    // `kiln push` of the stored attested image under another name.
    let other = format!("{}/again:2", reg.host);
    let stdout = ok(env.kiln(&["push", &name, &other], None));
    assert!(stdout.contains(&stored.digest.to_string()));
    let (_d, _s, got) = pull_back(&reference(&reg, "again:2"));
    assert_eq!(
        got.manifest.digest,
        env.store().load_manifest(&stored).unwrap().1.digest
    );
    let _ = Platform::host();

    // oci-artifact=true: the attestation manifest is an OCI artifact whose
    // subject is the image manifest; the registry takes it in the index.
    let art = format!("{}/artifact:1", reg.host);
    env.build(&[
        "-o",
        &format!("type=registry,name={art},oci-artifact=true"),
        ctx.to_str().unwrap(),
    ]);
    let (_d, _s, got) = pull_back(&reference(&reg, "artifact:1"));
    let index = got.index.expect("the tag names an index");
    if has_skopeo() {
        let raw = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{art}"),
        ]);
        let idx: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(kiln::oci::Digest::of(raw.as_bytes()), index.digest);
        let digest = idx["manifests"][1]["digest"].as_str().unwrap();
        let raw = skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{}/artifact@{digest}", reg.host),
        ]);
        let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(
            m["artifactType"],
            "application/vnd.docker.attestation.manifest.v1+json"
        );
        assert_eq!(
            m["subject"]["digest"],
            got.manifest.digest.to_string().as_str()
        );
    }
}
