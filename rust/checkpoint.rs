// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_CHECKPOINT`: write a frozen process tree to an image.
//!
//! Everything that could make the image unrestorable is looked for first ([`prepare`]), before a
//! byte is written: the tree, its sharing, whether restart could recreate it, leaks to outside
//! tasks, and each task's state, read once. Then the TREE record (and UTS, for a container), and
//! one section per live task, as [`section`] lays it out.

// `global_lock!` names `Pin`.
use core::pin::Pin;

use kernel::{
    prelude::*,
    sync::Arc,
    task::Task,
    time::{ClockSource, Monotonic},
};

use crate::cx::{release_if_idle, SaveCx, Tally, PAGE_SIZE};
use crate::error::{CrError, CrResult};
use crate::format::FRESH_SPACE;
use crate::image::{self, file_of_fd, FileSink, ImageOut, Log, Progress};
use crate::objhash::SaveObjects;
use crate::precopy::Precopy;
use crate::section::{self, Prepared};
use crate::shim::{find_task, MmExt, TaskExt};
use crate::tracking::{self, CopiedSpace, Parent, ParentRef};
use crate::tree::{self, Tree};
use crate::uapi::{self, OpArgs};
use crate::{leaks, ns, task};

/// Runs the ioctl; with `CHECKPOINT_AFTER_PRECOPY`, as the frozen round of `precopy`; with
/// `parent`, incremental to that image.
pub(crate) fn run(
    args: &OpArgs,
    precopy: Option<Precopy>,
    parent: Option<ParentRef>,
) -> Result<isize> {
    let log = Log::open(args.logfd)?;
    let start = Monotonic::ktime_get();
    let stats = checkpoint(args, precopy, parent, &log).map_err(|e| {
        log.error("checkpoint", Some(args.pid), &e);
        e.errno
    })?;
    if args.flags & uapi::CHECKPOINT_STATS != 0 {
        let stats = uapi::Stats {
            ns: (Monotonic::ktime_get() - start) as u64,
            ..stats
        };
        log.raw(format_args!("{stats}"));
    }
    Ok(0)
}

fn checkpoint(
    args: &OpArgs,
    precopy: Option<Precopy>,
    parent: Option<ParentRef>,
    log: &Log,
) -> CrResult<uapi::Stats> {
    let mut precopy = match (args.flags & uapi::CHECKPOINT_AFTER_PRECOPY != 0, precopy) {
        (false, _) => None,
        (true, Some(_)) if parent.is_some() => {
            return Err(CrError::new(
                EINVAL,
                "the parent of a thawed checkpoint is named before its precopy",
            ))
        }
        (true, Some(p)) if p.pid == args.pid => Some(p),
        (true, _) => {
            return Err(CrError::new(
                EINVAL,
                "no precopy of this process on this open /dev/cr",
            ))
        }
    };
    let track = args.flags & uapi::CHECKPOINT_TRACK != 0;
    let root = find_task(args.pid).ok_or(CrError::new(ESRCH, "no such process"))?;
    if !task::may_checkpoint(&root) {
        return Err(CrError::new(EPERM, "permission denied"));
    }
    let allow_leaks = args.flags & uapi::CHECKPOINT_ALLOW_LEAKS != 0;
    let mut objs = SaveObjects::default();
    let (tree, mut prepared) = prepare(&root, &mut objs, allow_leaks)?;
    // What each address space was copied from before: the precopy's rounds, or the parent.
    let mut base = match &mut precopy {
        Some(precopy) => precopy.parent.take(),
        None => parent.and_then(|p| Parent::take(p, log)),
    };
    for p in prepared.iter_mut() {
        let Some(layout) = &p.mm else { continue };
        p.copied = match precopy.as_mut().and_then(|pc| pc.take_space(&layout.mm)) {
            Some(space) => Some(space),
            None => base
                .as_mut()
                .and_then(|b| b.take_space(&layout.mm))
                .map(CopiedSpace::resume)
                .transpose()?,
        };
        if p.copied.is_none() && track {
            p.copied = Some(CopiedSpace::new(FRESH_SPACE, &layout.mm)?);
        }
        if let Some(copied) = &mut p.copied {
            copied.follow_layout(layout)?;
        }
    }
    let parent = base.map(|b| b.named);
    // Two checkpoints of one tree at once would each see the other's freeze and thaw: the
    // first one in goes on, any other gets EBUSY.
    let _claim = InFlight::claim(&tree)?;
    let progress = Registered::new(estimate(&prepared))?;
    let file = file_of_fd(args.fd).map_err(|e| CrError::new(e, "bad image descriptor"))?;
    let sink = FileSink::new(file, Some(progress.0.clone()))?;
    let mut out = ImageOut::new(sink, &image::header(0))?;
    let mut tally = Tally::default();
    let written = tracking::write_parent(&mut out, parent.as_ref())
        .and_then(|()| save_all(&tree, &mut prepared, &mut out, &mut objs, &mut tally));
    let (bytes, trailer) = image::close(out, written)?;
    if track {
        // From now on each address space is known by its MM's objref in this image.
        let mut spaces = KVec::new();
        for (m, p) in tree.members.iter().zip(prepared.iter_mut()) {
            if let Some(copied) = p.copied.take() {
                let mut copies = copied.into_copies();
                copies.id = u64::from(m.entry.mm_ref);
                spaces.push(copies, GFP_KERNEL)?;
            }
        }
        tracking::keep(&trailer, spaces)?;
    }
    Ok(uapi::Stats {
        tasks: tree.members.iter().filter(|m| !m.entry.is_zombie()).count() as u64,
        pages: tally.pages,
        bytes,
        ..uapi::Stats::default()
    })
}

/// Everything that does not need the image: the tree, its sharing and leaks, and every live
/// task's own state, read once (one [`Prepared`] per member, zombies included, empty).
fn prepare(
    root: &Task,
    objs: &mut SaveObjects,
    allow_leaks: bool,
) -> CrResult<(Tree, KVec<Prepared>)> {
    let mut tree = tree::collect(root)?;
    tree::assign_objrefs(&mut tree, objs)?;
    tree::check_recreatable(&tree)?;
    let mut prepared = KVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
    for m in tree.members.iter() {
        if m.entry.is_zombie() {
            prepared.push(Prepared::default(), GFP_KERNEL)?;
            continue;
        }
        let of_task = |e: CrError| e.of_task(m.entry.pid);
        if !task::may_checkpoint(&m.task) {
            return Err(of_task(CrError::new(
                EPERM,
                "permission denied for a task of the tree",
            )));
        }
        if let Some(refusal) = task::refusal(m.task.facts()) {
            return Err(of_task(refusal));
        }
        let p = section::prepare(&m.task, m.is_leader(), m.defines).map_err(of_task)?;
        prepared.push(p, GFP_KERNEL)?;
    }
    if !allow_leaks {
        let mut tables = KVec::new();
        let mut layouts = KVec::new();
        for p in prepared.iter() {
            if let Some(t) = &p.files {
                tables.push(t, GFP_KERNEL)?;
            }
            if let Some(l) = &p.mm {
                layouts.push(l, GFP_KERNEL)?;
            }
        }
        leaks::check(&tree, &tables, &layouts)?;
    }
    Ok((tree, prepared))
}

/// About how large the image will be: the tree's resident private memory, and a page for every
/// other record of a task.
fn estimate(prepared: &[Prepared]) -> u64 {
    prepared
        .iter()
        .map(|p| p.mm.as_ref().map_or(0, |l| l.mm.resident_private_bytes()) + PAGE_SIZE as u64)
        .sum()
}

fn save_all(
    tree: &Tree,
    prepared: &mut [Prepared],
    out: &mut ImageOut,
    objs: &mut SaveObjects,
    tally: &mut Tally,
) -> CrResult {
    tree::save(out, tree)?;
    if tree.container {
        ns::save(out, &tree.members[0].task)?;
    }
    for (m, p) in tree.members.iter().zip(prepared.iter_mut()) {
        if m.entry.is_zombie() {
            continue;
        }
        let mut cx = SaveCx {
            task: &m.task,
            ns: &tree.ns,
            out: &mut *out,
            objs: &mut *objs,
            tally: &mut *tally,
        };
        section::save(&mut cx, m.is_leader(), m.defines, p).map_err(|e| e.of_task(m.entry.pid))?;
    }
    // The state was read while the tree was frozen; if someone thawed a task meanwhile, the
    // image may mix two moments: mark it incomplete rather than let it restore wrongly.
    let thawed = tree
        .members
        .iter()
        .any(|m| !m.entry.is_zombie() && task::refusal(m.task.facts()).is_some());
    if thawed {
        return Err(CrError::new(
            EBUSY,
            "a task was thawed during the checkpoint",
        ));
    }
    Ok(())
}

kernel::sync::global_lock! {
    // SAFETY: initialized in the module's init, before /dev/cr exists.
    pub(crate) unsafe(uninit) static IN_FLIGHT: Mutex<KVec<u64>> = KVec::new();
}

/// The tasks of a checkpoint in progress, registered in [`IN_FLIGHT`] until it is dropped.
struct InFlight(KVec<u64>);

impl InFlight {
    fn claim(tree: &Tree) -> CrResult<Self> {
        let mut mine = KVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
        for m in tree.members.iter() {
            mine.push(m.task.identity(), GFP_KERNEL)?;
        }
        mine.sort_unstable();
        let mut all = IN_FLIGHT.lock();
        if mine.iter().any(|t| all.binary_search(t).is_ok()) {
            return Err(CrError::new(
                EBUSY,
                "another checkpoint of this tree is in progress",
            ));
        }
        all.extend_from_slice(&mine, GFP_KERNEL)?;
        all.sort_unstable();
        Ok(Self(mine))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mine = &self.0;
        release_if_idle(&mut IN_FLIGHT.lock(), |t| mine.binary_search(t).is_err());
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialized in the module's init, before /dev/cr exists.
    pub(crate) unsafe(uninit) static RUNNING: Mutex<KVec<(i32, Arc<Progress>)>> = KVec::new();
}

/// The caller's entry in [`RUNNING`], removed when dropped.
struct Registered(Arc<Progress>);

impl Registered {
    fn new(total: u64) -> CrResult<Self> {
        let p = Arc::new(Progress::new(total), GFP_KERNEL)?;
        let caller = caller_tgid();
        RUNNING.lock().push((caller, p.clone()), GFP_KERNEL)?;
        Ok(Self(p))
    }
}

fn caller_tgid() -> i32 {
    kernel::current!().group_leader().pid()
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mine = &self.0;
        release_if_idle(&mut RUNNING.lock(), |(_, p)| !Arc::ptr_eq(p, mine));
    }
}

/// `CR_IOC_PROGRESS`: the checkpoint the calling process runs (the first, if several).
pub(crate) fn progress() -> Result<uapi::Progress> {
    let caller = caller_tgid();
    let running = RUNNING.lock();
    let (_, p) = running.iter().find(|(t, _)| *t == caller).ok_or(ENOENT)?;
    Ok(p.now())
}
