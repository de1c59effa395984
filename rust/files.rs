// SPDX-License-Identifier: GPL-2.0

//! The file descriptor table: FILE records, with the PIPE, EVENT and SHMEM records of the objects
//! they open, and the LOCK records of the locks the table and its open files hold (`locks.rs`).
//! Regular files, directories, memory devices, terminals, pipe ends, FIFOs, shmem files (memfds,
//! unlinked tmpfs files) and event files (eventfd, timerfd, signalfd, epoll) are saved;
//! everything else is refused, with the reason.
//!
//! Files are reopened by path and must be the same inode; terminals are re-attached to the
//! restarting caller's terminal, as CRIU's shell-job does. Pipe ends and shmem files open the
//! PIPE or SHMEM object their record names; a FIFO is reopened by path and refilled from its
//! PIPE.

use kernel::{bindings, fs::File, prelude::*, sync::aref::ARef, task::Task};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{
    event_kind, file_kind, shmem_kind, ErrorKind, EventRecord, FileRecord, LockRecord, RecordKind,
    PATH_MAX,
};
use crate::objhash::Object;
use crate::records::{self, MAX_FD};
use crate::shim::ffi::{FileFacts, CR_FF_KERNMOUNT, CR_FF_PIPE, CR_FF_SHMEM};
use crate::shim::{current, nul_terminated, open_path, FileExt, TaskExt};
use crate::{event, locks, pipe, shmem};

const S_IFMT: u32 = bindings::S_IFMT;

/// What an open file is, for cr: a [`file_kind`] and, for a shmem or event file, its
/// [`shmem_kind`] or [`event_kind`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    pub(crate) kind: u32,
    pub(crate) object_kind: u32,
}

fn is_tty(major: u32, minor: u32) -> bool {
    // /dev/ptmx (and so a pty master) is not a terminal restart can stand in for.
    if major == bindings::TTYAUX_MAJOR && minor == 2 {
        return false;
    }
    major == bindings::TTY_MAJOR
        || major == bindings::TTYAUX_MAJOR
        || (bindings::UNIX98_PTY_SLAVE_MAJOR
            ..bindings::UNIX98_PTY_SLAVE_MAJOR + bindings::UNIX98_PTY_MAJOR_COUNT)
            .contains(&major)
}

/// The name of a file's dentry, which for a file with no path is what its maker called it.
fn name_of(f: &FileFacts) -> &[u8] {
    &f.name[..f.name.iter().position(|&b| b == 0).unwrap_or(f.name.len())]
}

/// What kind of shmem object a regular file is: 0 for one that has a path.
fn shmem_class(f: &FileFacts) -> CrResult<u32> {
    if f.facts & CR_FF_SHMEM == 0 {
        return Ok(0);
    }
    if f.facts & CR_FF_KERNMOUNT == 0 {
        return Ok(if f.nlink == 0 {
            shmem_kind::UNLINKED
        } else {
            0
        });
    }
    // On the kernel's internal mount, the kernel names what it made.
    let name = name_of(f);
    if name.starts_with(b"memfd:") {
        Ok(shmem_kind::MEMFD)
    } else if name == b"dev/zero" {
        Ok(shmem_kind::ANON)
    } else if name.starts_with(b"SYSV") {
        Err(CrError::unsupported(
            "SysV shared memory is not supported yet",
        ))
    } else {
        Err(CrError::unsupported(
            "kernel-internal shared memory not supported",
        ))
    }
}

/// What an open file is, or why cr cannot reopen it.
pub(crate) fn classify(f: &FileFacts) -> CrResult<Class> {
    let (major, minor, ty) = (f.rdev_major, f.rdev_minor, f.mode & S_IFMT);
    let kind = |kind| {
        Ok(Class {
            kind,
            object_kind: 0,
        })
    };
    if f.flags & bindings::O_PATH != 0 {
        return Err(CrError::unsupported("O_PATH descriptors not supported"));
    }
    match ty {
        bindings::S_IFREG => match shmem_class(f)? {
            0 => kind(file_kind::REGULAR),
            shmem => Ok(Class {
                kind: file_kind::SHMEM,
                object_kind: shmem,
            }),
        },
        bindings::S_IFIFO if f.facts & CR_FF_PIPE != 0 => {
            if f.sb_magic == bindings::PIPEFS_MAGIC {
                kind(file_kind::PIPE)
            } else {
                kind(file_kind::FIFO)
            }
        }
        bindings::S_IFDIR => kind(file_kind::DIRECTORY),
        bindings::S_IFCHR if major == bindings::MEM_MAJOR && matches!(minor, 3 | 5 | 8 | 9) => {
            kind(file_kind::MEMORY_DEVICE)
        }
        bindings::S_IFCHR if is_tty(major, minor) => kind(file_kind::TTY),
        bindings::S_IFIFO => Err(CrError::unsupported(
            "a FIFO whose open file is not a pipe end (not supported)",
        )),
        bindings::S_IFSOCK => Err(CrError::unsupported("socket not supported")),
        bindings::S_IFCHR | bindings::S_IFBLK => Err(CrError::unsupported("device not supported")),
        _ if f.sb_magic == bindings::ANON_INODE_FS_MAGIC => match event::kind_of(name_of(f)) {
            Some(event) => Ok(Class {
                kind: file_kind::EVENT,
                object_kind: event,
            }),
            None => Err(CrError::unsupported(
                "anonymous-inode file (inotify, fanotify, pidfd, io_uring, ...) not supported",
            )),
        },
        _ => Err(CrError::unsupported(
            "file of an unknown type not supported",
        )),
    }
}

/// The path of a file to reopen: refused when it no longer leads to the file.
pub(crate) fn path_of(file: &File) -> CrResult<KVec<u8>> {
    let mut buf = KVec::from_elem(0u8, PATH_MAX + 1, GFP_KERNEL)?;
    let (path, unlinked) = file
        .path_into(false, &mut buf)
        .why("a file's path is too long")?;
    if unlinked && file.facts().mode & S_IFMT == bindings::S_IFIFO {
        // Nothing could open it again: restart would have to make a FIFO nobody can name.
        return Err(CrError::unsupported("an unlinked FIFO (not supported)"));
    }
    if unlinked {
        return Err(CrError::unsupported(
            "an unlinked file on a filesystem other than tmpfs (not supported)",
        ));
    }
    owned(path)
}

/// One open descriptor, as a checkpoint found it.
pub(crate) struct Open {
    pub(crate) fd: u32,
    pub(crate) file: ARef<File>,
    cloexec: bool,
    pub(crate) class: Class,
    facts: FileFacts,
    /// The path it is reopened by (none for an anonymous pipe end or shmem file).
    path: KVec<u8>,
    /// For an event file, its state, read once with the rest of the table.
    event: Option<EventRecord>,
}

/// A task's descriptor table, read once at checkpoint: checked, saved, and looked at by leak
/// detection.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) open: KVVec<Open>,
    /// The locks the table and its open files hold.
    locks: KVec<locks::Held>,
}

impl Table {
    /// The table of `task`, or the reason one of its files cannot be saved.
    pub(crate) fn read(task: &Task) -> CrResult<Self> {
        let mut table = Self::default();
        let mut fd = 0;
        while let Some((file, cloexec)) = task.next_file(&mut fd) {
            if fd >= MAX_FD {
                return Err(CrError::unsupported("descriptor number too large"));
            }
            let facts = file.facts();
            let class = classify(&facts)?;
            let path = match class.kind {
                file_kind::TTY => owned(b"/dev/tty")?,
                file_kind::PIPE | file_kind::SHMEM | file_kind::EVENT => KVec::new(),
                _ => path_of(&file)?,
            };
            if matches!(class.kind, file_kind::PIPE | file_kind::FIFO) {
                pipe::check(&file)?;
            }
            // Read here, before a byte is written, so that a state cr cannot save is refused.
            let event = match class.kind {
                file_kind::EVENT => Some(event::read(&file, class.object_kind)?),
                _ => None,
            };
            table.open.push(
                Open {
                    fd,
                    file,
                    cloexec,
                    class,
                    facts,
                    path,
                    event,
                },
                GFP_KERNEL,
            )?;
            fd += 1;
        }
        table.locks = {
            let mut opens = KVec::with_capacity(table.open.len(), GFP_KERNEL)?;
            for o in table.open.iter() {
                let view = locks::Open {
                    file: &o.file,
                    facts: &o.facts,
                    kind: o.class.kind,
                };
                opens.push(view, GFP_KERNEL)?;
            }
            locks::read(&opens, task.files_identity())?
        };
        Ok(table)
    }
}

fn owned(s: &[u8]) -> CrResult<KVec<u8>> {
    let mut v = KVec::with_capacity(s.len(), GFP_KERNEL)?;
    v.extend_from_slice(s, GFP_KERNEL)?;
    Ok(v)
}

/// One FILE record per descriptor, each after the PIPE, EVENT or SHMEM record of the object it
/// opens, the first time; then the EPOLL record of each epoll the table defines. Descriptors
/// that share one open file (and so its offset and flags) get the same objref; the first FILE
/// record of an open file defines it.
pub(crate) fn save(cx: &mut SaveCx<'_>, table: &Table) -> CrResult {
    // The epolls this table defines, whose watches name files by objref: written last.
    let mut epolls = KVec::new();
    // Each open file's objref, and whether this table defines it, for its locks.
    let mut objrefs = KVec::with_capacity(table.open.len(), GFP_KERNEL)?;
    for o in table.open.iter() {
        let object = match (o.class.kind, &o.event) {
            (file_kind::PIPE | file_kind::FIFO, _) => pipe::save(cx, &o.file)?,
            (file_kind::SHMEM, _) => shmem::save(cx, &o.file, o.class.object_kind)?,
            // An event file's state, which Table::read took.
            (_, Some(state)) => event::save(cx, &o.file, state)?,
            _ => 0,
        };
        // After the PIPE, EVENT or SHMEM record: ids are defined in stream order.
        let objs = &mut *cx.objs;
        let (objref, new) = objs
            .files
            .get_or_allocate(o.file.as_ptr() as u64, &mut objs.space)?;
        objrefs.push((objref, new), GFP_KERNEL)?;
        if new && o.class.kind == file_kind::EVENT && o.class.object_kind == event_kind::EPOLL {
            epolls.push((o.file.clone(), objref), GFP_KERNEL)?;
        }
        let f = &o.facts;
        let rec = FileRecord {
            fd: o.fd,
            kind: o.class.kind,
            flags: f.flags,
            cloexec: u32::from(o.cloexec),
            pos: f.pos,
            dev: f.dev,
            ino: f.ino,
            rdev: f.rdev,
            mode: f.mode,
            size: f.size,
            path_len: o.path.len() as u32,
            objref,
            object,
            reserved: 0,
        };
        cx.record(RecordKind::File, &[&rec.encode(), &o.path])?;
    }
    locks::save(cx, &table.locks, &objrefs)?;
    for (epoll, objref) in epolls.iter() {
        event::save_watches(cx, epoll, *objref)?;
    }
    Ok(())
}

/// Descriptors to install: number, file, close-on-exec.
#[derive(Default)]
pub(crate) struct KeptFiles {
    fds: KVec<(u32, ARef<File>, bool)>,
    /// Locks to take once the descriptors are in place.
    locks: KVec<(ARef<File>, LockRecord)>,
}

/// A record of the files part: FILE, or the PIPE, EVENT or SHMEM record (and its PAGES) of an
/// object a FILE opens.
pub(crate) fn load(cx: &mut LoadCx<'_>, kept: &mut KeptFiles, kind: u32) -> CrResult {
    if kind == RecordKind::Pipe as u32 {
        return pipe::load(cx);
    }
    if kind == RecordKind::Event as u32 {
        return event::load(cx);
    }
    if kind == RecordKind::Epoll as u32 {
        return event::load_watches(cx);
    }
    if kind == RecordKind::Lock as u32 {
        return locks::load(cx, &mut kept.locks);
    }
    if kind == RecordKind::Shmem as u32 {
        return shmem::load(cx);
    }
    if kind == RecordKind::Pages as u32 {
        return shmem::load_pages(cx);
    }
    let f = LoadCx::decode(cx.input, records::File::decode)?;
    let rec = f.rec;
    if kept.fds.last().is_some_and(|(last, _, _)| *last >= rec.fd) {
        return Err(cx.malformed(ErrorKind::BadField("fd order")));
    }
    let file = if cx.objects.is_defined(rec.objref) {
        match cx.objects.get(rec.objref) {
            Ok(Object::File(f)) => f.clone(),
            _ => return Err(cx.malformed(ErrorKind::BadObjref(rec.objref))),
        }
    } else {
        let file = match rec.kind {
            file_kind::TTY => caller_tty().ok_or_else(|| {
                cx.fail(ENOTTY, "the image has a terminal but the caller has none")
            })?,
            file_kind::PIPE => pipe::open_end(cx, rec.object, rec.flags)?,
            file_kind::FIFO => {
                let path = nul_terminated(f.path)?;
                let offset = cx.input.offset();
                let open = |flags| open_checked(&path, &rec, flags).map_err(|e| e.at(offset));
                pipe::open_fifo(cx, &rec, open)?
            }
            file_kind::SHMEM => shmem::open(cx, rec.object, rec.flags, rec.pos)?,
            file_kind::EVENT => event::open(cx, rec.object, rec.flags)?,
            _ => {
                let path = nul_terminated(f.path)?;
                reopen(&path, &rec).map_err(|e| e.at(cx.input.offset()))?
            }
        };
        if matches!(
            rec.kind,
            file_kind::PIPE | file_kind::SHMEM | file_kind::EVENT
        ) {
            file.set_status_flags(rec.flags);
        }
        cx.objects
            .define(rec.objref, Object::File(file.clone()))
            .map_err(|e| e.at(cx.input.offset()))?;
        file
    };
    kept.fds
        .push((rec.fd, file, rec.cloexec == 1), GFP_KERNEL)?;
    Ok(())
}

/// Reopens the file a FILE (or VMA, MM) record describes by its NUL-terminated `path`: the same
/// inode (`ESTALE` if the path now leads elsewhere), at the same position.
pub(crate) fn reopen(path: &[u8], rec: &FileRecord) -> CrResult<ARef<File>> {
    let file = open_checked(path, rec, rec.flags)?;
    if rec.pos != 0 && rec.kind != file_kind::MEMORY_DEVICE && rec.kind != file_kind::TTY {
        file.set_pos(rec.pos)
            .why("restoring a file position failed")?;
    }
    Ok(file)
}

/// Opens `path` (NUL-terminated) with `flags`: `ESTALE` unless it is the file `rec` describes,
/// the same device for a memory device or terminal, else the same inode of the same type.
fn open_checked(path: &[u8], rec: &FileRecord, flags: u32) -> CrResult<ARef<File>> {
    let file = open_path(path, flags).why("a checkpointed file cannot be reopened")?;
    let now = file.facts();
    let same = if rec.kind == file_kind::MEMORY_DEVICE || rec.kind == file_kind::TTY {
        now.rdev == rec.rdev
    } else {
        now.dev == rec.dev && now.ino == rec.ino && now.mode & S_IFMT == rec.mode & S_IFMT
    };
    if !same {
        return Err(CrError::new(
            ESTALE,
            "a file was replaced since the checkpoint (inode differs)",
        ));
    }
    Ok(file)
}

/// A terminal among the caller's descriptors 0-2.
fn caller_tty() -> Option<ARef<File>> {
    (0..3).find_map(|fd| {
        let f = crate::image::file_of_fd(fd).ok()?;
        let facts = f.facts();
        let tty =
            facts.mode & S_IFMT == bindings::S_IFCHR && is_tty(facts.rdev_major, facts.rdev_minor);
        tty.then_some(f)
    })
}

/// Replaces the caller's descriptor table with the checkpointed one, then takes its locks (a
/// POSIX lock is the table's, and closing a descriptor of its file would drop it).
pub(crate) fn apply(kept: &KeptFiles) -> CrResult {
    current::close_all_fds();
    for (fd, file, cloexec) in kept.fds.iter() {
        current::install_fd(*fd, file, *cloexec).why("installing a descriptor failed")?;
    }
    locks::apply(&kept.locks)
}
