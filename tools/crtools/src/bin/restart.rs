//! `restart`: bring a checkpointed process back, with its original pid.
//!
//! restart reads the start of the image (header and process tree) itself, creates the task with
//! clone3(set_tid) in a fresh cgroup, and feeds the whole image, from its first byte, through a
//! pipe to that task, which restores itself in the kernel (CR_IOC_RESTART). The kernel's log
//! lines come back through a second pipe: the restore succeeded when that pipe closes without
//! an error line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use crimage::format::{
    self, RecordKind, StreamValidator, TreeEntry, TreeHeader, MAGIC, RECORD_HEADER_LEN,
};
use crtools::{fail, Fail};

/// How long restart waits for the checkpointed pid to be freed.
const PID_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const USAGE: &str = "usage: restart -i FILE|- [--detach] [--log FILE]

Restarts the process checkpointed in FILE (or standard input with -) with its original pid, in a
fresh cgroup v2 (cr-restart-PID), so that it can be checkpointed again. The pid must be free,
or become free within 10 s (as when the image is piped straight from ckpt --kill).
Terminals in the image are re-attached to restart's own terminal.

Without --detach, restart waits for the process and exits with its status (128+N when it was
killed by signal N). With --detach, it prints the pid once the process runs and exits 0.
Exit status 1: the image could not be restarted (the kernel's reason is printed, or written to
the --log FILE).";

struct Options {
    input: String,
    detach: bool,
    log: Option<String>,
}

fn parse(args: &[String]) -> Result<Options, Fail> {
    let (mut input, mut detach, mut log) = (None, false, None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-i" => input = Some(crtools::option_value(args, &mut i, "a file")?),
            "--log" => log = Some(crtools::option_value(args, &mut i, "a file")?),
            "--detach" => {
                detach = true;
                i += 1;
            }
            s => fail!("unknown option {s}"),
        }
    }
    Ok(Options {
        input: input.ok_or(Fail("missing -i FILE|-".into()))?,
        detach,
        log,
    })
}

/// Reads the magic, the header and the tree, keeping every byte for the kernel.
fn read_prefix(input: &mut dyn Read) -> Result<(Vec<u8>, TreeEntry), Fail> {
    let mut prefix = vec![0u8; 8];
    let mut v = StreamValidator::new();
    input
        .read_exact(&mut prefix)
        .map_err(|_| Fail("image is truncated".into()))?;
    v.magic(prefix[..8].try_into().unwrap_or(&[0; 8]))
        .map_err(|e| Fail(format!("invalid image: {e}")))?;
    let mut tree = None;
    for _ in 0..2 {
        let mut hdr = [0u8; RECORD_HEADER_LEN];
        input
            .read_exact(&mut hdr)
            .map_err(|_| Fail("image is truncated".into()))?;
        let h = v
            .record_header(&hdr)
            .map_err(|e| Fail(format!("invalid image: {e}")))?;
        let mut body = vec![0u8; h.payload_len() + h.padding_len()];
        input
            .read_exact(&mut body)
            .map_err(|_| Fail("image is truncated".into()))?;
        let (payload, pad) = body.split_at(h.payload_len());
        v.record_body(&h, payload, pad)
            .map_err(|e| Fail(format!("invalid image: {e}")))?;
        if h.kind == RecordKind::Tree as u32 {
            let (head, rest) = format::split_fixed(
                RecordKind::Tree,
                payload,
                TreeHeader::LEN,
                TreeHeader::decode,
            )
            .map_err(|e| Fail(format!("invalid image: {e}")))?;
            if head.count != 1 || rest.len() != TreeEntry::LEN {
                fail!("images of more than one task are not supported yet");
            }
            tree = TreeEntry::decode(rest);
        }
        prefix.extend_from_slice(&hdr);
        prefix.extend_from_slice(&body);
    }
    debug_assert!(prefix.starts_with(&MAGIC));
    let tree = tree.ok_or(Fail(
        "invalid image: no process tree after the header".into(),
    ))?;
    Ok((prefix, tree))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Fail> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Fail(format!("pipe: {}", io::Error::last_os_error())));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Creates the task with pid `pid` in cgroup `cg`. In the child, calls CR_IOC_RESTART and never
/// returns: on success the child is the restored process, on failure it exits 1.
/// `parent_ends` are the pipe ends the parent keeps: the child closes them, or the kernel would
/// never see the end of a truncated image.
fn spawn_restorer(
    pid: i32,
    cg: RawFd,
    dev: RawFd,
    image: RawFd,
    log: RawFd,
    parent_ends: [RawFd; 2],
) -> Result<i32, Fail> {
    let tids = [pid];
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        cgroup: cg as u64,
        ..CloneArgs::default()
    };
    let restart_args = crtools::restart_args(image, log);
    // SAFETY: clone3 with a valid, fully initialized clone_args of the size passed. The child
    // shares nothing with the parent (no CLONE_VM), and until it execs or dies it only makes raw
    // system calls on memory it already has.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            core::mem::size_of::<CloneArgs>(),
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            fail!("pid {pid} is in use: cannot restart with the same pid");
        }
        fail!("clone3 with pid {pid}: {e}");
    }
    if ret == 0 {
        // The child. The descriptors it needs are inherited; CR_IOC_RESTART does not return on
        // success.
        // SAFETY: closing inherited descriptors the child does not use; `dev` is open and
        // `restart_args` holds the argument struct's encoded size.
        unsafe {
            for fd in parent_ends {
                libc::close(fd);
            }
            libc::ioctl(dev, crimage::uapi::IOC_RESTART as _, restart_args.as_ptr());
            crtools::raw_eprint(b"restart: CR_IOC_RESTART failed\n");
            libc::_exit(1);
        }
    }
    Ok(ret as i32)
}

fn open_input(path: &str) -> Result<Box<dyn Read + Send>, Fail> {
    if path == "-" {
        Ok(Box::new(io::stdin()))
    } else {
        Ok(Box::new(
            File::open(path).map_err(|e| Fail(format!("{path}: {e}")))?,
        ))
    }
}

fn restart(opts: &Options) -> Result<u8, Fail> {
    let mut input = open_input(&opts.input)?;
    let (prefix, tree) = read_prefix(&mut input)?;
    let pid = tree.pid as i32;
    // An image streamed straight from `ckpt --kill` arrives while its process is still dying:
    // give the pid a moment to be freed.
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = std::time::Instant::now() + PID_WAIT;
    while proc_dir.exists() {
        if std::time::Instant::now() > deadline {
            fail!("pid {pid} is in use: cannot restart with the same pid");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let dev = crtools::open_device()?;
    let cg_dir = crtools::make_cgroup(&format!("cr-restart-{pid}"))?;
    let cg = File::open(&cg_dir).map_err(|e| Fail(format!("{}: {e}", cg_dir.display())))?;
    let (image_r, image_w) = pipe()?;
    let (log_r, log_w) = pipe()?;
    // The child must see the two ends it uses across clone; CLOEXEC does not matter there.
    let child = spawn_restorer(
        pid,
        cg.as_raw_fd(),
        dev.as_raw_fd(),
        image_r.as_raw_fd(),
        log_w.as_raw_fd(),
        [image_w.as_raw_fd(), log_r.as_raw_fd()],
    )?;
    drop(image_r);
    drop(log_w);
    drop(dev);

    // SAFETY: ignoring SIGPIPE: a restorer that failed closes the pipe, and the feeder then
    // sees EPIPE instead of dying.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let feeder = std::thread::spawn(move || -> io::Result<()> {
        let mut w = File::from(image_w);
        w.write_all(&prefix)?;
        io::copy(&mut input, &mut w)?;
        Ok(())
    });

    let mut log_out: Box<dyn Write> = match &opts.log {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Fail(format!("{p}: {e}")))?,
        ),
        None => Box::new(io::stderr()),
    };
    let mut failed = false;
    for line in BufReader::new(File::from(log_r)).lines() {
        let line = line.unwrap_or_default();
        failed |= line.contains("error");
        let _ = writeln!(log_out, "{line}");
    }
    let _ = feeder.join();

    if opts.detach && !failed {
        println!("{pid}");
        return Ok(0);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        fail!("waitpid {child}: {}", io::Error::last_os_error());
    }
    if failed {
        fail!("restart of pid {pid} failed");
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status) as u8)
    } else {
        Ok(128 + libc::WTERMSIG(status) as u8)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(Fail(msg)) => {
            crtools::warn("restart", &msg);
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match restart(&opts) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(msg)) => {
            crtools::warn("restart", &msg);
            ExitCode::FAILURE
        }
    }
}
