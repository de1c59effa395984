/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the checkpoint targets share: SIGUSR1 requests a round, and results go to files in DIR,
 * written whole (a temporary name, then rename) so that a test never reads half a result.
 */
#ifndef CR_ROUNDS_H
#define CR_ROUNDS_H

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t rounds_requested;
static const char *dir;
static int round_no;

static void on_usr1(int sig)
{
	(void)sig;
	rounds_requested++;
}

/* Writes DIR/NAME atomically; exits 3 if it cannot. */
static void put_file(const char *name, const char *fmt, ...)
{
	char path[512], final[512], text[512];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s.tmp", dir, name);
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, text, n) != n)
		exit(3);
	close(fd);
	rename(path, final);
}

#endif
