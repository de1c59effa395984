// SPDX-License-Identifier: GPL-2.0

//! The address space: layout (MM), memory areas (VMA) and their contents (PAGES).
//!
//! Private anonymous areas store their non-zero pages; private file mappings are mapped from the
//! file again and store only the pages the task changed (copied on write). Shared file mappings
//! are mapped from the file again, where their data is; shared memory without a path is a SHMEM
//! object (`shmem.rs`), stored once however many processes map it. The vDSO is mapped anew at
//! its old address.

use kernel::prelude::*;

use crate::checkpoint::{refuse, SaveCx, Stop, PAGE_SIZE};
use crate::format::{
    self, file_kind, vma_kind, ErrorKind, MmRecord, PagesHeader, RecordKind, VmaRecord, AUXV_WORDS,
    PAGES_PER_RECORD, PATH_MAX,
};
use crate::image::{Failure, ImageIn};
use crate::objhash::LoadObjects;
use crate::shim::{self, FileInfo, FileRef, MmInfo, Refusal, TaskRef};
use crate::shmem;

/// `S_IFREG`.
const S_IFREG: u32 = 0o100000;
/// `VM_MAYWRITE`, `VM_MAYSHARE`.
const VM_MAYWRITE: u64 = 0x20;
const VM_MAYSHARE: u64 = 0x80;

/// Refuses mappings cr cannot recreate.
pub(crate) fn precheck(task: &TaskRef) -> Result<(), Refusal> {
    let mm = task.mm().map_err(|err| Refusal {
        err,
        reason: "task has no address space",
    })?;
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let exe = mm.exe_file().ok_or(Refusal {
        err: EOPNOTSUPP,
        reason: "task has no executable",
    })?;
    exe.path(&mut path)?;
    let mut addr = 0;
    while let Some(vma) = mm.vma_from(addr)? {
        // A mapped file must be reachable by its path again.
        if let Some(f) = vma
            .file
            .as_ref()
            .filter(|_| vma.info.kind != vma_kind::SHMEM)
        {
            f.path(&mut path)?;
        }
        addr = vma.info.end;
    }
    Ok(())
}

/// MM, then VMA and PAGES records for every area.
pub(crate) fn save(cx: &mut SaveCx<'_>) -> Result<(), Stop> {
    let mm = cx.task.mm()?;
    let info = mm.info();
    let mut path = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let exe = mm
        .exe_file()
        .ok_or_else(|| refuse(EOPNOTSUPP, "task has no executable"))?;
    let exe_info = exe.info()?;
    let exe_path = exe.path(&mut path)?;
    let rec = MmRecord {
        start_code: info.start_code,
        end_code: info.end_code,
        start_data: info.start_data,
        end_data: info.end_data,
        start_brk: info.start_brk,
        brk: info.brk,
        start_stack: info.start_stack,
        arg_start: info.arg_start,
        arg_end: info.arg_end,
        env_start: info.env_start,
        env_end: info.env_end,
        vdso: info.vdso,
        exe_dev: exe_info.dev,
        exe_ino: exe_info.ino,
        auxv_words: info.auxv_words,
        exe_len: exe_path.len() as u32,
    };
    let mut auxv = KVec::with_capacity(info.auxv_words as usize * 8, GFP_KERNEL)?;
    for w in info.auxv.iter().take(info.auxv_words as usize) {
        auxv.extend_from_slice(&w.to_le_bytes(), GFP_KERNEL)?;
    }
    cx.record(RecordKind::Mm, &[&rec.encode(), &auxv, exe_path])?;

    let mut addrs = KVec::from_elem(0u64, PAGES_PER_RECORD, GFP_KERNEL)?;
    let mut addr_bytes = KVec::from_elem(0u8, PAGES_PER_RECORD * 8, GFP_KERNEL)?;
    let mut pages = KVVec::from_elem(0u8, PAGES_PER_RECORD * PAGE_SIZE, GFP_KERNEL)?;
    let mut addr = 0;
    while let Some(vma) = mm.vma_from(addr)? {
        let v = &vma.info;
        addr = v.end;
        let mut object = 0;
        let (dev, ino, p): (u64, u64, &[u8]) = match &vma.file {
            Some(f) if v.kind == vma_kind::SHMEM => {
                object = shmem::save(cx, f)?;
                (0, 0, &[])
            }
            Some(f) => {
                let fi = f.info()?;
                (fi.dev, fi.ino, f.path(&mut path)?)
            }
            None => (0, 0, &[]),
        };
        let rec = VmaRecord {
            start: v.start,
            end: v.end,
            vm_flags: v.vm_flags,
            pgoff: v.pgoff,
            dev,
            ino,
            kind: v.kind,
            path_len: p.len() as u32,
            object,
            reserved: 0,
        };
        cx.record(RecordKind::Vma, &[&rec.encode(), p])?;
        if v.kind != vma_kind::ANON && v.kind != vma_kind::FILE_PRIVATE {
            continue;
        }
        let anon_only = v.kind == vma_kind::FILE_PRIVATE;
        let mut cursor = v.start;
        while cursor < v.end {
            let n = mm.dump_pages(
                &mut cursor,
                v.end,
                anon_only,
                &mut addrs,
                &mut pages,
                PAGE_SIZE,
            );
            if n == 0 {
                continue;
            }
            for (i, a) in addrs[..n].iter().enumerate() {
                addr_bytes[i * 8..i * 8 + 8].copy_from_slice(&a.to_le_bytes());
            }
            let head = PagesHeader {
                count: n as u32,
                reserved: 0,
            };
            cx.record(
                RecordKind::Pages,
                &[
                    &head.encode(),
                    &addr_bytes[..n * 8],
                    &pages[..n * PAGE_SIZE],
                ],
            )?;
        }
    }
    Ok(())
}

/// `O_RDWR`: a shared writable mapping needs a file open for writing.
const O_RDWR: u32 = 2;

fn reopen(
    input: &ImageIn,
    path: &[u8],
    dev: u64,
    ino: u64,
    flags: u32,
) -> Result<FileRef, Failure> {
    let info = FileInfo {
        kind: file_kind::REGULAR,
        flags,
        dev,
        ino,
        mode: S_IFREG,
        ..FileInfo::default()
    };
    let cpath = shim::nul_terminated(path).map_err(|e| input.fail(e, "out of memory"))?;
    FileRef::reopen(&cpath, &info).map_err(|e| {
        input.fail(
            e,
            if e == ESTALE {
                "a mapped file was replaced since the checkpoint (inode differs)"
            } else {
                "a mapped file cannot be reopened"
            },
        )
    })
}

/// Reads MM (already read by the caller), then the VMA, PAGES and SHMEM records, replacing the
/// address space as they come.
pub(crate) fn load(input: &mut ImageIn, objects: &mut LoadObjects) -> Result<(), Failure> {
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::Mm, p, MmRecord::LEN, MmRecord::decode)
        .map_err(|k| input.malformed(k))?;
    if rec.auxv_words as usize > AUXV_WORDS {
        return Err(input.malformed(ErrorKind::BadField("auxv_words")));
    }
    let (auxv, rest) =
        format::take_u64s(rest, rec.auxv_words as usize).map_err(|k| input.malformed(k))?;
    let (exe_path, rest) = format::take_path(rest, rec.exe_len).map_err(|k| input.malformed(k))?;
    if !rest.is_empty() {
        return Err(input.malformed(ErrorKind::BadField("mm")));
    }
    let mut info = MmInfo {
        start_code: rec.start_code,
        end_code: rec.end_code,
        start_data: rec.start_data,
        end_data: rec.end_data,
        start_brk: rec.start_brk,
        brk: rec.brk,
        start_stack: rec.start_stack,
        arg_start: rec.arg_start,
        arg_end: rec.arg_end,
        env_start: rec.env_start,
        env_end: rec.env_end,
        vdso: rec.vdso,
        ..MmInfo::default()
    };
    for i in 0..rec.auxv_words as usize {
        info.auxv[i] = format::u64_at(auxv, i);
    }
    info.auxv_words = rec.auxv_words;
    if info.start_brk > info.brk || info.arg_start > info.arg_end || info.env_start > info.env_end {
        return Err(input.malformed(ErrorKind::BadField("mm layout")));
    }
    let exe = reopen(input, exe_path, rec.exe_dev, rec.exe_ino, 0)?;
    // A dry run checks the records and reopens the files, but maps nothing.
    let dry = objects.dry_run;

    // The caller's own address space goes away: from here on, a failure can only kill it.
    if !dry {
        shim::current::unmap_all()
            .map_err(|e| input.fail(e, "unmapping the old address space failed"))?;
    }

    let mut area: Option<VmaRecord> = None;
    loop {
        let kind = input.next()?;
        if kind == RecordKind::Vma as u32 {
            area = Some(map_area(input, objects, dry)?);
        } else if kind == RecordKind::Shmem as u32 {
            area = None;
            shmem::load(input, objects)?;
        } else if kind == RecordKind::Pages as u32 {
            let a = area
                .as_ref()
                .filter(|a| a.kind == vma_kind::ANON || a.kind == vma_kind::FILE_PRIVATE)
                .ok_or_else(|| input.malformed(ErrorKind::BadField("PAGES without an area")))?;
            fill_pages(input, a, dry)?;
        } else {
            break;
        }
    }
    if !dry {
        shim::current::set_mm(&info, Some(&exe))
            .map_err(|e| input.fail(e, "restoring the mm layout failed"))?;
    }
    // The loop read the next part's first record to see the areas end: leave it for that part.
    input.replay();
    Ok(())
}

/// Recreates the area a VMA record describes (just checks it, in a dry run).
fn map_area(input: &mut ImageIn, objects: &LoadObjects, dry: bool) -> Result<VmaRecord, Failure> {
    let p = input.payload();
    let (rec, rest) = format::split_fixed(RecordKind::Vma, p, VmaRecord::LEN, VmaRecord::decode)
        .map_err(|k| input.malformed(k))?;
    let page_mask = PAGE_SIZE as u64 - 1;
    if rec.start >= rec.end || (rec.start | rec.end) & page_mask != 0 || rec.reserved != 0 {
        return Err(input.malformed(ErrorKind::BadField("vma range")));
    }
    let map = |file: Option<&FileRef>, pgoff: u64, what: &'static str| {
        if dry {
            return Ok(());
        }
        shim::current::map(file, rec.start, rec.end, rec.vm_flags, pgoff)
            .map_err(|e| input.fail(e, what))
    };
    let no_path = rest.is_empty() && rec.path_len == 0;
    match rec.kind {
        vma_kind::ANON if no_path => map(None, 0, "recreating an anonymous mapping failed")?,
        vma_kind::FILE_PRIVATE => {
            let (path, rest) =
                format::take_path(rest, rec.path_len).map_err(|k| input.malformed(k))?;
            if !rest.is_empty() {
                return Err(input.malformed(ErrorKind::BadField("vma")));
            }
            let file = reopen(input, path, rec.dev, rec.ino, 0)?;
            map(Some(&file), rec.pgoff, "recreating a file mapping failed")?;
        }
        vma_kind::FILE_SHARED => {
            let (path, rest) =
                format::take_path(rest, rec.path_len).map_err(|k| input.malformed(k))?;
            if !rest.is_empty() || rec.vm_flags & VM_MAYSHARE == 0 {
                return Err(input.malformed(ErrorKind::BadField("vma")));
            }
            let flags = if rec.vm_flags & VM_MAYWRITE != 0 {
                O_RDWR
            } else {
                0
            };
            let file = reopen(input, path, rec.dev, rec.ino, flags)?;
            map(
                Some(&file),
                rec.pgoff,
                "recreating a shared file mapping failed",
            )?;
        }
        vma_kind::SHMEM if no_path && rec.vm_flags & VM_MAYSHARE != 0 => {
            let file = shmem::object(input, objects, rec.object)?;
            map(Some(&file), rec.pgoff, "mapping shared memory failed")?;
        }
        vma_kind::VDSO if !dry => shim::current::map_vdso(rec.start)
            .map_err(|e| input.fail(e, "mapping the vDSO at its address failed"))?,
        // The vDSO's data pages are mapped together with it.
        vma_kind::VDSO | vma_kind::VVAR => {}
        vma_kind::ANON | vma_kind::SHMEM => return Err(input.malformed(ErrorKind::BadField("vma"))),
        _ => return Err(input.malformed(ErrorKind::BadField("vma kind"))),
    }
    Ok(rec)
}

/// The PAGES record just read: its page count, addresses (u64s) and page data.
pub(crate) fn pages_of(input: &ImageIn) -> Result<(usize, &[u8], &[u8]), Failure> {
    let p = input.payload();
    let (head, rest) =
        format::split_fixed(RecordKind::Pages, p, PagesHeader::LEN, PagesHeader::decode)
            .map_err(|k| input.malformed(k))?;
    let n = head.count as usize;
    let (addrs, data) = format::take_u64s(rest, n).map_err(|k| input.malformed(k))?;
    if n == 0 || n > PAGES_PER_RECORD || data.len() != n * PAGE_SIZE {
        return Err(input.malformed(ErrorKind::BadField("pages")));
    }
    Ok((n, addrs, data))
}

fn fill_pages(input: &mut ImageIn, area: &VmaRecord, dry: bool) -> Result<(), Failure> {
    let (n, addrs, data) = pages_of(input)?;
    let mut prev = None;
    for i in 0..n {
        let a = format::u64_at(addrs, i);
        if a % PAGE_SIZE as u64 != 0
            || a < area.start
            || a >= area.end
            || prev.is_some_and(|p| a <= p)
        {
            return Err(input.malformed(ErrorKind::BadField("page address")));
        }
        prev = Some(a);
        if !dry {
            shim::current::write_memory(a, &data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE])
                .map_err(|e| input.fail(e, "writing a page failed"))?;
        }
    }
    Ok(())
}
