//! The record decoders the module restarts with: what they accept, and what they refuse.

use crimage::format::{
    entry_flags, event_kind, file_kind, shmem_kind, ErrorKind, EventRecord, FileRecord, KeepHeader,
    PagesHeader, PrecopyHeader, ShmemRecord, TaskRecord, TreeEntry, TreeHeader,
};
use crimage::records::{self, PAGE_SIZE};

fn with(fixed: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut v = fixed.to_vec();
    v.extend_from_slice(rest);
    v
}

#[test]
fn file_records_carry_a_path_or_an_object() {
    let regular = FileRecord {
        fd: 3,
        kind: file_kind::REGULAR,
        path_len: 4,
        ..FileRecord::default()
    };
    let payload = with(&regular.encode(), b"/tmp");
    let f = records::File::decode(&payload).unwrap();
    assert_eq!(f.path, b"/tmp");
    // A pipe end opens its PIPE object and has no path.
    let pipe = FileRecord {
        kind: file_kind::PIPE,
        object: 2,
        ..regular
    };
    assert!(records::File::decode(&with(&pipe.encode(), b"/tmp")).is_err());
    let pipe = FileRecord {
        path_len: 0,
        ..pipe
    };
    assert!(records::File::decode(&pipe.encode()).is_ok());
    // A FIFO has both: the path it is reopened by, and the PIPE of its bytes.
    let fifo = FileRecord {
        kind: file_kind::FIFO,
        object: 2,
        ..regular
    };
    assert_eq!(
        records::File::decode(&with(&fifo.encode(), b"/tmp"))
            .unwrap()
            .path,
        b"/tmp"
    );
    let no_pipe = FileRecord { object: 0, ..fifo };
    assert!(records::File::decode(&with(&no_pipe.encode(), b"/tmp")).is_err());
    let no_path = FileRecord {
        path_len: 0,
        ..fifo
    };
    assert!(records::File::decode(&no_path.encode()).is_err());
    // A descriptor beyond what restart installs, a relative path, a stray object.
    for bad in [
        FileRecord {
            fd: 1 << 20,
            ..regular
        },
        FileRecord {
            object: 7,
            ..regular
        },
    ] {
        assert!(records::File::decode(&with(&bad.encode(), b"/tmp")).is_err());
    }
    assert_eq!(
        records::File::decode(&with(&regular.encode(), b"tmp/")).unwrap_err(),
        ErrorKind::BadString
    );
}

#[test]
fn event_files_hold_only_the_fields_of_their_kind() {
    use crimage::format::{
        CLOCK_BOOTTIME, CLOCK_REALTIME, TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET,
    };
    let ok = |e: EventRecord| records::event(&e.encode()).is_ok();
    let eventfd = EventRecord {
        objref: 1,
        kind: event_kind::EVENTFD,
        flags: 1,
        count: records::EVENTFD_MAX,
        ..EventRecord::default()
    };
    assert!(ok(eventfd));
    // A counter of u64::MAX is one no write can make: an eventfd blocks short of it.
    assert!(!ok(EventRecord {
        count: u64::MAX,
        ..eventfd
    }));
    assert!(!ok(EventRecord {
        flags: 2,
        ..eventfd
    }));
    assert!(!ok(EventRecord { mask: 1, ..eventfd }));
    assert!(!ok(EventRecord {
        objref: 0,
        ..eventfd
    }));

    let wall = EventRecord {
        objref: 2,
        kind: event_kind::TIMERFD,
        flags: TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
        clock: CLOCK_REALTIME,
        count: 3,
        value_ns: 1 << 60,
        interval_ns: 20_000_000,
        ..EventRecord::default()
    };
    assert!(ok(wall));
    // Cancel-on-set only means something for an absolute real-time timer.
    assert!(!ok(EventRecord {
        clock: CLOCK_BOOTTIME,
        ..wall
    }));
    assert!(!ok(EventRecord {
        flags: TFD_TIMER_CANCEL_ON_SET,
        ..wall
    }));
    assert!(ok(EventRecord {
        clock: CLOCK_BOOTTIME,
        flags: 0,
        ..wall
    }));
    // Alarm clocks (8, 9) and unknown clocks are refused; times must be timespecs.
    assert!(!ok(EventRecord {
        clock: 8,
        flags: 0,
        ..wall
    }));
    assert!(!ok(EventRecord {
        value_ns: 1 << 63,
        ..wall
    }));
    assert!(!ok(EventRecord {
        interval_ns: u64::MAX,
        ..wall
    }));
    assert!(!ok(EventRecord { mask: 1, ..wall }));

    let signalfd = EventRecord {
        objref: 3,
        kind: event_kind::SIGNALFD,
        mask: (1 << 9) | (1 << 11),
        ..EventRecord::default()
    };
    assert!(ok(signalfd));
    // SIGKILL and SIGSTOP are never in a signalfd's mask.
    assert!(!ok(EventRecord {
        mask: 1 << 8,
        ..signalfd
    }));
    assert!(!ok(EventRecord {
        mask: 1 << 18,
        ..signalfd
    }));
    assert!(!ok(EventRecord {
        count: 1,
        ..signalfd
    }));
    assert!(!ok(EventRecord {
        kind: 4,
        ..signalfd
    }));
    // An epoll's state is its EPOLL record: its EVENT holds nothing.
    let epoll = EventRecord {
        objref: 4,
        kind: event_kind::EPOLL,
        ..EventRecord::default()
    };
    assert!(ok(epoll));
    assert!(!ok(EventRecord { count: 1, ..epoll }));
    // Exactly one fixed part.
    assert!(records::event(&with(&signalfd.encode(), &[0; 8])).is_err());
    assert!(records::event(&signalfd.encode()[..40]).is_err());

    // The FILE of an event file names its EVENT and has no path.
    let file = FileRecord {
        fd: 3,
        kind: file_kind::EVENT,
        objref: 4,
        object: 3,
        ..FileRecord::default()
    };
    assert!(records::File::decode(&file.encode()).is_ok());
    assert!(records::File::decode(&FileRecord { object: 0, ..file }.encode()).is_err());
    let with_path = FileRecord {
        path_len: 4,
        ..file
    };
    assert!(records::File::decode(&with(&with_path.encode(), b"/tmp")).is_err());
}

#[test]
fn epoll_watches_name_a_file_and_events_epoll_ctl_takes() {
    use crimage::format::{epoll_watch_flags, EpollHeader, EpollWatch, EPOLLET};
    let epoll = |count: u32, watches: &[EpollWatch]| {
        let mut p = EpollHeader { epoll: 5, count }.encode().to_vec();
        for w in watches {
            p.extend_from_slice(&w.encode());
        }
        p
    };
    let level = EpollWatch {
        file: 3,
        fd: 4,
        events: 0x19, // EPOLLIN | EPOLLERR | EPOLLHUP
        flags: 0,
        data: 0x1111,
    };
    // A fired one-shot keeps only its private bits; an edge may wait to be reported.
    let fired = EpollWatch {
        events: 1 << 30,
        ..level
    };
    let edge = EpollWatch {
        events: EPOLLET | 0x19,
        flags: epoll_watch_flags::READY,
        ..level
    };
    let p = epoll(3, &[level, fired, edge]);
    let e = records::Epoll::decode(&p).unwrap();
    let got: Vec<_> = e.watches().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, [level, fired, edge]);
    // The count is the watches that follow, and the epoll has an objref.
    assert!(records::Epoll::decode(&epoll(2, &[level, fired, edge])).is_err());
    let mut p = epoll(1, &[level]);
    p[..4].copy_from_slice(&0u32.to_le_bytes());
    assert!(records::Epoll::decode(&p).is_err());
    // Each watch names a file, a descriptor number, and only what epoll_ctl() takes.
    for bad in [
        EpollWatch { file: 0, ..level },
        EpollWatch {
            fd: records::MAX_FD,
            ..level
        },
        EpollWatch {
            events: 1 << 27,
            ..level
        },
        EpollWatch { flags: 2, ..level },
    ] {
        let p = epoll(1, &[bad]);
        let e = records::Epoll::decode(&p).unwrap();
        assert!(e.watches().next().unwrap().is_err());
    }
}

#[test]
fn pipes_hold_a_stream_or_a_list_of_buffers() {
    use crimage::format::{PipeRecord, PIPE_PACKET};
    use crimage::records::PipeSegment;
    let pipe = |capacity: u32, data: &[u8], words: &[u32]| {
        let rec = PipeRecord {
            objref: 3,
            capacity,
            data_len: data.len() as u32,
            segments: words.len() as u32,
        };
        let mut p = with(&rec.encode(), data);
        for w in words {
            p.extend_from_slice(&w.to_le_bytes());
        }
        p
    };
    let data = [7u8; 300];
    // A stream: the bytes alone, in any capacity F_SETPIPE_SZ gives (a power of two pages).
    for capacity in [4096, 65536, 1 << 20] {
        let p = pipe(capacity, &data, &[]);
        let d = records::Pipe::decode(&p).unwrap();
        assert_eq!(d.data, &data[..]);
        assert_eq!(d.segments().count(), 0);
    }
    for capacity in [0, 100, 3 * 4096, 4096 + 1] {
        assert!(records::Pipe::decode(&pipe(capacity, &data, &[])).is_err());
    }
    assert!(records::Pipe::decode(&pipe(256, &data, &[])).is_err());
    // Packets: every buffer's length, in order, adding up to the bytes.
    let words = [100 | PIPE_PACKET, 150, 50 | PIPE_PACKET];
    let p = pipe(65536, &data, &words);
    let got: Vec<_> = records::Pipe::decode(&p).unwrap().segments().collect();
    let seg = |len, packet| PipeSegment { len, packet };
    assert_eq!(got, [seg(100, true), seg(150, false), seg(50, true)]);
    assert!(records::Pipe::decode(&pipe(65536, &data, &[300 | PIPE_PACKET])).is_ok());
    for bad in [
        &[100 | PIPE_PACKET, 150, 49 | PIPE_PACKET][..],
        &[100 | PIPE_PACKET, 0, 150, 50][..],
    ] {
        assert!(
            records::Pipe::decode(&pipe(65536, &data, bad)).is_err(),
            "{bad:?}"
        );
    }
    // A buffer is at most a page, and there are no more buffers than pages.
    let page = [1u8; 4097];
    assert!(records::Pipe::decode(&pipe(65536, &page, &[4097 | PIPE_PACKET])).is_err());
    assert!(records::Pipe::decode(&pipe(65536, &page, &[4096 | PIPE_PACKET, 1])).is_ok());
    assert!(records::Pipe::decode(&pipe(4096, &data, &[100, 200 | PIPE_PACKET])).is_err());
    // The count says how many words follow the bytes.
    let mut p = pipe(65536, &data, &words);
    p.pop();
    assert!(records::Pipe::decode(&p).is_err());
}

#[test]
fn locks_are_of_a_known_kind_on_a_range_fcntl_gives() {
    use crimage::format::{lock_kind, LockRecord, LOCK_TO_END};
    let ok = |l: LockRecord| records::lock(&l.encode()).is_ok();
    let flock = LockRecord {
        file: 3,
        kind: lock_kind::FLOCK,
        write: 1,
        reserved: 0,
        start: 0,
        end: 0,
    };
    let posix = LockRecord {
        kind: lock_kind::POSIX,
        start: 200,
        end: LOCK_TO_END,
        ..flock
    };
    assert!(ok(flock));
    assert!(ok(posix));
    assert!(ok(LockRecord {
        kind: lock_kind::OFD,
        write: 0,
        start: 10,
        end: 10,
        ..posix
    }));
    // A flock covers the whole file: it has no range.
    assert!(!ok(LockRecord { end: 99, ..flock }));
    for bad in [
        LockRecord { file: 0, ..posix },
        LockRecord { kind: 4, ..posix },
        LockRecord { kind: 0, ..posix },
        LockRecord { write: 2, ..posix },
        LockRecord {
            reserved: 1,
            ..posix
        },
        LockRecord {
            start: 11,
            end: 10,
            ..posix
        },
        LockRecord {
            end: LOCK_TO_END + 1,
            ..posix
        },
    ] {
        assert!(!ok(bad));
    }
    assert!(records::lock(&posix.encode()[..31]).is_err());
}

#[test]
fn itimers_hold_three_timers_or_the_real_one_alone() {
    use crimage::format::{ItimersRecord, ITIMERS_REAL_ONLY_LEN};
    let all = ItimersRecord {
        real_value_ns: 1,
        real_interval_ns: 2,
        virt_value_ns: 3,
        virt_interval_ns: 4,
        prof_value_ns: 5,
        prof_interval_ns: 6,
    };
    assert_eq!(records::itimers(&all.encode()), Ok(all));
    // An image before format 9 holds ITIMER_REAL alone: the CPU-time timers are disarmed.
    let old = records::itimers(&all.encode()[..ITIMERS_REAL_ONLY_LEN]).unwrap();
    assert_eq!((old.real_value_ns, old.real_interval_ns), (1, 2));
    assert_eq!(
        (
            old.virt_value_ns,
            old.virt_interval_ns,
            old.prof_value_ns,
            old.prof_interval_ns
        ),
        (0, 0, 0, 0)
    );
    assert!(records::itimers(&all.encode()[..24]).is_err());
    assert!(records::itimers(
        &ItimersRecord {
            prof_interval_ns: 1 << 63,
            ..all
        }
        .encode()
    )
    .is_err());
}

#[test]
fn pages_come_in_increasing_page_addresses() {
    let head = PagesHeader {
        count: 2,
        reserved: 0,
    };
    let pages = |a: u64, b: u64| {
        let mut v = head.encode().to_vec();
        v.extend_from_slice(&a.to_le_bytes());
        v.extend_from_slice(&b.to_le_bytes());
        v.resize(v.len() + 2 * PAGE_SIZE, 0xab);
        v
    };
    let ok = pages(0x1000, 0x3000);
    let p = records::Pages::decode(&ok).unwrap();
    assert_eq!(p.span(), (0x1000, 0x3000));
    assert!(p.iter().all(|(_, page)| page.len() == PAGE_SIZE));
    assert!(records::Pages::decode(&pages(0x3000, 0x1000)).is_err());
    assert!(records::Pages::decode(&pages(0x1000, 0x1000)).is_err());
    assert!(records::Pages::decode(&pages(0x1001, 0x3000)).is_err());
    assert!(records::Pages::decode(&ok[..ok.len() - 1]).is_err());
}

#[test]
fn precopy_pages_name_their_address_space() {
    let pages = {
        let mut v = PagesHeader {
            count: 1,
            reserved: 0,
        }
        .encode()
        .to_vec();
        v.extend_from_slice(&0x7000u64.to_le_bytes());
        v.resize(v.len() + PAGE_SIZE, 0x5a);
        v
    };
    let pre = with(&PrecopyHeader { mm: 3 }.encode(), &pages);
    let p = records::Precopy::decode(&pre).unwrap();
    assert_eq!((p.mm, p.pages.span().0), (3, 0x7000));
    assert!(p.pages.data().iter().all(|&b| b == 0x5a));
    assert!(records::Precopy::decode(&with(&PrecopyHeader { mm: 0 }.encode(), &pages)).is_err());
    assert!(records::Precopy::decode(&pre[..pre.len() - 1]).is_err());
}

#[test]
fn kept_runs_are_increasing_and_apart() {
    let keep = |runs: &[(u64, u64)]| {
        let head = KeepHeader {
            mm: 1,
            count: runs.len() as u32,
            reserved: 0,
        };
        let mut v = head.encode().to_vec();
        for (a, n) in runs {
            v.extend_from_slice(&a.to_le_bytes());
            v.extend_from_slice(&n.to_le_bytes());
        }
        v
    };
    let ok = keep(&[(0x1000, 2), (0x3000, 1)]);
    let k = records::Keep::decode(&ok).unwrap();
    assert_eq!(k.span(), (0x1000, 0x4000));
    assert_eq!(k.pages(), 3);
    assert_eq!(k.runs().collect::<Vec<_>>(), [(0x1000, 2), (0x3000, 1)]);
    for bad in [
        keep(&[]),
        keep(&[(0x1000, 2), (0x2000, 1)]),
        keep(&[(0x3000, 1), (0x1000, 1)]),
        keep(&[(0x1000, 0)]),
        keep(&[(0x1800, 1)]),
        keep(&[(!0xfffu64, 2)]),
    ] {
        assert!(records::Keep::decode(&bad).is_err());
    }
    assert!(records::Keep::decode(&ok[..ok.len() - 8]).is_err());
}

#[test]
fn task_scalars_stay_in_their_domains() {
    let task = TaskRecord {
        pid: 5,
        tgid: 5,
        dumpable: 1,
        ..TaskRecord::default()
    };
    let comm = *b"cr_counter\0\0\0\0\0\0";
    let payload = with(&task.encode(), &comm);
    let t = records::Task::decode(&payload).unwrap();
    assert_eq!(t.comm, b"cr_counter");
    for bad in [
        TaskRecord {
            dumpable: 3,
            ..task
        },
        TaskRecord { flags: 2, ..task },
        TaskRecord {
            pdeath_signal: 65,
            ..task
        },
    ] {
        assert!(records::Task::decode(&with(&bad.encode(), &comm)).is_err());
    }
    assert!(records::Task::decode(&with(&task.encode(), &comm[..15])).is_err());
}

#[test]
fn shmem_objects_are_regular_files_of_a_known_kind() {
    let memfd = ShmemRecord {
        objref: 4,
        name_len: 8,
        kind: shmem_kind::MEMFD,
        mode: 0o100600,
        ..ShmemRecord::default()
    };
    assert!(records::Shmem::decode(&with(&memfd.encode(), b"memfd:cr")).is_ok());
    for bad in [
        ShmemRecord {
            mode: 0o040700,
            ..memfd
        },
        ShmemRecord { kind: 9, ..memfd },
        ShmemRecord {
            seals: 0x100,
            ..memfd
        },
    ] {
        assert!(records::Shmem::decode(&with(&bad.encode(), b"memfd:cr")).is_err());
    }
    // An unlinked file names the directory it is recreated in: a path.
    let unlinked = ShmemRecord {
        kind: shmem_kind::UNLINKED,
        ..memfd
    };
    assert!(records::Shmem::decode(&with(&unlinked.encode(), b"memfd:cr")).is_err());
    let unlinked = ShmemRecord {
        name_len: 4,
        ..unlinked
    };
    assert!(records::Shmem::decode(&with(&unlinked.encode(), b"/tmp")).is_ok());
}

#[test]
fn a_tree_starts_with_a_live_root() {
    let entry = |pid, flags, refs| TreeEntry {
        pid,
        tgid: pid,
        flags,
        mm_ref: refs,
        files_ref: refs,
        fs_ref: refs,
        sighand_ref: refs,
        ..TreeEntry::default()
    };
    let tree = |entries: &[TreeEntry]| {
        let mut v = TreeHeader {
            count: entries.len() as u32,
            flags: 0,
        }
        .encode()
        .to_vec();
        for e in entries {
            v.extend_from_slice(&e.encode());
        }
        v
    };
    let ok = tree(&[entry(1, 0, 1), entry(2, entry_flags::ZOMBIE, 0)]);
    let t = records::Tree::decode(&ok).unwrap();
    assert!(t.entries().all(|e| e.is_ok()));
    let zombie_root = tree(&[entry(1, entry_flags::ZOMBIE, 0)]);
    let t = records::Tree::decode(&zombie_root).unwrap();
    assert!(t.entries().any(|e| e.is_err()));
    // A zombie shares nothing; a live task shares its four containers.
    let sharing_zombie = tree(&[entry(1, 0, 1), entry(2, entry_flags::ZOMBIE, 1)]);
    let t = records::Tree::decode(&sharing_zombie).unwrap();
    assert!(t.entries().any(|e| e.is_err()));
    assert!(records::Tree::decode(&ok[..ok.len() - 4]).is_err());
}
