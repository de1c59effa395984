/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cr: checkpoint/restart through /dev/cr.
 *
 * The ioctls mirror the linux-cr system calls checkpoint(pid, fd, flags, logfd) and
 * restart(pid, fd, flags, logfd). See Documentation/cr.rst.
 *
 * Extension rule: every argument struct is fixed-size and its size is encoded in the ioctl
 * number (_IOC_SIZE). A later version may only append fields. The module accepts any size from
 * the first version's size up to one page: a shorter struct than the module knows is read with the
 * missing fields as zero and written truncated; a longer one must have its unknown tail zeroed
 * (otherwise E2BIG). A size below the first version's gets EINVAL, an unknown ioctl ENOTTY.
 */
#ifndef _UAPI_LINUX_CR_H
#define _UAPI_LINUX_CR_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define CR_DEVICE		"/dev/cr"
#define CR_IOC_MAGIC		0xC7

/* Bumped when the ioctl ABI changes incompatibly (never, we hope). */
#define CR_ABI_VERSION		1

/* Image format versions: written, and oldest accepted. */
#define CR_IMAGE_VERSION	9
#define CR_IMAGE_VERSION_MIN	4

/* Architecture ids, as in the image header. */
#define CR_ARCH_X86_64		1

/*
 * Feature bits reported by CR_IOC_VERSION. A bit is only ever set by a module that implements
 * the feature completely; none are defined yet.
 */
#define CR_FEATURE_TREES	(1ULL << 0)	/* trees, threads, pipes, shared memory */
#define CR_FEATURE_CONTAINERS	(1ULL << 1)	/* a pid namespace's init, UTS names */
#define CR_FEATURE_THAWED	(1ULL << 2)	/* CR_IOC_PRECOPY, CR_IOC_STAGE */
#define CR_FEATURE_INCREMENTAL	(1ULL << 3)	/* CR_IOC_PARENT, CR_CHECKPOINT_TRACK */
#define CR_FEATURES_KNOWN	(CR_FEATURE_TREES | CR_FEATURE_CONTAINERS | CR_FEATURE_THAWED | \
				 CR_FEATURE_INCREMENTAL)

struct cr_version {
	__u32 abi_version;	 /* out: CR_ABI_VERSION */
	__u32 image_version;	 /* out: image format version the module writes */
	__u32 image_version_min; /* out: oldest image format version restart accepts */
	__u32 arch;		 /* out: CR_ARCH_* of the running kernel */
	__u64 features;		 /* out: CR_FEATURE_* bits */
};

#define CR_IOC_VERSION		_IOR(CR_IOC_MAGIC, 0x00, struct cr_version)

/*
 * checkpoint(pid, fd, flags, logfd): write the state of process @pid and of its whole subtree
 * (threads, children, zombies), which must be frozen by the cgroup v2 freezer, to @fd,
 * sequentially (a file, pipe or socket). When @pid is the init of a pid namespace other than
 * the caller's, the image is a container's: pids are that namespace's. Returns 0 once the whole
 * image is written. The caller needs CAP_SYS_ADMIN, or the target's uid and PTRACE_MODE_ATTACH
 * rights over it. On failure a one-line reason goes to @logfd (-1: none) and errno says why:
 * EBUSY (not frozen, traced, exiting, or an object shared with a task outside the tree), EPERM,
 * EOPNOTSUPP (state cr cannot save yet), ESRCH.
 */
struct cr_checkpoint_args {
	__s32 pid;
	__s32 fd;
	__s32 logfd;
	__u32 __reserved;	/* must be zero */
	__u64 flags;		/* CR_CHECKPOINT_* */
};

/*
 * Checkpoint even when a task outside the tree shares one of its objects (a pipe end, shared
 * memory, a descriptor table). Without it, such a leak fails the checkpoint with EBUSY.
 */
#define CR_CHECKPOINT_ALLOW_LEAKS	(1ULL << 0)

/*
 * Once the checkpoint succeeded, write one line of figures to @logfd:
 * "cr: stats: tasks=N pages=N bytes=N ns=N": the live tasks written, the pages of memory, the
 * image's bytes, and the nanoseconds the ioctl took.
 */
#define CR_CHECKPOINT_STATS		(1ULL << 1)

/*
 * The frozen round of a thawed checkpoint: CR_IOC_PRECOPY on this open /dev/cr copied the
 * tree's memory while it ran, to the same stream. Pages found unchanged since they were copied
 * are written as KEEP records that refer to that copy; the rest as usual. EINVAL when this
 * open /dev/cr made no precopy of @pid; the precopy is used up either way.
 */
#define CR_CHECKPOINT_AFTER_PRECOPY	(1ULL << 2)

/*
 * Keep tracking the tree's private memory once the image is written: its page tables' dirty
 * state is harvested as the pages are written, and what was written stays with the module,
 * named by the image's trailer (its length and checksum), until a checkpoint with
 * CR_IOC_PARENT names this image, another checkpoint tracks the same address space, or the
 * address space is gone. One image per address space is tracked at a time.
 */
#define CR_CHECKPOINT_TRACK		(1ULL << 3)

#define CR_IOC_CHECKPOINT	_IOW(CR_IOC_MAGIC, 0x01, struct cr_checkpoint_args)

/*
 * restart(pid, fd, flags, logfd): the calling task replaces its memory, files, credentials and
 * signal state with those of the task with its pid in the image read from @fd, and returns to
 * user space as that task. @pid must be 0 or the caller's own pid (each task restores itself).
 * Needs CAP_SYS_ADMIN. The tasks of one image take turns reading their part of the stream, in
 * image order; restart is all or nothing: if any task fails, every task of the tree is killed
 * (SIGKILL), with the reason and the image offset on @logfd.
 */
struct cr_restart_args {
	__s32 pid;
	__s32 fd;
	__s32 logfd;
	__u32 __reserved;	/* must be zero */
	__u64 flags;		/* CR_RESTART_* */
};

/*
 * Check the image without restoring anything: the calling task alone (@pid 0) reads the whole
 * stream and makes every check a restart of it would make before changing a task (records,
 * objrefs, the tree, files by path and inode, this CPU's state), then returns 0 or the error a
 * restart would fail with. No task of the image needs to exist.
 */
#define CR_RESTART_DRY_RUN	(1ULL << 0)

/*
 * Once the restart succeeded, the last task to finish writes the line CR_CHECKPOINT_STATS
 * describes to its @logfd; ns runs from the first task's call to the last one's return.
 */
#define CR_RESTART_STATS	(1ULL << 1)

#define CR_IOC_RESTART		_IOW(CR_IOC_MAGIC, 0x02, struct cr_restart_args)

/*
 * How far the checkpoint that the calling process runs (in another of its threads) has come:
 * image bytes written so far, and about how many there will be (the resident memory of the
 * tree, and its other state; 0 while unknown). ENOENT when the process runs no checkpoint.
 * ckpt shows it on a terminal.
 */
struct cr_progress {
	__u64 done;	/* out */
	__u64 total;	/* out */
};

#define CR_IOC_PROGRESS		_IOR(CR_IOC_MAGIC, 0x03, struct cr_progress)

/*
 * precopy(pid, fd, flags, logfd): the first half of a thawed checkpoint. While the tree of @pid
 * runs, its private memory is copied to @fd in rounds, as a precopy image: first every page,
 * then each round the pages written since the round before, found by the page tables' dirty
 * bits, which costs the tree no write-protection and no fault. Returns once the last round's
 * pages would have been copied within @max_downtime_ns, or the rounds stop shrinking, or after
 * @max_rounds (0: 8). The caller then freezes the tree and calls CR_IOC_CHECKPOINT with
 * CR_CHECKPOINT_AFTER_PRECOPY on the same open /dev/cr and @fd, which holds what was copied
 * meanwhile. Errors as for CR_IOC_CHECKPOINT; EOPNOTSUPP for an address space that another
 * MMU writes too (KVM, device SVA), whose writes set no dirty bit; EBUSY for one that another
 * precopy tracks (until its checkpoint, or until its /dev/cr is closed).
 */
struct cr_precopy_args {
	__s32 pid;
	__s32 fd;
	__s32 logfd;
	__u32 max_rounds;	/* 0: the default, 8 */
	__u64 flags;		/* CR_PRECOPY_* */
	__u64 max_downtime_ns;
};

/* Write "cr: precopy: rounds=N pages=N bytes=N last=N ns=N" to @logfd once done. */
#define CR_PRECOPY_STATS	(1ULL << 0)

#define CR_IOC_PRECOPY		_IOW(CR_IOC_MAGIC, 0x04, struct cr_precopy_args)

/*
 * Before the first CR_IOC_RESTART of a thawed checkpoint's image: @fd is a file (a memfd)
 * whose bytes at offset A are what the precopy image last gave for address A of address space
 * @mm. KEEP records of that address space are read from it. EBUSY once the restart began,
 * EEXIST for an @mm already staged.
 */
struct cr_stage_args {
	__s32 fd;
	__u32 __reserved;	/* must be zero */
	__u64 mm;
};

#define CR_IOC_STAGE		_IOW(CR_IOC_MAGIC, 0x05, struct cr_stage_args)

/*
 * Makes the next CR_IOC_PRECOPY or CR_IOC_CHECKPOINT on this open /dev/cr incremental to the
 * image whose trailer has @length and @checksum, which a checkpoint with CR_CHECKPOINT_TRACK
 * wrote: a page of an address space it tracked that is provably unchanged since (present in
 * the same frame, not dirty, not pinned) is written as a KEEP record that refers to the parent,
 * and the image starts with a PARENT record naming it, with @path (an absolute path, or 0).
 * Where the module holds no tracking for an address space (the parent was not tracked, the
 * tracking was consumed or reset, or exec replaced the address space), its pages are written
 * whole, and logfd says so. The tracking is consumed by that checkpoint.
 */
struct cr_parent_args {
	__u64 length;
	__u64 checksum;
	__u64 path;		/* user pointer to @path_len bytes, no NUL; 0 for none */
	__u32 path_len;
	__u32 __reserved;	/* must be zero */
};

#define CR_IOC_PARENT		_IOW(CR_IOC_MAGIC, 0x06, struct cr_parent_args)

/*
 * Every task of the image calls CR_IOC_RESTART on one open /dev/cr (inherited from the
 * restarter), with its own pid. A task that was a zombie gets CR_RESTART_ZOMBIE ORed with its
 * wait status back and must exit with that status; the others return to user space as they
 * were checkpointed, together.
 */
#define CR_RESTART_ZOMBIE		(1 << 16)

#endif /* _UAPI_LINUX_CR_H */
