// SPDX-License-Identifier: GPL-2.0

//! General registers with the syscall-restart state (REGS), and the XSAVE area (XSTATE).
//!
//! A frozen task sits in the kernel's signal path, so its registers may still hold a
//! `-ERESTART*` return value with `orig_ax` naming the interrupted system call. Restart puts
//! them back unchanged, on the task's way out to user space, and the kernel's own signal code
//! then restarts or interrupts that call exactly as it would have without the checkpoint.

use kernel::{bindings, prelude::*, task::Task};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{restart_kind, ErrorKind, RecordKind, RegsRecord, USER_REGS_LEN};
use crate::records;
use crate::shim::current::{self, PreparedRegs};
use crate::shim::ffi::{RestartInfo, CR_TT_NATIVE, CR_TT_NONE};
use crate::shim::TaskExt;

/// Word indices in `struct user_regs_struct`.
mod reg {
    pub(super) const CS: usize = 17;
    pub(super) const SS: usize = 20;
    pub(super) const FS_BASE: usize = 21;
    pub(super) const GS_BASE: usize = 22;
    pub(super) const DS: usize = 23;
    pub(super) const ES: usize = 24;
    pub(super) const FS: usize = 25;
    pub(super) const GS: usize = 26;
}

fn word(regs: &[u8; USER_REGS_LEN], i: usize) -> u64 {
    crate::format::u64_at(regs, i)
}

/// Whether cr can restore these registers: the flat 64-bit selectors and no GS base, which is
/// all a 64-bit program has unless it uses `arch_prctl(ARCH_SET_GS)` or `set_thread_area()`.
fn check_segments(regs: &[u8; USER_REGS_LEN]) -> CrResult {
    let (cs, ss, task_size_max) = current::user_segments();
    if word(regs, reg::CS) != cs || word(regs, reg::SS) != ss {
        return Err(CrError::new(
            EINVAL,
            "not 64-bit user code and stack segments",
        ));
    }
    if [reg::DS, reg::ES, reg::FS, reg::GS, reg::GS_BASE]
        .iter()
        .any(|&r| word(regs, r) != 0)
    {
        return Err(CrError::unsupported(
            "segment registers or GS base in use (32-bit code, ARCH_SET_GS, TLS selectors)",
        ));
    }
    if word(regs, reg::FS_BASE) >= task_size_max {
        return Err(CrError::new(EINVAL, "FS base outside user space"));
    }
    Ok(())
}

/// A frozen task's registers and restart block, read once at checkpoint.
pub(crate) struct Cpu {
    regs: [u8; USER_REGS_LEN],
    restart: RestartInfo,
}

impl Cpu {
    /// `task`'s, or the reason they cannot be restored.
    pub(crate) fn read(task: &Task) -> CrResult<Self> {
        let restart = task.restart_block().map_err(|err| {
            CrError::new(
                err,
                "interrupted system call with an unsupported restart block",
            )
        })?;
        let regs = task.regs().why("reading the registers failed")?;
        check_segments(&regs)?;
        Ok(Self { regs, restart })
    }
}

/// REGS.
pub(crate) fn save(cx: &mut SaveCx<'_>, cpu: &Cpu) -> CrResult {
    let r = &cpu.restart;
    let rec = RegsRecord {
        restart_kind: r.kind,
        restart_clockid: r.clockid,
        restart_type: r.type_,
        reserved: 0,
        restart_rmtp: r.rmtp,
        restart_remaining_ns: r.remaining_ns,
    };
    cx.record(RecordKind::Regs, &[&rec.encode(), &cpu.regs])
}

/// XSTATE.
pub(crate) fn save_xstate(cx: &mut SaveCx<'_>) -> CrResult {
    let size = current::xstate_size() as usize;
    if size == 0 {
        return Err(CrError::unsupported("CPUs without XSAVE are not supported"));
    }
    let mut xstate = KVVec::from_elem(0u8, size, GFP_KERNEL)?;
    cx.task
        .xstate(&mut xstate)
        .why("reading the XSAVE area failed")?;
    cx.record(RecordKind::Xstate, &[&xstate])
}

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

/// The clocks a nanosleep restart block can be rebased on.
const CLOCKS: [u32; 4] = [
    bindings::CLOCK_REALTIME,
    bindings::CLOCK_MONOTONIC,
    bindings::CLOCK_BOOTTIME,
    bindings::CLOCK_TAI,
];

/// REGS.
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut KeptRegs) -> CrResult {
    let r = LoadCx::decode(cx.input, records::Regs::decode)?;
    let rec = r.rec;
    if rec.restart_kind == restart_kind::NANOSLEEP
        && (!CLOCKS.contains(&rec.restart_clockid)
            || !matches!(rec.restart_type, CR_TT_NONE | CR_TT_NATIVE))
    {
        return Err(cx.malformed(ErrorKind::BadField("restart block")));
    }
    check_segments(r.regs).map_err(|e| e.at(cx.input.offset()))?;
    kept.regs.copy_from_slice(r.regs);
    kept.restart = RestartInfo {
        kind: rec.restart_kind,
        clockid: rec.restart_clockid,
        type_: rec.restart_type,
        reserved: 0,
        rmtp: rec.restart_rmtp,
        remaining_ns: rec.restart_remaining_ns,
    };
    Ok(())
}

/// XSTATE, in this CPU's layout.
pub(crate) fn load_xstate(cx: &mut LoadCx<'_>, kept: &mut KeptRegs) -> CrResult {
    let p = cx.input.payload();
    if p.len() != current::xstate_size() as usize {
        return Err(cx.malformed(ErrorKind::BadField("xstate size")));
    }
    let mut x = KVVec::with_capacity(p.len(), GFP_KERNEL)?;
    x.extend_from_slice(p, GFP_KERNEL)?;
    kept.xstate = x;
    Ok(())
}

/// Loads the xstate and prepares the registers' installation.
pub(crate) fn apply(kept: &mut KeptRegs) -> CrResult {
    current::set_xstate(&kept.xstate).why("restoring the FPU state failed")?;
    kept.prepared =
        Some(PreparedRegs::new(&kept.regs, &kept.restart).why("restoring registers failed")?);
    Ok(())
}

/// Queues the registers for the way out. Last of all: the task work it queues makes the task's
/// signal check fire, which would cut short any wait after it.
pub(crate) fn install(kept: &mut KeptRegs) -> CrResult {
    kept.prepared
        .take()
        .ok_or(CrError::new(EINVAL, "no registers to restore"))?
        .install()
        .why("restoring registers failed")
}
