// SPDX-License-Identifier: GPL-2.0
/* CR_IOC_VERSION reports the ABI, the image format range, the arch and only known features. */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/cr.h>

#include "cr_ksft.h"

int main(void)
{
	struct cr_version v;
	struct stat st;
	int fd;

	/* Line-buffered: no result is printed twice by a forked child. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_set_plan(10);
	ksft_test_result(stat(CR_DEVICE, &st) == 0 && S_ISCHR(st.st_mode), "%s is a character device\n",
		   CR_DEVICE);
	fd = open(CR_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_bail("open " CR_DEVICE);

	memset(&v, 0xa5, sizeof(v));
	ksft_test_result(ioctl(fd, CR_IOC_VERSION, &v) == 0, "CR_IOC_VERSION succeeds\n");
	ksft_test_result(v.abi_version == CR_ABI_VERSION, "abi_version is %d (got %u)\n", CR_ABI_VERSION,
		   v.abi_version);
	ksft_test_result(v.image_version == CR_IMAGE_VERSION, "image_version is %d (got %u)\n",
		   CR_IMAGE_VERSION, v.image_version);
	ksft_test_result(v.image_version_min == CR_IMAGE_VERSION_MIN, "image_version_min is %d (got %u)\n",
		   CR_IMAGE_VERSION_MIN, v.image_version_min);
	ksft_test_result(v.arch == CR_ARCH_X86_64, "arch is x86_64 (got %u)\n", v.arch);
	ksft_test_result((v.features & ~CR_FEATURES_KNOWN) == 0, "no unknown feature bits (got %#llx)\n",
		   (unsigned long long)v.features);

	/* A second open is independent and answers the same. */
	{
		struct cr_version w;
		int fd2 = open(CR_DEVICE, O_RDONLY | O_CLOEXEC);

		ksft_test_result(fd2 >= 0 && ioctl(fd2, CR_IOC_VERSION, &w) == 0 &&
				   memcmp(&v, &w, sizeof(v)) == 0,
			   "a second open file answers the same\n");
		close(fd2);
	}

	/* /dev/cr has no read or write; they must fail cleanly. */
	{
		char buf[8];

		ksft_test_result(read(fd, buf, sizeof(buf)) < 0, "read on /dev/cr fails\n");
		ksft_test_result(write(fd, buf, sizeof(buf)) < 0, "write on /dev/cr fails\n");
	}
	close(fd);
	ksft_finished();
}
