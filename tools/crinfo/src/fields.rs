//! Each state record's fields, decoded by the module's own decoders (`crimage::records`) into
//! typed values, named as `crinfo` shows them.

use crimage::format::{
    epoll_watch_flags, event_kind, file_kind, lock_kind, restart_kind, shmem_kind, task_flags,
    vma_kind, ErrorKind, ItimersRecord, LockRecord, RecordKind, TreeEntry, LOCK_TO_END,
};
use crimage::records::{self, Text};
use serde::Serialize;

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn text(b: &[u8]) -> String {
    Text(b).to_string()
}

/// Order of `struct user_regs_struct` on x86_64.
const REG_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi",
    "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs",
    "gs",
];

fn vma_flags(f: u64) -> String {
    let bit = |b: u64, c: char| if f & b != 0 { c } else { '-' };
    format!(
        "{}{}{}{}",
        bit(1, 'r'),
        bit(2, 'w'),
        bit(4, 'x'),
        if f & 8 != 0 { 's' } else { 'p' }
    )
}

/// One task of the TREE.
#[derive(Clone, Serialize)]
pub struct Task {
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub thread: bool,
    pub zombie: bool,
    pub subreaper: bool,
    pub exit_signal: i32,
    pub exit_status: u32,
    pub mm: u32,
    pub files: u32,
    pub fs: u32,
    pub sighand: u32,
}

impl From<&TreeEntry> for Task {
    fn from(e: &TreeEntry) -> Self {
        Self {
            pid: e.pid,
            tgid: e.tgid,
            ppid: e.ppid,
            pgid: e.pgid,
            sid: e.sid,
            thread: e.is_thread(),
            zombie: e.is_zombie(),
            subreaper: e.flags & crimage::format::entry_flags::SUBREAPER != 0,
            exit_signal: e.exit_signal as i32,
            exit_status: e.exit_status,
            mm: e.mm_ref,
            files: e.files_ref,
            fs: e.fs_ref,
            sighand: e.sighand_ref,
        }
    }
}

#[derive(Serialize)]
pub struct Tree {
    pub tasks: u32,
    pub container: bool,
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub entries: Vec<Task>,
}

#[derive(Serialize)]
pub struct Uts {
    nodename: String,
    domainname: String,
}

#[derive(Serialize)]
pub struct Pipe {
    objref: u32,
    capacity: u32,
    buffered: u32,
    /// Buffers that are packets, when one is (none for a stream of bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    packets: Option<usize>,
}

/// An event file; only the fields its kind has are shown.
#[derive(Serialize)]
pub struct Event {
    objref: u32,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    semaphore: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    clock: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    absolute: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancel_on_set: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unread: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signals: Option<String>,
}

impl From<&crimage::format::EventRecord> for Event {
    fn from(r: &crimage::format::EventRecord) -> Self {
        let mut e = Event {
            objref: r.objref,
            kind: "",
            counter: None,
            semaphore: None,
            clock: None,
            absolute: None,
            cancel_on_set: None,
            unread: None,
            value_ns: None,
            interval_ns: None,
            signals: None,
        };
        match r.kind {
            event_kind::EVENTFD => {
                e.kind = "eventfd";
                e.counter = Some(r.count);
                e.semaphore = Some(r.flags == 1);
            }
            event_kind::TIMERFD => {
                e.kind = "timerfd";
                e.clock = Some(match r.clock {
                    crimage::format::CLOCK_REALTIME => "realtime",
                    crimage::format::CLOCK_MONOTONIC => "monotonic",
                    _ => "boottime",
                });
                e.absolute = Some(r.flags & crimage::format::TFD_TIMER_ABSTIME != 0);
                e.cancel_on_set = Some(r.flags & crimage::format::TFD_TIMER_CANCEL_ON_SET != 0);
                e.unread = Some(r.count);
                e.value_ns = Some(r.value_ns);
                e.interval_ns = Some(r.interval_ns);
            }
            event_kind::EPOLL => e.kind = "epoll",
            _ => {
                e.kind = "signalfd";
                let signals: Vec<String> = (1..=64)
                    .filter(|n| r.mask & (1u64 << (n - 1)) != 0)
                    .map(|n: u32| n.to_string())
                    .collect();
                e.signals = Some(signals.join(","));
            }
        }
        e
    }
}

/// One file an epoll watches.
#[derive(Serialize)]
pub struct Watch {
    file: u32,
    fd: u32,
    events: String,
    ready: bool,
    data: String,
}

/// An epoll's interest list.
#[derive(Serialize)]
pub struct Epoll {
    epoll: u32,
    watches: u32,
    list: Vec<Watch>,
}

/// A file lock.
#[derive(Serialize)]
pub struct Lock {
    file: u32,
    kind: &'static str,
    write: bool,
    /// The byte range, absent for a flock (the whole file); `end` absent for "to the end".
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<u64>,
}

impl From<&LockRecord> for Lock {
    fn from(l: &LockRecord) -> Self {
        let ranged = l.kind != lock_kind::FLOCK;
        Self {
            file: l.file,
            kind: match l.kind {
                lock_kind::FLOCK => "flock",
                lock_kind::POSIX => "posix",
                _ => "ofd",
            },
            write: l.write == 1,
            start: ranged.then_some(l.start),
            end: (ranged && l.end != LOCK_TO_END).then_some(l.end),
        }
    }
}

#[derive(Serialize)]
pub struct Shmem {
    objref: u32,
    kind: &'static str,
    size: u64,
    name: String,
    mode: String,
    uid: u32,
    gid: u32,
    seals: String,
    mtime_ns: i64,
}

#[derive(Serialize)]
pub struct TaskScalars {
    pub pid: u32,
    tgid: u32,
    comm: String,
    personality: String,
    blocked: String,
    sigaltstack: String,
    sigaltstack_size: u64,
    robust_list: String,
    clear_child_tid: String,
    pdeath_signal: u32,
    dumpable: u32,
    no_new_privs: bool,
}

#[derive(Serialize)]
pub struct Creds {
    uid: u32,
    euid: u32,
    gid: u32,
    egid: u32,
    ngroups: u32,
    cap_effective: String,
    cap_permitted: String,
    groups: Vec<u32>,
}

#[derive(Serialize)]
pub struct Rlimits {
    count: usize,
    limits: Vec<[u64; 2]>,
}

#[derive(Serialize)]
pub struct Sighand {
    non_default: usize,
    signals: Vec<usize>,
}

#[derive(Serialize)]
pub struct Pending {
    queue: &'static str,
    count: u32,
    signals: Vec<u32>,
}

#[derive(Serialize)]
pub struct Fs {
    umask: String,
    root: String,
    cwd: String,
}

#[derive(Serialize)]
pub struct File {
    pub fd: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    path: String,
    pos: u64,
    flags: String,
    cloexec: bool,
    ino: u64,
    pub objref: u32,
    pub object: u32,
}

#[derive(Serialize)]
pub struct Mm {
    exe: String,
    start_code: String,
    start_brk: String,
    brk: String,
    start_stack: String,
    vdso: String,
    auxv_words: u32,
}

#[derive(Serialize)]
pub struct Vma {
    range: String,
    prot: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pgoff: u64,
    path: String,
    pub object: u32,
}

#[derive(Serialize)]
pub struct Pages {
    pages: u32,
    first: String,
}

#[derive(Serialize)]
pub struct Parent {
    path: String,
    length: u64,
    checksum: String,
}

#[derive(Serialize)]
pub struct Precopy {
    mm: u64,
    pages: u32,
    first: String,
}

#[derive(Serialize)]
pub struct Keep {
    mm: u64,
    runs: u32,
    pages: u64,
    first: String,
}

#[derive(Serialize)]
pub struct Regs {
    restart: &'static str,
    #[serde(flatten)]
    registers: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
pub struct Xstate {
    bytes: usize,
}

/// A state record's fields.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Fields {
    Tree(Tree),
    Uts(Uts),
    Pipe(Pipe),
    Event(Event),
    Epoll(Epoll),
    Lock(Lock),
    Shmem(Shmem),
    Task(TaskScalars),
    Creds(Creds),
    Rlimits(Rlimits),
    Sighand(Sighand),
    Pending(Pending),
    Itimers(ItimersRecord),
    Fs(Fs),
    File(File),
    Mm(Mm),
    Vma(Vma),
    Pages(Pages),
    Parent(Parent),
    Precopy(Precopy),
    Keep(Keep),
    Regs(Regs),
    Xstate(Xstate),
}

/// The fields of a record of `kind`, `None` for kinds without any, or why it does not decode.
pub fn decode(kind: RecordKind, p: &[u8]) -> Result<Option<Fields>, ErrorKind> {
    Ok(Some(match kind {
        RecordKind::Header | RecordKind::Trailer | RecordKind::Error => return Ok(None),
        RecordKind::Tree => {
            let t = records::Tree::decode(p)?;
            let entries = t
                .entries()
                .map(|e| e.map(|e| Task::from(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            let root = entries.first();
            Fields::Tree(Tree {
                tasks: t.head.count,
                container: t.container(),
                pid: root.map_or(0, |r| r.pid),
                ppid: root.map_or(0, |r| r.ppid),
                pgid: root.map_or(0, |r| r.pgid),
                sid: root.map_or(0, |r| r.sid),
                entries,
            })
        }
        RecordKind::Uts => {
            let u = records::Uts::decode(p)?;
            Fields::Uts(Uts {
                nodename: text(u.nodename),
                domainname: text(u.domainname),
            })
        }
        RecordKind::Pipe => {
            let pipe = records::Pipe::decode(p)?;
            let r = pipe.rec;
            Fields::Pipe(Pipe {
                objref: r.objref,
                capacity: r.capacity,
                buffered: r.data_len,
                packets: (r.segments != 0).then(|| pipe.segments().filter(|s| s.packet).count()),
            })
        }
        RecordKind::Event => Fields::Event(Event::from(&records::event(p)?)),
        RecordKind::Epoll => {
            let e = records::Epoll::decode(p)?;
            let list = e
                .watches()
                .map(|w| {
                    w.map(|w| Watch {
                        file: w.file,
                        fd: w.fd,
                        events: hex(w.events.into()),
                        ready: w.flags & epoll_watch_flags::READY != 0,
                        data: hex(w.data),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Fields::Epoll(Epoll {
                epoll: e.head.epoll,
                watches: e.head.count,
                list,
            })
        }
        RecordKind::Lock => Fields::Lock(Lock::from(&records::lock(p)?)),
        RecordKind::Shmem => {
            let s = records::Shmem::decode(p)?;
            let r = s.rec;
            Fields::Shmem(Shmem {
                objref: r.objref,
                kind: match r.kind {
                    shmem_kind::MEMFD => "memfd",
                    shmem_kind::ANON => "shared anonymous",
                    _ => "unlinked tmpfs file",
                },
                size: r.size,
                name: text(s.name),
                mode: format!("{:o}", r.mode),
                uid: r.uid,
                gid: r.gid,
                seals: hex(r.seals.into()),
                mtime_ns: r.mtime_ns,
            })
        }
        RecordKind::Task => {
            let t = records::Task::decode(p)?;
            let r = t.rec;
            Fields::Task(TaskScalars {
                pid: r.pid,
                tgid: r.tgid,
                comm: text(t.comm),
                personality: hex(r.personality.into()),
                blocked: hex(r.blocked),
                sigaltstack: hex(r.sas_ss_sp),
                sigaltstack_size: r.sas_ss_size,
                robust_list: hex(r.robust_list),
                clear_child_tid: hex(r.clear_child_tid),
                pdeath_signal: r.pdeath_signal,
                dumpable: r.dumpable,
                no_new_privs: r.flags & task_flags::NO_NEW_PRIVS != 0,
            })
        }
        RecordKind::Creds => {
            let c = records::Creds::decode(p)?;
            let r = c.rec;
            Fields::Creds(Creds {
                uid: r.uid,
                euid: r.euid,
                gid: r.gid,
                egid: r.egid,
                ngroups: r.ngroups,
                cap_effective: hex(r.cap_effective),
                cap_permitted: hex(r.cap_permitted),
                groups: c.groups().collect(),
            })
        }
        RecordKind::Rlimits => {
            let r = records::Rlimits::decode(p)?;
            Fields::Rlimits(Rlimits {
                count: r.limits.len(),
                limits: r.limits.iter().map(|l| [l.cur, l.max]).collect(),
            })
        }
        RecordKind::Sighand => {
            let h = records::Sighand::decode(p)?;
            let signals: Vec<usize> = h
                .actions
                .iter()
                .enumerate()
                .filter(|(_, a)| a.handler != 0)
                .map(|(i, _)| i + 1)
                .collect();
            Fields::Sighand(Sighand {
                non_default: signals.len(),
                signals,
            })
        }
        RecordKind::SigPending => {
            let q = records::SigPending::decode(p)?;
            Fields::Pending(Pending {
                queue: if q.shared() { "shared" } else { "task" },
                count: q.head.count,
                signals: q
                    .signals()
                    .map(|s| s.map(|(signo, _)| signo))
                    .collect::<Result<_, _>>()?,
            })
        }
        RecordKind::Itimers => Fields::Itimers(records::itimers(p)?),
        RecordKind::Fs => {
            let f = records::Fs::decode(p)?;
            Fields::Fs(Fs {
                umask: format!("{:04o}", f.umask),
                root: text(f.root),
                cwd: text(f.cwd),
            })
        }
        RecordKind::File => {
            let f = records::File::decode(p)?;
            let r = f.rec;
            Fields::File(File {
                fd: r.fd,
                kind: match r.kind {
                    file_kind::REGULAR => "regular",
                    file_kind::DIRECTORY => "directory",
                    file_kind::MEMORY_DEVICE => "memdev",
                    file_kind::TTY => "tty",
                    file_kind::PIPE => "pipe",
                    file_kind::FIFO => "fifo",
                    file_kind::EVENT => "event",
                    _ => "shmem",
                },
                path: text(f.path),
                pos: r.pos,
                flags: format!("{:#o}", r.flags),
                cloexec: r.cloexec == 1,
                ino: r.ino,
                objref: r.objref,
                object: r.object,
            })
        }
        RecordKind::Mm => {
            let m = records::Mm::decode(p)?;
            let r = m.rec;
            Fields::Mm(Mm {
                exe: text(m.exe),
                start_code: hex(r.start_code),
                start_brk: hex(r.start_brk),
                brk: hex(r.brk),
                start_stack: hex(r.start_stack),
                vdso: hex(r.vdso),
                auxv_words: r.auxv_words,
            })
        }
        RecordKind::Vma => {
            let v = records::Vma::decode(p)?;
            let r = v.rec;
            Fields::Vma(Vma {
                range: format!("{:x}-{:x}", r.start, r.end),
                prot: vma_flags(r.vm_flags),
                kind: match r.kind {
                    vma_kind::ANON => "anon",
                    vma_kind::FILE_PRIVATE => "file",
                    vma_kind::VDSO => "vdso",
                    vma_kind::VVAR => "vvar",
                    vma_kind::SHMEM => "shmem",
                    _ => "file-shared",
                },
                pgoff: r.pgoff,
                path: text(v.path),
                object: r.object,
            })
        }
        RecordKind::Pages => {
            let pages = records::Pages::decode(p)?;
            Fields::Pages(Pages {
                pages: pages.count,
                first: hex(pages.span().0),
            })
        }
        RecordKind::Parent => {
            let parent = records::Parent::decode(p)?;
            Fields::Parent(Parent {
                path: text(parent.path),
                length: parent.rec.length,
                checksum: format!("{:016x}", parent.rec.checksum),
            })
        }
        RecordKind::Precopy => {
            let pre = records::Precopy::decode(p)?;
            Fields::Precopy(Precopy {
                mm: pre.mm,
                pages: pre.pages.count,
                first: hex(pre.pages.span().0),
            })
        }
        RecordKind::Keep => {
            let keep = records::Keep::decode(p)?;
            Fields::Keep(Keep {
                mm: keep.head.mm,
                runs: keep.head.count,
                pages: keep.pages(),
                first: hex(keep.span().0),
            })
        }
        RecordKind::Regs => {
            let r = records::Regs::decode(p)?;
            let registers = REG_NAMES
                .iter()
                .enumerate()
                .filter(|(_, n)| matches!(**n, "rip" | "rsp" | "rax" | "orig_rax" | "fs_base"))
                .map(|(i, n)| (*n, hex(r.reg(i))))
                .collect();
            Fields::Regs(Regs {
                restart: match r.rec.restart_kind {
                    restart_kind::NONE => "none",
                    _ => "nanosleep",
                },
                registers,
            })
        }
        RecordKind::Xstate => Fields::Xstate(Xstate { bytes: p.len() }),
    }))
}
