//! The typed messages between kiln, the helper and the sandbox init. Each is one JSON
//! line. kiln → helper: the [`super::RunSpec`] on the helper's stdin. init → helper:
//! [`InitMsg`] on a close-on-exec pipe (end of file without `Failed` means the exec
//! happened). helper → kiln: one [`Report`] on fd 3.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::rootfs::MountPoints;
use super::{ExecError, RunSpec};

/// The fd on which the helper writes its [`Report`].
pub const REPORT_FD: i32 = 3;

/// The fd on which a foreground helper gets kiln's stdin (`kiln run -i`).
pub const STDIN_FD: i32 = 4;

/// What the sandbox init tells the helper before it execs (or instead).
#[derive(Debug, Serialize, Deserialize)]
pub enum InitMsg {
    /// The init is in its new network namespace and waits, on its go pipe, until the
    /// helper has wired it to the host ([`super::Network::Private`]).
    NetworkNamespace,
    /// The mount points setup created, to remove from the upper dir afterwards.
    MountPoints(MountPoints),
    /// Setup failed; the init exits without running the command.
    Failed(ExecError),
}

/// The helper's verdict.
#[derive(Debug, Serialize, Deserialize)]
pub enum Report {
    /// The command ran; its status as [`super::RunResult::status`].
    Exited {
        /// The status.
        status: i32,
    },
    /// The sandbox could not run the command.
    Failed(ExecError),
}

/// What kiln asks of the helper, on its stdin: a plain [`RunSpec`] is a sandbox run;
/// an object with a `chroot_root` is a [`ChrootRequest`].
#[derive(Debug)]
pub enum Request {
    /// Run in the namespace sandbox.
    Sandbox(RunSpec),
    /// Run in a chroot.
    Chroot(ChrootRequest),
}

/// A run in a chroot of a prepared directory: no namespace, no mount
/// (`--isolation=chroot`; see `super::chroot`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ChrootRequest {
    /// The directory that becomes `/`.
    pub chroot_root: PathBuf,
    /// The command, its user, env, working dir and limits; its overlay fields and
    /// mounts are unused (and must be empty).
    pub spec: RunSpec,
}

/// Decodes the helper's request.
pub fn decode_request(json: &[u8]) -> Result<Request, ExecError> {
    let err = |source| ExecError::Protocol {
        what: "run spec".into(),
        source,
    };
    let value: serde_json::Value = serde_json::from_slice(json).map_err(err)?;
    if value.get("chroot_root").is_some() {
        serde_json::from_value(value)
            .map(Request::Chroot)
            .map_err(err)
    } else {
        serde_json::from_value(value)
            .map(Request::Sandbox)
            .map_err(err)
    }
}

/// Writes one message as a JSON line. The write is a single `write_all` of a small
/// buffer, so a reader sees whole lines.
pub fn send<T: Serialize>(out: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)
}

/// Decodes every JSON line of `bytes`.
pub fn decode_lines<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &'static str,
) -> Result<Vec<T>, ExecError> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).map_err(|source| ExecError::Protocol {
                what: what.into(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_lines() {
        let mut buf = Vec::new();
        let points = MountPoints {
            created: vec![PathBuf::from("proc")],
            parents: vec![],
        };
        send(&mut buf, &InitMsg::MountPoints(points.clone())).unwrap();
        send(
            &mut buf,
            &InitMsg::Failed(ExecError::HelperDied { status: 3 }),
        )
        .unwrap();
        let msgs: Vec<InitMsg> = decode_lines(&buf, "init message").unwrap();
        assert!(matches!(&msgs[0], InitMsg::MountPoints(p) if *p == points));
        assert!(matches!(
            &msgs[1],
            InitMsg::Failed(ExecError::HelperDied { status: 3 })
        ));
        let bad = decode_lines::<Report>(b"{nope}\n", "report");
        assert!(matches!(bad, Err(ExecError::Protocol { what, .. }) if what == "report"));
    }
}
