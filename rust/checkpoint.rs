// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_CHECKPOINT`: write a frozen process tree to an image.
//!
//! Everything that could make the image unrestorable is looked for first ([`prepare`]), before a
//! byte is written: the tree, its sharing, leaks to outside tasks, and each task's state. Then
//! the TREE record, and one section per live task, in the order restart reads them.

use kernel::prelude::*;

use crate::forest_rules::Problem;
use crate::format::{self, Header, RecordKind, ARCH_X86_64, FORMAT_VERSION, RELEASE_LEN};
use crate::image::{file_of_fd, write_error, FileSink, ImageOut, Log};
use crate::objhash::SaveObjects;
use crate::shim::{self, PidNsRef, Refusal, TaskRef};
use crate::tree::{self, Member, Tree};
use crate::uapi::{self, OpArgs};
use crate::{files, fs, mm, regs, signals, task};

use core::pin::Pin;

/// Page size of the kernel cr is built for.
pub(crate) const PAGE_SIZE: usize = 4096;

/// How writing a checkpoint can stop.
pub(crate) enum Stop {
    /// State cr cannot save: the errno and the reason for logfd.
    Refused(Refusal),
    /// The same, about the task with this pid (as the tree's namespace sees it).
    RefusedTask(Refusal, u32),
    /// A tree restart could not recreate.
    Forest(Problem),
    /// Writing or reading failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<kernel::alloc::AllocError> for Stop {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self::Failed(ENOMEM)
    }
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<format::WriteError<Error>> for Stop {
    fn from(e: format::WriteError<Error>) -> Self {
        Self::Failed(write_error(e))
    }
}

/// Shorthand for a refusal.
pub(crate) fn refuse(err: Error, reason: &'static str) -> Stop {
    Stop::Refused(Refusal { err, reason })
}

/// What every saver gets: the task, the pid namespace its ids are written in, the image, and
/// the objhash.
pub(crate) struct SaveCx<'a> {
    pub(crate) task: &'a TaskRef,
    pub(crate) ns: &'a PidNsRef,
    pub(crate) out: &'a mut ImageOut,
    pub(crate) objs: &'a mut SaveObjects,
}

impl SaveCx<'_> {
    /// Writes one record.
    pub(crate) fn record(&mut self, kind: RecordKind, parts: &[&[u8]]) -> Result<(), Stop> {
        self.out.record(kind as u32, parts)?;
        Ok(())
    }
}

/// Runs the ioctl.
pub(crate) fn run(args: &OpArgs) -> Result<isize> {
    let log = Log::open(args.logfd)?;
    let root = match TaskRef::find(args.pid) {
        Ok(t) => t,
        Err(e) => {
            log.line(fmt!("checkpoint: pid {}: no such process", args.pid));
            return Err(e);
        }
    };
    if !root.may_checkpoint() {
        log.line(fmt!("checkpoint: pid {}: permission denied", args.pid));
        return Err(EPERM);
    }
    let allow_leaks = args.flags & uapi::CHECKPOINT_ALLOW_LEAKS != 0;
    let mut objs = SaveObjects::default();
    let tree = match prepare(&root, &mut objs, allow_leaks) {
        Ok(tree) => tree,
        Err(stop) => return Err(stop.report(&log, args.pid)),
    };
    // Two checkpoints of one tree at once would each see the other's freeze and thaw: the
    // first one in goes on, any other gets EBUSY.
    let _claim = match InFlight::claim(&tree) {
        Ok(claim) => claim,
        Err(stop) => return Err(stop.report(&log, args.pid)),
    };
    let file = file_of_fd(args.fd)?;
    let mut out = ImageOut::new(FileSink::new(file)?, &header()).map_err(write_error)?;
    let result = save_all(&tree, &mut out, &mut objs).and_then(|()| {
        // The state was read while the tree was frozen; if someone thawed a task meanwhile,
        // the image may mix two moments: mark it incomplete rather than let it restore wrongly.
        let thawed = tree
            .members
            .iter()
            .any(|m| !m.entry.is_zombie() && m.task.refusal().is_some());
        if thawed {
            Err(refuse(EBUSY, "a task was thawed during the checkpoint"))
        } else {
            Ok(())
        }
    });
    match result {
        Ok(()) => {
            let mut sink = out.finish().map_err(write_error)?;
            sink.flush()?;
            Ok(0)
        }
        Err(stop) => {
            let reason = stop.reason();
            let err = stop.report(&log, args.pid);
            // Mark the image as incomplete, so that no reader mistakes it for a good one.
            if out.error(reason).is_ok() {
                if let Ok(mut sink) = out.finish() {
                    let _ = sink.flush();
                }
            }
            Err(err)
        }
    }
}

impl Stop {
    /// The reason, without ids.
    fn reason(&self) -> &'static str {
        match self {
            Stop::Refused(r) | Stop::RefusedTask(r, _) => r.reason,
            Stop::Forest(p) => p.reason(),
            Stop::Failed(_) => "writing the image failed",
        }
    }

    /// Writes the reason to logfd; returns the errno for the caller.
    fn report(&self, log: &Log, pid: i32) -> Error {
        let err = match self {
            Stop::Refused(r) | Stop::RefusedTask(r, _) => r.err,
            Stop::Forest(_) => EOPNOTSUPP,
            Stop::Failed(e) => *e,
        };
        let errno = -err.to_errno();
        match self {
            Stop::RefusedTask(r, task) => log.line(fmt!(
                "checkpoint: pid {pid}: task {task}: {} (errno {errno})",
                r.reason
            )),
            Stop::Forest(p) => log.line(format_args!(
                "checkpoint: pid {pid}: restart could not recreate this tree: {p} (errno {errno})"
            )),
            _ => log.line(fmt!(
                "checkpoint: pid {pid}: {} (errno {errno})",
                self.reason()
            )),
        }
        err
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialized in the module's init, before /dev/cr exists.
    pub(crate) unsafe(uninit) static IN_FLIGHT: Mutex<KVec<u64>> = KVec::new();
}

/// The tasks of a checkpoint in progress, registered in [`IN_FLIGHT`] until it is dropped.
struct InFlight(KVec<u64>);

impl InFlight {
    fn claim(tree: &Tree) -> Result<Self, Stop> {
        let mut mine = KVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
        for m in tree.members.iter() {
            mine.push(m.task.identity(), GFP_KERNEL)?;
        }
        mine.sort_unstable();
        let mut all = IN_FLIGHT.lock();
        if mine.iter().any(|t| all.binary_search(t).is_ok()) {
            return Err(refuse(
                EBUSY,
                "another checkpoint of this tree is in progress",
            ));
        }
        all.reserve(mine.len(), GFP_KERNEL)?;
        for &t in mine.iter() {
            let i = all.binary_search(&t).unwrap_or_else(|i| i);
            let _ = all.insert_within_capacity(i, t);
        }
        Ok(Self(mine))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mine = &self.0;
        IN_FLIGHT.lock().retain(|t| mine.binary_search(t).is_err());
    }
}

fn header() -> Header {
    let mut release = [0u8; RELEASE_LEN];
    shim::current::release(&mut release);
    let mut h = Header {
        format_version: FORMAT_VERSION,
        arch: ARCH_X86_64,
        flags: 0,
        page_size: PAGE_SIZE as u32,
        xstate_size: shim::current::xstate_size(),
        xfeatures: shim::current::xfeatures(),
        time_ns: shim::current::time_ns(),
        release: [0; RELEASE_LEN],
    };
    let end = release
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(RELEASE_LEN - 1);
    h.set_release(&release[..end]);
    h
}

/// Everything that does not need the image: the tree, its sharing and leaks, and every
/// task's own state.
fn prepare(root: &TaskRef, objs: &mut SaveObjects, allow_leaks: bool) -> Result<Tree, Stop> {
    let mut tree = tree::collect(root)?;
    tree::assign_objrefs(&mut tree, objs)?;
    tree::check_recreatable(&tree)?;
    for m in tree.members.iter().filter(|m| !m.entry.is_zombie()) {
        if !m.task.may_checkpoint() {
            return Err(Stop::RefusedTask(
                Refusal {
                    err: EPERM,
                    reason: "permission denied for a task of the tree",
                },
                m.entry.pid,
            ));
        }
        precheck(m).map_err(|r| Stop::RefusedTask(r, m.entry.pid))?;
    }
    if !allow_leaks {
        tree::check_leaks(&tree)?;
    }
    Ok(tree)
}

/// The refusals of one live task.
fn precheck(m: &Member) -> Result<(), Refusal> {
    let task = &m.task;
    if let Some(r) = task.refusal() {
        return Err(r);
    }
    if m.defines.fs {
        fs::precheck(task)?;
    }
    if m.defines.files {
        files::precheck(task)?;
    }
    if m.defines.mm {
        mm::precheck(task)?;
    }
    regs::precheck(task)?;
    Ok(())
}

fn save_all(tree: &Tree, out: &mut ImageOut, objs: &mut SaveObjects) -> Result<(), Stop> {
    tree::save(out, tree)?;
    for m in tree.members.iter().filter(|m| !m.entry.is_zombie()) {
        let mut cx = SaveCx {
            task: &m.task,
            ns: &tree.ns,
            out: &mut *out,
            objs: &mut *objs,
        };
        save_task(&mut cx, m)?;
    }
    Ok(())
}

/// One task's section: the records restart reads in `restart::read_section`.
fn save_task(cx: &mut SaveCx<'_>, m: &Member) -> Result<(), Stop> {
    let leader = m.is_leader();
    task::save(cx, leader)?;
    if m.defines.fs {
        fs::save(cx)?;
    }
    if m.defines.files {
        files::save(cx)?;
    }
    if m.defines.mm {
        mm::save(cx)?;
    }
    if m.defines.sighand {
        signals::save_handlers(cx)?;
    }
    signals::save_pending(cx, false)?;
    if leader {
        signals::save_pending(cx, true)?;
        task::save_itimers(cx)?;
    }
    regs::save(cx)?;
    Ok(())
}
