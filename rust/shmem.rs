// SPDX-License-Identifier: GPL-2.0

//! Shared memory without a path: MAP_SHARED anonymous memory and memfds (shmem objects).
//!
//! A SHMEM record defines the object the first time a VMA maps it or a FILE opens it, and the
//! PAGES records after it hold its non-zero pages, by offset: each page is stored once, however
//! many processes map it. Restart creates a new shmem object, refills it, and every mapping and
//! descriptor of the tree shares it.

use kernel::prelude::*;

use crate::checkpoint::{SaveCx, Stop, PAGE_SIZE};
use crate::format::{self, ErrorKind, PagesHeader, RecordKind, ShmemRecord, PAGES_PER_RECORD};
use crate::image::{Failure, ImageIn};
use crate::objhash::{LoadObjects, Object};
use crate::shim::{self, FileRef};

/// Largest object restart accepts (what MAX_LFS_FILESIZE allows, rounded down to pages).
const MAX_SIZE: u64 = (i64::MAX as u64) & !(PAGE_SIZE as u64 - 1);

/// Longest name kept (a memfd's is "memfd:" and up to 249 bytes).
const NAME_MAX: usize = 255;

/// The object behind `file`: its objref, after writing its SHMEM and PAGES records if new.
pub(crate) fn save(cx: &mut SaveCx<'_>, file: &FileRef) -> Result<u32, Stop> {
    let mut name = [0u8; NAME_MAX + 1];
    let (inode, size, name) = file.shmem_info(&mut name)?;
    let objs = &mut *cx.objs;
    let (id, new) = objs.shmem.get_or_allocate(inode, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    let rec = ShmemRecord {
        objref: id,
        name_len: name.len() as u32,
        size,
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

/// Reads a SHMEM record (the caller has just read it) and the PAGES records after it.
pub(crate) fn load(input: &mut ImageIn, objects: &mut LoadObjects) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, name) =
        format::split_fixed(RecordKind::Shmem, p, ShmemRecord::LEN, ShmemRecord::decode)
            .map_err(|k| input.malformed(k))?;
    if name.len() != rec.name_len as usize
        || name.len() > NAME_MAX
        || name.contains(&0)
        || rec.size > MAX_SIZE
    {
        return Err(input.malformed(ErrorKind::BadField("shmem")));
    }
    let cname = shim::nul_terminated(name).map_err(|e| input.fail(e, "out of memory"))?;
    let file = FileRef::new_shmem(&cname, rec.size)
        .map_err(|e| input.fail(e, "creating shared memory failed"))?;
    let size = rec.size;
    objects
        .define(rec.objref, Object::Shmem(file.clone()))
        .map_err(|f| f.at(input))?;
    loop {
        if input.next()? != RecordKind::Pages as u32 {
            input.replay();
            return Ok(());
        }
        let (n, offsets, data) = crate::mm::pages_of(input)?;
        for i in 0..n {
            let at = format::u64_at(offsets, i);
            if at % PAGE_SIZE as u64 != 0 || at >= size {
                return Err(input.malformed(ErrorKind::BadField("shmem offset")));
            }
            let len = (size - at).min(PAGE_SIZE as u64) as usize;
            file.write_at(&data[i * PAGE_SIZE..i * PAGE_SIZE + len], at)
                .map_err(|e| input.fail(e, "refilling shared memory failed"))?;
        }
    }
}

/// The shared-memory object `id`, for a VMA or FILE record that names it.
pub(crate) fn object(input: &ImageIn, objects: &LoadObjects, id: u32) -> Result<FileRef, Failure> {
    match objects.get(id) {
        Ok(Object::Shmem(f)) => Ok(f.clone()),
        _ => Err(input.malformed(ErrorKind::BadObjref(id))),
    }
}
