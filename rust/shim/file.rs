// SPDX-License-Identifier: GPL-2.0

//! Open files, through `ARef<File>`, and pipe ends, through [`PipeRef`].

use core::ffi::{c_int, c_long};

use kernel::{fs::File, prelude::*, sync::aref::ARef};

use super::ffi::{
    self, EpollItem, EventInfo, FileFacts, LockInfo, Piece, PipeInfo, ShmemInfo, CR_FF_PIPE,
    CR_PIPE_PACKET,
};
use super::{check, file_or_err};
use crate::format::{epoll_watch_flags, EpollWatch};

/// What this module reads of, and does to, an open file.
pub(crate) trait FileExt {
    /// Identity, type, filesystem and `CR_FF_*` facts; flags and position.
    fn facts(&self) -> FileFacts;
    /// Its path (or, with `dir`, its directory's) into `buf`, and whether that path no longer
    /// leads to it.
    fn path_into<'a>(&self, dir: bool, buf: &'a mut [u8]) -> Result<(&'a [u8], bool)>;
    /// The pipe behind a pipe end; `None` for any other file.
    fn pipe(&self) -> Option<PipeRef<'_>>;
    /// The state of an event file of `kind` (an `event_kind`); `EINVAL` if it is not one.
    fn event_state(&self, kind: u32) -> Result<EventInfo>;
    /// The watches of an epoll file.
    fn epoll_watches(&self) -> Result<KVec<Watched>>;
    /// Adds a watch of `target` to an epoll file, as `watch` describes it.
    fn epoll_add(&self, target: &File, watch: &EpollWatch) -> Result;
    /// A shmem object's size, seals, owner, mode and times.
    fn shmem_attrs(&self) -> ShmemInfo;
    /// Gives a shmem object restart created the owner, mode and times of `info`.
    fn set_shmem_attrs(&self, info: &ShmemInfo) -> Result;
    /// Seals a shmem object restart created.
    fn seal(&self, seals: u32) -> Result;
    /// The address spaces that map the file's inode, as identities (one per mapping).
    fn mapping_mms(&self) -> Result<KVec<u64>>;
    /// Another open file of what this one opens (a pipe end, a memfd), with `flags`.
    fn reopen_same(&self, flags: u32) -> Result<ARef<File>>;
    /// The locks held on its inode, up to `out.len()` of them into `out`; returns how many
    /// there are.
    fn locks(&self, out: &mut [LockInfo]) -> usize;
    /// Takes a lock of `kind` (a [`crate::format::lock_kind`]) through it, without waiting.
    fn take_lock(&self, kind: u32, write: bool, start: i64, end: i64) -> Result;
    /// Sets the position.
    fn set_pos(&self, pos: u64) -> Result;
    /// Whether the file has data (no hole) all through `[pos, pos + len)`; moves the position.
    fn holds(&self, pos: u64, len: u64) -> Result<bool>;
    /// Frees `[pos, pos + len)`, which then reads as a hole.
    fn punch(&self, pos: u64, len: u64) -> Result;
    /// Sets O_APPEND, O_NONBLOCK and O_NOATIME as in `flags`, and on a pipe or FIFO O_DIRECT
    /// (packet mode), as `fcntl(F_SETFL)` does.
    fn set_status_flags(&self, flags: u32);
    /// Reads `buf.len()` bytes at `pos`, leaving the position alone; `ENODATA` at the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result;
    /// Writes all of `buf` at `pos`, leaving the position alone.
    fn write_at(&self, buf: &[u8], pos: u64) -> Result;
    /// Writes all of `buf` at the position (appending where the file says so).
    fn write_all(&self, buf: &[u8]) -> Result;
    /// Reads exactly `buf.len()` bytes; `ENODATA` at a premature end.
    fn read_full(&self, buf: &mut [u8]) -> Result;
    /// Writes every piece of `groups`, in order, at the position, in one gathered write where
    /// the file takes it whole; `list` is room the caller keeps for the list of pieces.
    fn write_gathered(&self, groups: &[&[&[u8]]], list: &mut Gather) -> Result;
}

/// Room for the list of pieces of a gathered write, kept between writes.
#[derive(Default)]
pub(crate) struct Gather(KVec<Piece>);

impl FileExt for File {
    fn facts(&self) -> FileFacts {
        let mut facts = FileFacts::default();
        // SAFETY: the file is referenced; `facts` is a valid out-parameter.
        unsafe { ffi::cr_file_facts(self.as_ptr(), &mut facts) };
        facts
    }

    fn path_into<'a>(&self, dir: bool, buf: &'a mut [u8]) -> Result<(&'a [u8], bool)> {
        let mut unlinked = false;
        // SAFETY: the file is referenced; `buf` holds `buf.len()` bytes.
        let n = unsafe {
            ffi::cr_file_path(
                self.as_ptr(),
                dir,
                buf.as_mut_ptr().cast(),
                buf.len() as c_int,
                &mut unlinked,
            )
        };
        check(n)?;
        Ok((&buf[..n as usize], unlinked))
    }

    fn pipe(&self) -> Option<PipeRef<'_>> {
        (self.facts().facts & CR_FF_PIPE != 0).then_some(PipeRef(self))
    }

    fn event_state(&self, kind: u32) -> Result<EventInfo> {
        let mut info = EventInfo::default();
        // SAFETY: the file is referenced; `info` is a valid out-parameter.
        check(unsafe { ffi::cr_event_read(self.as_ptr(), kind, &mut info) })?;
        Ok(info)
    }

    fn epoll_watches(&self) -> Result<KVec<Watched>> {
        let mut room = 16;
        loop {
            let mut items = KVec::from_elem(EpollItem::default(), room, GFP_KERNEL)?;
            // Room for every reference before any is taken: none can leak on a failed push.
            let mut watched = KVec::with_capacity(room, GFP_KERNEL)?;
            // SAFETY: the file is referenced; `items` has room for `room` items.
            let n =
                unsafe { ffi::cr_epoll_items(self.as_ptr(), items.as_mut_ptr(), room as c_long) };
            let n = usize::try_from(n).map_err(|_| Error::from_errno(n as i32))?;
            if n > room {
                // Watches were added meanwhile: no reference was taken; ask again with room.
                room = n + 16;
                continue;
            }
            let mut all = true;
            for item in &items[..n] {
                // The shim gives no NULL file; were one there, it would hold no reference.
                let Ok(file) = file_or_err(item.file) else {
                    all = false;
                    continue;
                };
                let _ = watched.push_within_capacity(Watched {
                    file,
                    fd: item.fd,
                    events: item.events,
                    data: item.data,
                    ready: item.ready != 0,
                });
            }
            return if all { Ok(watched) } else { Err(EINVAL) };
        }
    }

    fn epoll_add(&self, target: &File, watch: &EpollWatch) -> Result {
        let item = EpollItem {
            file: target.as_ptr(),
            fd: watch.fd,
            events: watch.events,
            data: watch.data,
            ready: watch.flags & epoll_watch_flags::READY,
            reserved: 0,
        };
        // SAFETY: both files are referenced for the call; `item` is valid.
        check(unsafe { ffi::cr_epoll_add(self.as_ptr(), &item) })
    }

    fn shmem_attrs(&self) -> ShmemInfo {
        let mut info = ShmemInfo::default();
        // SAFETY: the file is referenced; `info` is a valid out-parameter.
        unsafe { ffi::cr_shmem_attrs(self.as_ptr(), &mut info) };
        info
    }

    fn set_shmem_attrs(&self, info: &ShmemInfo) -> Result {
        // SAFETY: the file is referenced; `info` is valid.
        check(unsafe { ffi::cr_shmem_set_attrs(self.as_ptr(), info) })
    }

    fn seal(&self, seals: u32) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { ffi::cr_shmem_seal(self.as_ptr(), seals) })
    }

    fn mapping_mms(&self) -> Result<KVec<u64>> {
        let mut out: KVec<u64> = KVec::with_capacity(16, GFP_KERNEL)?;
        loop {
            let max = out.capacity();
            // SAFETY: the file is referenced; `out` has room for `max` entries.
            let n = unsafe { ffi::cr_mapping_mms(self.as_ptr(), out.as_mut_ptr(), max as c_long) }
                as usize;
            if n <= max {
                // SAFETY: the shim wrote the first `n` entries, within capacity.
                unsafe { out.inc_len(n) };
                return Ok(out);
            }
            out.reserve(n + 16, GFP_KERNEL)?;
        }
    }

    fn reopen_same(&self, flags: u32) -> Result<ARef<File>> {
        // SAFETY: the file is referenced; the shim returns a file or an ERR_PTR.
        file_or_err(unsafe { ffi::cr_reopen_same(self.as_ptr(), flags) })
    }

    fn locks(&self, out: &mut [LockInfo]) -> usize {
        // SAFETY: the file is referenced; `out` is valid for its length, which bounds the copy.
        let n =
            unsafe { ffi::cr_inode_locks(self.as_ptr(), out.as_mut_ptr(), out.len() as c_long) };
        n.max(0) as usize
    }

    fn take_lock(&self, kind: u32, write: bool, start: i64, end: i64) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { ffi::cr_lock_take(self.as_ptr(), kind, write, start, end) })
    }

    fn set_pos(&self, pos: u64) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { ffi::cr_set_pos(self.as_ptr(), pos) })
    }

    fn holds(&self, pos: u64, len: u64) -> Result<bool> {
        // SAFETY: the file is referenced.
        let ret = unsafe { ffi::cr_file_holds(self.as_ptr(), pos, len) };
        check(ret).map(|()| ret > 0)
    }

    fn punch(&self, pos: u64, len: u64) -> Result {
        // SAFETY: the file is referenced.
        check(unsafe { ffi::cr_file_punch(self.as_ptr(), pos, len) })
    }

    fn set_status_flags(&self, flags: u32) {
        // SAFETY: the file is referenced.
        unsafe { ffi::cr_set_status_flags(self.as_ptr(), flags) };
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe {
            ffi::cr_read_at(
                self.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
                pos,
            )
        })
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe {
            ffi::cr_write_at(self.as_ptr(), buf.as_ptr().cast(), buf.len() as u32, pos)
        })
    }

    fn write_all(&self, buf: &[u8]) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe { ffi::cr_write_all(self.as_ptr(), buf.as_ptr().cast(), buf.len()) })
    }

    fn read_full(&self, buf: &mut [u8]) -> Result {
        // SAFETY: the file is referenced; `buf` is valid for its length.
        check(unsafe { ffi::cr_read_full(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    fn write_gathered(&self, groups: &[&[&[u8]]], list: &mut Gather) -> Result {
        let pieces = &mut list.0;
        pieces.clear();
        for piece in groups
            .iter()
            .flat_map(|g| g.iter())
            .filter(|p| !p.is_empty())
        {
            pieces.push(
                Piece {
                    data: piece.as_ptr().cast(),
                    len: piece.len(),
                },
                GFP_KERNEL,
            )?;
        }
        // SAFETY: the file is referenced; every piece points into a slice of `groups`, which
        // outlives the call, and the list is emptied before anything else can use it.
        let ret =
            unsafe { ffi::cr_write_pieces(self.as_ptr(), pieces.as_ptr(), pieces.len() as u32) };
        pieces.clear();
        check(ret)
    }
}

/// A pipe end: only a file the shim found to be one becomes a `PipeRef` ([`FileExt::pipe`]),
/// so the pipe accessors never read another file's private data as a pipe.
#[derive(Clone, Copy)]
pub(crate) struct PipeRef<'a>(&'a File);

impl PipeRef<'_> {
    /// Identity, ends, capacity and buffered length of the pipe.
    pub(crate) fn info(&self) -> PipeInfo {
        let mut info = PipeInfo::default();
        // SAFETY: the file is a referenced pipe end (the type's invariant); `info` is valid.
        unsafe { ffi::cr_pipe_info(self.0.as_ptr(), &mut info) };
        info
    }

    /// Copies the bytes the pipe holds into `buf` without consuming them, and into `segments`
    /// one word per buffer copied (its length, with [`CR_PIPE_PACKET`] set for a packet), until
    /// either is full; returns how many bytes and how many buffers.
    pub(crate) fn peek(&self, buf: &mut [u8], segments: &mut [u32]) -> (usize, usize) {
        let words = if segments.is_empty() {
            core::ptr::null_mut()
        } else {
            segments.as_mut_ptr()
        };
        // SAFETY: the file is a referenced pipe end (the type's invariant); `buf` and
        // `segments` (or null, for none) are valid for their lengths, which bound the copies.
        let n = unsafe {
            ffi::cr_pipe_peek(
                self.0.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as c_long,
                words,
                segments.len() as c_long,
            )
        };
        let n = n.max(0) as usize;
        // The shim writes a word for each buffer it copies, none of them empty.
        let (mut copied, mut count) = (0, 0);
        while copied < n && count < segments.len() {
            copied += (segments[count] & !CR_PIPE_PACKET) as usize;
            count += 1;
        }
        (n, count)
    }

    /// Gives the pipe a capacity of `bytes`, as `fcntl(F_SETPIPE_SZ)` would with the caller's
    /// limits; returns the capacity it has now.
    pub(crate) fn set_capacity(&self, bytes: u32) -> Result<u32> {
        // SAFETY: the file is a referenced pipe end (the type's invariant).
        let ret = unsafe { ffi::cr_pipe_set_capacity(self.0.as_ptr(), bytes) };
        if ret < 0 {
            return Err(Error::from_errno(ret as c_int));
        }
        Ok(ret as u32)
    }
}

/// A new anonymous pipe: (read end, write end).
pub(crate) fn new_pipe() -> Result<(ARef<File>, ARef<File>)> {
    let (mut r, mut w) = (core::ptr::null_mut(), core::ptr::null_mut());
    // SAFETY: both out-parameters are valid; on success each holds a new reference.
    check(unsafe { ffi::cr_pipe_create(&mut r, &mut w) })?;
    Ok((file_or_err(r)?, file_or_err(w)?))
}

/// One file an epoll watches, as checkpoint reads it.
pub(crate) struct Watched {
    pub(crate) file: ARef<File>,
    pub(crate) fd: u32,
    pub(crate) events: u32,
    pub(crate) data: u64,
    pub(crate) ready: bool,
}

/// A new event file as `info` describes it.
pub(crate) fn new_event(info: &EventInfo, nonblock: bool) -> Result<ARef<File>> {
    // SAFETY: `info` is valid; the shim returns a file or an ERR_PTR.
    file_or_err(unsafe { ffi::cr_event_create(info, nonblock) })
}

/// Opens `path` (NUL-terminated) with `flags`.
pub(crate) fn open_path(path: &[u8], flags: u32) -> Result<ARef<File>> {
    if path.last() != Some(&0) {
        return Err(EINVAL);
    }
    // SAFETY: `path` is NUL-terminated; the shim returns a file or an ERR_PTR.
    file_or_err(unsafe { ffi::cr_open_path(path.as_ptr().cast(), flags) })
}

/// A new shmem object as `info` says, named (or, unlinked, created in) `name`
/// (NUL-terminated).
pub(crate) fn new_shmem(info: &ShmemInfo, name: &[u8]) -> Result<ARef<File>> {
    if name.last() != Some(&0) {
        return Err(EINVAL);
    }
    // SAFETY: `info` is valid; `name` is NUL-terminated; the shim returns a file or an ERR_PTR.
    file_or_err(unsafe { ffi::cr_shmem_create(info, name.as_ptr().cast()) })
}
