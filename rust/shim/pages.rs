// SPDX-License-Identifier: GPL-2.0

//! Referenced pages: those a walk found in another task's address space ([`Walked`]), and the
//! caller's own, made present for restart to fill in place ([`OwnPages`]). Both put their
//! references when cleared or dropped.

use core::ffi::c_long;

use kernel::{bindings, fs::File, mm::MmWithUser, prelude::*};

use super::check;
use super::ffi::{self, CopiesRef, PageRef, CR_REF_ELSEWHERE};
use kernel::page::PAGE_SIZE;

/// A page copied before (`struct cr_copied_page`): where it was mapped, and the frame it was
/// copied from, an identity for telling whether the address still maps that frame.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CopiedPage {
    pub(crate) addr: u64,
    pub(crate) frame: usize,
}

/// Pages copied before, by increasing address, read beside the walks of an address space that
/// report, without a reference, the runs of them unchanged since.
pub(crate) struct CopiesCursor<'a> {
    pages: &'a [CopiedPage],
    /// Where the kernel's walks are in `pages`.
    walked: usize,
    /// Past the last unchanged run found in `pages`.
    runs_end: usize,
}

impl<'a> CopiesCursor<'a> {
    pub(crate) fn new(pages: &'a [CopiedPage]) -> Self {
        Self {
            pages,
            walked: 0,
            runs_end: 0,
        }
    }

    /// The copies of the `run` pages from `addr` that a walk reported unchanged. Runs come in
    /// increasing address order.
    pub(crate) fn run(&mut self, addr: u64, run: u32) -> Result<&'a [CopiedPage]> {
        let rest = self.pages.get(self.runs_end..).ok_or(EIO)?;
        let from = self.runs_end + rest.partition_point(|p| p.addr < addr);
        let to = from.checked_add(run as usize).ok_or(EIO)?;
        let pages = self.pages.get(from..to).ok_or(EIO)?;
        let last = addr.wrapping_add(u64::from(run).wrapping_sub(1) * PAGE_SIZE as u64);
        // Addresses are distinct and sorted: the first and the last place every page between.
        match (pages.first(), pages.last()) {
            (Some(f), Some(l)) if f.addr == addr && l.addr == last => {
                self.runs_end = to;
                Ok(pages)
            }
            _ => Err(EIO),
        }
    }
}

/// One report of a walk: a page, or a run of pages unchanged since their copies.
#[derive(Clone, Copy)]
pub(crate) struct Reported {
    pub(crate) addr: u64,
    /// `CR_REF_*`.
    pub(crate) flags: u32,
    /// The page's identity, 0 for one not read in or for an unchanged run.
    pub(crate) frame: usize,
    /// Pages from `addr`: the length of an unchanged run, else 1.
    pub(crate) run: u32,
}

impl Reported {
    /// Whether this is a run of pages unchanged since their copies.
    pub(crate) fn unchanged(&self) -> bool {
        self.flags & ffi::CR_REF_UNCHANGED != 0
    }
}

/// The contents of a referenced page, through the kernel's direct map.
///
/// # Safety
///
/// `page` is referenced for at least `'a`, and nothing writes it while the slice lives.
unsafe fn contents<'a>(page: *mut bindings::page) -> &'a [u8] {
    // SAFETY: a referenced page is mapped at `page_address()` (no highmem, as shim.c asserts)
    // for PAGE_SIZE bytes; the caller rules out writers.
    unsafe { core::slice::from_raw_parts(ffi::cr_page_address(page).cast(), PAGE_SIZE) }
}

fn put(page: *mut bindings::page) {
    // SAFETY: every page this module holds was returned referenced by the shim, once.
    unsafe { ffi::cr_put_page(page) }
}

/// Pages mapped in part of another task's address space, found by [`Walked::walk`].
pub(crate) struct Walked {
    refs: KVec<PageRef>,
}

impl Walked {
    /// Room for `max` pages per walk.
    pub(crate) fn with_capacity(max: usize) -> Result<Self> {
        Ok(Self {
            refs: KVec::with_capacity(max, GFP_KERNEL)?,
        })
    }

    /// Replaces the batch with the pages of `[*cursor, end)` in `mm`, from `*cursor` on, as many
    /// as fit; advances `*cursor` past them. `flags` are `CR_SCAN_*`. A harvest given `copies`
    /// reports the pages it finds unchanged since their copies in runs, without references.
    pub(crate) fn walk(
        &mut self,
        mm: &MmWithUser,
        cursor: &mut u64,
        end: u64,
        flags: u32,
        copies: Option<&mut CopiesCursor<'_>>,
    ) -> Result {
        self.clear();
        let room = self.refs.capacity();
        let mut known = copies.as_ref().map(|c| CopiesRef {
            pages: c.pages.as_ptr().cast(),
            count: c.pages.len() as u64,
            at: c.walked as u64,
        });
        let known_ptr = known
            .as_mut()
            .map_or(core::ptr::null_mut(), core::ptr::from_mut);
        // SAFETY: the mm has a user count; `refs` has room for `room` entries, which the shim
        // fills with referenced pages (or NULL ones) and counts; `known`, if any, describes
        // `copies`' slice, which the kernel only reads, and its cursor, which it advances.
        let n = unsafe {
            ffi::cr_mm_walk_pages(
                mm.as_raw(),
                cursor,
                end,
                flags,
                known_ptr,
                self.refs.as_mut_ptr(),
                room as c_long,
            )
        };
        if let (Some(c), Some(k)) = (copies, known) {
            c.walked = (k.at as usize).min(c.pages.len());
        }
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        // SAFETY: the shim initialised the first `n <= room` entries.
        unsafe { self.refs.inc_len(n as usize) };
        Ok(())
    }

    /// Reads in what the walk found elsewhere (swapped out, migrating), as a core dump would;
    /// a page that turned out to be a hole is dropped from the batch.
    pub(crate) fn fault_in_elsewhere(&mut self, mm: &MmWithUser) -> Result {
        for r in self.refs.iter_mut() {
            if r.page.is_null() && r.flags & CR_REF_ELSEWHERE != 0 {
                // SAFETY: the mm has a user count; `r.page` receives a referenced page or NULL.
                check(unsafe { ffi::cr_mm_fault_in(mm.as_raw(), r.addr, &mut r.page) })?;
            }
        }
        self.refs
            .retain(|r| !r.page.is_null() || r.flags & CR_REF_ELSEWHERE == 0);
        Ok(())
    }

    /// How many pages.
    pub(crate) fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether the batch is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Address and `CR_REF_*` flags of each page.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.refs.iter().map(|r| (r.addr, r.flags))
    }

    /// Each report, in address order.
    pub(crate) fn reports(&self) -> impl Iterator<Item = Reported> + '_ {
        self.refs.iter().map(|r| Reported {
            addr: r.addr,
            flags: r.flags,
            frame: r.page as usize,
            run: r.run,
        })
    }

    /// Appends a copy of the `i`th page to `into`, while its task may write it; a page not read
    /// in (a guard) is refused.
    pub(crate) fn copy_running(&self, i: usize, into: &mut KVVec<u8>) -> Result {
        let page = self.refs.get(i).map_or(core::ptr::null_mut(), |r| r.page);
        if page.is_null() {
            return Err(EINVAL);
        }
        let at = into.len();
        into.reserve(PAGE_SIZE, GFP_KERNEL)?;
        // SAFETY: the batch holds a reference on the page; `into` has room for PAGE_SIZE more
        // bytes at `at`, which the copy initialises. The page may be written while it is
        // copied, which the C copy tolerates and the caller's dirty tracking accounts for.
        unsafe {
            ffi::cr_copy_running_page(into.as_mut_ptr().add(at).cast(), page);
            into.inc_len(PAGE_SIZE);
        }
        Ok(())
    }

    /// The contents of each page, in order; a page not read in (a guard) has none.
    ///
    /// # Safety
    ///
    /// Nothing writes the pages while the slices live: the tasks that map them are frozen, and
    /// private pages are written by no one else.
    pub(crate) unsafe fn contents(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.refs.iter().map(|r| {
            // SAFETY: the batch holds a reference on the page until it is cleared, which needs
            // `&mut self`; the caller rules out writers.
            (!r.page.is_null()).then(|| unsafe { contents(r.page) })
        })
    }

    /// Puts every page.
    pub(crate) fn clear(&mut self) {
        for r in self.refs.drain_all() {
            if !r.page.is_null() {
                put(r.page);
            }
        }
    }
}

impl Drop for Walked {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Pages of the calling task's own address space, present, writable and referenced.
pub(crate) struct OwnPages {
    pages: KVec<*mut bindings::page>,
}

// SAFETY: the batch holds page references, which any task may put; it can move to another
// task's session (it stays in the restart's image reader between turns).
unsafe impl Send for OwnPages {}

impl OwnPages {
    /// Room for `max` pages.
    pub(crate) fn with_capacity(max: usize) -> Result<Self> {
        Ok(Self {
            pages: KVec::with_capacity(max, GFP_KERNEL)?,
        })
    }

    /// Replaces the batch with the `n` pages of `mm` from `addr` on (at most the capacity),
    /// faulting them in for writing whatever their protection, as a debugger's write would.
    /// `mm` is a restoring task's: the caller is that task, or a worker that makes its pages
    /// present ahead of it.
    pub(crate) fn take(&mut self, mm: &MmWithUser, addr: u64, n: usize) -> Result {
        self.clear();
        if n > self.pages.capacity() {
            return Err(EINVAL);
        }
        // SAFETY: the mm has a user count; `pages` has room for `n` entries, which the shim
        // fills with referenced pages.
        let got =
            unsafe { ffi::cr_mm_own_pages(mm.as_raw(), addr, n as u32, self.pages.as_mut_ptr()) };
        if got > 0 {
            // SAFETY: the shim initialised `got <= n` entries.
            unsafe { self.pages.inc_len(got as usize) };
        }
        match got {
            g if g < 0 => Err(Error::from_errno(g as i32)),
            g if g as usize != n => Err(EFAULT),
            _ => Ok(()),
        }
    }

    /// Moves every page of the batch, with its reference, to the end of `into`.
    pub(crate) fn move_to(&mut self, into: &mut OwnPages) -> Result {
        into.pages.reserve(self.pages.len(), GFP_KERNEL)?;
        for p in self.pages.drain_all() {
            // Cannot fail: the room was reserved above.
            let _ = into.pages.push_within_capacity(p);
        }
        Ok(())
    }

    /// Moves the `n` pages from `from` on to the end of `into`, with their references; they
    /// stay here as holes, which no one puts.
    pub(crate) fn lend_range(&mut self, from: usize, n: usize, into: &mut OwnPages) -> Result {
        let range = self.pages.get_mut(from..from + n).ok_or(EINVAL)?;
        into.pages.reserve(n, GFP_KERNEL)?;
        for p in range {
            let _ = into.pages.push_within_capacity(core::mem::take(p));
        }
        Ok(())
    }

    /// How many pages.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// Fills every page of the batch, in order, straight from `file`: one copy, from the page
    /// cache or the pipe into the task's memory. `ENODATA` at a premature end.
    pub(crate) fn fill_from(&mut self, file: &File) -> Result {
        // SAFETY: the file is referenced; the pages are referenced and each receives PAGE_SIZE
        // bytes through its kernel mapping.
        check(unsafe {
            ffi::cr_read_pages(
                file.as_ptr(),
                self.pages.as_mut_ptr(),
                self.pages.len() as u32,
            )
        })
    }

    /// The contents of each page, in order.
    pub(crate) fn contents(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.pages.iter().map(|&p| {
            // SAFETY: the batch holds a reference on the page until it is cleared, which needs
            // `&mut self`; the pages belong to the restoring task, which runs no user code
            // until the restore is over, so nothing writes them meanwhile.
            unsafe { contents(p) }
        })
    }

    /// Puts every page.
    pub(crate) fn clear(&mut self) {
        for p in self.pages.drain_all() {
            if !p.is_null() {
                put(p);
            }
        }
    }
}

impl Drop for OwnPages {
    fn drop(&mut self) {
        self.clear();
    }
}
