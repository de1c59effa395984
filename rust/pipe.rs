// SPDX-License-Identifier: GPL-2.0

//! Pipes: PIPE, the bytes buffered in an anonymous pipe or a FIFO (named pipe), and its ends.
//!
//! A PIPE record defines a pipe the first time a FILE record opens one of its ends; the data it
//! holds is read without being consumed, with the length of each buffer when one of them is a
//! packet (packet mode, `O_DIRECT`: a read returns one packet alone). At restart, the first FILE
//! record that opens it says what it is: an anonymous pipe is created and refilled through its
//! new write end; a FIFO is opened by its path, for reading and writing, and refilled through
//! that open file, which keeps it open until the restart ends. With a reader and a writer
//! present, every open of the FIFO for one end succeeds at once, as it did for the program, and
//! the bytes stay buffered when the restart lets go of it. Either gets its capacity first, as
//! `fcntl(F_SETPIPE_SZ)` gives it, within the restoring user's limits.

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, SaveCx, PAGE_SIZE};
use crate::error::{Context, CrError, CrResult};
use crate::format::{ErrorKind, FileRecord, PipeRecord, RecordKind};
use crate::objhash::{Object, Pipe, PipeContents};
use crate::records::{self, PipeSegment};
use crate::shim::{new_pipe, FileExt};

/// What the pipe behind a pipe end holds: its capacity, its bytes and, when one of its
/// buffers is a packet, every buffer's length with [`crate::format::PIPE_PACKET`].
struct Held {
    capacity: u32,
    data: KVVec<u8>,
    words: KVec<u32>,
}

/// Reads what the pipe behind `end` holds, refusing what restart could not give back.
fn read(end: &File) -> CrResult<Held> {
    let pipe = end
        .pipe()
        .ok_or(CrError::new(EINVAL, "a pipe end is no longer one"))?;
    let info = pipe.info();
    capacity_ok(info.capacity)?;
    let pages = info.capacity as usize / PAGE_SIZE;
    let mut data = KVVec::from_elem(0u8, info.len as usize, GFP_KERNEL)?;
    let mut words = KVec::new();
    if info.packets != 0 {
        words = KVec::from_elem(0u32, (info.buffers as usize).min(pages), GFP_KERNEL)?;
    }
    let (len, count) = pipe.peek(&mut data, &mut words);
    data.truncate(len);
    words.truncate(count);
    if packet_would_merge(words.iter().map(|&w| PipeSegment::from_word(w))) {
        return Err(CrError::unsupported(
            "pipe holding a packet right after plain data short of a page (restart would merge them)",
        ));
    }
    Ok(Held {
        capacity: info.capacity,
        data,
        words,
    })
}

/// Refuses a pipe end whose pipe restart could not give back, before the image is written;
/// only a pipe that holds packets has its bytes read for that.
pub(crate) fn check(end: &File) -> CrResult {
    match end.pipe().map(|p| p.info()) {
        Some(info) if info.watch_queue != 0 => {
            Err(CrError::unsupported("notification pipe not supported"))
        }
        Some(info) if info.packets == 0 => capacity_ok(info.capacity),
        _ => read(end).map(drop),
    }
}

fn capacity_ok(capacity: u32) -> CrResult {
    let pages = capacity as usize / PAGE_SIZE;
    if !(capacity as usize).is_multiple_of(PAGE_SIZE) || !pages.is_power_of_two() {
        // F_SETPIPE_SZ only makes powers of two; a notification pipe is refused by `check`.
        return Err(CrError::unsupported(
            "pipe whose capacity is not a power of two pages",
        ));
    }
    Ok(())
}

/// The pipe behind pipe end `end`: its objref, after writing its PIPE record if it is new.
pub(crate) fn save(cx: &mut SaveCx<'_>, end: &File) -> CrResult<u32> {
    let pipe = end
        .pipe()
        .ok_or(CrError::new(EINVAL, "a pipe end is no longer one"))?;
    let objs = &mut *cx.objs;
    let (id, new) = objs
        .pipes
        .get_or_allocate(pipe.info().pipe, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    // Read again: the tree is frozen, but with --allow-leaks a task outside it may have
    // written since the check.
    let held = read(end)?;
    let mut segments = KVec::with_capacity(held.words.len() * 4, GFP_KERNEL)?;
    for word in held.words.iter() {
        segments.extend_from_slice(&word.to_le_bytes(), GFP_KERNEL)?;
    }
    let rec = PipeRecord {
        objref: id,
        capacity: held.capacity,
        data_len: held.data.len() as u32,
        segments: held.words.len() as u32,
    };
    cx.record(RecordKind::Pipe, &[&rec.encode(), &held.data, &segments])?;
    Ok(id)
}

/// Whether refilling a pipe with `buffers` would merge a packet into the plain data before it:
/// the kernel appends a write shorter than a page to the last buffer when that one holds plain
/// data with room left, and restart writes a run of plain buffers as one stream, which leaves
/// its last page as full as the run's length says, not as full as the buffer was at
/// checkpoint.
fn packet_would_merge(buffers: impl IntoIterator<Item = PipeSegment>) -> bool {
    let mut plain_run = 0usize;
    for PipeSegment { len, packet } in buffers {
        if !packet {
            plain_run += len;
            continue;
        }
        if plain_run != 0 {
            let last_page = (plain_run - 1) % PAGE_SIZE + 1;
            if !len.is_multiple_of(PAGE_SIZE) && last_page + len <= PAGE_SIZE {
                return true;
            }
        }
        plain_run = 0;
    }
    false
}

/// PIPE: the contents of a pipe, kept until a FILE record says what the pipe is.
pub(crate) fn load(cx: &mut LoadCx<'_>) -> CrResult {
    let p = LoadCx::decode(cx.input, records::Pipe::decode)?;
    let mut data = KVVec::with_capacity(p.data.len(), GFP_KERNEL)?;
    data.extend_from_slice(p.data, GFP_KERNEL)?;
    let mut segments = KVec::with_capacity(p.rec.segments as usize, GFP_KERNEL)?;
    for segment in p.segments() {
        segments.push(segment, GFP_KERNEL)?;
    }
    if packet_would_merge(segments.iter().copied()) {
        return Err(cx.malformed(ErrorKind::BadField("pipe packet after plain data")));
    }
    let contents = PipeContents {
        capacity: p.rec.capacity,
        data,
        segments,
    };
    let objref = p.rec.objref;
    cx.objects
        .define(objref, Object::Pipe(Pipe::Unopened(contents)))
        .map_err(|e| e.at(cx.input.offset()))
}

/// Gives the new pipe behind `writer` its checkpointed capacity and bytes. `writer` is a write
/// end with status flags `flags`, which it has again after; packets are written in packet mode.
fn refill(writer: &File, flags: u32, contents: &PipeContents) -> CrResult {
    let pipe = writer
        .pipe()
        .ok_or(CrError::new(EINVAL, "a new pipe end is not one"))?;
    if pipe.info().capacity != contents.capacity {
        let now = pipe
            .set_capacity(contents.capacity)
            .why("giving a pipe its capacity (F_SETPIPE_SZ) failed")?;
        if now != contents.capacity {
            return Err(CrError::new(
                EINVAL,
                "a pipe got another capacity than it had (F_SETPIPE_SZ)",
            ));
        }
    }
    // The pipe is empty and as large as it was: every write fits without blocking. The plain
    // bytes between two packets go in one write, each packet in one of its own.
    let mut at = 0;
    let mut plain_from = 0;
    for &PipeSegment { len, packet } in contents.segments.iter() {
        if packet {
            write_as(writer, &contents.data[plain_from..at], flags)?;
            write_as(
                writer,
                &contents.data[at..at + len],
                flags | bindings::O_DIRECT,
            )?;
            plain_from = at + len;
        }
        at += len;
    }
    write_as(writer, &contents.data[plain_from..], flags)
}

/// Writes `bytes` through `writer` with status flags `flags` (`O_DIRECT`: as one packet), then
/// sets them back to what they were without it.
fn write_as(writer: &File, bytes: &[u8], flags: u32) -> CrResult {
    if bytes.is_empty() {
        return Ok(());
    }
    writer.set_status_flags(flags);
    let written = writer.write_all(bytes).why("refilling a pipe failed");
    writer.set_status_flags(flags & !bindings::O_DIRECT);
    written
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
/// ends. Its status flags, packet mode among them, are the caller's to set.
pub(crate) fn open_end(cx: &mut LoadCx<'_>, id: u32, flags: u32) -> CrResult<ARef<File>> {
    let offset = cx.input.offset();
    let pipe = pipe_of(cx, id)?;
    if let Pipe::Unopened(contents) = &*pipe {
        let (read, write) =
            new_pipe().map_err(|e| CrError::new(e, "creating a pipe failed").at(offset))?;
        refill(&write, bindings::O_WRONLY, contents).map_err(|e| e.at(offset))?;
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
    // Opening a pipe's inode with O_DIRECT fails (it has no direct I/O); packet mode is a
    // status flag, set after.
    end.reopen_same(flags & !bindings::O_DIRECT)
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
    if let Pipe::Unopened(contents) = &*pipe {
        let holder_flags = bindings::O_RDWR | bindings::O_NONBLOCK;
        let holder = open(holder_flags)?;
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
        refill(&holder, holder_flags, contents).map_err(|e| e.at(offset))?;
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
    // The holder is reader and writer both: no open of one end waits for the other. A FIFO
    // opened with O_DIRECT fails like a pipe; packet mode is set after, with the other flags.
    let file = open((rec.flags & !bindings::O_DIRECT) | bindings::O_NONBLOCK)?;
    file.set_status_flags(rec.flags);
    Ok(file)
}
