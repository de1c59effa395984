// SPDX-License-Identifier: GPL-2.0

//! The declarations of `shim.h`, for Rust: its structs field for field, its constants, and its
//! functions. A host test (`tools/crimage/tests/shim.rs`) checks this file against `shim.h`;
//! both sides assert the structs' sizes.

use core::ffi::{c_char, c_int, c_long, c_void};

use kernel::bindings::{file, mm_struct, page, pid_namespace, task_struct};

pub(crate) const CR_COMM_LEN: usize = 16;
pub(crate) const CR_AUXV_WORDS: usize = 54;
pub(crate) const CR_SIGINFO_LEN: usize = 48;
pub(crate) const CR_USER_REGS_LEN: usize = 216;
pub(crate) const CR_NAME_LEN: usize = 256;

pub(crate) const CR_TASK_NO_NEW_PRIVS: u32 = 1;

pub(crate) const CR_TF_KTHREAD: u32 = 0x1;
pub(crate) const CR_TF_EXITING: u32 = 0x2;
pub(crate) const CR_TF_FROZEN: u32 = 0x4;
pub(crate) const CR_TF_TRACED: u32 = 0x8;
pub(crate) const CR_TF_32BIT: u32 = 0x10;
pub(crate) const CR_TF_SECCOMP: u32 = 0x20;
pub(crate) const CR_TF_OTHER_USERNS: u32 = 0x40;
pub(crate) const CR_TF_OTHER_MNTNS: u32 = 0x80;
pub(crate) const CR_TF_POSIX_TIMERS: u32 = 0x100;
pub(crate) const CR_TF_SAVED_SIGMASK: u32 = 0x400;
pub(crate) const CR_TF_SEM_UNDO: u32 = 0x800;
pub(crate) const CR_TF_NO_MM: u32 = 0x1000;
pub(crate) const CR_TF_AIO: u32 = 0x2000;
pub(crate) const CR_TF_OTHER_TIMENS: u32 = 0x4000;

pub(crate) const CR_VM_GROWSDOWN: u64 = 0x100;
pub(crate) const CR_VM_STACK_INCOMPLETE_SETUP: u64 = 0x18000;
pub(crate) const CR_TT_NONE: u32 = 0;
pub(crate) const CR_TT_NATIVE: u32 = 1;

pub(crate) const CR_VF_VDSO: u32 = 0x1;
pub(crate) const CR_VF_VVAR: u32 = 0x2;
pub(crate) const CR_VF_ANON: u32 = 0x4;

pub(crate) const CR_REF_PINNED: u32 = 0x4;
pub(crate) const CR_REF_ELSEWHERE: u32 = 0x10;
pub(crate) const CR_REF_GUARD: u32 = 0x20;
pub(crate) const CR_REF_UNCHANGED: u32 = 0x40;
pub(crate) const CR_SCAN_ANON_ONLY: u32 = 0x1;
pub(crate) const CR_SCAN_HARVEST: u32 = 0x2;

pub(crate) const CR_FF_PIPE: u32 = 0x1;
pub(crate) const CR_FF_SHMEM: u32 = 0x2;
pub(crate) const CR_FF_KERNMOUNT: u32 = 0x4;
#[allow(dead_code)] // Reported by the shim; cr_file_path() says the same of a path.
pub(crate) const CR_FF_UNLINKED: u32 = 0x8;
pub(crate) const CR_FF_LOCKED: u32 = 0x10;
pub(crate) const CR_PIPE_PACKET: u32 = 0x80000000;
pub(crate) const CR_ITIMER_REAL: u32 = 0;
pub(crate) const CR_ITIMER_VIRTUAL: u32 = 1;
pub(crate) const CR_ITIMER_PROF: u32 = 2;
pub(crate) const CR_LOCK_FLOCK: u32 = 1;
pub(crate) const CR_LOCK_POSIX: u32 = 2;
pub(crate) const CR_LOCK_OFD: u32 = 3;
pub(crate) const CR_LOCK_LEASE: u32 = 4;

pub(crate) const CR_TREE_EXITED: u32 = 1;
pub(crate) const CR_TREE_SUBREAPER: u32 = 2;
pub(crate) const CR_TREE_OTHER_PIDNS: u32 = 4;
pub(crate) const CR_TREE_LEADER_EXITED: u32 = 8;
pub(crate) const CR_TREE_FORKED_BY_THREAD: u32 = 16;

pub(crate) const CR_EVENT_EVENTFD: u32 = 1;
pub(crate) const CR_EVENT_TIMERFD: u32 = 2;
pub(crate) const CR_EVENT_SIGNALFD: u32 = 3;
pub(crate) const CR_EVENT_EPOLL: u32 = 4;

pub(crate) const CR_SHMEM_MEMFD: u32 = 1;
pub(crate) const CR_SHMEM_ANON: u32 = 2;
pub(crate) const CR_SHMEM_UNLINKED: u32 = 3;
pub(crate) const CR_SHMEM_SEALS_KNOWN: u32 = 0x3f;

/// `struct cr_task_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct TaskInfo {
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    pub(crate) sid: u32,
    pub(crate) personality: u32,
    pub(crate) exit_signal: u32,
    pub(crate) pdeath_signal: u32,
    pub(crate) sas_ss_flags: u32,
    pub(crate) flags: u32,
    pub(crate) dumpable: u32,
    pub(crate) reserved: u32,
    pub(crate) clear_child_tid: u64,
    pub(crate) robust_list: u64,
    pub(crate) robust_list_len: u64,
    pub(crate) sas_ss_sp: u64,
    pub(crate) sas_ss_size: u64,
    pub(crate) blocked: u64,
    pub(crate) comm: [u8; CR_COMM_LEN],
}

/// `struct cr_creds_info`: the CREDS record's fixed part, which the shim fills directly.
pub(crate) type CredsInfo = crate::format::CredsRecord;

/// `struct cr_mm_info`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MmInfo {
    pub(crate) start_code: u64,
    pub(crate) end_code: u64,
    pub(crate) start_data: u64,
    pub(crate) end_data: u64,
    pub(crate) start_brk: u64,
    pub(crate) brk: u64,
    pub(crate) start_stack: u64,
    pub(crate) arg_start: u64,
    pub(crate) arg_end: u64,
    pub(crate) env_start: u64,
    pub(crate) env_end: u64,
    pub(crate) vdso: u64,
    pub(crate) auxv: [u64; CR_AUXV_WORDS],
    pub(crate) auxv_words: u32,
    pub(crate) reserved: u32,
}

impl Default for MmInfo {
    fn default() -> Self {
        Self {
            start_code: 0,
            end_code: 0,
            start_data: 0,
            end_data: 0,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            arg_start: 0,
            arg_end: 0,
            env_start: 0,
            env_end: 0,
            vdso: 0,
            auxv: [0; CR_AUXV_WORDS],
            auxv_words: 0,
            reserved: 0,
        }
    }
}

/// `struct cr_vma_info`.
#[repr(C)]
pub(crate) struct VmaInfo {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) vm_flags: u64,
    pub(crate) pgoff: u64,
    pub(crate) file: *mut file,
    pub(crate) facts: u32,
    pub(crate) reserved: u32,
}

/// `struct cr_page_ref`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PageRef {
    pub(crate) addr: u64,
    pub(crate) page: *mut page,
    pub(crate) flags: u32,
    pub(crate) run: u32,
}

/// `struct cr_copies_ref`.
#[repr(C)]
pub(crate) struct CopiesRef {
    pub(crate) pages: *const c_void,
    pub(crate) count: u64,
    pub(crate) at: u64,
}

/// `struct cr_piece`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Piece {
    pub(crate) data: *const c_void,
    pub(crate) len: usize,
}

/// `struct cr_file_facts`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FileFacts {
    pub(crate) pos: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) flags: u32,
    pub(crate) mode: u32,
    pub(crate) rdev: u32,
    pub(crate) rdev_major: u32,
    pub(crate) rdev_minor: u32,
    pub(crate) sb_magic: u32,
    pub(crate) nlink: u32,
    pub(crate) facts: u32,
    pub(crate) name: [u8; CR_NAME_LEN],
}

impl Default for FileFacts {
    fn default() -> Self {
        Self {
            pos: 0,
            dev: 0,
            ino: 0,
            size: 0,
            flags: 0,
            mode: 0,
            rdev: 0,
            rdev_major: 0,
            rdev_minor: 0,
            sb_magic: 0,
            nlink: 0,
            facts: 0,
            name: [0; CR_NAME_LEN],
        }
    }
}

/// `struct cr_tree_info`: where a task sits and what it shares. The pointers are identities,
/// never dereferenced.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct TreeInfo {
    pub(crate) pid: u32,
    pub(crate) tgid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    pub(crate) sid: u32,
    pub(crate) exit_signal: u32,
    pub(crate) exit_status: u32,
    pub(crate) flags: u32,
    pub(crate) pdeath_signal: u32,
    pub(crate) reserved: u32,
    pub(crate) mm: u64,
    pub(crate) files: u64,
    pub(crate) fs: u64,
    pub(crate) sighand: u64,
    pub(crate) uts_ns: u64,
    pub(crate) ipc_ns: u64,
}

/// `struct cr_kin`: a task as a process identity, with its parent's (never dereferenced).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Kin {
    pub(crate) process: u64,
    pub(crate) parent: u64,
    pub(crate) pid: u32,
    pub(crate) reserved: u32,
}

/// `struct cr_pipe_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct PipeInfo {
    pub(crate) pipe: u64,
    pub(crate) readers: u32,
    pub(crate) writers: u32,
    pub(crate) capacity: u32,
    pub(crate) len: u32,
    pub(crate) readable: u8,
    pub(crate) writable: u8,
    pub(crate) watch_queue: u8,
    pub(crate) packets: u8,
    pub(crate) buffers: u32,
}

/// `struct cr_lock_info`: one lock held on an inode.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct LockInfo {
    pub(crate) owner: u64,
    pub(crate) file: u64,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) kind: u32,
    pub(crate) write: u32,
}

/// `struct cr_event_info`: an event file's state, as the shim reads it and makes one.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct EventInfo {
    pub(crate) kind: u32,
    pub(crate) flags: u32,
    pub(crate) clock: u32,
    pub(crate) users: u32,
    pub(crate) count: u64,
    pub(crate) mask: u64,
    pub(crate) value_ns: i64,
    pub(crate) interval_ns: i64,
    pub(crate) now_ns: i64,
}

/// `struct cr_epoll_item`: one watch of an epoll's interest list.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct EpollItem {
    pub(crate) file: *mut file,
    pub(crate) fd: u32,
    pub(crate) events: u32,
    pub(crate) data: u64,
    pub(crate) ready: u32,
    pub(crate) reserved: u32,
}

/// `struct cr_shmem_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct ShmemInfo {
    pub(crate) id: u64,
    pub(crate) size: u64,
    pub(crate) kind: u32,
    pub(crate) seals: u32,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) reserved: u32,
    pub(crate) atime_ns: i64,
    pub(crate) mtime_ns: i64,
}

/// `struct cr_pending_signal`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PendingSignal {
    pub(crate) signo: u32,
    pub(crate) reserved: u32,
    pub(crate) info: [u8; CR_SIGINFO_LEN],
}

impl Default for PendingSignal {
    fn default() -> Self {
        Self {
            signo: 0,
            reserved: 0,
            info: [0; CR_SIGINFO_LEN],
        }
    }
}

/// `struct cr_restart_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RestartInfo {
    pub(crate) kind: u32,
    pub(crate) clockid: u32,
    pub(crate) type_: u32,
    pub(crate) reserved: u32,
    pub(crate) rmtp: u64,
    pub(crate) remaining_ns: u64,
}

const _: () = assert!(core::mem::size_of::<TaskInfo>() == 112);
const _: () = assert!(core::mem::size_of::<CredsInfo>() == 80);
const _: () = assert!(core::mem::size_of::<MmInfo>() == 12 * 8 + CR_AUXV_WORDS * 8 + 8);
const _: () = assert!(core::mem::size_of::<VmaInfo>() == 48);
const _: () = assert!(core::mem::size_of::<PageRef>() == 24);
const _: () = assert!(core::mem::size_of::<Piece>() == 16);
const _: () = assert!(core::mem::size_of::<FileFacts>() == 64 + CR_NAME_LEN);
const _: () = assert!(core::mem::size_of::<TreeInfo>() == 88);
const _: () = assert!(core::mem::size_of::<Kin>() == 24);
const _: () = assert!(core::mem::size_of::<PipeInfo>() == 32);
const _: () = assert!(core::mem::size_of::<LockInfo>() == 40);
const _: () = assert!(CR_LOCK_FLOCK == crate::format::lock_kind::FLOCK);
const _: () = assert!(CR_LOCK_POSIX == crate::format::lock_kind::POSIX);
const _: () = assert!(CR_LOCK_OFD == crate::format::lock_kind::OFD);
const _: () = assert!(core::mem::size_of::<ShmemInfo>() == 56);
const _: () = assert!(core::mem::size_of::<EventInfo>() == 56);
const _: () = assert!(core::mem::size_of::<EpollItem>() == 32);
const _: () = assert!(core::mem::size_of::<PendingSignal>() == 56);
const _: () = assert!(core::mem::size_of::<RestartInfo>() == 32);
// The format's bounds are the shim's.
const _: () = assert!(CR_AUXV_WORDS == crate::format::AUXV_WORDS);
const _: () = assert!(CR_USER_REGS_LEN == crate::format::USER_REGS_LEN);
const _: () = assert!(CR_SIGINFO_LEN == crate::format::SIGINFO_LEN);
const _: () = assert!(CR_COMM_LEN == crate::format::COMM_LEN);
const _: () = assert!(CR_TASK_NO_NEW_PRIVS == crate::format::task_flags::NO_NEW_PRIVS);
const _: () = assert!(CR_EVENT_EVENTFD == crate::format::event_kind::EVENTFD);
const _: () = assert!(CR_EVENT_TIMERFD == crate::format::event_kind::TIMERFD);
const _: () = assert!(CR_EVENT_SIGNALFD == crate::format::event_kind::SIGNALFD);
const _: () = assert!(CR_EVENT_EPOLL == crate::format::event_kind::EPOLL);
const _: () = assert!(CR_SHMEM_MEMFD == crate::format::shmem_kind::MEMFD);
const _: () = assert!(CR_SHMEM_ANON == crate::format::shmem_kind::ANON);
const _: () = assert!(CR_SHMEM_UNLINKED == crate::format::shmem_kind::UNLINKED);
const _: () = assert!(CR_SHMEM_SEALS_KNOWN == crate::format::SEALS_KNOWN);

// The kernel's structs go by pointer only; some of them hold zero-sized members, which the lint
// flags as it does in the kernel crate's own bindings.
#[allow(improper_ctypes)]
extern "C" {
    // Tasks
    pub(crate) fn cr_get_task(vpid: c_int) -> *mut task_struct;
    pub(crate) fn cr_may_attach(t: *mut task_struct) -> bool;
    pub(crate) fn cr_task_facts(t: *mut task_struct) -> u32;
    pub(crate) fn cr_task_info(t: *mut task_struct, ns: *mut pid_namespace, out: *mut TaskInfo);
    pub(crate) fn cr_set_task_info(info: *const TaskInfo);
    pub(crate) fn cr_set_after_creds(info: *const TaskInfo);
    pub(crate) fn cr_set_blocked(blocked: u64) -> c_int;
    pub(crate) fn cr_creds_info(
        t: *mut task_struct,
        out: *mut CredsInfo,
        groups: *mut u32,
        max_groups: u32,
    ) -> c_int;
    pub(crate) fn cr_set_creds(info: *const CredsInfo, groups: *const u32) -> c_int;
    pub(crate) fn cr_get_rlimits(t: *mut task_struct, out: *mut u64, count: u32);
    pub(crate) fn cr_set_rlimit(resource: u32, cur: u64, max: u64) -> c_int;
    pub(crate) fn cr_get_itimer(
        t: *mut task_struct,
        which: u32,
        value_ns: *mut u64,
        interval_ns: *mut u64,
    );
    pub(crate) fn cr_set_itimer(which: u32, value_ns: u64, interval_ns: u64) -> c_int;
    pub(crate) fn cr_current_threads() -> u32;
    pub(crate) fn cr_current_vpid() -> c_int;
    pub(crate) fn cr_release(buf: *mut c_char, len: c_int);
    pub(crate) fn cr_task_exited(t: *mut task_struct) -> bool;
    pub(crate) fn cr_fatal_signal_pending() -> bool;

    // Signals
    pub(crate) fn cr_get_sigactions(t: *mut task_struct, out: *mut u64);
    pub(crate) fn cr_set_sigaction(sig: c_int, action: *const u64) -> c_int;
    pub(crate) fn cr_get_pending(
        t: *mut task_struct,
        shared: bool,
        out: *mut PendingSignal,
        max: u32,
    ) -> u32;
    pub(crate) fn cr_queue_signal(signo: u32, info_bytes: *const u8, shared: bool) -> c_int;
    pub(crate) fn cr_discard_signals(mask: u64);

    // Registers, FPU, restart blocks
    pub(crate) fn cr_get_regs(t: *mut task_struct, out: *mut c_void) -> c_int;
    pub(crate) fn cr_xstate_size() -> u32;
    pub(crate) fn cr_xfeatures() -> u64;
    pub(crate) fn cr_get_xstate(t: *mut task_struct, out: *mut c_void, size: u32) -> c_int;
    pub(crate) fn cr_set_xstate(buf: *const c_void, size: u32) -> c_int;
    pub(crate) fn cr_get_restart(t: *mut task_struct, out: *mut RestartInfo) -> c_int;
    pub(crate) fn cr_user_segments(cs: *mut u64, ss: *mut u64, user_top: *mut u64);
    pub(crate) fn cr_prepare_regs(regs: *const c_void, restart: *const RestartInfo) -> *mut c_void;
    pub(crate) fn cr_free_regs(work: *mut c_void);
    pub(crate) fn cr_install_regs(work: *mut c_void) -> c_int;

    // Memory
    pub(crate) fn cr_mm_info(mm: *mut mm_struct, out: *mut MmInfo);
    pub(crate) fn cr_mm_exe_file(mm: *mut mm_struct) -> *mut file;
    pub(crate) fn cr_vma_next(mm: *mut mm_struct, addr: u64, out: *mut VmaInfo) -> c_int;
    pub(crate) fn cr_mm_resident_private(mm: *mut mm_struct) -> u64;
    pub(crate) fn cr_mm_walk_pages(
        mm: *mut mm_struct,
        cursor: *mut u64,
        end: u64,
        flags: u32,
        copies: *mut CopiesRef,
        out: *mut PageRef,
        max: c_long,
    ) -> c_long;
    pub(crate) fn cr_mm_fault_in(mm: *mut mm_struct, addr: u64, out: *mut *mut page) -> c_int;
    pub(crate) fn cr_put_page(page: *mut page);
    pub(crate) fn cr_page_address(page: *mut page) -> *const c_void;
    pub(crate) fn cr_copy_running_page(dst: *mut c_void, page: *mut page);
    pub(crate) fn cr_mm_own_pages(
        mm: *mut mm_struct,
        addr: u64,
        n: u32,
        out: *mut *mut page,
    ) -> c_long;
    pub(crate) fn cr_unmap_all() -> c_int;
    pub(crate) fn cr_map(file: *mut file, start: u64, end: u64, vm_flags: u64, pgoff: u64)
        -> c_int;
    pub(crate) fn cr_map_vdso(text_start: u64) -> c_int;
    pub(crate) fn cr_set_mm(info: *const MmInfo, exe: *mut file) -> c_int;

    // Files
    pub(crate) fn cr_task_files_identity(t: *mut task_struct) -> u64;
    pub(crate) fn cr_next_file(t: *mut task_struct, fd: *mut u32, cloexec: *mut bool) -> *mut file;
    pub(crate) fn cr_file_facts(f: *mut file, out: *mut FileFacts);
    pub(crate) fn cr_file_path(
        f: *mut file,
        dir: bool,
        buf: *mut c_char,
        len: c_int,
        unlinked: *mut bool,
    ) -> c_int;
    pub(crate) fn cr_open_path(path: *const c_char, flags: u32) -> *mut file;
    pub(crate) fn cr_close_all_fds();
    pub(crate) fn cr_install_fd(fd: u32, f: *mut file, cloexec: bool) -> c_int;
    pub(crate) fn cr_write_all(f: *mut file, buf: *const c_void, len: usize) -> c_int;
    pub(crate) fn cr_read_full(f: *mut file, buf: *mut c_void, len: usize) -> c_int;
    pub(crate) fn cr_write_pieces(f: *mut file, pieces: *const Piece, n: u32) -> c_int;
    pub(crate) fn cr_read_pages(f: *mut file, pages: *mut *mut page, n: u32) -> c_int;
    pub(crate) fn cr_reopen_same(f: *mut file, flags: u32) -> *mut file;
    pub(crate) fn cr_set_pos(f: *mut file, pos: u64) -> c_int;
    pub(crate) fn cr_file_holds(f: *mut file, pos: u64, len: u64) -> c_int;
    pub(crate) fn cr_file_punch(f: *mut file, pos: u64, len: u64) -> c_int;
    pub(crate) fn cr_set_status_flags(f: *mut file, flags: u32);
    pub(crate) fn cr_read_at(f: *mut file, buf: *mut c_void, len: u32, pos: u64) -> c_int;
    pub(crate) fn cr_write_at(f: *mut file, buf: *const c_void, len: u32, pos: u64) -> c_int;

    // Root, cwd, umask
    pub(crate) fn cr_fs_info(
        t: *mut task_struct,
        root: *mut c_char,
        cwd: *mut c_char,
        len: c_int,
        umask: *mut u32,
    ) -> c_int;
    pub(crate) fn cr_set_fs(root: *const c_char, cwd: *const c_char, umask: u32) -> c_int;

    // Trees and namespaces
    pub(crate) fn cr_collect_tree(
        root: *mut task_struct,
        ns: *mut pid_namespace,
        out: *mut *mut task_struct,
        max: c_long,
        strangers: *mut c_long,
    ) -> c_long;
    pub(crate) fn cr_ns_kin(ns: *mut pid_namespace, out: *mut Kin, max: c_long) -> c_long;
    pub(crate) fn cr_collect_all(out: *mut *mut task_struct, max: c_long) -> c_long;
    pub(crate) fn cr_tree_info(t: *mut task_struct, ns: *mut pid_namespace, out: *mut TreeInfo);
    pub(crate) fn cr_ipc_ns_in_use(t: *mut task_struct) -> bool;
    pub(crate) fn cr_get_uts(t: *mut task_struct, node: *mut c_char, domain: *mut c_char);
    pub(crate) fn cr_set_uts(node: *const c_char, domain: *const c_char) -> c_int;

    // Pipes, event files and shared memory
    pub(crate) fn cr_pipe_info(f: *mut file, out: *mut PipeInfo);
    pub(crate) fn cr_pipe_peek(
        f: *mut file,
        buf: *mut c_void,
        max: c_long,
        segments: *mut u32,
        max_segments: c_long,
    ) -> c_long;
    pub(crate) fn cr_pipe_set_capacity(f: *mut file, bytes: u32) -> c_long;
    pub(crate) fn cr_inode_locks(f: *mut file, out: *mut LockInfo, max: c_long) -> c_long;
    pub(crate) fn cr_lock_take(f: *mut file, kind: u32, write: bool, start: i64, end: i64)
        -> c_int;
    pub(crate) fn cr_pipe_create(read_end: *mut *mut file, write_end: *mut *mut file) -> c_int;
    pub(crate) fn cr_event_read(f: *mut file, kind: u32, out: *mut EventInfo) -> c_int;
    pub(crate) fn cr_event_create(info: *const EventInfo, nonblock: bool) -> *mut file;
    pub(crate) fn cr_epoll_items(ep: *mut file, out: *mut EpollItem, max: c_long) -> c_long;
    pub(crate) fn cr_epoll_add(ep: *mut file, w: *const EpollItem) -> c_int;
    pub(crate) fn cr_shmem_attrs(f: *mut file, out: *mut ShmemInfo);
    pub(crate) fn cr_shmem_create(info: *const ShmemInfo, name: *const c_char) -> *mut file;
    pub(crate) fn cr_shmem_set_attrs(f: *mut file, info: *const ShmemInfo) -> c_int;
    pub(crate) fn cr_shmem_seal(f: *mut file, seals: u32) -> c_int;
    pub(crate) fn cr_mapping_mms(f: *mut file, out: *mut u64, max: c_long) -> c_long;
}
