//! Host devices in RUN: a node the command makes with mknod does not open,
//! wherever it makes it (the root overlay, /dev, /dev/shm, /tmp, a cache, tmpfs or rw
//! bind mount, the secrets dir); the standard devices still work; a mknod'd
//! node still lands in the layer as a device entry; insecure mode opens it.

use std::fs;

use super::Env;

/// Makes a /dev/kmsg node (c 1 11), a loop device (b 7 0) and the host's
/// root block device in DIR and tries to open each (kmsg write-only, which
/// needs no CAP_SYSLOG; the block devices for reading; nothing is written):
/// one line per node, `denied` for EACCES/EPERM. Without the protection the
/// kmsg and loop nodes open here (the host itself refuses a node for its
/// mounted root disk).
const PROBE: &str = r#"d=$1
for spec in "km c 1 11" "loop b 7 0" "rootdev b $ROOT_MAJ $ROOT_MIN"; do
  set -- $spec
  n="$d/$1.node"
  mknod "$n" $2 $3 $4 || { echo "MKNOD-FAILED $n"; continue; }
  if [ "$1" = km ]; then
    open() { (exec 3>"$n") 2>&1; }
  else
    open() { (exec 3<"$n") 2>&1; }
  fi
  if err=$(open); then
    echo "OPENED $n"
  else
    case "$err" in
      *"Permission denied"*|*"not permitted"*) echo "denied $n" ;;
      *) echo "OTHER $n: $err" ;;
    esac
  fi
  rm -f "$n"
done
"#;

/// `major:minor` of the block device holding the host's root filesystem,
/// from the root mount's line in mountinfo.
fn host_root_device() -> (u32, u32) {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = info
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[4] == "/")
        .map(|f| f[2].to_string())
        .unwrap();
    let (maj, min) = dev.split_once(':').unwrap();
    (maj.parse().unwrap(), min.parse().unwrap())
}

#[test]
fn mknod_devices_do_not_open_anywhere_a_run_can_write() {
    let (maj, min) = host_root_device();
    let env = Env::new();
    env.busybox();
    let secret = env.path("secret.txt");
    fs::write(&secret, "s\n").unwrap();
    let ctx = env.context(
        "ctx",
        &[
            ("probe.sh", PROBE),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN /bin/busybox mkdir -p /usr/local/bin && /bin/busybox --install -s /usr/local/bin\n\
                 COPY probe.sh /probe.sh\n\
                 ARG ROOT_MAJ\nARG ROOT_MIN\n\
                 RUN sh /probe.sh / && sh /probe.sh /dev && sh /probe.sh /dev/shm && sh /probe.sh /tmp\n\
                 RUN --mount=type=cache,target=/c sh /probe.sh /c\n\
                 RUN --mount=type=tmpfs,target=/t sh /probe.sh /t\n\
                 RUN --mount=type=bind,target=/b,rw sh /probe.sh /b\n\
                 RUN --mount=type=secret,id=s sh /probe.sh /run/secrets\n\
                 RUN mknod /kept c 1 11 && mknod /kept-blk b 7 0\n\
                 RUN echo x > /dev/null && test \"$(head -c 5 /dev/urandom | wc -c)\" = 5 \
                  && test \"$(head -c 3 /dev/random | wc -c)\" = 3 \
                  && test \"$(head -c 3 /dev/zero | wc -c)\" = 3 \
                  && (exec 3<>/dev/ptmx) && echo ptmx-opened \
                  && (echo x > /dev/full) 2>&1 | sed 's/^/full: /' \
                  && ( (exec 3<>/dev/tty) 2>&1 || true) | sed 's/^/tty: /'\n",
            ),
        ],
    );
    let (ma, mi) = (format!("ROOT_MAJ={maj}"), format!("ROOT_MIN={min}"));
    let secret_arg = format!("id=s,src={}", secret.display());
    let ctx_s = ctx.to_str().unwrap();
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "dev",
            "--build-arg",
            &ma,
            "--build-arg",
            &mi,
            "--secret",
            &secret_arg,
            ctx_s,
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("OPENED") && !log.contains("OTHER"), "{log}");
    assert!(!log.contains("MKNOD-FAILED"), "{log}");
    for dir in [
        "/",
        "/dev",
        "/dev/shm",
        "/tmp",
        "/c",
        "/t",
        "/b",
        "/run/secrets",
    ] {
        for node in ["km", "loop", "rootdev"] {
            let line = format!("denied {dir}/{node}.node");
            assert!(log.contains(&line), "{line:?} missing in\n{log}");
        }
    }
    assert!(log.contains("ptmx-opened"), "{log}");
    assert!(
        log.contains("full: ") && log.contains("No space left on device"),
        "{log}"
    );
    // No controlling terminal here: the tty driver answers ENXIO, so the node itself opened.
    assert!(
        log.lines()
            .any(|l| l.contains(" tty: ") && l.contains("No such device or address")),
        "{log}"
    );

    // The nodes still reach the layer as device entries, as in BuildKit.
    let (_, m, _) = env.image("dev");
    let store = env.store();
    let mut found = Vec::new();
    for l in &m.layers {
        let blob = fs::File::open(store.blob_path(&l.digest)).unwrap();
        let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(blob));
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            if path == "kept" || path == "kept-blk" {
                let h = e.header();
                found.push((
                    path,
                    h.entry_type().is_character_special(),
                    h.entry_type().is_block_special(),
                    h.device_major().unwrap().unwrap(),
                    h.device_minor().unwrap().unwrap(),
                ));
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            ("kept".to_string(), true, false, 1, 11),
            ("kept-blk".to_string(), false, true, 7, 0)
        ]
    );

    // Insecure mode keeps every device: a node for /dev/null made in /tmp opens.
    let ins = env.context(
        "ins",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --security=insecure /bin/busybox mknod /tmp/n c 1 3 && echo x > /tmp/n && echo insecure-opened\n",
        )],
    );
    let out = env.kiln(
        &[
            "build",
            "--progress",
            "plain",
            "--allow",
            "security.insecure",
            ins.to_str().unwrap(),
        ],
        None,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && log.contains("insecure-opened"),
        "{log}"
    );
}
