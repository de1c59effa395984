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
#define CR_IMAGE_VERSION	1
#define CR_IMAGE_VERSION_MIN	1

/* Architecture ids, as in the image header. */
#define CR_ARCH_X86_64		1

/*
 * Feature bits reported by CR_IOC_VERSION. A bit is only ever set by a module that implements
 * the feature completely; none are defined yet.
 */
#define CR_FEATURES_KNOWN	0ULL

struct cr_version {
	__u32 abi_version;	 /* out: CR_ABI_VERSION */
	__u32 image_version;	 /* out: image format version the module writes */
	__u32 image_version_min; /* out: oldest image format version restart accepts */
	__u32 arch;		 /* out: CR_ARCH_* of the running kernel */
	__u64 features;		 /* out: CR_FEATURE_* bits */
};

#define CR_IOC_VERSION		_IOR(CR_IOC_MAGIC, 0x00, struct cr_version)

#endif /* _UAPI_LINUX_CR_H */
