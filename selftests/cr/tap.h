/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal TAP 13 output for the cr selftests: one line per assertion, a plan at the end, and an
 * exit status of 0 only when every assertion passed.
 */
#ifndef CR_TAP_H
#define CR_TAP_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

static inline void tap_start(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
}

static inline int tap_result(int ok, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	if (!ok)
		tap_failed++;
	printf("%sok %d - ", ok ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return ok;
}

/* Asserts that a call returning -1/errno failed with exactly `want`. */
#define tap_errno(ret, want, what)                                                         \
	do {                                                                                \
		long __r = (long)(ret);                                                     \
		int __e = errno;                                                            \
		if (!tap_result(__r == -1 && __e == (want), "%s fails with %s", what,       \
				strerrorname_np(want)))                                     \
			printf("# got ret %ld errno %s\n", __r, strerrorname_np(__e) ?: "?"); \
	} while (0)

static inline int tap_finish(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

/* An environment problem, not a result: report and stop with a failure. */
static inline void tap_bail(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(1);
}

#endif
