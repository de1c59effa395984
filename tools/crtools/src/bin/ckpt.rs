//! `ckpt`: checkpoint a process, or start one so that it can be checkpointed.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use crtools::{fail, Fail};

const USAGE: &str = "usage: ckpt PID -o FILE|- [--kill] [--log FILE]
       ckpt run [--cgroup NAME] -- COMMAND [ARGS...]

ckpt PID freezes the cgroup v2 that holds PID, writes PID's state to FILE (or standard output
with -), then thaws the cgroup, or kills it with --kill. It refuses when the cgroup holds tasks
outside PID's subtree. Reasons for a refusal come from the kernel, on standard error or in the
--log FILE. Exit status: 0 once the whole image is written, 1 otherwise.

ckpt run starts COMMAND in a fresh cgroup (default cr-PID under /sys/fs/cgroup), so that it
can be checkpointed; it replaces itself with COMMAND, which keeps ckpt's PID.";

enum Mode {
    Checkpoint {
        pid: i32,
        output: String,
        kill: bool,
        log: Option<String>,
    },
    Run {
        cgroup: Option<String>,
        command: Vec<String>,
    },
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
    let pid: i32 = first
        .parse()
        .map_err(|_| Fail(format!("bad pid {first}")))?;
    let (mut output, mut kill, mut log) = (None, false, None);
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "-o" => output = Some(crtools::option_value(args, &mut i, "a file")?),
            "--log" => log = Some(crtools::option_value(args, &mut i, "a file")?),
            "--kill" => {
                kill = true;
                i += 1;
            }
            s => fail!("unknown option {s}"),
        }
    }
    let output = output.ok_or(Fail("missing -o FILE|-".into()))?;
    Ok(Mode::Checkpoint {
        pid,
        output,
        kill,
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

fn checkpoint(pid: i32, output: &str, kill: bool, log: Option<&str>) -> Result<(), Fail> {
    let dir = crtools::cgroup_of(pid)?;
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
    let result = crtools::ioctl_checkpoint(&dev, pid, out.as_raw_fd(), logfd);
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
            pid,
            output,
            kill,
            log,
        } => checkpoint(pid, &output, kill, log.as_deref()),
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
