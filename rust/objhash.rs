// SPDX-License-Identifier: GPL-2.0

//! The objhash, as linux-cr called it: every shared kernel object gets an objref the first time
//! a checkpoint meets it, and is referred to by that id afterwards, so that the stream stays
//! sequential and sharing survives the restart.
//!
//! Checkpoint side: [`SaveObjects`] maps kernel identities (pointers that are compared, never
//! dereferenced) to ids. Restart side: [`LoadObjects`] holds what each id was recreated as.

use kernel::prelude::*;

use crate::format::{ErrorKind, ObjrefSpace};
use crate::image::{Failure, ImageIn};
use crate::shim::FileRef;

/// A sorted map from kernel identity to objref: O(log n) lookups for trees of thousands of
/// objects, and no allocation per lookup.
#[derive(Default)]
pub(crate) struct IdentityMap {
    entries: KVec<(u64, u32)>,
}

impl IdentityMap {
    /// The id of `key`, allocating the next one from `space` when it has none; `true` when it
    /// was allocated now (the caller then writes the object's definition).
    pub(crate) fn get_or_allocate(
        &mut self,
        key: u64,
        space: &mut ObjrefSpace,
    ) -> Result<(u32, bool)> {
        match self.entries.binary_search_by_key(&key, |e| e.0) {
            Ok(i) => Ok((self.entries[i].1, false)),
            Err(i) => {
                let id = space.allocate().ok_or(E2BIG)?;
                self.entries
                    .insert_within_capacity(i, (key, id))
                    .or_else(|_| {
                        self.entries.reserve(1, GFP_KERNEL)?;
                        self.entries
                            .insert_within_capacity(i, (key, id))
                            .map_err(|_| ENOMEM)
                    })?;
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
    /// Shared-memory objects (their inode).
    pub(crate) shmem: IdentityMap,
}

/// What an objref stands for at restart.
pub(crate) enum Object {
    /// A TREE objref (address space, descriptor table, fs, sighand): the sharing itself is
    /// recreated by `restart`'s clone flags, so nothing is kept.
    Shared,
    /// An open file.
    File(FileRef),
    /// A pipe: both of its ends, and whether a FILE record took each already (any other
    /// open file of the same end is a new one, as a reopen through /proc makes).
    Pipe {
        read: FileRef,
        write: FileRef,
        read_taken: bool,
        write_taken: bool,
    },
    /// A shared-memory object, and the seals it gets once every mapping exists.
    Shmem { file: FileRef, seals: u32 },
}

/// The restart's objhash, shared by every task of the tree.
#[derive(Default)]
pub(crate) struct LoadObjects {
    space: ObjrefSpace,
    table: KVec<Object>,
    /// A dry run: objects are created to check that they can be, but not filled.
    pub(crate) dry_run: bool,
}

impl LoadObjects {
    /// Defines the next id as `obj`.
    pub(crate) fn define(&mut self, id: u32, obj: Object) -> core::result::Result<(), Failed> {
        self.space.define(id).map_err(Failed::Format)?;
        self.table
            .push(obj, GFP_KERNEL)
            .map_err(|_| Failed::Alloc)?;
        Ok(())
    }

    /// For a TREE objref: defines it if it is the next id; `true` when it was defined now.
    pub(crate) fn define_or_ref_shared(&mut self, id: u32) -> core::result::Result<bool, Failed> {
        let now = self.space.define_or_ref(id).map_err(Failed::Format)?;
        if now {
            self.table
                .push(Object::Shared, GFP_KERNEL)
                .map_err(|_| Failed::Alloc)?;
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

    /// Seals the memfds, once every mapping of them exists (a write seal forbids new writable
    /// ones).
    pub(crate) fn seal_all(&self) -> Result {
        for obj in self.table.iter() {
            if let Object::Shmem { file, seals } = obj {
                file.seal(*seals)?;
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

/// Why defining an object failed.
pub(crate) enum Failed {
    /// The id breaks the stream's rules.
    Format(ErrorKind),
    /// Out of memory.
    Alloc,
}

impl Failed {
    /// The failure at the record `input` returned last.
    pub(crate) fn at(self, input: &ImageIn) -> Failure {
        match self {
            Failed::Format(k) => input.malformed(k),
            Failed::Alloc => input.fail(ENOMEM, "out of memory"),
        }
    }
}
