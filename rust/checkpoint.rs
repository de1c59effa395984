// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_CHECKPOINT`: write a frozen process to an image.
//!
//! Everything that could make the image unrestorable is looked for first ([`precheck`]), before a
//! byte is written; then each kind of state writes its records, in the order restart reads them.

use kernel::prelude::*;

use crate::format::{self, Header, RecordKind, ARCH_X86_64, FORMAT_VERSION, RELEASE_LEN};
use crate::image::{file_of_fd, write_error, FileSink, ImageOut, Log};
use crate::shim::{self, Refusal, TaskRef};
use crate::uapi::OpArgs;
use crate::{files, fs, mm, regs, signals, task};

/// Page size of the kernel cr is built for.
pub(crate) const PAGE_SIZE: usize = 4096;

/// How writing a checkpoint can stop.
pub(crate) enum Stop {
    /// State cr cannot save: the errno and the reason for logfd.
    Refused(Refusal),
    /// Writing or reading failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<kernel::alloc::AllocError> for Stop {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self::Failed(ENOMEM)
    }
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<format::WriteError<Error>> for Stop {
    fn from(e: format::WriteError<Error>) -> Self {
        Self::Failed(write_error(e))
    }
}

/// Shorthand for a refusal.
pub(crate) fn refuse(err: Error, reason: &'static str) -> Stop {
    Stop::Refused(Refusal { err, reason })
}

/// What every saver gets: the task and the image.
pub(crate) struct SaveCx<'a> {
    pub(crate) task: &'a TaskRef,
    pub(crate) out: &'a mut ImageOut,
    /// Ids of the shared objects written so far.
    pub(crate) objrefs: format::ObjrefSpace,
}

impl SaveCx<'_> {
    /// Writes one record.
    pub(crate) fn record(&mut self, kind: RecordKind, parts: &[&[u8]]) -> Result<(), Stop> {
        self.out.record(kind as u32, parts)?;
        Ok(())
    }
}

/// Runs the ioctl.
pub(crate) fn run(args: &OpArgs) -> Result<isize> {
    let log = Log::open(args.logfd)?;
    let task = match TaskRef::find(args.pid) {
        Ok(t) => t,
        Err(e) => {
            log.line(fmt!("checkpoint: pid {}: no such process", args.pid));
            return Err(e);
        }
    };
    if !task.may_checkpoint() {
        log.line(fmt!("checkpoint: pid {}: permission denied", args.pid));
        return Err(EPERM);
    }
    if let Err(r) = precheck(&task) {
        log.line(fmt!("checkpoint: pid {}: {}", args.pid, r.reason));
        return Err(r.err);
    }
    let file = file_of_fd(args.fd)?;
    let mut out = ImageOut::new(FileSink::new(file)?, &header()).map_err(write_error)?;
    let result = {
        let mut cx = SaveCx {
            task: &task,
            out: &mut out,
            objrefs: format::ObjrefSpace::new(),
        };
        save_all(&mut cx).and_then(|()| {
            // The state was read while the task was frozen; if someone thawed it meanwhile, the
            // image may mix two moments: mark it incomplete rather than let it restore wrongly.
            match task.refusal() {
                None => Ok(()),
                Some(_) => Err(refuse(EBUSY, "the task was thawed during the checkpoint")),
            }
        })
    };
    match result {
        Ok(()) => {
            let mut sink = out.finish().map_err(write_error)?;
            sink.flush()?;
            Ok(0)
        }
        Err(stop) => {
            let (err, reason) = match stop {
                Stop::Refused(r) => (r.err, r.reason),
                Stop::Failed(e) => (e, "writing the image failed"),
            };
            log.line(fmt!(
                "checkpoint: pid {}: {} (errno {})",
                args.pid,
                reason,
                -err.to_errno()
            ));
            // Mark the image as incomplete, so that no reader mistakes it for a good one.
            if out.error(reason).is_ok() {
                if let Ok(mut sink) = out.finish() {
                    let _ = sink.flush();
                }
            }
            Err(err)
        }
    }
}

fn header() -> Header {
    let mut release = [0u8; RELEASE_LEN];
    shim::current::release(&mut release);
    let mut h = Header {
        format_version: FORMAT_VERSION,
        arch: ARCH_X86_64,
        flags: 0,
        page_size: PAGE_SIZE as u32,
        xstate_size: shim::current::xstate_size(),
        xfeatures: shim::current::xfeatures(),
        time_ns: shim::current::time_ns(),
        release: [0; RELEASE_LEN],
    };
    let end = release
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(RELEASE_LEN - 1);
    h.set_release(&release[..end]);
    h
}

/// Every refusal that does not need the image: the task, its files, its mappings, its
/// interrupted system call.
fn precheck(task: &TaskRef) -> Result<(), Refusal> {
    if let Some(r) = task.refusal() {
        return Err(r);
    }
    fs::precheck(task)?;
    files::precheck(task)?;
    mm::precheck(task)?;
    regs::precheck(task)?;
    Ok(())
}

fn save_all(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    task::save_tree(cx)?;
    task::save(cx)?;
    fs::save(cx)?;
    files::save(cx)?;
    mm::save(cx)?;
    signals::save(cx)?;
    task::save_itimers(cx)?;
    regs::save(cx)?;
    Ok(())
}
