/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the programs that check themselves after a restart share (cr_events, cr_pipe_shapes,
 * cr_locks): one line per check in a result file, "ok NAME" or "not ok NAME: what it saw",
 * flushed at once so that a test reads whole lines; and waiting for the test's go file.
 */
#ifndef CR_SELF_CHECKS_H
#define CR_SELF_CHECKS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static FILE *result;
static int failures;

static void check(int ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		fprintf(result, "ok %s\n", name);
	} else {
		fprintf(result, "not ok %s: ", name);
		va_start(ap, fmt);
		vfprintf(result, fmt, ap);
		va_end(ap);
		fputc('\n', result);
		failures++;
	}
	fflush(result);
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static int exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Sleeps in nanosleep, where a checkpoint finds the program, until @path exists. */
static void wait_for_file(const char *path)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	while (!exists(path))
		nanosleep(&ts, NULL);
}

#endif
