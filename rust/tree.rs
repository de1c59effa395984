// SPDX-License-Identifier: GPL-2.0

//! The process tree: which tasks a checkpoint takes, in which order, what they share, and
//! whether anything they hold is also held from outside (leak detection, as in linux-cr).
//! At restart, the TREE record is read back by the first task that joins.

use kernel::prelude::*;

use crate::checkpoint::{refuse, Stop};
use crate::forest_rules::{Lineage, Problem, ProcessIndex};
use crate::format::{
    entry_flags, file_kind, tree_flags, vma_kind, RecordKind, TreeEntry, TreeHeader,
};
use crate::image::ImageOut;
use crate::objhash::SaveObjects;
use crate::shim::{tree_info, FileRef, PidNsRef, Refusal, TaskRef, TreeInfo};

/// Most tasks one image holds.
pub(crate) const MAX_TASKS: usize = 1 << 16;

/// Which of the shared containers a task's section carries (it is the first to use them).
#[derive(Clone, Copy, Default)]
pub(crate) struct Defines {
    pub(crate) mm: bool,
    pub(crate) files: bool,
    pub(crate) fs: bool,
    pub(crate) sighand: bool,
}

/// One task of the tree.
pub(crate) struct Member {
    pub(crate) task: TaskRef,
    pub(crate) info: TreeInfo,
    pub(crate) entry: TreeEntry,
    pub(crate) defines: Defines,
}

impl Member {
    /// The first task of its thread group in the image, which carries the process-wide state.
    pub(crate) fn is_leader(&self) -> bool {
        !self.entry.is_thread()
    }
}

/// The tasks of a checkpoint, in section order.
pub(crate) struct Tree {
    pub(crate) ns: PidNsRef,
    pub(crate) container: bool,
    pub(crate) members: KVec<Member>,
}

/// Finds the subtree rooted at `root` and orders it: depth first, each process followed by its
/// other threads, then by its children, by pid.
pub(crate) fn collect(root: &TaskRef) -> Result<Tree, Stop> {
    let ns = root.pid_ns();
    let root_info = root.tree_info(&ns);
    let container = !ns.is_callers() && root_info.pid == 1;
    if !ns.is_callers() && !container {
        return Err(refuse(
            EOPNOTSUPP,
            "task is in another pid namespace and is not its init",
        ));
    }
    if root_info.pid != root_info.tgid {
        return Err(refuse(EINVAL, "the pid names a thread, not a process"));
    }
    let (tasks, strangers) = root.subtree(&ns)?;
    if container && strangers > 0 {
        return Err(refuse(
            EBUSY,
            "the container's pid namespace holds tasks that are not descendants of its init",
        ));
    }
    if container && root.ipc_ns_in_use() {
        return Err(refuse(
            EOPNOTSUPP,
            "the container's IPC namespace holds SysV objects, not supported yet",
        ));
    }
    if tasks.len() > MAX_TASKS {
        return Err(refuse(E2BIG, "too many tasks in the tree"));
    }
    let mut found = KVec::with_capacity(tasks.len(), GFP_KERNEL)?;
    for task in tasks {
        let info = task.tree_info(&ns);
        if info.flags & tree_info::EXITED != 0 && info.pid != info.tgid {
            // An exiting thread, already detached from its group: it is gone for good.
            continue;
        }
        if info.flags & tree_info::OTHER_PIDNS != 0 {
            return Err(refuse(EOPNOTSUPP, "a task lives in a nested pid namespace"));
        }
        if info.flags & tree_info::FORKED_BY_THREAD != 0
            && info.pdeath_signal != 0
            && info.pid != root_info.pid
        {
            // Its parent-death signal fires when that thread exits; restart creates every child
            // from its parent's main thread.
            return Err(Stop::RefusedTask(
                Refusal {
                    err: EOPNOTSUPP,
                    reason: "a child with a parent-death signal was forked by a thread other than its parent's main one (not supported)",
                },
                info.pid,
            ));
        }
        if info.flags & tree_info::LEADER_EXITED != 0 {
            return Err(refuse(
                EOPNOTSUPP,
                "a thread-group leader exited while its other threads run",
            ));
        }
        if info.flags & tree_info::EXITED == 0
            && (info.uts_ns != root_info.uts_ns || info.ipc_ns != root_info.ipc_ns)
        {
            return Err(refuse(
                EOPNOTSUPP,
                "a task lives in a nested UTS or IPC namespace",
            ));
        }
        found.push(Some((task, info)), GFP_KERNEL)?;
    }
    let order = depth_first(&found, root_info.pid)?;
    let mut members = KVec::with_capacity(order.len(), GFP_KERNEL)?;
    for i in order {
        if let Some((task, info)) = found[i].take() {
            let mut entry = TreeEntry {
                pid: info.pid,
                tgid: info.tgid,
                ppid: if info.tgid == root_info.pid {
                    0
                } else {
                    info.ppid
                },
                pgid: info.pgid,
                sid: info.sid,
                exit_signal: info.exit_signal,
                ..TreeEntry::default()
            };
            if info.flags & tree_info::EXITED != 0 {
                entry.flags |= entry_flags::ZOMBIE;
                entry.exit_status = info.exit_status;
            }
            if info.flags & tree_info::SUBREAPER != 0 {
                entry.flags |= entry_flags::SUBREAPER;
            }
            members.push(
                Member {
                    task,
                    info,
                    entry,
                    defines: Defines::default(),
                },
                GFP_KERNEL,
            )?;
        }
    }
    if members.first().is_none_or(|m| m.entry.is_zombie()) {
        return Err(refuse(ESRCH, "the root task has exited"));
    }
    let tree = Tree {
        ns,
        container,
        members,
    };
    check_closed(&tree)?;
    Ok(tree)
}

/// The safety net under the walk: a task whose parent process is in the tree must be in it too.
/// It looks at every task of the namespace again, by process identity, so it does not share the
/// walk's logic (which once followed a parent thread instead of its process).
fn check_closed(tree: &Tree) -> Result<(), Stop> {
    let kin = tree.ns.kin()?;
    let mut pids = KVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
    for m in tree.members.iter() {
        pids.push(m.entry.pid, GFP_KERNEL)?;
    }
    pids.sort_unstable();
    let mut processes = KVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
    for k in kin.iter() {
        if pids.binary_search(&k.pid).is_ok() {
            processes.push(k.process, GFP_KERNEL)?;
        }
    }
    processes.sort_unstable();
    let inside = |p: u64| processes.binary_search(&p).is_ok();
    match kin.iter().find(|k| !inside(k.process) && inside(k.parent)) {
        Some(stray) => Err(Stop::RefusedTask(
            Refusal {
                err: EBUSY,
                reason:
                    "a child of the tree was left out of it (the tree changed while it was walked?)",
            },
            stray.pid,
        )),
        None => Ok(()),
    }
}

/// Indices of `found` in section order.
fn depth_first(found: &[Option<(TaskRef, TreeInfo)>], root: u32) -> Result<KVec<usize>, Stop> {
    let info = |i: usize| found[i].as_ref().map(|(_, info)| info);
    let mut order = KVec::with_capacity(found.len(), GFP_KERNEL)?;
    // Processes still to visit, last pushed first; children are pushed in reverse pid order so
    // that they are visited by increasing pid.
    let mut stack = KVec::new();
    let root_index = (0..found.len())
        .find(|&i| info(i).is_some_and(|t| t.pid == root))
        .ok_or_else(|| refuse(ESRCH, "the root task has exited"))?;
    stack.push(root_index, GFP_KERNEL)?;
    while let Some(p) = stack.pop() {
        let Some(process) = info(p).copied() else {
            continue;
        };
        order.push(p, GFP_KERNEL)?;
        for i in 0..found.len() {
            if info(i).is_some_and(|t| t.tgid == process.tgid && t.pid != t.tgid) {
                order.push(i, GFP_KERNEL)?;
            }
        }
        for i in (0..found.len()).rev() {
            if info(i).is_some_and(|t| t.pid == t.tgid && t.ppid == process.tgid && i != p) {
                stack.push(i, GFP_KERNEL)?;
            }
        }
    }
    if order.len() != found.iter().filter(|f| f.is_some()).count() {
        return Err(refuse(
            EBUSY,
            "the tree changed while it was walked (a task was reparented)",
        ));
    }
    Ok(order)
}

/// Gives every member its objrefs and checks that the sharing is one `restart` can recreate.
pub(crate) fn assign_objrefs(tree: &mut Tree, objs: &mut SaveObjects) -> Result<(), Stop> {
    for i in 0..tree.members.len() {
        let (before, rest) = tree.members.split_at_mut(i);
        let m = &mut rest[0];
        if m.entry.is_zombie() {
            continue;
        }
        let info = m.info;
        let (mm, new_mm) = objs.containers.get_or_allocate(info.mm, &mut objs.space)?;
        let (files, new_files) = objs
            .containers
            .get_or_allocate(info.files, &mut objs.space)?;
        let (fs, new_fs) = objs.containers.get_or_allocate(info.fs, &mut objs.space)?;
        let (sighand, new_sighand) = objs
            .containers
            .get_or_allocate(info.sighand, &mut objs.space)?;
        m.entry.mm_ref = mm;
        m.entry.files_ref = files;
        m.entry.fs_ref = fs;
        m.entry.sighand_ref = sighand;
        m.defines = Defines {
            mm: new_mm,
            files: new_files,
            fs: new_fs,
            sighand: new_sighand,
        };
        let thread = m.entry.is_thread();
        // A thread shares its leader's address space and handlers by definition; between
        // processes, restart can only share what a child inherits from its parent by clone.
        if thread == new_mm || thread == new_sighand {
            return Err(refuse(
                EOPNOTSUPP,
                "address space or signal handlers shared between processes (vfork, CLONE_VM)",
            ));
        }
        let creator = before.iter().find(|c| {
            if thread {
                c.entry.pid == m.entry.tgid
            } else {
                c.entry.pid == m.entry.ppid
            }
        });
        let shares_with_creator =
            |pick: fn(&TreeEntry) -> u32, id: u32| creator.is_some_and(|c| pick(&c.entry) == id);
        if (!new_files && !shares_with_creator(|e| e.files_ref, files))
            || (!new_fs && !shares_with_creator(|e| e.fs_ref, fs))
        {
            return Err(refuse(
                EOPNOTSUPP,
                "a descriptor table or fs_struct is shared beyond parent and child",
            ));
        }
    }
    Ok(())
}

/// The entries' processes by pid, for the shared forest rules.
struct SortedProcesses(KVec<(u32, usize)>);

impl ProcessIndex for SortedProcesses {
    fn process(&self, pid: u32) -> Option<usize> {
        self.0
            .binary_search_by_key(&pid, |p| p.0)
            .ok()
            .map(|i| self.0[i].1)
    }
}

/// Refuses a tree that `restart` could not recreate, by the very rules it applies: an image
/// that is written is one that restores.
pub(crate) fn check_recreatable(tree: &Tree) -> Result<(), Stop> {
    let mut entries = KVVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
    for m in tree.members.iter() {
        entries.push(m.entry, GFP_KERNEL)?;
    }
    match check_entries(&entries, tree.container) {
        Ok(()) => Ok(()),
        Err(Some(p)) => Err(Stop::Forest(p)),
        Err(None) => Err(Stop::Failed(ENOMEM)),
    }
}

/// The forest rules over TREE entries; `Err(None)` when out of memory.
pub(crate) fn check_entries(entries: &[TreeEntry], container: bool) -> Result<(), Option<Problem>> {
    let mut processes = KVec::with_capacity(entries.len(), GFP_KERNEL).map_err(|_| None)?;
    for (i, e) in entries.iter().enumerate().filter(|(_, e)| !e.is_thread()) {
        processes.push((e.pid, i), GFP_KERNEL).map_err(|_| None)?;
    }
    processes.sort_unstable_by_key(|p| p.0);
    let index = SortedProcesses(processes);
    Lineage::new(entries, container, &index)
        .and_then(|l| l.check())
        .map_err(Some)
}

/// A sorted set of kernel identities (pointers compared, never dereferenced).
#[derive(Default)]
struct Identities(KVec<u64>);

impl Identities {
    fn add(&mut self, id: u64) -> Result<(), Stop> {
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
    fn insert(&mut self, id: u64) -> Result<(), Stop> {
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
fn dedup_sorted<T>(v: &mut KVec<T>, key: impl Fn(&T) -> u64) {
    let mut last = None;
    v.retain(|x| {
        let k = Some(key(x));
        let new = k != last;
        last = k;
        new
    });
}

/// A pipe end or shared-memory file the tree holds.
struct Held {
    file: FileRef,
    /// The pipe behind a pipe end, else 0.
    pipe: u64,
}

/// Leak detection, as in linux-cr: nothing the tree holds may also be held by a task outside
/// it, since a restart would split it in two. Who holds what is read from the holders' state:
/// the address space, descriptor table, fs_struct and handlers a task points at, the
/// descriptors of a table, the mappings of a file, the open files of a pipe. Reference counts
/// are not used: anyone may raise them for a moment (a /proc reader, another checkpoint, a
/// thread inside a system call).
pub(crate) fn check_leaks(tree: &Tree) -> Result<(), Stop> {
    let mut tasks = Identities::default();
    let mut mms = Identities::default();
    let mut tables = Identities::default();
    let mut fss = Identities::default();
    let mut sighands = Identities::default();
    let mut held: KVec<Held> = KVec::new();
    for m in tree.members.iter() {
        tasks.add(m.task.identity())?;
        if m.entry.is_zombie() {
            continue;
        }
        mms.add(m.info.mm)?;
        tables.add(m.info.files)?;
        fss.add(m.info.fs)?;
        sighands.add(m.info.sighand)?;
        if m.defines.files {
            let mut fd = 0;
            while let Some((file, _)) = m.task.next_file(&mut fd) {
                note_held(&mut held, file)?;
                fd += 1;
            }
        }
        if m.defines.mm {
            let mm = m.task.mm()?;
            let mut addr = 0;
            while let Some(vma) = mm.vma_from(addr)? {
                addr = vma.info.end;
                if let Some(f) = vma.file.filter(|_| vma.info.kind == vma_kind::SHMEM) {
                    note_held(&mut held, f)?;
                }
            }
        }
    }
    for set in [&mut tasks, &mut mms, &mut tables, &mut fss, &mut sighands] {
        set.seal();
    }
    held.sort_unstable_by_key(|h| h.file.as_ptr() as u64);
    dedup_sorted(&mut held, |h| h.file.as_ptr() as u64);

    let mut scanned = Identities::default();
    for task in TaskRef::all()?.iter() {
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
                tables.has(info.files),
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
            return Err(refuse(EBUSY, reason));
        }
        // Each outside descriptor table once: does it hold a pipe end or shmem file of ours?
        if held.is_empty() || info.files == 0 || scanned.has(info.files) {
            continue;
        }
        scanned.insert(info.files)?;
        let mut fd = 0;
        while let Some((file, _)) = task.next_file(&mut fd) {
            let key = file.as_ptr() as u64;
            if let Ok(i) = held.binary_search_by_key(&key, |h| h.file.as_ptr() as u64) {
                return Err(refuse(
                    EBUSY,
                    if held[i].pipe != 0 {
                        "a pipe end is also held by a task outside the checkpoint"
                    } else {
                        "shared memory is also open outside the checkpoint"
                    },
                ));
            }
            fd += 1;
        }
    }
    for h in held.iter().filter(|h| h.pipe == 0) {
        if h.file.mapping_mms()?.iter().any(|&mm| !mms.has(mm)) {
            return Err(refuse(
                EBUSY,
                "shared memory is also mapped outside the checkpoint",
            ));
        }
    }
    check_pipe_ends(&mut held)
}

/// Notes a file the tree holds, if its sharing is one restart recreates (a pipe end, shmem).
fn note_held(held: &mut KVec<Held>, file: FileRef) -> Result<(), Stop> {
    let kind = file.info()?.kind;
    let pipe = match kind {
        file_kind::PIPE => file.pipe_info()?.pipe,
        file_kind::SHMEM => 0,
        _ => return Ok(()),
    };
    held.push(Held { file, pipe }, GFP_KERNEL)?;
    Ok(())
}

/// Every open file of a pipe must be one the tree holds: each pipe counts the files open for
/// reading and for writing.
fn check_pipe_ends(held: &mut [Held]) -> Result<(), Stop> {
    held.sort_unstable_by_key(|h| h.pipe);
    for ends in held
        .chunk_by(|a, b| a.pipe == b.pipe)
        .filter(|e| e[0].pipe != 0)
    {
        let (mut readers, mut writers) = (0, 0);
        for end in ends.iter() {
            let info = end.file.pipe_info()?;
            readers += u32::from(info.readable);
            writers += u32::from(info.writable);
        }
        let info = ends[0].file.pipe_info()?;
        if readers != info.readers || writers != info.writers {
            return Err(refuse(
                EBUSY,
                "a pipe's other end is held by a task outside the checkpoint",
            ));
        }
    }
    Ok(())
}

/// TREE: the header and one entry per task, then, for a container, its UTS names.
pub(crate) fn save(out: &mut ImageOut, tree: &Tree) -> Result<(), Stop> {
    let head = TreeHeader {
        count: tree.members.len() as u32,
        flags: if tree.container {
            tree_flags::CONTAINER
        } else {
            0
        },
    };
    let mut bytes = KVVec::with_capacity(tree.members.len() * TreeEntry::LEN, GFP_KERNEL)?;
    for m in tree.members.iter() {
        bytes.extend_from_slice(&m.entry.encode(), GFP_KERNEL)?;
    }
    out.record(RecordKind::Tree as u32, &[&head.encode(), &bytes])?;
    if tree.container {
        crate::ns::save(out, &tree.members[0].task)?;
    }
    Ok(())
}
