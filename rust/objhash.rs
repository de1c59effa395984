// SPDX-License-Identifier: GPL-2.0

//! The objhash, as linux-cr called it: every shared kernel object gets an objref the first time
//! a checkpoint meets it, and is referred to by that id afterwards, so that the stream stays
//! sequential and sharing survives the restart.
//!
//! Checkpoint side: [`SaveObjects`] maps kernel identities (pointers that are compared, never
//! dereferenced) to ids. Restart side: [`LoadObjects`] holds what each id was recreated as.

use kernel::{fs::File, prelude::*, sync::aref::ARef};

use crate::error::{Context, CrError, CrResult};
use crate::format::{ErrorKind, EventRecord, ObjrefSpace};
use crate::records::PipeSegment;
use crate::shim::{ffi::ShmemInfo, FileExt};

/// A sorted map from kernel identity to objref: O(log n) lookups for trees of thousands of
/// objects, and no allocation per lookup.
#[derive(Default)]
pub(crate) struct IdentityMap {
    entries: KVVec<(u64, u32)>,
}

impl IdentityMap {
    /// The id of `key`, if it has one.
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        self.entries
            .binary_search_by_key(&key, |e| e.0)
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// The id of `key`, allocating the next one from `space` when it has none; `true` when it
    /// was allocated now (the caller then writes the object's definition).
    pub(crate) fn get_or_allocate(
        &mut self,
        key: u64,
        space: &mut ObjrefSpace,
    ) -> CrResult<(u32, bool)> {
        match self.entries.binary_search_by_key(&key, |e| e.0) {
            Ok(i) => Ok((self.entries[i].1, false)),
            Err(i) => {
                let id = space
                    .allocate()
                    .ok_or(CrError::new(E2BIG, "too many objects in one image"))?;
                self.entries.reserve(1, GFP_KERNEL)?;
                let _ = self.entries.insert_within_capacity(i, (key, id));
                Ok((id, true))
            }
        }
    }
}

/// The checkpoint's objhash: one id space, one map per kind of identity.
#[derive(Default)]
pub(crate) struct SaveObjects {
    pub(crate) space: ObjrefSpace,
    /// Address spaces, descriptor tables, fs_structs, sighands (the TREE's objrefs).
    pub(crate) containers: IdentityMap,
    /// Open files (`struct file`).
    pub(crate) files: IdentityMap,
    /// Pipes (`struct pipe_inode_info`).
    pub(crate) pipes: IdentityMap,
    /// Event files (`struct file`: one EVENT per open file).
    pub(crate) events: IdentityMap,
    /// Shared-memory objects (their inode).
    pub(crate) shmem: IdentityMap,
}

/// What an objref stands for at restart.
pub(crate) enum Object {
    /// A TREE objref (address space, descriptor table, fs, sighand): the sharing itself is
    /// recreated by `restart`'s clone flags, so nothing is kept.
    Shared,
    /// An open file.
    File(ARef<File>),
    /// A pipe, anonymous or named: what the first FILE record that opens it made of it.
    Pipe(Pipe),
    /// An event file's state until the FILE that opens it takes it.
    Event(Option<EventRecord>),
    /// A shared-memory object, with the owner, mode, times and seals it gets once the whole
    /// image is read.
    Shmem { file: ARef<File>, info: ShmemInfo },
}

/// What a PIPE record says a pipe held: its capacity, its bytes and, when one of its buffers
/// is a packet, every buffer's length.
pub(crate) struct PipeContents {
    pub(crate) capacity: u32,
    pub(crate) data: KVVec<u8>,
    pub(crate) segments: KVec<PipeSegment>,
}

/// A pipe of a restart, as the FILE records that open it have made it so far.
pub(crate) enum Pipe {
    /// Defined by its PIPE record, opened by no FILE record yet.
    Unopened(PipeContents),
    /// Anonymous: both of its ends, and whether a FILE record took each already (any other
    /// open file of the same end is a new one, as a reopen through /proc makes).
    Anonymous {
        read: ARef<File>,
        write: ARef<File>,
        read_taken: bool,
        write_taken: bool,
    },
    /// A FIFO, held open for reading and writing until the restart ends.
    Named(ARef<File>),
}

/// The restart's objhash, shared by every task of the tree.
#[derive(Default)]
pub(crate) struct LoadObjects {
    space: ObjrefSpace,
    table: KVVec<Object>,
}

impl LoadObjects {
    /// Defines the next id as `obj`.
    pub(crate) fn define(&mut self, id: u32, obj: Object) -> CrResult {
        self.space.define(id)?;
        self.table.push(obj, GFP_KERNEL)?;
        Ok(())
    }

    /// For a TREE objref: defines it if it is the next id; `true` when it was defined now.
    pub(crate) fn define_or_ref_shared(&mut self, id: u32) -> CrResult<bool> {
        let now = self.space.define_or_ref(id)?;
        if now {
            self.table.push(Object::Shared, GFP_KERNEL)?;
        }
        Ok(now)
    }

    /// Whether `id` is defined already.
    pub(crate) fn is_defined(&self, id: u32) -> bool {
        self.space.check_ref(id).is_ok()
    }

    /// The object `id` names.
    pub(crate) fn get(&self, id: u32) -> core::result::Result<&Object, ErrorKind> {
        self.space.check_ref(id)?;
        self.table
            .get(id as usize - 1)
            .ok_or(ErrorKind::BadObjref(id))
    }

    /// The object `id` names, to change.
    pub(crate) fn get_mut(&mut self, id: u32) -> core::result::Result<&mut Object, ErrorKind> {
        self.space.check_ref(id)?;
        self.table
            .get_mut(id as usize - 1)
            .ok_or(ErrorKind::BadObjref(id))
    }

    /// Gives every shared-memory object its owner, mode and times (after its content, whose
    /// writes move the times) and a memfd its seals (after every mapping, since a write seal
    /// forbids writable ones).
    pub(crate) fn finish_shmem(&self) -> CrResult {
        for obj in self.table.iter() {
            if let Object::Shmem { file, info } = obj {
                file.set_shmem_attrs(info)
                    .why("restoring the owner, mode or times of shared memory failed")?;
                file.seal(info.seals).why("sealing a memfd failed")?;
            }
        }
        Ok(())
    }

    /// Drops every reference held: once all tasks installed their own, what is left over
    /// (a pipe end nobody kept) must go, so that readers see EOF as before.
    pub(crate) fn release(&mut self) {
        self.table.clear();
    }
}
