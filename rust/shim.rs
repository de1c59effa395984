// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around `shim.c`.
//!
//! The C side reads or applies one piece of kernel state per function; this side owns the
//! references it hands out ([`TaskRef`], [`MmRef`], [`FileRef`]) and turns its return codes into
//! `Result`. Every struct is the field-for-field mirror of `shim.h`, with its size asserted.

use core::ffi::{c_char, c_int, c_long, c_void};
use core::ptr::NonNull;

use kernel::{bindings, prelude::*};

/// `struct task_struct`, only ever handled by pointer here.
#[repr(C)]
pub(crate) struct CTask {
    _opaque: [u8; 0],
    _not_send: core::marker::PhantomData<*mut u8>,
}

/// `struct file`, only ever handled by pointer here.
#[repr(C)]
pub(crate) struct CFile {
    _opaque: [u8; 0],
    _not_send: core::marker::PhantomData<*mut u8>,
}

/// `struct mm_struct`, only ever handled by pointer here.
#[repr(C)]
pub(crate) struct CMm {
    _opaque: [u8; 0],
    _not_send: core::marker::PhantomData<*mut u8>,
}

/// `struct pid_namespace`, only ever handled by pointer here.
#[repr(C)]
pub(crate) struct CPidNs {
    _opaque: [u8; 0],
    _not_send: core::marker::PhantomData<*mut u8>,
}

/// `struct cr_tree_info`: where a task sits and what it shares. The pointers are identities,
/// never dereferenced.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct TreeInfo {
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    pub(crate) sid: u32,
    pub(crate) exit_signal: u32,
    pub(crate) exit_status: u32,
    pub(crate) flags: u32,
    pub(crate) pdeath_signal: u32,
    reserved: u32,
    pub(crate) mm: u64,
    pub(crate) files: u64,
    pub(crate) fs: u64,
    pub(crate) sighand: u64,
    pub(crate) uts_ns: u64,
    pub(crate) ipc_ns: u64,
}

/// `struct cr_kin`: a task as a process identity, with its parent's (never dereferenced).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Kin {
    pub(crate) process: u64,
    pub(crate) parent: u64,
    pub(crate) pid: u32,
    reserved: u32,
}

/// `struct cr_shmem_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ShmemInfo {
    pub(crate) id: u64,
    pub(crate) size: u64,
    pub(crate) kind: u32,
    pub(crate) seals: u32,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) reserved: u32,
    pub(crate) atime_ns: i64,
    pub(crate) mtime_ns: i64,
}

/// `cr_tree_info.flags`.
pub(crate) mod tree_info {
    /// A zombie: only the ids and `exit_status` are set.
    pub(crate) const EXITED: u32 = 1;
    /// `PR_SET_CHILD_SUBREAPER`.
    pub(crate) const SUBREAPER: u32 = 2;
    /// In a pid namespace below the tree's.
    pub(crate) const OTHER_PIDNS: u32 = 4;
    /// A thread-group leader that exited while its threads run.
    pub(crate) const LEADER_EXITED: u32 = 8;
    /// A process forked by a thread other than its parent's main thread.
    pub(crate) const FORKED_BY_THREAD: u32 = 16;
}

/// `struct cr_pipe_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct PipeInfo {
    pub(crate) pipe: u64,
    pub(crate) readers: u32,
    pub(crate) writers: u32,
    pub(crate) capacity: u32,
    pub(crate) len: u32,
    pub(crate) readable: u8,
    pub(crate) writable: u8,
    reserved: [u8; 6],
}

/// `struct cr_task_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct TaskInfo {
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    pub(crate) sid: u32,
    pub(crate) personality: u32,
    pub(crate) exit_signal: u32,
    pub(crate) pdeath_signal: u32,
    pub(crate) sas_ss_flags: u32,
    pub(crate) flags: u32,
    pub(crate) dumpable: u32,
    pub(crate) reserved: u32,
    pub(crate) clear_child_tid: u64,
    pub(crate) robust_list: u64,
    pub(crate) robust_list_len: u64,
    pub(crate) sas_ss_sp: u64,
    pub(crate) sas_ss_size: u64,
    pub(crate) blocked: u64,
    pub(crate) comm: [u8; 16],
}

/// `struct cr_creds_info`: the CREDS record's fixed part, which the shim fills directly.
pub(crate) type CredsInfo = crate::format::CredsRecord;

/// Words of saved auxv the shim exchanges (`CR_AUXV_WORDS`): the format's bound.
pub(crate) use crate::format::AUXV_WORDS;

/// `struct cr_mm_info`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MmInfo {
    pub(crate) start_code: u64,
    pub(crate) end_code: u64,
    pub(crate) start_data: u64,
    pub(crate) end_data: u64,
    pub(crate) start_brk: u64,
    pub(crate) brk: u64,
    pub(crate) start_stack: u64,
    pub(crate) arg_start: u64,
    pub(crate) arg_end: u64,
    pub(crate) env_start: u64,
    pub(crate) env_end: u64,
    pub(crate) vdso: u64,
    pub(crate) auxv: [u64; AUXV_WORDS],
    pub(crate) auxv_words: u32,
    pub(crate) reserved: u32,
}

impl Default for MmInfo {
    fn default() -> Self {
        Self {
            start_code: 0,
            end_code: 0,
            start_data: 0,
            end_data: 0,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            arg_start: 0,
            arg_end: 0,
            env_start: 0,
            env_end: 0,
            vdso: 0,
            auxv: [0; AUXV_WORDS],
            auxv_words: 0,
            reserved: 0,
        }
    }
}

/// `struct cr_vma_info`.
#[repr(C)]
pub(crate) struct VmaInfo {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) vm_flags: u64,
    pub(crate) pgoff: u64,
    file: *mut CFile,
    pub(crate) kind: u32,
    reserved: u32,
}

/// `struct cr_file_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct FileInfo {
    pub(crate) kind: u32,
    pub(crate) flags: u32,
    pub(crate) pos: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) rdev: u32,
    pub(crate) mode: u32,
    pub(crate) size: u64,
}

/// `struct cr_pending_signal`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PendingSignal {
    pub(crate) signo: u32,
    reserved: u32,
    pub(crate) info: [u8; 48],
}

impl Default for PendingSignal {
    fn default() -> Self {
        Self {
            signo: 0,
            reserved: 0,
            info: [0; 48],
        }
    }
}

/// `struct cr_restart_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RestartInfo {
    pub(crate) kind: u32,
    pub(crate) clockid: u32,
    pub(crate) type_: u32,
    reserved: u32,
    pub(crate) rmtp: u64,
    pub(crate) remaining_ns: u64,
}

const _: () = assert!(core::mem::size_of::<TaskInfo>() == 112);
const _: () = assert!(core::mem::size_of::<CredsInfo>() == 80);
const _: () = assert!(core::mem::size_of::<MmInfo>() == 12 * 8 + AUXV_WORDS * 8 + 8);
const _: () = assert!(core::mem::size_of::<VmaInfo>() == 48);
const _: () = assert!(core::mem::size_of::<FileInfo>() == 48);
const _: () = assert!(core::mem::size_of::<PendingSignal>() == 56);
const _: () = assert!(core::mem::size_of::<RestartInfo>() == 32);
const _: () = assert!(core::mem::size_of::<TreeInfo>() == 88);
const _: () = assert!(core::mem::size_of::<Kin>() == 24);
const _: () = assert!(core::mem::size_of::<ShmemInfo>() == 56);
const _: () = assert!(core::mem::size_of::<PipeInfo>() == 32);

/// Size of `struct user_regs_struct`.
pub(crate) use crate::format::USER_REGS_LEN;

extern "C" {
    fn cr_get_task(vpid: c_int) -> *mut CTask;
    fn cr_put_task(t: *mut CTask);
    fn cr_capable_sys_admin() -> bool;
    fn cr_may_checkpoint(t: *mut CTask) -> bool;
    fn cr_task_refusal(t: *mut CTask, err: *mut c_int) -> *const c_char;
    fn cr_task_info(t: *mut CTask, ns: *mut CPidNs, out: *mut TaskInfo);
    fn cr_set_task_info(info: *const TaskInfo);
    fn cr_set_after_creds(info: *const TaskInfo);
    fn cr_set_blocked(blocked: u64) -> c_int;
    fn cr_creds_info(
        t: *mut CTask,
        out: *mut CredsInfo,
        groups: *mut u32,
        max_groups: u32,
    ) -> c_int;
    fn cr_set_creds(info: *const CredsInfo, groups: *const u32) -> c_int;
    fn cr_get_rlimits(t: *mut CTask, out: *mut u64, count: u32);
    fn cr_set_rlimit(resource: u32, cur: u64, max: u64) -> c_int;
    fn cr_get_itimer_real(t: *mut CTask, value: *mut u64, interval: *mut u64);
    fn cr_set_itimer_real(value: u64, interval: u64) -> c_int;
    fn cr_get_sigactions(t: *mut CTask, out: *mut u64);
    fn cr_set_sigaction(sig: c_int, action: *const u64) -> c_int;
    fn cr_get_pending(t: *mut CTask, shared: bool, out: *mut PendingSignal, max: u32) -> u32;
    fn cr_queue_signal(signo: u32, info: *const u8, shared: bool) -> c_int;
    fn cr_kill_self();
    fn cr_get_regs(t: *mut CTask, out: *mut c_void) -> c_int;
    fn cr_xstate_size() -> u32;
    fn cr_xfeatures() -> u64;
    fn cr_get_xstate(t: *mut CTask, out: *mut c_void, size: u32) -> c_int;
    fn cr_set_xstate(buf: *const c_void, size: u32) -> c_int;
    fn cr_get_restart(t: *mut CTask, out: *mut RestartInfo) -> c_int;
    fn cr_check_restart(info: *const RestartInfo) -> c_int;
    fn cr_check_user_regs(regs: *const c_void) -> c_int;
    fn cr_prepare_regs(
        regs: *const c_void,
        restart: *const RestartInfo,
        err: *mut c_int,
    ) -> *mut c_void;
    fn cr_free_regs(work: *mut c_void);
    fn cr_install_regs(work: *mut c_void) -> c_int;
    fn cr_get_task_mm(t: *mut CTask) -> *mut CMm;
    fn cr_mmput(mm: *mut CMm);
    fn cr_mm_info(mm: *mut CMm, out: *mut MmInfo);
    fn cr_mm_exe_file(mm: *mut CMm) -> *mut CFile;
    fn cr_vma_next(mm: *mut CMm, addr: u64, out: *mut VmaInfo, reason: *mut *const c_char)
        -> c_int;
    fn cr_dump_pages(
        mm: *mut CMm,
        cursor: *mut u64,
        end: u64,
        anon_only: bool,
        addrs: *mut u64,
        buf: *mut c_void,
        max: c_long,
    ) -> c_long;
    fn cr_unmap_all() -> c_int;
    fn cr_map(file: *mut CFile, start: u64, end: u64, vm_flags: u64, pgoff: u64) -> c_int;
    fn cr_map_vdso(text_start: u64) -> c_int;
    fn cr_write_memory(addr: u64, buf: *const c_void, len: u32) -> c_int;
    fn cr_set_mm(info: *const MmInfo, exe: *mut CFile) -> c_int;
    fn cr_next_file(t: *mut CTask, fd: *mut u32, cloexec: *mut bool) -> *mut CFile;
    fn cr_file_info(f: *mut CFile, out: *mut FileInfo, reason: *mut *const c_char) -> c_int;
    fn cr_file_path(
        f: *mut CFile,
        buf: *mut c_char,
        len: c_int,
        reason: *mut *const c_char,
    ) -> c_int;
    fn cr_reopen(path: *const c_char, info: *const FileInfo) -> *mut CFile;
    fn cr_caller_tty() -> *mut CFile;
    fn cr_close_all_fds();
    fn cr_install_fd(fd: u32, f: *mut CFile, cloexec: bool) -> c_int;
    fn cr_fs_info(
        t: *mut CTask,
        root: *mut c_char,
        cwd: *mut c_char,
        len: c_int,
        umask: *mut u32,
    ) -> c_int;
    fn cr_set_fs(root: *const c_char, cwd: *const c_char, umask: u32) -> c_int;
    fn cr_write_all(f: *mut CFile, buf: *const c_void, len: usize) -> c_int;
    fn cr_read_full(f: *mut CFile, buf: *mut c_void, len: usize) -> c_int;
    fn cr_current_vpid() -> c_int;
    fn cr_restart_refusal() -> *const c_char;
    fn cr_flush_signals();
    fn cr_time_ns() -> u64;
    fn cr_release(buf: *mut c_char, len: c_int);
    fn cr_current_threads() -> u32;
    fn cr_task_pid_ns(t: *mut CTask) -> *mut CPidNs;
    fn cr_put_pid_ns(ns: *mut CPidNs);
    fn cr_pid_ns_is_callers(ns: *mut CPidNs) -> bool;
    fn cr_collect_tree(
        root: *mut CTask,
        ns: *mut CPidNs,
        out: *mut *mut CTask,
        max: c_long,
        strangers: *mut c_long,
    ) -> c_long;
    fn cr_tree_info(t: *mut CTask, ns: *mut CPidNs, out: *mut TreeInfo);
    fn cr_ns_kin(ns: *mut CPidNs, out: *mut Kin, max: c_long) -> c_long;
    fn cr_collect_all(out: *mut *mut CTask, max: c_long) -> c_long;
    fn cr_ipc_ns_in_use(t: *mut CTask) -> bool;
    fn cr_get_uts(t: *mut CTask, node: *mut c_char, domain: *mut c_char);
    fn cr_set_uts(node: *const c_char, domain: *const c_char) -> c_int;
    fn cr_get_current() -> *mut CTask;
    fn cr_task_exited(t: *mut CTask) -> bool;
    fn cr_fatal_signal_pending() -> bool;
    fn cr_pipe_info(f: *mut CFile, out: *mut PipeInfo, reason: *mut *const c_char) -> c_int;
    fn cr_pipe_peek(f: *mut CFile, buf: *mut c_void, max: c_long) -> c_long;
    fn cr_pipe_create(read_end: *mut *mut CFile, write_end: *mut *mut CFile) -> c_int;
    fn cr_set_status_flags(f: *mut CFile, flags: u32);
    fn cr_shmem_info(
        f: *mut CFile,
        out: *mut ShmemInfo,
        name: *mut c_char,
        len: c_int,
        reason: *mut *const c_char,
    ) -> c_int;
    fn cr_shmem_create(info: *const ShmemInfo, name: *const c_char) -> *mut CFile;
    fn cr_shmem_set_attrs(f: *mut CFile, info: *const ShmemInfo) -> c_int;
    fn cr_shmem_seal(f: *mut CFile, seals: u32) -> c_int;
    fn cr_reopen_same(f: *mut CFile, flags: u32) -> *mut CFile;
    fn cr_set_pos(f: *mut CFile, pos: u64) -> c_int;
    fn cr_mapping_mms(f: *mut CFile, out: *mut u64, max: c_long) -> c_long;
    fn cr_read_at(f: *mut CFile, buf: *mut c_void, len: u32, pos: u64) -> c_int;
    fn cr_write_at(f: *mut CFile, buf: *const c_void, len: u32, pos: u64) -> c_int;
}

/// Turns a returned `struct file *` or `ERR_PTR` into a `Result`.
fn file_or_err(f: *mut CFile) -> Result<FileRef> {
    let addr = f as isize;
    if (-4095..0).contains(&addr) {
        return Err(Error::from_errno(addr as i32));
    }
    NonNull::new(f).map(FileRef).ok_or(ENOMEM)
}

/// Length of a UTS name buffer, NUL included (`__NEW_UTS_LEN + 1`).
pub(crate) const UTS_BUF: usize = crate::format::UTS_NAME_MAX + 1;

/// Registers and a restart block, checked and ready to be installed on the way back to user
/// space: the allocation is done, so installing cannot fail for lack of memory.
pub(crate) struct PreparedRegs(NonNull<c_void>);

// SAFETY: the prepared work is plain memory until installed.
unsafe impl Send for PreparedRegs {}

impl PreparedRegs {
    /// Checks `regs` and prepares their installation.
    pub(crate) fn new(regs: &[u8; USER_REGS_LEN], restart: &RestartInfo) -> Result<Self> {
        let mut err = 0;
        // SAFETY: `regs` holds a whole user_regs_struct; the shim copies both arguments.
        let w = unsafe { cr_prepare_regs(regs.as_ptr().cast(), restart, &mut err) };
        check(err)?;
        NonNull::new(w).map(Self).ok_or(ENOMEM)
    }

    /// Installs them on the calling task, for its way out.
    pub(crate) fn install(self) -> Result {
        let w = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: `w` was prepared by `cr_prepare_regs` and is handed over to the shim, which
        // owns it from here on (it frees it if the task is exiting).
        check(unsafe { cr_install_regs(w) })
    }
}

impl Drop for PreparedRegs {
    fn drop(&mut self) {
        // SAFETY: never installed (install forgets `self`), so we still own the allocation.
        unsafe { cr_free_regs(self.0.as_ptr()) };
    }
}

/// A referenced pid namespace.
pub(crate) struct PidNsRef(NonNull<CPidNs>);

impl PidNsRef {
    fn as_ptr(&self) -> *mut CPidNs {
        self.0.as_ptr()
    }

    /// Whether this is the caller's own pid namespace.
    pub(crate) fn is_callers(&self) -> bool {
        // SAFETY: the namespace is referenced.
        unsafe { cr_pid_ns_is_callers(self.as_ptr()) }
    }

    /// Every task of the namespace, as the identities of its process and its parent process.
    pub(crate) fn kin(&self) -> Result<KVec<Kin>> {
        let mut out: KVec<Kin> = KVec::with_capacity(64, GFP_KERNEL)?;
        loop {
            let max = out.capacity();
            // SAFETY: the namespace is referenced; `out` is empty with room for `max` entries,
            // which bounds what the shim writes.
            let n = unsafe { cr_ns_kin(self.as_ptr(), out.as_mut_ptr(), max as c_long) } as usize;
            if n <= max {
                // SAFETY: the shim initialized the first `n` entries, within capacity.
                unsafe { out.inc_len(n) };
                return Ok(out);
            }
            out.reserve(n + 16, GFP_KERNEL)?;
        }
    }
}

impl Drop for PidNsRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference.
        unsafe { cr_put_pid_ns(self.as_ptr()) };
    }
}

/// Turns a C return code (0 or a negative errno) into a `Result`.
fn check(ret: c_int) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// Turns a C reason string into a `&'static str` (the shim only returns literals).
fn reason_str(reason: *const c_char) -> &'static str {
    if reason.is_null() {
        return "unsupported state";
    }
    // SAFETY: the shim only ever stores pointers to NUL-terminated string literals (or names
    // owned by static vm_operations) in its `reason` out-parameters.
    let cstr = unsafe { <core::ffi::CStr as kernel::str::CStrExt>::from_char_ptr(reason.cast()) };
    cstr.to_str().unwrap_or("unsupported state")
}

/// An error with the one-line reason that goes to logfd.
pub(crate) struct Refusal {
    pub(crate) err: Error,
    pub(crate) reason: &'static str,
}

impl From<kernel::alloc::AllocError> for Refusal {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self {
            err: ENOMEM,
            reason: "out of memory",
        }
    }
}

/// A referenced task.
#[repr(transparent)]
pub(crate) struct TaskRef(NonNull<CTask>);

// SAFETY: a task reference may be used and dropped from any thread.
unsafe impl Send for TaskRef {}

impl TaskRef {
    /// The calling task.
    pub(crate) fn current() -> Self {
        // SAFETY: `current` is live; the shim takes a reference, owned by the result.
        Self(unsafe { NonNull::new_unchecked(cr_get_current()) })
    }

    /// Every task of `ns` in this task's subtree (threads and zombies included), in pid
    /// order, and the number of tasks of `ns` outside it.
    pub(crate) fn subtree(&self, ns: &PidNsRef) -> Result<(KVec<TaskRef>, usize)> {
        let mut tasks: KVec<TaskRef> = KVec::with_capacity(64, GFP_KERNEL)?;
        loop {
            let max = tasks.capacity();
            let mut strangers = 0;
            // SAFETY: the root and `ns` are referenced; `tasks` is empty with room for `max`
            // entries, and `TaskRef` is a transparent task pointer, so the shim's `max` slots
            // are exactly `tasks`' spare capacity.
            let n = unsafe {
                cr_collect_tree(
                    self.as_ptr(),
                    ns.as_ptr(),
                    tasks.as_mut_ptr().cast(),
                    max as c_long,
                    &mut strangers,
                )
            } as usize;
            // SAFETY: the shim wrote min(n, max) referenced, non-NULL task pointers.
            unsafe { tasks.inc_len(n.min(max)) };
            if n <= max {
                return Ok((tasks, strangers as usize));
            }
            // The first guess was too small: drop what was collected and look again.
            tasks.clear();
            tasks.reserve(n + 16, GFP_KERNEL)?;
        }
    }

    /// Every task of the system (threads and zombies included).
    pub(crate) fn all() -> Result<KVec<TaskRef>> {
        let mut tasks: KVec<TaskRef> = KVec::with_capacity(256, GFP_KERNEL)?;
        loop {
            let max = tasks.capacity();
            // SAFETY: `tasks` is empty with room for `max` entries, and `TaskRef` is a
            // transparent task pointer, so the shim's `max` slots are its spare capacity.
            let n = unsafe { cr_collect_all(tasks.as_mut_ptr().cast(), max as c_long) } as usize;
            // SAFETY: the shim wrote min(n, max) referenced, non-NULL task pointers.
            unsafe { tasks.inc_len(n.min(max)) };
            if n <= max {
                return Ok(tasks);
            }
            tasks.clear();
            tasks.reserve(n + 64, GFP_KERNEL)?;
        }
    }

    /// The task's identity, for comparisons only.
    pub(crate) fn identity(&self) -> u64 {
        self.as_ptr() as u64
    }

    /// The pid namespace the task lives in.
    pub(crate) fn pid_ns(&self) -> PidNsRef {
        // SAFETY: the task is referenced; the shim returns a referenced namespace.
        PidNsRef(unsafe { NonNull::new_unchecked(cr_task_pid_ns(self.as_ptr())) })
    }

    /// Ids, exit state and shared-object identities, pids as `ns` sees them.
    pub(crate) fn tree_info(&self, ns: &PidNsRef) -> TreeInfo {
        let mut info = TreeInfo::default();
        // SAFETY: task and namespace are referenced; `info` is a valid out-parameter.
        unsafe { cr_tree_info(self.as_ptr(), ns.as_ptr(), &mut info) };
        info
    }

    /// Whether the task's IPC namespace holds SysV objects.
    pub(crate) fn ipc_ns_in_use(&self) -> bool {
        // SAFETY: the task is referenced.
        unsafe { cr_ipc_ns_in_use(self.as_ptr()) }
    }

    /// Node name and domain name, NUL-terminated.
    pub(crate) fn uts(&self) -> ([u8; UTS_BUF], [u8; UTS_BUF]) {
        let (mut node, mut domain) = ([0u8; UTS_BUF], [0u8; UTS_BUF]);
        // SAFETY: the task is referenced; both buffers hold `__NEW_UTS_LEN + 1` bytes.
        unsafe {
            cr_get_uts(
                self.as_ptr(),
                node.as_mut_ptr().cast(),
                domain.as_mut_ptr().cast(),
            )
        };
        (node, domain)
    }

    /// Whether the task has exited (is a zombie or gone).
    pub(crate) fn exited(&self) -> bool {
        // SAFETY: the task is referenced.
        unsafe { cr_task_exited(self.as_ptr()) }
    }

    /// The task with pid `vpid` in the caller's pid namespace.
    pub(crate) fn find(vpid: i32) -> Result<Self> {
        // SAFETY: `cr_get_task` takes the RCU read lock for the lookup and returns a referenced
        // task or NULL.
        NonNull::new(unsafe { cr_get_task(vpid) })
            .map(Self)
            .ok_or(ESRCH)
    }

    fn as_ptr(&self) -> *mut CTask {
        self.0.as_ptr()
    }

    /// Whether the caller may checkpoint this task.
    pub(crate) fn may_checkpoint(&self) -> bool {
        // SAFETY: the task is referenced for as long as `self` lives.
        unsafe { cr_may_checkpoint(self.as_ptr()) }
    }

    /// Why this task cannot be checkpointed, if it cannot.
    pub(crate) fn refusal(&self) -> Option<Refusal> {
        let mut err: c_int = 0;
        // SAFETY: the task is referenced; `err` is a valid out-parameter.
        let reason = unsafe { cr_task_refusal(self.as_ptr(), &mut err) };
        if reason.is_null() {
            None
        } else {
            Some(Refusal {
                err: Error::from_errno(err),
                reason: reason_str(reason),
            })
        }
    }

    /// Scalars of the task, pids as `ns` sees them.
    pub(crate) fn info(&self, ns: &PidNsRef) -> TaskInfo {
        let mut info = TaskInfo::default();
        // SAFETY: task and namespace are referenced; `info` is a valid out-parameter of the
        // right layout.
        unsafe { cr_task_info(self.as_ptr(), ns.as_ptr(), &mut info) };
        info
    }

    /// Credentials, with the supplementary groups appended to `groups`.
    pub(crate) fn creds(&self, groups: &mut KVec<u32>) -> Result<CredsInfo> {
        let mut info = CredsInfo::default();
        let max = crate::format::GROUPS_MAX;
        groups.clear();
        groups.reserve(max, GFP_KERNEL)?;
        // SAFETY: the task is referenced; `groups` has capacity for `max` u32s, which bounds
        // what the shim writes.
        check(unsafe { cr_creds_info(self.as_ptr(), &mut info, groups.as_mut_ptr(), max as u32) })?;
        // SAFETY: the shim wrote `ngroups` entries, at most `max`.
        unsafe { groups.inc_len(info.ngroups as usize) };
        Ok(info)
    }

    /// Resource limits as (cur, max) pairs.
    pub(crate) fn rlimits(&self) -> [u64; 2 * crate::format::RLIMIT_COUNT] {
        let mut out = [0u64; 2 * crate::format::RLIMIT_COUNT];
        // SAFETY: the task is referenced; `out` holds `2 * count` u64s.
        unsafe {
            cr_get_rlimits(
                self.as_ptr(),
                out.as_mut_ptr(),
                crate::format::RLIMIT_COUNT as u32,
            )
        };
        out
    }

    /// ITIMER_REAL as (value, interval) in nanoseconds.
    pub(crate) fn itimer_real(&self) -> (u64, u64) {
        let (mut value, mut interval) = (0, 0);
        // SAFETY: the task is referenced; both out-parameters are valid.
        unsafe { cr_get_itimer_real(self.as_ptr(), &mut value, &mut interval) };
        (value, interval)
    }

    /// The 64 signal dispositions as {handler, flags, restorer, mask}.
    pub(crate) fn sigactions(&self) -> Result<KVec<u64>> {
        let mut out = KVec::from_elem(0u64, 4 * crate::format::SIGNAL_COUNT, GFP_KERNEL)?;
        // SAFETY: the task is referenced; `out` holds 4 u64s per signal.
        unsafe { cr_get_sigactions(self.as_ptr(), out.as_mut_ptr()) };
        Ok(out)
    }

    /// The signals queued on the private or the shared queue.
    pub(crate) fn pending(&self, shared: bool) -> Result<KVec<PendingSignal>> {
        let mut out = KVec::new();
        loop {
            let cap = out.capacity() as u32;
            // SAFETY: the task is referenced; `out` has room for `cap` entries.
            let n = unsafe { cr_get_pending(self.as_ptr(), shared, out.as_mut_ptr(), cap) };
            if n <= cap {
                // SAFETY: the shim initialized the first `n` entries, within capacity.
                unsafe { out.inc_len(n as usize) };
                return Ok(out);
            }
            out.reserve(n as usize + 8, GFP_KERNEL)?;
        }
    }

    /// General registers in `struct user_regs_struct` layout.
    pub(crate) fn regs(&self) -> Result<[u8; USER_REGS_LEN]> {
        let mut out = [0u8; USER_REGS_LEN];
        // SAFETY: the task is referenced and frozen; `out` has the regset's size.
        check(unsafe { cr_get_regs(self.as_ptr(), out.as_mut_ptr().cast()) })?;
        Ok(out)
    }

    /// The XSAVE area, `xstate_size()` bytes.
    pub(crate) fn xstate(&self, out: &mut [u8]) -> Result {
        // SAFETY: the task is referenced and frozen; the shim checks `out.len()` against the
        // regset's size before writing.
        check(unsafe { cr_get_xstate(self.as_ptr(), out.as_mut_ptr().cast(), out.len() as u32) })
    }

    /// The pending restart block.
    pub(crate) fn restart(&self) -> Result<RestartInfo> {
        let mut info = RestartInfo::default();
        // SAFETY: the task is referenced; `info` is a valid out-parameter.
        check(unsafe { cr_get_restart(self.as_ptr(), &mut info) })?;
        Ok(info)
    }

    /// The task's address space.
    pub(crate) fn mm(&self) -> Result<MmRef> {
        // SAFETY: the task is referenced; `get_task_mm` returns a counted mm or NULL.
        NonNull::new(unsafe { cr_get_task_mm(self.as_ptr()) })
            .map(MmRef)
            .ok_or(EINVAL)
    }

    /// The next open descriptor at or after `*fd`, with its close-on-exec bit.
    pub(crate) fn next_file(&self, fd: &mut u32) -> Option<(FileRef, bool)> {
        let mut cloexec = false;
        // SAFETY: the task is referenced; both out-parameters are valid.
        let f = unsafe { cr_next_file(self.as_ptr(), fd, &mut cloexec) };
        NonNull::new(f).map(|f| (FileRef(f), cloexec))
    }

    /// Root and cwd (written NUL-terminated into the buffers) and umask.
    pub(crate) fn fs(&self, root: &mut [u8], cwd: &mut [u8]) -> Result<u32> {
        let mut umask = 0;
        let len = root.len().min(cwd.len()) as c_int;
        // SAFETY: the task is referenced; both buffers hold at least `len` bytes.
        check(unsafe {
            cr_fs_info(
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

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference.
        unsafe { cr_put_task(self.as_ptr()) };
    }
}

/// A counted address space (`mmget`).
pub(crate) struct MmRef(NonNull<CMm>);

impl MmRef {
    fn as_ptr(&self) -> *mut CMm {
        self.0.as_ptr()
    }

    /// Layout fields and auxv.
    pub(crate) fn info(&self) -> MmInfo {
        let mut info = MmInfo::default();
        // SAFETY: the mm is counted; `info` is a valid out-parameter.
        unsafe { cr_mm_info(self.as_ptr(), &mut info) };
        info
    }

    /// The executable file.
    pub(crate) fn exe_file(&self) -> Option<FileRef> {
        // SAFETY: the mm is counted; the shim returns a referenced file or NULL.
        NonNull::new(unsafe { cr_mm_exe_file(self.as_ptr()) }).map(FileRef)
    }

    /// The first VMA at or after `addr`: `Ok(None)` past the last one.
    pub(crate) fn vma_from(&self, addr: u64) -> core::result::Result<Option<Vma>, Refusal> {
        let mut info = VmaInfo {
            start: 0,
            end: 0,
            vm_flags: 0,
            pgoff: 0,
            file: core::ptr::null_mut(),
            kind: 0,
            reserved: 0,
        };
        let mut reason = core::ptr::null();
        // SAFETY: the mm is counted; the out-parameters are valid.
        let ret = unsafe { cr_vma_next(self.as_ptr(), addr, &mut info, &mut reason) };
        match ret {
            0 => Ok(None),
            1 => {
                let file = NonNull::new(info.file).map(FileRef);
                Ok(Some(Vma { info, file }))
            }
            err => Err(Refusal {
                err: Error::from_errno(err),
                reason: reason_str(reason),
            }),
        }
    }

    /// Copies up to `addrs.len()` non-zero pages of `[*cursor, end)` into `pages`.
    pub(crate) fn dump_pages(
        &self,
        cursor: &mut u64,
        end: u64,
        anon_only: bool,
        addrs: &mut [u64],
        pages: &mut [u8],
        page_size: usize,
    ) -> usize {
        let max = addrs.len().min(pages.len() / page_size);
        // SAFETY: the mm is counted; `addrs` and `pages` hold at least `max` entries and pages.
        let n = unsafe {
            cr_dump_pages(
                self.as_ptr(),
                cursor,
                end,
                anon_only,
                addrs.as_mut_ptr(),
                pages.as_mut_ptr().cast(),
                max as c_long,
            )
        };
        n.max(0) as usize
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one mm user count.
        unsafe { cr_mmput(self.as_ptr()) };
    }
}

/// One VMA as the checkpoint sees it.
pub(crate) struct Vma {
    pub(crate) info: VmaInfo,
    pub(crate) file: Option<FileRef>,
}

/// `path` with a terminating NUL, as the shim's path arguments want it.
pub(crate) fn nul_terminated(path: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(path, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// A referenced `struct file` (`fput` on drop).
pub(crate) struct FileRef(NonNull<CFile>);

// SAFETY: a `struct file` reference may be dropped and used from any thread.
unsafe impl Send for FileRef {}

impl FileRef {
    pub(crate) fn as_ptr(&self) -> *mut CFile {
        self.0.as_ptr()
    }

    /// Takes a reference to a file the kernel crate holds.
    pub(crate) fn from_kernel(f: &kernel::fs::file::LocalFile) -> Self {
        let ptr = f.as_ptr();
        // SAFETY: `ptr` is a live file; `get_file` takes a new reference, owned by the result.
        unsafe { bindings::get_file(ptr) };
        // SAFETY: `as_ptr` of a live `File` is never NULL.
        Self(unsafe { NonNull::new_unchecked(ptr.cast()) })
    }

    /// Kind, flags, position and identity; a refusal for files cr cannot reopen.
    pub(crate) fn info(&self) -> core::result::Result<FileInfo, Refusal> {
        let mut info = FileInfo::default();
        let mut reason = core::ptr::null();
        // SAFETY: the file is referenced; the out-parameters are valid.
        let ret = unsafe { cr_file_info(self.as_ptr(), &mut info, &mut reason) };
        if ret < 0 {
            return Err(Refusal {
                err: Error::from_errno(ret),
                reason: reason_str(reason),
            });
        }
        Ok(info)
    }

    /// The path, into `buf`; a refusal for unlinked files.
    pub(crate) fn path<'a>(&self, buf: &'a mut [u8]) -> core::result::Result<&'a [u8], Refusal> {
        let mut reason = core::ptr::null();
        // SAFETY: the file is referenced; `buf` holds `buf.len()` bytes.
        let n = unsafe {
            cr_file_path(
                self.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                &mut reason,
            )
        };
        if n < 0 {
            return Err(Refusal {
                err: Error::from_errno(n),
                reason: reason_str(reason),
            });
        }
        Ok(&buf[..n as usize])
    }

    /// Reopens `path` (NUL-terminated) as `info` describes, checking the inode identity.
    pub(crate) fn reopen(path: &[u8], info: &FileInfo) -> Result<Self> {
        if path.last() != Some(&0) {
            return Err(EINVAL);
        }
        // SAFETY: `path` is NUL-terminated; `info` is valid. The shim returns a file or an
        // ERR_PTR.
        file_or_err(unsafe { cr_reopen(path.as_ptr().cast(), info) })
    }

    /// The pipe behind an anonymous pipe end: identity, ends, capacity and buffered length.
    pub(crate) fn pipe_info(&self) -> core::result::Result<PipeInfo, Refusal> {
        let mut info = PipeInfo::default();
        let mut reason = core::ptr::null();
        // SAFETY: the file is referenced; the out-parameters are valid.
        let ret = unsafe { cr_pipe_info(self.as_ptr(), &mut info, &mut reason) };
        if ret < 0 {
            return Err(Refusal {
                err: Error::from_errno(ret),
                reason: reason_str(reason),
            });
        }
        Ok(info)
    }

    /// Copies the bytes the pipe holds into `buf` without consuming them; returns how many.
    pub(crate) fn pipe_peek(&self, buf: &mut [u8]) -> usize {
        // SAFETY: the file is a referenced pipe end (checked by `pipe_info`); `buf` is valid
        // for its length, which bounds the copy.
        let n =
            unsafe { cr_pipe_peek(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len() as c_long) };
        n.max(0) as usize
    }

    /// A new anonymous pipe: (read end, write end).
    pub(crate) fn new_pipe() -> Result<(Self, Self)> {
        let (mut r, mut w) = (core::ptr::null_mut(), core::ptr::null_mut());
        // SAFETY: both out-parameters are valid; on success each holds a new reference.
        check(unsafe { cr_pipe_create(&mut r, &mut w) })?;
        // SAFETY: `create_pipe_files` succeeded, so both are live files.
        Ok(unsafe {
            (
                Self(NonNull::new_unchecked(r)),
                Self(NonNull::new_unchecked(w)),
            )
        })
    }

    /// Sets O_APPEND, O_NONBLOCK and O_NOATIME as in `flags`.
    pub(crate) fn set_status_flags(&self, flags: u32) {
        // SAFETY: the file is referenced.
        unsafe { cr_set_status_flags(self.as_ptr(), flags) };
    }

    /// A shmem object's description, and its name (or an unlinked file's directory) in `name`.
    pub(crate) fn shmem_info<'a>(
        &self,
        name: &'a mut [u8],
    ) -> core::result::Result<(ShmemInfo, &'a [u8]), Refusal> {
        let mut info = ShmemInfo::default();
        let mut reason = core::ptr::null();
        // SAFETY: the file is referenced; `name` is valid for its length; the out-parameters
        // are valid.
        let n = unsafe {
            cr_shmem_info(
                self.as_ptr(),
                &mut info,
                name.as_mut_ptr().cast(),
                name.len() as c_int,
                &mut reason,
            )
        };
        if n < 0 {
            return Err(Refusal {
                err: Error::from_errno(n),
                reason: reason_str(reason),
            });
        }
        Ok((info, &name[..n as usize]))
    }

    /// A new shmem object as `info` says, named (or, unlinked, created in) `name`
    /// (NUL-terminated).
    pub(crate) fn new_shmem(info: &ShmemInfo, name: &[u8]) -> Result<Self> {
        if name.last() != Some(&0) {
            return Err(EINVAL);
        }
        // SAFETY: `info` is valid; `name` is NUL-terminated; the shim returns a file or an
        // ERR_PTR.
        file_or_err(unsafe { cr_shmem_create(info, name.as_ptr().cast()) })
    }

    /// Gives a restored shmem object the owner, mode and times of `info`.
    pub(crate) fn set_shmem_attrs(&self, info: &ShmemInfo) -> Result {
        // SAFETY: the file is referenced; `info` is valid.
        check(unsafe { cr_shmem_set_attrs(self.as_ptr(), info) })
    }

    /// Seals a restored shmem object.
    pub(crate) fn seal(&self, seals: u32) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { cr_shmem_seal(self.as_ptr(), seals) })
    }

    /// Another open file of the same pipe end or shmem object, with `flags`.
    pub(crate) fn reopen_same(&self, flags: u32) -> Result<Self> {
        // SAFETY: the file is referenced; the shim returns a file or an ERR_PTR.
        file_or_err(unsafe { cr_reopen_same(self.as_ptr(), flags) })
    }

    /// Sets the file position.
    pub(crate) fn set_pos(&self, pos: u64) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { cr_set_pos(self.as_ptr(), pos) })
    }

    /// The address spaces that map the file's inode, as identities (one per mapping).
    pub(crate) fn mapping_mms(&self) -> Result<KVec<u64>> {
        let mut out: KVec<u64> = KVec::with_capacity(16, GFP_KERNEL)?;
        loop {
            let max = out.capacity();
            // SAFETY: the file is referenced; `out` has room for `max` entries.
            let n =
                unsafe { cr_mapping_mms(self.as_ptr(), out.as_mut_ptr(), max as c_long) } as usize;
            if n <= max {
                // SAFETY: the shim wrote the first `n` entries, within capacity.
                unsafe { out.inc_len(n) };
                return Ok(out);
            }
            out.reserve(n + 16, GFP_KERNEL)?;
        }
    }

    /// Reads `buf.len()` bytes at `pos`, leaving the file position alone.
    pub(crate) fn read_at(&self, buf: &mut [u8], pos: u64) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe {
            cr_read_at(
                self.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
                pos,
            )
        })
    }

    /// Writes all of `buf` at `pos`, leaving the file position alone.
    pub(crate) fn write_at(&self, buf: &[u8], pos: u64) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe { cr_write_at(self.as_ptr(), buf.as_ptr().cast(), buf.len() as u32, pos) })
    }

    /// A terminal among the caller's descriptors 0-2.
    pub(crate) fn caller_tty() -> Option<Self> {
        // SAFETY: the shim returns a referenced file or NULL.
        NonNull::new(unsafe { cr_caller_tty() }).map(Self)
    }

    /// Writes all of `buf`.
    pub(crate) fn write_all(&self, buf: &[u8]) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe { cr_write_all(self.as_ptr(), buf.as_ptr().cast(), buf.len()) })
    }

    /// Reads exactly `buf.len()` bytes; `ENODATA` at a premature end.
    pub(crate) fn read_full(&self, buf: &mut [u8]) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe { cr_read_full(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    }
}

impl Clone for FileRef {
    fn clone(&self) -> Self {
        // SAFETY: the file is live (we hold a reference); `get_file` takes another, owned by
        // the clone.
        unsafe { bindings::get_file(self.as_ptr().cast()) };
        Self(self.0)
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one file reference.
        unsafe { bindings::fput(self.as_ptr().cast()) };
    }
}

/// Operations on the calling task, which restores itself.
pub(crate) mod current {
    use super::*;

    /// Why the caller cannot restore itself (it shares what restart replaces), if it cannot.
    pub(crate) fn restart_refusal() -> Option<&'static str> {
        // SAFETY: no preconditions; the shim returns NULL or a string literal.
        let reason = unsafe { cr_restart_refusal() };
        (!reason.is_null()).then(|| reason_str(reason))
    }

    /// Threads in the caller's thread group.
    pub(crate) fn threads() -> u32 {
        // SAFETY: no preconditions.
        unsafe { cr_current_threads() }
    }

    /// Sets the node and domain names (NUL-terminated) of the caller's UTS namespace, which
    /// must not be the initial one.
    pub(crate) fn set_uts(node: &[u8; UTS_BUF], domain: &[u8; UTS_BUF]) -> Result {
        // SAFETY: both buffers are NUL-terminated within `__NEW_UTS_LEN + 1` bytes (the caller
        // builds them zero-filled from shorter names).
        check(unsafe { cr_set_uts(node.as_ptr().cast(), domain.as_ptr().cast()) })
    }

    /// Whether SIGKILL is pending for the caller.
    pub(crate) fn fatal_signal_pending() -> bool {
        // SAFETY: no preconditions.
        unsafe { cr_fatal_signal_pending() }
    }

    /// Discards the caller's own pending signals.
    pub(crate) fn flush_signals() {
        // SAFETY: no preconditions.
        unsafe { cr_flush_signals() }
    }

    /// The caller's pid in its own pid namespace.
    pub(crate) fn vpid() -> i32 {
        // SAFETY: no preconditions.
        unsafe { cr_current_vpid() }
    }

    /// Wall-clock time in nanoseconds.
    pub(crate) fn time_ns() -> u64 {
        // SAFETY: no preconditions.
        unsafe { cr_time_ns() }
    }

    /// The kernel release into `buf`, NUL-terminated.
    pub(crate) fn release(buf: &mut [u8]) {
        // SAFETY: `buf` holds `buf.len()` bytes.
        unsafe { cr_release(buf.as_mut_ptr().cast(), buf.len() as c_int) }
    }

    /// `capable(CAP_SYS_ADMIN)`.
    pub(crate) fn capable_sys_admin() -> bool {
        // SAFETY: no preconditions.
        unsafe { cr_capable_sys_admin() }
    }

    /// XSAVE area size of this CPU's user state.
    pub(crate) fn xstate_size() -> u32 {
        // SAFETY: no preconditions.
        unsafe { cr_xstate_size() }
    }

    /// XCR0.
    pub(crate) fn xfeatures() -> u64 {
        // SAFETY: no preconditions.
        unsafe { cr_xfeatures() }
    }

    pub(crate) fn set_task_info(info: &TaskInfo) {
        // SAFETY: `info` is valid; the shim applies it to current.
        unsafe { cr_set_task_info(info) }
    }

    /// Applies what a change of credentials resets: parent-death signal, dumpable mode, and
    /// no_new_privs.
    pub(crate) fn set_after_creds(info: &TaskInfo) {
        // SAFETY: `info` is valid; the shim applies it to current.
        unsafe { cr_set_after_creds(info) }
    }

    pub(crate) fn set_blocked(blocked: u64) -> Result {
        // SAFETY: no preconditions.
        check(unsafe { cr_set_blocked(blocked) })
    }

    pub(crate) fn set_creds(info: &CredsInfo, groups: &[u32]) -> Result {
        if groups.len() != info.ngroups as usize {
            return Err(EINVAL);
        }
        // SAFETY: `groups` holds `ngroups` entries.
        check(unsafe { cr_set_creds(info, groups.as_ptr()) })
    }

    pub(crate) fn set_rlimit(resource: u32, cur: u64, max: u64) -> Result {
        // SAFETY: no preconditions; the shim validates the arguments.
        check(unsafe { cr_set_rlimit(resource, cur, max) })
    }

    pub(crate) fn set_itimer_real(value: u64, interval: u64) -> Result {
        // SAFETY: no preconditions.
        check(unsafe { cr_set_itimer_real(value, interval) })
    }

    pub(crate) fn set_sigaction(sig: u32, action: &[u64; 4]) -> Result {
        // SAFETY: `action` holds the four words the shim reads.
        check(unsafe { cr_set_sigaction(sig as c_int, action.as_ptr()) })
    }

    pub(crate) fn queue_signal(signo: u32, info: &[u8; 48], shared: bool) -> Result {
        // SAFETY: `info` holds a whole kernel_siginfo_t.
        check(unsafe { cr_queue_signal(signo, info.as_ptr(), shared) })
    }

    /// Queues SIGKILL: the task dies before it runs user code again.
    pub(crate) fn kill() {
        // SAFETY: no preconditions.
        unsafe { cr_kill_self() }
    }

    pub(crate) fn set_xstate(buf: &[u8]) -> Result {
        // SAFETY: `buf` is valid for its length; the shim validates size and contents.
        check(unsafe { cr_set_xstate(buf.as_ptr().cast(), buf.len() as u32) })
    }

    /// Whether registers can be restored by cr: flat 64-bit segments, no GS base.
    pub(crate) fn check_user_regs(regs: &[u8; USER_REGS_LEN]) -> Result {
        // SAFETY: `regs` holds a whole user_regs_struct.
        check(unsafe { cr_check_user_regs(regs.as_ptr().cast()) })
    }

    pub(crate) fn check_restart(info: &RestartInfo) -> Result {
        // SAFETY: `info` is valid.
        check(unsafe { cr_check_restart(info) })
    }

    pub(crate) fn unmap_all() -> Result {
        // SAFETY: no preconditions; current has an mm (a user task in an ioctl).
        check(unsafe { cr_unmap_all() })
    }

    pub(crate) fn map(
        file: Option<&FileRef>,
        start: u64,
        end: u64,
        vm_flags: u64,
        pgoff: u64,
    ) -> Result {
        let f = file.map_or(core::ptr::null_mut(), FileRef::as_ptr);
        // SAFETY: `f` is NULL or a referenced file.
        check(unsafe { cr_map(f, start, end, vm_flags, pgoff) })
    }

    pub(crate) fn map_vdso(text_start: u64) -> Result {
        // SAFETY: no preconditions.
        check(unsafe { cr_map_vdso(text_start) })
    }

    pub(crate) fn write_memory(addr: u64, buf: &[u8]) -> Result {
        // SAFETY: `buf` is valid for its length.
        check(unsafe { cr_write_memory(addr, buf.as_ptr().cast(), buf.len() as u32) })
    }

    pub(crate) fn set_mm(info: &MmInfo, exe: Option<&FileRef>) -> Result {
        let f = exe.map_or(core::ptr::null_mut(), FileRef::as_ptr);
        // SAFETY: `info` is valid; `f` is NULL or a referenced file.
        check(unsafe { cr_set_mm(info, f) })
    }

    pub(crate) fn close_all_fds() {
        // SAFETY: no preconditions.
        unsafe { cr_close_all_fds() }
    }

    pub(crate) fn install_fd(fd: u32, f: &FileRef, cloexec: bool) -> Result {
        // SAFETY: `f` is referenced; `replace_fd` takes its own reference.
        check(unsafe { cr_install_fd(fd, f.as_ptr(), cloexec) })
    }

    /// Sets root, cwd (NUL-terminated paths) and umask.
    pub(crate) fn set_fs(root: &[u8], cwd: &[u8], umask: u32) -> Result {
        if root.last() != Some(&0) || cwd.last() != Some(&0) {
            return Err(EINVAL);
        }
        // SAFETY: both paths are NUL-terminated.
        check(unsafe { cr_set_fs(root.as_ptr().cast(), cwd.as_ptr().cast(), umask) })
    }
}
