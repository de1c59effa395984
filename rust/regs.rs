// SPDX-License-Identifier: GPL-2.0

//! General registers, the syscall-restart state, and the XSAVE area.
//!
//! A frozen task sits in the kernel's signal path, so its registers may still hold a
//! `-ERESTART*` return value with `orig_ax` naming the interrupted system call. Restart puts
//! them back unchanged, on the task's way out to user space, and the kernel's own signal code
//! then restarts or interrupts that call exactly as it would have without the checkpoint.

use kernel::prelude::*;

use crate::checkpoint::{refuse, SaveCx, Stop};
use crate::format::{self, restart_kind, ErrorKind, RecordKind, RegsRecord, USER_REGS_LEN};
use crate::image::{Failure, ImageIn};
use crate::shim::{self, PreparedRegs, Refusal, RestartInfo, TaskRef};

/// Registers and xstate to install.
pub(crate) struct KeptRegs {
    regs: [u8; USER_REGS_LEN],
    restart: RestartInfo,
    xstate: KVVec<u8>,
    prepared: Option<PreparedRegs>,
}

impl Default for KeptRegs {
    fn default() -> Self {
        Self {
            regs: [0; USER_REGS_LEN],
            restart: RestartInfo::default(),
            xstate: KVVec::new(),
            prepared: None,
        }
    }
}

/// Refuses an interrupted system call whose restart block cr cannot recreate.
pub(crate) fn precheck(task: &TaskRef) -> Result<(), Refusal> {
    task.restart().map_err(|err| Refusal {
        err,
        reason: "interrupted system call with an unsupported restart block",
    })?;
    let regs = task.regs().map_err(|err| Refusal {
        err,
        reason: "reading the registers failed",
    })?;
    shim::current::check_user_regs(&regs).map_err(|err| Refusal {
        err,
        reason: "segment registers or GS base in use (32-bit code, ARCH_SET_GS, TLS selectors)",
    })
}

/// REGS and XSTATE.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let regs = cx.task.regs()?;
    let r = cx.task.restart()?;
    let rec = RegsRecord {
        restart_kind: r.kind,
        restart_clockid: r.clockid,
        restart_type: r.type_,
        reserved: 0,
        restart_rmtp: r.rmtp,
        restart_remaining_ns: r.remaining_ns,
    };
    cx.record(RecordKind::Regs, &[&rec.encode(), &regs])?;

    let size = shim::current::xstate_size() as usize;
    if size == 0 {
        return Err(refuse(EOPNOTSUPP, "CPUs without XSAVE are not supported"));
    }
    let mut xstate = KVVec::from_elem(0u8, size, GFP_KERNEL)?;
    cx.task.xstate(&mut xstate)?;
    cx.record(RecordKind::Xstate, &[&xstate])
}

/// Reads REGS and XSTATE.
pub(crate) fn load(input: &mut ImageIn, kept: &mut KeptRegs) -> Result<(), Failure> {
    input.expect(RecordKind::Regs)?;
    let p = input.payload();
    let (rec, regs) = format::split_fixed(RecordKind::Regs, p, RegsRecord::LEN, RegsRecord::decode)
        .map_err(|k| input.malformed(k))?;
    if regs.len() != USER_REGS_LEN {
        return Err(input.malformed(ErrorKind::BadField("regs")));
    }
    kept.regs.copy_from_slice(regs);
    let mut restart = RestartInfo::default();
    restart.kind = rec.restart_kind;
    restart.clockid = rec.restart_clockid;
    restart.type_ = rec.restart_type;
    restart.rmtp = rec.restart_rmtp;
    restart.remaining_ns = rec.restart_remaining_ns;
    if rec.restart_kind != restart_kind::NONE && rec.restart_kind != restart_kind::NANOSLEEP {
        return Err(input.malformed(ErrorKind::BadField("restart kind")));
    }
    shim::current::check_restart(&restart)
        .map_err(|_| input.malformed(ErrorKind::BadField("restart block")))?;
    kept.restart = restart;

    input.expect(RecordKind::Xstate)?;

    let p = input.payload();
    if p.len() != shim::current::xstate_size() as usize {
        return Err(input.malformed(ErrorKind::BadField("xstate size")));
    }
    let mut x = KVVec::with_capacity(p.len(), GFP_KERNEL)
        .map_err(|e| input.fail(e.into(), "out of memory"))?;
    x.extend_from_slice(p, GFP_KERNEL)
        .map_err(|e| input.fail(e.into(), "out of memory"))?;
    kept.xstate = x;
    Ok(())
}

/// Loads the xstate and prepares the registers' installation.
pub(crate) fn apply(kept: &mut KeptRegs) -> Result {
    shim::current::set_xstate(&kept.xstate)?;
    kept.prepared = Some(PreparedRegs::new(&kept.regs, &kept.restart)?);
    Ok(())
}

/// Queues the registers for the way out. Last of all: the task work it queues makes the task's
/// signal check fire, which would cut short any wait after it.
pub(crate) fn install(kept: &mut KeptRegs) -> Result {
    kept.prepared.take().ok_or(EINVAL)?.install()
}
