//! `ckpt`: checkpoint a process, or start one so that it can be checkpointed.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use crimage::uapi;
use crtools::{fail, Fail};

const USAGE: &str = "usage: ckpt PID -o FILE|- [--kill] [--allow-leaks] [--log FILE]
       ckpt --cgroup PATH -o FILE|- [--kill] [--allow-leaks] [--log FILE]
       ckpt run [--cgroup NAME] -- COMMAND [ARGS...]

ckpt PID freezes the cgroup v2 that holds PID, writes the state of PID and of its whole
subtree (threads, children, zombies) to FILE (or standard output with -), then thaws the
cgroup, or kills it with --kill. It refuses when the cgroup holds tasks outside PID's subtree.

ckpt --cgroup PATH checkpoints a container: every task of the cgroup v2 at PATH, whose root
process must be the init of a pid namespace. The image restores into a new pid namespace.

A checkpoint fails when a task outside the tree shares an object with it (a pipe end, shared
memory, a descriptor table): restart could not keep that sharing. --allow-leaks checkpoints
anyway. Reasons for a refusal come from the kernel, on standard error or in the --log FILE.
Exit status: 0 once the whole image is written, 1 otherwise.

ckpt run starts COMMAND in a fresh cgroup (default cr-PID under /sys/fs/cgroup), so that it
can be checkpointed; it replaces itself with COMMAND, which keeps ckpt's PID.";

enum Mode {
    Checkpoint {
        target: Target,
        output: String,
        kill: bool,
        allow_leaks: bool,
        log: Option<String>,
    },
    Run {
        cgroup: Option<String>,
        command: Vec<String>,
    },
}

/// What to checkpoint.
enum Target {
    /// A process and its subtree.
    Pid(i32),
    /// Every task of a cgroup: a container.
    Cgroup(String),
}

fn parse(args: &[String]) -> Result<Mode, Fail> {
    let Some(first) = args.first() else {
        fail!("missing PID or 'run'");
    };
    if first == "run" {
        let mut cgroup = None;
        let mut i = 1;
        while i < args.len() {
            match args[i].as_str() {
                "--cgroup" => cgroup = Some(crtools::option_value(args, &mut i, "a name")?),
                "--" => {
                    i += 1;
                    break;
                }
                s => fail!("unknown option {s}"),
            }
        }
        let command = args[i..].to_vec();
        if command.is_empty() {
            fail!("run needs a command after --");
        }
        return Ok(Mode::Run { cgroup, command });
    }
    let (mut target, mut i) = if first == "--cgroup" {
        let mut i = 0;
        (
            Target::Cgroup(crtools::option_value(args, &mut i, "a path")?),
            i,
        )
    } else {
        let pid = first
            .parse()
            .map_err(|_| Fail(format!("bad pid {first}")))?;
        (Target::Pid(pid), 1)
    };
    let (mut output, mut kill, mut allow_leaks, mut log) = (None, false, false, None);
    while i < args.len() {
        match args[i].as_str() {
            "-o" => output = Some(crtools::option_value(args, &mut i, "a file")?),
            "--log" => log = Some(crtools::option_value(args, &mut i, "a file")?),
            "--cgroup" => target = Target::Cgroup(crtools::option_value(args, &mut i, "a path")?),
            flag @ ("--kill" | "--allow-leaks") => {
                if flag == "--kill" {
                    kill = true;
                } else {
                    allow_leaks = true;
                }
                i += 1;
            }
            s => fail!("unknown option {s}"),
        }
    }
    let output = output.ok_or(Fail("missing -o FILE|-".into()))?;
    Ok(Mode::Checkpoint {
        target,
        output,
        kill,
        allow_leaks,
        log,
    })
}

fn run(cgroup: Option<String>, command: &[String]) -> Result<(), Fail> {
    let me = std::process::id();
    let name = cgroup.unwrap_or_else(|| format!("cr-{me}"));
    let dir = crtools::make_cgroup(&name)?;
    std::fs::write(dir.join("cgroup.procs"), me.to_string())
        .map_err(|e| Fail(format!("{}: {e}", dir.display())))?;
    let err = Command::new(&command[0]).args(&command[1..]).exec();
    fail!("{}: {err}", command[0])
}

/// The cgroup to freeze and the root of the tree in it.
fn locate(target: &Target) -> Result<(PathBuf, i32), Fail> {
    let (dir, pid) = match target {
        Target::Pid(pid) => (crtools::cgroup_of(*pid)?, *pid),
        Target::Cgroup(path) => {
            let dir = PathBuf::from(path);
            let procs = crtools::cgroup_procs(&dir)?;
            // The container's init: the one task whose parent is outside the cgroup.
            let roots: Vec<i32> = procs
                .iter()
                .copied()
                .filter(|p| crtools::parent_of(*p).is_none_or(|pp| !procs.contains(&pp)))
                .collect();
            match roots[..] {
                [root] => (dir, root),
                [] => fail!("cgroup {path} holds no task"),
                _ => fail!("cgroup {path} holds more than one tree (pids {roots:?})"),
            }
        }
    };
    if dir == Path::new(crtools::CGROUP_ROOT) {
        fail!("pid {pid} is in the root cgroup, which cannot be frozen: start it with 'ckpt run'");
    }
    for p in crtools::cgroup_procs(&dir)? {
        if !crtools::in_subtree(pid, p) {
            fail!(
                "cgroup {} holds pid {p}, which is outside pid {pid}'s subtree",
                dir.display()
            );
        }
    }
    Ok((dir, pid))
}

fn checkpoint(
    target: &Target,
    output: &str,
    kill: bool,
    allow_leaks: bool,
    log: Option<&str>,
) -> Result<(), Fail> {
    let (dir, pid) = locate(target)?;
    // Whoever freezes a cgroup thaws it: a second ckpt must not thaw the first one's tree in
    // the middle of its checkpoint, so one ckpt at a time holds the cgroup.
    let _hold = crtools::hold_cgroup(&dir)?;
    let dev = crtools::open_device()?;
    let out: Box<dyn AsRawFd> = if output == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(File::create(output).map_err(|e| Fail(format!("{output}: {e}")))?)
    };
    let log_file = match log {
        Some(l) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(l)
                .map_err(|e| Fail(format!("{l}: {e}")))?,
        ),
        None => None,
    };
    let logfd = log_file.as_ref().map_or(2, |f| f.as_raw_fd());

    crtools::freeze(&dir, Duration::from_secs(10))?;
    let flags = if allow_leaks {
        uapi::CHECKPOINT_ALLOW_LEAKS
    } else {
        0
    };
    let result = crtools::ioctl_checkpoint(&dev, pid, out.as_raw_fd(), logfd, flags);
    let after = if kill && result.is_ok() {
        crtools::kill_all(&dir)
    } else {
        crtools::thaw(&dir)
    };
    result.map_err(|e| Fail(format!("checkpoint of pid {pid} failed: {e}")))?;
    after
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help")
        && args.first().map(String::as_str) != Some("run")
    {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse(&args).and_then(|mode| match mode {
        Mode::Run { cgroup, command } => run(cgroup, &command),
        Mode::Checkpoint {
            target,
            output,
            kill,
            allow_leaks,
            log,
        } => checkpoint(&target, &output, kill, allow_leaks, log.as_deref()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg)) => {
            crtools::warn("ckpt", &msg);
            if msg.starts_with("missing")
                || msg.starts_with("unknown")
                || msg.starts_with("bad pid")
                || msg.contains(" needs ")
            {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}
