// SPDX-License-Identifier: GPL-2.0

//! Other tasks' state, read through `ARef<Task>`, and pid namespaces.

use core::ffi::{c_int, c_long};

use kernel::{
    bindings, fs::File, mm::MmWithUser, pid_namespace::PidNamespace, prelude::*, sync::aref::ARef,
    task::Task,
};

use super::ffi::{self, CredsInfo, Kin, PendingSignal, RestartInfo, TaskInfo, TreeInfo};
use super::{check, file_or_none, task_or_none, UTS_BUF};
use crate::format::{GROUPS_MAX, RLIMIT_COUNT, SIGNAL_COUNT, USER_REGS_LEN};

/// The task with pid `vpid` in the caller's pid namespace.
pub(crate) fn find_task(vpid: i32) -> Option<ARef<Task>> {
    // SAFETY: the shim looks the pid up under RCU and returns a referenced task or NULL.
    task_or_none(unsafe { ffi::cr_get_task(vpid) })
}

/// Collects the referenced tasks a shim walk writes into a buffer of `max` task pointers,
/// growing the buffer until they all fit. `walk` returns how many there are.
fn collect_tasks(
    mut walk: impl FnMut(*mut *mut bindings::task_struct, c_long) -> c_long,
) -> Result<KVec<ARef<Task>>> {
    let mut raw: KVec<*mut bindings::task_struct> = KVec::with_capacity(256, GFP_KERNEL)?;
    loop {
        let max = raw.capacity();
        let n = walk(raw.as_mut_ptr(), max as c_long) as usize;
        // SAFETY: the shim wrote min(n, max) referenced, non-NULL task pointers.
        unsafe { raw.inc_len(n.min(max)) };
        let mut tasks = KVec::with_capacity(raw.len(), GFP_KERNEL)?;
        for &t in raw.iter() {
            // Cannot fail: the capacity is there, and each pointer carries its reference.
            if let Some(t) = task_or_none(t) {
                let _ = tasks.push_within_capacity(t);
            }
        }
        if n <= max {
            return Ok(tasks);
        }
        // The first guess was too small: the references go with `tasks`; look again.
        drop(tasks);
        raw.clear();
        raw.reserve(n + 64, GFP_KERNEL)?;
    }
}

/// Every task of the system (threads and zombies included).
pub(crate) fn all_tasks() -> Result<KVec<ARef<Task>>> {
    // SAFETY: `out` has room for `max` task pointers, which bounds what the shim writes.
    collect_tasks(|out, max| unsafe { ffi::cr_collect_all(out, max) })
}

/// What this module reads of a task.
pub(crate) trait TaskExt {
    /// The task's identity, for comparisons only.
    fn identity(&self) -> u64;
    /// Every task of `ns` in this task's subtree (threads and zombies included), in pid order,
    /// and the number of tasks of `ns` outside it.
    fn subtree(&self, ns: &PidNamespace) -> Result<(KVec<ARef<Task>>, usize)>;
    /// Ids, exit state and shared-object identities, pids as `ns` sees them.
    fn tree_info(&self, ns: &PidNamespace) -> TreeInfo;
    /// Whether the caller may attach to it, as ptrace would.
    fn may_attach(&self) -> bool;
    /// `CR_TF_*` facts about what it is doing and holding.
    fn facts(&self) -> u32;
    /// Whether its IPC namespace holds SysV objects.
    fn ipc_ns_in_use(&self) -> bool;
    /// Node name and domain name, NUL-terminated.
    fn uts(&self) -> ([u8; UTS_BUF], [u8; UTS_BUF]);
    /// Whether it has exited (a zombie, or gone).
    fn exited(&self) -> bool;
    /// Scalars, pids as `ns` sees them.
    fn scalars(&self, ns: &PidNamespace) -> TaskInfo;
    /// Credentials, with the supplementary groups appended to `groups`.
    fn creds(&self, groups: &mut KVec<u32>) -> Result<CredsInfo>;
    /// Resource limits as (cur, max) pairs.
    fn rlimits(&self) -> [u64; 2 * RLIMIT_COUNT];
    /// Interval timer `which` (a `CR_ITIMER_*`) as (time left, interval) in nanoseconds, a
    /// disarmed one's time left 0.
    fn itimer(&self, which: u32) -> (u64, u64);
    /// The 64 signal dispositions as {handler, flags, restorer, mask}.
    fn sigactions(&self) -> Result<KVec<u64>>;
    /// The signals queued on its own or its thread group's queue.
    fn pending(&self, shared: bool) -> Result<KVec<PendingSignal>>;
    /// General registers in `struct user_regs_struct` layout (the task is frozen).
    fn regs(&self) -> Result<[u8; USER_REGS_LEN]>;
    /// The XSAVE area, `current::xstate_size()` bytes.
    fn xstate(&self, out: &mut [u8]) -> Result;
    /// The pending restart block; `EOPNOTSUPP` for one cr cannot recreate.
    fn restart_block(&self) -> Result<RestartInfo>;
    /// Its address space.
    fn mm_ref(&self) -> Option<ARef<MmWithUser>>;
    /// The next open descriptor at or after `*fd`, with its close-on-exec bit.
    fn next_file(&self, fd: &mut u32) -> Option<(ARef<File>, bool)>;
    /// Its descriptor table's identity, which owns its POSIX locks; 0 for none.
    fn files_identity(&self) -> u64;
    /// Root and cwd (written NUL-terminated into the buffers) and umask; `ENOENT` when one of
    /// them was removed.
    fn fs_paths(&self, root: &mut [u8], cwd: &mut [u8]) -> Result<u32>;
}

impl TaskExt for Task {
    fn identity(&self) -> u64 {
        self.as_ptr() as u64
    }

    fn subtree(&self, ns: &PidNamespace) -> Result<(KVec<ARef<Task>>, usize)> {
        let mut strangers = 0;
        // SAFETY: the task and `ns` are referenced; `out` has room for `max` task pointers.
        let tasks = collect_tasks(|out, max| unsafe {
            ffi::cr_collect_tree(self.as_ptr(), ns.as_ptr(), out, max, &mut strangers)
        })?;
        Ok((tasks, strangers as usize))
    }

    fn tree_info(&self, ns: &PidNamespace) -> TreeInfo {
        let mut info = TreeInfo::default();
        // SAFETY: task and namespace are referenced; `info` is a valid out-parameter.
        unsafe { ffi::cr_tree_info(self.as_ptr(), ns.as_ptr(), &mut info) };
        info
    }

    fn may_attach(&self) -> bool {
        // SAFETY: the task is referenced.
        unsafe { ffi::cr_may_attach(self.as_ptr()) }
    }

    fn facts(&self) -> u32 {
        // SAFETY: the task is referenced.
        unsafe { ffi::cr_task_facts(self.as_ptr()) }
    }

    fn ipc_ns_in_use(&self) -> bool {
        // SAFETY: the task is referenced.
        unsafe { ffi::cr_ipc_ns_in_use(self.as_ptr()) }
    }

    fn uts(&self) -> ([u8; UTS_BUF], [u8; UTS_BUF]) {
        let (mut node, mut domain) = ([0u8; UTS_BUF], [0u8; UTS_BUF]);
        // SAFETY: the task is referenced; both buffers hold `__NEW_UTS_LEN + 1` bytes.
        unsafe {
            ffi::cr_get_uts(
                self.as_ptr(),
                node.as_mut_ptr().cast(),
                domain.as_mut_ptr().cast(),
            )
        };
        (node, domain)
    }

    fn exited(&self) -> bool {
        // SAFETY: the task is referenced.
        unsafe { ffi::cr_task_exited(self.as_ptr()) }
    }

    fn scalars(&self, ns: &PidNamespace) -> TaskInfo {
        let mut info = TaskInfo::default();
        // SAFETY: task and namespace are referenced; `info` is a valid out-parameter.
        unsafe { ffi::cr_task_info(self.as_ptr(), ns.as_ptr(), &mut info) };
        info
    }

    fn creds(&self, groups: &mut KVec<u32>) -> Result<CredsInfo> {
        let mut info = CredsInfo::default();
        groups.clear();
        groups.reserve(GROUPS_MAX, GFP_KERNEL)?;
        // SAFETY: the task is referenced; `groups` has room for GROUPS_MAX u32s, which bounds
        // what the shim writes.
        check(unsafe {
            ffi::cr_creds_info(
                self.as_ptr(),
                &mut info,
                groups.as_mut_ptr(),
                GROUPS_MAX as u32,
            )
        })?;
        // SAFETY: the shim wrote `ngroups` entries, at most GROUPS_MAX.
        unsafe { groups.inc_len(info.ngroups as usize) };
        Ok(info)
    }

    fn rlimits(&self) -> [u64; 2 * RLIMIT_COUNT] {
        let mut out = [0u64; 2 * RLIMIT_COUNT];
        // SAFETY: the task is referenced; `out` holds `2 * count` u64s.
        unsafe { ffi::cr_get_rlimits(self.as_ptr(), out.as_mut_ptr(), RLIMIT_COUNT as u32) };
        out
    }

    fn itimer(&self, which: u32) -> (u64, u64) {
        let (mut value, mut interval) = (0, 0);
        // SAFETY: the task is referenced; both out-parameters are valid.
        unsafe { ffi::cr_get_itimer(self.as_ptr(), which, &mut value, &mut interval) };
        (value, interval)
    }

    fn sigactions(&self) -> Result<KVec<u64>> {
        let mut out = KVec::from_elem(0u64, 4 * SIGNAL_COUNT, GFP_KERNEL)?;
        // SAFETY: the task is referenced; `out` holds 4 u64s per signal.
        unsafe { ffi::cr_get_sigactions(self.as_ptr(), out.as_mut_ptr()) };
        Ok(out)
    }

    fn pending(&self, shared: bool) -> Result<KVec<PendingSignal>> {
        let mut out = KVec::new();
        loop {
            let cap = out.capacity() as u32;
            // SAFETY: the task is referenced; `out` has room for `cap` entries.
            let n = unsafe { ffi::cr_get_pending(self.as_ptr(), shared, out.as_mut_ptr(), cap) };
            if n <= cap {
                // SAFETY: the shim initialized the first `n` entries, within capacity.
                unsafe { out.inc_len(n as usize) };
                return Ok(out);
            }
            out.reserve(n as usize + 8, GFP_KERNEL)?;
        }
    }

    fn regs(&self) -> Result<[u8; USER_REGS_LEN]> {
        let mut out = [0u8; USER_REGS_LEN];
        // SAFETY: the task is referenced; `out` has the regset's size.
        check(unsafe { ffi::cr_get_regs(self.as_ptr(), out.as_mut_ptr().cast()) })?;
        Ok(out)
    }

    fn xstate(&self, out: &mut [u8]) -> Result {
        // SAFETY: the task is referenced; the shim checks `out.len()` against the regset's size
        // before writing.
        check(unsafe {
            ffi::cr_get_xstate(self.as_ptr(), out.as_mut_ptr().cast(), out.len() as u32)
        })
    }

    fn restart_block(&self) -> Result<RestartInfo> {
        let mut info = RestartInfo::default();
        // SAFETY: the task is referenced; `info` is a valid out-parameter.
        check(unsafe { ffi::cr_get_restart(self.as_ptr(), &mut info) })?;
        Ok(info)
    }

    fn mm_ref(&self) -> Option<ARef<MmWithUser>> {
        // SAFETY: the task is referenced; `get_task_mm` returns an mm with a user count taken
        // for the caller, or NULL.
        let mm = unsafe { bindings::get_task_mm(self.as_ptr()) };
        // SAFETY: that user count goes to the `ARef`; `MmWithUser` is a transparent wrapper of
        // `struct mm_struct`.
        core::ptr::NonNull::new(mm.cast::<MmWithUser>()).map(|mm| unsafe { ARef::from_raw(mm) })
    }

    fn next_file(&self, fd: &mut u32) -> Option<(ARef<File>, bool)> {
        let mut cloexec = false;
        // SAFETY: the task is referenced; both out-parameters are valid.
        let f = unsafe { ffi::cr_next_file(self.as_ptr(), fd, &mut cloexec) };
        file_or_none(f).map(|f| (f, cloexec))
    }

    fn files_identity(&self) -> u64 {
        // SAFETY: the task is referenced.
        unsafe { ffi::cr_task_files_identity(self.as_ptr()) }
    }

    fn fs_paths(&self, root: &mut [u8], cwd: &mut [u8]) -> Result<u32> {
        let mut umask = 0;
        let len = root.len().min(cwd.len()) as c_int;
        // SAFETY: the task is referenced; both buffers hold at least `len` bytes.
        check(unsafe {
            ffi::cr_fs_info(
                self.as_ptr(),
                root.as_mut_ptr().cast(),
                cwd.as_mut_ptr().cast(),
                len,
                &mut umask,
            )
        })?;
        Ok(umask)
    }
}

/// What this module reads of a pid namespace.
pub(crate) trait PidNsExt {
    /// Whether it is the caller's own.
    fn is_callers(&self) -> bool;
    /// Every task of it, as the identities of its process and its parent process.
    fn kin(&self) -> Result<KVec<Kin>>;
}

impl PidNsExt for PidNamespace {
    fn is_callers(&self) -> bool {
        kernel::current!()
            .active_pid_ns()
            .is_some_and(|mine| core::ptr::eq(mine, self))
    }

    fn kin(&self) -> Result<KVec<Kin>> {
        let mut out: KVec<Kin> = KVec::with_capacity(64, GFP_KERNEL)?;
        loop {
            let max = out.capacity();
            // SAFETY: the namespace is referenced; `out` has room for `max` entries, which
            // bounds what the shim writes.
            let n =
                unsafe { ffi::cr_ns_kin(self.as_ptr(), out.as_mut_ptr(), max as c_long) } as usize;
            if n <= max {
                // SAFETY: the shim initialized the first `n` entries, within capacity.
                unsafe { out.inc_len(n) };
                return Ok(out);
            }
            out.reserve(n + 16, GFP_KERNEL)?;
        }
    }
}
