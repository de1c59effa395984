// SPDX-License-Identifier: GPL-2.0

//! Shared memory without a path: SHMEM, for MAP_SHARED anonymous memory, memfds, and files of a
//! tmpfs that were unlinked while open.
//!
//! A SHMEM record defines the object the first time a VMA maps it or a FILE opens it, and the
//! PAGES records after it hold its non-zero pages, by offset: each page is stored once, however
//! many processes map it. Restart creates a new shmem object (an unlinked file with `O_TMPFILE`
//! in the directory it was in), refills it, and every mapping and descriptor of the tree shares
//! it; once the whole image is read, every object gets its owner, mode and times and a memfd its
//! seals (after every mapping exists, since a write seal forbids writable ones).

use kernel::{fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, PagesFor, SaveCx, PAGE_SIZE};
use crate::error::{Context, CrError, CrResult};
use crate::format::{
    shmem_kind, ErrorKind, PagesHeader, RecordKind, ShmemRecord, PAGES_PER_RECORD, PATH_MAX,
};
use crate::objhash::Object;
use crate::records;
use crate::shim::{ffi::ShmemInfo, new_shmem, nul_terminated, FileExt};

/// The object behind `file`, a shmem file of [`shmem_kind`] `kind`: its objref, after writing
/// its SHMEM and PAGES records if it is new.
pub(crate) fn save(cx: &mut SaveCx<'_>, file: &File, kind: u32) -> CrResult<u32> {
    let info = file.shmem_attrs();
    let objs = &mut *cx.objs;
    let (id, new) = objs.shmem.get_or_allocate(info.id, &mut objs.space)?;
    if !new {
        return Ok(id);
    }
    let mut buf = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let name: &[u8] = if kind == shmem_kind::UNLINKED {
        // Recreated where it was: in its directory, which must still be there.
        let (dir, gone) = file
            .path_into(true, &mut buf)
            .why("an unlinked file's directory path is too long")?;
        if gone {
            return Err(CrError::unsupported(
                "an unlinked file's directory was removed too",
            ));
        }
        dir
    } else {
        let facts = file.facts();
        let len = facts.name.iter().position(|&b| b == 0).unwrap_or(0);
        buf[..len].copy_from_slice(&facts.name[..len]);
        &buf[..len]
    };
    let size = info.size;
    let rec = ShmemRecord {
        objref: id,
        name_len: name.len() as u32,
        size,
        kind,
        seals: info.seals,
        mode: info.mode,
        uid: info.uid,
        gid: info.gid,
        reserved: 0,
        atime_ns: info.atime_ns,
        mtime_ns: info.mtime_ns,
    };
    cx.record(RecordKind::Shmem, &[&rec.encode(), name])?;
    save_pages(cx, file, size)?;
    Ok(id)
}

/// The object's non-zero pages, by offset.
fn save_pages(cx: &mut SaveCx<'_>, file: &File, size: u64) -> CrResult {
    let mut offsets = KVec::with_capacity(PAGES_PER_RECORD * 8, GFP_KERNEL)?;
    let mut pages = KVVec::from_elem(0u8, PAGES_PER_RECORD * PAGE_SIZE, GFP_KERNEL)?;
    let mut count = 0;
    let mut pos = 0;
    while pos < size {
        let page = &mut pages[count * PAGE_SIZE..(count + 1) * PAGE_SIZE];
        let want = (size - pos).min(PAGE_SIZE as u64) as usize;
        page[want..].fill(0);
        file.read_at(&mut page[..want], pos)
            .why("reading shared memory failed")?;
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
    Ok(())
}

/// SHMEM: a new object, empty; the PAGES records after it fill it.
pub(crate) fn load(cx: &mut LoadCx<'_>) -> CrResult {
    let s = LoadCx::decode(cx.input, records::Shmem::decode)?;
    let r = s.rec;
    let info = ShmemInfo {
        size: r.size,
        kind: r.kind,
        seals: r.seals,
        mode: r.mode,
        uid: r.uid,
        gid: r.gid,
        atime_ns: r.atime_ns,
        mtime_ns: r.mtime_ns,
        ..ShmemInfo::default()
    };
    let name = nul_terminated(s.name)?;
    let file = new_shmem(&info, &name).map_err(|e| {
        cx.fail(
            e,
            if r.kind == shmem_kind::UNLINKED {
                "recreating an unlinked file in its tmpfs directory failed"
            } else {
                "creating shared memory failed"
            },
        )
    })?;
    cx.pages = PagesFor::Shmem {
        file: file.clone(),
        size: r.size,
    };
    cx.objects
        .define(r.objref, Object::Shmem { file, info })
        .map_err(|e| e.at(cx.input.offset()))
}

/// PAGES of the object the SHMEM record before defined.
pub(crate) fn load_pages(cx: &mut LoadCx<'_>) -> CrResult {
    let (file, size) = match &cx.pages {
        PagesFor::Shmem { file, size } => (file.clone(), *size),
        _ => return Err(cx.malformed(ErrorKind::BadField("PAGES without an object"))),
    };
    let list = cx.input.pages()?;
    if list.span().1 >= size {
        return Err(cx.malformed(ErrorKind::BadField("shmem offset")));
    }
    if cx.dry_run {
        return Ok(());
    }
    let mut offsets = KVec::with_capacity(list.count as usize, GFP_KERNEL)?;
    for at in list.addrs() {
        offsets.push(at, GFP_KERNEL)?;
    }
    let mut page = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
    for at in offsets {
        cx.input.data_into(&mut page)?;
        let len = (size - at).min(PAGE_SIZE as u64) as usize;
        file.write_at(&page[..len], at)
            .map_err(|e| cx.fail(e, "refilling shared memory failed"))?;
    }
    Ok(())
}

/// The shared-memory object `id`, for a VMA record that maps it.
pub(crate) fn object(cx: &LoadCx<'_>, id: u32) -> CrResult<ARef<File>> {
    match cx.objects.get(id) {
        Ok(Object::Shmem { file, .. }) => Ok(file.clone()),
        _ => Err(cx.malformed(ErrorKind::BadObjref(id))),
    }
}

/// A new open file of the shared-memory object `id`, for a FILE record: with its own flags and
/// position, as every open file has.
pub(crate) fn open(cx: &LoadCx<'_>, id: u32, flags: u32, pos: u64) -> CrResult<ARef<File>> {
    let file = object(cx, id)?
        .reopen_same(flags)
        .map_err(|e| cx.fail(e, "opening shared memory failed"))?;
    if pos != 0 {
        file.set_pos(pos)
            .map_err(|e| cx.fail(e, "restoring a file position failed"))?;
    }
    Ok(file)
}
