// SPDX-License-Identifier: GPL-2.0

//! What the calling task does to itself: a restarting task restores its own state.

use core::ffi::{c_int, c_void};
use core::ptr::NonNull;

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef, task::Task};

use super::ffi::{self, CredsInfo, MmInfo, RestartInfo, TaskInfo};
use super::{check, UTS_BUF};
use crate::format::{SIGINFO_LEN, USER_REGS_LEN};

/// The calling task, referenced.
pub(crate) fn task() -> ARef<Task> {
    ARef::from(&**kernel::current!())
}

/// `capable(CAP_SYS_ADMIN)`.
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` may be called from any process context.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}

/// `CR_TF_*` facts about the caller itself.
pub(crate) fn facts() -> u32 {
    // SAFETY: `current` is live for the whole call.
    unsafe { ffi::cr_task_facts(kernel::current!().as_ptr()) }
}

/// Threads in the caller's thread group.
pub(crate) fn threads() -> u32 {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_current_threads() }
}

/// The caller's pid in its own pid namespace.
pub(crate) fn vpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_current_vpid() }
}

/// The kernel release into `buf`, NUL-terminated.
pub(crate) fn release(buf: &mut [u8]) {
    // SAFETY: `buf` holds `buf.len()` bytes.
    unsafe { ffi::cr_release(buf.as_mut_ptr().cast(), buf.len() as c_int) }
}

/// Whether SIGKILL is pending for the caller.
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_fatal_signal_pending() }
}

/// Discards the signals of `mask` (bit `n - 1` for signal `n`) that the caller or its thread
/// group has pending.
pub(crate) fn discard_signals(mask: u64) {
    // SAFETY: no preconditions: the shim takes the caller's own signal lock.
    unsafe { ffi::cr_discard_signals(mask) }
}

/// Queues SIGKILL: the task dies before it runs user code again.
pub(crate) fn kill() {
    // SAFETY: `force_sig` acts on the calling task.
    unsafe { bindings::force_sig(bindings::SIGKILL as c_int) }
}

/// XSAVE area size of this CPU's user state.
pub(crate) fn xstate_size() -> u32 {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_xstate_size() }
}

/// XCR0.
pub(crate) fn xfeatures() -> u64 {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_xfeatures() }
}

/// This CPU's flat user code and stack selectors, and where user space ends.
pub(crate) fn user_segments() -> (u64, u64, u64) {
    let (mut cs, mut ss, mut top) = (0, 0, 0);
    // SAFETY: the three out-parameters are valid.
    unsafe { ffi::cr_user_segments(&mut cs, &mut ss, &mut top) };
    (cs, ss, top)
}

pub(crate) fn set_task_info(info: &TaskInfo) {
    // SAFETY: `info` is valid; the shim applies it to current.
    unsafe { ffi::cr_set_task_info(info) }
}

/// Applies what a change of credentials resets: parent-death signal, dumpable mode, and
/// no_new_privs.
pub(crate) fn set_after_creds(info: &TaskInfo) {
    // SAFETY: `info` is valid; the shim applies it to current.
    unsafe { ffi::cr_set_after_creds(info) }
}

pub(crate) fn set_blocked(blocked: u64) -> Result {
    // SAFETY: no preconditions.
    check(unsafe { ffi::cr_set_blocked(blocked) })
}

pub(crate) fn set_creds(info: &CredsInfo, groups: &[u32]) -> Result {
    if groups.len() != info.ngroups as usize {
        return Err(EINVAL);
    }
    // SAFETY: `groups` holds `ngroups` entries.
    check(unsafe { ffi::cr_set_creds(info, groups.as_ptr()) })
}

pub(crate) fn set_rlimit(resource: u32, cur: u64, max: u64) -> Result {
    // SAFETY: no preconditions; the shim validates the arguments.
    check(unsafe { ffi::cr_set_rlimit(resource, cur, max) })
}

/// Arms interval timer `which` (a `CR_ITIMER_*`) of the calling process, as setitimer() does.
pub(crate) fn set_itimer(which: u32, value: u64, interval: u64) -> Result {
    // SAFETY: no preconditions; do_setitimer checks `which`.
    check(unsafe { ffi::cr_set_itimer(which, value, interval) })
}

pub(crate) fn set_sigaction(sig: u32, action: &[u64; 4]) -> Result {
    // SAFETY: `action` holds the four words the shim reads.
    check(unsafe { ffi::cr_set_sigaction(sig as c_int, action.as_ptr()) })
}

pub(crate) fn queue_signal(signo: u32, info: &[u8; SIGINFO_LEN], shared: bool) -> Result {
    // SAFETY: `info` holds a whole kernel_siginfo_t.
    check(unsafe { ffi::cr_queue_signal(signo, info.as_ptr(), shared) })
}

pub(crate) fn set_xstate(buf: &[u8]) -> Result {
    // SAFETY: `buf` is valid for its length; the shim validates size and contents.
    check(unsafe { ffi::cr_set_xstate(buf.as_ptr().cast(), buf.len() as u32) })
}

pub(crate) fn unmap_all() -> Result {
    // SAFETY: no preconditions; current has an mm (a user task in an ioctl).
    check(unsafe { ffi::cr_unmap_all() })
}

pub(crate) fn map(file: Option<&File>, start: u64, end: u64, vm_flags: u64, pgoff: u64) -> Result {
    let f = file.map_or(core::ptr::null_mut(), |f| f.as_ptr());
    // SAFETY: `f` is NULL or a referenced file.
    check(unsafe { ffi::cr_map(f, start, end, vm_flags, pgoff) })
}

pub(crate) fn map_vdso(text_start: u64) -> Result {
    // SAFETY: no preconditions.
    check(unsafe { ffi::cr_map_vdso(text_start) })
}

pub(crate) fn set_mm(info: &MmInfo, exe: &File) -> Result {
    // SAFETY: `info` is valid; `exe` is a referenced file.
    check(unsafe { ffi::cr_set_mm(info, exe.as_ptr()) })
}

pub(crate) fn close_all_fds() {
    // SAFETY: no preconditions.
    unsafe { ffi::cr_close_all_fds() }
}

pub(crate) fn install_fd(fd: u32, f: &File, cloexec: bool) -> Result {
    // SAFETY: `f` is referenced; `replace_fd` takes its own reference.
    check(unsafe { ffi::cr_install_fd(fd, f.as_ptr(), cloexec) })
}

/// Sets root, cwd (NUL-terminated paths) and umask.
pub(crate) fn set_fs(root: &[u8], cwd: &[u8], umask: u32) -> Result {
    if root.last() != Some(&0) || cwd.last() != Some(&0) {
        return Err(EINVAL);
    }
    // SAFETY: both paths are NUL-terminated.
    check(unsafe { ffi::cr_set_fs(root.as_ptr().cast(), cwd.as_ptr().cast(), umask) })
}

/// Sets the node and domain names (NUL-terminated) of the caller's UTS namespace, which must not
/// be the initial one.
pub(crate) fn set_uts(node: &[u8; UTS_BUF], domain: &[u8; UTS_BUF]) -> Result {
    // SAFETY: both buffers are NUL-terminated within `__NEW_UTS_LEN + 1` bytes (the caller
    // builds them zero-filled from shorter names).
    check(unsafe { ffi::cr_set_uts(node.as_ptr().cast(), domain.as_ptr().cast()) })
}

/// Registers and a restart block, checked and ready to be installed on the way back to user
/// space: the allocation is done, so installing cannot fail for lack of memory.
pub(crate) struct PreparedRegs(NonNull<c_void>);

// SAFETY: the prepared work is plain memory until installed.
unsafe impl Send for PreparedRegs {}

impl PreparedRegs {
    /// Prepares the installation of `regs` (which the caller checked).
    pub(crate) fn new(regs: &[u8; USER_REGS_LEN], restart: &RestartInfo) -> Result<Self> {
        // SAFETY: `regs` holds a whole user_regs_struct; the shim copies both arguments.
        let w = unsafe { ffi::cr_prepare_regs(regs.as_ptr().cast(), restart) };
        NonNull::new(w).map(Self).ok_or(ENOMEM)
    }

    /// Installs them on the calling task, for its way out.
    pub(crate) fn install(self) -> Result {
        let w = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: `w` was prepared by `cr_prepare_regs` and is handed over to the shim, which
        // owns it from here on (it frees it if the task is exiting).
        check(unsafe { ffi::cr_install_regs(w) })
    }
}

impl Drop for PreparedRegs {
    fn drop(&mut self) {
        // SAFETY: never installed (install forgets `self`), so we still own the allocation.
        unsafe { ffi::cr_free_regs(self.0.as_ptr()) };
    }
}
