// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_PRECOPY`: the rounds of a thawed checkpoint, which copy a tree's private memory
//! while it runs.
//!
//! Each round walks the page tables of every address space of the tree, harvesting their dirty
//! state ([`mm::copy_round`]): the first round copies every page, each later one the pages
//! written since the round before, and no task takes a fault for it. The copies go to a
//! precopy image. The rounds stop once the pages the last one found written could be copied
//! within the caller's downtime budget, or they stop shrinking, or after the last round
//! allowed. What was copied stays with the open `/dev/cr`, for the frozen round that
//! `CR_IOC_CHECKPOINT` with `CR_CHECKPOINT_AFTER_PRECOPY` writes once the caller froze the tree.

use kernel::{
    mm::MmWithUser,
    prelude::*,
    sync::aref::ARef,
    task::Task,
    time::{ClockSource, Monotonic},
};

use crate::cx::PAGE_SIZE;
use crate::error::{CrError, CrResult};
use crate::format::{header_flags, FRESH_SPACE, PAGES_PER_RECORD};
use crate::image::{self, file_of_fd, FileSink, ImageOut, Log};
use crate::mm;
use crate::shim::{current, find_task, TaskExt};
use crate::tracking::{self, CopiedSpace, Parent, ParentRef};
use crate::uapi::{PrecopyArgs, PrecopyStats, PRECOPY_ROUNDS_DEFAULT, PRECOPY_STATS};
use crate::{task, tree};

/// Most rounds, whatever the caller asks.
const ROUNDS_MAX: u32 = 64;

/// What the rounds of a thawed checkpoint copied, until its frozen round.
pub(crate) struct Precopy {
    /// The root of the tree, as the caller named it.
    pub(crate) pid: i32,
    /// Every address space a round copied.
    spaces: KVec<CopiedSpace>,
    /// The image the checkpoint is incremental to, with what it kept of the address spaces
    /// that no round tracks yet.
    pub(crate) parent: Option<Parent>,
}

/// Runs the ioctl, incremental to `parent` if the module kept its tracking, and returns what it
/// copied.
pub(crate) fn run(args: &PrecopyArgs, parent: Option<ParentRef>) -> Result<Precopy> {
    let log = Log::open(args.logfd)?;
    let start = Monotonic::ktime_get();
    let parent = parent.and_then(|p| Parent::take(p, &log));
    let (precopy, stats) = precopy(args, parent).map_err(|e| {
        log.error("precopy", Some(args.pid), &e);
        e.errno
    })?;
    if args.flags & PRECOPY_STATS != 0 {
        let stats = PrecopyStats {
            ns: (Monotonic::ktime_get() - start) as u64,
            ..stats
        };
        log.raw(format_args!("{stats}"));
    }
    Ok(precopy)
}

fn precopy(args: &PrecopyArgs, parent: Option<Parent>) -> CrResult<(Precopy, PrecopyStats)> {
    let root = find_task(args.pid).ok_or(CrError::new(ESRCH, "no such process"))?;
    if !task::may_checkpoint(&root) {
        return Err(CrError::new(EPERM, "permission denied"));
    }
    let file = file_of_fd(args.fd).map_err(|e| CrError::new(e, "bad image descriptor"))?;
    let sink = FileSink::new(file, None)?;
    let mut out = ImageOut::new(sink, &image::header(header_flags::PRECOPY))?;
    let mut me = Precopy {
        pid: args.pid,
        spaces: KVec::new(),
        parent,
    };
    let mut stats = PrecopyStats::default();
    let written = tracking::write_parent(&mut out, me.parent.as_ref().map(|p| &p.named))
        .and_then(|()| me.rounds(&root, args, &mut out, &mut stats));
    stats.bytes = image::close(out, written)?.0;
    Ok((me, stats))
}

impl Precopy {
    fn rounds(
        &mut self,
        root: &Task,
        args: &PrecopyArgs,
        out: &mut ImageOut,
        stats: &mut PrecopyStats,
    ) -> CrResult {
        let rounds = match args.max_rounds {
            0 => PRECOPY_ROUNDS_DEFAULT,
            n => n.min(ROUNDS_MAX),
        };
        let mut buf = KVVec::with_capacity(PAGES_PER_RECORD * PAGE_SIZE, GFP_KERNEL)?;
        // Bytes per second the first round, which copies everything, achieved.
        let mut speed = 0u64;
        let mut before = u64::MAX;
        for round in 0..rounds {
            if current::fatal_signal_pending() {
                return Err(CrError::new(EINTR, "interrupted"));
            }
            let began = Monotonic::ktime_get();
            let copied = self.round(root, out, &mut buf)?;
            let took = (Monotonic::ktime_get() - began).max(1) as u64;
            stats.rounds += 1;
            stats.pages += copied;
            stats.last = copied;
            let bytes = copied * PAGE_SIZE as u64;
            if round == 0 {
                speed = bytes.saturating_mul(1_000_000_000) / took;
                if copied == 0 {
                    break;
                }
                continue;
            }
            // The frozen round copies about what this round found written.
            let frozen_ns = bytes.saturating_mul(1_000_000_000) / speed.max(1);
            if frozen_ns <= args.max_downtime_ns {
                break;
            }
            // Written as fast as copied: more rounds would not shrink the frozen one.
            if copied.saturating_mul(5) > before.saturating_mul(4) {
                break;
            }
            before = copied;
        }
        Ok(())
    }

    /// One round over every address space the tree uses now; returns the pages copied. The
    /// tree changes under the rounds (tasks fork, exec and exit): it is taken as it is, without
    /// the checks only a frozen tree passes, but every task must be one the caller may
    /// checkpoint before a page of it is read.
    fn round(&mut self, root: &Task, out: &mut ImageOut, buf: &mut KVVec<u8>) -> CrResult<u64> {
        let tasks = tree::running_members(root)?;
        let mut done: KVec<usize> = KVec::new();
        let mut copied = 0;
        for task in tasks.iter() {
            let Some(mm) = task.mm_ref() else { continue };
            let identity = mm.as_raw() as usize;
            if done.contains(&identity) {
                continue;
            }
            done.push(identity, GFP_KERNEL)?;
            let of_task = |e: CrError| e.of_task(task.pid() as u32);
            if !task::may_checkpoint(task) {
                return Err(of_task(CrError::new(
                    EPERM,
                    "permission denied for a task of the tree",
                )));
            }
            // Of the mm taken above: a task that exits meanwhile drops its own, and the round
            // copies what it had (the frozen round sees the task gone).
            let layout = mm::Layout::of(mm.clone()).map_err(of_task)?;
            let space = self.space_of(mm)?;
            copied += mm::copy_round(out, space, &layout, buf).map_err(of_task)?;
        }
        Ok(copied)
    }

    /// The copies of `mm`: from the parent's the first time if it kept them, else from
    /// nothing.
    fn space_of(&mut self, mm: ARef<MmWithUser>) -> CrResult<&mut CopiedSpace> {
        let at = match self.spaces.iter().position(|s| s.is_of(&mm)) {
            Some(at) => at,
            None => {
                let space = match self.parent.as_mut().and_then(|p| p.take_space(&mm)) {
                    Some(kept) => CopiedSpace::resume(kept)?,
                    None => CopiedSpace::new(FRESH_SPACE + self.spaces.len() as u64, &mm)?,
                };
                self.spaces.push(space, GFP_KERNEL)?;
                self.spaces.len() - 1
            }
        };
        Ok(&mut self.spaces[at])
    }

    /// Takes the copies of `mm` the rounds made, for the frozen round.
    pub(crate) fn take_space(&mut self, mm: &MmWithUser) -> Option<CopiedSpace> {
        let at = self.spaces.iter().position(|s| s.is_of(mm))?;
        self.spaces.remove(at).ok()
    }
}
