// SPDX-License-Identifier: GPL-2.0

//! Anonymous pipes: both ends, and the bytes buffered in them.
//!
//! A PIPE record defines a pipe the first time a FILE record opens one of its ends; the data it
//! holds is read without being consumed, and written back through the new write end at restart.

use kernel::prelude::*;

use crate::checkpoint::{refuse, SaveCx, Stop};
use crate::format::{self, ErrorKind, PipeRecord, RecordKind};
use crate::image::{Failure, ImageIn};
use crate::objhash::{LoadObjects, Object};
use crate::shim::FileRef;

/// A pipe's default capacity: 16 pages. Restart cannot resize a pipe (F_SETPIPE_SZ is not
/// reachable from a module), so others are refused.
const DEFAULT_CAPACITY: u32 = 16 * crate::checkpoint::PAGE_SIZE as u32;

/// `O_ACCMODE` and its values.
const O_ACCMODE: u32 = 3;
const O_RDONLY: u32 = 0;
const O_WRONLY: u32 = 1;
const O_RDWR: u32 = 2;

/// The pipe behind `end`: its objref, after writing its PIPE record if it is new.
pub(crate) fn save(cx: &mut SaveCx<'_>, end: &FileRef) -> Result<u32, Stop> {
    let info = end.pipe_info()?;
    let objs = &mut *cx.objs;
    let (id, new) = objs.pipes.get_or_allocate(info.pipe, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    if info.capacity != DEFAULT_CAPACITY {
        return Err(refuse(
            EOPNOTSUPP,
            "pipe with a resized buffer (F_SETPIPE_SZ) not supported yet",
        ));
    }
    let mut data = KVVec::from_elem(0u8, info.capacity as usize, GFP_KERNEL)?;
    let len = end.pipe_peek(&mut data);
    let rec = PipeRecord {
        objref: id,
        capacity: info.capacity,
        data_len: len as u32,
        reserved: 0,
    };
    cx.record(RecordKind::Pipe, &[&rec.encode(), &data[..len]])?;
    Ok(id)
}

/// Reads a PIPE record (the caller has just read it): a new pipe, refilled.
pub(crate) fn load(input: &mut ImageIn, objects: &mut LoadObjects) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, data) = format::split_fixed(RecordKind::Pipe, p, PipeRecord::LEN, PipeRecord::decode)
        .map_err(|k| input.malformed(k))?;
    if rec.capacity != DEFAULT_CAPACITY
        || rec.data_len > rec.capacity
        || data.len() != rec.data_len as usize
        || rec.reserved != 0
    {
        return Err(input.malformed(ErrorKind::BadField("pipe")));
    }
    let (read, write) = FileRef::new_pipe().map_err(|e| input.fail(e, "creating a pipe failed"))?;
    if !data.is_empty() {
        // An empty pipe of this capacity takes it all without blocking.
        write
            .write_all(data)
            .map_err(|e| input.fail(e, "refilling a pipe failed"))?;
    }
    objects
        .define(
            rec.objref,
            Object::Pipe {
                read,
                write,
                read_taken: false,
                write_taken: false,
            },
        )
        .map_err(|f| f.at(input))
}

/// An open file of pipe `id`, as a FILE record with `flags` describes it: the end the pipe was
/// created with the first time, a new open file of that end after (two opens of one end, by
/// /proc/PID/fd, are two files with their own flags), and always a new one for both ends.
pub(crate) fn open_end(
    input: &ImageIn,
    objects: &mut LoadObjects,
    id: u32,
    flags: u32,
) -> Result<FileRef, Failure> {
    let Ok(Object::Pipe {
        read,
        write,
        read_taken,
        write_taken,
    }) = objects.get_mut(id)
    else {
        return Err(input.malformed(ErrorKind::BadObjref(id)));
    };
    let (end, taken) = match flags & O_ACCMODE {
        O_RDONLY => (&*read, read_taken),
        O_WRONLY => (&*write, write_taken),
        O_RDWR => (&*read, &mut true),
        _ => return Err(input.malformed(ErrorKind::BadField("pipe end"))),
    };
    if !*taken {
        *taken = true;
        return Ok(end.clone());
    }
    end.reopen_same(flags)
        .map_err(|e| input.fail(e, "opening a pipe end again failed"))
}
