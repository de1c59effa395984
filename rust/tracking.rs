// SPDX-License-Identifier: GPL-2.0

//! What was copied of an address space, and from which frames, kept from one checkpoint to the
//! next, so that the next one writes only what changed.
//!
//! A thawed checkpoint's rounds track the address spaces of the tree while they run, and its
//! frozen round writes a KEEP record for each page unchanged since its copy. A checkpoint with
//! `CR_CHECKPOINT_TRACK` keeps the tracking once its image is written, named by the image's
//! trailer; a later checkpoint that `CR_IOC_PARENT` makes incremental to that image takes it
//! back, and its KEEP records then refer to the parent's memory.
//!
//! Tracking an address space means harvesting its page tables' dirty state, which each harvest
//! clears: two trackers of one address space would each miss what the other cleared. So one
//! checkpoint at a time tracks an address space ([`TRACKED`], `EBUSY` for another), and a new
//! tracker makes the module forget what an earlier image kept of it.

// `global_lock!` names `Pin`.
use core::ops::{Deref, DerefMut};
use core::pin::Pin;

use kernel::{
    mm::{Mm, MmWithUser},
    prelude::*,
    sync::aref::ARef,
    uaccess::{UserPtr, UserSlice},
};

use crate::cx::release_if_idle;
use crate::error::{CrError, CrResult};
use crate::format::{ParentRecord, RecordKind, Trailer};
use crate::image::{ImageOut, Log};
use crate::shim::CopiedPage;
use crate::uapi::ParentArgs;

/// Images whose tracking the module keeps at most; the oldest is forgotten first.
const KEPT_IMAGES_MAX: usize = 16;

/// Longest path of a parent image.
const PATH_MAX: usize = 4096;

/// One private area, as tracking compares it from one checkpoint to the next: a page copied in
/// an area that changed since (unmapped, remapped, moved) is copied again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AreaKey {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) vm_flags: u64,
    pub(crate) pgoff: u64,
    pub(crate) file: usize,
}

/// What was copied of one address space.
pub(crate) struct Copies {
    /// Its id in PRECOPY and KEEP records ([`crate::format::FRESH_SPACE`]).
    pub(crate) id: u64,
    /// Held by its `mm_count` only: its identity is not reused while it is held, and its memory
    /// is not kept alive by it.
    pub(crate) mm: ARef<Mm>,
    /// Its private areas when it was copied.
    pub(crate) areas: KVec<AreaKey>,
    /// Each page copied, by address, with the frame the copy was made from.
    pub(crate) pages: KVVec<CopiedPage>,
}

impl Copies {
    /// Whether these are the copies of `mm`.
    pub(crate) fn is_of(&self, mm: &Mm) -> bool {
        self.mm.as_raw() == mm.as_raw()
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialized in the module's init, before /dev/cr exists.
    pub(crate) unsafe(uninit) static TRACKED: Mutex<KVec<usize>> = KVec::new();
}

/// An address space in [`TRACKED`], until dropped.
struct Claim(usize);

impl Drop for Claim {
    fn drop(&mut self) {
        let identity = self.0;
        release_if_idle(&mut TRACKED.lock(), |&t| t != identity);
    }
}

/// An address space a checkpoint tracks now: its copies, and its claim on it.
pub(crate) struct CopiedSpace {
    copies: Copies,
    _claim: Claim,
}

impl CopiedSpace {
    /// Starts tracking `mm` from nothing, with id `id`.
    pub(crate) fn new(id: u64, mm: &MmWithUser) -> CrResult<Self> {
        Self::resume(Copies {
            id,
            mm: ARef::from(&**mm),
            areas: KVec::new(),
            pages: KVVec::new(),
        })
    }

    /// Goes on tracking from `copies`, which no other checkpoint may track meanwhile. What an
    /// earlier image kept of the same address space is forgotten: this harvest clears the dirty
    /// state that it relies on.
    pub(crate) fn resume(copies: Copies) -> CrResult<Self> {
        let identity = copies.mm.as_raw() as usize;
        {
            let mut tracked = TRACKED.lock();
            if tracked.contains(&identity) {
                return Err(CrError::new(
                    EBUSY,
                    "another thawed checkpoint tracks this address space",
                ));
            }
            tracked.push(identity, GFP_KERNEL)?;
        }
        let me = Self {
            copies,
            _claim: Claim(identity),
        };
        forget_space(&me.copies.mm);
        Ok(me)
    }

    /// Ends the tracking, and returns what it copied.
    pub(crate) fn into_copies(self) -> Copies {
        self.copies
    }
}

impl Deref for CopiedSpace {
    type Target = Copies;

    fn deref(&self) -> &Copies {
        &self.copies
    }
}

impl DerefMut for CopiedSpace {
    fn deref_mut(&mut self) -> &mut Copies {
        &mut self.copies
    }
}

/// The image a checkpoint is incremental to, as `CR_IOC_PARENT` named it.
pub(crate) struct ParentRef {
    /// Its length before its trailer record.
    pub(crate) length: u64,
    /// Its trailer's checksum.
    pub(crate) checksum: u64,
    /// Where the caller found it: absolute, or empty.
    pub(crate) path: KVec<u8>,
}

impl ParentRef {
    /// Reads the caller's arguments; the path must be absolute, without NUL.
    pub(crate) fn read(args: &ParentArgs) -> Result<Self> {
        let len = args.path_len as usize;
        if args.reserved != 0 || len > PATH_MAX || (len == 0) != (args.path == 0) {
            return Err(EINVAL);
        }
        let mut path = KVec::new();
        if len > 0 {
            let user = UserSlice::new(UserPtr::from_addr(args.path as usize), len);
            user.read_all(&mut path, GFP_KERNEL)?;
            if path[0] != b'/' || path.contains(&0) {
                return Err(EINVAL);
            }
        }
        Ok(Self {
            length: args.length,
            checksum: args.checksum,
            path,
        })
    }

    fn names(&self, kept: &KeptImage) -> bool {
        self.length == kept.length && self.checksum == kept.checksum
    }
}

/// What an image with `CR_CHECKPOINT_TRACK` kept tracking, named by its trailer.
pub(crate) struct KeptImage {
    length: u64,
    checksum: u64,
    spaces: KVec<Copies>,
}

kernel::sync::global_lock! {
    // SAFETY: initialized in the module's init, before /dev/cr exists.
    pub(crate) unsafe(uninit) static KEPT: Mutex<KVec<KeptImage>> = KVec::new();
}

/// Keeps `spaces`, as the image with `trailer` copied them, for an incremental image to come.
/// Images whose address spaces are all gone are forgotten, and the oldest beyond
/// [`KEPT_IMAGES_MAX`].
pub(crate) fn keep(trailer: &Trailer, spaces: KVec<Copies>) -> CrResult {
    let image = KeptImage {
        length: trailer.stream_len,
        checksum: trailer.xxh64,
        spaces,
    };
    let mut kept = KEPT.lock();
    kept.retain(|k| k.spaces.iter().any(|s| s.mm.mmget_not_zero().is_some()));
    while kept.len() >= KEPT_IMAGES_MAX {
        let _ = kept.remove(0);
    }
    kept.push(image, GFP_KERNEL)?;
    Ok(())
}

/// Takes what the image `parent` names kept, if the module still has it and any of its
/// address spaces is still there.
fn take(parent: &ParentRef) -> Option<KVec<Copies>> {
    let mut kept = KEPT.lock();
    kept.retain(|k| k.spaces.iter().any(|s| s.mm.mmget_not_zero().is_some()));
    let at = kept.iter().position(|k| parent.names(k))?;
    kept.remove(at).ok().map(|k| k.spaces)
}

/// The image a checkpoint is incremental to, with what the module kept of its address spaces
/// that no one has taken back yet.
pub(crate) struct Parent {
    pub(crate) named: ParentRef,
    kept: KVec<Copies>,
}

impl Parent {
    /// What the module kept of `parent`; if nothing, says on `log` that the image will hold
    /// every page, without a parent.
    pub(crate) fn take(parent: ParentRef, log: &Log) -> Option<Self> {
        match take(&parent) {
            Some(kept) => Some(Self {
                named: parent,
                kept,
            }),
            None => {
                log.line(format_args!(
                    "the parent image is not tracked (any more): writing a whole image"
                ));
                None
            }
        }
    }

    /// Takes back what was kept of `mm`, if anything.
    pub(crate) fn take_space(&mut self, mm: &Mm) -> Option<Copies> {
        let at = self.kept.iter().position(|s| s.is_of(mm))?;
        self.kept.remove(at).ok()
    }
}

/// The PARENT record, right after the header of an image incremental to `parent` (nothing for
/// a whole image).
pub(crate) fn write_parent(out: &mut ImageOut, parent: Option<&ParentRef>) -> CrResult {
    let Some(parent) = parent else {
        return Ok(());
    };
    let rec = ParentRecord {
        length: parent.length,
        checksum: parent.checksum,
        path_len: parent.path.len() as u32,
        reserved: 0,
    };
    out.record(RecordKind::Parent as u32, &[&rec.encode(), &parent.path])?;
    Ok(())
}

/// Forgets what any image kept of `mm`.
fn forget_space(mm: &Mm) {
    let mut kept = KEPT.lock();
    for image in kept.iter_mut() {
        image.spaces.retain(|s| !s.is_of(mm));
    }
    kept.retain(|k| !k.spaces.is_empty());
}

/// Forgets everything kept, at module unload.
pub(crate) fn forget_all() {
    let all = core::mem::take(&mut *KEPT.lock());
    drop(all);
}
