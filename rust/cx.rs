// SPDX-License-Identifier: GPL-2.0

//! What every kind of state is handed when it is saved or loaded: the contexts, below every
//! per-kind module and above nothing of theirs.

use kernel::{fs::File, pid_namespace::PidNamespace, prelude::*, sync::aref::ARef, task::Task};

use crate::error::{CrError, CrResult};
use crate::format::{ErrorKind, RecordKind};
use crate::image::{ImageIn, ImageOut, SideHasher};
use crate::objhash::{LoadObjects, SaveObjects};
use crate::records::Decoded;

/// Page size of the kernel cr is built for, which is the image format's.
pub(crate) const PAGE_SIZE: usize = kernel::page::PAGE_SIZE;
const _: () = assert!(PAGE_SIZE == crate::records::PAGE_SIZE);

/// A checkpoint, for one task: the task, the pid namespace its ids are written in, the image,
/// and the objhash.
pub(crate) struct SaveCx<'a> {
    pub(crate) task: &'a Task,
    pub(crate) ns: &'a PidNamespace,
    pub(crate) out: &'a mut ImageOut,
    pub(crate) objs: &'a mut SaveObjects,
    pub(crate) tally: &'a mut Tally,
}

/// What a checkpoint or a restart moved, for `CR_*_STATS`.
#[derive(Default)]
pub(crate) struct Tally {
    /// Pages of memory written or placed.
    pub(crate) pages: u64,
}

impl SaveCx<'_> {
    /// Writes one record whose payload is the concatenation of `parts`.
    pub(crate) fn record(&mut self, kind: RecordKind, parts: &[&[u8]]) -> CrResult {
        self.out.record(kind as u32, parts)?;
        Ok(())
    }

    /// Writes a PAGES record: `head` (count and addresses), then `pages`, copied once, straight
    /// from where they are into the stream, and hashed meanwhile on another CPU.
    pub(crate) fn pages(&mut self, head: &[&[u8]], pages: &[&[u8]]) -> CrResult {
        self.tally.pages += pages.len() as u64;
        let mut hasher = SideHasher::new(pages);
        self.out
            .record_split(RecordKind::Pages as u32, head, pages, &mut hasher)?;
        Ok(())
    }
}

/// What the PAGES records that follow fill.
#[derive(Default)]
pub(crate) enum PagesFor {
    /// Nothing: a PAGES record here is out of place.
    #[default]
    Nothing,
    /// The private memory area `[start, end)` just mapped.
    Area { start: u64, end: u64 },
    /// The shmem object just created, by offset.
    Shmem { file: ARef<File>, size: u64 },
}

/// A restart, for one task: the image, positioned at a record its part owns, and the objhash.
pub(crate) struct LoadCx<'a> {
    pub(crate) input: &'a mut ImageIn,
    pub(crate) objects: &'a mut LoadObjects,
    /// A dry run: everything is checked, files reopened and objects created, but nothing of the
    /// caller changes and no object is filled.
    pub(crate) dry_run: bool,
    /// What a PAGES record fills: set by the VMA or SHMEM record before it.
    pub(crate) pages: PagesFor,
    pub(crate) tally: &'a mut Tally,
    /// The pages staged of a thawed checkpoint's precopy image, by address space id: files
    /// whose byte at offset A is the byte at address A.
    pub(crate) staged: &'a [(u64, ARef<File>)],
}

impl LoadCx<'_> {
    /// Decodes the current record with a `records` decoder; a malformed one fails at its
    /// offset.
    pub(crate) fn decode<'p, T>(
        input: &'p ImageIn,
        decoder: impl FnOnce(&'p [u8]) -> Decoded<T>,
    ) -> CrResult<T> {
        decoder(input.payload()).map_err(|k| input.malformed(k))
    }

    /// A failure at the current record.
    pub(crate) fn fail(&self, err: Error, reason: &'static str) -> CrError {
        self.input.fail(err, reason)
    }

    /// A malformed-record failure at the current record.
    pub(crate) fn malformed(&self, kind: ErrorKind) -> CrError {
        self.input.malformed(kind)
    }
}

/// Keeps the entries of a global registry that `keep` says, and frees its room once it is empty:
/// statics are never dropped, so an idle registry must hold no allocation that module unload
/// would leak.
pub(crate) fn release_if_idle<T>(registry: &mut KVec<T>, mut keep: impl FnMut(&T) -> bool) {
    registry.retain(|t| keep(t));
    if registry.is_empty() {
        *registry = KVec::new();
    }
}
