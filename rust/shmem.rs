// SPDX-License-Identifier: GPL-2.0

//! Shared memory without a path: MAP_SHARED anonymous memory, memfds, and files of a tmpfs that
//! were unlinked while open (shmem objects).
//!
//! A SHMEM record defines the object the first time a VMA maps it or a FILE opens it, and the
//! PAGES records after it hold its non-zero pages, by offset: each page is stored once, however
//! many processes map it. Restart creates a new shmem object (an unlinked file with `O_TMPFILE`
//! in the directory it was in), refills it, gives it its owner, mode and times, and every
//! mapping and descriptor of the tree shares it; a memfd's seals come last, once every mapping
//! exists.

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop, PAGE_SIZE};
use crate::format::{
    self, shmem_kind, ErrorKind, PagesHeader, RecordKind, ShmemRecord, PAGES_PER_RECORD, PATH_MAX,
    SEALS_KNOWN,
};
use crate::image::{Failure, ImageIn};
use crate::objhash::{LoadObjects, Object};
use crate::shim::{self, FileRef, ShmemInfo};

/// Largest object restart accepts (what MAX_LFS_FILESIZE allows, rounded down to pages).
const MAX_SIZE: u64 = (i64::MAX as u64) & !(PAGE_SIZE as u64 - 1);

/// Longest name of an unnamed object (a memfd's is "memfd:" and up to 249 bytes).
const NAME_MAX: usize = 255;

/// The object behind `file`: its objref, after writing its SHMEM and PAGES records if new.
pub(crate) fn save(cx: &mut SaveCx<'_>, file: &FileRef) -> Result<u32, Stop> {
    let mut name = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let (info, name) = file.shmem_info(&mut name)?;
    let objs = &mut *cx.objs;
    let (id, new) = objs.shmem.get_or_allocate(info.id, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    let size = info.size;
    let rec = ShmemRecord {
        objref: id,
        name_len: name.len() as u32,
        size,
        kind: info.kind,
        seals: info.seals,
        mode: info.mode,
        uid: info.uid,
        gid: info.gid,
        reserved: 0,
        atime_ns: info.atime_ns,
        mtime_ns: info.mtime_ns,
    };
    cx.record(RecordKind::Shmem, &[&rec.encode(), name])?;

    let mut offsets = KVec::with_capacity(PAGES_PER_RECORD * 8, GFP_KERNEL)?;
    let mut pages = KVVec::from_elem(0u8, PAGES_PER_RECORD * PAGE_SIZE, GFP_KERNEL)?;
    let mut count = 0;
    let mut pos = 0;
    while pos < size {
        let page = &mut pages[count * PAGE_SIZE..(count + 1) * PAGE_SIZE];
        let want = (size - pos).min(PAGE_SIZE as u64) as usize;
        page[want..].fill(0);
        file.read_at(&mut page[..want], pos)?;
        if page.iter().any(|&b| b != 0) {
            offsets.extend_from_slice(&pos.to_le_bytes(), GFP_KERNEL)?;
            count += 1;
        }
        pos += PAGE_SIZE as u64;
        if count == PAGES_PER_RECORD || (pos >= size && count > 0) {
            let head = PagesHeader {
                count: count as u32,
                reserved: 0,
            };
            cx.record(
                RecordKind::Pages,
                &[&head.encode(), &offsets, &pages[..count * PAGE_SIZE]],
            )?;
            offsets.clear();
            count = 0;
        }
    }
    Ok(id)
}

/// `S_IFMT` and `S_IFREG`.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

/// Reads a SHMEM record (the caller has just read it) and the PAGES records after it.
pub(crate) fn load(input: &mut ImageIn, objects: &mut LoadObjects) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, name) =
        format::split_fixed(RecordKind::Shmem, p, ShmemRecord::LEN, ShmemRecord::decode)
            .map_err(|k| input.malformed(k))?;
    let name_max = if rec.kind == shmem_kind::UNLINKED {
        PATH_MAX
    } else {
        NAME_MAX
    };
    if name.len() != rec.name_len as usize
        || name.is_empty()
        || name.len() > name_max
        || name.contains(&0)
        || rec.size > MAX_SIZE
        || !matches!(
            rec.kind,
            shmem_kind::MEMFD | shmem_kind::ANON | shmem_kind::UNLINKED
        )
        || rec.seals & !SEALS_KNOWN != 0
        || rec.mode & S_IFMT != S_IFREG
        || rec.mode & !(S_IFMT | 0o7777) != 0
        || rec.reserved != 0
    {
        return Err(input.malformed(ErrorKind::BadField("shmem")));
    }
    let info = ShmemInfo {
        size: rec.size,
        kind: rec.kind,
        seals: rec.seals,
        mode: rec.mode,
        uid: rec.uid,
        gid: rec.gid,
        atime_ns: rec.atime_ns,
        mtime_ns: rec.mtime_ns,
        ..ShmemInfo::default()
    };
    let cname = shim::nul_terminated(name).map_err(|e| input.fail(e, "out of memory"))?;
    let file = FileRef::new_shmem(&info, &cname).map_err(|e| {
        input.fail(
            e,
            if rec.kind == shmem_kind::UNLINKED {
                "recreating an unlinked file in its tmpfs directory failed"
            } else {
                "creating shared memory failed"
            },
        )
    })?;
    let size = rec.size;
    let dry = objects.dry_run;
    objects
        .define(
            rec.objref,
            Object::Shmem {
                file: file.clone(),
                seals: rec.seals,
            },
        )
        .map_err(|f| f.at(input))?;
    loop {
        if input.next()? != RecordKind::Pages as u32 {
            input.replay();
            break;
        }
        let (n, offsets, data) = crate::mm::pages_of(input)?;
        for i in 0..n {
            let at = format::u64_at(offsets, i);
            if at % PAGE_SIZE as u64 != 0 || at >= size {
                return Err(input.malformed(ErrorKind::BadField("shmem offset")));
            }
            if dry {
                continue;
            }
            let len = (size - at).min(PAGE_SIZE as u64) as usize;
            file.write_at(&data[i * PAGE_SIZE..i * PAGE_SIZE + len], at)
                .map_err(|e| input.fail(e, "refilling shared memory failed"))?;
        }
    }
    // After the content, whose writes move the times.
    file.set_shmem_attrs(&info).map_err(|e| {
        input.fail(
            e,
            "restoring the owner, mode or times of shared memory failed",
        )
    })
}

/// The shared-memory object `id`, for a VMA record that maps it.
pub(crate) fn object(input: &ImageIn, objects: &LoadObjects, id: u32) -> Result<FileRef, Failure> {
    match objects.get(id) {
        Ok(Object::Shmem { file, .. }) => Ok(file.clone()),
        _ => Err(input.malformed(ErrorKind::BadObjref(id))),
    }
}

/// A new open file of the shared-memory object `id`, for a FILE record: with its own flags and
/// position, as every open file has.
pub(crate) fn open(
    input: &ImageIn,
    objects: &LoadObjects,
    id: u32,
    flags: u32,
    pos: u64,
) -> Result<FileRef, Failure> {
    let file = object(input, objects, id)?
        .reopen_same(flags)
        .map_err(|e| input.fail(e, "opening shared memory failed"))?;
    if pos != 0 {
        file.set_pos(pos)
            .map_err(|e| input.fail(e, "restoring a file position failed"))?;
    }
    Ok(file)
}
