// SPDX-License-Identifier: GPL-2.0

//! The one table of a task's section: every kind of state a task has, in stream order, with
//! what reads it at checkpoint, writes it, reads it back at restart and applies it.
//!
//! The layout itself (which records, when) is [`records::SECTION`], shared with the tools and
//! checked against Documentation/cr.rst; [`PARTS`] adds the module's halves. Checkpoint and
//! restart only walk this table. A new kind of state is one [`Part`] here, its records in
//! `records.rs`, and its own file.

use kernel::{prelude::*, task::Task};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{CrError, CrResult};
use crate::format::ErrorKind;
use crate::records::{PartSpec, Shared, When, SECTION};
use crate::tracking::CopiedSpace;
use crate::tree::Defines;
use crate::{files, fs, mm, regs, signals, task};

/// What a checkpoint read of one task before it writes anything: state that is refused or
/// saved from one reading, and that leak detection looks at.
#[derive(Default)]
pub(crate) struct Prepared {
    pub(crate) fs: Option<fs::Paths>,
    pub(crate) files: Option<files::Table>,
    pub(crate) mm: Option<mm::Layout>,
    /// What was copied of the address space before, if it is tracked.
    pub(crate) copied: Option<CopiedSpace>,
    pub(crate) cpu: Option<regs::Cpu>,
}

/// What a restart read of one task's section, kept until the whole stream is known good.
#[derive(Default)]
pub(crate) struct Kept {
    pub(crate) leader: bool,
    /// The signals the restore itself sends this process: its zombie children's exit signals
    /// and SIGCHLD (a ghost's), bit `n - 1` for signal `n`.
    pub(crate) sent_signals: u64,
    pid: u32,
    tgid: u32,
    pub(crate) task: task::KeptTask,
    fs: fs::Paths,
    files: files::KeptFiles,
    mm: mm::KeptMm,
    signals: signals::KeptSignals,
    pub(crate) regs: regs::KeptRegs,
}

/// When the parts are applied, in this order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Task scalars and process limits (the file limit lets the descriptors in).
    Task,
    /// The descriptor table.
    Files,
    /// Root and cwd.
    Fs,
    /// Handlers, then the blocked mask and the pending signals.
    Signals,
    /// The XSAVE area, and the registers' installation prepared.
    Cpu,
    /// Credentials: last, since everything before may need the restarter's privileges.
    Creds,
}

const STAGES: [Stage; 6] = [
    Stage::Task,
    Stage::Files,
    Stage::Fs,
    Stage::Signals,
    Stage::Cpu,
    Stage::Creds,
];

/// Makes the task the checkpointed one for a part, once the stream is known good.
type Apply = fn(&mut Kept) -> CrResult;

/// One part of the section: its layout, and the module's halves.
pub(crate) struct Part {
    pub(crate) spec: &'static PartSpec,
    /// Reads and checks the state before the image is written, if the part keeps a reading.
    prepare: Option<fn(&Task, &mut Prepared) -> CrResult>,
    /// Writes the part's records.
    save: fn(&mut SaveCx<'_>, &mut Prepared) -> CrResult,
    /// Reads one of the part's records, whose kind is given.
    load: fn(&mut LoadCx<'_>, &mut Kept, u32) -> CrResult,
    /// After the part's last record.
    finish: Option<fn(&mut LoadCx<'_>, &mut Kept) -> CrResult>,
    /// Applies the part, at its stage.
    apply: Option<(Stage, Apply)>,
}

/// A part that read nothing before was asked to save from its reading.
const NOT_PREPARED: CrError = CrError::new(EINVAL, "a part of the section was not read");

/// The parts of a section, in stream order, one per [`SECTION`] entry.
pub(crate) const PARTS: [Part; 12] = [
    Part {
        spec: &SECTION[0],
        prepare: None,
        save: |cx, _| task::save(cx),
        load: |cx, k, _| task::load(cx, &mut k.task, k.pid, k.tgid),
        finish: None,
        apply: Some((Stage::Task, |k| task::apply(&k.task))),
    },
    Part {
        spec: &SECTION[1],
        prepare: None,
        save: |cx, _| task::save_creds(cx),
        load: |cx, k, _| task::load_creds(cx, &mut k.task),
        finish: None,
        apply: Some((Stage::Creds, |k| task::apply_creds(&k.task))),
    },
    Part {
        spec: &SECTION[2],
        prepare: None,
        save: |cx, _| task::save_rlimits(cx),
        load: |cx, k, _| task::load_rlimits(cx, &mut k.task),
        finish: None,
        apply: Some((Stage::Task, |k| task::apply_rlimits(&k.task))),
    },
    Part {
        spec: &SECTION[3],
        prepare: Some(|t, p| {
            p.fs = Some(fs::Paths::read(t)?);
            Ok(())
        }),
        save: |cx, p| fs::save(cx, p.fs.as_ref().ok_or(NOT_PREPARED)?),
        load: |cx, k, _| fs::load(cx, &mut k.fs),
        finish: None,
        apply: Some((Stage::Fs, |k| fs::apply(&k.fs))),
    },
    Part {
        spec: &SECTION[4],
        prepare: Some(|t, p| {
            p.files = Some(files::Table::read(t)?);
            Ok(())
        }),
        save: |cx, p| files::save(cx, p.files.as_ref().ok_or(NOT_PREPARED)?),
        load: |cx, k, kind| files::load(cx, &mut k.files, kind),
        finish: Some(|cx, _| {
            cx.pages = Default::default();
            Ok(())
        }),
        apply: Some((Stage::Files, |k| files::apply(&k.files))),
    },
    Part {
        spec: &SECTION[5],
        prepare: Some(|t, p| {
            p.mm = Some(mm::Layout::read(t)?);
            Ok(())
        }),
        save: |cx, p| mm::save(cx, p.mm.as_ref().ok_or(NOT_PREPARED)?, p.copied.as_mut()),
        load: |cx, k, kind| mm::load(cx, &mut k.mm, kind),
        finish: Some(|cx, k| mm::finish(cx, &mut k.mm)),
        apply: None,
    },
    Part {
        spec: &SECTION[6],
        prepare: None,
        save: |cx, _| signals::save_handlers(cx),
        load: |cx, k, _| signals::load_handlers(cx, &mut k.signals),
        finish: None,
        apply: Some((Stage::Signals, |k| signals::apply_handlers(&k.signals))),
    },
    Part {
        spec: &SECTION[7],
        prepare: None,
        save: |cx, _| signals::save_pending(cx, false),
        load: |cx, k, _| signals::load_pending(cx, &mut k.signals, false),
        finish: None,
        apply: Some((Stage::Signals, |k| {
            signals::apply_pending(&k.signals, k.task.info.blocked, k.leader, k.sent_signals)
        })),
    },
    Part {
        spec: &SECTION[8],
        prepare: None,
        save: |cx, _| signals::save_pending(cx, true),
        load: |cx, k, _| signals::load_pending(cx, &mut k.signals, true),
        finish: None,
        // Queued by the task's own queue's apply, which holds both.
        apply: None,
    },
    Part {
        spec: &SECTION[9],
        prepare: None,
        save: |cx, _| task::save_itimers(cx),
        load: |cx, k, _| task::load_itimers(cx, &mut k.task),
        finish: None,
        apply: Some((Stage::Task, |k| task::apply_itimers(&k.task))),
    },
    Part {
        spec: &SECTION[10],
        prepare: Some(|t, p| {
            p.cpu = Some(regs::Cpu::read(t)?);
            Ok(())
        }),
        save: |cx, p| regs::save(cx, p.cpu.as_ref().ok_or(NOT_PREPARED)?),
        load: |cx, k, _| regs::load(cx, &mut k.regs),
        finish: None,
        apply: Some((Stage::Cpu, |k| regs::apply(&mut k.regs))),
    },
    Part {
        spec: &SECTION[11],
        prepare: None,
        save: |cx, _| regs::save_xstate(cx),
        load: |cx, k, _| regs::load_xstate(cx, &mut k.regs),
        finish: None,
        apply: None,
    },
];

/// Whether `part` is in the section of a task that is (or not) its process's first thread and
/// is the first to use the shared state `defines` says.
fn present(spec: &PartSpec, leader: bool, defines: Defines) -> bool {
    match spec.when {
        When::Always => true,
        When::Leader => leader,
        When::Defines(Shared::Mm) => defines.mm,
        When::Defines(Shared::Files) => defines.files,
        When::Defines(Shared::Fs) => defines.fs,
        When::Defines(Shared::Sighand) => defines.sighand,
    }
}

/// Reads and checks, before anything is written, the state of a task whose section has these
/// parts.
pub(crate) fn prepare(task: &Task, leader: bool, defines: Defines) -> CrResult<Prepared> {
    let mut prepared = Prepared::default();
    for part in PARTS.iter().filter(|p| present(p.spec, leader, defines)) {
        if let Some(prepare) = part.prepare {
            prepare(task, &mut prepared)?;
        }
    }
    Ok(prepared)
}

/// Writes one task's section.
pub(crate) fn save(
    cx: &mut SaveCx<'_>,
    leader: bool,
    defines: Defines,
    prepared: &mut Prepared,
) -> CrResult {
    for part in PARTS.iter().filter(|p| present(p.spec, leader, defines)) {
        (part.save)(cx, prepared)?;
    }
    Ok(())
}

/// Reads one task's section into `kept`. This is the only reader of a section's records: it
/// takes each one and hands it to the part that owns it.
pub(crate) fn load(
    cx: &mut LoadCx<'_>,
    kept: &mut Kept,
    entry: &crate::format::TreeEntry,
    defines: Defines,
) -> CrResult {
    let leader = !entry.is_thread();
    kept.leader = leader;
    kept.pid = entry.pid;
    kept.tgid = entry.tgid;
    for part in PARTS.iter().filter(|p| present(p.spec, leader, defines)) {
        let mut first = true;
        loop {
            let kind = cx.input.peek()?;
            if !part.spec.takes(kind, first) {
                if first && !part.spec.may_be_empty {
                    return Err(cx.malformed(ErrorKind::UnknownKind(kind)));
                }
                break;
            }
            cx.input.take()?;
            (part.load)(cx, kept, kind)?;
            first = false;
        }
        if let Some(finish) = part.finish {
            finish(cx, kept)?;
        }
    }
    Ok(())
}

/// Makes the calling task the one `kept` describes, but for its registers: part by part, in
/// [`Stage`] order.
pub(crate) fn apply(kept: &mut Kept, defines: Defines) -> CrResult {
    let leader = kept.leader;
    for stage in STAGES {
        for part in PARTS.iter().filter(|p| present(p.spec, leader, defines)) {
            if let Some((s, apply)) = part.apply {
                if s == stage {
                    apply(kept)?;
                }
            }
        }
    }
    Ok(())
}
