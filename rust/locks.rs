// SPDX-License-Identifier: GPL-2.0

//! File locks: LOCK, a `flock()`, POSIX record or open file description (OFD) lock that a
//! descriptor table's open files or the table itself hold.
//!
//! A flock or OFD lock belongs to an open file, and is saved by the table that defines that
//! file; a POSIX lock belongs to a descriptor table, on an inode, and is saved by that table,
//! through one of its open files of the inode opened for what the lock needs. Locks are read
//! from the inode's lock lists, never from /proc. A request still waiting is not a lock: its
//! task sleeps in `flock()` or `fcntl(F_SETLKW)`, is interrupted by the freeze and asks again
//! after the restart. At restart each lock is taken again without waiting once the task's
//! descriptors are in place (a POSIX lock's owner is the table), so a lock someone outside took
//! meanwhile fails the restart instead of blocking it. Leases are refused: they would need the
//! lease breaker's notification (SIGIO) to go to the restarted task.

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{CrError, CrResult};
use crate::format::{file_kind, lock_kind, ErrorKind, LockRecord, RecordKind, LOCK_TO_END};
use crate::objhash::Object;
use crate::records;
use crate::shim::ffi::{FileFacts, LockInfo, CR_FF_LOCKED, CR_LOCK_LEASE};
use crate::shim::FileExt;

/// One of a descriptor table's open files, as the table read it: the file, its facts and its
/// `file_kind`.
pub(crate) struct Open<'a> {
    pub(crate) file: &'a File,
    pub(crate) facts: &'a FileFacts,
    pub(crate) kind: u32,
}

/// A lock a table holds, or one of its open files: the open file's index in the table.
pub(crate) struct Held {
    open: usize,
    rec: LockRecord,
}

/// The locks on the inode of `file`, however many there are.
fn inode_locks(file: &File) -> CrResult<KVec<LockInfo>> {
    let mut room = 8;
    for _ in 0..8 {
        let mut locks = KVec::from_elem(LockInfo::default(), room, GFP_KERNEL)?;
        let n = file.locks(&mut locks);
        if n <= room {
            locks.truncate(n);
            return Ok(locks);
        }
        // Taken meanwhile; the tree is frozen, so only others' locks grow the list.
        room = n + 8;
    }
    Err(CrError::new(
        EAGAIN,
        "the locks on a file kept changing while they were read",
    ))
}

/// Whether `open` may hold a lock that writes (or reads): `fcntl()` asks the same of the
/// descriptor a POSIX lock is taken through.
fn opened_for(open: &Open<'_>, write: bool) -> bool {
    let mode = open.facts.flags & bindings::O_ACCMODE;
    if write {
        mode == bindings::O_WRONLY || mode == bindings::O_RDWR
    } else {
        mode == bindings::O_RDONLY || mode == bindings::O_RDWR
    }
}

/// The locks that the table `opens` (with identity `table`) or its open files hold, or why one
/// cannot be saved.
pub(crate) fn read(opens: &[Open<'_>], table: u64) -> CrResult<KVec<Held>> {
    let mut held = KVec::new();
    // Each inode is read once, through the first of the table's files to open it.
    let mut seen: KVec<(u64, u64)> = KVec::new();
    for o in opens.iter() {
        let inode = (o.facts.dev, o.facts.ino);
        if o.facts.facts & CR_FF_LOCKED == 0 || seen.contains(&inode) {
            continue;
        }
        seen.push(inode, GFP_KERNEL)?;
        for lock in inode_locks(o.file)?.iter() {
            if lock.kind == CR_LOCK_LEASE {
                return Err(CrError::unsupported(
                    "a lease on a file (F_SETLEASE) is not supported",
                ));
            }
            let write = lock.write != 0;
            let at = if lock.kind == lock_kind::POSIX {
                if lock.owner != table {
                    // Another table's: saved with that one, or no one's in the tree.
                    continue;
                }
                let same_inode = |p: &Open<'_>| (p.facts.dev, p.facts.ino) == inode;
                let through = |p: &Open<'_>| p.file.as_ptr() as u64 == lock.file;
                let usable = |p: &Open<'_>| same_inode(p) && opened_for(p, write);
                opens
                    .iter()
                    .position(|p| through(p) && usable(p))
                    .or_else(|| opens.iter().position(usable))
                    .ok_or(CrError::unsupported(
                        "a POSIX lock on a file none of its table's descriptors could take it through",
                    ))?
            } else {
                // A flock or OFD lock belongs to its open file, found by identity.
                match opens
                    .iter()
                    .position(|p| p.file.as_ptr() as u64 == lock.owner)
                {
                    Some(at) => at,
                    None => continue,
                }
            };
            if !matches!(
                opens[at].kind,
                file_kind::REGULAR | file_kind::DIRECTORY | file_kind::SHMEM
            ) {
                // Restart would lock a stand-in (the caller's terminal) or a new pipe.
                return Err(CrError::unsupported(
                    "a file lock on a file that is not a regular file or directory",
                ));
            }
            let (start, end) = match lock.kind {
                lock_kind::FLOCK => (0, 0),
                _ => (lock.start as u64, (lock.end as u64).min(LOCK_TO_END)),
            };
            let rec = LockRecord {
                file: 0,
                kind: lock.kind,
                write: u32::from(write),
                reserved: 0,
                start,
                end,
            };
            held.push(Held { open: at, rec }, GFP_KERNEL)?;
        }
    }
    Ok(held)
}

/// LOCK records for `held`, each naming its open file by the objref `objrefs` gives the open
/// file's index (and whether this table defined it: a flock or OFD lock goes with its file's
/// definition, a POSIX lock with its table).
pub(crate) fn save(cx: &mut SaveCx<'_>, held: &[Held], objrefs: &[(u32, bool)]) -> CrResult {
    for h in held.iter() {
        let (objref, defined_here) = objrefs[h.open];
        if h.rec.kind != lock_kind::POSIX && !defined_here {
            continue;
        }
        let rec = LockRecord {
            file: objref,
            ..h.rec
        };
        cx.record(RecordKind::Lock, &[&rec.encode()])?;
    }
    Ok(())
}

/// LOCK: a lock to take once the descriptors are in place.
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut KVec<(ARef<File>, LockRecord)>) -> CrResult {
    let rec = LoadCx::decode(cx.input, records::lock)?;
    let file = match cx.objects.get(rec.file) {
        Ok(Object::File(f)) => f.clone(),
        _ => return Err(cx.malformed(ErrorKind::BadObjref(rec.file))),
    };
    kept.push((file, rec), GFP_KERNEL)?;
    Ok(())
}

/// Takes every kept lock again, for the calling task (whose descriptor table is in place).
pub(crate) fn apply(kept: &[(ARef<File>, LockRecord)]) -> CrResult {
    for (file, rec) in kept.iter() {
        file.take_lock(rec.kind, rec.write == 1, rec.start as i64, rec.end as i64)
            .map_err(|e| {
                CrError::new(
                    e,
                    "a file lock cannot be taken again (someone else holds a conflicting one)",
                )
            })?;
    }
    Ok(())
}
