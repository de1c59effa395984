// SPDX-License-Identifier: GPL-2.0

//! Per-task state: task scalars and credentials; per process (in the section of its first
//! thread): rlimits and interval timers.

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop};
use crate::format::{
    self, task_flags, CredsRecord, ErrorKind, ItimersRecord, RecordKind, Rlimit, TaskRecord,
    TreeEntry, COMM_LEN, GROUPS_MAX, RLIMIT_COUNT,
};

/// `TASK_DUMPABLE_ROOT`, the highest dumpable mode.
const DUMPABLE_MAX: u32 = 2;
use crate::image::{Failure, ImageIn};
use crate::shim::{self, CredsInfo, TaskInfo};

/// What restart keeps of this file's records until the trailer.
#[derive(Default)]
pub(crate) struct KeptTask {
    info: TaskInfo,
    creds: CredsInfo,
    groups: KVec<u32>,
    rlimits: [Rlimit; RLIMIT_COUNT],
    itimer_real: ItimersRecord,
}

/// TASK, CREDS, and for a process's first thread RLIMITS.
pub(crate) fn save(cx: &mut SaveCx<'_>, leader: bool) -> Result<(), Stop> {
    let i = cx.task.info(cx.ns);
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
    cx.record(RecordKind::Task, &[&rec.encode(), &i.comm])?;

    let mut groups = KVec::new();
    let rec = cx.task.creds(&mut groups)?;
    let mut group_bytes = KVec::with_capacity(groups.len() * 4, GFP_KERNEL)?;
    for g in groups.iter() {
        group_bytes.extend_from_slice(&g.to_le_bytes(), GFP_KERNEL)?;
    }
    cx.record(RecordKind::Creds, &[&rec.encode(), &group_bytes])?;
    if !leader {
        return Ok(());
    }

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
pub(crate) fn save_itimers(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let (value, interval) = cx.task.itimer_real();
    let rec = ItimersRecord {
        real_value_ns: value,
        real_interval_ns: interval,
    };
    cx.record(RecordKind::Itimers, &[&rec.encode()])
}

/// Reads TASK, CREDS and, for a process's first thread, RLIMITS.
pub(crate) fn load(
    input: &mut ImageIn,
    kept: &mut KeptTask,
    entry: &TreeEntry,
    leader: bool,
) -> Result<(), Failure> {
    input.expect(RecordKind::Task)?;
    let p = input.payload();
    let (t, comm) = format::split_fixed(RecordKind::Task, p, TaskRecord::LEN, TaskRecord::decode)
        .map_err(|k| input.malformed(k))?;
    if comm.len() != COMM_LEN {
        return Err(input.malformed(ErrorKind::BadString));
    }
    if t.pid != entry.pid || t.tgid != entry.tgid {
        return Err(input.fail(EINVAL, "TASK record names another task"));
    }
    // A thread's exit_signal is -1.
    if (t.exit_signal > 64 && t.exit_signal != u32::MAX)
        || t.pdeath_signal > 64
        || t.robust_list_len > 4096
        || t.flags & !task_flags::KNOWN != 0
        || t.dumpable > DUMPABLE_MAX
    {
        return Err(input.malformed(ErrorKind::BadField("task")));
    }
    kept.info = TaskInfo {
        pid: t.pid,
        tgid: t.tgid,
        personality: t.personality,
        exit_signal: t.exit_signal,
        pdeath_signal: t.pdeath_signal,
        sas_ss_flags: t.sas_ss_flags,
        flags: t.flags,
        dumpable: t.dumpable,
        clear_child_tid: t.clear_child_tid,
        robust_list: t.robust_list,
        robust_list_len: t.robust_list_len,
        sas_ss_sp: t.sas_ss_sp,
        sas_ss_size: t.sas_ss_size,
        blocked: t.blocked,
        ..TaskInfo::default()
    };
    kept.info.comm.copy_from_slice(comm);

    input.expect(RecordKind::Creds)?;

    let p = input.payload();
    let (c, groups) =
        format::split_fixed(RecordKind::Creds, p, CredsRecord::LEN, CredsRecord::decode)
            .map_err(|k| input.malformed(k))?;
    if c.ngroups as usize > GROUPS_MAX || groups.len() != c.ngroups as usize * 4 {
        return Err(input.malformed(ErrorKind::BadField("ngroups")));
    }
    kept.creds = c;
    let groups_copy: KVec<u32> = {
        let mut v = KVec::with_capacity(c.ngroups as usize, GFP_KERNEL)
            .map_err(|_| input.fail(ENOMEM, "out of memory"))?;
        for i in 0..c.ngroups as usize {
            v.push(format::u32_at(groups, i), GFP_KERNEL)
                .map_err(|_| input.fail(ENOMEM, "out of memory"))?;
        }
        v
    };
    kept.groups = groups_copy;
    if !leader {
        return Ok(());
    }

    input.expect(RecordKind::Rlimits)?;

    let p = input.payload();
    if p.len() != RLIMIT_COUNT * Rlimit::LEN {
        return Err(input.malformed(ErrorKind::BadPayloadLength {
            kind: RecordKind::Rlimits as u32,
            len: p.len() as u32,
        }));
    }
    for (i, chunk) in p.chunks_exact(Rlimit::LEN).enumerate() {
        let r = Rlimit::decode(chunk).unwrap_or_default();
        if r.cur > r.max {
            return Err(input.malformed(ErrorKind::BadField("rlimit")));
        }
        kept.rlimits[i] = r;
    }
    Ok(())
}

/// Reads ITIMERS.
pub(crate) fn load_itimers(input: &mut ImageIn, kept: &mut KeptTask) -> Result<(), Failure> {
    input.expect(RecordKind::Itimers)?;
    let p = input.payload();
    kept.itimer_real = format::exact_fixed(
        RecordKind::Itimers,
        p,
        ItimersRecord::LEN,
        ItimersRecord::decode,
    )
    .map_err(|k| input.malformed(k))?;
    Ok(())
}

/// Applies TASK and, for a process's first thread, RLIMITS and ITIMERS.
pub(crate) fn apply(kept: &KeptTask, leader: bool) -> Result {
    shim::current::set_task_info(&kept.info);
    if leader {
        for (i, r) in kept.rlimits.iter().enumerate() {
            shim::current::set_rlimit(i as u32, r.cur, r.max)?;
        }
        let t = &kept.itimer_real;
        if t.real_value_ns != 0 || t.real_interval_ns != 0 {
            shim::current::set_itimer_real(t.real_value_ns, t.real_interval_ns)?;
        }
    }
    // The blocked mask last, so that nothing above runs with the restored mask half set.
    shim::current::set_blocked(kept.info.blocked)
}

/// Applies CREDS, then what a change of credentials resets: the parent-death signal and the
/// dumpable mode (`commit_creds` clears and lowers them when the euid changes), and
/// no_new_privs.
pub(crate) fn apply_creds(kept: &KeptTask) -> Result {
    shim::current::set_creds(&kept.creds, &kept.groups)?;
    shim::current::set_after_creds(&kept.info);
    Ok(())
}
