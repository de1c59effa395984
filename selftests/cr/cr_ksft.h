/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the C selftests add to the kernel's kselftest.h (from the tree cr is built against).
 */
#ifndef CR_KSFT_H
#define CR_KSFT_H

#include <errno.h>
#include <string.h>

#include "kselftest.h"

/* Asserts that a call returning -1/errno failed with exactly `want`. */
#define cr_expect_errno(ret, want, what)                                                   \
	do {                                                                                \
		long __r = (long)(ret);                                                     \
		int __e = errno;                                                            \
		if (__r == -1 && __e == (want))                                             \
			ksft_test_result_pass("%s fails with %s\n", what, strerrorname_np(want)); \
		else {                                                                      \
			ksft_test_result_fail("%s fails with %s\n", what, strerrorname_np(want)); \
			ksft_print_msg("got ret %ld errno %s\n", __r,                       \
				       strerrorname_np(__e) ?: "?");                        \
		}                                                                           \
	} while (0)

/* An environment problem, not a result: report it and stop with a failure. */
#define cr_bail(what) ksft_exit_fail_msg("%s: %s\n", what, strerror(errno))

#endif
