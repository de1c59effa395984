//! What `ckpt` and `restart` share: cgroup v2 handling, `/proc` parsing and the `/dev/cr` calls.

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crimage::uapi;

/// Where cgroup v2 is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Why a tool stops, with the exit status that says so.
#[derive(Debug)]
pub enum Fail {
    /// The operation failed: exit 1, with a one-line reason.
    Failed(String),
    /// The command line is wrong: exit 2.
    Usage(String),
}

impl Fail {
    /// The exit status this failure means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Fail::Failed(_) => 1,
            Fail::Usage(_) => 2,
        }
    }

    /// The reason, for stderr.
    pub fn message(&self) -> &str {
        match self {
            Fail::Failed(m) | Fail::Usage(m) => m,
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Failed(e.to_string())
    }
}

/// Shorthand for returning a failure with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::Fail::Failed(format!($($t)*))) };
}

/// `Fail::Failed` with a formatted message, as a value.
#[macro_export]
macro_rules! failed {
    ($($t:tt)*) => { $crate::Fail::Failed(format!($($t)*)) };
}

/// Ends the program: prints the failure, prefixed with `prog`, and exits with its status.
pub fn exit_with(prog: &str, f: &Fail) -> std::process::ExitCode {
    warn(prog, f.message());
    std::process::ExitCode::from(f.exit_code())
}

pub mod chain;
pub mod forest;
pub mod migrate;

/// The cgroup v2 directory that holds `pid`.
pub fn cgroup_of(pid: i32) -> Result<PathBuf, Fail> {
    let text =
        fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| failed!("pid {pid}: {e}"))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| failed!("pid {pid} is not in a cgroup v2 hierarchy"))?;
    Ok(Path::new(CGROUP_ROOT).join(rel.trim_start_matches('/')))
}

/// The pids in a cgroup (`cgroup.procs`).
pub fn cgroup_procs(dir: &Path) -> Result<Vec<i32>, Fail> {
    let text = fs::read_to_string(dir.join("cgroup.procs"))
        .map_err(|e| failed!("{}: {e}", dir.display()))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The parent of `pid`, from `/proc/PID/stat`; `None` once it is gone or being reaped.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parent_in_stat(&stat)
}

fn parent_in_stat(stat: &str) -> Option<i32> {
    let (_, mut fields) = split_stat(stat)?;
    // A task being reaped (state X) is already unhashed, and shows its parent as 0: read as
    // such, it would look like a tree of its own.
    if fields.next()? == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// The comm of a /proc `stat` line and the fields after it. The comm may hold spaces and
/// parentheses: the fields follow the last ')'.
fn split_stat(stat: &str) -> Option<(&str, std::str::SplitWhitespace<'_>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    Some((
        stat.get(open + 1..close)?,
        stat[close + 1..].split_whitespace(),
    ))
}

/// Says what holds `pid`, for a restart that cannot have it: its state, each thread's state,
/// and its parent, whose job reaping it is once it is a zombie.
pub fn pid_holder(pid: i32) -> String {
    let Some((comm, fields)) = read_stat(&format!("/proc/{pid}/stat")) else {
        return format!("pid {pid} is gone");
    };
    let state = fields.first().cloned().unwrap_or_default();
    let ppid: i32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let parent = read_stat(&format!("/proc/{ppid}/stat")).map_or(String::new(), |(c, _)| c);
    let mut threads = Vec::new();
    if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in dir.flatten() {
            let path = t.path().join("stat");
            if let Some((_, f)) = read_stat(&path.to_string_lossy()) {
                threads.push(format!("{} {}", t.file_name().to_string_lossy(), f[0]));
            }
        }
    }
    threads.sort();
    format!(
        "pid {pid} ({comm}) is in state {state}, child of {ppid} ({parent}); threads: {}",
        threads.join(", ")
    )
}

/// The comm and the fields after it of a `stat` file of /proc.
fn read_stat(path: &str) -> Option<(String, Vec<String>)> {
    let stat = fs::read_to_string(path).ok()?;
    let (comm, fields) = split_stat(&stat)?;
    let fields = fields.map(str::to_owned).collect::<Vec<_>>();
    (!fields.is_empty()).then(|| (comm.to_owned(), fields))
}

/// Makes a pipe carrying an image as large as an unprivileged process may (fs/pipe-max-size,
/// 1 MiB by default), so that the writer and the reader wake each other once per megabyte
/// rather than once per 64 KiB. Anything else (a file, a socket) is left alone, as is a pipe
/// that cannot grow.
pub fn widen_if_pipe(fd: RawFd) {
    let max = fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<libc::c_int>().ok())
        .unwrap_or(1 << 20);
    // SAFETY: fcntl on a descriptor the caller owns; F_SETPIPE_SZ fails harmlessly on anything
    // but a pipe.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, max) };
}

/// A pipe, both ends close-on-exec.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), Fail> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        fail!("pipe: {}", io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The figures of a checkpoint or restart, for a person: what the kernel counted, the time the
/// tree was stopped, and the time in all.
pub fn describe_stats(s: &uapi::Stats, stopped: Duration, total: Duration) -> String {
    let mb = s.bytes as f64 / 1e6;
    let secs = s.ns as f64 / 1e9;
    format!(
        "{} task{}, {} pages, {mb:.1} MB in {secs:.3} s ({:.0} MB/s); stopped {:.3} s, {:.3} s in all",
        s.tasks,
        if s.tasks == 1 { "" } else { "s" },
        s.pages,
        if secs > 0.0 { mb / secs } else { 0.0 },
        stopped.as_secs_f64(),
        total.as_secs_f64()
    )
}

/// Whether standard error is a terminal, where progress is shown.
pub fn stderr_is_terminal() -> bool {
    // SAFETY: isatty on a descriptor number has no preconditions.
    unsafe { libc::isatty(2) == 1 }
}

/// Shows `what` on standard error, every quarter second once a second has passed, as long as
/// `running` holds; `measure` gives (bytes done, bytes in all or 0). The line is erased at the
/// end. Meant for a scoped thread, on a terminal.
pub fn show_progress(
    what: &str,
    running: &std::sync::atomic::AtomicBool,
    measure: impl Fn() -> Option<(u64, u64)>,
) {
    use std::sync::atomic::Ordering;
    let start = Instant::now();
    let mut shown = false;
    while running.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        if start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let Some((done, total)) = measure() else {
            continue;
        };
        let line = if total > 0 {
            format!(
                "{what}: {:.0} of {:.0} MB ({}%)",
                done as f64 / 1e6,
                total as f64 / 1e6,
                done * 100 / total.max(1)
            )
        } else {
            format!("{what}: {:.0} MB", done as f64 / 1e6)
        };
        eprint!("\r{line}\x1b[K");
        shown = true;
        std::thread::sleep(Duration::from_millis(200));
    }
    if shown {
        eprint!("\r\x1b[K");
    }
}

/// `CR_IOC_PROGRESS`: how far the checkpoint this process runs has come.
pub fn ioctl_progress(dev: &fs::File) -> Option<uapi::Progress> {
    let mut b = [0u8; uapi::Progress::SIZE_V1];
    // SAFETY: CR_IOC_PROGRESS writes exactly its encoded size into `b`.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), uapi::IOC_PROGRESS as _, b.as_mut_ptr()) };
    (ret == 0).then(|| uapi::Progress::from_bytes(&b))
}

/// Whether `pid` is `root` or one of its descendants; `None` when a process on the way exited
/// while it was looked at, which a running tree does all the time.
pub fn in_subtree(root: i32, mut pid: i32) -> Option<bool> {
    for _ in 0..4096 {
        if pid == root {
            return Some(true);
        }
        match parent_of(pid) {
            Some(p) if p > 0 => pid = p,
            Some(_) => return Some(false),
            None => return None,
        }
    }
    Some(false)
}

fn write_file(path: &Path, value: &str) -> Result<(), Fail> {
    fs::write(path, value).map_err(|e| failed!("{}: {e}", path.display()))
}

/// Freezes a cgroup and waits until all of its tasks are frozen.
pub fn freeze(dir: &Path, timeout: Duration) -> Result<(), Fail> {
    write_file(&dir.join("cgroup.freeze"), "1")?;
    let start = Instant::now();
    loop {
        let events = fs::read_to_string(dir.join("cgroup.events"))?;
        if events.lines().any(|l| l.trim() == "frozen 1") {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let _ = thaw(dir);
            fail!(
                "{}: tasks did not freeze within {:?}",
                dir.display(),
                timeout
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Holds `dir` for one checkpoint until the result is dropped; fails at once when another ckpt
/// holds it. The hold is an abstract unix socket named after the cgroup: the kernel releases it
/// when its holder dies, however that happens, and it needs no file locking in the kernel.
pub fn hold_cgroup(dir: &Path) -> Result<std::os::unix::net::UnixListener, Fail> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};

    let name = format!("cr-ckpt:{}", dir.display());
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixListener::bind_addr(&addr).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            failed!(
                "{}: another checkpoint of this cgroup is in progress (EBUSY)",
                dir.display()
            )
        } else {
            failed!("{}: {e}", dir.display())
        }
    })
}

/// Thaws a cgroup.
pub fn thaw(dir: &Path) -> Result<(), Fail> {
    write_file(&dir.join("cgroup.freeze"), "0")
}

/// Kills every task of a cgroup, and leaves it thawed for whatever runs there next.
pub fn kill_all(dir: &Path) -> Result<(), Fail> {
    write_file(&dir.join("cgroup.kill"), "1")?;
    thaw(dir)
}

/// Creates a fresh cgroup `name` under the root, for one program to run in.
pub fn make_cgroup(name: &str) -> Result<PathBuf, Fail> {
    let dir = Path::new(CGROUP_ROOT).join(name);
    match fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && cgroup_procs(&dir)?.is_empty() => {
            // A leftover from an earlier run: it may still be frozen.
            thaw(&dir)?;
            Ok(dir)
        }
        Err(e) => Err(failed!("{}: {e}", dir.display())),
    }
}

/// Opens `/dev/cr`.
pub fn open_device() -> Result<fs::File, Fail> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/cr")
        .map_err(|e| failed!("/dev/cr: {e} (is cr.ko loaded?)"))
}

/// `CR_IOC_CHECKPOINT`.
pub fn ioctl_checkpoint(
    dev: &fs::File,
    pid: i32,
    fd: RawFd,
    logfd: RawFd,
    flags: u64,
) -> io::Result<()> {
    let args = uapi::OpArgs {
        pid,
        fd,
        logfd,
        reserved: 0,
        flags,
    };
    ioctl_in(dev, uapi::IOC_CHECKPOINT, &args.to_bytes())
}

/// An ioctl that reads its argument struct, `args`, whose size `cmd` encodes.
fn ioctl_in(dev: &fs::File, cmd: u32, args: &[u8]) -> io::Result<()> {
    // SAFETY: the ioctl reads exactly its encoded size, `args.len()` bytes, from the pointer,
    // which stays valid across the call.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), cmd as _, args.as_ptr()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `CR_IOC_PRECOPY`: the rounds of a thawed checkpoint, while the tree runs.
pub fn ioctl_precopy(dev: &fs::File, args: &uapi::PrecopyArgs) -> io::Result<()> {
    ioctl_in(dev, uapi::IOC_PRECOPY, &args.to_bytes())
}

/// `CR_IOC_STAGE`: hands the kernel the pages staged for address space `mm`.
pub fn ioctl_stage(dev: &fs::File, fd: RawFd, mm: u64) -> io::Result<()> {
    let args = uapi::StageArgs {
        fd,
        reserved: 0,
        mm,
    };
    ioctl_in(dev, uapi::IOC_STAGE, &args.to_bytes())
}

/// `CR_IOC_PARENT`: makes the next checkpoint on `dev` incremental to the image `parent`
/// identifies, found at `path`.
pub fn ioctl_parent(dev: &fs::File, parent: &chain::Identity, path: &Path) -> io::Result<()> {
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let args = uapi::ParentArgs {
        length: parent.length,
        checksum: parent.checksum,
        path: bytes.as_ptr() as u64,
        path_len: bytes.len() as u32,
        reserved: 0,
    };
    // `bytes` outlives the call, which copies the path.
    ioctl_in(dev, uapi::IOC_PARENT, &args.to_bytes())
}

/// The argument bytes of `CR_IOC_RESTART` for the calling task.
pub fn restart_args(fd: RawFd, logfd: RawFd, flags: u64) -> [u8; uapi::OpArgs::SIZE_V1] {
    uapi::OpArgs {
        pid: 0,
        fd,
        logfd,
        reserved: 0,
        flags,
    }
    .to_bytes()
}

/// Writes `msg` to stderr with one raw write: usable in a forked child, which must not take
/// the locks of Rust's buffered stderr.
pub fn raw_eprint(msg: &[u8]) {
    // SAFETY: writing a valid buffer to fd 2.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Prints to stderr, prefixed with the program name.
pub fn warn(prog: &str, msg: &str) {
    let _ = writeln!(io::stderr(), "{prog}: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_being_reaped_has_no_parent() {
        assert_eq!(parent_in_stat("109 (cr_target) X 0 84 84 0 -1"), None);
        assert_eq!(parent_in_stat("109 (a) b) Z 84 84 84 0 -1"), Some(84));
        assert_eq!(parent_in_stat("1 (init) S 0 1 1 0 -1"), Some(0));
    }

    #[test]
    fn parent_of_self_is_our_parent() {
        let me = std::process::id() as i32;
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        assert_eq!(parent_of(me), Some(ppid));
        assert_eq!(in_subtree(ppid, me), Some(true));
        assert_eq!(in_subtree(me, ppid), Some(false));
        assert_eq!(in_subtree(me, i32::MAX), None);
    }

    #[test]
    fn pid_holder_names_state_and_parent() {
        let me = std::process::id() as i32;
        let told = pid_holder(me);
        assert!(told.contains(&format!("pid {me} (")), "{told}");
        // The harness runs tests on threads of their own: the leader may sleep meanwhile.
        assert!(told.contains("is in state "), "{told}");
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() };
        assert!(told.contains(&format!("child of {ppid} (")), "{told}");
        assert!(told.contains(&format!("threads: {me} ")), "{told}");
        assert_eq!(pid_holder(i32::MAX), format!("pid {} is gone", i32::MAX));
    }

    #[test]
    fn one_hold_per_cgroup_at_a_time() {
        let dir = Path::new("/sys/fs/cgroup/cr-test-hold");
        let first = hold_cgroup(dir).unwrap();
        let second = hold_cgroup(dir).unwrap_err();
        assert!(
            second.message().contains("in progress (EBUSY)"),
            "{}",
            second.message()
        );
        assert!(hold_cgroup(Path::new("/sys/fs/cgroup/cr-test-other")).is_ok());
        drop(first);
        assert!(hold_cgroup(dir).is_ok());
    }

    #[test]
    fn restart_args_layout() {
        let b = restart_args(5, -1, uapi::RESTART_STATS);
        assert_eq!(&b[0..4], &0i32.to_le_bytes());
        assert_eq!(&b[4..8], &5i32.to_le_bytes());
        assert_eq!(&b[8..12], &(-1i32).to_le_bytes());
        assert!(b[12..16].iter().all(|&x| x == 0));
        assert_eq!(&b[16..24], &uapi::RESTART_STATS.to_le_bytes());
    }
}
