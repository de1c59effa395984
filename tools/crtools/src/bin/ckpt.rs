//! `ckpt`: checkpoint a process, or start one so that it can be checkpointed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use crimage::uapi;
use crtools::{fail, failed, migrate, Fail};

/// Checkpoint a process tree or a container, or start a program so that it can be.
///
/// ckpt PID freezes the cgroup v2 that holds PID, writes the state of PID and of its whole
/// subtree (threads, children, zombies) to FILE (or standard output with -), then thaws the
/// cgroup, or kills it with --kill. It refuses when the cgroup holds tasks outside PID's subtree.
///
/// ckpt --cgroup PATH checkpoints a container: every task of the cgroup v2 at PATH, whose root
/// process must be the init of a pid namespace. The image restores into a new pid namespace.
///
/// With --thawed, the tree's memory is copied while it runs, in rounds, each one copying the
/// pages written since the one before (found by the page tables' dirty bits, at no cost to the
/// tree); the tree is frozen only for the last pages and the rest of its state. The image is a
/// precopy image followed by the frozen round's, in one stream.
///
/// With --track, the module keeps tracking the tree's memory once the image is written. A later
/// ckpt --parent FILE, naming that image, then writes only the pages written since (by the same
/// dirty bits), and refers to FILE for the rest: restart -i finds FILE by its path, or in a
/// --parent-dir, and checks that it is the very image. --parent tracks on, so chains grow. When
/// the module cannot prove a page unchanged (the tracking was reset, or exec replaced the
/// address space), the page is written whole.
///
/// With --migrate ADDR:PORT, the image goes over TCP to `restart --listen ADDR:PORT` on another
/// machine: thawed rounds while the tree runs, then the frozen round. The tree stays frozen until
/// the destination says that it runs there; then it is killed here. On any failure before that
/// (the connection drops, the destination fails or does not answer), it is thawed and runs on.
///
/// A checkpoint fails when a task outside the tree shares an object with it (a pipe end, shared
/// memory, a descriptor table): restart could not keep that sharing. --allow-leaks checkpoints
/// anyway. Reasons for a refusal come from the kernel, on standard error or in the --log FILE.
///
/// Exit status: 0 once the whole image is written (and then it restores), or with --migrate once
/// the tree runs at the destination; 1 when the checkpoint failed, 2 for usage errors.
#[derive(Parser)]
#[command(
    name = "ckpt",
    override_usage = "ckpt PID -o FILE|- [--kill] [--allow-leaks] [--log FILE] [--stats] [--thawed] [--track] [--parent FILE]\n       \
                      ckpt --cgroup PATH -o FILE|- [--kill] [--allow-leaks] [--log FILE] [--stats] [--thawed] [--track] [--parent FILE]\n       \
                      ckpt PID|--cgroup PATH --migrate ADDR:PORT [--confirm-timeout S] [--allow-leaks] [--log FILE] [--stats] [--max-downtime MS] [--rounds N]\n       \
                      ckpt run [--cgroup NAME] -- COMMAND [ARGS...]",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group(clap::ArgGroup::new("precopy").args(["thawed", "migrate"]).multiple(true))
)]
struct Cli {
    #[command(subcommand)]
    run: Option<Run>,
    #[command(flatten)]
    checkpoint: Checkpoint,
}

#[derive(Subcommand)]
enum Run {
    /// Start COMMAND in a fresh cgroup (default cr-PID under /sys/fs/cgroup), so that it can be
    /// checkpointed; ckpt replaces itself with COMMAND, which keeps ckpt's pid.
    Run {
        /// The cgroup's name.
        #[arg(long)]
        cgroup: Option<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Args)]
struct Checkpoint {
    /// The root of the tree to checkpoint.
    #[arg(required_unless_present = "cgroup", conflicts_with = "cgroup")]
    pid: Option<i32>,
    /// Checkpoint the container in this cgroup v2 instead.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
    /// Where the image goes: a file, or - for standard output.
    #[arg(
        short = 'o',
        value_name = "FILE|-",
        required_unless_present = "migrate"
    )]
    output: Option<String>,
    /// Kill the tree once the image is written, instead of thawing it.
    #[arg(long)]
    kill: bool,
    /// Checkpoint even when a task outside the tree shares an object with it.
    #[arg(long)]
    allow_leaks: bool,
    /// Append the kernel's reasons to FILE instead of standard error.
    #[arg(long, value_name = "FILE")]
    log: Option<String>,
    /// Print the figures: tasks, pages, bytes, time frozen, time in all, and MB/s.
    #[arg(long)]
    stats: bool,
    /// Copy the memory while the tree runs, and freeze it only for what is left.
    #[arg(long)]
    thawed: bool,
    /// With --thawed: freeze once the pages left could be copied within MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10, requires = "precopy")]
    max_downtime: u64,
    /// With --thawed: the most rounds before the freeze [default: 8].
    #[arg(long, value_name = "N", requires = "precopy")]
    rounds: Option<u32>,
    /// Keep tracking the tree's memory, for a later --parent checkpoint.
    #[arg(long)]
    track: bool,
    /// Write only what changed since FILE, a tracked image of this tree.
    #[arg(long, value_name = "FILE")]
    parent: Option<String>,
    /// Move the tree to `restart --listen ADDR:PORT`: thawed rounds over TCP, then the frozen
    /// round; killed here once it runs there, thawed here on any failure before.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["output", "kill", "track", "parent"])]
    migrate: Option<String>,
    /// With --migrate: how long the frozen tree waits for the destination's answer.
    #[arg(long, value_name = "S", default_value_t = 60, requires = "migrate")]
    confirm_timeout: u64,
}

/// What to checkpoint.
enum Target {
    /// A process and its subtree.
    Pid(i32),
    /// Every task of a cgroup: a container.
    Cgroup(String),
}

fn run(cgroup: Option<String>, command: &[String]) -> Result<(), Fail> {
    let me = std::process::id();
    let name = cgroup.unwrap_or_else(|| format!("cr-{me}"));
    let dir = crtools::make_cgroup(&name)?;
    std::fs::write(dir.join("cgroup.procs"), me.to_string())
        .map_err(|e| failed!("{}: {e}", dir.display()))?;
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
            // The container's init: the one task whose parent is outside the cgroup (a task
            // that exits meanwhile is none).
            let roots: Vec<i32> = procs
                .iter()
                .copied()
                .filter(|p| crtools::parent_of(*p).is_some_and(|pp| !procs.contains(&pp)))
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
        // A task that exits meanwhile is no reason to fail; the kernel checks the frozen tree.
        if crtools::in_subtree(pid, p) == Some(false) {
            fail!(
                "cgroup {} holds pid {p}, which is outside pid {pid}'s subtree",
                dir.display()
            );
        }
    }
    Ok((dir, pid))
}

/// Where the image goes.
#[derive(Clone, Copy)]
enum Output<'a> {
    /// A file, or standard output for `-`.
    Path(&'a str),
    /// A destination's `restart --listen`, and how long to wait for its answer.
    Migrate(SocketAddr, Duration),
}

/// How ckpt was asked to checkpoint.
struct Request<'a> {
    output: Output<'a>,
    kill: bool,
    allow_leaks: bool,
    log: Option<&'a str>,
    stats: bool,
    /// The rounds of a thawed checkpoint: (most rounds, downtime budget).
    thawed: Option<(u32, Duration)>,
    track: bool,
    parent: Option<&'a str>,
}

fn checkpoint(target: &Target, req: &Request<'_>) -> Result<(), Fail> {
    let began = Instant::now();
    let Request {
        output,
        kill,
        allow_leaks,
        log,
        stats,
        thawed,
        track,
        parent,
    } = *req;
    // The parent is named by the identity its trailer claims: the module tracks only what it
    // wrote, and restart reads the parent whole.
    let parent = match parent {
        Some(p) => {
            let path = std::fs::canonicalize(p).map_err(|e| failed!("{p}: {e}"))?;
            let identity = crtools::chain::claimed_identity(&path)?;
            Some((identity, path))
        }
        None => None,
    };
    let (dir, pid) = locate(target)?;
    // Whoever freezes a cgroup thaws it: a second ckpt must not thaw the first one's tree in
    // the middle of its checkpoint, so one ckpt at a time holds the cgroup.
    let _hold = crtools::hold_cgroup(&dir)?;
    let dev = crtools::open_device()?;
    let mut destination = None;
    let out: Box<dyn AsRawFd> = match output {
        Output::Path("-") => {
            crtools::widen_if_pipe(1);
            Box::new(std::io::stdout())
        }
        Output::Path(path) => Box::new(File::create(path).map_err(|e| failed!("{path}: {e}"))?),
        Output::Migrate(addr, _) => {
            let stream = migrate::connect(addr)?;
            let fd = stream.try_clone()?;
            destination = Some(stream);
            Box::new(fd)
        }
    };
    let log_file = match log {
        Some(l) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(l)
                .map_err(|e| failed!("{l}: {e}"))?,
        ),
        None => None,
    };
    // With --stats, the kernel's lines come through a pipe, to pick the figures out.
    let (stats_r, stats_w) = if stats {
        let (r, w) = crtools::pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let logfd = match (&stats_w, &log_file) {
        (Some(w), _) => w.as_raw_fd(),
        (None, Some(f)) => f.as_raw_fd(),
        (None, None) => 2,
    };

    let mut flags = 0;
    if let Some((identity, path)) = &parent {
        crtools::ioctl_parent(&dev, identity, path)
            .map_err(|e| failed!("naming the parent image: {e}"))?;
    }
    if track || parent.is_some() {
        flags |= uapi::CHECKPOINT_TRACK;
    }
    if let Some((rounds, downtime)) = thawed {
        // Not through the stats pipe, which is read only after the checkpoint: a failure here
        // must be told now. Its figures line is passed on as it is.
        let args = uapi::PrecopyArgs {
            pid,
            fd: out.as_raw_fd(),
            logfd: log_file.as_ref().map_or(2, |f| f.as_raw_fd()),
            max_rounds: rounds,
            flags: if stats { uapi::PRECOPY_STATS } else { 0 },
            max_downtime_ns: downtime.as_nanos() as u64,
        };
        crtools::ioctl_precopy(&dev, &args)
            .map_err(|e| failed!("copying the memory of pid {pid} failed: {e}"))?;
        flags |= uapi::CHECKPOINT_AFTER_PRECOPY;
    }
    let frozen = Instant::now();
    crtools::freeze(&dir, Duration::from_secs(10))?;
    if allow_leaks {
        flags |= uapi::CHECKPOINT_ALLOW_LEAKS;
    }
    if stats {
        flags |= uapi::CHECKPOINT_STATS;
    }
    let running = AtomicBool::new(true);
    let result = std::thread::scope(|scope| {
        if crtools::stderr_is_terminal() {
            scope.spawn(|| {
                crtools::show_progress("ckpt", &running, || {
                    crtools::ioctl_progress(&dev).map(|p| (p.done, p.total))
                })
            });
        }
        let r = crtools::ioctl_checkpoint(&dev, pid, out.as_raw_fd(), logfd, flags);
        running.store(false, Ordering::SeqCst);
        r
    });
    let after = match (&destination, output) {
        // Frozen until the destination answers: the tree must never run in both places.
        (Some(stream), Output::Migrate(_, timeout)) if result.is_ok() => {
            match migrate::await_running(stream, timeout) {
                Ok(()) => crtools::kill_all(&dir),
                Err(e) => crtools::thaw(&dir).and(Err(e)),
            }
        }
        _ if kill && result.is_ok() => crtools::kill_all(&dir),
        _ => crtools::thaw(&dir),
    };
    let frozen = frozen.elapsed();
    let figures = match stats_r {
        Some(r) => {
            drop(stats_w);
            relay_log(r, log_file.as_ref())
        }
        None => None,
    };
    result.map_err(|e| failed!("checkpoint of pid {pid} failed: {e}"))?;
    after?;
    if let Some(f) = figures {
        eprintln!(
            "ckpt: {}",
            crtools::describe_stats(&f, frozen, began.elapsed())
        );
    }
    Ok(())
}

/// Passes the kernel's lines on (to the log file, or standard error) and keeps the figures.
fn relay_log(pipe: std::os::fd::OwnedFd, log: Option<&File>) -> Option<uapi::Stats> {
    let mut figures = None;
    for line in BufReader::new(File::from(pipe)).lines() {
        let Ok(line) = line else { break };
        match uapi::Stats::parse(&line) {
            Some(s) => figures = Some(s),
            None => match log {
                Some(mut f) => {
                    let _ = writeln!(f, "{line}");
                }
                None => eprintln!("{line}"),
            },
        }
    }
    figures
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.run {
        Some(Run::Run { cgroup, command }) => run(cgroup, &command),
        None => {
            let c = cli.checkpoint;
            let output = match (&c.output, &c.migrate) {
                (Some(path), None) => Ok(Output::Path(path)),
                (None, Some(spec)) => migrate::resolve(spec)
                    .map(|a| Output::Migrate(a, Duration::from_secs(c.confirm_timeout))),
                _ => Err(Fail::Usage("give -o FILE|- or --migrate ADDR:PORT".into())),
            };
            let target = match (c.pid, c.cgroup) {
                (Some(pid), None) => Ok(Target::Pid(pid)),
                (None, Some(path)) => Ok(Target::Cgroup(path)),
                _ => Err(Fail::Usage("give a PID or --cgroup PATH".into())),
            };
            output.and_then(|output| {
                let req = Request {
                    output,
                    kill: c.kill,
                    allow_leaks: c.allow_leaks,
                    log: c.log.as_deref(),
                    stats: c.stats,
                    // A migration is a thawed checkpoint: the tree runs while its memory moves.
                    thawed: (c.thawed || c.migrate.is_some())
                        .then_some((c.rounds.unwrap_or(0), Duration::from_millis(c.max_downtime))),
                    track: c.track,
                    parent: c.parent.as_deref(),
                };
                checkpoint(&target?, &req)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => crtools::exit_with("ckpt", &f),
    }
}
