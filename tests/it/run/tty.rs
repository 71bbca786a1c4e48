//! `kiln run -it`: driven through a pty pair of the test's own (kiln's stdio is the
//! slave, the test types on the master), as a person at a terminal would. Every wait
//! reads until a marker, with a deadline; none sleeps to synchronise. Markers are
//! computed by the shell (`$((1+1))`) so that the echo of the typed line never matches.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, LocalFlags};

use crate::build::Env;

/// A terminal the test owns: what kiln wrote so far, and the master to type on.
struct Term {
    master: File,
    slave: OwnedFd,
    rx: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Term {
    fn new() -> Self {
        let size = Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).unwrap();
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the test closes the slave.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            master,
            slave: pty.slave,
            rx,
            seen: String::new(),
        }
    }

    /// `kiln run --rm ARGS` with the slave as its stdin, stdout and stderr.
    fn kiln(&self, env: &Env, args: &[&str]) -> Child {
        let io = || Stdio::from(self.slave.try_clone().unwrap());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(["--root", env.root().to_str().unwrap(), "run", "--rm"])
            .args(args)
            .stdin(io())
            .stdout(io())
            .stderr(io());
        // kiln leads a session whose controlling terminal is the slave, as in a shell
        // (so that a resize sends it SIGWINCH).
        // SAFETY: setsid and ioctl are async-signal-safe and allocate nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn().unwrap()
    }

    fn type_(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Reads until `marker` has come; the output from the previous marker on.
    fn expect(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.seen.contains(marker) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!("no {marker:?} on the terminal; it shows {:?}", self.seen),
            }
        }
        let at = self.seen.find(marker).unwrap() + marker.len();
        let before = self.seen[..at].to_string();
        self.seen.drain(..at);
        before
    }

    /// The terminal's settings, as comparable text.
    fn mode(&self) -> String {
        let t = tcgetattr(self.slave.as_fd()).unwrap();
        format!(
            "{:?} {:?} {:?} {:?} {:?}",
            t.input_flags, t.output_flags, t.control_flags, t.local_flags, t.control_chars
        )
    }

    fn canonical(&self) -> bool {
        let t = tcgetattr(self.slave.as_fd()).unwrap();
        t.local_flags.contains(LocalFlags::ICANON)
    }
}

fn wait(mut child: Child) -> i32 {
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn run_it_gives_a_real_pty_with_size_ctrl_c_ctrl_d_and_restores_the_terminal() {
    let env = Env::new();
    env.busybox();
    let mut term = Term::new();
    let before = term.mode();
    assert!(term.canonical());

    let kiln = term.kiln(&env, &["-it", "busybox", "sh"]);
    term.type_("busybox tty; test -t 0 && echo T$((1+1))\r");
    let out = term.expect("T2");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(!out.contains("not a tty"), "{out:?}");
    // While the command runs, kiln's terminal is raw.
    assert!(!term.canonical(), "kiln left its terminal canonical");

    term.type_("busybox stty size; echo W$((1+1))\r");
    let out = term.expect("W2");
    assert!(out.contains("33 111"), "{out:?}");
    // A resize reaches the container (SIGWINCH to kiln, TIOCSWINSZ on the master). The
    // signal is pending before the next line is typed, so kiln has passed the size on
    // before it forwards that line's output.
    let size = Winsize {
        ws_row: 20,
        ws_col: 70,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through a valid pointer.
    assert_eq!(
        unsafe { libc::ioctl(term.master.as_raw_fd(), libc::TIOCSWINSZ, &size) },
        0
    );
    term.type_("echo R$((1+1))\r");
    term.expect("R2");
    term.type_("busybox stty size; echo V$((1+1))\r");
    let out = term.expect("V2");
    assert!(out.contains("20 70"), "{out:?}");

    // Ctrl-C is a byte to the container's line discipline: SIGINT for the
    // foreground job, and the shell goes on; an uninterrupted sleep would hold the
    // next echo for 100 s, past the deadline. The job prints S2 itself and then
    // becomes the sleep (exec), so once S2 shows, the job is the foreground process
    // group: a Ctrl-C typed between the shell's echo and its fork of sleep would
    // reach the shell instead and leave the sleep running (seen under load).
    term.type_("busybox sh -c 'echo S$((1+1)); exec busybox sleep 100'\r");
    term.expect("S2");
    term.type_("\x03");
    term.type_("echo A$((3+4))\r");
    term.expect("A7");

    term.type_("exit 3\r");
    assert_eq!(wait(kiln), 3);
    assert_eq!(
        term.mode(),
        before,
        "kiln did not restore the terminal's mode"
    );

    // Ctrl-D at the prompt is end of file: the shell exits 0.
    let kiln = term.kiln(&env, &["-it", "busybox", "sh"]);
    term.type_("echo D$((1+1))\r");
    term.expect("D2");
    term.type_("\x04");
    assert_eq!(wait(kiln), 0);
    assert_eq!(term.mode(), before);

    // No terminal on kiln's side: the command still has one (the refusal of -d -t is
    // in run.rs's table of refused flags).
    let out = env.kiln(
        &[
            "run",
            "--rm",
            "-t",
            "busybox",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && echo yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "yes\r\n");
    // --init: the command leads the console's foreground process group (its pgrp and
    // the tty's are its pid, 2), so Ctrl-C's SIGINT reaches it once, not again via the
    // init.
    let stat = "read p c s pp pg se tt tp rest < /proc/$$/stat; echo $pg $tp";
    let out = env.kiln(
        &["run", "--rm", "-t", "--init", "busybox", "sh", "-c", stat],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 2\r\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The console belongs to the command's user, as runc makes it.
    let out = env.kiln(
        &[
            "run",
            "--rm",
            "-t",
            "-u",
            "user",
            "busybox",
            "sh",
            "-c",
            "busybox stat -c %u $(busybox tty)",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1000\r\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
