// SPDX-License-Identifier: GPL-2.0

//! Signal handlers and pending signals. The blocked mask and the alternate stack are task
//! scalars (`task.rs`).

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop};
use crate::format::{
    self, ErrorKind, PendingHeader, PendingSignal as WirePending, RecordKind, SigAction,
    SIGINFO_LEN, SIGNAL_COUNT,
};
use crate::image::{Failure, ImageIn};
use crate::shim::{self, PendingSignal};

const SIGKILL: u32 = 9;
const SIGSTOP: u32 = 19;

/// Dispositions and the two pending queues.
pub(crate) struct KeptSignals {
    actions: [SigAction; SIGNAL_COUNT],
    pending: KVec<(bool, PendingSignal)>,
}

impl Default for KeptSignals {
    fn default() -> Self {
        Self {
            actions: [SigAction::default(); SIGNAL_COUNT],
            pending: KVec::new(),
        }
    }
}

/// SIGHAND: the dispositions, written by the first task that uses them.
pub(crate) fn save_handlers(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
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
pub(crate) fn save_pending(cx: &mut SaveCx<'_>, shared: bool) -> Result<(), Stop> {
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

/// Reads SIGHAND.
pub(crate) fn load_handlers(input: &mut ImageIn, kept: &mut KeptSignals) -> Result<(), Failure> {
    input.expect(RecordKind::Sighand)?;
    let p = input.payload();
    if p.len() != SIGNAL_COUNT * SigAction::LEN {
        return Err(input.malformed(ErrorKind::BadPayloadLength {
            kind: RecordKind::Sighand as u32,
            len: p.len() as u32,
        }));
    }
    for (i, chunk) in p.chunks_exact(SigAction::LEN).enumerate() {
        kept.actions[i] = SigAction::decode(chunk).unwrap_or_default();
    }
    Ok(())
}

/// Reads one SIGPENDING record, of the private or the shared queue.
pub(crate) fn load_pending(
    input: &mut ImageIn,
    kept: &mut KeptSignals,
    shared: bool,
) -> Result<(), Failure> {
    input.expect(RecordKind::SigPending)?;
    let p = input.payload();
    let (head, mut rest) = format::split_fixed(
        RecordKind::SigPending,
        p,
        PendingHeader::LEN,
        PendingHeader::decode,
    )
    .map_err(|k| input.malformed(k))?;
    let entry = WirePending::LEN + SIGINFO_LEN;
    if head.shared != u32::from(shared) || rest.len() != head.count as usize * entry {
        return Err(input.malformed(ErrorKind::BadField("pending signals")));
    }
    while !rest.is_empty() {
        let w = WirePending::decode(rest).unwrap_or_default();
        if w.signo == 0
            || w.signo as usize > SIGNAL_COUNT
            || w.signo == SIGKILL
            || w.signo == SIGSTOP
        {
            return Err(input.malformed(ErrorKind::BadField("signo")));
        }
        let mut s = PendingSignal::default();
        s.signo = w.signo;
        s.info.copy_from_slice(&rest[WirePending::LEN..entry]);
        kept.pending
            .push((shared, s), GFP_KERNEL)
            .map_err(|e| input.fail(e.into(), "out of memory"))?;
        rest = &rest[entry..];
    }
    Ok(())
}

/// Installs the handlers (when this task defines them) and re-queues the pending signals. They
/// are acted on only when the task returns to user space, with the checkpointed registers and
/// blocked mask in place. A process's first thread clears what the thread group collected while
/// it was being restored (a zombie child's SIGCHLD), before anything is queued.
pub(crate) fn apply(kept: &KeptSignals, handlers: bool, leader: bool) -> Result {
    if leader {
        shim::current::flush_signals();
    }
    if handlers {
        for (i, a) in kept.actions.iter().enumerate() {
            let sig = i as u32 + 1;
            if sig == SIGKILL || sig == SIGSTOP {
                continue;
            }
            shim::current::set_sigaction(sig, &[a.handler, a.flags, a.restorer, a.mask])?;
        }
    }
    for (shared, s) in kept.pending.iter() {
        shim::current::queue_signal(s.signo, &s.info, *shared)?;
    }
    Ok(())
}
