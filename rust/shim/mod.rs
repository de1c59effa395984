// SPDX-License-Identifier: GPL-2.0

//! Safe access to the kernel state that the kernel crate does not reach, through `shim.c`.
//!
//! The handles are the kernel crate's own: `ARef<Task>`, `ARef<File>`, `ARef<MmWithUser>`,
//! `ARef<PidNamespace>`. This module adds extension traits on those types ([`TaskExt`],
//! [`FileExt`], [`MmExt`], [`PidNsExt`]), the operations a task applies to itself
//! ([`current`]), [`PipeRef`], which only a pipe end can become, and referenced pages
//! ([`Walked`], [`OwnPages`]). Every `unsafe` call to the
//! shim is here, once; [`ffi`] declares what `shim.h` defines.

pub(crate) mod current;
pub(crate) mod ffi;
mod file;
mod mm;
mod pages;
mod task;

use core::ffi::c_int;
use core::ptr::NonNull;

use kernel::{fs::File, prelude::*, sync::aref::ARef, task::Task};

pub(crate) use file::{new_event, new_pipe, new_shmem, open_path, FileExt, Gather};
pub(crate) use mm::{MmExt, Vma};
pub(crate) use pages::{CopiedPage, CopiesCursor, OwnPages, Walked};
pub(crate) use task::{all_tasks, find_task, PidNsExt, TaskExt};

/// Turns a C return code (0 or a negative errno) into a `Result`.
fn check(ret: c_int) -> Result {
    if ret < 0 {
        Err(Error::from_errno(ret))
    } else {
        Ok(())
    }
}

/// Takes ownership of a file reference the shim returned, or its `ERR_PTR`.
fn file_or_err(f: *mut kernel::bindings::file) -> Result<ARef<File>> {
    let addr = f as isize;
    if (-4095..0).contains(&addr) {
        return Err(Error::from_errno(addr as i32));
    }
    // SAFETY: the shim returns a referenced file (or an ERR_PTR, handled above, or NULL, which
    // `NonNull::new` rejects); its reference goes to the `ARef`. `File` is a transparent wrapper
    // of `struct file`.
    NonNull::new(f.cast::<File>())
        .map(|f| unsafe { ARef::from_raw(f) })
        .ok_or(ENOMEM)
}

/// Takes ownership of a file reference the shim returned, if any.
fn file_or_none(f: *mut kernel::bindings::file) -> Option<ARef<File>> {
    // SAFETY: as in `file_or_err`: a referenced file or NULL.
    NonNull::new(f.cast::<File>()).map(|f| unsafe { ARef::from_raw(f) })
}

/// Takes ownership of a task reference the shim returned, if any.
fn task_or_none(t: *mut kernel::bindings::task_struct) -> Option<ARef<Task>> {
    // SAFETY: the shim returns a task with a reference taken for the caller, or NULL; `Task` is
    // a transparent wrapper of `struct task_struct`.
    NonNull::new(t.cast::<Task>()).map(|t| unsafe { ARef::from_raw(t) })
}

/// `path` with a terminating NUL, as the shim's path arguments want it.
pub(crate) fn nul_terminated(path: &[u8]) -> Result<KVec<u8>, kernel::alloc::AllocError> {
    let mut v = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(path, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// Length of a UTS name buffer, NUL included (`__NEW_UTS_LEN + 1`).
pub(crate) const UTS_BUF: usize = crate::format::UTS_NAME_MAX + 1;
