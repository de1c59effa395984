// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_RESTART`: every task of the image, created by `restart` with its pid, becomes the
//! checkpointed one, in its own context.
//!
//! The tasks of one restart share a [`Session`], the state of the `/dev/cr` file they all
//! inherited. It goes through these steps:
//!
//! 1. **Join.** The first task to arrive reads the image's header and TREE. Each task finds its
//!    entry by pid, blocks its signals and waits until every task of the tree has joined, so
//!    that no task still runs `restart`'s code when an address space is replaced.
//! 2. **Turns.** In image order, each task reads its own section of the one stream, keeping the
//!    state it will apply. It replaces its address space as the VMA and PAGES records go by
//!    (threads share their leader's). A zombie's turn just lets it go and exit; the next turn
//!    waits until it has.
//! 3. **Apply.** Once the last task has read the trailer and the stream is known to be good,
//!    every task applies what it kept: files, root and cwd, signals, credentials.
//! 4. **Return.** When all have applied, all return to user space together, each with its
//!    checkpointed registers.
//!
//! If anything fails in any task, the session fails and the reason goes to logfd. Once the
//! turns began, every task of the tree kills itself (SIGKILL); before, nothing changed and
//! every task gets the error back. A task killed from outside fails the session too.

use core::pin::Pin;

use kernel::prelude::*;

use crate::format::{self, tree_flags, ErrorKind, RecordKind, TreeEntry, TreeHeader};
use crate::image::{file_of_fd, Failure, ImageIn, Log, Reason};
use crate::objhash::LoadObjects;
use crate::shim::{self, TaskRef};
use crate::tree::{self, Defines, MAX_TASKS};
use crate::uapi::{OpArgs, RESTART_DRY_RUN, RESTART_ZOMBIE};
use crate::{files, fs, mm, ns, regs, signals, task, CrDevice};

/// The restart shared by the tasks of one image.
#[derive(Default)]
pub(crate) struct Session {
    /// The image, once the first task opened it.
    image: Option<ImageIn>,
    tree: KVec<TreeEntry>,
    container: bool,
    uts: Option<ns::KeptUts>,
    joined: KVec<bool>,
    joined_count: usize,
    /// Index of the entry whose turn it is; `tree.len()` once all sections were read.
    turn: usize,
    /// A zombie that was let go; the next turn starts once it has exited.
    exiting: Option<TaskRef>,
    /// Set once every task has joined and the first turn began: from then on, tasks change.
    started: bool,
    read_done: bool,
    applied: usize,
    live: usize,
    failed: bool,
    objects: LoadObjects,
}

/// State read from the image and applied once the whole stream is known to be good.
#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) leader: bool,
    pub(crate) defines: Defines,
    pub(crate) task: task::KeptTask,
    pub(crate) fs: fs::KeptFs,
    pub(crate) files: files::KeptFiles,
    pub(crate) signals: signals::KeptSignals,
    pub(crate) regs: regs::KeptRegs,
}

/// Runs the ioctl for the calling task.
pub(crate) fn run(dev: Pin<&CrDevice>, args: &OpArgs) -> Result<isize> {
    if !shim::current::capable_sys_admin() {
        return Err(EPERM);
    }
    if args.flags & RESTART_DRY_RUN != 0 {
        return dry_run(args);
    }
    let me = shim::current::vpid();
    if args.pid != 0 && args.pid != me {
        return Err(EINVAL);
    }
    let log = Log::open(args.logfd)?;
    if let Some(reason) = shim::current::restart_refusal() {
        log.line(format_args!("restart: {reason}"));
        return Err(EBUSY);
    }
    // On the heap: several KiB that would otherwise sit on the kernel stack for the whole restore.
    let mut kept = KBox::new(Kept::default(), GFP_KERNEL)?;
    let mut session = dev.session.lock();
    let index = match join(&mut session, args, me) {
        Ok(i) => i,
        Err(f) => {
            report(&log, &f);
            fail(&mut session, dev);
            return Err(f.err);
        }
    };
    dev.changed.notify_all();
    let (mut session, result) = restore(dev, session, index, &mut kept);
    match result {
        Ok(ax) => Ok(ax),
        Err(f) => {
            if !matches!(f.reason, Reason::Text(SESSION_FAILED)) {
                report(&log, &f);
            }
            fail(&mut session, dev);
            Err(f.err)
        }
    }
}

type Guard<'a> = kernel::sync::MutexGuard<'a, Session>;

/// Marks the session failed. Once the tasks started to change, the calling task is killed too:
/// restart is all or nothing. Before that, every task returns the error unchanged.
fn fail(session: &mut Guard<'_>, dev: Pin<&CrDevice>) {
    session.failed = true;
    session.objects.release();
    dev.changed.notify_all();
    if session.started {
        shim::current::kill();
    }
}

fn report(log: &Log, f: &Failure) {
    log.line(format_args!(
        "restart: error at image offset {}: {} (errno {})",
        f.offset,
        f.reason,
        -f.err.to_errno()
    ));
}

/// Why a task stopped when another one failed; not logged again.
const SESSION_FAILED: &str = "another task of the tree failed";

fn session_failed() -> Failure {
    Failure {
        err: EINTR,
        offset: 0,
        reason: Reason::Text(SESSION_FAILED),
    }
}

/// `CR_RESTART_DRY_RUN`: the caller alone reads the whole image as the tasks of a restart would,
/// section by section, with every check they make before they change (the records, objrefs and
/// tree, files reopened by path and inode, this CPU's state), and restores nothing.
fn dry_run(args: &OpArgs) -> Result<isize> {
    if args.pid != 0 {
        return Err(EINVAL);
    }
    let log = Log::open(args.logfd)?;
    let mut session = Session::default();
    session.objects.dry_run = true;
    let checked = check_whole(&mut session, args);
    session.objects.release();
    match checked {
        Ok(()) => Ok(0),
        Err(f) => {
            report(&log, &f);
            Err(f.err)
        }
    }
}

fn check_whole(session: &mut Session, args: &OpArgs) -> Result<(), Failure> {
    let file = file_of_fd(args.fd).map_err(|e| Failure {
        err: e,
        offset: 0,
        reason: Reason::Text("bad image descriptor"),
    })?;
    let mut input = ImageIn::open(file)?;
    read_prefix(&mut input, session)?;
    tree::check_entries(&session.tree, session.container).map_err(|p| match p {
        Some(p) => Failure {
            err: EOPNOTSUPP,
            offset: 0,
            reason: Reason::Text(p.reason()),
        },
        None => Failure {
            err: ENOMEM,
            offset: 0,
            reason: Reason::Text("out of memory"),
        },
    })?;
    session.image = Some(input);
    for index in 0..session.tree.len() {
        let entry = session.tree[index];
        if entry.is_zombie() {
            end_turn(session)?;
            continue;
        }
        let mut kept = KBox::new(Kept::default(), GFP_KERNEL).map_err(|_| Failure {
            err: ENOMEM,
            offset: 0,
            reason: Reason::Text("out of memory"),
        })?;
        kept.leader = !entry.is_thread();
        read_turn(session, index, &entry, &mut kept)?;
    }
    Ok(())
}

/// Step 1: opens the session if this is the first task, and finds the caller's entry.
fn join(session: &mut Guard<'_>, args: &OpArgs, me: i32) -> Result<usize, Failure> {
    let plain = |err, reason| Failure {
        err,
        offset: 0,
        reason: Reason::Text(reason),
    };
    if session.failed {
        return Err(session_failed());
    }
    if session.image.is_none() {
        let file = file_of_fd(args.fd).map_err(|e| plain(e, "bad image descriptor"))?;
        let mut input = ImageIn::open(file)?;
        read_prefix(&mut input, session)?;
        session.image = Some(input);
    }
    let index = session
        .tree
        .iter()
        .position(|e| e.pid as i32 == me)
        .ok_or_else(|| plain(EINVAL, "restarting task's pid is not in the image"))?;
    if session.joined[index] {
        return Err(plain(EBUSY, "a task joined the restart twice"));
    }
    let entry = session.tree[index];
    let threads = session
        .tree
        .iter()
        .filter(|e| e.tgid == entry.tgid && !e.is_zombie())
        .count();
    if !entry.is_zombie() && shim::current::threads() as usize != threads {
        return Err(plain(
            EINVAL,
            "restarting process's thread count differs from the image's",
        ));
    }
    session.joined[index] = true;
    session.joined_count += 1;
    // Until it returns, the task takes no signal but SIGKILL; the image brings its own mask.
    shim::current::set_blocked(!0).map_err(|e| plain(e, "blocking signals failed"))?;
    Ok(index)
}

/// Reads HEADER, TREE and, for a container, UTS.
fn read_prefix(input: &mut ImageIn, session: &mut Session) -> Result<(), Failure> {
    // The header is the first record; the validator already checked magic, version and arch.
    input.expect(RecordKind::Header)?;
    check_cpu(input)?;
    input.expect(RecordKind::Tree)?;
    let p = input.payload();
    let (head, rest) =
        format::split_fixed(RecordKind::Tree, p, TreeHeader::LEN, TreeHeader::decode)
            .map_err(|k| input.malformed(k))?;
    let count = head.count as usize;
    if count == 0
        || count > MAX_TASKS
        || rest.len() != count * TreeEntry::LEN
        || head.flags & !tree_flags::KNOWN != 0
    {
        return Err(input.malformed(ErrorKind::BadField("tree")));
    }
    let oom = |_| input.fail(ENOMEM, "out of memory");
    let mut tree = KVec::with_capacity(count, GFP_KERNEL).map_err(oom)?;
    for chunk in rest.chunks_exact(TreeEntry::LEN) {
        let e =
            TreeEntry::decode(chunk).ok_or_else(|| input.malformed(ErrorKind::BadField("tree")))?;
        check_entry(input, &tree, &e)?;
        tree.push(e, GFP_KERNEL).map_err(oom)?;
    }
    for e in tree.iter().filter(|e| !e.is_zombie()) {
        for id in [e.mm_ref, e.files_ref, e.fs_ref, e.sighand_ref] {
            session
                .objects
                .define_or_ref_shared(id)
                .map_err(|f| f.at(input))?;
        }
    }
    session.joined = KVec::from_elem(false, count, GFP_KERNEL).map_err(oom)?;
    session.live = tree.iter().filter(|e| !e.is_zombie()).count();
    session.tree = tree;
    session.container = head.flags & tree_flags::CONTAINER != 0;
    if session.container {
        input.expect(RecordKind::Uts)?;
        session.uts = Some(ns::load(input)?);
    }
    Ok(())
}

/// A TREE entry must fit the ones before it: unique pids, threads after their leader, the root
/// alive and first.
fn check_entry(input: &ImageIn, before: &[TreeEntry], e: &TreeEntry) -> Result<(), Failure> {
    let bad = || input.malformed(ErrorKind::BadField("tree entry"));
    if e.pid == 0 || e.pid > i32::MAX as u32 || e.flags & !format::entry_flags::KNOWN != 0 {
        return Err(bad());
    }
    if before.iter().any(|b| b.pid == e.pid) {
        return Err(bad());
    }
    if before.is_empty() && (e.is_zombie() || e.is_thread() || e.ppid != 0) {
        return Err(bad());
    }
    if e.is_thread() && !before.iter().any(|b| b.pid == e.tgid && !b.is_zombie()) {
        return Err(bad());
    }
    if e.is_zombie() && (e.is_thread() || e.mm_ref | e.files_ref | e.fs_ref | e.sighand_ref != 0) {
        return Err(bad());
    }
    Ok(())
}

/// The image's xstate must fit this CPU.
fn check_cpu(input: &ImageIn) -> Result<(), Failure> {
    let h = input
        .header()
        .ok_or_else(|| input.malformed(ErrorKind::MissingHeader))?;
    if h.page_size as usize != crate::checkpoint::PAGE_SIZE {
        return Err(input.fail(EINVAL, "image page size differs from this kernel's"));
    }
    if h.xfeatures & !shim::current::xfeatures() != 0 {
        return Err(input.fail(EINVAL, "image uses CPU state components this CPU lacks"));
    }
    if h.xstate_size != shim::current::xstate_size() {
        return Err(input.fail(EINVAL, "image's XSAVE layout differs from this CPU's"));
    }
    Ok(())
}

/// Waits, with the session unlocked, until `done` holds. Only SIGKILL ends the wait early (the
/// task blocked everything else when it joined); it fails the session.
fn wait_until(
    dev: Pin<&CrDevice>,
    session: &mut Guard<'_>,
    done: impl Fn(&Session) -> bool,
) -> Result<(), Failure> {
    loop {
        if session.failed {
            return Err(session_failed());
        }
        if done(session) {
            return Ok(());
        }
        // Woken early only by a signal, which can be SIGKILL alone (or a stop, which the loop
        // rides out).
        if dev.changed.wait_interruptible(session) && shim::current::fatal_signal_pending() {
            return Err(killed());
        }
    }
}

fn killed() -> Failure {
    Failure {
        err: EINTR,
        offset: 0,
        reason: Reason::Text("a task of the tree was killed during restart"),
    }
}

/// Returns the guard with the error of a step that failed.
macro_rules! step {
    ($session:ident, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return ($session, Err(f)),
        }
    };
}

/// Steps 2 to 4 for the task of entry `index`.
fn restore<'a>(
    dev: Pin<&'a CrDevice>,
    mut session: Guard<'a>,
    index: usize,
    kept: &mut Kept,
) -> (Guard<'a>, Result<isize, Failure>) {
    let entry = session.tree[index];
    let count = session.tree.len();
    step!(
        session,
        wait_until(dev, &mut session, |s| s.joined_count == count
            && s.turn == index)
    );
    session.started = true;
    step!(session, wait_zombie(dev, &mut session));
    if entry.is_zombie() {
        session.exiting = Some(TaskRef::current());
        // The last entry reads the trailer, even a zombie's.
        let ended = end_turn(&mut session);
        dev.changed.notify_all();
        step!(session, ended);
        return (
            session,
            Ok(RESTART_ZOMBIE | (entry.exit_status & 0xffff) as isize),
        );
    }
    kept.leader = !entry.is_thread();
    step!(session, read_turn(&mut session, index, &entry, kept));
    dev.changed.notify_all();
    step!(session, wait_until(dev, &mut session, |s| s.read_done));
    // No task returns before the last zombie is one.
    step!(session, wait_zombie(dev, &mut session));

    // Step 3, unlocked: the tasks apply their own state in parallel.
    let uts = if index == 0 { session.uts.take() } else { None };
    let offset = session.image.as_ref().map_or(0, |i| i.offset());
    drop(session);
    let applied = apply(kept, uts.as_ref());
    let mut session = dev.get_ref().session.lock();
    step!(
        session,
        applied.map_err(|(err, what)| Failure {
            err,
            offset,
            reason: Reason::Text(what),
        })
    );
    session.applied += 1;
    if session.applied == session.live {
        // Every task installed its own references: what is left (a pipe end nobody kept) goes.
        session.objects.release();
    }
    dev.changed.notify_all();
    step!(
        session,
        wait_until(dev, &mut session, |s| s.applied == s.live)
    );

    // Step 4. The return value is overwritten with the checkpointed registers on the way out.
    let installed = regs::install(&mut kept.regs)
        .map(|()| 0)
        .map_err(|err| Failure {
            err,
            offset,
            reason: Reason::Text("restoring registers failed"),
        });
    (session, installed)
}

/// Step 2 proper: reads the caller's section and, after the last one, the trailer.
fn read_turn(
    session: &mut Session,
    index: usize,
    entry: &TreeEntry,
    kept: &mut Kept,
) -> Result<(), Failure> {
    kept.defines = Defines {
        mm: first_use(&session.tree, index, |e| e.mm_ref),
        files: first_use(&session.tree, index, |e| e.files_ref),
        fs: first_use(&session.tree, index, |e| e.fs_ref),
        sighand: first_use(&session.tree, index, |e| e.sighand_ref),
    };
    let Some(input) = session.image.as_mut() else {
        return Err(session_failed());
    };
    read_section(input, &mut session.objects, entry, kept)?;
    end_turn(session)
}

/// Passes the turn on; after the last section, reads the trailer, which the validator checks
/// (count, length, CRC) as it reads it.
fn end_turn(session: &mut Session) -> Result<(), Failure> {
    session.turn += 1;
    if session.turn < session.tree.len() {
        return Ok(());
    }
    let Some(input) = session.image.as_mut() else {
        return Err(session_failed());
    };
    let kind = input.next()?;
    if kind != RecordKind::Trailer as u32 || !input.is_complete() {
        return Err(input.malformed(ErrorKind::UnknownKind(kind)));
    }
    // Every mapping exists now: a memfd's write seal would have forbidden the writable ones.
    session
        .objects
        .seal_all()
        .map_err(|e| input.fail(e, "sealing a memfd failed"))?;
    session.read_done = true;
    Ok(())
}

/// Waits until the zombie let go last has exited: quickly, but in user space, so this polls,
/// a jiffy at a time.
fn wait_zombie(dev: Pin<&CrDevice>, session: &mut Guard<'_>) -> Result<(), Failure> {
    while session.exiting.as_ref().is_some_and(|z| !z.exited()) {
        if session.failed {
            return Err(session_failed());
        }
        if shim::current::fatal_signal_pending() {
            return Err(killed());
        }
        let _ = dev.changed.wait_interruptible_timeout(session, 1);
    }
    Ok(())
}

/// Whether entry `index` is the first to name the object `pick` selects.
fn first_use(tree: &[TreeEntry], index: usize, pick: fn(&TreeEntry) -> u32) -> bool {
    let id = pick(&tree[index]);
    !tree[..index].iter().any(|e| pick(e) == id)
}

/// Step 2: the caller's section, in the order `checkpoint::save_task` wrote it.
fn read_section(
    input: &mut ImageIn,
    objects: &mut LoadObjects,
    entry: &TreeEntry,
    kept: &mut Kept,
) -> Result<(), Failure> {
    task::load(input, &mut kept.task, entry, kept.leader)?;
    if kept.defines.fs {
        fs::load(input, &mut kept.fs)?;
    }
    if kept.defines.files {
        files::load(input, &mut kept.files, objects)?;
    }
    if kept.defines.mm {
        input.expect(RecordKind::Mm)?;
        mm::load(input, objects)?;
    }
    if kept.defines.sighand {
        signals::load_handlers(input, &mut kept.signals)?;
    }
    signals::load_pending(input, &mut kept.signals, false)?;
    if kept.leader {
        signals::load_pending(input, &mut kept.signals, true)?;
        task::load_itimers(input, &mut kept.task)?;
    }
    regs::load(input, &mut kept.regs)
}

/// Step 3: the stream is good; make the task the checkpointed one, but for its registers.
fn apply(kept: &mut Kept, uts: Option<&ns::KeptUts>) -> Result<(), (Error, &'static str)> {
    let at = |what| move |e| (e, what);
    if let Some(uts) = uts {
        ns::apply(uts).map_err(at("restoring the container's host name failed"))?;
    }
    // Task state first: its rlimits let the descriptors in, and its blocked mask must be in
    // place before the pending signals, so that re-queueing a blocked fatal signal does not kill
    // the task on the spot.
    task::apply(&kept.task, kept.leader).map_err(at("restoring task state failed"))?;
    if kept.defines.files {
        files::apply(&kept.files).map_err(at("installing the files failed"))?;
    }
    if kept.defines.fs {
        fs::apply(&kept.fs).map_err(at("restoring root and cwd failed"))?;
    }
    signals::apply(&kept.signals, kept.defines.sighand, kept.leader)
        .map_err(at("restoring signal state failed"))?;
    regs::apply(&mut kept.regs).map_err(at("restoring the FPU state failed"))?;
    // Credentials last: everything above may need the restarter's privileges.
    task::apply_creds(&kept.task).map_err(at("restoring credentials failed"))?;
    Ok(())
}
