// SPDX-License-Identifier: GPL-2.0

//! The process tree: which tasks a checkpoint takes, in which order, what they share, and
//! whether anything they hold is also held from outside (leak detection, as in linux-cr).
//! At restart, the TREE record is read back by the first task that joins.

use kernel::prelude::*;

use crate::checkpoint::{refuse, Stop};
use crate::format::{entry_flags, tree_flags, RecordKind, TreeEntry, TreeHeader};
use crate::image::ImageOut;
use crate::objhash::SaveObjects;
use crate::shim::{tree_info, PidNsRef, TaskRef, TreeInfo};

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
    Ok(Tree {
        ns,
        container,
        members,
    })
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

/// Gives every member its objrefs and checks that the sharing is one `restart` can recreate
/// and that nothing is shared with a task outside the tree.
pub(crate) fn assign_objrefs(
    tree: &mut Tree,
    objs: &mut SaveObjects,
    allow_leaks: bool,
) -> Result<(), Stop> {
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
    if !allow_leaks {
        check_leaks(tree)?;
    }
    Ok(())
}

/// Every address space, descriptor table, fs_struct and sighand of the tree must be used by
/// tree members only: one used from outside would be split in two by a restart.
fn check_leaks(tree: &Tree) -> Result<(), Stop> {
    let live = || tree.members.iter().filter(|m| !m.entry.is_zombie());
    for m in live() {
        let i = &m.info;
        let users = |pick: fn(&Member) -> u32| live().filter(|o| pick(o) == pick(m)).count();
        let checks: [(u32, usize, &'static str); 4] = [
            (
                i.mm_users,
                users(|o| o.entry.mm_ref),
                "an address space is shared with a task outside the checkpoint",
            ),
            (
                i.files_users,
                users(|o| o.entry.files_ref),
                "a descriptor table is shared with a task outside the checkpoint",
            ),
            (
                i.fs_users,
                users(|o| o.entry.fs_ref),
                "an fs_struct (root, cwd) is shared with a task outside the checkpoint",
            ),
            (
                i.sighand_users,
                users(|o| o.entry.sighand_ref),
                "signal handlers are shared with a task outside the checkpoint",
            ),
        ];
        for (count, inside, reason) in checks {
            if count as usize != inside {
                return Err(refuse(EBUSY, reason));
            }
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
