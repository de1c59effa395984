// SPDX-License-Identifier: GPL-2.0

//! The address space: layout (MM), memory areas (VMA) and their contents (PAGES).
//!
//! Private anonymous areas store their non-zero pages; private file mappings are mapped from the
//! file again and store only the pages the task changed (copied on write). Shared file mappings
//! are mapped from the file again, where their data is; shared memory without a path is a SHMEM
//! object (`shmem.rs`), stored once however many processes map it. The vDSO is mapped anew at
//! its old address.
//!
//! A thawed checkpoint copies the private areas' pages in rounds while the tasks run
//! ([`copy_round`], PRECOPY records in a precopy image); each round and then the frozen one
//! harvest the page tables' dirty state, and a page found unchanged since it was copied is
//! written as a KEEP record: restart reads it from what it staged of the precopy image.

use kernel::{bindings, fs::File, mm::MmWithUser, prelude::*, sync::aref::ARef, task::Task};

use crate::image::ImageOut;

use crate::cx::{LoadCx, PagesFor, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::files;
use crate::format::{
    file_kind, vma_kind, ErrorKind, FileRecord, KeepHeader, MmRecord, PagesHeader, PrecopyHeader,
    RecordKind, VmaRecord, PAGES_PER_RECORD,
};
use crate::prefault;
use crate::records::PAGE_SIZE;
use crate::records::{self, VM_MAYSHARE, VM_MAYWRITE};
use crate::shim::ffi::{
    MmInfo, CR_REF_GUARD, CR_REF_PINNED, CR_SCAN_ANON_ONLY, CR_SCAN_HARVEST, CR_VF_ANON,
    CR_VF_VDSO, CR_VF_VVAR, CR_VM_GROWSDOWN, CR_VM_STACK_INCOMPLETE_SETUP,
};
use crate::shim::{
    current, nul_terminated, CopiedPage, CopiesCursor, FileExt, MmExt, TaskExt, Vma, Walked,
};
use crate::shmem;
use crate::tracking::{AreaKey, CopiedSpace, Copies};

/// The `vm_flags` a restart recreates, by mmap() or by the madvise() hints glibc and allocators
/// set (no huge pages on thread stacks, no copy into a child, no core dump); an area with any
/// other flag (locked, I/O, hugetlbfs, sealed, userfaultfd) is refused.
const RECREATABLE: u64 = (bindings::VM_READ
    | bindings::VM_WRITE
    | bindings::VM_EXEC
    | bindings::VM_MAYREAD
    | bindings::VM_MAYWRITE
    | bindings::VM_MAYEXEC
    | bindings::VM_ACCOUNT
    | bindings::VM_NORESERVE
    | bindings::VM_SOFTDIRTY
    | bindings::VM_MAYSHARE
    | bindings::VM_SHARED
    | bindings::VM_DONTCOPY
    | bindings::VM_DONTDUMP
    | bindings::VM_WIPEONFORK
    | bindings::VM_HUGEPAGE
    | bindings::VM_NOHUGEPAGE
    | bindings::VM_MERGEABLE) as u64
    | CR_VM_GROWSDOWN
    | CR_VM_STACK_INCOMPLETE_SETUP;
const _: () = assert!(
    VM_MAYSHARE == bindings::VM_MAYSHARE as u64 && VM_MAYWRITE == bindings::VM_MAYWRITE as u64
);

/// One area of a [`Layout`]: what it is, and the file it maps, by path.
pub(crate) struct Area {
    pub(crate) vma: Vma,
    pub(crate) kind: u32,
    /// For a shmem area, the kind of shmem object.
    pub(crate) shmem: u32,
    path: KVec<u8>,
    dev: u64,
    ino: u64,
}

/// A task's address space, read once at checkpoint: checked, saved, and looked at by leak
/// detection.
pub(crate) struct Layout {
    pub(crate) mm: ARef<MmWithUser>,
    exe: ARef<File>,
    exe_path: KVec<u8>,
    pub(crate) areas: KVec<Area>,
}

/// What an area is, or why it cannot be recreated.
fn classify(vma: &Vma) -> CrResult<(u32, u32)> {
    let v = &vma.info;
    if v.facts & CR_VF_VDSO != 0 {
        return Ok((vma_kind::VDSO, 0));
    }
    if v.facts & CR_VF_VVAR != 0 {
        return Ok((vma_kind::VVAR, 0));
    }
    if v.vm_flags & !RECREATABLE != 0 {
        return Err(CrError::unsupported(
            "mapping with locked, I/O, hugetlbfs, sealed or userfaultfd flags",
        ));
    }
    let file_class = vma
        .file
        .as_ref()
        .map(|f| files::classify(&f.facts()))
        .transpose();
    match (v.vm_flags & VM_MAYSHARE != 0, vma.file.is_some()) {
        (true, true) => match file_class? {
            Some(c) if c.kind == file_kind::SHMEM => Ok((vma_kind::SHMEM, c.object_kind)),
            Some(c) if c.kind == file_kind::REGULAR => Ok((vma_kind::FILE_SHARED, 0)),
            _ => Err(CrError::unsupported(
                "shared mapping of a device or special file",
            )),
        },
        (true, false) => Err(CrError::unsupported(
            "shared mapping of a device or special file",
        )),
        (false, true) => match file_class {
            Ok(Some(c)) if c.kind == file_kind::REGULAR => Ok((vma_kind::FILE_PRIVATE, 0)),
            Ok(Some(c)) if c.kind == file_kind::SHMEM => Err(CrError::unsupported(
                "private mapping of a memfd or unlinked file not supported yet",
            )),
            _ => Err(CrError::unsupported("mapping of a non-regular file")),
        },
        (false, false) if v.facts & CR_VF_ANON != 0 => Ok((vma_kind::ANON, 0)),
        (false, false) => Err(CrError::unsupported("special mapping not supported")),
    }
}

impl Layout {
    /// The address space of `task`, or the reason one of its areas cannot be recreated.
    pub(crate) fn read(task: &Task) -> CrResult<Self> {
        let mm = task
            .mm_ref()
            .ok_or(CrError::unsupported("task has no address space"))?;
        Self::of(mm)
    }

    /// The address space `mm`, or the reason one of its areas cannot be recreated.
    pub(crate) fn of(mm: ARef<MmWithUser>) -> CrResult<Self> {
        let exe = mm
            .exe_file()
            .ok_or(CrError::unsupported("task has no executable"))?;
        let exe_path = files::path_of(&exe)?;
        let mut areas = KVec::new();
        let mut addr = 0;
        while let Some(vma) = mm.vma_from(addr) {
            addr = vma.info.end;
            let (kind, shmem) = classify(&vma)?;
            let (path, dev, ino) = match (&vma.file, kind) {
                (Some(f), vma_kind::FILE_PRIVATE | vma_kind::FILE_SHARED) => {
                    let facts = f.facts();
                    (files::path_of(f)?, facts.dev, facts.ino)
                }
                _ => (KVec::new(), 0, 0),
            };
            areas.push(
                Area {
                    vma,
                    kind,
                    shmem,
                    path,
                    dev,
                    ino,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            mm,
            exe,
            exe_path,
            areas,
        })
    }
}

/// MM, then VMA and PAGES records for every area (SHMEM records before the first area that
/// maps each shared object). An address space that is tracked (`copied`: by a thawed
/// checkpoint's rounds, or since a tracked parent image) has its dirty state harvested, the
/// pages unchanged since their copy are KEEP records instead, and its copies become what this
/// image holds.
pub(crate) fn save(
    cx: &mut SaveCx<'_>,
    layout: &Layout,
    copied: Option<&mut CopiedSpace>,
) -> CrResult {
    let info = layout.mm.layout();
    let exe = layout.exe.facts();
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
        exe_dev: exe.dev,
        exe_ino: exe.ino,
        auxv_words: info.auxv_words,
        exe_len: layout.exe_path.len() as u32,
    };
    let mut auxv = KVec::with_capacity(info.auxv_words as usize * 8, GFP_KERNEL)?;
    for w in info.auxv.iter().take(info.auxv_words as usize) {
        auxv.extend_from_slice(&w.to_le_bytes(), GFP_KERNEL)?;
    }
    cx.record(RecordKind::Mm, &[&rec.encode(), &auxv, &layout.exe_path])?;

    let mut pages = PageWriter::new(copied.as_deref().map(|c| &**c))?;
    for a in layout.areas.iter() {
        let v = &a.vma.info;
        let object = match (&a.vma.file, a.kind) {
            (Some(f), vma_kind::SHMEM) => shmem::save(cx, f, a.shmem)?,
            _ => 0,
        };
        let rec = VmaRecord {
            start: v.start,
            end: v.end,
            vm_flags: v.vm_flags,
            pgoff: v.pgoff,
            dev: a.dev,
            ino: a.ino,
            kind: a.kind,
            path_len: a.path.len() as u32,
            object,
            reserved: 0,
        };
        cx.record(RecordKind::Vma, &[&rec.encode(), &a.path])?;
        match a.kind {
            vma_kind::ANON => pages.save_area(cx, &layout.mm, v.start, v.end, 0)?,
            // The file's own pages are mapped from it again; only those the task changed
            // (anonymous, copied on write) are stored.
            vma_kind::FILE_PRIVATE => {
                pages.save_area(cx, &layout.mm, v.start, v.end, CR_SCAN_ANON_ONLY)?
            }
            _ => {}
        }
    }
    let written = pages.tracked.take().map(|t| t.written);
    drop(pages);
    if let (Some(space), Some(written)) = (copied, written) {
        space.pages = written;
    }
    Ok(())
}

/// Writes the PAGES records of private areas, one walk of the page tables at a time.
struct PageWriter<'a> {
    walked: Walked,
    addrs: KVec<u8>,
    tracked: Option<Tracked<'a>>,
    runs: KVec<u8>,
}

/// A tracked address space, as its PageWriter walks it.
struct Tracked<'a> {
    /// The id KEEP records name it by.
    id: u64,
    /// What was copied of it before, and where the walk is in it.
    copies: CopiesCursor<'a>,
    /// Each page this image holds, with its frame: its copies from now on.
    written: KVVec<CopiedPage>,
}

impl<'a> PageWriter<'a> {
    fn new(copied: Option<&'a Copies>) -> CrResult<Self> {
        let tracked = match copied {
            Some(c) => Some(Tracked {
                id: c.id,
                copies: CopiesCursor::new(&c.pages),
                written: KVVec::with_capacity(c.pages.len(), GFP_KERNEL)?,
            }),
            None => None,
        };
        Ok(Self {
            walked: Walked::with_capacity(PAGES_PER_RECORD)?,
            addrs: KVec::with_capacity(PAGES_PER_RECORD * 8, GFP_KERNEL)?,
            tracked,
            runs: KVec::new(),
        })
    }

    /// The pages `[start, end)` holds, as the page tables say: holes and the zero page cost
    /// nothing, and each page is copied once, from where it is into the stream.
    fn save_area(
        &mut self,
        cx: &mut SaveCx<'_>,
        mm: &MmWithUser,
        start: u64,
        end: u64,
        flags: u32,
    ) -> CrResult {
        // A tracked address space: what was written since its copy is what the harvest finds
        // dirty, and what this image holds is tracked from now on.
        let flags = match self.tracked {
            Some(_) => flags | CR_SCAN_HARVEST,
            None => flags,
        };
        let mut cursor = start;
        while cursor < end {
            let copies = self.tracked.as_mut().map(|t| &mut t.copies);
            self.walked
                .walk(mm, &mut cursor, end, flags, copies)
                .map_err(walk_error)?;
            if self.walked.iter().any(|(_, f)| f & CR_REF_GUARD != 0) {
                return Err(CrError::unsupported(
                    "guard or poisoned pages (MADV_GUARD_INSTALL, UFFDIO_POISON)",
                ));
            }
            self.walked
                .fault_in_elsewhere(mm)
                .why("reading a swapped-out page failed")?;
            if self.walked.is_empty() {
                continue;
            }
            self.addrs.clear();
            self.runs.clear();
            let mut keep = KeepRuns::default();
            let mut pages = KVec::with_capacity(self.walked.len(), GFP_KERNEL)?;
            // SAFETY: the tree is frozen, so no task writes these private pages while they are
            // written out.
            let contents = unsafe { self.walked.contents() };
            for (r, page) in self.walked.reports().zip(contents) {
                if let (true, Some(t)) = (r.unchanged(), &mut self.tracked) {
                    let kept = t.copies.run(r.addr, r.run).map_err(bad_run)?;
                    t.written.extend_from_slice(kept, GFP_KERNEL)?;
                    keep.add(r.addr, kept.len() as u64, &mut self.runs)?;
                    continue;
                }
                let Some(page) = page else { continue };
                if let Some(t) = &mut self.tracked {
                    let copy = CopiedPage {
                        addr: r.addr,
                        frame: r.frame,
                    };
                    t.written.push(copy, GFP_KERNEL)?;
                }
                self.addrs
                    .extend_from_slice(&r.addr.to_le_bytes(), GFP_KERNEL)?;
                pages.push(page, GFP_KERNEL)?;
            }
            if let (Some(t), true) = (&self.tracked, keep.pages > 0) {
                keep.finish(&mut self.runs)?;
                let head = KeepHeader {
                    mm: t.id,
                    count: keep.count,
                    reserved: 0,
                };
                cx.record(RecordKind::Keep, &[&head.encode(), &self.runs])?;
                cx.tally.pages += keep.pages;
            }
            if pages.is_empty() {
                continue;
            }
            let head = PagesHeader {
                count: pages.len() as u32,
                reserved: 0,
            };
            cx.pages(&[&head.encode(), &self.addrs], &pages)?;
        }
        Ok(())
    }
}

/// An unchanged run that the walk reported outside the copies it was given.
fn bad_run(err: Error) -> CrError {
    CrError::new(
        err,
        "the page walk reported unchanged pages that were never copied",
    )
}

/// A failed walk of the page tables; a harvest refuses address spaces it cannot track.
fn walk_error(err: Error) -> CrError {
    if err == EOPNOTSUPP {
        CrError::unsupported(
            "thawed checkpoint of an address space that another MMU writes (KVM, device SVA)",
        )
    } else {
        CrError::new(err, "walking the page tables failed")
    }
}

/// Runs of consecutive pages, as a KEEP record lists them: (first address, pages) u64 pairs.
#[derive(Default)]
struct KeepRuns {
    count: u32,
    pages: u64,
    /// The run being extended: its first address and length.
    open: Option<(u64, u64)>,
}

impl KeepRuns {
    /// Adds the `n` pages from `addr`.
    fn add(&mut self, addr: u64, n: u64, runs: &mut KVec<u8>) -> CrResult {
        self.pages += n;
        match &mut self.open {
            Some((first, len)) if *first + *len * PAGE_SIZE as u64 == addr => *len += n,
            _ => {
                self.finish(runs)?;
                self.open = Some((addr, n));
            }
        }
        Ok(())
    }

    fn finish(&mut self, runs: &mut KVec<u8>) -> CrResult {
        if let Some((first, n)) = self.open.take() {
            runs.extend_from_slice(&first.to_le_bytes(), GFP_KERNEL)?;
            runs.extend_from_slice(&n.to_le_bytes(), GFP_KERNEL)?;
            self.count += 1;
        }
        Ok(())
    }
}

impl Copies {
    /// Forgets the pages of areas that are not the same as when they were copied: a page of
    /// an area unmapped, remapped or moved since is copied again.
    pub(crate) fn follow_layout(&mut self, layout: &Layout) -> CrResult {
        let mut areas = KVec::new();
        for a in layout.areas.iter() {
            let v = &a.vma.info;
            if matches!(a.kind, vma_kind::ANON | vma_kind::FILE_PRIVATE) {
                let key = AreaKey {
                    start: v.start,
                    end: v.end,
                    vm_flags: v.vm_flags,
                    pgoff: v.pgoff,
                    file: a.vma.file.as_ref().map_or(0, |f| f.as_ptr() as usize),
                };
                areas.push(key, GFP_KERNEL)?;
            }
        }
        if areas == self.areas {
            return Ok(());
        }
        let old = core::mem::replace(&mut self.areas, areas);
        let stable = |addr: u64| {
            self.areas
                .iter()
                .any(|k| k.start <= addr && addr < k.end && old.contains(k))
        };
        self.pages.retain(|p| stable(p.addr));
        Ok(())
    }
}

/// One round of a thawed checkpoint for one address space, while its tasks run: harvests the
/// dirty state of its private areas and writes a PRECOPY record of every page not copied yet or
/// written since its copy. `buf` is room to copy pages in. Returns the pages copied.
pub(crate) fn copy_round(
    out: &mut ImageOut,
    space: &mut CopiedSpace,
    layout: &Layout,
    buf: &mut KVVec<u8>,
) -> CrResult<u64> {
    space.follow_layout(layout)?;
    let mut next = KVVec::with_capacity(space.pages.len(), GFP_KERNEL)?;
    let mut walked = Walked::with_capacity(PAGES_PER_RECORD)?;
    let mut addrs = KVec::with_capacity(PAGES_PER_RECORD * 8, GFP_KERNEL)?;
    let mut copied = 0;
    let mut copies = CopiesCursor::new(&space.pages);
    for a in layout.areas.iter() {
        let flags = match a.kind {
            vma_kind::ANON => CR_SCAN_HARVEST,
            vma_kind::FILE_PRIVATE => CR_SCAN_HARVEST | CR_SCAN_ANON_ONLY,
            _ => continue,
        };
        let (start, end) = (a.vma.info.start, a.vma.info.end);
        let mut cursor = start;
        while cursor < end {
            walked
                .walk(&layout.mm, &mut cursor, end, flags, Some(&mut copies))
                .map_err(walk_error)?;
            addrs.clear();
            buf.clear();
            for (i, r) in walked.reports().enumerate() {
                if r.unchanged() {
                    let kept = copies.run(r.addr, r.run).map_err(bad_run)?;
                    next.extend_from_slice(kept, GFP_KERNEL)?;
                    continue;
                }
                // Pinned pages and those not present are read in the frozen round.
                if r.frame == 0 || r.flags & CR_REF_PINNED != 0 {
                    continue;
                }
                walked.copy_running(i, buf)?;
                addrs.extend_from_slice(&r.addr.to_le_bytes(), GFP_KERNEL)?;
                let copy = CopiedPage {
                    addr: r.addr,
                    frame: r.frame,
                };
                next.push(copy, GFP_KERNEL)?;
            }
            let n = addrs.len() / 8;
            if n == 0 {
                continue;
            }
            let pre = PrecopyHeader { mm: space.id };
            let head = PagesHeader {
                count: n as u32,
                reserved: 0,
            };
            out.record(
                RecordKind::Precopy as u32,
                &[&pre.encode()[..], &head.encode()[..], &addrs[..], &buf[..]],
            )?;
            copied += n as u64;
        }
    }
    space.pages = next;
    Ok(copied)
}

/// What restart keeps between the MM record and the end of the part.
#[derive(Default)]
pub(crate) struct KeptMm {
    info: MmInfo,
    exe: Option<ARef<File>>,
}

/// The identity a mapped file (or the executable) must still have, as a FILE record would say.
fn mapped_file(dev: u64, ino: u64, flags: u32) -> FileRecord {
    FileRecord {
        kind: file_kind::REGULAR,
        flags,
        dev,
        ino,
        mode: bindings::S_IFREG,
        ..FileRecord::default()
    }
}

fn reopen_mapped(cx: &LoadCx<'_>, path: &[u8], rec: &FileRecord) -> CrResult<ARef<File>> {
    let path = nul_terminated(path)?;
    files::reopen(&path, rec).map_err(|e| e.at(cx.input.offset()))
}

/// A record of the mm part: MM first, then VMA, PAGES and SHMEM records. The caller's own
/// address space is replaced as they come: from the MM record on, a failure can only kill it.
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut KeptMm, kind: u32) -> CrResult {
    match RecordKind::from_u32(kind) {
        Some(RecordKind::Mm) => load_mm(cx, kept),
        Some(RecordKind::Vma) => map_area(cx),
        Some(RecordKind::Shmem) => shmem::load(cx),
        Some(RecordKind::Pages) => match &cx.pages {
            PagesFor::Area { start, end } => fill_area(cx, *start, *end),
            PagesFor::Shmem { .. } => shmem::load_pages(cx),
            PagesFor::Nothing => Err(cx.malformed(ErrorKind::BadField("PAGES without an area"))),
        },
        Some(RecordKind::Keep) => match &cx.pages {
            PagesFor::Area { start, end } => keep_area(cx, *start, *end),
            _ => Err(cx.malformed(ErrorKind::BadField("KEEP without an area"))),
        },
        _ => Err(cx.malformed(ErrorKind::UnknownKind(kind))),
    }
}

fn load_mm(cx: &mut LoadCx<'_>, kept: &mut KeptMm) -> CrResult {
    let m = LoadCx::decode(cx.input, records::Mm::decode)?;
    let r = m.rec;
    let mut info = MmInfo {
        start_code: r.start_code,
        end_code: r.end_code,
        start_data: r.start_data,
        end_data: r.end_data,
        start_brk: r.start_brk,
        brk: r.brk,
        start_stack: r.start_stack,
        arg_start: r.arg_start,
        arg_end: r.arg_end,
        env_start: r.env_start,
        env_end: r.env_end,
        vdso: r.vdso,
        auxv_words: r.auxv_words,
        ..MmInfo::default()
    };
    for (i, w) in m.auxv().enumerate() {
        info.auxv[i] = w;
    }
    kept.exe = Some(reopen_mapped(
        cx,
        m.exe,
        &mapped_file(r.exe_dev, r.exe_ino, bindings::O_RDONLY),
    )?);
    kept.info = info;
    if !cx.dry_run {
        current::unmap_all().map_err(|e| cx.fail(e, "unmapping the old address space failed"))?;
    }
    Ok(())
}

/// Recreates the area a VMA record describes (just checks it, in a dry run).
fn map_area(cx: &mut LoadCx<'_>) -> CrResult {
    let v = LoadCx::decode(cx.input, records::Vma::decode)?;
    let rec = v.rec;
    let map = |cx: &LoadCx<'_>, file: Option<&File>, what| {
        if cx.dry_run {
            return Ok(());
        }
        current::map(file, rec.start, rec.end, rec.vm_flags, rec.pgoff)
            .map_err(|e| cx.fail(e, what))
    };
    match rec.kind {
        vma_kind::ANON => map(cx, None, "recreating an anonymous mapping failed")?,
        vma_kind::FILE_PRIVATE => {
            let file = reopen_mapped(
                cx,
                v.path,
                &mapped_file(rec.dev, rec.ino, bindings::O_RDONLY),
            )?;
            map(cx, Some(&file), "recreating a file mapping failed")?;
        }
        vma_kind::FILE_SHARED => {
            // A shared mapping that may write needs a file open for writing.
            let flags = if rec.vm_flags & VM_MAYWRITE != 0 {
                bindings::O_RDWR
            } else {
                bindings::O_RDONLY
            };
            let file = reopen_mapped(cx, v.path, &mapped_file(rec.dev, rec.ino, flags))?;
            map(cx, Some(&file), "recreating a shared file mapping failed")?;
        }
        vma_kind::SHMEM => {
            let file = shmem::object(cx, rec.object)?;
            map(cx, Some(&file), "mapping shared memory failed")?;
        }
        vma_kind::VDSO if !cx.dry_run => current::map_vdso(rec.start)
            .map_err(|e| cx.fail(e, "mapping the vDSO at its address failed"))?,
        // The vDSO's data pages are mapped together with it.
        vma_kind::VDSO | vma_kind::VVAR => {}
        _ => return Err(cx.malformed(ErrorKind::BadField("vma kind"))),
    }
    cx.pages = if v.has_pages() {
        PagesFor::Area {
            start: rec.start,
            end: rec.end,
        }
    } else {
        PagesFor::Nothing
    };
    Ok(())
}

/// PAGES of the area the VMA record before mapped: each run of consecutive pages is read from
/// the image straight into the task's memory, once.
fn fill_area(cx: &mut LoadCx<'_>, start: u64, end: u64) -> CrResult {
    let list = cx.input.pages()?;
    let (first, last) = list.span();
    if first < start || last >= end {
        return Err(cx.malformed(ErrorKind::BadField("page address")));
    }
    let chunks = prefault::chunks_of(list.runs())?;
    in_own_memory(cx, |cx, mm| {
        prefault::place_chunks(mm, &chunks, |_, n, own, other_cpu_busy| {
            let own = own.map_err(|e| cx.fail(e, NOT_PRESENT))?;
            cx.input.pages_into(own, other_cpu_busy)?;
            cx.tally.pages += n as u64;
            Ok(())
        })
    })
}

const NOT_PRESENT: &str = "making the task's pages present failed";

/// Runs `place` on the restoring task's own address space; a dry run places nothing.
fn in_own_memory(
    cx: &mut LoadCx<'_>,
    place: impl FnOnce(&mut LoadCx<'_>, &MmWithUser) -> CrResult,
) -> CrResult {
    if cx.dry_run {
        return Ok(());
    }
    let current = kernel::current!();
    let mm = current
        .mm()
        .ok_or_else(|| cx.fail(EINVAL, "the restoring task has no address space"))?;
    place(cx, mm)
}

/// KEEP of the area the VMA record before mapped: each run is read from the pages restart
/// staged of the precopy image, at their addresses, straight into the task's memory.
fn keep_area(cx: &mut LoadCx<'_>, start: u64, end: u64) -> CrResult {
    let keep = LoadCx::decode(cx.input, records::Keep::decode)?;
    let (first, last) = keep.span();
    if first < start || last > end {
        return Err(cx.malformed(ErrorKind::BadField("keep address")));
    }
    let mut runs = KVec::with_capacity(keep.head.count as usize, GFP_KERNEL)?;
    for run in keep.runs() {
        runs.push(run, GFP_KERNEL)?;
    }
    let mm_id = keep.head.mm;
    let staged = cx
        .staged
        .iter()
        .find(|(id, _)| *id == mm_id)
        .map(|(_, f)| f.clone())
        .ok_or_else(|| {
            cx.fail(
                ENOENT,
                "no pages staged for a precopied address space (restart stages them from the precopy image)",
            )
        })?;
    for &(addr, n) in runs.iter() {
        let holds = staged
            .holds(addr, n * PAGE_SIZE as u64)
            .map_err(|e| cx.fail(e, "reading the staged pages failed"))?;
        if !holds {
            return Err(cx.fail(ENODATA, "the precopy image lacks pages the image keeps"));
        }
    }
    let chunks = prefault::chunks_of(runs.iter().map(|&(addr, n)| (addr, n as usize)))?;
    in_own_memory(cx, |cx, mm| {
        // Each page is kept once: its staged copy is freed soon after it is in place, a
        // record's worth at a time, so that the restart does not hold the memory twice.
        let mut placed: Option<(u64, u64)> = None;
        prefault::place_chunks(mm, &chunks, |addr, n, own, _| -> CrResult {
            let own = own.map_err(|e| cx.fail(e, NOT_PRESENT))?;
            staged
                .set_pos(addr)
                .and_then(|()| own.fill_from(&staged))
                .map_err(|e| cx.fail(e, "reading the staged pages failed"))?;
            let len = (n * PAGE_SIZE) as u64;
            placed = match placed {
                Some((at, done)) if at + done == addr && done < PUNCH_BYTES => {
                    Some((at, done + len))
                }
                Some((at, done)) => {
                    punch(cx, &staged, at, done)?;
                    Some((addr, len))
                }
                None => Some((addr, len)),
            };
            cx.tally.pages += n as u64;
            Ok(())
        })?;
        match placed {
            Some((at, done)) => punch(cx, &staged, at, done),
            None => Ok(()),
        }
    })
}

/// Staged pages freed at a time once in place.
const PUNCH_BYTES: u64 = (PAGES_PER_RECORD * PAGE_SIZE) as u64;

fn punch(cx: &LoadCx<'_>, staged: &File, at: u64, len: u64) -> CrResult {
    staged
        .punch(at, len)
        .map_err(|e| cx.fail(e, "freeing the staged pages failed"))
}

/// After the last area: the layout fields and the executable.
pub(crate) fn finish(cx: &mut LoadCx<'_>, kept: &mut KeptMm) -> CrResult {
    cx.pages = PagesFor::Nothing;
    let Some(exe) = kept.exe.take() else {
        return Err(cx.malformed(ErrorKind::BadField("mm")));
    };
    if cx.dry_run {
        return Ok(());
    }
    current::set_mm(&kept.info, &exe).why("restoring the mm layout failed")
}
