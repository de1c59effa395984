// SPDX-License-Identifier: GPL-2.0

//! Signal handlers (SIGHAND) and pending signals (SIGPENDING, the task's queue and, in a
//! process's first thread, the thread group's). The blocked mask and the alternate stack are
//! task scalars (`task.rs`).

use kernel::prelude::*;

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{
    ErrorKind, PendingHeader, PendingSignal as WirePending, RecordKind, SigAction, SIGINFO_LEN,
    SIGNAL_COUNT,
};
use crate::records::{self, SIGKILL, SIGSTOP};
use crate::shim::{current, ffi::PendingSignal, TaskExt};

const _: () = assert!(SIGKILL == kernel::bindings::SIGKILL && SIGSTOP == kernel::bindings::SIGSTOP);

/// Dispositions and the two pending queues.
#[derive(Default)]
pub(crate) struct KeptSignals {
    actions: Option<[SigAction; SIGNAL_COUNT]>,
    pending: KVec<(bool, PendingSignal)>,
}

/// SIGHAND: the dispositions, written by the first task that uses them.
pub(crate) fn save_handlers(cx: &mut SaveCx<'_>) -> CrResult {
    let actions = cx.task.sigactions()?;
    let mut bytes = KVec::from_elem(0u8, SIGNAL_COUNT * SigAction::LEN, GFP_KERNEL)?;
    for (i, chunk) in bytes.chunks_exact_mut(SigAction::LEN).enumerate() {
        SigAction {
            handler: actions[4 * i],
            flags: actions[4 * i + 1],
            restorer: actions[4 * i + 2],
            mask: actions[4 * i + 3],
        }
        .encode_into(chunk);
    }
    cx.record(RecordKind::Sighand, &[&bytes])
}

/// SIGPENDING for the task's own queue or, from a process's first thread, the thread group's.
pub(crate) fn save_pending(cx: &mut SaveCx<'_>, shared: bool) -> CrResult {
    let queue = cx.task.pending(shared)?;
    let head = PendingHeader {
        shared: u32::from(shared),
        count: queue.len() as u32,
    };
    let mut bytes =
        KVec::with_capacity(queue.len() * (WirePending::LEN + SIGINFO_LEN), GFP_KERNEL)?;
    for s in queue.iter() {
        let w = WirePending {
            signo: s.signo,
            reserved: 0,
        };
        bytes.extend_from_slice(&w.encode(), GFP_KERNEL)?;
        bytes.extend_from_slice(&s.info, GFP_KERNEL)?;
    }
    cx.record(RecordKind::SigPending, &[&head.encode(), &bytes])
}

/// SIGHAND.
pub(crate) fn load_handlers(cx: &mut LoadCx<'_>, kept: &mut KeptSignals) -> CrResult {
    kept.actions = Some(LoadCx::decode(cx.input, records::Sighand::decode)?.actions);
    Ok(())
}

/// One SIGPENDING record, of the private or the shared queue.
pub(crate) fn load_pending(cx: &mut LoadCx<'_>, kept: &mut KeptSignals, shared: bool) -> CrResult {
    let p = LoadCx::decode(cx.input, records::SigPending::decode)?;
    if p.shared() != shared {
        return Err(cx.malformed(ErrorKind::BadField("pending signals")));
    }
    for s in p.signals() {
        let (signo, info) = s.map_err(|k| cx.malformed(k))?;
        let mut signal = PendingSignal {
            signo,
            ..PendingSignal::default()
        };
        signal.info.copy_from_slice(info);
        kept.pending.push((shared, signal), GFP_KERNEL)?;
    }
    Ok(())
}

/// Installs the handlers (when this task defines them).
pub(crate) fn apply_handlers(kept: &KeptSignals) -> CrResult {
    for (i, a) in kept.actions.iter().flatten().enumerate() {
        let sig = i as u32 + 1;
        if sig == SIGKILL || sig == SIGSTOP {
            continue;
        }
        current::set_sigaction(sig, &[a.handler, a.flags, a.restorer, a.mask])
            .why("restoring a signal handler failed")?;
    }
    Ok(())
}

/// Sets the blocked mask, then re-queues the pending signals: they are acted on only when the
/// task returns to user space, with the checkpointed registers in place, and the mask must be
/// there first, so that re-queueing a blocked fatal signal does not kill the task on the spot.
/// A process's first thread first discards the signals the restore itself sent it (`sent`: its
/// zombie children's exit signals, a ghost's SIGCHLD). Any other signal sent while it was being
/// restored stays pending, as if sent just after: the task blocked every signal while it was
/// restored, and a test or supervisor that signals a restarted process as soon as it sees it
/// must not find the signal lost.
pub(crate) fn apply_pending(kept: &KeptSignals, blocked: u64, leader: bool, sent: u64) -> CrResult {
    current::set_blocked(blocked).why("restoring the blocked signal mask failed")?;
    if leader {
        current::discard_signals(sent);
    }
    for (shared, s) in kept.pending.iter() {
        current::queue_signal(s.signo, &s.info, *shared)
            .map_err(|e| CrError::new(e, "re-queueing a pending signal failed"))?;
    }
    Ok(())
}
