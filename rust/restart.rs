// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_RESTART`: every task of the image, created by `restart` with its pid, becomes the
//! checkpointed one, in its own context.
//!
//! The tasks of one restart share a [`Restart`], the state of the `/dev/cr` file they all
//! inherited. It goes through these steps:
//!
//! 1. **Join.** The first task to arrive reads the image's header and TREE. Each task finds its
//!    entry by pid, blocks its signals and waits until every task of the tree has joined, so
//!    that no task still runs `restart`'s code when an address space is replaced.
//! 2. **Turns.** In image order, each task reads its own section of the one stream
//!    ([`section::load`]), keeping the state it will apply. It replaces its address space as the
//!    VMA and PAGES records go by (threads share their leader's). A zombie's turn just lets it go
//!    and exit; the next turn waits until it has.
//! 3. **Apply.** Once the last task has read the trailer and the stream is known to be good,
//!    every task applies what it kept ([`section::apply`]).
//! 4. **Return.** When all have applied, all return to user space together, each with its
//!    checkpointed registers.
//!
//! If anything fails in any task, the session fails and the reason goes to logfd. Once the
//! turns began, every task of the tree kills itself (SIGKILL); before, nothing changed and
//! every task gets the error back. A task killed from outside fails the session too.

use kernel::{
    bindings,
    fs::File,
    new_condvar, new_mutex,
    prelude::*,
    sync::{aref::ARef, CondVar, Mutex, MutexGuard},
    task::Task,
    time::{ClockSource, Monotonic},
};

use crate::cx::{LoadCx, PagesFor, Tally, PAGE_SIZE};
use crate::error::{Context, CrError, CrResult};
use crate::format::{header_flags, ErrorKind, RecordKind, TreeEntry};
use crate::image::{file_of_fd, ImageIn, Log};
use crate::ns;
use crate::objhash::LoadObjects;
use crate::records;
use crate::section::{self, Kept};
use crate::shim::{current, TaskExt};
use crate::tree;
use crate::uapi::{OpArgs, StageArgs, Stats, RESTART_DRY_RUN, RESTART_STATS, RESTART_ZOMBIE};

/// A restart shared by the tasks of one image: one per open `/dev/cr`.
///
/// The tasks wait on one condition variable, but a turn passing on wakes only the task whose
/// turn it is (a thousand tasks would otherwise wake a thousand times each); the steps every
/// task waits for (all joined, all read, all applied, a failure) wake them all, once.
#[pin_data]
pub(crate) struct Restart {
    #[pin]
    session: Mutex<Session>,
    /// Signalled when every task may have to move on.
    #[pin]
    changed: CondVar,
}

impl Restart {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            session <- new_mutex!(Session::default()),
            changed <- new_condvar!(),
        })
    }
}

/// Where the restart is.
#[derive(Default)]
struct Session {
    /// The image, once the first task opened it.
    image: Option<ImageIn>,
    tree: tree::Loaded,
    uts: Option<ns::KeptUts>,
    /// The entries by pid, for a joining task to find its own.
    by_pid: KVec<(u32, usize)>,
    /// Live threads of each process, by tgid.
    threads: KVec<(u32, usize)>,
    /// The task of each entry, once it joined.
    joined: KVec<Option<ARef<Task>>>,
    joined_count: usize,
    /// Index of the entry whose turn it is; `tree.entries.len()` once all sections were read.
    turn: usize,
    /// A zombie that was let go; the next turn starts once it has exited.
    exiting: Option<ARef<Task>>,
    /// Set once every task has joined and the first turn began: from then on, tasks change.
    started: bool,
    read_done: bool,
    applied: usize,
    live: usize,
    failed: bool,
    objects: LoadObjects,
    tally: Tally,
    /// When the first task joined.
    began: i64,
    /// The entry whose task applied last, and when: it reports the figures.
    last_applied: Option<(usize, i64)>,
    /// What `CR_IOC_STAGE` gave of a thawed checkpoint's precopy image, by address space id.
    staged: KVec<(u64, ARef<File>)>,
}

type Guard<'a> = MutexGuard<'a, Session>;

/// Runs the ioctl for the calling task.
pub(crate) fn run(restart: &Restart, args: &OpArgs) -> Result<isize> {
    if !current::capable_sys_admin() {
        return Err(EPERM);
    }
    let log = Log::open(args.logfd)?;
    if args.flags & RESTART_DRY_RUN != 0 {
        return dry_run(restart, args).map_err(|e| report(&log, e));
    }
    let me = current::vpid();
    if args.pid != 0 && args.pid != me {
        return Err(EINVAL);
    }
    if let Some(reason) = caller_refusal() {
        return Err(report(&log, reason));
    }
    // On the heap: several KiB that would otherwise sit on the kernel stack for the whole restore.
    let mut kept = KBox::new(Kept::default(), GFP_KERNEL)?;
    let mut session = restart.session.lock();
    let index = match join(&mut session, args, me) {
        Ok(i) => i,
        Err(e) => {
            fail(&mut session, restart);
            return Err(report(&log, e));
        }
    };
    if session.joined_count == session.tree.entries.len() {
        wake_turn(&session);
    }
    let (mut session, result) = restore(restart, session, index, &mut kept);
    if let (Ok(_), Some((last, end))) = (&result, session.last_applied) {
        if last == index && args.flags & RESTART_STATS != 0 {
            let stats = Stats {
                tasks: session.live as u64,
                pages: session.tally.pages,
                bytes: session.image.as_ref().map_or(0, |i| i.consumed()),
                ns: (end - session.began) as u64,
            };
            log.raw(format_args!("{stats}"));
        }
    }
    result.map_err(|e| {
        fail(&mut session, restart);
        report(&log, e)
    })
}

/// `CR_IOC_STAGE`: keeps a file of pages that a thawed checkpoint's precopy image gave for one
/// address space, for the KEEP records of the restart to come.
pub(crate) fn stage(restart: &Restart, args: &StageArgs) -> Result<isize> {
    if !current::capable_sys_admin() {
        return Err(EPERM);
    }
    if args.reserved != 0 || args.mm == 0 {
        return Err(EINVAL);
    }
    let file = file_of_fd(args.fd)?;
    let mut session = restart.session.lock();
    if session.image.is_some() || session.failed {
        return Err(EBUSY);
    }
    if session.staged.iter().any(|(id, _)| *id == args.mm) {
        return Err(EEXIST);
    }
    session.staged.push((args.mm, file), GFP_KERNEL)?;
    Ok(0)
}

/// A task may only restore itself when it is a plain user task: not traced, with an address
/// space of its own to replace.
fn caller_refusal() -> Option<CrError> {
    use crate::shim::ffi::{CR_TF_NO_MM, CR_TF_TRACED};
    let facts = current::facts();
    if facts & CR_TF_TRACED != 0 {
        return Some(CrError::new(EBUSY, "the restarting task is traced"));
    }
    if facts & CR_TF_NO_MM != 0 {
        return Some(CrError::new(
            EBUSY,
            "the restarting task has no address space",
        ));
    }
    None
}

/// Logs `e` (unless another task of the session already said why) and returns its errno.
fn report(log: &Log, e: CrError) -> Error {
    if !e.is_echo() {
        log.error("restart", None, &e.at(0));
    }
    e.errno
}

/// Marks the session failed. Once the tasks started to change, the calling task is killed too:
/// restart is all or nothing. Before that, every task returns the error unchanged.
fn fail(session: &mut Guard<'_>, restart: &Restart) {
    session.failed = true;
    session.objects.release();
    restart.changed.notify_all();
    if session.started {
        current::kill();
    }
}

/// `CR_RESTART_DRY_RUN`: the caller alone reads the whole image as the tasks of a restart would,
/// section by section, with every check they make before they change (the records, objrefs and
/// tree, files reopened by path and inode, this CPU's state), and restores nothing.
fn dry_run(restart: &Restart, args: &OpArgs) -> CrResult<isize> {
    if args.pid != 0 {
        return Err(CrError::new(
            EINVAL,
            "a dry run is not made on behalf of a task",
        ));
    }
    let mut session = Session::default();
    for (id, file) in restart.session.lock().staged.iter() {
        session.staged.push((*id, file.clone()), GFP_KERNEL)?;
    }
    let checked = dry_run_session(&mut session, args);
    session.objects.release();
    checked.map(|()| 0)
}

fn dry_run_session(session: &mut Session, args: &OpArgs) -> CrResult {
    let file = file_of_fd(args.fd).why("bad image descriptor")?;
    let mut input = ImageIn::open(file)?;
    read_prefix(&mut input, session)?;
    session.image = Some(input);
    for index in 0..session.tree.entries.len() {
        if session.tree.entries[index].is_zombie() {
            end_turn(session)?;
            continue;
        }
        let mut kept = KBox::new(Kept::default(), GFP_KERNEL)?;
        read_turn(session, index, &mut kept, true)?;
    }
    Ok(())
}

/// Step 1: opens the session if this is the first task, and finds the caller's entry.
fn join(session: &mut Guard<'_>, args: &OpArgs, me: i32) -> CrResult<usize> {
    if session.failed {
        return Err(CrError::session_failed());
    }
    if session.image.is_none() {
        session.began = Monotonic::ktime_get();
        let file = file_of_fd(args.fd).why("bad image descriptor")?;
        let mut input = ImageIn::open(file)?;
        read_prefix(&mut input, session)?;
        session.image = Some(input);
    }
    let index = u32::try_from(me)
        .ok()
        .and_then(|me| {
            let at = session.by_pid.binary_search_by_key(&me, |p| p.0).ok()?;
            Some(session.by_pid[at].1)
        })
        .ok_or(CrError::new(
            EINVAL,
            "restarting task's pid is not in the image",
        ))?;
    if session.joined[index].is_some() {
        return Err(CrError::new(EBUSY, "a task joined the restart twice"));
    }
    let entry = session.tree.entries[index];
    let threads = session
        .threads
        .binary_search_by_key(&entry.tgid, |t| t.0)
        .map_or(0, |at| session.threads[at].1);
    if !entry.is_zombie() && current::threads() as usize != threads {
        return Err(CrError::new(
            EINVAL,
            "restarting process's thread count differs from the image's",
        ));
    }
    session.joined[index] = Some(current::task());
    session.joined_count += 1;
    // Until it returns, the task takes no signal but SIGKILL; the image brings its own mask.
    current::set_blocked(!0).why("blocking signals failed")?;
    Ok(index)
}

/// Reads HEADER, PARENT (of an incremental image), TREE and, for a container, UTS.
fn read_prefix(input: &mut ImageIn, session: &mut Session) -> CrResult {
    // The header is the first record; the validator already checked magic, version and arch.
    input.expect(RecordKind::Header)?;
    check_cpu(input)?;
    if input
        .header()
        .is_some_and(|h| h.flags & header_flags::PRECOPY != 0)
    {
        return Err(input.fail(
            EINVAL,
            "a precopy image: restart stages it, and restores the frozen round that follows it",
        ));
    }
    // The parent of an incremental image is the restarter's to find and stage: its pages
    // reach the tasks through KEEP records, like a precopy image's.
    if input.peek()? == RecordKind::Parent as u32 {
        input.take()?;
        records::Parent::decode(input.payload()).map_err(|k| input.malformed(k))?;
    }
    session.tree = tree::load(input, &mut session.objects)?;
    let count = session.tree.entries.len();
    session.joined = KVec::with_capacity(count, GFP_KERNEL)?;
    session.by_pid = KVec::with_capacity(count, GFP_KERNEL)?;
    session.threads = KVec::with_capacity(count, GFP_KERNEL)?;
    for (i, e) in session.tree.entries.iter().enumerate() {
        session.joined.push(None, GFP_KERNEL)?;
        session.by_pid.push((e.pid, i), GFP_KERNEL)?;
        if !e.is_zombie() {
            session.threads.push((e.tgid, 1), GFP_KERNEL)?;
        }
    }
    session.by_pid.sort_unstable();
    session.threads.sort_unstable();
    // One (tgid, count) per process.
    let mut merged: KVec<(u32, usize)> = KVec::with_capacity(session.threads.len(), GFP_KERNEL)?;
    for &(tgid, n) in session.threads.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == tgid => last.1 += n,
            _ => merged.push((tgid, n), GFP_KERNEL)?,
        }
    }
    session.threads = merged;
    session.live = session
        .tree
        .entries
        .iter()
        .filter(|e| !e.is_zombie())
        .count();
    if session.tree.container {
        input.expect(RecordKind::Uts)?;
        session.uts = Some(ns::load(input)?);
    }
    Ok(())
}

/// The image's xstate must fit this CPU.
fn check_cpu(input: &ImageIn) -> CrResult {
    let h = input
        .header()
        .ok_or(input.malformed(ErrorKind::MissingHeader))?;
    if h.page_size as usize != PAGE_SIZE {
        return Err(input.fail(EINVAL, "image page size differs from this kernel's"));
    }
    if h.xfeatures & !current::xfeatures() != 0 {
        return Err(input.fail(EINVAL, "image uses CPU state components this CPU lacks"));
    }
    if h.xstate_size != current::xstate_size() {
        return Err(input.fail(EINVAL, "image's XSAVE layout differs from this CPU's"));
    }
    Ok(())
}

/// Waits, with the session unlocked, until `done` holds. Only SIGKILL ends the wait early (the
/// task blocked everything else when it joined); it fails the session.
fn wait_until(
    restart: &Restart,
    session: &mut Guard<'_>,
    done: impl Fn(&Session) -> bool,
) -> CrResult {
    loop {
        if session.failed {
            return Err(CrError::session_failed());
        }
        if done(session) {
            return Ok(());
        }
        // Woken early only by a signal, which can be SIGKILL alone (or a stop, which the loop
        // rides out).
        if restart.changed.wait_interruptible(session) && current::fatal_signal_pending() {
            return Err(killed());
        }
    }
}

/// Wakes the task whose turn it is, if it joined; the others sleep on.
fn wake_turn(session: &Session) {
    if let Some(Some(task)) = session.joined.get(session.turn) {
        task.wake_up();
    }
}

/// After a turn: the next task, or every task once the sections are all read.
fn turn_passed(restart: &Restart, session: &Session) {
    if session.read_done {
        restart.changed.notify_all();
    } else {
        wake_turn(session);
    }
}

fn killed() -> CrError {
    CrError::new(EINTR, "a task of the tree was killed during restart")
}

/// Returns the guard with the error of a step that failed.
macro_rules! step {
    ($session:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return ($session, Err(e)),
        }
    };
}

/// Steps 2 to 4 for the task of entry `index`.
fn restore<'a>(
    restart: &'a Restart,
    mut session: Guard<'a>,
    index: usize,
    kept: &mut Kept,
) -> (Guard<'a>, CrResult<isize>) {
    let entry = session.tree.entries[index];
    let count = session.tree.entries.len();
    step!(
        session,
        wait_until(restart, &mut session, |s| s.joined_count == count
            && s.turn == index)
    );
    session.started = true;
    step!(session, wait_zombie(restart, &mut session));
    if entry.is_zombie() {
        session.exiting = Some(current::task());
        // The last entry reads the trailer, even a zombie's.
        let ended = end_turn(&mut session);
        turn_passed(restart, &session);
        step!(session, ended);
        return (
            session,
            Ok(RESTART_ZOMBIE | (entry.exit_status & 0xffff) as isize),
        );
    }
    step!(session, read_turn(&mut session, index, kept, false));
    turn_passed(restart, &session);
    step!(session, wait_until(restart, &mut session, |s| s.read_done));
    // No task returns before the last zombie is one.
    step!(session, wait_zombie(restart, &mut session));

    // Step 3, unlocked: the tasks apply their own state in parallel.
    let uts = if index == 0 { session.uts.take() } else { None };
    let defines = session.tree.defines[index];
    let offset = session.image.as_ref().map_or(0, |i| i.offset());
    drop(session);
    let applied = uts
        .as_ref()
        .map_or(Ok(()), ns::apply)
        .and_then(|()| section::apply(kept, defines))
        .map_err(|e| e.at(offset));
    let mut session = restart.session.lock();
    step!(session, applied);
    session.applied += 1;
    if session.applied == session.live {
        session.last_applied = Some((index, Monotonic::ktime_get()));
        // Every task installed its own references: what is left (a pipe end nobody kept) goes.
        session.objects.release();
        restart.changed.notify_all();
    }
    step!(
        session,
        wait_until(restart, &mut session, |s| s.applied == s.live)
    );

    // Step 4. The return value is overwritten with the checkpointed registers on the way out.
    let installed = crate::regs::install(&mut kept.regs)
        .map(|()| 0)
        .map_err(|e| e.at(offset));
    (session, installed)
}

/// Step 2 proper: reads the section of entry `index` and, after the last one, the trailer.
fn read_turn(session: &mut Session, index: usize, kept: &mut Kept, dry_run: bool) -> CrResult {
    let entry = session.tree.entries[index];
    let defines = session.tree.defines[index];
    let Some(input) = session.image.as_mut() else {
        return Err(CrError::session_failed());
    };
    let mut cx = LoadCx {
        input,
        objects: &mut session.objects,
        dry_run,
        pages: PagesFor::Nothing,
        tally: &mut session.tally,
        staged: &session.staged,
    };
    section::load(&mut cx, kept, &entry, defines).map_err(|e| e.of_task(entry.pid))?;
    kept.sent_signals = sent_by_restore(&session.tree.entries, entry.tgid);
    end_turn(session)
}

/// The signals the restore sends process `tgid` itself: each zombie child's exit signal, as it is
/// let go, and SIGCHLD, from a ghost session leader's exit.
fn sent_by_restore(entries: &[TreeEntry], tgid: u32) -> u64 {
    let bit = |sig: u32| {
        if (1..=64).contains(&sig) {
            1u64 << (sig - 1)
        } else {
            0
        }
    };
    entries
        .iter()
        .filter(|e| e.is_zombie() && e.ppid == tgid)
        .fold(bit(bindings::SIGCHLD), |mask, e| mask | bit(e.exit_signal))
}

/// Passes the turn on; after the last section, reads the trailer, which the validator checks
/// (count, length, CRC) as it reads it.
fn end_turn(session: &mut Session) -> CrResult {
    session.turn += 1;
    if session.turn < session.tree.entries.len() {
        return Ok(());
    }
    let Some(input) = session.image.as_mut() else {
        return Err(CrError::session_failed());
    };
    let kind = input.take()?;
    if kind != RecordKind::Trailer as u32 || !input.is_complete() {
        return Err(input.malformed(ErrorKind::UnknownKind(kind)));
    }
    // Every object is filled and every mapping exists: owners, modes, times and seals.
    session
        .objects
        .finish_shmem()
        .map_err(|e| e.at(input.offset()))?;
    session.read_done = true;
    Ok(())
}

/// Waits until the zombie let go last has exited: quickly, but in user space, so this polls,
/// a jiffy at a time.
fn wait_zombie(restart: &Restart, session: &mut Guard<'_>) -> CrResult {
    while session.exiting.as_ref().is_some_and(|z| !z.exited()) {
        if session.failed {
            return Err(CrError::session_failed());
        }
        if current::fatal_signal_pending() {
            return Err(killed());
        }
        let _ = restart.changed.wait_interruptible_timeout(session, 1);
    }
    Ok(())
}
