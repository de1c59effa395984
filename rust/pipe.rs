// SPDX-License-Identifier: GPL-2.0

//! Pipes: PIPE, the bytes buffered in an anonymous pipe or a FIFO (named pipe), and its ends.
//!
//! A PIPE record defines a pipe the first time a FILE record opens one of its ends; the data it
//! holds is read without being consumed. At restart, the first FILE record that opens it says
//! what it is: an anonymous pipe is created and refilled through its new write end; a FIFO is
//! opened by its path, for reading and writing, and refilled through that open file, which
//! keeps it open until the restart ends. With a reader and a writer present, every open of the
//! FIFO for one end succeeds at once, as it did for the program, and the bytes stay buffered
//! when the restart lets go of it.

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, SaveCx, PAGE_SIZE};
use crate::error::{Context, CrError, CrResult};
use crate::format::{ErrorKind, FileRecord, PipeRecord, RecordKind};
use crate::objhash::{Object, Pipe};
use crate::records;
use crate::shim::{new_pipe, FileExt};

/// A pipe's default capacity: 16 pages. Restart cannot resize a pipe (F_SETPIPE_SZ is not
/// reachable from a module), so others are refused.
const DEFAULT_CAPACITY: u32 = 16 * PAGE_SIZE as u32;

/// The pipe behind pipe end `end`: its objref, after writing its PIPE record if it is new.
pub(crate) fn save(cx: &mut SaveCx<'_>, end: &File) -> CrResult<u32> {
    let pipe = end
        .pipe()
        .ok_or(CrError::new(EINVAL, "a pipe end is no longer one"))?;
    let info = pipe.info();
    let objs = &mut *cx.objs;
    let (id, new) = objs.pipes.get_or_allocate(info.pipe, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    if info.capacity != DEFAULT_CAPACITY {
        return Err(CrError::unsupported(
            "pipe with a resized buffer (F_SETPIPE_SZ) not supported yet",
        ));
    }
    let mut data = KVVec::from_elem(0u8, info.capacity as usize, GFP_KERNEL)?;
    let len = pipe.peek(&mut data);
    let rec = PipeRecord {
        objref: id,
        capacity: info.capacity,
        data_len: len as u32,
        reserved: 0,
    };
    cx.record(RecordKind::Pipe, &[&rec.encode(), &data[..len]])?;
    Ok(id)
}

/// PIPE: the bytes of a pipe, kept until a FILE record says what the pipe is.
pub(crate) fn load(cx: &mut LoadCx<'_>) -> CrResult {
    let p = LoadCx::decode(cx.input, records::Pipe::decode)?;
    if p.rec.capacity != DEFAULT_CAPACITY {
        return Err(cx.malformed(ErrorKind::BadField("pipe capacity")));
    }
    let mut data = KVVec::with_capacity(p.data.len(), GFP_KERNEL)?;
    data.extend_from_slice(p.data, GFP_KERNEL)?;
    let objref = p.rec.objref;
    cx.objects
        .define(objref, Object::Pipe(Pipe::Unopened(data)))
        .map_err(|e| e.at(cx.input.offset()))
}

/// The pipe `id` names, to open.
fn pipe_of<'a>(cx: &'a mut LoadCx<'_>, id: u32) -> CrResult<&'a mut Pipe> {
    let offset = cx.input.offset();
    match cx.objects.get_mut(id) {
        Ok(Object::Pipe(pipe)) => Ok(pipe),
        _ => Err(CrError::malformed(ErrorKind::BadObjref(id)).at(offset)),
    }
}

/// An open file of anonymous pipe `id`, as a FILE record with `flags` describes it: the end the
/// pipe was created with the first time, a new open file of that end after (two opens of one
/// end, by /proc/PID/fd, are two files with their own flags), and always a new one for both
/// ends.
pub(crate) fn open_end(cx: &mut LoadCx<'_>, id: u32, flags: u32) -> CrResult<ARef<File>> {
    let offset = cx.input.offset();
    let pipe = pipe_of(cx, id)?;
    if let Pipe::Unopened(data) = &mut *pipe {
        let (read, write) =
            new_pipe().map_err(|e| CrError::new(e, "creating a pipe failed").at(offset))?;
        // An empty pipe of this capacity takes it all without blocking.
        write
            .write_all(data)
            .map_err(|e| CrError::new(e, "refilling a pipe failed").at(offset))?;
        *pipe = Pipe::Anonymous {
            read,
            write,
            read_taken: false,
            write_taken: false,
        };
    }
    let Pipe::Anonymous {
        read,
        write,
        read_taken,
        write_taken,
    } = pipe
    else {
        return Err(
            CrError::malformed(ErrorKind::BadField("pipe opened as a FIFO too")).at(offset),
        );
    };
    let mut both = true;
    let (end, taken) = match flags & bindings::O_ACCMODE {
        bindings::O_RDONLY => (&*read, read_taken),
        bindings::O_WRONLY => (&*write, write_taken),
        bindings::O_RDWR => (&*read, &mut both),
        _ => return Err(CrError::malformed(ErrorKind::BadField("pipe end")).at(offset)),
    };
    if !*taken {
        *taken = true;
        return Ok(end.clone());
    }
    end.reopen_same(flags)
        .why("opening a pipe end again failed")
        .map_err(|e| e.at(offset))
}

/// An open file of FIFO `rec.object`, with the flags of `rec`, which `open` opens at its path
/// with the flags it is given and checks to be the checkpointed inode.
pub(crate) fn open_fifo(
    cx: &mut LoadCx<'_>,
    rec: &FileRecord,
    open: impl Fn(u32) -> CrResult<ARef<File>>,
) -> CrResult<ARef<File>> {
    let offset = cx.input.offset();
    let dry_run = cx.dry_run;
    let pipe = pipe_of(cx, rec.object)?;
    if dry_run {
        // Opening a FIFO wakes whoever waits to open its other end: a dry run only looks.
        return open(bindings::O_PATH);
    }
    if let Pipe::Unopened(data) = &mut *pipe {
        let holder = open(bindings::O_RDWR | bindings::O_NONBLOCK)?;
        let Some(info) = holder.pipe().map(|p| p.info()) else {
            return Err(CrError::new(ESTALE, "a checkpointed FIFO is no longer one").at(offset));
        };
        if info.len != 0 || info.readers != 1 || info.writers != 1 {
            // Its bytes would mix with the image's, or someone else's reads take them.
            return Err(CrError::new(
                EBUSY,
                "a checkpointed FIFO is open outside the restart, or holds data",
            )
            .at(offset));
        }
        if info.capacity != DEFAULT_CAPACITY {
            return Err(CrError::new(EBUSY, "a checkpointed FIFO was resized").at(offset));
        }
        holder
            .write_all(data)
            .map_err(|e| CrError::new(e, "refilling a FIFO failed").at(offset))?;
        *pipe = Pipe::Named(holder);
    }
    let Pipe::Named(holder) = pipe else {
        return Err(
            CrError::malformed(ErrorKind::BadField("FIFO opened as a pipe too")).at(offset),
        );
    };
    let held = holder.facts();
    if held.dev != rec.dev || held.ino != rec.ino {
        return Err(CrError::malformed(ErrorKind::BadField("FIFO identity")).at(offset));
    }
    // The holder is reader and writer both: no open of one end waits for the other.
    let file = open(rec.flags | bindings::O_NONBLOCK)?;
    file.set_status_flags(rec.flags);
    Ok(file)
}
