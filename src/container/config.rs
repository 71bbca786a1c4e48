//! The image's config and the run's options → what the process gets: argv, env,
//! working directory, user, stop signal. Pure: docker's merge rules, unit-tested.

use crate::oci::ContainerConfig;

use super::{ContainerError, RunOptions};

/// Docker's default `PATH` (moby's `oci.DefaultPathEnv` on Linux), first in every
/// container's environment unless the image or `-e` sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command: the entrypoint (the image's, or `--entrypoint`) followed by the
/// arguments (COMMAND, else the image's Cmd unless `--entrypoint` was given).
// COMPAT(docker): moby's `merge` takes the image's Cmd only when the user gives
// neither an entrypoint nor a command; `--entrypoint ''` is an entrypoint (it clears
// the image's) and so drops the image's Cmd too.
pub fn argv(image: &ContainerConfig, opts: &RunOptions) -> Result<Vec<String>, ContainerError> {
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let args = if !opts.command.is_empty() {
        opts.command.clone()
    } else if opts.entrypoint.is_none() {
        image.cmd.clone().unwrap_or_default()
    } else {
        Vec::new()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(args).collect();
    if argv.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    Ok(argv)
}

/// The environment: docker's `PATH` and `HOSTNAME`, then the image's `Env`, then the
/// run's (`--env-file`, then `-e`), each replacing an earlier value of its name in
/// place. `HOME` is left to the sandbox (the user's passwd entry, as runc sets it).
// COMPAT(docker): moby's `CreateDaemonEnvironment` + `ReplaceOrAppendEnvValues`.
pub fn env(image: &ContainerConfig, opts: &RunOptions, hostname: &str) -> Vec<String> {
    let mut out: Vec<String> = vec![DEFAULT_PATH.into(), format!("HOSTNAME={hostname}")];
    for e in image.env.iter().chain(&opts.env) {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        match out
            .iter_mut()
            .find(|o| o.split_once('=').map_or(o.as_str(), |(k, _)| k) == key)
        {
            Some(slot) => slot.clone_from(e),
            None => out.push(e.clone()),
        }
    }
    out
}

/// The working directory: `-w`, else the image's `WorkingDir`, else `/`.
pub fn workdir(image: &ContainerConfig, opts: &RunOptions) -> String {
    let dir = opts
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if dir.starts_with('/') {
        dir
    } else {
        format!("/{dir}")
    }
}

/// The user: `-u`, else the image's `User` (resolved in the image's passwd and group
/// by the sandbox).
pub fn user(image: &ContainerConfig, opts: &RunOptions) -> String {
    opts.user
        .clone()
        .or_else(|| image.user.clone())
        .unwrap_or_default()
}

/// The stop signal: `--stop-signal`, else the image's `StopSignal`, else SIGTERM.
pub fn stop_signal(image: &ContainerConfig, opts: &RunOptions) -> Result<i32, ContainerError> {
    if let Some(s) = opts.stop_signal {
        return Ok(s);
    }
    match &image.stop_signal {
        Some(s) => {
            parse_signal(s).ok_or_else(|| ContainerError::ImageStopSignal { signal: s.clone() })
        }
        None => Ok(libc::SIGTERM),
    }
}

/// A capability as `--cap-add`/`--cap-drop` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `ALL`.
    All,
    /// One capability, by number.
    One(u32),
}

impl Capability {
    /// `ALL`, or a capability's name with or without `CAP_`, in any case.
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("ALL") {
            return Some(Self::All);
        }
        crate::exec::capability(name).map(Self::One)
    }
}

/// The capability set `--cap-add` and `--cap-drop` make of Docker's default (`None`
/// when neither is given: the sandbox's default).
// COMPAT(docker): moby's `caps.TweakCapabilities`: `--cap-add ALL` is every
// capability but the dropped ones; `--cap-drop ALL` keeps only the added ones;
// otherwise the default minus the dropped plus the added (an added one wins).
pub fn capabilities(add: &[Capability], drop: &[Capability]) -> Option<Vec<u32>> {
    if add.is_empty() && drop.is_empty() {
        return None;
    }
    let ones = |list: &[Capability]| -> Vec<u32> {
        list.iter()
            .filter_map(|c| match c {
                Capability::One(n) => Some(*n),
                Capability::All => None,
            })
            .collect()
    };
    let (added, dropped) = (ones(add), ones(drop));
    let all = 0..crate::exec::CAPABILITY_NAMES.len() as u32;
    let set: std::collections::BTreeSet<u32> = if add.contains(&Capability::All) {
        all.filter(|c| !dropped.contains(c)).collect()
    } else if drop.contains(&Capability::All) {
        added.into_iter().collect()
    } else {
        crate::exec::DEFAULT_CAPABILITIES
            .into_iter()
            .filter(|c| !dropped.contains(c))
            .chain(added)
            .collect()
    };
    Some(set.into_iter().collect())
}

/// A signal as docker spells one: `SIGTERM`, `TERM`, `term` or its number.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok().map(|s| s as i32);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        ContainerConfig {
            entrypoint: entrypoint.map(v),
            cmd: cmd.map(v),
            env: vec!["PATH=/bin".into(), "A=image".into(), "B=image".into()],
            ..Default::default()
        }
    }

    fn opts(entrypoint: Option<&str>, command: &[&str]) -> RunOptions {
        RunOptions {
            entrypoint: entrypoint.map(String::from),
            command: command.iter().map(|s| s.to_string()).collect(),
            ..RunOptions::new("img")
        }
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_does() {
        let both = image(Some(&["/ep", "x"]), Some(&["c1", "c2"]));
        assert_eq!(
            argv(&both, &opts(None, &[])).unwrap(),
            ["/ep", "x", "c1", "c2"]
        );
        assert_eq!(argv(&both, &opts(None, &["a"])).unwrap(), ["/ep", "x", "a"]);
        // --entrypoint drops the image's Cmd.
        assert_eq!(argv(&both, &opts(Some("/other"), &[])).unwrap(), ["/other"]);
        assert_eq!(argv(&both, &opts(Some("/o"), &["a"])).unwrap(), ["/o", "a"]);
        assert_eq!(
            argv(&both, &opts(Some(""), &["ls", "-l"])).unwrap(),
            ["ls", "-l"]
        );
        assert!(matches!(
            argv(&both, &opts(Some(""), &[])),
            Err(ContainerError::NoCommand)
        ));
        let cmd_only = image(None, Some(&["sh"]));
        assert_eq!(argv(&cmd_only, &opts(None, &[])).unwrap(), ["sh"]);
        assert!(matches!(
            argv(&image(None, None), &opts(None, &[])),
            Err(ContainerError::NoCommand)
        ));
    }

    #[test]
    fn env_replaces_in_place_and_run_wins() {
        let mut o = opts(None, &[]);
        o.env = vec!["B=run".into(), "C=run".into(), "HOSTNAME=mine".into()];
        let e = env(&image(None, None), &o, "abc");
        assert_eq!(
            e,
            ["PATH=/bin", "HOSTNAME=mine", "A=image", "B=run", "C=run"]
        );
        let plain = env(&ContainerConfig::default(), &opts(None, &[]), "h");
        assert_eq!(plain, [DEFAULT_PATH, "HOSTNAME=h"]);
    }

    #[test]
    fn capabilities_tweak_as_docker_does() {
        use Capability::{All, One};
        assert_eq!(capabilities(&[], &[]), None);
        let net_admin = Capability::parse("cap_net_admin").unwrap();
        assert_eq!(net_admin, One(12));
        let with = capabilities(&[net_admin], &[One(0)]).unwrap();
        assert!(with.contains(&12) && !with.contains(&0) && with.contains(&5));
        assert_eq!(capabilities(&[One(12)], &[All]).unwrap(), [12]);
        assert_eq!(capabilities(&[], &[All]).unwrap(), Vec::<u32>::new());
        let all = capabilities(&[All], &[One(21)]).unwrap();
        assert_eq!(all.len(), 40);
        assert!(!all.contains(&21));
        // An added one wins over the same dropped.
        assert!(capabilities(&[One(0)], &[One(0)]).unwrap().contains(&0));
        assert_eq!(Capability::parse("NOPE"), None);
    }

    #[test]
    fn workdir_user_and_signals() {
        let mut c = ContainerConfig {
            working_dir: Some("/app".into()),
            user: Some("user".into()),
            stop_signal: Some("SIGQUIT".into()),
            ..Default::default()
        };
        let mut o = opts(None, &[]);
        assert_eq!(workdir(&c, &o), "/app");
        assert_eq!(user(&c, &o), "user");
        assert_eq!(stop_signal(&c, &o).unwrap(), libc::SIGQUIT);
        o.workdir = Some("/w".into());
        o.user = Some("0:50".into());
        o.stop_signal = Some(libc::SIGUSR1);
        assert_eq!(workdir(&c, &o), "/w");
        assert_eq!(user(&c, &o), "0:50");
        assert_eq!(stop_signal(&c, &o).unwrap(), libc::SIGUSR1);
        c.stop_signal = Some("SIGNOPE".into());
        c.working_dir = None;
        let o = opts(None, &[]);
        assert_eq!(workdir(&c, &o), "/");
        assert!(stop_signal(&c, &o).is_err());
        assert_eq!(parse_signal("term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("9"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("SIGFOO"), None);
    }
}
