// SPDX-License-Identifier: GPL-2.0
/*
 * Processes holding every kind of file lock cr saves, and one waiting for a lock, for
 * cr_locks.sh.
 *
 *   cr_locks hold FILE
 *                  takes an exclusive flock() on FILE and sleeps until killed, as someone
 *                  outside a checkpointed tree would.
 *   cr_locks OUT   sets them up, writes OUT.ready, waits (in nanosleep) for OUT.go, then checks
 *                  the locks from a new process (which no restart made) and writes a line per
 *                  check to OUT.result ("ok NAME" or "not ok NAME: what it saw"), and "done"
 *                  last; exits 0 if all held.
 *
 * What it sets up, on files OUT.a to OUT.d:
 *   - OUT.a: an exclusive flock();
 *   - OUT.b: a shared flock() through an open file the child shares, and another shared one
 *     through the child's own open file;
 *   - OUT.c: POSIX locks: the parent writes 0-99 and reads 200 to the end, through a file
 *     opened for reading and writing (a read-only descriptor of the file comes first); the
 *     child reads 300-399 through the same open file (its own descriptor table: its own lock);
 *   - OUT.d: open file description locks: writing 10-19 and reading 100 to the end;
 *   - a second child waits in fcntl(F_SETLKW) for a write lock on OUT.c's 0-9, and writes
 *     OUT.waiter once it has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "self_checks.h"

static char out[4096];

static const char *name_of(const char *suffix)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s.%s", out, suffix);
	return path;
}

static int open_at(const char *suffix, int flags)
{
	int fd = open(name_of(suffix), flags | O_CREAT, 0644);

	if (fd < 0)
		die(name_of(suffix));
	return fd;
}

static int posix(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock l = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &l);
}

/* What a F_GETLK (or F_OFD_GETLK) for a write lock on @start, @len finds: type and pid. */
static struct flock probe(int fd, int cmd, off_t start, off_t len)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &l) < 0)
		l.l_type = -1;
	return l;
}

static void checks(pid_t parent)
{
	int a = open_at("a", O_RDWR), b1 = open_at("b", O_RDONLY), b2 = open_at("b", O_RDONLY);
	int c = open_at("c", O_RDWR), d = open_at("d", O_RDWR);
	struct flock l;

	check(flock(a, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock-exclusive-held",
	      "another open file took OUT.a");
	check(flock(b2, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock-shared-held",
	      "another open file took OUT.b exclusively");
	check(flock(b1, LOCK_SH | LOCK_NB) == 0, "flock-shared-shares", "a shared lock failed: %m");
	l = probe(c, F_GETLK, 0, 100);
	check(l.l_type == F_WRLCK && l.l_pid == parent, "posix-write-held", "type %d pid %d",
	      l.l_type, l.l_pid);
	l = probe(c, F_GETLK, 150, 10);
	check(l.l_type == F_UNLCK, "posix-gap-free", "type %d pid %d", l.l_type, l.l_pid);
	l = probe(c, F_GETLK, 1 << 20, 10);
	check(l.l_type == F_RDLCK && l.l_pid == parent, "posix-read-to-end-held", "type %d pid %d",
	      l.l_type, l.l_pid);
	check(posix(c, F_SETLK, F_RDLCK, 250, 10) == 0, "posix-read-shares",
	      "a read lock failed: %m");
	l = probe(d, F_OFD_GETLK, 10, 10);
	check(l.l_type == F_WRLCK && l.l_pid == -1, "ofd-write-held", "type %d pid %d", l.l_type,
	      l.l_pid);
	l = probe(d, F_OFD_GETLK, 20, 80);
	check(l.l_type == F_UNLCK, "ofd-gap-free", "type %d", l.l_type);
	l = probe(d, F_OFD_GETLK, 5000, 1);
	check(l.l_type == F_RDLCK, "ofd-read-to-end-held", "type %d", l.l_type);
	exit(failures ? 1 : 0);
}

int main(int argc, char **argv)
{
	char ready[4200], go[4200], result_path[4200];
	int a, b, b2, c_ro, c, d, status, i;
	pid_t child, waiter, prober;
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	char zeros[1000] = { 0 };

	if (argc == 3 && !strcmp(argv[1], "hold")) {
		a = open(argv[2], O_RDWR);
		if (a < 0 || flock(a, LOCK_EX))
			die(argv[2]);
		for (;;)
			pause();
	}
	if (argc != 2) {
		fprintf(stderr, "usage: cr_locks OUT | cr_locks hold FILE\n");
		return 2;
	}
	snprintf(out, sizeof(out), "%s", argv[1]);
	snprintf(ready, sizeof(ready), "%s.ready", out);
	snprintf(go, sizeof(go), "%s.go", out);
	snprintf(result_path, sizeof(result_path), "%s.result", out);

	a = open_at("a", O_RDWR);
	if (flock(a, LOCK_EX))
		die("flock a");
	b = open_at("b", O_RDONLY);
	if (flock(b, LOCK_SH))
		die("flock b");
	c_ro = open_at("c", O_RDONLY);
	c = open_at("c", O_RDWR);
	if (write(c, zeros, sizeof(zeros)) != sizeof(zeros))
		die("write c");
	if (posix(c, F_SETLK, F_WRLCK, 0, 100) || posix(c, F_SETLK, F_RDLCK, 200, 0))
		die("F_SETLK c");
	d = open_at("d", O_RDWR);
	if (posix(d, F_OFD_SETLK, F_WRLCK, 10, 10) || posix(d, F_OFD_SETLK, F_RDLCK, 100, 0))
		die("F_OFD_SETLK d");

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		b2 = open_at("b", O_RDONLY);
		if (flock(b2, LOCK_SH) || posix(c, F_SETLK, F_RDLCK, 300, 100))
			die("child locks");
		close(open(name_of("child"), O_CREAT | O_WRONLY, 0644));
		for (;;)
			pause();
	}
	waiter = fork();
	if (waiter < 0)
		die("fork");
	if (waiter == 0) {
		int w = open_at("c", O_RDWR);

		close(open(name_of("waiting"), O_CREAT | O_WRONLY, 0644));
		while (posix(w, F_SETLKW, F_WRLCK, 0, 10) < 0)
			if (errno != EINTR)
				die("F_SETLKW");
		close(open(name_of("waiter"), O_CREAT | O_WRONLY, 0644));
		for (;;)
			pause();
	}
	wait_for_file(name_of("child"));
	wait_for_file(name_of("waiting"));
	close(open(ready, O_CREAT | O_WRONLY, 0644));
	wait_for_file(go);

	result = fopen(result_path, "w");
	if (!result)
		die(result_path);
	check(!exists(name_of("waiter")), "waiter-still-waits", "it took the lock before its release");
	prober = fork();
	if (prober < 0)
		die("fork");
	if (prober == 0) {
		result = fopen(result_path, "a");
		checks(getppid());
	}
	fclose(result);
	if (waitpid(prober, &status, 0) != prober)
		die("waitpid");
	result = fopen(result_path, "a");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
		failures++;
	check(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "prober-ran", "status %#x", status);
	/* The waiter gets the lock once it is released, and only then. */
	if (posix(c, F_SETLK, F_UNLCK, 0, 100))
		die("F_UNLCK");
	for (i = 0; i < 200 && !exists(name_of("waiter")); i++)
		nanosleep(&tick, NULL);
	check(exists(name_of("waiter")), "waiter-takes-released-lock", "still waiting after 10 s");
	(void)c_ro;
	kill(child, SIGKILL);
	kill(waiter, SIGKILL);
	waitpid(child, NULL, 0);
	waitpid(waiter, NULL, 0);
	fprintf(result, "done\n");
	fclose(result);
	return failures ? 1 : 0;
}
