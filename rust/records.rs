// SPDX-License-Identifier: GPL-2.0

//! The state records, decoded and checked: one parser for the module, the tools and the fuzzer.
//!
//! Shared, unchanged, by the kernel module and the tools (`#[path]`), like `format.rs`, and like
//! it `core` only. Each record kind has a view type whose `decode` takes the payload and checks
//! everything that can be checked without the running kernel: lengths, reserved fields, value
//! domains, strings and paths, counts. What only the restarting kernel can judge (this CPU's
//! XSAVE size, a file that must still exist, a page inside its area) stays with the module.
//!
//! [`SECTION`] is the layout of one task's section: which parts it has, in which order, made of
//! which records, and when each part is there. The module's table of parts is built on it, and
//! Documentation/cr.rst's list is checked against it by a host test.

use crate::format::{
    self, event_kind, lock_kind, restart_kind, shmem_kind, task_flags, tree_flags, vma_kind,
    CredsRecord, EpollHeader, EpollWatch, ErrorKind, EventRecord, FileRecord, FsRecord,
    ItimersRecord, KeepHeader, LockRecord, MmRecord, PagesHeader, ParentRecord, PendingHeader,
    PendingSignal, PipeRecord, PrecopyHeader, RecordKind, RegsRecord, Rlimit, ShmemRecord,
    SigAction, TaskRecord, TreeEntry, TreeHeader, UtsRecord, VmaRecord, AUXV_WORDS, COMM_LEN,
    GROUPS_MAX, PAGES_PER_RECORD, RLIMIT_COUNT, SEALS_KNOWN, SIGINFO_LEN, SIGNAL_COUNT,
    USER_REGS_LEN, UTS_NAME_MAX,
};

#[cfg(feature = "serde")]
use serde::Serialize;

/// Result of decoding one record.
pub type Decoded<T> = core::result::Result<T, ErrorKind>;

/// Page size of every image (x86_64).
pub const PAGE_SIZE: usize = 4096;
/// Most tasks one image holds.
pub const MAX_TASKS: usize = 1 << 16;
/// Descriptor numbers at or beyond this are refused (they would not fit a default
/// RLIMIT_NOFILE).
pub const MAX_FD: u32 = 1 << 20;
/// Longest name of an unnamed shmem object (a memfd's is "memfd:" and up to 249 bytes).
pub const SHMEM_NAME_MAX: usize = 255;
/// Largest shmem object (MAX_LFS_FILESIZE, rounded down to pages).
pub const SHMEM_SIZE_MAX: u64 = (i64::MAX as u64) & !(PAGE_SIZE as u64 - 1);
/// Longest robust list `set_robust_list` accepts, with room to spare.
const ROBUST_LIST_LEN_MAX: u64 = 4096;
/// Highest dumpable mode (`TASK_DUMPABLE_ROOT`).
pub const DUMPABLE_MAX: u32 = 2;
/// The signals that cannot be caught or queued.
pub const SIGKILL: u32 = 9;
/// See [`SIGKILL`].
pub const SIGSTOP: u32 = 19;
/// `VM_MAYWRITE` and `VM_MAYSHARE` in `vm_flags`.
pub const VM_MAYWRITE: u64 = 0x20;
/// See [`VM_MAYWRITE`].
pub const VM_MAYSHARE: u64 = 0x80;
/// `S_IFMT` and `S_IFREG`.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

fn bad(what: &'static str) -> ErrorKind {
    ErrorKind::BadField(what)
}

fn length(kind: RecordKind, payload: &[u8]) -> ErrorKind {
    ErrorKind::BadPayloadLength {
        kind: kind as u32,
        len: payload.len() as u32,
    }
}

/// Takes `len` bytes of a name from the front of `rest`: at most `max` bytes, no NUL.
fn take_name(rest: &[u8], len: u32, max: usize) -> Decoded<(&[u8], &[u8])> {
    let len = len as usize;
    if len > max || rest.len() < len {
        return Err(ErrorKind::BadString);
    }
    let (name, rest) = rest.split_at(len);
    if name.contains(&0) {
        return Err(ErrorKind::BadString);
    }
    Ok((name, rest))
}

/// Nothing may follow the last field.
fn done(rest: &[u8], what: &'static str) -> Decoded<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(bad(what))
    }
}

/// Serializes bytes that are text (paths, names) as a string.
#[cfg(feature = "serde")]
fn text<S: serde::Serializer>(bytes: &&[u8], s: S) -> core::result::Result<S::Ok, S::Error> {
    s.collect_str(&Text(bytes))
}

/// Bytes shown as text, lossily.
pub struct Text<'a>(pub &'a [u8]);

impl core::fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

/// TREE: the process tree.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Tree<'a> {
    /// Count and flags.
    pub head: TreeHeader,
    #[cfg_attr(feature = "serde", serde(skip))]
    entries: &'a [u8],
}

impl<'a> Tree<'a> {
    /// Decodes a TREE payload; each entry is checked on its own ([`Tree::entries`]).
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (head, entries) = format::split_fixed(
            RecordKind::Tree,
            payload,
            TreeHeader::LEN,
            TreeHeader::decode,
        )?;
        let count = head.count as usize;
        if count == 0
            || count > MAX_TASKS
            || entries.len() != count * TreeEntry::LEN
            || head.flags & !tree_flags::KNOWN != 0
        {
            return Err(bad("tree"));
        }
        Ok(Self { head, entries })
    }

    /// A container's tree: its root is the init of a pid namespace.
    pub fn container(&self) -> bool {
        self.head.flags & tree_flags::CONTAINER != 0
    }

    /// The entries, each checked for what it can say alone: a pid, known flags, and a root that
    /// is a live process; a zombie (never a thread) shares nothing, a live task shares its four
    /// containers. Pids that repeat, and threads before their process, are the caller's to
    /// find, with [`crate::forest_rules`].
    pub fn entries(&self) -> impl Iterator<Item = Decoded<TreeEntry>> + 'a {
        self.entries
            .chunks_exact(TreeEntry::LEN)
            .enumerate()
            .map(|(i, chunk)| {
                let e = TreeEntry::decode(chunk).ok_or(bad("tree entry"))?;
                let refs = [e.mm_ref, e.files_ref, e.fs_ref, e.sighand_ref];
                let ok = e.pid != 0
                    && e.pid <= i32::MAX as u32
                    && e.flags & !format::entry_flags::KNOWN == 0
                    && (i > 0 || (!e.is_zombie() && !e.is_thread() && e.ppid == 0))
                    && if e.is_zombie() {
                        !e.is_thread() && refs.iter().all(|&r| r == 0)
                    } else {
                        refs.iter().all(|&r| r != 0)
                    };
                if ok {
                    Ok(e)
                } else {
                    Err(bad("tree entry"))
                }
            })
    }
}

/// UTS: a container's host and domain names.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Uts<'a> {
    /// The node name.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub nodename: &'a [u8],
    /// The domain name.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub domainname: &'a [u8],
}

impl<'a> Uts<'a> {
    /// Decodes a UTS payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) =
            format::split_fixed(RecordKind::Uts, payload, UtsRecord::LEN, UtsRecord::decode)?;
        let (nodename, rest) = take_name(rest, rec.nodename_len, UTS_NAME_MAX)?;
        let (domainname, rest) = take_name(rest, rec.domainname_len, UTS_NAME_MAX)?;
        done(rest, "uts")?;
        Ok(Self {
            nodename,
            domainname,
        })
    }
}

/// TASK: a task's scalars.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Task<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: TaskRecord,
    /// The comm, NUL-padded.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub comm: &'a [u8],
}

impl<'a> Task<'a> {
    /// Decodes a TASK payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, comm) = format::split_fixed(
            RecordKind::Task,
            payload,
            TaskRecord::LEN,
            TaskRecord::decode,
        )?;
        if comm.len() != COMM_LEN {
            return Err(ErrorKind::BadString);
        }
        // A thread's exit_signal is -1.
        if (rec.exit_signal as usize > SIGNAL_COUNT && rec.exit_signal != u32::MAX)
            || rec.pdeath_signal as usize > SIGNAL_COUNT
            || rec.robust_list_len > ROBUST_LIST_LEN_MAX
            || rec.flags & !task_flags::KNOWN != 0
            || rec.dumpable > DUMPABLE_MAX
        {
            return Err(bad("task"));
        }
        let end = comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        Ok(Self {
            rec,
            comm: &comm[..end],
        })
    }
}

/// CREDS: credentials and supplementary groups.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Creds<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: CredsRecord,
    #[cfg_attr(feature = "serde", serde(skip))]
    groups: &'a [u8],
}

impl<'a> Creds<'a> {
    /// Decodes a CREDS payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, groups) = format::split_fixed(
            RecordKind::Creds,
            payload,
            CredsRecord::LEN,
            CredsRecord::decode,
        )?;
        if rec.ngroups as usize > GROUPS_MAX || groups.len() != rec.ngroups as usize * 4 {
            return Err(bad("ngroups"));
        }
        Ok(Self { rec, groups })
    }

    /// The supplementary groups.
    pub fn groups(&self) -> impl Iterator<Item = u32> + 'a {
        let g = self.groups;
        (0..g.len() / 4).map(move |i| format::u32_at(g, i))
    }
}

/// RLIMITS: every resource limit.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Rlimits {
    /// `(cur, max)` for each resource, by number.
    pub limits: [Rlimit; RLIMIT_COUNT],
}

impl Rlimits {
    /// Decodes an RLIMITS payload.
    pub fn decode(payload: &[u8]) -> Decoded<Self> {
        if payload.len() != RLIMIT_COUNT * Rlimit::LEN {
            return Err(length(RecordKind::Rlimits, payload));
        }
        let mut limits = [Rlimit::default(); RLIMIT_COUNT];
        for (i, l) in limits.iter_mut().enumerate() {
            *l = Rlimit::decode(&payload[i * Rlimit::LEN..]).ok_or(bad("rlimit"))?;
            if l.cur > l.max {
                return Err(bad("rlimit"));
            }
        }
        Ok(Self { limits })
    }
}

/// FS: root, cwd and umask.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Fs<'a> {
    /// File creation mask.
    pub umask: u32,
    /// The root directory.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub root: &'a [u8],
    /// The working directory.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub cwd: &'a [u8],
}

impl<'a> Fs<'a> {
    /// Decodes an FS payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) =
            format::split_fixed(RecordKind::Fs, payload, FsRecord::LEN, FsRecord::decode)?;
        let (root, rest) = format::take_path(rest, rec.root_len)?;
        let (cwd, rest) = format::take_path(rest, rec.cwd_len)?;
        done(rest, "fs")?;
        if rec.umask & !0o777 != 0 || rec.reserved != 0 {
            return Err(bad("fs"));
        }
        Ok(Self {
            umask: rec.umask,
            root,
            cwd,
        })
    }
}

/// FILE: one descriptor.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct File<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: FileRecord,
    /// The path it is reopened by; empty for an anonymous pipe end or shmem file.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub path: &'a [u8],
}

impl<'a> File<'a> {
    /// Decodes a FILE payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        use format::file_kind::*;
        let (rec, rest) = format::split_fixed(
            RecordKind::File,
            payload,
            FileRecord::LEN,
            FileRecord::decode,
        )?;
        // Pipes, shared memory and event files have no path to reopen; they and FIFOs alone
        // name an object.
        let (path, rest) = match rec.kind {
            PIPE | SHMEM if rec.path_len == 0 && rec.object != 0 => (&[][..], rest),
            REGULAR | DIRECTORY | MEMORY_DEVICE | TTY if rec.object == 0 => {
                format::take_path(rest, rec.path_len)?
            }
            FIFO if rec.object != 0 => format::take_path(rest, rec.path_len)?,
            EVENT if rec.path_len == 0 && rec.object != 0 => (&[][..], rest),
            _ => return Err(bad("file kind")),
        };
        done(rest, "file")?;
        if rec.fd >= MAX_FD || rec.cloexec > 1 || rec.reserved != 0 {
            return Err(bad("file"));
        }
        Ok(Self { rec, path })
    }
}

/// PIPE: a pipe and the bytes it buffered.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Pipe<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: PipeRecord,
    #[cfg_attr(feature = "serde", serde(skip))]
    /// The buffered bytes.
    pub data: &'a [u8],
    #[cfg_attr(feature = "serde", serde(skip))]
    /// The buffers' lengths, `rec.segments` words.
    segments: &'a [u8],
}

/// One buffer of a pipe that holds packets: see [`PipeRecord::segments`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeSegment {
    /// Its length in bytes.
    pub len: usize,
    /// A packet, which a read returns alone.
    pub packet: bool,
}

impl PipeSegment {
    /// The buffer a word of a PIPE record's list describes.
    pub fn from_word(word: u32) -> Self {
        Self {
            len: (word & !format::PIPE_PACKET) as usize,
            packet: word & format::PIPE_PACKET != 0,
        }
    }
}

impl<'a> Pipe<'a> {
    /// Decodes a PIPE payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) = format::split_fixed(
            RecordKind::Pipe,
            payload,
            PipeRecord::LEN,
            PipeRecord::decode,
        )?;
        let pages = rec.capacity as usize / PAGE_SIZE;
        if rec.objref == 0
            || !(rec.capacity as usize).is_multiple_of(PAGE_SIZE)
            || !pages.is_power_of_two()
            || rec.data_len > rec.capacity
            || rest.len() != rec.data_len as usize + rec.segments as usize * 4
            || rec.segments as usize > pages
        {
            return Err(bad("pipe"));
        }
        let (data, segments) = rest.split_at(rec.data_len as usize);
        let pipe = Self {
            rec,
            data,
            segments,
        };
        let mut total = 0;
        for segment in pipe.segments() {
            if segment.len == 0 || segment.len > PAGE_SIZE {
                return Err(bad("pipe buffer length"));
            }
            total += segment.len;
        }
        if rec.segments != 0 && total != rec.data_len as usize {
            return Err(bad("pipe buffer lengths"));
        }
        Ok(pipe)
    }

    /// The pipe's buffers, when one of them is a packet; none when its bytes are one stream.
    pub fn segments(&self) -> impl Iterator<Item = PipeSegment> + 'a {
        self.segments
            .chunks_exact(4)
            .map(|w| PipeSegment::from_word(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
    }
}

/// SHMEM: a shared-memory object.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Shmem<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: ShmemRecord,
    /// Its name, or for an unlinked file the directory it was in.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub name: &'a [u8],
}

impl<'a> Shmem<'a> {
    /// Decodes a SHMEM payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) = format::split_fixed(
            RecordKind::Shmem,
            payload,
            ShmemRecord::LEN,
            ShmemRecord::decode,
        )?;
        let (name, rest) = match rec.kind {
            shmem_kind::UNLINKED => format::take_path(rest, rec.name_len)?,
            shmem_kind::MEMFD | shmem_kind::ANON if rec.name_len != 0 => {
                take_name(rest, rec.name_len, SHMEM_NAME_MAX)?
            }
            _ => return Err(bad("shmem kind")),
        };
        done(rest, "shmem")?;
        if rec.objref == 0
            || rec.size > SHMEM_SIZE_MAX
            || rec.seals & !SEALS_KNOWN != 0
            || rec.mode & S_IFMT != S_IFREG
            || rec.mode & !(S_IFMT | 0o7777) != 0
            || rec.reserved != 0
        {
            return Err(bad("shmem"));
        }
        Ok(Self { rec, name })
    }
}

/// MM: the address space's layout.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Mm<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: MmRecord,
    #[cfg_attr(feature = "serde", serde(skip))]
    auxv: &'a [u8],
    /// The executable's path.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub exe: &'a [u8],
}

impl<'a> Mm<'a> {
    /// Decodes an MM payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) =
            format::split_fixed(RecordKind::Mm, payload, MmRecord::LEN, MmRecord::decode)?;
        if rec.auxv_words as usize > AUXV_WORDS {
            return Err(bad("auxv_words"));
        }
        let (auxv, rest) = format::take_u64s(rest, rec.auxv_words as usize)?;
        let (exe, rest) = format::take_path(rest, rec.exe_len)?;
        done(rest, "mm")?;
        if rec.start_brk > rec.brk || rec.arg_start > rec.arg_end || rec.env_start > rec.env_end {
            return Err(bad("mm layout"));
        }
        Ok(Self { rec, auxv, exe })
    }

    /// The saved auxv words.
    pub fn auxv(&self) -> impl Iterator<Item = u64> + 'a {
        let a = self.auxv;
        (0..a.len() / 8).map(move |i| format::u64_at(a, i))
    }
}

/// VMA: one memory area.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Vma<'a> {
    /// The fixed fields.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: VmaRecord,
    /// The mapped file's path, for file mappings.
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub path: &'a [u8],
}

impl<'a> Vma<'a> {
    /// Decodes a VMA payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) =
            format::split_fixed(RecordKind::Vma, payload, VmaRecord::LEN, VmaRecord::decode)?;
        let page_mask = PAGE_SIZE as u64 - 1;
        if rec.start >= rec.end || (rec.start | rec.end) & page_mask != 0 || rec.reserved != 0 {
            return Err(bad("vma range"));
        }
        let shared = rec.vm_flags & VM_MAYSHARE != 0;
        let (path, rest) = match rec.kind {
            vma_kind::FILE_PRIVATE => format::take_path(rest, rec.path_len)?,
            vma_kind::FILE_SHARED if shared => format::take_path(rest, rec.path_len)?,
            vma_kind::ANON | vma_kind::VDSO | vma_kind::VVAR if rec.path_len == 0 => {
                (&[][..], rest)
            }
            vma_kind::SHMEM if rec.path_len == 0 && shared && rec.object != 0 => (&[][..], rest),
            _ => return Err(bad("vma")),
        };
        done(rest, "vma")?;
        if rec.kind != vma_kind::SHMEM && rec.object != 0 {
            return Err(bad("vma"));
        }
        Ok(Self { rec, path })
    }

    /// Whether PAGES records may follow: the private areas, whose pages are the task's own.
    pub fn has_pages(&self) -> bool {
        matches!(self.rec.kind, vma_kind::ANON | vma_kind::FILE_PRIVATE)
    }
}

/// The addresses of a PAGES record: what a reader that streams the pages to their place needs
/// before the data.
#[derive(Clone, Copy, Debug)]
pub struct PageList<'a> {
    /// How many pages.
    pub count: u32,
    addrs: &'a [u8],
}

impl<'a> PageList<'a> {
    /// Bytes before the addresses in a PAGES payload.
    pub const FIXED: usize = PagesHeader::LEN;

    /// How many pages the fixed part of a PAGES payload announces (bounded by
    /// [`PAGES_PER_RECORD`]), so that a streaming reader knows how many addresses to read.
    pub fn count_of(fixed: &[u8]) -> Decoded<usize> {
        let head = PagesHeader::decode(fixed).ok_or(bad("pages"))?;
        let n = head.count as usize;
        if n == 0 || n > PAGES_PER_RECORD || head.reserved != 0 {
            return Err(bad("pages"));
        }
        Ok(n)
    }

    /// Decodes the part of a PAGES payload before the data (`head`), for a record of
    /// `payload_len` bytes: page-aligned addresses, strictly increasing, and exactly one page
    /// of data for each.
    pub fn decode(head: &'a [u8], payload_len: usize) -> Decoded<Self> {
        let (fixed, rest) = format::split_fixed(
            RecordKind::Pages,
            head,
            PagesHeader::LEN,
            PagesHeader::decode,
        )?;
        let n = Self::count_of(&fixed.encode())?;
        let (addrs, extra) = format::take_u64s(rest, n)?;
        if !extra.is_empty() || payload_len != head.len() + n * PAGE_SIZE {
            return Err(bad("pages"));
        }
        let mut prev = None;
        for i in 0..n {
            let a = format::u64_at(addrs, i);
            if !a.is_multiple_of(PAGE_SIZE as u64) || prev.is_some_and(|p| a <= p) {
                return Err(bad("page address"));
            }
            prev = Some(a);
        }
        Ok(Self {
            count: fixed.count,
            addrs,
        })
    }

    /// Bytes of page data that follow the addresses.
    pub fn data_len(&self) -> usize {
        self.count as usize * PAGE_SIZE
    }

    /// The first and the last address.
    pub fn span(&self) -> (u64, u64) {
        (
            format::u64_at(self.addrs, 0),
            format::u64_at(self.addrs, self.count as usize - 1),
        )
    }

    /// Each address, in order.
    pub fn addrs(&self) -> impl Iterator<Item = u64> + 'a {
        let addrs = self.addrs;
        (0..addrs.len() / 8).map(move |i| format::u64_at(addrs, i))
    }

    /// Runs of consecutive pages, as (first address, pages), in order: each is one read
    /// straight into memory at restart.
    pub fn runs(&self) -> impl Iterator<Item = (u64, usize)> + 'a {
        let mut addrs = self.addrs().peekable();
        core::iter::from_fn(move || {
            let first = addrs.next()?;
            let mut n = 1;
            while addrs
                .next_if_eq(&(first + (n * PAGE_SIZE) as u64))
                .is_some()
            {
                n += 1;
            }
            Some((first, n))
        })
    }
}

/// PAGES: page contents, each with its address (or its offset in the object, after a SHMEM
/// record).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Pages<'a> {
    /// How many pages.
    pub count: u32,
    #[cfg_attr(feature = "serde", serde(skip))]
    list: PageList<'a>,
    #[cfg_attr(feature = "serde", serde(skip))]
    data: &'a [u8],
}

impl<'a> Pages<'a> {
    /// Decodes a whole PAGES payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let fixed = payload
            .get(..PageList::FIXED)
            .ok_or(length(RecordKind::Pages, payload))?;
        let n = PageList::count_of(fixed)?;
        let head_len = PageList::FIXED + n * 8;
        let head = payload.get(..head_len).ok_or(bad("pages"))?;
        let list = PageList::decode(head, payload.len())?;
        Ok(Self {
            count: list.count,
            list,
            data: &payload[head_len..],
        })
    }

    /// The addresses.
    pub fn list(&self) -> &PageList<'a> {
        &self.list
    }

    /// The pages' contents, one after another, in the order of their addresses.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The first and the last address.
    pub fn span(&self) -> (u64, u64) {
        self.list.span()
    }

    /// Each page with its address.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &'a [u8])> + 'a {
        let data = self.data;
        self.list
            .addrs()
            .enumerate()
            .map(move |(i, a)| (a, &data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]))
    }
}

/// PARENT: the image an incremental image refers to.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Parent<'a> {
    /// The parent's identity, as its trailer gives it.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: ParentRecord,
    /// Where the checkpoint found it (empty if it did not say).
    #[cfg_attr(feature = "serde", serde(serialize_with = "text"))]
    pub path: &'a [u8],
}

impl<'a> Parent<'a> {
    /// Decodes a whole PARENT payload: an absolute path, or none.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, rest) = format::split_fixed(
            RecordKind::Parent,
            payload,
            ParentRecord::LEN,
            ParentRecord::decode,
        )?;
        if rec.reserved != 0 {
            return Err(ErrorKind::NonZeroReserved);
        }
        let (path, rest) = match rec.path_len {
            0 => (&[][..], rest),
            n => format::take_path(rest, n)?,
        };
        done(rest, "parent")?;
        Ok(Self { rec, path })
    }
}

/// PRECOPY: pages of one address space, copied while its tasks ran.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Precopy<'a> {
    /// The address space's id ([`format::FRESH_SPACE`]).
    pub mm: u64,
    /// The pages, by address.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub pages: Pages<'a>,
}

impl<'a> Precopy<'a> {
    /// Decodes a whole PRECOPY payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (head, rest) = format::split_fixed(
            RecordKind::Precopy,
            payload,
            PrecopyHeader::LEN,
            PrecopyHeader::decode,
        )?;
        if head.mm == 0 {
            return Err(bad("precopy mm"));
        }
        Ok(Self {
            mm: head.mm,
            pages: Pages::decode(rest)?,
        })
    }
}

/// Most runs one KEEP record holds.
pub const KEEP_RUNS_MAX: usize = PAGES_PER_RECORD;

/// KEEP: runs of pages whose contents an earlier copy holds (the precopy image's, or the
/// parent image's).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Keep<'a> {
    /// The address space in the precopy image, and how many runs.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub head: KeepHeader,
    #[cfg_attr(feature = "serde", serde(skip))]
    runs: &'a [u8],
}

impl<'a> Keep<'a> {
    /// Decodes a KEEP payload: page-aligned runs of at least one page, in increasing order,
    /// apart from each other, inside the address space.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (head, rest) = format::split_fixed(
            RecordKind::Keep,
            payload,
            KeepHeader::LEN,
            KeepHeader::decode,
        )?;
        let n = head.count as usize;
        if head.mm == 0 || head.reserved != 0 || n == 0 || n > KEEP_RUNS_MAX {
            return Err(bad("keep"));
        }
        let (runs, extra) = format::take_u64s(rest, 2 * n)?;
        done(extra, "keep")?;
        let me = Self { head, runs };
        let mut prev_end = 0;
        for (first, pages) in me.runs() {
            let end = pages
                .checked_mul(PAGE_SIZE as u64)
                .and_then(|len| first.checked_add(len))
                .ok_or(bad("keep run"))?;
            if !first.is_multiple_of(PAGE_SIZE as u64) || pages == 0 || first < prev_end {
                return Err(bad("keep run"));
            }
            prev_end = end;
        }
        Ok(me)
    }

    /// Each run as (first address, pages).
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let runs = self.runs;
        (0..runs.len() / 16)
            .map(move |i| (format::u64_at(runs, 2 * i), format::u64_at(runs, 2 * i + 1)))
    }

    /// The first address, and the end of the last run.
    pub fn span(&self) -> (u64, u64) {
        let first = self.runs().next().map_or(0, |(a, _)| a);
        let end = self
            .runs()
            .last()
            .map_or(0, |(a, n)| a + n * PAGE_SIZE as u64);
        (first, end)
    }

    /// Pages in all runs.
    pub fn pages(&self) -> u64 {
        self.runs().map(|(_, n)| n).sum()
    }
}

/// SIGHAND: every signal's disposition.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Sighand {
    /// Signals 1..=64, in order.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub actions: [SigAction; SIGNAL_COUNT],
}

impl Sighand {
    /// Decodes a SIGHAND payload.
    pub fn decode(payload: &[u8]) -> Decoded<Self> {
        if payload.len() != SIGNAL_COUNT * SigAction::LEN {
            return Err(length(RecordKind::Sighand, payload));
        }
        let mut actions = [SigAction::default(); SIGNAL_COUNT];
        for (i, a) in actions.iter_mut().enumerate() {
            *a = SigAction::decode(&payload[i * SigAction::LEN..]).ok_or(bad("sigaction"))?;
        }
        Ok(Self { actions })
    }
}

/// SIGPENDING: one queue of pending signals.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct SigPending<'a> {
    /// Which queue, and how many.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub head: PendingHeader,
    #[cfg_attr(feature = "serde", serde(skip))]
    entries: &'a [u8],
}

/// One pending signal's entry: the signal and its `kernel_siginfo`.
const PENDING_ENTRY: usize = PendingSignal::LEN + SIGINFO_LEN;

impl<'a> SigPending<'a> {
    /// Decodes a SIGPENDING payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (head, entries) = format::split_fixed(
            RecordKind::SigPending,
            payload,
            PendingHeader::LEN,
            PendingHeader::decode,
        )?;
        if head.shared > 1 || entries.len() != head.count as usize * PENDING_ENTRY {
            return Err(bad("pending signals"));
        }
        let me = Self { head, entries };
        for s in me.signals() {
            s?;
        }
        Ok(me)
    }

    /// Whether this is the thread group's queue.
    pub fn shared(&self) -> bool {
        self.head.shared == 1
    }

    /// Each signal, with its siginfo: neither SIGKILL nor SIGSTOP, which are never queued.
    pub fn signals(&self) -> impl Iterator<Item = Decoded<(u32, &'a [u8; SIGINFO_LEN])>> + 'a {
        self.entries.chunks_exact(PENDING_ENTRY).map(|e| {
            let s = PendingSignal::decode(e).ok_or(bad("signo"))?;
            if s.signo == 0
                || s.signo as usize > SIGNAL_COUNT
                || s.signo == SIGKILL
                || s.signo == SIGSTOP
                || s.reserved != 0
            {
                return Err(bad("signo"));
            }
            let info = e[PendingSignal::LEN..]
                .try_into()
                .map_err(|_| bad("siginfo"))?;
            Ok((s.signo, info))
        })
    }
}

/// Largest eventfd counter: a write that would reach `u64::MAX` blocks.
pub const EVENTFD_MAX: u64 = u64::MAX - 1;

/// EVENT: an event file's state, each field in the domain its kind gives it.
pub fn event(payload: &[u8]) -> Decoded<EventRecord> {
    let e = format::exact_fixed(
        RecordKind::Event,
        payload,
        EventRecord::LEN,
        EventRecord::decode,
    )?;
    let unused_zero = match e.kind {
        event_kind::EVENTFD => {
            e.flags <= 1
                && e.count <= EVENTFD_MAX
                && (u64::from(e.clock) | e.mask | e.value_ns | e.interval_ns) == 0
        }
        event_kind::TIMERFD => {
            // The flags a timer can hold, and cancel-on-set only on an absolute real-time one.
            let flags_ok = match e.flags {
                0 | format::TFD_TIMER_ABSTIME => true,
                f => {
                    f == format::TFD_TIMER_ABSTIME | format::TFD_TIMER_CANCEL_ON_SET
                        && e.clock == format::CLOCK_REALTIME
                }
            };
            flags_ok
                && matches!(
                    e.clock,
                    format::CLOCK_REALTIME | format::CLOCK_MONOTONIC | format::CLOCK_BOOTTIME
                )
                && e.value_ns <= i64::MAX as u64
                && e.interval_ns <= i64::MAX as u64
                && e.mask == 0
        }
        event_kind::EPOLL => {
            (e.flags | e.clock) == 0 && (e.count | e.mask | e.value_ns | e.interval_ns) == 0
        }
        event_kind::SIGNALFD => {
            let unblockable = (1u64 << (SIGKILL - 1)) | (1u64 << (SIGSTOP - 1));
            e.mask & unblockable == 0
                && (e.flags | e.clock) == 0
                && (e.count | e.value_ns | e.interval_ns) == 0
        }
        _ => return Err(bad("event kind")),
    };
    if e.objref == 0 || !unused_zero {
        return Err(bad("event"));
    }
    Ok(e)
}

/// LOCK: a file lock of a kind cr knows, on a range `fcntl()` could give.
pub fn lock(payload: &[u8]) -> Decoded<LockRecord> {
    let l = format::exact_fixed(
        RecordKind::Lock,
        payload,
        LockRecord::LEN,
        LockRecord::decode,
    )?;
    let range_ok = match l.kind {
        lock_kind::FLOCK => l.start == 0 && l.end == 0,
        lock_kind::POSIX | lock_kind::OFD => l.start <= l.end && l.end <= format::LOCK_TO_END,
        _ => false,
    };
    if l.file == 0 || l.write > 1 || l.reserved != 0 || !range_ok {
        return Err(bad("lock"));
    }
    Ok(l)
}

/// EPOLL: an epoll's interest list.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Epoll<'a> {
    /// The epoll and the count.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub head: EpollHeader,
    #[cfg_attr(feature = "serde", serde(skip))]
    watches: &'a [u8],
}

impl<'a> Epoll<'a> {
    /// Decodes an EPOLL payload; each watch is checked on its own ([`Epoll::watches`]).
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (head, watches) = format::split_fixed(
            RecordKind::Epoll,
            payload,
            EpollHeader::LEN,
            EpollHeader::decode,
        )?;
        if head.epoll == 0 || watches.len() != head.count as usize * EpollWatch::LEN {
            return Err(bad("epoll"));
        }
        Ok(Self { head, watches })
    }

    /// The watches, each checked: a file, a descriptor number, known events and flags.
    pub fn watches(&self) -> impl Iterator<Item = Decoded<EpollWatch>> + 'a {
        self.watches.chunks_exact(EpollWatch::LEN).map(|w| {
            let w = EpollWatch::decode(w).ok_or(bad("epoll watch"))?;
            if w.file == 0
                || w.fd >= MAX_FD
                || w.events & !format::EPOLL_EVENTS_KNOWN != 0
                || w.flags & !format::epoll_watch_flags::READY != 0
            {
                return Err(bad("epoll watch"));
            }
            Ok(w)
        })
    }
}

/// ITIMERS: the interval timers.
pub fn itimers(payload: &[u8]) -> Decoded<ItimersRecord> {
    let t = if payload.len() == format::ITIMERS_REAL_ONLY_LEN {
        // Before format 9: no CPU-time timer was armed (the checkpoint refused them).
        let mut whole = [0u8; ItimersRecord::LEN];
        whole[..payload.len()].copy_from_slice(payload);
        ItimersRecord::decode(&whole).ok_or(bad("itimers"))?
    } else {
        format::exact_fixed(
            RecordKind::Itimers,
            payload,
            ItimersRecord::LEN,
            ItimersRecord::decode,
        )?
    };
    // Times the kernel keeps as a signed 64-bit count of nanoseconds.
    let times = [
        t.real_value_ns,
        t.real_interval_ns,
        t.virt_value_ns,
        t.virt_interval_ns,
        t.prof_value_ns,
        t.prof_interval_ns,
    ];
    if times.iter().any(|&ns| ns > i64::MAX as u64) {
        return Err(bad("itimers"));
    }
    Ok(t)
}

/// REGS: general registers and the syscall-restart state.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Regs<'a> {
    /// The restart block.
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub rec: RegsRecord,
    /// `struct user_regs_struct`.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub regs: &'a [u8; USER_REGS_LEN],
}

impl<'a> Regs<'a> {
    /// Decodes a REGS payload.
    pub fn decode(payload: &'a [u8]) -> Decoded<Self> {
        let (rec, regs) = format::split_fixed(
            RecordKind::Regs,
            payload,
            RegsRecord::LEN,
            RegsRecord::decode,
        )?;
        let regs = regs.try_into().map_err(|_| bad("regs"))?;
        if !matches!(
            rec.restart_kind,
            restart_kind::NONE | restart_kind::NANOSLEEP
        ) || rec.reserved != 0
        {
            return Err(bad("restart kind"));
        }
        Ok(Self { rec, regs })
    }

    /// The `i`th register, in `struct user_regs_struct` order.
    pub fn reg(&self, i: usize) -> u64 {
        format::u64_at(self.regs, i)
    }
}

/// Which shared state a task's section carries when it is the first to name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shared {
    /// The address space.
    Mm,
    /// The descriptor table.
    Files,
    /// Root, cwd and umask.
    Fs,
    /// The signal handlers.
    Sighand,
}

/// When a part is in a task's section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// In every live task's.
    Always,
    /// In the section of a process's first thread in the image (process-wide state).
    Leader,
    /// When the task is the first of the image to use this shared state.
    Defines(Shared),
}

/// One part of a task's section.
#[derive(Clone, Copy, Debug)]
pub struct PartSpec {
    /// Its name.
    pub name: &'static str,
    /// The record that opens it.
    pub first: RecordKind,
    /// Records that may follow the first, any number of them in any order.
    pub more: &'static [RecordKind],
    /// Whether a section without it is fine: a part that is there may also be empty
    /// (a task without descriptors has no FILE record).
    pub may_be_empty: bool,
    /// When it is there.
    pub when: When,
}

/// A task's section, part by part, in stream order.
pub const SECTION: [PartSpec; 12] = [
    PartSpec {
        name: "task",
        first: RecordKind::Task,
        more: &[],
        may_be_empty: false,
        when: When::Always,
    },
    PartSpec {
        name: "creds",
        first: RecordKind::Creds,
        more: &[],
        may_be_empty: false,
        when: When::Always,
    },
    PartSpec {
        name: "rlimits",
        first: RecordKind::Rlimits,
        more: &[],
        may_be_empty: false,
        when: When::Leader,
    },
    PartSpec {
        name: "fs",
        first: RecordKind::Fs,
        more: &[],
        may_be_empty: false,
        when: When::Defines(Shared::Fs),
    },
    PartSpec {
        name: "files",
        first: RecordKind::File,
        more: &[
            RecordKind::File,
            RecordKind::Pipe,
            RecordKind::Event,
            RecordKind::Epoll,
            RecordKind::Lock,
            RecordKind::Shmem,
            RecordKind::Pages,
        ],
        may_be_empty: true,
        when: When::Defines(Shared::Files),
    },
    PartSpec {
        name: "mm",
        first: RecordKind::Mm,
        more: &[
            RecordKind::Vma,
            RecordKind::Pages,
            RecordKind::Keep,
            RecordKind::Shmem,
        ],
        may_be_empty: false,
        when: When::Defines(Shared::Mm),
    },
    PartSpec {
        name: "sighand",
        first: RecordKind::Sighand,
        more: &[],
        may_be_empty: false,
        when: When::Defines(Shared::Sighand),
    },
    PartSpec {
        name: "pending",
        first: RecordKind::SigPending,
        more: &[],
        may_be_empty: false,
        when: When::Always,
    },
    PartSpec {
        name: "shared pending",
        first: RecordKind::SigPending,
        more: &[],
        may_be_empty: false,
        when: When::Leader,
    },
    PartSpec {
        name: "itimers",
        first: RecordKind::Itimers,
        more: &[],
        may_be_empty: false,
        when: When::Leader,
    },
    PartSpec {
        name: "regs",
        first: RecordKind::Regs,
        more: &[],
        may_be_empty: false,
        when: When::Always,
    },
    PartSpec {
        name: "xstate",
        first: RecordKind::Xstate,
        more: &[],
        may_be_empty: false,
        when: When::Always,
    },
];

impl PartSpec {
    /// Whether a record of `kind` belongs to this part, as its first record or a later one.
    pub fn takes(&self, kind: u32, first: bool) -> bool {
        if first {
            self.first as u32 == kind
                || (self.may_be_empty && self.more.iter().any(|k| *k as u32 == kind))
        } else {
            self.more.iter().any(|k| *k as u32 == kind)
        }
    }
}
