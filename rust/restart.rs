// SPDX-License-Identifier: GPL-2.0

//! `CR_IOC_RESTART`: the calling task becomes the checkpointed one.
//!
//! The image is read in the order checkpoint wrote it. Reading has three phases:
//!
//! 1. Until the first memory area, nothing of the task changes: files are reopened, paths
//!    resolved, everything else is only kept. An error returns to the caller as usual.
//! 2. The address space is then replaced as the VMA and PAGES records stream by. From here on an
//!    error kills the task, which never returns to user space half-restored.
//! 3. After the trailer has checked the whole stream, the kept state is applied, and the
//!    registers are installed on the way back to user space.

use kernel::prelude::*;

use crate::format::{self, ErrorKind, RecordKind, TreeEntry, TreeHeader};
use crate::image::{file_of_fd, Failure, ImageIn, Log};
use crate::shim;
use crate::uapi::OpArgs;
use crate::{files, fs, mm, regs, signals, task};

/// State read from the image and applied once the whole stream is known to be good.
#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) objrefs: format::ObjrefSpace,
    pub(crate) task: task::KeptTask,
    pub(crate) fs: fs::KeptFs,
    pub(crate) files: files::KeptFiles,
    pub(crate) signals: signals::KeptSignals,
    pub(crate) regs: regs::KeptRegs,
}

/// Runs the ioctl.
pub(crate) fn run(args: &OpArgs) -> Result<isize> {
    if !shim::current::capable_sys_admin() {
        return Err(EPERM);
    }
    if args.pid != 0 && args.pid != shim::current::vpid() {
        return Err(EINVAL);
    }
    let log = Log::open(args.logfd)?;
    if let Some(reason) = shim::current::restart_refusal() {
        log.line(format_args!("restart: {reason}"));
        return Err(EBUSY);
    }
    let image = file_of_fd(args.fd)?;
    // On the heap: several KiB that would otherwise sit on the kernel stack for the whole restore.
    let mut kept = KBox::new(Kept::default(), GFP_KERNEL)?;
    let mut no_return = false;
    let result = ImageIn::open(image).and_then(|mut input| {
        read_all(&mut input, &mut kept, &mut no_return)?;
        apply(&input, &mut kept)
    });
    match result {
        Ok(ax) => Ok(ax),
        Err(f) => {
            log.line(format_args!(
                "restart: error at image offset {}: {} (errno {})",
                f.offset,
                f.reason,
                -f.err.to_errno()
            ));
            if no_return {
                log.line(format_args!(
                    "restart: the task was partly restored: killing it"
                ));
                shim::current::kill();
            }
            Err(f.err)
        }
    }
}

fn read_all(input: &mut ImageIn, kept: &mut Kept, no_return: &mut bool) -> Result<(), Failure> {
    // The header is the first record; the validator already checked magic, version and arch.
    input.expect(RecordKind::Header)?;
    check_cpu(input)?;
    read_tree(input)?;
    task::load(input, &mut kept.task)?;
    fs::load(input, &mut kept.fs)?;
    // FILE records run until the MM record.
    let mut kind = input.next()?;
    while kind == RecordKind::File as u32 {
        files::load_one(input, &mut kept.files, &mut kept.objrefs)?;
        kind = input.next()?;
    }
    if kind != RecordKind::Mm as u32 {
        return Err(input.malformed(ErrorKind::UnknownKind(kind)));
    }
    mm::load(input, no_return)?;
    signals::load(input, &mut kept.signals)?;
    task::load_itimers(input, &mut kept.task)?;
    regs::load(input, &mut kept.regs)?;
    // The trailer: the validator checks count, length and CRC as it reads it.
    let kind = input.next()?;
    if kind != RecordKind::Trailer as u32 || !input.is_complete() {
        return Err(input.malformed(ErrorKind::UnknownKind(kind)));
    }
    Ok(())
}

/// The image's xstate must fit this CPU.
fn check_cpu(input: &ImageIn) -> Result<(), Failure> {
    let h = input
        .header()
        .ok_or_else(|| input.malformed(ErrorKind::MissingHeader))?;
    if h.page_size as usize != crate::checkpoint::PAGE_SIZE {
        return Err(input.fail(EINVAL, "image page size differs from this kernel's"));
    }
    if h.xfeatures & !shim::current::xfeatures() != 0 {
        return Err(input.fail(EINVAL, "image uses CPU state components this CPU lacks"));
    }
    if h.xstate_size != shim::current::xstate_size() {
        return Err(input.fail(EINVAL, "image's XSAVE layout differs from this CPU's"));
    }
    Ok(())
}

fn read_tree(input: &mut ImageIn) -> Result<(), Failure> {
    input.expect(RecordKind::Tree)?;
    let p = input.payload();
    let (head, rest) =
        format::split_fixed(RecordKind::Tree, p, TreeHeader::LEN, TreeHeader::decode)
            .map_err(|k| input.malformed(k))?;
    if head.count != 1 || rest.len() != TreeEntry::LEN {
        return Err(input.fail(
            EOPNOTSUPP,
            "images of more than one task are not supported yet",
        ));
    }
    let entry =
        TreeEntry::decode(rest).ok_or_else(|| input.malformed(ErrorKind::BadField("tree")))?;
    if entry.pid as i32 != shim::current::vpid() {
        return Err(input.fail(EINVAL, "restarting task's pid differs from the image's"));
    }
    Ok(())
}

/// Phase 3: everything read is good; make the task the checkpointed one.
fn apply(input: &ImageIn, kept: &mut Kept) -> Result<isize, Failure> {
    let at = |err: Error, what: &'static str| Failure {
        err,
        offset: input.offset(),
        reason: crate::image::Reason::Text(what),
    };
    // Task state first: its rlimits let the descriptors in, and its blocked mask must be in
    // place before the pending signals, so that re-queueing a blocked fatal signal does not kill
    // the task on the spot.
    task::apply(&kept.task).map_err(|e| at(e, "restoring task state failed"))?;
    files::apply(&kept.files).map_err(|e| at(e, "installing the files failed"))?;
    fs::apply(&kept.fs).map_err(|e| at(e, "restoring root and cwd failed"))?;
    signals::apply(&kept.signals).map_err(|e| at(e, "restoring signal state failed"))?;
    regs::apply(&kept.regs).map_err(|e| at(e, "restoring registers failed"))?;
    // Credentials last: everything above may need the restarter's privileges.
    task::apply_creds(&kept.task).map_err(|e| at(e, "restoring credentials failed"))?;
    // The return value is overwritten with the checkpointed registers on the way out.
    Ok(0)
}
