// SPDX-License-Identifier: GPL-2.0

//! Leak detection, as in linux-cr: nothing the tree holds may also be held by a task outside
//! it, since a restart would split it in two.
//!
//! Who holds what is read from the holders' state: the address space, descriptor table,
//! fs_struct and handlers a task points at, the descriptors of a table, the mappings of a file,
//! the open files of a pipe. Reference counts are not used: anyone may raise them for a moment
//! (a /proc reader, another checkpoint, a thread inside a system call).

use kernel::{fs::File, prelude::*, sync::aref::ARef};

use crate::error::{CrError, CrResult};
use crate::files::Table;
use crate::format::{file_kind, vma_kind};
use crate::mm::Layout;
use crate::shim::{all_tasks, FileExt, TaskExt};
use crate::tree::Tree;

/// A sorted set of kernel identities (pointers compared, never dereferenced).
#[derive(Default)]
struct Identities(KVVec<u64>);

impl Identities {
    fn add(&mut self, id: u64) -> CrResult {
        if id != 0 {
            self.0.push(id, GFP_KERNEL)?;
        }
        Ok(())
    }

    fn seal(&mut self) {
        self.0.sort_unstable();
        dedup_sorted(&mut self.0, |&id| id);
    }

    /// Adds `id` to a sealed set, keeping it sorted.
    fn insert(&mut self, id: u64) -> CrResult {
        if let Err(i) = self.0.binary_search(&id) {
            self.0.reserve(1, GFP_KERNEL)?;
            let _ = self.0.insert_within_capacity(i, id);
        }
        Ok(())
    }

    fn has(&self, id: u64) -> bool {
        id != 0 && self.0.binary_search(&id).is_ok()
    }
}

/// Drops the repeats of a vector sorted by `key`.
fn dedup_sorted<T>(v: &mut KVVec<T>, key: impl Fn(&T) -> u64) {
    let mut last = None;
    v.retain(|x| {
        let k = Some(key(x));
        let new = k != last;
        last = k;
        new
    });
}

/// What an open file the tree holds is, for leak detection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HeldKind {
    /// A pipe end or FIFO, with the pipe behind it.
    Pipe(u64),
    /// A shmem file, which may also be mapped.
    Shmem,
    /// An eventfd, timerfd, signalfd or epoll: one open file, whatever holds it.
    Event,
}

/// A pipe end, shared-memory file or event file the tree holds.
struct Held {
    file: ARef<File>,
    kind: HeldKind,
}

impl Held {
    fn pipe(&self) -> u64 {
        match self.kind {
            HeldKind::Pipe(pipe) => pipe,
            _ => 0,
        }
    }
}

fn key(h: &Held) -> u64 {
    h.file.as_ptr() as u64
}

/// What the tree holds: its members' identities and shared containers, and the pipe ends and
/// shmem files of their descriptor tables and address spaces (`tables` and `layouts` give those,
/// one per member that defines them).
pub(crate) fn check(tree: &Tree, tables: &[&Table], layouts: &[&Layout]) -> CrResult {
    let mut tasks = Identities::default();
    let mut mms = Identities::default();
    let mut fds = Identities::default();
    let mut fss = Identities::default();
    let mut sighands = Identities::default();
    for m in tree.members.iter() {
        tasks.add(m.task.identity())?;
        if m.entry.is_zombie() {
            continue;
        }
        mms.add(m.info.mm)?;
        fds.add(m.info.files)?;
        fss.add(m.info.fs)?;
        sighands.add(m.info.sighand)?;
    }
    for set in [&mut tasks, &mut mms, &mut fds, &mut fss, &mut sighands] {
        set.seal();
    }
    let mut held: KVVec<Held> = KVVec::new();
    for table in tables {
        for o in table.open.iter() {
            let kind = match o.class.kind {
                file_kind::PIPE | file_kind::FIFO => {
                    HeldKind::Pipe(o.file.pipe().map_or(0, |p| p.info().pipe))
                }
                file_kind::SHMEM => HeldKind::Shmem,
                file_kind::EVENT => HeldKind::Event,
                _ => continue,
            };
            held.push(
                Held {
                    file: o.file.clone(),
                    kind,
                },
                GFP_KERNEL,
            )?;
        }
    }
    for layout in layouts {
        for a in layout.areas.iter().filter(|a| a.kind == vma_kind::SHMEM) {
            if let Some(f) = &a.vma.file {
                held.push(
                    Held {
                        file: f.clone(),
                        kind: HeldKind::Shmem,
                    },
                    GFP_KERNEL,
                )?;
            }
        }
    }
    held.sort_unstable_by_key(key);
    dedup_sorted(&mut held, key);

    let mut scanned = Identities::default();
    for task in all_tasks()?.iter() {
        if tasks.has(task.identity()) {
            continue;
        }
        let info = task.tree_info(&tree.ns);
        let shared = [
            (
                mms.has(info.mm),
                "an address space is shared with a task outside the checkpoint",
            ),
            (
                fds.has(info.files),
                "a descriptor table is shared with a task outside the checkpoint",
            ),
            (
                fss.has(info.fs),
                "an fs_struct (root, cwd) is shared with a task outside the checkpoint",
            ),
            (
                sighands.has(info.sighand),
                "signal handlers are shared with a task outside the checkpoint",
            ),
        ];
        if let Some((_, reason)) = shared.iter().find(|s| s.0) {
            return Err(CrError::new(EBUSY, reason));
        }
        // Each outside descriptor table once: does it hold a pipe end, shmem or event file of
        // ours?
        if held.is_empty() || info.files == 0 || scanned.has(info.files) {
            continue;
        }
        scanned.insert(info.files)?;
        let mut fd = 0;
        while let Some((file, _)) = task.next_file(&mut fd) {
            if let Ok(i) = held.binary_search_by_key(&(file.as_ptr() as u64), key) {
                return Err(CrError::new(
                    EBUSY,
                    match held[i].kind {
                        HeldKind::Pipe(_) => {
                            "a pipe end is also held by a task outside the checkpoint"
                        }
                        HeldKind::Shmem => "shared memory is also open outside the checkpoint",
                        HeldKind::Event => {
                            "an event file (eventfd, timerfd, signalfd, epoll) is also held by a task outside \
                             the checkpoint"
                        }
                    },
                ));
            }
            fd += 1;
        }
    }
    for h in held.iter().filter(|h| h.kind == HeldKind::Shmem) {
        if h.file.mapping_mms()?.iter().any(|&mm| !mms.has(mm)) {
            return Err(CrError::new(
                EBUSY,
                "shared memory is also mapped outside the checkpoint",
            ));
        }
    }
    check_pipe_ends(&mut held)
}

/// Every open file of a pipe must be one the tree holds: each pipe counts the files open for
/// reading and for writing.
fn check_pipe_ends(held: &mut [Held]) -> CrResult {
    held.sort_unstable_by_key(Held::pipe);
    for ends in held
        .chunk_by(|a, b| a.pipe() == b.pipe())
        .filter(|e| e[0].pipe() != 0)
    {
        let (mut readers, mut writers) = (0, 0);
        let mut counted = None;
        for end in ends.iter() {
            let Some(pipe) = end.file.pipe() else {
                continue;
            };
            let info = pipe.info();
            readers += u32::from(info.readable);
            writers += u32::from(info.writable);
            counted = Some((info.readers, info.writers));
        }
        if counted.is_some_and(|c| c != (readers, writers)) {
            return Err(CrError::new(
                EBUSY,
                "a pipe's other end is held by a task outside the checkpoint",
            ));
        }
    }
    Ok(())
}
