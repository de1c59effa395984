// SPDX-License-Identifier: GPL-2.0

//! The file descriptor table: regular files, directories, memory devices and terminals.
//!
//! Files are reopened by path and must be the same inode; terminals are re-attached to the
//! restarting caller's terminal, as CRIU's shell-job does. Everything else is refused.

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop};
use crate::format::{self, file_kind, FileRecord, ObjrefSpace, RecordKind, PATH_MAX};
use crate::image::{Failure, ImageIn};
use crate::shim::{self, FileInfo, FileRef, Refusal, TaskRef};

/// Descriptors to install: number, file, close-on-exec; and the objref of each open file.
#[derive(Default)]
pub(crate) struct KeptFiles {
    fds: KVec<(u32, FileRef, bool)>,
    objrefs: KVec<u32>,
}

/// Descriptor numbers beyond this are refused (they would not fit a default RLIMIT_NOFILE).
const MAX_FD: u32 = 1 << 20;

/// Refuses a descriptor table with a file cr cannot reopen.
pub(crate) fn precheck(task: &TaskRef) -> Result<(), Refusal> {
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut fd = 0;
    while let Some((file, _)) = task.next_file(&mut fd) {
        let info = file.info()?;
        if info.kind != file_kind::TTY {
            file.path(&mut path)?;
        }
        if fd >= MAX_FD {
            return Err(Refusal {
                err: EOPNOTSUPP,
                reason: "descriptor number too large",
            });
        }
        fd += 1;
    }
    Ok(())
}

/// One FILE record per open descriptor.
///
/// Descriptors that share one open file (and so its offset and flags) get the same objref; the
/// first FILE record of an open file defines it.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut seen: KVec<(*mut shim::CFile, u32)> = KVec::new();
    let mut fd = 0;
    while let Some((file, cloexec)) = cx.task.next_file(&mut fd) {
        let objref = match seen.iter().find(|(f, _)| *f == file.as_ptr()) {
            Some((_, id)) => *id,
            None => {
                let id = cx.objrefs.allocate().ok_or(Stop::Failed(E2BIG))?;
                seen.push((file.as_ptr(), id), GFP_KERNEL)?;
                id
            }
        };
        let info = file.info()?;
        let p: &[u8] = if info.kind == file_kind::TTY {
            b"/dev/tty"
        } else {
            file.path(&mut path)?
        };
        let rec = FileRecord {
            fd,
            kind: info.kind,
            flags: info.flags,
            cloexec: u32::from(cloexec),
            pos: info.pos,
            dev: info.dev,
            ino: info.ino,
            rdev: info.rdev,
            mode: info.mode,
            size: info.size,
            path_len: p.len() as u32,
            objref,
        };
        cx.record(RecordKind::File, &[&rec.encode(), p])?;
        fd += 1;
    }
    Ok(())
}

/// Reads one FILE record (the caller has just read it) and reopens its file, or shares the
/// open file of an earlier record with the same objref.
pub(crate) fn load_one(
    input: &mut ImageIn,
    kept: &mut KeptFiles,
    objrefs: &mut ObjrefSpace,
) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::File, p, FileRecord::LEN, FileRecord::decode)
        .map_err(|k| input.malformed(k))?;
    let (path, rest) = format::take_path(rest, rec.path_len).map_err(|k| input.malformed(k))?;
    if !rest.is_empty() || rec.fd >= MAX_FD || rec.cloexec > 1 {
        return Err(input.malformed(format::ErrorKind::BadField("file")));
    }
    if kept.fds.last().is_some_and(|(last, _, _)| *last >= rec.fd) {
        return Err(input.malformed(format::ErrorKind::BadField("fd order")));
    }
    if objrefs.check_ref(rec.objref).is_ok() {
        let shared = kept
            .objrefs
            .iter()
            .position(|id| *id == rec.objref)
            .map(|i| kept.fds[i].1.clone())
            .ok_or_else(|| input.malformed(format::ErrorKind::BadObjref(rec.objref)))?;
        return push(input, kept, rec.fd, shared, rec.cloexec == 1, rec.objref);
    }
    objrefs.define(rec.objref).map_err(|k| input.malformed(k))?;
    let info = FileInfo {
        kind: rec.kind,
        flags: rec.flags,
        pos: rec.pos,
        dev: rec.dev,
        ino: rec.ino,
        rdev: rec.rdev,
        mode: rec.mode,
        size: rec.size,
    };
    let file = match rec.kind {
        file_kind::TTY => FileRef::caller_tty().ok_or_else(|| {
            input.fail(ENOTTY, "the image has a terminal but the caller has none")
        })?,
        file_kind::REGULAR | file_kind::DIRECTORY | file_kind::MEMORY_DEVICE => {
            let cpath = shim::nul_terminated(path).map_err(|e| input.fail(e, "out of memory"))?;
            FileRef::reopen(&cpath, &info).map_err(|e| {
                input.fail(
                    e,
                    if e == ESTALE {
                        "a file was replaced since the checkpoint (inode differs)"
                    } else {
                        "a checkpointed file cannot be reopened"
                    },
                )
            })?
        }
        _ => return Err(input.malformed(format::ErrorKind::BadField("file kind"))),
    };
    push(input, kept, rec.fd, file, rec.cloexec == 1, rec.objref)
}

fn push(
    input: &ImageIn,
    kept: &mut KeptFiles,
    fd: u32,
    file: FileRef,
    cloexec: bool,
    objref: u32,
) -> Result<(), Failure> {
    kept.fds
        .push((fd, file, cloexec), GFP_KERNEL)
        .and_then(|()| kept.objrefs.push(objref, GFP_KERNEL))
        .map_err(|e| input.fail(e.into(), "out of memory"))
}

/// Replaces the caller's descriptor table with the checkpointed one.
pub(crate) fn apply(kept: &KeptFiles) -> Result {
    shim::current::close_all_fds();
    for (fd, file, cloexec) in kept.fds.iter() {
        shim::current::install_fd(*fd, file, *cloexec)?;
    }
    Ok(())
}
