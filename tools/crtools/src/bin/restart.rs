//! `restart`: bring a checkpointed process tree back, with its original pids.
//!
//! restart reads the start of the image (header and process tree) itself and recreates the tree
//! as linux-cr's MakeForest did: every process is created by its parent with clone3(set_tid),
//! threads by their process, dead session leaders stand in as short-lived ghosts. Once every
//! task exists, each one calls CR_IOC_RESTART on the /dev/cr file they all inherited, and the
//! tasks take turns reading the image in the kernel, from its first byte: a regular file
//! directly (it is rewound), a stream through a pipe that restart feeds, by splice where it can.
//! The kernel's log lines come back through a second pipe: the restore succeeded when that pipe
//! closes without an error line.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use clap::Parser;
use crimage::format::{
    self, RecordKind, StreamValidator, TreeEntry, TreeHeader, MAGIC, RECORD_HEADER_LEN,
};
use crimage::uapi;
use crtools::chain::{self, Spaces};
use crtools::forest::{Birth, Plan};
use crtools::{fail, failed, migrate, pipe, Fail};

/// How long restart waits for the checkpointed pids to be freed.
const PID_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the creation of the tree may go without a task joining before restart gives up.
const JOIN_STALL: std::time::Duration = std::time::Duration::from_secs(120);
/// How long a failed --listen waits for the rest of the image, before it closes.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Restart a process tree checkpointed by ckpt, with its original pids.
///
/// The tree goes into a fresh cgroup v2 (cr-restart-PID), so that it can be checkpointed again.
///
/// With --pidns, the tree is restored into a new pid namespace (and new UTS and IPC namespaces),
/// so its pids never collide with running ones; that is the default for a container image, whose
/// root is the namespace's init. Otherwise the pids must be free, or become free within 10 s (as
/// when the image is piped straight from ckpt --kill). Terminals in the image are re-attached to
/// restart's own terminal.
///
/// Without --detach, restart waits for the root process and exits with its status (128+N when it
/// was killed by signal N). With --detach, it prints the root's pid once the tree runs and exits
/// 0. Exit status 1: the image could not be restarted (the kernel's reason is printed, or written
/// to the --log FILE); no task of the tree is left running. Exit status 2: usage errors.
///
/// With --dry-run, restart creates nothing: it reads the whole image and makes every check a
/// restart would make before changing anything (the process tree, each record, the files by path
/// and inode, this CPU's state), in its own process and in the kernel, and exits 0 when they all
/// pass. Whether the pids will be free then is not one of them.
///
/// With --listen ADDR:PORT, the image comes from `ckpt PID --migrate ADDR:PORT` on another
/// machine (restart says "restart: listening on ADDR:PORT" once it listens, and takes one
/// connection). Once every task of the tree runs here, restart tells the source, which then
/// kills its own; when the restart fails, it tells the source why, and the source thaws its
/// tree. The pids must be free here already (the source holds its own until it hears back).
///
/// An incremental image (ckpt --parent) restores with its chain of parents: each is found at
/// the path its child recorded, or else in a --parent-dir, and must be the very image the child
/// was written against (its length and checksum), whole.
#[derive(Parser)]
#[command(
    name = "restart",
    override_usage = "restart -i FILE|- [--pidns|--no-pidns] [--detach] [--dry-run] [--log FILE] [--stats] [--parent-dir DIR]\n       \
                      restart --listen ADDR:PORT [--pidns|--no-pidns] [--detach] [--log FILE] [--stats]"
)]
struct Options {
    /// The image: a file, or - for standard input.
    #[arg(short = 'i', value_name = "FILE|-", required_unless_present = "listen")]
    input: Option<String>,
    /// Take the image of a migration from one connection on ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with_all = ["input", "dry_run"])]
    listen: Option<String>,
    /// Print the root's pid once the tree runs, and exit.
    #[arg(long)]
    detach: bool,
    /// Check the image without creating anything.
    #[arg(long)]
    dry_run: bool,
    /// Append the kernel's reasons to FILE instead of standard error.
    #[arg(long, value_name = "FILE")]
    log: Option<String>,
    /// Restore into a new pid namespace (the default for a container image).
    #[arg(long, overrides_with = "no_pidns")]
    pidns: bool,
    /// Restore with the pids of the restarter's namespace.
    #[arg(long, overrides_with = "pidns")]
    no_pidns: bool,
    /// Print the figures: tasks, pages, bytes, time stopped, time in all, and MB/s.
    #[arg(long)]
    stats: bool,
    /// Where to look for the parent of an incremental image, when it is not at the path the
    /// image recorded (repeatable).
    #[arg(long, value_name = "DIR")]
    parent_dir: Vec<PathBuf>,
}

impl Options {
    /// `--pidns`, `--no-pidns`, or neither (the image decides).
    fn pidns(&self) -> Option<bool> {
        match (self.pidns, self.no_pidns) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

/// The memory that KEEP records refer to, one sparse memfd per address space: what a precopy
/// image last gave at each address, over what the parent image restores there.
type Staged = Spaces;

/// Reads the start of the stream. A precopy image is read whole and staged (over its parent's
/// memory, for an incremental one); then the image that follows is the one to restart.
/// Otherwise, the bytes read are the start of that image.
fn take_precopy(input: &mut dyn Read, dirs: &[PathBuf]) -> Result<(Vec<u8>, Staged), Fail> {
    let invalid = |e: &dyn std::fmt::Display| failed!("invalid image: {e}");
    let mut v = StreamValidator::new();
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| failed!("image is truncated"))?;
    v.magic(&magic).map_err(|e| invalid(&e))?;
    let (mut hdr, mut body) = ([0u8; RECORD_HEADER_LEN], Vec::new());
    chain::read_record(input, &mut v, &mut hdr, &mut body)?;
    let precopy = v
        .header()
        .is_some_and(|h| h.flags & format::header_flags::PRECOPY != 0);
    if !precopy {
        let mut head = magic.to_vec();
        head.extend_from_slice(&hdr);
        head.extend_from_slice(&body);
        return Ok((head, Vec::new()));
    }
    let mut staged: Staged = Vec::new();
    let mut first = true;
    while !v.is_complete() {
        let h = chain::read_record(input, &mut v, &mut hdr, &mut body)?;
        precopy_record(&mut staged, first, h.kind, &body[..h.payload_len()], dirs)?;
        first = false;
    }
    Ok((Vec::new(), staged))
}

/// One record of a precopy image after its header, taken into `staged`; `first` when it is the
/// first after the header, where a PARENT may stand.
fn precopy_record(
    staged: &mut Staged,
    first: bool,
    kind: u32,
    payload: &[u8],
    dirs: &[PathBuf],
) -> Result<(), Fail> {
    match RecordKind::from_u32(kind) {
        Some(RecordKind::Parent) if first => *staged = stage_parent(payload, dirs)?,
        Some(RecordKind::Precopy) => chain::apply_precopy(staged, payload)?,
        Some(RecordKind::Trailer) => {}
        Some(RecordKind::Error) => {
            let why = format::decode_error_message(payload).unwrap_or("?");
            fail!("invalid image: the checkpoint failed while it copied memory: {why}")
        }
        _ => fail!("invalid image: a {kind:#x} record in a precopy image"),
    }
    Ok(())
}

/// The precopy image at the start of regular file `file`, read in place: what it staged, and
/// where the image to restart starts. `None` where the file is no precopy image, or cannot be
/// mapped, and [`take_precopy`] reads it instead. Through a buffer, a gigabyte of precopied
/// pages costs a copy more (a tmpfs read moves about 400 MB/s in the test VM).
fn take_precopy_mapped(file: &File, dirs: &[PathBuf]) -> Result<Option<(Staged, u64)>, Fail> {
    let Some(mut records) = chain::Records::mapped(file) else {
        return Ok(None);
    };
    let mut staged: Staged = Vec::new();
    let mut first = true;
    while let Some(r) = records.next_record()? {
        if r.kind == RecordKind::Header as u32 {
            if !records.precopy {
                return Ok(None);
            }
            continue;
        }
        precopy_record(&mut staged, first, r.kind, r.payload, dirs)?;
        first = false;
        if records.image_complete() {
            return Ok(Some((staged, records.offset())));
        }
    }
    fail!("image is truncated")
}

/// The memory of the parent a PARENT record names, found by its path or in `dirs`.
fn stage_parent(payload: &[u8], dirs: &[PathBuf]) -> Result<Staged, Fail> {
    let parent = chain::ParentRef::decode(payload)?;
    let path = chain::find(&parent, dirs)?;
    chain::materialize(&path, dirs).map_err(|e| failed!("{}: {}", path.display(), e.message()))
}

/// Reads the magic, the header and the tree, keeping every byte for the kernel.
fn read_prefix(
    input: &mut dyn Read,
    staged: &mut Staged,
    dirs: &[PathBuf],
) -> Result<(Vec<u8>, Plan), Fail> {
    let truncated = || failed!("image is truncated");
    let invalid = |e: &dyn std::fmt::Display| failed!("invalid image: {e}");
    let mut prefix = vec![0u8; 8];
    let mut v = StreamValidator::new();
    input.read_exact(&mut prefix).map_err(|_| truncated())?;
    v.magic(prefix[..8].try_into().unwrap_or(&[0; 8]))
        .map_err(|e| invalid(&e))?;
    let mut plan = None;
    let mut records = 0;
    while plan.is_none() && records < 3 {
        records += 1;
        let (mut hdr, mut body) = ([0u8; RECORD_HEADER_LEN], Vec::new());
        let h = chain::read_record(input, &mut v, &mut hdr, &mut body)?;
        let payload = &body[..h.payload_len()];
        // The parent of an incremental image; after a precopy image, its parent is staged.
        if h.kind == RecordKind::Parent as u32 && records == 2 && staged.is_empty() {
            *staged = stage_parent(payload, dirs)?;
        }
        if h.kind == RecordKind::Tree as u32 {
            let (head, rest) = format::split_fixed(
                RecordKind::Tree,
                payload,
                TreeHeader::LEN,
                TreeHeader::decode,
            )
            .map_err(|e| invalid(&e))?;
            if rest.len() != head.count as usize * TreeEntry::LEN {
                fail!("invalid image: the tree's length does not match its count");
            }
            let entries = rest
                .chunks_exact(TreeEntry::LEN)
                .filter_map(TreeEntry::decode)
                .collect();
            plan = Some(Plan::new(&head, entries).map_err(|e| failed!("cannot restart: {e}"))?);
        }
        prefix.extend_from_slice(&hdr);
        prefix.extend_from_slice(&body);
    }
    debug_assert!(prefix.starts_with(&MAGIC));
    let plan = plan.ok_or(failed!("invalid image: no process tree after the header"))?;
    Ok((prefix, plan))
}

/// `struct clone_args` (libc's), all zero.
fn clone_args() -> libc::clone_args {
    // SAFETY: `clone_args` is plain integers, for which zero is valid (and means "unused").
    unsafe { core::mem::zeroed() }
}

const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_SIGHAND: u64 = libc::CLONE_SIGHAND as u64;
const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_NEWUTS: u64 = libc::CLONE_NEWUTS as u64;
const CLONE_NEWIPC: u64 = libc::CLONE_NEWIPC as u64;
const CLONE_NEWPID: u64 = libc::CLONE_NEWPID as u64;
const CLONE_SYSVSEM: u64 = libc::CLONE_SYSVSEM as u64;
/// `CLONE_INTO_CGROUP`, which does not fit libc's `c_int` constant.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Shared by every task restart creates (a MAP_SHARED page, inherited across fork): how many
/// tasks exist, and when they may call CR_IOC_RESTART.
#[repr(C)]
struct Control {
    created: AtomicU32,
    /// 0 while the tree is being built, 1 once every task exists.
    go: AtomicU32,
    failed: AtomicU32,
}

impl Control {
    fn new() -> Result<&'static Control, Fail> {
        // SAFETY: a fresh anonymous shared mapping of one page, zero-filled, which is a valid
        // `Control` (atomics of zero); it is never unmapped, hence 'static.
        unsafe {
            let p = libc::mmap(
                core::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                fail!("mmap: {}", io::Error::last_os_error());
            }
            Ok(&*(p as *const Control))
        }
    }

    fn wake_all(&self) {
        // SAFETY: a futex wake on a live, aligned u32 of a shared mapping.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.go.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
                0,
                0,
                0,
            );
        }
    }
}

/// What every task of the tree needs to restore itself.
struct Env {
    plan: Plan,
    control: &'static Control,
    dev: RawFd,
    image: RawFd,
    log: RawFd,
    /// The ends the restarter keeps (-1 for none): a task that kept them would hide the
    /// image's end.
    parent_ends: [RawFd; 2],
}

/// clone3 for a new process; returns 0 in the child.
fn clone_process(
    flags: u64,
    exit_signal: u32,
    pid: Option<u32>,
    cgroup: Option<RawFd>,
) -> io::Result<i32> {
    let tids = [pid.unwrap_or(0) as i32];
    let mut args = clone_args();
    args.flags = flags
        | if cgroup.is_some() {
            CLONE_INTO_CGROUP
        } else {
            0
        };
    args.exit_signal = u64::from(exit_signal);
    if pid.is_some() {
        args.set_tid = tids.as_ptr() as u64;
        args.set_tid_size = 1;
    }
    args.cgroup = cgroup.unwrap_or(0) as u64;
    // SAFETY: clone3 with a valid, fully initialized clone_args of the size passed, without
    // CLONE_VM: the child gets a copy of this single-threaded process.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            core::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as i32)
}

/// Reports a failure of the tree's construction on the log and makes every task give up.
fn give_up(env: &Env, msg: &str) -> ! {
    let line = format!("restart: error: {msg}\n");
    // SAFETY: writing a valid buffer to the log pipe.
    unsafe { libc::write(env.log, line.as_ptr().cast(), line.len()) };
    env.control.failed.store(1, Ordering::SeqCst);
    env.control.go.store(1, Ordering::SeqCst);
    env.control.wake_all();
    // SAFETY: leaving this process of the tree; nothing to clean up.
    unsafe { libc::_exit(1) }
}

/// Creates process `c` of the plan, as a child of the caller (process `creator` of the plan, or
/// none: the placeholder init), and returns its pid.
fn spawn(env: &Env, creator: Option<usize>, c: usize) -> i32 {
    let e = env.plan.entries[c];
    // The placeholder shares nothing with the root: it closes the restarter's descriptors
    // once the root exists, which in a shared table would be the root's image and log.
    let flags = creator.map_or(0, |p| env.plan.share_flags(p, c));
    match clone_process(flags, e.exit_signal, Some(e.pid), None) {
        Ok(0) => become_task(env, c),
        Ok(pid) => pid,
        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => give_up(
            env,
            &format!("pid {} is in use: cannot restart with the same pid", e.pid),
        ),
        Err(err) => give_up(env, &format!("clone3 with pid {}: {err}", e.pid)),
    }
}

/// The process of entry `i`: sets its session and group, creates its children and threads,
/// waits until the whole tree exists, then restores itself. Never returns.
fn become_task(env: &Env, i: usize) -> ! {
    let e = env.plan.entries[i];
    // SAFETY: closing inherited descriptors this task does not use.
    unsafe {
        for fd in env.parent_ends {
            libc::close(fd);
        }
    }
    let id = match env.plan.identity(i) {
        Ok(id) => id,
        Err(problem) => give_up(env, &problem.to_string()),
    };
    // SAFETY: plain system calls on the calling process.
    unsafe {
        if id.setsid && libc::setsid() < 0 {
            give_up(
                env,
                &format!("process {}: setsid: {}", e.pid, io::Error::last_os_error()),
            );
        }
        if id.lead_group && libc::setpgid(0, 0) < 0 {
            give_up(
                env,
                &format!("process {}: setpgid: {}", e.pid, io::Error::last_os_error()),
            );
        }
    }
    let (subreaper_now, subreaper_after) = env.plan.subreaper(i);
    set_subreaper(subreaper_now);
    let births = env.plan.births(i).unwrap_or_default();
    for birth in births {
        match birth {
            Birth::Direct(c) => {
                spawn(env, Some(i), c);
            }
            Birth::Ghost { sid, children } => {
                let ghost = match clone_process(0, libc::SIGCHLD as u32, Some(sid), None) {
                    Ok(0) => {
                        // SAFETY: the ghost leads the dead leader's session.
                        unsafe { libc::setsid() };
                        for c in children {
                            spawn(env, Some(i), c);
                        }
                        // SAFETY: the ghost's work is done; its children go to the subreaper.
                        unsafe { libc::_exit(0) }
                    }
                    Ok(pid) => pid,
                    Err(err) => give_up(env, &format!("clone3 of ghost {sid}: {err}")),
                };
                let mut status = 0;
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(ghost, &mut status, 0) };
            }
        }
    }
    set_subreaper(subreaper_after);
    for t in env.plan.threads(i) {
        spawn_thread(env, i, t);
    }
    env.control.created.fetch_add(1, Ordering::SeqCst);
    wait_go(env.control);
    if env.control.failed.load(Ordering::SeqCst) != 0 {
        // SAFETY: giving up quietly; whoever failed said why.
        unsafe { libc::_exit(1) }
    }
    // SAFETY: plain system calls on the calling process.
    unsafe {
        if let Some(g) = id.join_group {
            if libc::setpgid(0, g as i32) < 0 {
                give_up(
                    env,
                    &format!(
                        "process {}: joining group {g}: {}",
                        e.pid,
                        io::Error::last_os_error()
                    ),
                );
            }
        }
        let (sid, pgid) = (libc::getsid(0) as u32, libc::getpgid(0) as u32);
        if id.expect_sid.is_some_and(|s| s != sid) || id.expect_pgid.is_some_and(|g| g != pgid) {
            give_up(
                env,
                &format!(
                    "process {}: ended in session {sid} group {pgid}, not {} {}",
                    e.pid, e.sid, e.pgid
                ),
            );
        }
    }
    let args = crtools::restart_args(env.image, env.log, uapi::RESTART_STATS);
    // SAFETY: CR_IOC_RESTART reads its encoded size from `args`; it returns only on failure or
    // for a zombie.
    let ret = unsafe { libc::ioctl(env.dev, uapi::IOC_RESTART as _, args.as_ptr()) };
    if ret >= uapi::RESTART_ZOMBIE as i32 {
        exit_as_zombie((ret & 0xffff) as u32);
    }
    // SAFETY: leaving; the kernel logged why.
    unsafe { libc::_exit(1) }
}

fn set_subreaper(on: bool) {
    // SAFETY: prctl on the calling process.
    unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            libc::c_ulong::from(on),
            0,
            0,
            0,
        )
    };
}

/// Sleeps until the restarter says the tree is complete.
fn wait_go(control: &Control) {
    while control.go.load(Ordering::SeqCst) == 0 {
        // SAFETY: a futex wait on a live, aligned u32 of a shared mapping, for value 0.
        unsafe {
            raw_syscall4(
                libc::SYS_futex,
                control.go.as_ptr() as usize,
                libc::FUTEX_WAIT as usize,
                0,
                0,
            );
        }
    }
}

/// Dies with the wait status a zombie had: its parent reaps it as before.
fn exit_as_zombie(status: u32) -> ! {
    let sig = (status & 0x7f) as i32;
    // SAFETY: plain system calls on the calling process, which ends here.
    unsafe {
        if sig == 0 {
            libc::_exit(((status >> 8) & 0xff) as i32);
        }
        // No core file: the checkpointed one dumped (or not) long ago.
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig)
    }
}

/// Raw system call for threads, which must not touch errno (thread-local, and they have no
/// TLS of their own).
///
/// # Safety
///
/// The arguments must be valid for system call `n`.
unsafe fn raw_syscall4(n: i64, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the arguments; `syscall` clobbers only rcx and r11.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// What a thread needs: it runs on a bare stack, without TLS, so only raw system calls.
#[repr(C)]
struct ThreadStart {
    control: &'static Control,
    dev: RawFd,
    args: [u8; uapi::OpArgs::SIZE_V1],
}

extern "C" fn thread_main(start: usize) -> ! {
    // SAFETY: `start` is the leaked `ThreadStart` of `spawn_thread`.
    let start = unsafe { &*(start as *const ThreadStart) };
    start.control.created.fetch_add(1, Ordering::SeqCst);
    wait_go(start.control);
    if start.control.failed.load(Ordering::SeqCst) == 0 {
        // SAFETY: CR_IOC_RESTART reads its encoded size from `args`; on success it does not
        // return here but to the checkpointed thread's registers.
        unsafe {
            raw_syscall4(
                libc::SYS_ioctl,
                start.dev as usize,
                uapi::IOC_RESTART as usize,
                start.args.as_ptr() as usize,
                0,
            );
        }
    }
    // SAFETY: ends this thread only.
    unsafe { raw_syscall4(libc::SYS_exit, 1, 0, 0, 0) };
    unreachable!()
}

/// Creates thread `t` of process `i` with clone3, on a fresh stack.
fn spawn_thread(env: &Env, i: usize, t: usize) {
    const STACK: usize = 64 << 10;
    let e = env.plan.entries[t];
    let start = Box::leak(Box::new(ThreadStart {
        control: env.control,
        dev: env.dev,
        args: crtools::restart_args(env.image, env.log, uapi::RESTART_STATS),
    }));
    // SAFETY: a fresh private stack; restore replaces the whole address space anyway.
    let stack = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        give_up(env, "mmap of a thread stack failed");
    }
    let tids = [e.pid as i32];
    let mut args = clone_args();
    args.flags =
        CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | env.plan.share_flags(i, t);
    args.set_tid = tids.as_ptr() as u64;
    args.set_tid_size = 1;
    args.stack = stack as u64;
    args.stack_size = STACK as u64;
    let entry: extern "C" fn(usize) -> ! = thread_main;
    let ret: isize;
    // SAFETY: clone3 of a thread on its own stack. The child starts with the same registers,
    // so r12 and r13 carry its argument and entry point; it never returns into this frame.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") &args as *const libc::clone_args,
            in("rsi") core::mem::size_of::<libc::clone_args>(),
            in("r12") start as *const ThreadStart as usize,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        give_up(env, &format!("clone3 of thread {}: errno {}", e.pid, -ret));
    }
}

/// In a new pid namespace for an image whose root is not its init: this task is the init. It
/// creates the root with its pid, reaps orphans, and exits with the root's status.
fn placeholder_init(env: &Env, unblocked: &libc::sigset_t) -> ! {
    let root = spawn(env, None, 0);
    // The tree's root was cloned with every signal blocked; the init itself takes them again.
    set_signal_mask(unblocked);
    // SAFETY: the restarter's pipe ends and the tree's own descriptors are not the init's.
    unsafe {
        for fd in env
            .parent_ends
            .into_iter()
            .chain([env.image, env.log, env.dev])
        {
            libc::close(fd);
        }
    }
    loop {
        let mut status = 0;
        // SAFETY: reaping children of this init.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == root || pid < 0 {
            // SAFETY: the namespace ends with its init.
            unsafe {
                libc::_exit(if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                })
            }
        }
    }
}

/// Blocks every signal of the calling thread; returns the mask it had.
fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data that sigfillset and sigprocmask fill in.
    unsafe {
        let (mut all, mut old): (libc::sigset_t, libc::sigset_t) =
            (core::mem::zeroed(), core::mem::zeroed());
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Sets the calling thread's signal mask.
fn set_signal_mask(mask: &libc::sigset_t) {
    // SAFETY: a valid mask; no old mask is asked for.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, core::ptr::null_mut()) };
}

/// Where the image comes from.
enum Input {
    /// A regular file, which the kernel reads itself once it is rewound.
    File(File),
    /// A pipe or a socket, which restart feeds the kernel through a pipe of its own.
    Stream(File),
}

impl Input {
    fn open(path: &str) -> Result<Self, Fail> {
        let file = if path == "-" {
            // SAFETY: duplicating standard input, which stays open.
            let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                fail!("standard input: {}", io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor owned by nobody else.
            File::from(unsafe { OwnedFd::from_raw_fd(fd) })
        } else {
            File::open(path).map_err(|e| failed!("{path}: {e}"))?
        };
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        Ok(if regular {
            Self::File(file)
        } else {
            Self::Stream(file)
        })
    }

    /// Stages a precopy image, reads the prefix of the image to restart, then makes that image
    /// readable by the kernel from its first byte.
    fn prepare(self, dirs: &[PathBuf]) -> Result<(Plan, Source), Fail> {
        match self {
            Self::File(mut f) => {
                // Where the image to restart starts: after the precopy image, if any.
                let (head, mut staged, start) = match take_precopy_mapped(&f, dirs)? {
                    Some((staged, start)) => {
                        f.seek(io::SeekFrom::Start(start))
                            .map_err(|e| failed!("reading the image: {e}"))?;
                        (Vec::new(), staged, start)
                    }
                    None => {
                        let (head, staged) = take_precopy(&mut f, dirs)?;
                        let start = if head.is_empty() {
                            f.stream_position()
                                .map_err(|e| failed!("reading the image: {e}"))?
                        } else {
                            0
                        };
                        (head, staged, start)
                    }
                };
                let (_, plan) =
                    read_prefix(&mut io::Cursor::new(head).chain(&mut f), &mut staged, dirs)?;
                f.seek(io::SeekFrom::Start(start))
                    .map_err(|e| failed!("rewinding the image: {e}"))?;
                let source = Source {
                    image: f.into(),
                    feed: None,
                    staged,
                };
                Ok((plan, source))
            }
            Self::Stream(mut f) => {
                crtools::widen_if_pipe(f.as_raw_fd());
                let (head, mut staged) = take_precopy(&mut f, dirs)?;
                let (prefix, plan) =
                    read_prefix(&mut io::Cursor::new(head).chain(&mut f), &mut staged, dirs)?;
                let (read, write) = pipe()?;
                crtools::widen_if_pipe(write.as_raw_fd());
                let source = Source {
                    image: read,
                    feed: Some((prefix, f, write)),
                    staged,
                };
                Ok((plan, source))
            }
        }
    }
}

/// The image, ready for the kernel.
struct Source {
    /// What the tasks read: the rewound file, or the read end of the feeder's pipe.
    image: OwnedFd,
    /// For a stream: what the feeder writes (the prefix restart already read, then the rest)
    /// and the pipe end it writes to. It starts only once the tree exists: a process that
    /// forks must be single-threaded.
    feed: Option<(Vec<u8>, File, OwnedFd)>,
    /// What a precopy image before the image gave, for the kernel.
    staged: Staged,
}

impl Source {
    /// Hands the staged pages to the kernel, before any task restores itself from `dev`.
    fn stage(&self, dev: &File) -> Result<(), Fail> {
        for (mm, file) in &self.staged {
            crtools::ioctl_stage(dev, file.as_raw_fd(), *mm)
                .map_err(|e| failed!("staging the precopied pages: {e}"))?;
        }
        Ok(())
    }

    /// The feeder's pipe end, which no task may hold (-1 for a file).
    fn feeder_end(&self) -> RawFd {
        self.feed.as_ref().map_or(-1, |(_, _, w)| w.as_raw_fd())
    }

    /// Takes in the rest of a stream, into an anonymous file that the kernel then reads as a
    /// file: for a stream whose writer cannot finish until restart is under way.
    fn spill(&mut self) -> Result<(), Fail> {
        let Some((prefix, mut rest, _)) = self.feed.take() else {
            return Ok(());
        };
        let mut spill = chain::memfd(c"cr-image")?;
        let taken = spill
            .write_all(&prefix)
            .and_then(|()| io::copy(&mut rest, &mut spill))
            .and_then(|_| spill.rewind());
        taken.map_err(|e| failed!("taking in the image: {e}"))?;
        self.image = spill.into();
        Ok(())
    }

    /// Starts feeding a stream; a file needs nothing.
    fn start(&mut self, fed: &Arc<AtomicU64>) -> Option<std::thread::JoinHandle<io::Result<()>>> {
        self.feed
            .take()
            .map(|(prefix, rest, pipe)| feed(prefix, rest, pipe, fed.clone()))
    }

    /// How far the kernel has read, for progress: a file's position, which the tasks' reads
    /// move (they share the open file), and its size; for a stream, what the feeder passed on.
    fn meter(&self, fed: &Arc<AtomicU64>) -> impl Fn() -> Option<(u64, u64)> {
        let file = self
            .feed
            .is_none()
            .then(|| self.image.try_clone().ok().map(File::from))
            .flatten();
        let fed = fed.clone();
        move || match &file {
            Some(f) => {
                // SAFETY: lseek on a descriptor this closure owns; SEEK_CUR moves nothing.
                let pos = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_CUR) };
                let size = f.metadata().ok()?.len();
                (pos >= 0).then_some((pos as u64, size))
            }
            None => Some((fed.load(Ordering::Relaxed), 0)),
        }
    }
}

/// Writes the image, from its first byte, into a pipe for the kernel, from a thread: the
/// prefix restart already read, then the rest, moved by splice without a copy where the source
/// allows it.
fn feed(
    prefix: Vec<u8>,
    mut rest: File,
    pipe: OwnedFd,
    fed: Arc<AtomicU64>,
) -> std::thread::JoinHandle<io::Result<()>> {
    // SAFETY: ignoring SIGPIPE: a reader that failed closes the pipe, and the feeder then sees
    // EPIPE instead of dying.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::thread::spawn(move || -> io::Result<()> {
        let mut w = File::from(pipe);
        w.write_all(&prefix)?;
        fed.fetch_add(prefix.len() as u64, Ordering::Relaxed);
        loop {
            // SAFETY: splice between two descriptors this thread owns, without offsets.
            let n = unsafe {
                libc::splice(
                    rest.as_raw_fd(),
                    std::ptr::null_mut(),
                    w.as_raw_fd(),
                    std::ptr::null_mut(),
                    1 << 20,
                    libc::SPLICE_F_MOVE,
                )
            };
            match n {
                0 => return Ok(()),
                n if n > 0 => {
                    fed.fetch_add(n as u64, Ordering::Relaxed);
                }
                _ => {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EINVAL) {
                        return Err(err);
                    }
                    // Not spliceable (a socket without splice_read, say): copy.
                    io::copy(&mut rest, &mut w)?;
                    return Ok(());
                }
            }
        }
    })
}

fn open_log(opts: &Options) -> Result<Box<dyn Write>, Fail> {
    Ok(match &opts.log {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| failed!("{p}: {e}"))?,
        ),
        None => Box::new(io::stderr()),
    })
}

/// `--dry-run`: the tree's plan here, then every record through the kernel's checks.
fn dry_run(opts: &Options, input: Input) -> Result<u8, Fail> {
    let (plan, mut source) = input.prepare(&opts.parent_dir)?;
    let dev = crtools::open_device()?;
    source.stage(&dev)?;
    let (log_r, log_w) = pipe()?;
    let feeder = source.start(&Arc::new(AtomicU64::new(0)));
    let args = uapi::OpArgs {
        pid: 0,
        fd: source.image.as_raw_fd(),
        logfd: log_w.as_raw_fd(),
        reserved: 0,
        flags: uapi::RESTART_DRY_RUN,
    }
    .to_bytes();
    // SAFETY: CR_IOC_RESTART reads exactly its encoded size from `args`, which stays valid.
    let ret = unsafe { libc::ioctl(dev.as_raw_fd(), uapi::IOC_RESTART as _, args.as_ptr()) };
    let err = io::Error::last_os_error();
    drop(log_w);
    drop(source);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let mut log_out = open_log(opts)?;
    for line in BufReader::new(File::from(log_r)).lines() {
        let _ = writeln!(log_out, "{}", line.unwrap_or_default());
    }
    if ret < 0 {
        fail!("dry run: the image cannot be restarted: {err}");
    }
    println!(
        "restart: dry run: the image can be restarted ({} tasks)",
        plan.entries.len()
    );
    Ok(0)
}

/// Restarts the image from `input`; with `migration`, the connection of a migration's source,
/// which hears whether the tree runs.
fn restart(opts: &Options, input: Input, migration: Option<&TcpStream>) -> Result<u8, Fail> {
    let began = std::time::Instant::now();
    let (plan, mut source) = input.prepare(&opts.parent_dir)?;
    let root = plan.entries[0].pid;
    let pidns = opts.pidns().unwrap_or(plan.container);
    if plan.container && !pidns {
        fail!("a container image (its root is pid 1 of its namespace) needs --pidns");
    }
    if !pidns {
        // An image streamed straight from `ckpt --kill` arrives while its processes still run:
        // they die only once the whole image is written, so it is taken in first, into memory.
        let busy = plan
            .pids()
            .iter()
            .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if busy && migration.is_some() {
            // The source holds them, frozen, until it hears back: waiting would not free them.
            let pid = plan
                .pids()
                .into_iter()
                .find(|p| Path::new(&format!("/proc/{p}")).exists());
            fail!(
                "pid {} is in use here: restore into a new pid namespace (--pidns)",
                pid.unwrap_or(root)
            );
        }
        if busy {
            source.spill()?;
        }
        // Then give the pids a moment to be freed.
        let deadline = std::time::Instant::now() + PID_WAIT;
        for pid in plan.pids() {
            let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
            while proc_dir.exists() {
                if std::time::Instant::now() > deadline {
                    fail!(
                        "pid {pid} is in use: cannot restart with the same pid ({})",
                        crtools::pid_holder(pid as i32)
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    let count = plan.entries.len() as u32;
    let dev = crtools::open_device()?;
    source.stage(&dev)?;
    let cg_dir = crtools::make_cgroup(&format!("cr-restart-{root}"))?;
    let cg = File::open(&cg_dir).map_err(|e| failed!("{}: {e}", cg_dir.display()))?;
    let (log_r, log_w) = pipe()?;
    let env = Env {
        plan,
        control: Control::new()?,
        dev: dev.as_raw_fd(),
        image: source.image.as_raw_fd(),
        log: log_w.as_raw_fd(),
        parent_ends: [source.feeder_end(), log_r.as_raw_fd()],
    };
    // Still single-threaded here: the children may use the allocator freely.
    let namespaces = if pidns {
        CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC
    } else {
        0
    };
    let placeholder = pidns && !env.plan.container;
    let first_pid = if pidns { None } else { Some(root) };
    let exit_signal = env.plan.entries[0].exit_signal;
    let exit_signal = if placeholder || exit_signal == 0 {
        libc::SIGCHLD as u32
    } else {
        exit_signal
    };
    // Every task of the tree starts with every signal blocked, as its clone inherits: a signal
    // sent to a pid before its task joins the restart (which blocks them in the kernel) would
    // otherwise meet restart's own dispositions, and SIGUSR1's default kills. It stays pending
    // and is delivered once the restored task runs, with its own handlers and mask.
    let unblocked = block_all_signals();
    let cloned = clone_process(namespaces, exit_signal, first_pid, Some(cg.as_raw_fd()));
    if let Ok(0) = cloned {
        if placeholder {
            placeholder_init(&env, &unblocked)
        }
        become_task(&env, 0)
    }
    set_signal_mask(&unblocked);
    let child = match cloned {
        Ok(pid) => pid,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            fail!("pid {root} is in use: cannot restart with the same pid")
        }
        Err(e) => fail!("clone3 of pid {root}: {e}"),
    };
    drop(log_w);
    drop(dev);

    // Every task exists (or one failed): let them restore themselves. A task that never counts
    // itself (killed before it could, or stuck) must not hang the restart: once no task has
    // joined for JOIN_STALL, the restart fails as if one had.
    let control = env.control;
    let mut last_join = (0, std::time::Instant::now());
    loop {
        let created = control.created.load(Ordering::SeqCst);
        if created >= count || control.failed.load(Ordering::SeqCst) != 0 {
            break;
        }
        if created != last_join.0 {
            last_join = (created, std::time::Instant::now());
        } else if last_join.1.elapsed() > JOIN_STALL {
            eprintln!(
                "restart: {created} of {count} tasks created, none more for {} s: giving up",
                JOIN_STALL.as_secs()
            );
            control.failed.store(1, Ordering::SeqCst);
            break;
        }
        let mut status = 0;
        // SAFETY: polling our own child.
        if unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) } == child {
            control.failed.store(1, Ordering::SeqCst);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    control.go.store(1, Ordering::SeqCst);
    control.wake_all();

    // The tasks hold the image now.
    let fed = Arc::new(AtomicU64::new(0));
    let feeder = source.start(&fed);
    let meter = source.meter(&fed);
    drop(source);
    let mut log_out = open_log(opts)?;
    let mut failed = control.failed.load(Ordering::SeqCst) != 0;
    let mut figures = None;
    let running = AtomicBool::new(true);
    std::thread::scope(|scope| {
        if crtools::stderr_is_terminal() {
            scope.spawn(|| crtools::show_progress("restart", &running, &meter));
        }
        for line in BufReader::new(File::from(log_r)).lines() {
            let line = line.unwrap_or_default();
            if let Some(s) = uapi::Stats::parse(&line) {
                figures = Some(s);
                continue;
            }
            failed |= line.contains("error");
            let _ = writeln!(log_out, "{line}");
        }
        running.store(false, Ordering::SeqCst);
    });
    if let Some(f) = feeder {
        let _ = f.join();
    }
    failed |= control.failed.load(Ordering::SeqCst) != 0;
    // The last task to finish its restore reports the figures: without them, some task never
    // finished, even if nobody could say why (its log gone with it).
    let unfinished = !failed && figures.is_none();
    if failed || unfinished {
        // All or nothing: whatever of the tree still runs goes.
        let _ = crtools::kill_all(&cg_dir);
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        if unfinished {
            fail!("restart of pid {root} failed: the tree did not finish its restore");
        }
        fail!("restart of pid {root} failed");
    }
    if let Some(stream) = migration {
        if let Err(e) = migrate::report_running(stream) {
            // The source thaws its own tree when it does not hear back: only one may run.
            let _ = crtools::kill_all(&cg_dir);
            let mut status = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(child, &mut status, 0) };
            fail!("{}: the tree restored here is killed", e.message());
        }
    }
    if let (true, Some(f)) = (opts.stats, figures) {
        let stopped = std::time::Duration::from_nanos(f.ns);
        eprintln!(
            "restart: {}",
            crtools::describe_stats(&f, stopped, began.elapsed())
        );
    }
    if opts.detach {
        println!("{child}");
        return Ok(0);
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        fail!("waitpid {child}: {}", io::Error::last_os_error());
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status) as u8)
    } else {
        Ok(128 + libc::WTERMSIG(status) as u8)
    }
}

/// `--listen`: takes the image from one connection, and answers the source.
fn listen_and_restart(opts: &Options, spec: &str) -> Result<u8, Fail> {
    let addr = migrate::resolve(spec)?;
    let stream = migrate::accept_one(addr, |at| {
        eprintln!("restart: listening on {at}");
    })?;
    let answer = stream.try_clone()?;
    let input = Input::Stream(File::from(OwnedFd::from(stream)));
    let result = restart(opts, input, Some(&answer));
    if let Err(f) = &result {
        migrate::report_failure(&answer, f.message(), DRAIN_TIMEOUT);
    }
    result
}

fn main() -> ExitCode {
    let opts = Options::parse();
    let result = match (&opts.listen, &opts.input) {
        (Some(spec), _) => listen_and_restart(&opts, spec),
        (None, Some(path)) => Input::open(path).and_then(|input| {
            if opts.dry_run {
                dry_run(&opts, input)
            } else {
                restart(&opts, input, None)
            }
        }),
        (None, None) => Err(Fail::Usage("give -i FILE|- or --listen ADDR:PORT".into())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => crtools::exit_with("restart", &f),
    }
}
