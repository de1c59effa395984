// SPDX-License-Identifier: GPL-2.0

//! The process tree: which tasks a checkpoint takes, in which order, what they share, whether a
//! restart could recreate them (the TREE record); and at restart, the TREE read back.

use kernel::{pid_namespace::PidNamespace, prelude::*, sync::aref::ARef, task::Task};

use crate::error::{CrError, CrResult};
use crate::forest_rules::{Lineage, Problem, ProcessIndex};
use crate::format::{entry_flags, tree_flags, RecordKind, TreeEntry, TreeHeader};
use crate::image::{ImageIn, ImageOut};
use crate::objhash::{LoadObjects, SaveObjects};
use crate::records::{self, MAX_TASKS};
use crate::shim::ffi::{
    TreeInfo, CR_TREE_EXITED, CR_TREE_FORKED_BY_THREAD, CR_TREE_LEADER_EXITED, CR_TREE_OTHER_PIDNS,
    CR_TREE_SUBREAPER,
};
use crate::shim::{PidNsExt, TaskExt};

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
    pub(crate) task: ARef<Task>,
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
    pub(crate) ns: ARef<PidNamespace>,
    pub(crate) container: bool,
    pub(crate) members: KVVec<Member>,
}

/// Finds the subtree rooted at `root` and orders it: depth first, each process followed by its
/// other threads, then by its children, by pid.
/// The tasks of `root`'s subtree at this moment, for the rounds of a thawed checkpoint, which
/// run while the tree changes: none of the checks of [`collect`], which only a frozen tree
/// passes.
pub(crate) fn running_members(root: &Task) -> CrResult<KVec<ARef<Task>>> {
    let ns = root
        .get_pid_ns()
        .ok_or(CrError::new(ESRCH, "the root task has exited"))?;
    Ok(root.subtree(&ns)?.0)
}

pub(crate) fn collect(root: &Task) -> CrResult<Tree> {
    let ns = root
        .get_pid_ns()
        .ok_or(CrError::new(ESRCH, "the root task has exited"))?;
    let root_info = root.tree_info(&ns);
    let container = !ns.is_callers() && root_info.pid == 1;
    if !ns.is_callers() && !container {
        return Err(CrError::unsupported(
            "task is in another pid namespace and is not its init",
        ));
    }
    if root_info.pid != root_info.tgid {
        return Err(CrError::new(
            EINVAL,
            "the pid names a thread, not a process",
        ));
    }
    let (tasks, strangers) = root.subtree(&ns)?;
    if container && strangers > 0 {
        return Err(CrError::new(
            EBUSY,
            "the container's pid namespace holds tasks that are not descendants of its init",
        ));
    }
    if container && root.ipc_ns_in_use() {
        return Err(CrError::unsupported(
            "the container's IPC namespace holds SysV objects, not supported yet",
        ));
    }
    if tasks.len() > MAX_TASKS {
        return Err(CrError::new(E2BIG, "too many tasks in the tree"));
    }
    let mut found = KVVec::with_capacity(tasks.len(), GFP_KERNEL)?;
    for task in tasks {
        let info = task.tree_info(&ns);
        if info.flags & CR_TREE_EXITED != 0 && info.pid != info.tgid {
            // An exiting thread, already detached from its group: it is gone for good.
            continue;
        }
        check_member(&info, &root_info)?;
        found.push(Some((task, info)), GFP_KERNEL)?;
    }
    let order = depth_first(&found, root_info.pid)?;
    let mut members = KVVec::with_capacity(order.len(), GFP_KERNEL)?;
    for i in order {
        if let Some((task, info)) = found[i].take() {
            members.push(member(task, info, root_info.pid), GFP_KERNEL)?;
        }
    }
    if members.first().is_none_or(|m| m.entry.is_zombie()) {
        return Err(CrError::new(ESRCH, "the root task has exited"));
    }
    let tree = Tree {
        ns,
        container,
        members,
    };
    check_closed(&tree)?;
    Ok(tree)
}

/// What a task of the tree may not be.
fn check_member(info: &TreeInfo, root: &TreeInfo) -> CrResult {
    let refuse = |reason| Err(CrError::unsupported(reason).of_task(info.pid));
    if info.flags & CR_TREE_OTHER_PIDNS != 0 {
        return refuse("a task lives in a nested pid namespace");
    }
    if info.flags & CR_TREE_FORKED_BY_THREAD != 0 && info.pdeath_signal != 0 && info.pid != root.pid
    {
        // Its parent-death signal fires when that thread exits; restart creates every child
        // from its parent's main thread.
        return refuse(
            "a child with a parent-death signal was forked by a thread other than its parent's main one (not supported)",
        );
    }
    if info.flags & CR_TREE_LEADER_EXITED != 0 {
        return refuse("a thread-group leader exited while its other threads run");
    }
    if info.flags & CR_TREE_EXITED == 0
        && (info.uts_ns != root.uts_ns || info.ipc_ns != root.ipc_ns)
    {
        return refuse("a task lives in a nested UTS or IPC namespace");
    }
    Ok(())
}

fn member(task: ARef<Task>, info: TreeInfo, root: u32) -> Member {
    let mut entry = TreeEntry {
        pid: info.pid,
        tgid: info.tgid,
        ppid: if info.tgid == root { 0 } else { info.ppid },
        pgid: info.pgid,
        sid: info.sid,
        exit_signal: info.exit_signal,
        ..TreeEntry::default()
    };
    if info.flags & CR_TREE_EXITED != 0 {
        entry.flags |= entry_flags::ZOMBIE;
        entry.exit_status = info.exit_status;
    }
    if info.flags & CR_TREE_SUBREAPER != 0 {
        entry.flags |= entry_flags::SUBREAPER;
    }
    Member {
        task,
        info,
        entry,
        defines: Defines::default(),
    }
}

/// Indices of `found` in section order. Threads and children are found by binary search in
/// tables sorted by (tgid, pid) and (ppid, pid): O(n log n) for trees of thousands of tasks.
fn depth_first(found: &[Option<(ARef<Task>, TreeInfo)>], root: u32) -> CrResult<KVec<usize>> {
    let info = |i: usize| found[i].as_ref().map(|(_, info)| info);
    let mut threads = KVec::with_capacity(found.len(), GFP_KERNEL)?;
    let mut children = KVec::with_capacity(found.len(), GFP_KERNEL)?;
    let mut root_index = None;
    for i in 0..found.len() {
        let Some(t) = info(i) else { continue };
        if t.pid != t.tgid {
            threads.push((t.tgid, t.pid, i), GFP_KERNEL)?;
        } else if t.pid == root {
            root_index = Some(i);
        } else {
            children.push((t.ppid, t.pid, i), GFP_KERNEL)?;
        }
    }
    threads.sort_unstable();
    children.sort_unstable();
    let range = |v: &[(u32, u32, usize)], key: u32| {
        let lo = v.partition_point(|e| e.0 < key);
        let hi = v.partition_point(|e| e.0 <= key);
        lo..hi
    };
    let mut order = KVec::with_capacity(found.len(), GFP_KERNEL)?;
    // Processes still to visit, last pushed first; children are pushed in reverse pid order so
    // that they are visited by increasing pid.
    let mut stack = KVec::new();
    stack.push(
        root_index.ok_or(CrError::new(ESRCH, "the root task has exited"))?,
        GFP_KERNEL,
    )?;
    while let Some(p) = stack.pop() {
        let Some(process) = info(p).copied() else {
            continue;
        };
        order.push(p, GFP_KERNEL)?;
        for t in &threads[range(&threads, process.tgid)] {
            order.push(t.2, GFP_KERNEL)?;
        }
        for c in children[range(&children, process.tgid)].iter().rev() {
            stack.push(c.2, GFP_KERNEL)?;
        }
    }
    if order.len() != found.iter().filter(|f| f.is_some()).count() {
        return Err(CrError::new(
            EBUSY,
            "the tree changed while it was walked (a task was reparented)",
        ));
    }
    Ok(order)
}

/// The safety net under the walk: a task whose parent process is in the tree must be in it too.
/// It looks at every task of the namespace again, by process identity, so it does not share the
/// walk's logic (which once followed a parent thread instead of its process).
fn check_closed(tree: &Tree) -> CrResult {
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
        Some(stray) => Err(CrError::new(
            EBUSY,
            "a child of the tree was left out of it (the tree changed while it was walked?)",
        )
        .of_task(stray.pid)),
        None => Ok(()),
    }
}

/// Gives every member its objrefs and checks that the sharing is one `restart` can recreate.
pub(crate) fn assign_objrefs(tree: &mut Tree, objs: &mut SaveObjects) -> CrResult {
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
            return Err(CrError::unsupported(
                "address space or signal handlers shared between processes (vfork, CLONE_VM)",
            )
            .of_task(m.entry.pid));
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
            return Err(CrError::unsupported(
                "a descriptor table or fs_struct is shared beyond parent and child",
            )
            .of_task(m.entry.pid));
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

/// The forest rules over TREE entries, as `restart` applies them, and unique pids.
pub(crate) fn check_entries(entries: &[TreeEntry], container: bool) -> CrResult {
    let mut pids = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    let mut processes = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    for (i, e) in entries.iter().enumerate() {
        pids.push(e.pid, GFP_KERNEL)?;
        if !e.is_thread() {
            processes.push((e.pid, i), GFP_KERNEL)?;
        }
    }
    pids.sort_unstable();
    if pids.windows(2).any(|w| w[0] == w[1]) {
        return Err(CrError::malformed(crate::format::ErrorKind::BadField(
            "tree entry",
        )));
    }
    processes.sort_unstable_by_key(|p| p.0);
    let index = SortedProcesses(processes);
    Lineage::new(entries, container, &index)
        .and_then(|l| l.check())
        .map_err(|p: Problem| p.into())
}

/// Refuses a tree that `restart` could not recreate, by the very rules it applies: an image
/// that is written is one that restores.
pub(crate) fn check_recreatable(tree: &Tree) -> CrResult {
    let mut entries = KVVec::with_capacity(tree.members.len(), GFP_KERNEL)?;
    for m in tree.members.iter() {
        entries.push(m.entry, GFP_KERNEL)?;
    }
    check_entries(&entries, tree.container)
}

/// TREE: the header and one entry per task.
pub(crate) fn save(out: &mut ImageOut, tree: &Tree) -> CrResult {
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
    Ok(())
}

/// The TREE as restart reads it: the entries, and what each live task's section defines.
#[derive(Default)]
pub(crate) struct Loaded {
    pub(crate) entries: KVVec<TreeEntry>,
    pub(crate) defines: KVVec<Defines>,
    pub(crate) container: bool,
}

/// Reads the TREE record; its shared objrefs are defined in `objects` in stream order, by the
/// first live entry that names each (whose section then carries that state).
pub(crate) fn load(input: &mut ImageIn, objects: &mut LoadObjects) -> CrResult<Loaded> {
    input.expect(RecordKind::Tree)?;
    let offset = input.offset();
    let tree = records::Tree::decode(input.payload()).map_err(|k| input.malformed(k))?;
    let count = tree.head.count as usize;
    let mut loaded = Loaded {
        entries: KVVec::with_capacity(count, GFP_KERNEL)?,
        defines: KVVec::with_capacity(count, GFP_KERNEL)?,
        container: tree.container(),
    };
    for e in tree.entries() {
        let e = e.map_err(|k| CrError::malformed(k).at(offset))?;
        let mut defines = Defines::default();
        if !e.is_zombie() {
            let define = |objects: &mut LoadObjects, id| {
                objects.define_or_ref_shared(id).map_err(|e| e.at(offset))
            };
            defines = Defines {
                mm: define(objects, e.mm_ref)?,
                files: define(objects, e.files_ref)?,
                fs: define(objects, e.fs_ref)?,
                sighand: define(objects, e.sighand_ref)?,
            };
        }
        loaded.entries.push(e, GFP_KERNEL)?;
        loaded.defines.push(defines, GFP_KERNEL)?;
    }
    check_entries(&loaded.entries, loaded.container).map_err(|e| e.at(offset))?;
    Ok(loaded)
}
