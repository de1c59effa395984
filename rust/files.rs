// SPDX-License-Identifier: GPL-2.0

//! The file descriptor table: regular files, directories, memory devices, terminals, pipes and
//! memfds.
//!
//! Files are reopened by path and must be the same inode; terminals are re-attached to the
//! restarting caller's terminal, as CRIU's shell-job does. Pipe ends and memfds open the PIPE
//! or SHMEM object their record names. Everything else is refused.

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop};
use crate::format::{self, file_kind, FileRecord, RecordKind, PATH_MAX};
use crate::image::{Failure, ImageIn};
use crate::objhash::{LoadObjects, Object};
use crate::shim::{self, FileInfo, FileRef, Refusal, TaskRef};
use crate::{pipe, shmem};

/// Descriptors to install: number, file, close-on-exec.
#[derive(Default)]
pub(crate) struct KeptFiles {
    fds: KVec<(u32, FileRef, bool)>,
}

/// Descriptor numbers beyond this are refused (they would not fit a default RLIMIT_NOFILE).
const MAX_FD: u32 = 1 << 20;

/// Refuses a descriptor table with a file cr cannot reopen.
pub(crate) fn precheck(task: &TaskRef) -> Result<(), Refusal> {
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut fd = 0;
    while let Some((file, _)) = task.next_file(&mut fd) {
        let info = file.info()?;
        if info.kind == file_kind::PIPE {
            file.pipe_info()?;
        } else if info.kind != file_kind::TTY && info.kind != file_kind::SHMEM {
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

/// One FILE record per open descriptor, each preceded by the PIPE or SHMEM record of the object
/// it opens, the first time.
///
/// Descriptors that share one open file (and so its offset and flags) get the same objref; the
/// first FILE record of an open file defines it.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let mut fd = 0;
    while let Some((file, cloexec)) = cx.task.next_file(&mut fd) {
        let info = file.info()?;
        let mut object = 0;
        let p: &[u8] = match info.kind {
            file_kind::TTY => b"/dev/tty",
            file_kind::PIPE => {
                object = pipe::save(cx, &file)?;
                b""
            }
            file_kind::SHMEM => {
                object = shmem::save(cx, &file)?;
                b""
            }
            _ => file.path(&mut path)?,
        };
        // After the PIPE or SHMEM record: ids are defined in stream order.
        let objs = &mut *cx.objs;
        let (objref, _) = objs
            .files
            .get_or_allocate(file.as_ptr() as u64, &mut objs.space)?;
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
            object,
            reserved: 0,
        };
        cx.record(RecordKind::File, &[&rec.encode(), p])?;
        fd += 1;
    }
    Ok(())
}

/// Reads the FILE records, and the PIPE and SHMEM records between them, up to the first record
/// of another kind (left for the next reader).
pub(crate) fn load(
    input: &mut ImageIn,
    kept: &mut KeptFiles,
    objects: &mut LoadObjects,
) -> Result<(), Failure> {
    loop {
        let kind = input.next()?;
        if kind == RecordKind::File as u32 {
            load_one(input, kept, objects)?;
        } else if kind == RecordKind::Pipe as u32 {
            pipe::load(input, objects)?;
        } else if kind == RecordKind::Shmem as u32 {
            shmem::load(input, objects)?;
        } else {
            input.replay();
            return Ok(());
        }
    }
}

/// Reads one FILE record (the caller has just read it) and reopens its file, or shares the
/// open file of an earlier record with the same objref.
fn load_one(
    input: &mut ImageIn,
    kept: &mut KeptFiles,
    objects: &mut LoadObjects,
) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::File, p, FileRecord::LEN, FileRecord::decode)
        .map_err(|k| input.malformed(k))?;
    // Pipes and shared memory have no path to reopen.
    let (path, rest) = match rec.kind {
        file_kind::PIPE | file_kind::SHMEM if rec.path_len == 0 => (&[][..], rest),
        _ => format::take_path(rest, rec.path_len).map_err(|k| input.malformed(k))?,
    };
    if !rest.is_empty() || rec.fd >= MAX_FD || rec.cloexec > 1 || rec.reserved != 0 {
        return Err(input.malformed(format::ErrorKind::BadField("file")));
    }
    if kept.fds.last().is_some_and(|(last, _, _)| *last >= rec.fd) {
        return Err(input.malformed(format::ErrorKind::BadField("fd order")));
    }
    if objects.is_defined(rec.objref) {
        let shared = match objects.get(rec.objref) {
            Ok(Object::File(f)) => f.clone(),
            _ => return Err(input.malformed(format::ErrorKind::BadObjref(rec.objref))),
        };
        return push(input, kept, rec.fd, shared, rec.cloexec == 1);
    }
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
        file_kind::PIPE => pipe::open_end(input, objects, rec.object, rec.flags)?,
        file_kind::SHMEM => shmem::open(input, objects, rec.object, rec.flags, rec.pos)?,
        _ => return Err(input.malformed(format::ErrorKind::BadField("file kind"))),
    };
    if rec.kind == file_kind::PIPE || rec.kind == file_kind::SHMEM {
        file.set_status_flags(rec.flags);
    }
    objects
        .define(rec.objref, Object::File(file.clone()))
        .map_err(|f| f.at(input))?;
    push(input, kept, rec.fd, file, rec.cloexec == 1)
}

fn push(
    input: &ImageIn,
    kept: &mut KeptFiles,
    fd: u32,
    file: FileRef,
    cloexec: bool,
) -> Result<(), Failure> {
    kept.fds
        .push((fd, file, cloexec), GFP_KERNEL)
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
