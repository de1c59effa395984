/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of cr.ko: typed access to kernel state that is reachable only through static
 * inlines, macros or headers the Rust bindings do not carry. Each function reads or applies one
 * piece of state, or reports facts; what to refuse, and why, is decided in Rust.
 *
 * rust/shim/ffi.rs mirrors every struct, constant and prototype here; a host test
 * (tools/crimage/tests/shim.rs) checks that the two agree, and both sides assert the sizes.
 */
#ifndef CR_SHIM_H
#define CR_SHIM_H

#include <linux/types.h>

struct file;
struct task_struct;
struct mm_struct;
struct pid_namespace;
struct page;

#define CR_COMM_LEN 16
#define CR_AUXV_WORDS 54
#define CR_SIGINFO_LEN 48
#define CR_USER_REGS_LEN 216
#define CR_NAME_LEN 256

struct cr_task_info {
	u32 pid, tgid, ppid, pgid, sid;
	u32 personality, exit_signal, pdeath_signal, sas_ss_flags;
	u32 flags, dumpable, reserved;
	u64 clear_child_tid, robust_list, robust_list_len, sas_ss_sp, sas_ss_size, blocked;
	char comm[CR_COMM_LEN];
};

/* cr_task_info.flags, as in format.rs's task_flags */
#define CR_TASK_NO_NEW_PRIVS 1

/* cr_task_facts(): what decides whether a live task can be checkpointed */
#define CR_TF_KTHREAD 0x1
#define CR_TF_EXITING 0x2
#define CR_TF_FROZEN 0x4
#define CR_TF_TRACED 0x8
#define CR_TF_32BIT 0x10
#define CR_TF_SECCOMP 0x20
#define CR_TF_OTHER_USERNS 0x40
#define CR_TF_OTHER_MNTNS 0x80
#define CR_TF_POSIX_TIMERS 0x100
#define CR_TF_SAVED_SIGMASK 0x400
#define CR_TF_SEM_UNDO 0x800
#define CR_TF_NO_MM 0x1000
#define CR_TF_AIO 0x2000
#define CR_TF_OTHER_TIMENS 0x4000

/* Laid out exactly as format.rs's CredsRecord, which shim.rs fills through it. */
struct cr_creds_info {
	u32 uid, euid, suid, fsuid, gid, egid, sgid, fsgid, securebits, ngroups;
	u64 cap_inheritable, cap_permitted, cap_effective, cap_bset, cap_ambient;
};

struct cr_mm_info {
	u64 start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	u64 arg_start, arg_end, env_start, env_end, vdso;
	u64 auxv[CR_AUXV_WORDS];
	u32 auxv_words, reserved;
};

/* Kernel constants the Rust bindings do not carry (shim.c asserts them). */
#define CR_VM_GROWSDOWN 0x100
#define CR_VM_STACK_INCOMPLETE_SETUP 0x18000
#define CR_TT_NONE 0
#define CR_TT_NATIVE 1

/* cr_vma_info.facts */
#define CR_VF_VDSO 0x1
#define CR_VF_VVAR 0x2
#define CR_VF_ANON 0x4

struct cr_vma_info {
	u64 start, end, vm_flags, pgoff;
	struct file *file; /* referenced, or NULL; the caller puts it */
	u32 facts, reserved;
};

/* cr_file_facts.facts */
#define CR_FF_PIPE 0x1 /* a pipe end: a FIFO whose private data is its inode's pipe */
#define CR_FF_SHMEM 0x2 /* its mapping is shmem's */
#define CR_FF_KERNMOUNT 0x4 /* on a kernel-internal mount (memfd, MAP_SHARED anonymous) */
#define CR_FF_UNLINKED 0x8 /* its path no longer leads to it */
#define CR_FF_LOCKED 0x10 /* its inode has a flock, a POSIX or OFD lock, or a lease */

struct cr_file_facts {
	u64 pos, dev, ino, size;
	u32 flags, mode, rdev, rdev_major, rdev_minor, sb_magic, nlink, facts;
	char name[CR_NAME_LEN]; /* the dentry's name, NUL-terminated */
};

/* Identities (never dereferenced) of what a task shares. */
struct cr_tree_info {
	u32 pid, tgid, ppid, pgid, sid, exit_signal, exit_status, flags;
	u32 pdeath_signal, reserved;
	u64 mm, files, fs, sighand, uts_ns, ipc_ns;
};

/* cr_tree_info.flags */
#define CR_TREE_EXITED 1 /* a zombie (or dead) task: only the ids and exit_status are set */
#define CR_TREE_SUBREAPER 2
#define CR_TREE_OTHER_PIDNS 4 /* the task lives in a pid namespace below the tree's */
#define CR_TREE_LEADER_EXITED 8 /* a thread-group leader that exited before its threads */
#define CR_TREE_FORKED_BY_THREAD 16 /* a process whose parent is not its parent's main thread */

/* A task as a process identity, and its parent's (never dereferenced). */
struct cr_kin {
	u64 process, parent;
	u32 pid, reserved;
};

struct cr_pipe_info {
	u64 pipe;
	u32 readers, writers, capacity, len;
	u8 readable, writable, watch_queue, packets;
	u32 buffers;
};

/* In cr_pipe_peek()'s buffer lengths, the bit that marks a packet (format.rs's PIPE_PACKET). */
#define CR_PIPE_PACKET 0x80000000

/* Values of cr_event_info.kind, as in format.rs's event_kind. */
#define CR_EVENT_EVENTFD 1
#define CR_EVENT_TIMERFD 2
#define CR_EVENT_SIGNALFD 3
#define CR_EVENT_EPOLL 4

/*
 * An event file's state. cr_event_read() fills it, value_ns with the time a timer has left and
 * now_ns with the real-time clock's reading then; users counts the kernel's own users of an
 * eventfd (KVM, vhost, io_uring...), which no file shows. cr_event_create() takes value_ns as
 * the settime flags in flags say.
 */
struct cr_event_info {
	u32 kind, flags, clock, users;
	u64 count, mask;
	s64 value_ns, interval_ns, now_ns;
};

/* One watch of an epoll's interest list: cr_epoll_items() gives a reference to its file. */
struct cr_epoll_item {
	struct file *file;
	u32 fd, events;
	u64 data;
	u32 ready, reserved;
};

/* Which interval timer: the values of ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF. */
#define CR_ITIMER_REAL 0
#define CR_ITIMER_VIRTUAL 1
#define CR_ITIMER_PROF 2

/* Values of cr_lock_info.kind: format.rs's lock_kind, and a lease, which cr refuses. */
#define CR_LOCK_FLOCK 1
#define CR_LOCK_POSIX 2
#define CR_LOCK_OFD 3
#define CR_LOCK_LEASE 4

/* One lock held on an inode, as cr_inode_locks() reads it (start and end only for POSIX/OFD). */
struct cr_lock_info {
	u64 owner, file;
	s64 start, end;
	u32 kind, write;
};

/* Values of cr_shmem_info.kind, as in format.rs's shmem_kind. */
#define CR_SHMEM_MEMFD 1
#define CR_SHMEM_ANON 2
#define CR_SHMEM_UNLINKED 3
#define CR_SHMEM_SEALS_KNOWN 0x3f

struct cr_shmem_info {
	u64 id, size;
	u32 kind, seals, mode, uid, gid, reserved;
	s64 atime_ns, mtime_ns;
};

struct cr_pending_signal {
	u32 signo, reserved;
	u8 info[CR_SIGINFO_LEN];
};

struct cr_restart_info {
	u32 kind, clockid, type, reserved;
	u64 rmtp, remaining_ns;
};

/* Tasks */
struct task_struct *cr_get_task(pid_t vpid);
bool cr_may_attach(struct task_struct *t);
u32 cr_task_facts(struct task_struct *t);
void cr_task_info(struct task_struct *t, struct pid_namespace *ns, struct cr_task_info *out);
void cr_set_task_info(const struct cr_task_info *in);
void cr_set_after_creds(const struct cr_task_info *in);
int cr_set_blocked(u64 blocked);
int cr_creds_info(struct task_struct *t, struct cr_creds_info *out, u32 *groups, u32 max_groups);
int cr_set_creds(const struct cr_creds_info *in, const u32 *groups);
void cr_get_rlimits(struct task_struct *t, u64 *out, u32 count);
int cr_set_rlimit(u32 resource, u64 cur, u64 max);
void cr_get_itimer(struct task_struct *t, u32 which, u64 *value_ns, u64 *interval_ns);
int cr_set_itimer(u32 which, u64 value_ns, u64 interval_ns);
u32 cr_current_threads(void);
pid_t cr_current_vpid(void);
void cr_release(char *buf, int len);
bool cr_task_exited(struct task_struct *t);
bool cr_fatal_signal_pending(void);

/* Signals */
void cr_get_sigactions(struct task_struct *t, u64 *out);
int cr_set_sigaction(int sig, const u64 *in);
u32 cr_get_pending(struct task_struct *t, bool shared, struct cr_pending_signal *out, u32 max);
int cr_queue_signal(u32 signo, const u8 *info_bytes, bool shared);
void cr_discard_signals(u64 mask);

/* Registers, FPU, restart blocks */
int cr_get_regs(struct task_struct *t, void *out);
u32 cr_xstate_size(void);
u64 cr_xfeatures(void);
int cr_get_xstate(struct task_struct *t, void *out, u32 size);
int cr_set_xstate(const void *in, u32 size);
int cr_get_restart(struct task_struct *t, struct cr_restart_info *out);
void cr_user_segments(u64 *cs, u64 *ss, u64 *user_top);
void *cr_prepare_regs(const void *regs, const struct cr_restart_info *restart);
void cr_free_regs(void *work);
int cr_install_regs(void *work);

/* A page reported by a walk (struct cr_page of linux/cr_pages.h, patch 0004): referenced, and
 * NULL where the contents are elsewhere; or a run of pages unchanged since their copies. */
struct cr_page_ref {
	u64 addr;
	struct page *page;
	u32 flags, run;
};

/* The pages copied before, and how far the walks have read them (struct cr_copies). */
struct cr_copies_ref {
	const void *pages;	/* struct cr_copied_page: u64 address, then the frame's identity */
	u64 count, at;
};

/* cr_page_ref.flags this module reads: the kernel's CR_PAGE_* */
#define CR_REF_PINNED 0x4
#define CR_REF_ELSEWHERE 0x10
#define CR_REF_GUARD 0x20
#define CR_REF_UNCHANGED 0x40
/* cr_mm_walk_pages() flags it uses: the kernel's CR_WALK_* */
#define CR_SCAN_ANON_ONLY 0x1
#define CR_SCAN_HARVEST 0x2

/* One piece of a gathered write (laid out as struct kvec). */
struct cr_piece {
	const void *data;
	size_t len;
};

/* Memory */
void cr_mm_info(struct mm_struct *mm, struct cr_mm_info *out);
struct file *cr_mm_exe_file(struct mm_struct *mm);
int cr_vma_next(struct mm_struct *mm, u64 addr, struct cr_vma_info *out);
u64 cr_mm_resident_private(struct mm_struct *mm);
long cr_mm_walk_pages(struct mm_struct *mm, u64 *cursor, u64 end, u32 flags,
		      struct cr_copies_ref *copies, struct cr_page_ref *out, long max);
int cr_mm_fault_in(struct mm_struct *mm, u64 addr, struct page **out);
void cr_put_page(struct page *page);
const void *cr_page_address(struct page *page);
void cr_copy_running_page(void *dst, struct page *page);
long cr_mm_own_pages(struct mm_struct *mm, u64 addr, u32 n, struct page **out);
int cr_unmap_all(void);
int cr_map(struct file *file, u64 start, u64 end, u64 vm_flags, u64 pgoff);
int cr_map_vdso(u64 text_start);
int cr_set_mm(const struct cr_mm_info *in, struct file *exe);

/* Files */
u64 cr_task_files_identity(struct task_struct *t);
struct file *cr_next_file(struct task_struct *t, u32 *fd, bool *cloexec);
void cr_file_facts(struct file *f, struct cr_file_facts *out);
int cr_file_path(struct file *f, bool dir, char *buf, int len, bool *unlinked);
struct file *cr_open_path(const char *path, u32 flags);
void cr_close_all_fds(void);
int cr_install_fd(u32 fd, struct file *f, bool cloexec);
int cr_write_all(struct file *f, const void *buf, size_t len);
int cr_read_full(struct file *f, void *buf, size_t len);
int cr_write_pieces(struct file *f, const struct cr_piece *pieces, u32 n);
int cr_read_pages(struct file *f, struct page **pages, u32 n);
struct file *cr_reopen_same(struct file *f, u32 flags);
int cr_set_pos(struct file *f, u64 pos);
int cr_file_holds(struct file *f, u64 pos, u64 len);
int cr_file_punch(struct file *f, u64 pos, u64 len);
void cr_set_status_flags(struct file *f, u32 flags);
int cr_read_at(struct file *f, void *buf, u32 len, u64 pos);
int cr_write_at(struct file *f, const void *buf, u32 len, u64 pos);

/* Root, cwd, umask */
int cr_fs_info(struct task_struct *t, char *root, char *cwd, int len, u32 *umask);
int cr_set_fs(const char *root, const char *cwd, u32 umask);

/* Trees and namespaces */
long cr_collect_tree(struct task_struct *root, struct pid_namespace *ns, struct task_struct **out,
		     long max, long *strangers);
long cr_ns_kin(struct pid_namespace *ns, struct cr_kin *out, long max);
long cr_collect_all(struct task_struct **out, long max);
void cr_tree_info(struct task_struct *t, struct pid_namespace *ns, struct cr_tree_info *out);
bool cr_ipc_ns_in_use(struct task_struct *t);
void cr_get_uts(struct task_struct *t, char *node, char *domain);
int cr_set_uts(const char *node, const char *domain);

/* Pipes, event files and shared memory */
void cr_pipe_info(struct file *f, struct cr_pipe_info *out);
long cr_pipe_peek(struct file *f, void *buf, long max, u32 *segments, long max_segments);
long cr_pipe_set_capacity(struct file *f, u32 bytes);
long cr_inode_locks(struct file *f, struct cr_lock_info *out, long max);
int cr_lock_take(struct file *f, u32 kind, bool write, s64 start, s64 end);
int cr_pipe_create(struct file **read_end, struct file **write_end);
int cr_event_read(struct file *f, u32 kind, struct cr_event_info *out);
struct file *cr_event_create(const struct cr_event_info *in, bool nonblock);
long cr_epoll_items(struct file *ep, struct cr_epoll_item *out, long max);
int cr_epoll_add(struct file *ep, const struct cr_epoll_item *w);
void cr_shmem_attrs(struct file *f, struct cr_shmem_info *out);
struct file *cr_shmem_create(const struct cr_shmem_info *in, const char *name);
int cr_shmem_set_attrs(struct file *f, const struct cr_shmem_info *in);
int cr_shmem_seal(struct file *f, u32 seals);
long cr_mapping_mms(struct file *f, u64 *out, long max);

#endif
