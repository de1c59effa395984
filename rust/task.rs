// SPDX-License-Identifier: GPL-2.0

//! Per-task state: task scalars (TASK) and credentials (CREDS); per process, in the section of
//! its first thread: resource limits (RLIMITS) and interval timers (ITIMERS). Also what makes a
//! task one cr cannot checkpoint at all.

use kernel::{prelude::*, task::Task};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{CredsRecord, ItimersRecord, RecordKind, Rlimit, TaskRecord, RLIMIT_COUNT};
use crate::records;
use crate::shim::ffi::{self, CredsInfo, TaskInfo};
use crate::shim::{current, TaskExt};

/// What makes a live task one cr cannot checkpoint, checked in this order: each `CR_TF_*` fact
/// that refuses it when present (or, for `CR_TF_FROZEN`, absent), with errno and reason.
const REFUSALS: [(u32, bool, CrError); 14] = [
    (
        ffi::CR_TF_KTHREAD,
        true,
        CrError::new(EPERM, "kernel threads cannot be checkpointed"),
    ),
    (
        ffi::CR_TF_EXITING,
        true,
        CrError::new(EBUSY, "task is exiting"),
    ),
    (
        ffi::CR_TF_FROZEN,
        false,
        CrError::new(EBUSY, "task is not frozen (freeze its cgroup v2 first)"),
    ),
    (
        ffi::CR_TF_TRACED,
        true,
        CrError::new(EBUSY, "task is being traced"),
    ),
    (
        ffi::CR_TF_32BIT,
        true,
        CrError::unsupported("32-bit tasks are not supported"),
    ),
    (
        ffi::CR_TF_SECCOMP,
        true,
        CrError::unsupported("seccomp filters are not supported yet"),
    ),
    (
        ffi::CR_TF_OTHER_USERNS,
        true,
        CrError::unsupported("task is in another user namespace"),
    ),
    (
        ffi::CR_TF_OTHER_MNTNS,
        true,
        // Paths are written as the caller sees them, and reopened so at restart.
        CrError::unsupported("task is in another mount namespace"),
    ),
    (
        ffi::CR_TF_POSIX_TIMERS,
        true,
        CrError::unsupported("POSIX timers are not supported yet"),
    ),
    (
        ffi::CR_TF_SAVED_SIGMASK,
        true,
        CrError::unsupported(
            "sigsuspend, ppoll, pselect or epoll_pwait in progress (temporary signal mask)",
        ),
    ),
    (
        ffi::CR_TF_SEM_UNDO,
        true,
        CrError::unsupported("SysV semaphore undo lists are not supported yet"),
    ),
    (
        ffi::CR_TF_NO_MM,
        true,
        CrError::unsupported("task has no address space"),
    ),
    (
        ffi::CR_TF_AIO,
        true,
        CrError::unsupported("AIO contexts are not supported"),
    ),
    (
        ffi::CR_TF_OTHER_TIMENS,
        true,
        // Restart would put it in the caller's, and its clocks would jump.
        CrError::unsupported("task is in another time namespace, or made one for its children"),
    ),
];

/// Why a live task with `CR_TF_*` facts cannot be checkpointed, if it cannot.
pub(crate) fn refusal(facts: u32) -> Option<CrError> {
    REFUSALS
        .iter()
        .find(|(bit, refuses_when_set, _)| (facts & bit != 0) == *refuses_when_set)
        .map(|r| r.2)
}

/// What restart keeps of this file's records until the trailer.
#[derive(Default)]
pub(crate) struct KeptTask {
    pub(crate) info: TaskInfo,
    creds: CredsInfo,
    groups: KVec<u32>,
    rlimits: Option<[Rlimit; RLIMIT_COUNT]>,
    itimers: Option<ItimersRecord>,
}

/// TASK.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> CrResult {
    let i = cx.task.scalars(cx.ns);
    let rec = TaskRecord {
        pid: i.pid,
        tgid: i.tgid,
        personality: i.personality,
        exit_signal: i.exit_signal,
        pdeath_signal: i.pdeath_signal,
        sas_ss_flags: i.sas_ss_flags,
        flags: i.flags,
        dumpable: i.dumpable,
        clear_child_tid: i.clear_child_tid,
        robust_list: i.robust_list,
        robust_list_len: i.robust_list_len,
        sas_ss_sp: i.sas_ss_sp,
        sas_ss_size: i.sas_ss_size,
        blocked: i.blocked,
    };
    cx.record(RecordKind::Task, &[&rec.encode(), &i.comm])
}

/// CREDS.
pub(crate) fn save_creds(cx: &mut SaveCx<'_>) -> CrResult {
    let mut groups = KVec::new();
    let rec = cx
        .task
        .creds(&mut groups)
        .why("reading the credentials failed")?;
    let mut group_bytes = KVec::with_capacity(groups.len() * 4, GFP_KERNEL)?;
    for g in groups.iter() {
        group_bytes.extend_from_slice(&g.to_le_bytes(), GFP_KERNEL)?;
    }
    cx.record(RecordKind::Creds, &[&rec.encode(), &group_bytes])
}

/// RLIMITS.
pub(crate) fn save_rlimits(cx: &mut SaveCx<'_>) -> CrResult {
    let limits = cx.task.rlimits();
    let mut bytes = [0u8; RLIMIT_COUNT * Rlimit::LEN];
    for (i, chunk) in bytes.chunks_exact_mut(Rlimit::LEN).enumerate() {
        Rlimit {
            cur: limits[2 * i],
            max: limits[2 * i + 1],
        }
        .encode_into(chunk);
    }
    cx.record(RecordKind::Rlimits, &[&bytes])
}

/// ITIMERS.
pub(crate) fn save_itimers(cx: &mut SaveCx<'_>) -> CrResult {
    let (real_value_ns, real_interval_ns) = cx.task.itimer(ffi::CR_ITIMER_REAL);
    let (virt_value_ns, virt_interval_ns) = cx.task.itimer(ffi::CR_ITIMER_VIRTUAL);
    let (prof_value_ns, prof_interval_ns) = cx.task.itimer(ffi::CR_ITIMER_PROF);
    let rec = ItimersRecord {
        real_value_ns,
        real_interval_ns,
        virt_value_ns,
        virt_interval_ns,
        prof_value_ns,
        prof_interval_ns,
    };
    cx.record(RecordKind::Itimers, &[&rec.encode()])
}

/// TASK, which must be the task's own (`pid`, `tgid` of its TREE entry).
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut KeptTask, pid: u32, tgid: u32) -> CrResult {
    let t = LoadCx::decode(cx.input, records::Task::decode)?;
    if t.rec.pid != pid || t.rec.tgid != tgid {
        return Err(cx.fail(EINVAL, "TASK record names another task"));
    }
    let r = &t.rec;
    kept.info = TaskInfo {
        pid: r.pid,
        tgid: r.tgid,
        personality: r.personality,
        exit_signal: r.exit_signal,
        pdeath_signal: r.pdeath_signal,
        sas_ss_flags: r.sas_ss_flags,
        flags: r.flags,
        dumpable: r.dumpable,
        clear_child_tid: r.clear_child_tid,
        robust_list: r.robust_list,
        robust_list_len: r.robust_list_len,
        sas_ss_sp: r.sas_ss_sp,
        sas_ss_size: r.sas_ss_size,
        blocked: r.blocked,
        ..TaskInfo::default()
    };
    kept.info.comm[..t.comm.len()].copy_from_slice(t.comm);
    Ok(())
}

/// CREDS.
pub(crate) fn load_creds(cx: &mut LoadCx<'_>, kept: &mut KeptTask) -> CrResult {
    let c = LoadCx::decode(cx.input, records::Creds::decode)?;
    kept.creds = c.rec;
    kept.groups = KVec::with_capacity(c.rec.ngroups as usize, GFP_KERNEL)?;
    for g in c.groups() {
        kept.groups.push(g, GFP_KERNEL)?;
    }
    Ok(())
}

/// RLIMITS.
pub(crate) fn load_rlimits(cx: &mut LoadCx<'_>, kept: &mut KeptTask) -> CrResult {
    kept.rlimits = Some(LoadCx::decode(cx.input, records::Rlimits::decode)?.limits);
    Ok(())
}

/// ITIMERS.
pub(crate) fn load_itimers(cx: &mut LoadCx<'_>, kept: &mut KeptTask) -> CrResult {
    kept.itimers = Some(LoadCx::decode(cx.input, records::itimers)?);
    Ok(())
}

/// Applies TASK (all but the blocked mask, which goes in with the pending signals).
pub(crate) fn apply(kept: &KeptTask) -> CrResult {
    current::set_task_info(&kept.info);
    Ok(())
}

/// Applies RLIMITS: before the descriptors, which the file limit lets in.
pub(crate) fn apply_rlimits(kept: &KeptTask) -> CrResult {
    for (i, r) in kept.rlimits.iter().flatten().enumerate() {
        current::set_rlimit(i as u32, r.cur, r.max).why("restoring a resource limit failed")?;
    }
    Ok(())
}

/// Applies ITIMERS: each armed timer is set again, its time left counted from now (the CPU-time
/// ones against the restored process's CPU time, which starts anew).
pub(crate) fn apply_itimers(kept: &KeptTask) -> CrResult {
    let Some(t) = kept.itimers else {
        return Ok(());
    };
    for (which, value, interval, what) in [
        (
            ffi::CR_ITIMER_REAL,
            t.real_value_ns,
            t.real_interval_ns,
            "restoring ITIMER_REAL failed",
        ),
        (
            ffi::CR_ITIMER_VIRTUAL,
            t.virt_value_ns,
            t.virt_interval_ns,
            "restoring ITIMER_VIRTUAL failed",
        ),
        (
            ffi::CR_ITIMER_PROF,
            t.prof_value_ns,
            t.prof_interval_ns,
            "restoring ITIMER_PROF failed",
        ),
    ] {
        if value != 0 || interval != 0 {
            current::set_itimer(which, value, interval).why(what)?;
        }
    }
    Ok(())
}

/// Applies CREDS, then what a change of credentials resets: the parent-death signal and the
/// dumpable mode (`commit_creds` clears and lowers them when the euid changes), and
/// no_new_privs. Last of all, since everything before may need the restarter's privileges.
pub(crate) fn apply_creds(kept: &KeptTask) -> CrResult {
    current::set_creds(&kept.creds, &kept.groups).why("restoring credentials failed")?;
    current::set_after_creds(&kept.info);
    Ok(())
}

const _: () = assert!(core::mem::size_of::<CredsRecord>() == core::mem::size_of::<CredsInfo>());

/// The caller's right to checkpoint a task: ptrace attach rights over it (which refuse
/// non-dumpable targets), with `CAP_SYS_ADMIN` or the task's own uid.
pub(crate) fn may_checkpoint(t: &Task) -> bool {
    t.may_attach() && (current::capable_sys_admin() || kernel::current!().uid() == t.uid())
}
