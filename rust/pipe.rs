// SPDX-License-Identifier: GPL-2.0

//! Anonymous pipes: PIPE, both ends and the bytes buffered in them.
//!
//! A PIPE record defines a pipe the first time a FILE record opens one of its ends; the data it
//! holds is read without being consumed, and written back through the new write end at restart.

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, SaveCx, PAGE_SIZE};
use crate::error::{Context, CrError, CrResult};
use crate::format::{ErrorKind, PipeRecord, RecordKind};
use crate::objhash::Object;
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

/// PIPE: a new pipe, refilled.
pub(crate) fn load(cx: &mut LoadCx<'_>) -> CrResult {
    let p = LoadCx::decode(cx.input, records::Pipe::decode)?;
    if p.rec.capacity != DEFAULT_CAPACITY {
        return Err(cx.malformed(ErrorKind::BadField("pipe capacity")));
    }
    let (read, write) = new_pipe().map_err(|e| cx.fail(e, "creating a pipe failed"))?;
    if !p.data.is_empty() {
        // An empty pipe of this capacity takes it all without blocking.
        write
            .write_all(p.data)
            .map_err(|e| cx.fail(e, "refilling a pipe failed"))?;
    }
    let objref = p.rec.objref;
    cx.objects
        .define(
            objref,
            Object::Pipe {
                read,
                write,
                read_taken: false,
                write_taken: false,
            },
        )
        .map_err(|e| e.at(cx.input.offset()))
}

/// An open file of pipe `id`, as a FILE record with `flags` describes it: the end the pipe was
/// created with the first time, a new open file of that end after (two opens of one end, by
/// /proc/PID/fd, are two files with their own flags), and always a new one for both ends.
pub(crate) fn open_end(cx: &mut LoadCx<'_>, id: u32, flags: u32) -> CrResult<ARef<File>> {
    let offset = cx.input.offset();
    let Ok(Object::Pipe {
        read,
        write,
        read_taken,
        write_taken,
    }) = cx.objects.get_mut(id)
    else {
        return Err(CrError::malformed(ErrorKind::BadObjref(id)).at(offset));
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
