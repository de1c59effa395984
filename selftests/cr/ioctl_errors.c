// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl argument rules of include/uapi/linux/cr.h: unknown commands get ENOTTY, sizes below
 * the first version or above a page get EINVAL, a bad pointer gets EFAULT, and a caller with a
 * longer (newer) struct gets the known prefix and a zeroed tail.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/cr.h>

#include "cr_ksft.h"

int main(void)
{
	unsigned char big[64];
	struct cr_version v;
	int fd, i, tail_zero;

	/* Line-buffered: no result is printed twice by a forked child. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_set_plan(13);
	fd = open(CR_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_bail("open " CR_DEVICE);

	cr_expect_errno(ioctl(fd, _IOR(CR_IOC_MAGIC, 0x3f, struct cr_version), &v), ENOTTY,
		  "an unknown command number");
	cr_expect_errno(ioctl(fd, _IOR(CR_IOC_MAGIC + 1, 0x00, struct cr_version), &v), ENOTTY,
		  "the right number with a foreign magic");
	cr_expect_errno(ioctl(fd, _IOW(CR_IOC_MAGIC, 0x00, struct cr_version), &v), ENOTTY,
		  "CR_IOC_VERSION with the write direction");
	cr_expect_errno(ioctl(fd, _IO(CR_IOC_MAGIC, 0x00), &v), ENOTTY,
		  "CR_IOC_VERSION with no direction");
	cr_expect_errno(ioctl(fd, _IOC(_IOC_READ, CR_IOC_MAGIC, 0x00, 8), &v), EINVAL,
		  "CR_IOC_VERSION with an 8-byte argument");
	cr_expect_errno(ioctl(fd, _IOC(_IOC_READ, CR_IOC_MAGIC, 0x00, sizeof(v) - 1), &v), EINVAL,
		  "CR_IOC_VERSION one byte short");
	cr_expect_errno(ioctl(fd, _IOC(_IOC_READ, CR_IOC_MAGIC, 0x00, 8192), big), EINVAL,
		  "CR_IOC_VERSION with an 8 KiB argument");
	cr_expect_errno(ioctl(fd, CR_IOC_VERSION, (void *)16), EFAULT, "CR_IOC_VERSION on a bad pointer");
	cr_expect_errno(ioctl(fd, CR_IOC_VERSION, NULL), EFAULT, "CR_IOC_VERSION on NULL");
	cr_expect_errno(ioctl(fd, TCGETS, big), ENOTTY, "a terminal ioctl");

	memset(big, 0xff, sizeof(big));
	ksft_test_result(ioctl(fd, _IOC(_IOC_READ, CR_IOC_MAGIC, 0x00, sizeof(big)), big) == 0,
		   "CR_IOC_VERSION with a longer, newer struct succeeds\n");
	memcpy(&v, big, sizeof(v));
	ksft_test_result(v.abi_version == CR_ABI_VERSION && v.arch == CR_ARCH_X86_64,
		   "the longer struct holds the known fields\n");
	tail_zero = 1;
	for (i = sizeof(v); i < (int)sizeof(big); i++)
		tail_zero &= big[i] == 0;
	ksft_test_result(tail_zero, "the unknown tail of the longer struct is zeroed\n");

	close(fd);
	ksft_finished();
}
