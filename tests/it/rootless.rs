//! Rootless `kiln build` (`exec::userns`): the test, as root, makes ordinary users
//! (one with /etc/subuid and /etc/subgid ranges, one without) and runs the real kiln
//! as them with `setpriv`, against the default store in a home of their own. With
//! ranges, a Dockerfile with RUN, USER, COPY --chown, a cache mount, a secret, setuid
//! bits, hard links, an xattr and a device node shipped by the base gives, with
//! `--reproducible`, the root build's manifest digest. Without ranges (single-ID
//! mapping), without newuidmap, and with user namespaces disabled, kiln says what is
//! missing and how to fix it, and writes no store where it cannot start.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::build::Env;

/// A base with a file of uid 1000, a character and a block device, a fifo and an
/// opaque directory (a dir removed and made again in a later layer): what a rootless
/// store must unpack and re-pack as root would.
const BASE: &str = "FROM busybox
RUN busybox --install -s /bin && mkdir -p /d/sub && touch /d/sub/old \\
 && chown 1000:1000 /home/user && mknod /d/c c 1 3 && mknod /d/b b 7 0 && mkfifo /d/p
RUN rm -rf /d/sub && mkdir /d/sub && touch /d/sub/new
";

/// Everything that must come out as in a root build, and a step that fails unless
/// the sandbox's seccomp filter (no new namespaces), capability limit (no mount) and
/// masked /proc paths hold rootless too.
const DOCKERFILE: &str = "FROM base
COPY --chown=1000:50 app.txt /app/
RUN --mount=type=cache,target=/cache,id=k echo cached > /cache/f
RUN --mount=type=cache,target=/cache,id=k --mount=type=secret,id=s,required \\
    cp /cache/f /from-cache && wc -c < /run/secrets/s > /secret-len \\
 && echo x > /suid && chmod 4755 /suid && ln /suid /suid-link \\
 && chmod 600 /d/c && ls /d/sub > /listing
COPY --from=base /d /copied
RUN ! unshare -U true 2>/dev/null && ! mount -t tmpfs none /mnt 2>/dev/null \\
 && test ! -s /proc/kcore
USER 1000
RUN id -u > /tmp/who && touch /home/user/mine
";

/// The users the tests make (idempotently: tests run in parallel, and so may another
/// test binary).
const RANGES_USER: &str = "kiln-rootless-ranges";
const SINGLE_USER: &str = "kiln-rootless-single";

/// Creates `name` unless it exists: a plain user with subordinate ids when `ranges`,
/// a system user (which useradd gives none) otherwise. `flock` serialises the
/// check-then-create across threads and processes.
fn ensure_user(name: &str, ranges: bool) {
    let add = if ranges {
        format!(
            "useradd -M -d /nonexistent -s /bin/sh {name} \
             && {{ grep -q '^{name}:' /etc/subuid || usermod --add-subuids 600000-665535 --add-subgids 600000-665535 {name}; }}"
        )
    } else {
        format!("useradd -r -M -d /nonexistent -s /bin/sh {name}")
    };
    let script = format!("id -u {name} >/dev/null 2>&1 || {{ {add}; }}");
    crate::common::run(
        Command::new("flock")
            .args(["/tmp/kiln-rootless-useradd.lock", "sh", "-c"])
            .arg(script),
    );
    let listed = fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{name}:")));
    assert_eq!(listed, ranges, "{name}'s /etc/subuid ranges");
}

/// A user's side of a test: a home (owned by the user) in the test's temp dir,
/// where kiln's default store goes.
struct User {
    name: &'static str,
    home: PathBuf,
    exe: PathBuf,
}

impl User {
    fn new(env: &Env, name: &'static str, ranges: bool) -> Self {
        ensure_user(name, ranges);
        // The user must reach the contexts in the temp dir (0700 as made).
        fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let home = env.path(&format!("home-{name}"));
        fs::create_dir_all(&home).unwrap();
        crate::common::run(Command::new("chown").arg(name).arg(&home));
        // The build's own binary may sit where the user cannot reach it (a checkout
        // under /root): the user runs a copy in the temp dir.
        let exe = env.path("kiln");
        if !exe.exists() {
            fs::copy(env!("CARGO_BIN_EXE_kiln"), &exe).unwrap();
        }
        Self { name, home, exe }
    }

    /// The store kiln picks by default for this user: `~/.local/share/kiln`.
    fn store(&self) -> PathBuf {
        self.home.join(".local/share/kiln")
    }

    /// `setpriv … kiln ARGS` as the user, with `$HOME` its home and no `--root`.
    fn command(&self, args: &[&str]) -> Command {
        // By its path: a test may give kiln a PATH without it.
        let mut cmd = Command::new("/usr/bin/setpriv");
        cmd.args(["--reuid", self.name, "--regid", self.name, "--init-groups"])
            .arg(&self.exe)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KILN_ROOT")
            .env_remove("XDG_DATA_HOME")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("RUST_LOG")
            .env_remove("BUILDX_NO_DEFAULT_ATTESTATIONS")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        cmd
    }

    fn kiln(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `kiln build --progress plain ARGS`, which must succeed; returns stderr.
    fn build(&self, args: &[&str]) -> String {
        let mut full = vec!["build", "--progress", "plain"];
        full.extend_from_slice(args);
        let out = self.kiln(&full);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{} kiln {full:?}: {err}", self.name);
        err
    }

    /// `kiln build` that must fail; returns stderr.
    fn build_fails(&self, args: &[&str]) -> String {
        let mut full = vec!["build", "--progress", "plain"];
        full.extend_from_slice(args);
        let out = self.kiln(&full);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{} kiln {full:?} succeeded",
            self.name
        );
        err
    }

    /// The manifest digest of `reference` in the user's store.
    fn manifest_digest(&self, reference: &str) -> kiln::oci::Digest {
        let store = kiln::store::open(&self.store()).unwrap();
        let desc = store.resolve(reference).unwrap();
        kiln::oci::validate(&store, &desc).unwrap();
        store.load_manifest(&desc).unwrap().1.digest
    }
}

/// A root store with busybox and [`BASE`] as `base`, saved to `base.tar` (readable
/// by all) for the users' stores; returns the context dir holding both Dockerfiles.
fn root_fixture(env: &Env) -> PathBuf {
    env.busybox();
    let ctx = env.context(
        "ctx",
        &[
            ("Base.Dockerfile", BASE),
            ("Dockerfile", DOCKERFILE),
            ("app.txt", "app\n"),
            ("secret", "s3cret\n"),
        ],
    );
    xattr::set(ctx.join("app.txt"), "user.kiln-test", b"kept").unwrap();
    let c = ctx.to_str().unwrap();
    env.build(&["-q", "-f", &format!("{c}/Base.Dockerfile"), "-t", "base", c]);
    let tar = env.path("base.tar");
    let out = env.kiln(
        &["save", "-o", tar.to_str().unwrap(), "busybox", "base"],
        None,
    );
    crate::common::ok(out);
    fs::set_permissions(&tar, fs::Permissions::from_mode(0o644)).unwrap();
    ctx
}

#[test]
fn a_rootless_build_with_subuid_ranges_has_the_root_builds_digest() {
    let env = Env::new();
    let ctx = root_fixture(&env);
    let c = ctx.to_str().unwrap();
    let secret = format!("id=s,src={c}/secret");
    env.build(&["-q", "--reproducible", "--secret", &secret, "-t", "img", c]);
    let root_digest = env.manifest_digest("img");

    let user = User::new(&env, RANGES_USER, true);
    let tar = env.path("base.tar");
    crate::common::ok(user.kiln(&["load", "-i", tar.to_str().unwrap()]));
    let err = user.build(&["--reproducible", "--secret", &secret, "-t", "img", c]);
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("rootless: user namespace, ")
                && l.ends_with(" subuids, overlayfs (userxattr)")),
        "the mode is shown first: {err}"
    );
    assert_eq!(err.matches("rootless:").count(), 1, "shown once: {err}");
    assert_eq!(user.manifest_digest("img"), root_digest, "{err}");

    // The files are the user's own on the host: the store is in the user's home,
    // its snapshots' root-owned files belong to the user, uid 1000 to a subuid.
    let snapshots = user.store().join("snapshots");
    assert!(
        snapshots.is_dir(),
        "the default store is ~/.local/share/kiln"
    );
    let uid = crate::common::run(Command::new("id").args(["-u", RANGES_USER]));
    let owners: Vec<u32> = fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| crate::build::attrs(&e.unwrap().path()).1)
        .collect();
    assert!(
        owners.iter().all(|o| o.to_string() == uid.trim()),
        "{owners:?}"
    );

    // `kiln run` too: root in the container, with the image's files.
    // No network: a rootless private network needs /dev/net/tun open to the user,
    // which some hosts (this suite's among them) keep at 0600.
    let out = user.kiln(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "0",
        "-v",
        "rvol:/vol",
        "img",
        "sh",
        "-c",
        "cat /tmp/who /from-cache && echo v > /vol/f",
    ]);
    assert_eq!(crate::common::ok(out), "1000\ncached\n");
    // A named volume is the user's too, written by root in the container.
    let vol = user.store().join("volumes/rvol/_data/f");
    assert_eq!(fs::read_to_string(&vol).unwrap(), "v\n");
    assert_eq!(crate::build::attrs(&vol).1.to_string(), uid.trim());
}

#[test]
fn rootless_without_ranges_tools_or_user_namespaces_says_what_is_missing() {
    let env = Env::new();
    let ctx = root_fixture(&env);
    let c = ctx.to_str().unwrap();
    let user = User::new(&env, SINGLE_USER, false);
    let tar = env.path("base.tar");
    crate::common::ok(user.kiln(&["load", "-i", tar.to_str().unwrap()]));
    let df = |name: &str, text: &str| {
        let p = ctx.join(name);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let hint = "usermod --add-subuids 100000-165535 --add-subgids 100000-165535";

    // A single-ID mapping builds what needs only root…
    let ok = df(
        "Ok.Dockerfile",
        "FROM busybox\nRUN echo hi > /x && ls -l /x\n",
    );
    let err = user.build(&["-f", &ok, "-t", "ok", c]);
    assert!(
        err.starts_with(&format!(
            "rootless: user namespace, single-ID mapping (no /etc/subuid and /etc/subgid range for {SINGLE_USER}"
        )),
        "{err}"
    );
    assert!(err.contains(" root     root "), "{err}");
    // …and each thing that needs another id fails naming the fix: a base layer's
    // owner, COPY --chown, a RUN's chown and USER.
    for (name, text, what) in [
        (
            "Base1000.Dockerfile",
            "FROM base\nRUN true\n",
            "its owner 1000:1000 does not exist",
        ),
        (
            "Chown.Dockerfile",
            "FROM busybox\nCOPY --chown=1000 app.txt /\n",
            "to 1000:1000",
        ),
        (
            "Run.Dockerfile",
            "FROM busybox\nRUN busybox chown 1000 /bin\n",
            "if it set another owner",
        ),
        (
            "User.Dockerfile",
            "FROM busybox\nUSER 1000\nRUN true\n",
            "user \"1000\" (1000:1000) does not exist",
        ),
    ] {
        let err = user.build_fails(&["-f", &df(name, text), c]);
        assert!(err.contains(what) && err.contains(hint), "{name}: {err}");
    }

    // Ranges but no newuidmap: a single-ID mapping, saying which tool to install.
    let ranges = User::new(&env, RANGES_USER, true);
    crate::common::ok(ranges.kiln(&["load", "-i", tar.to_str().unwrap()]));
    let no_tools = env.path("no-tools");
    fs::create_dir_all(&no_tools).unwrap();
    let out = ranges
        .command(&["build", "--progress", "plain", "-f", &ok, c])
        .env("PATH", &no_tools)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.starts_with("rootless: user namespace, single-ID mapping (newuidmap not found in PATH: install Debian's uidmap"),
        "{err}"
    );

    // User namespaces disabled: max_user_namespaces is per user namespace, so it is
    // set to 0 in a child namespace that maps every id (the host keeps its value), and
    // kiln runs there as the user: it says so and writes no store.
    let fresh = ranges.home.join("fresh-store");
    let err = in_namespace_without_userns(&ranges, &fresh, c);
    assert!(
        err.contains("/proc/sys/user/max_user_namespaces is 0")
            && err.contains("sysctl -w user.max_user_namespaces="),
        "{err}"
    );
    assert!(!fresh.exists(), "nothing written");
}

/// Runs `kiln --root STORE build CTX` as `user` inside a new user namespace whose
/// max_user_namespaces is 0; returns kiln's stderr. The namespace's maps are written
/// from here once the child says it has unshared, and it re-execs (so that it gets
/// the namespace's capabilities) before it writes the sysctl.
fn in_namespace_without_userns(user: &User, store: &Path, ctx: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let inner = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --reuid {u} --regid {u} --init-groups \"$0\" --root \"$1\" build \"$2\"",
        u = user.name
    );
    let mut child = Command::new("unshare")
        .args([
            "--user",
            "sh",
            "-c",
            "echo unshared; read go; exec sh -c \"$0\" \"$@\"",
        ])
        .arg(&inner)
        .arg(&user.exe)
        .arg(store)
        .arg(ctx)
        .env("HOME", &user.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "unshared\n");
    for map in ["uid_map", "gid_map"] {
        fs::write(format!("/proc/{}/{map}", child.id()), "0 0 4294967295\n").unwrap();
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
