// SPDX-License-Identifier: GPL-2.0
/*
 * A process holding every kind of event file cr saves, each in a state a restart could get
 * wrong, for cr_events.sh.
 *
 *   cr_events OUT      sets them up, writes OUT.ready, waits (in nanosleep) for OUT.go, then
 *                      checks each one and writes a line per check to OUT.result ("ok NAME" or
 *                      "not ok NAME: what it saw"), and "done" last; exits 0 if all held.
 *   cr_events grab PID FD
 *                      takes PID's descriptor FD (pidfd_getfd: the same open file) and holds it
 *                      until killed, as a task outside a checkpointed tree would.
 *
 * What it sets up:
 *   - eventfd "sem": EFD_SEMAPHORE | EFD_NONBLOCK, counter 3, also at a second descriptor (dup);
 *   - eventfd "big": counter 2^40 + 5, more than eventfd2() can be given, close-on-exec;
 *   - eventfd "shared": counter 0, shared with a child process, which adds 7 to it once OUT.go
 *     exists;
 *   - timerfd "periodic": CLOCK_MONOTONIC, every 20 ms, never read before the checks;
 *   - timerfd "hour": CLOCK_BOOTTIME, one shot in one hour;
 *   - timerfd "wall": CLOCK_REALTIME, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, at the wall
 *     clock's now + 2 hours;
 *   - timerfd "fired": CLOCK_MONOTONIC, one shot that fired before the checkpoint and is unread;
 *   - timerfd "idle": disarmed, with an interval of 3 s left from its last setting;
 *   - signalfd "sigs": SIGUSR1 and SIGUSR2, non-blocking, with SIGUSR1 blocked and pending;
 *   - an epoll watching: an eventfd, level-triggered (data 0x1111); a pipe, edge-triggered, its
 *     edge reported before the checkpoint (0x2222); an eventfd, one-shot, fired (0x3333); the
 *     same pipe under a descriptor closed since (0x4444); a nested epoll (0x6666) that watches
 *     an eventfd (0x5555); another pipe, edge-triggered, with an edge not yet reported (0x7777).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "self_checks.h"

#define BIG ((1ULL << 40) + 5)
#define HOUR_S 3600
#define WALL_S 7200


static _Noreturn void grab(pid_t pid, int fd)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);

	if (pidfd < 0 || syscall(SYS_pidfd_getfd, pidfd, fd, 0) < 0)
		die("pidfd_getfd");
	for (;;)
		pause();
}

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Seconds to the wall clock's @target, as the kernel would count them now. */
static int64_t wall_left_ns(int64_t target)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return target - ns_of(&now);
}

/* The data of the events epoll_wait() reports now, as a sorted, comma-separated list. */
static void ready_list(int ep, char *out, size_t len)
{
	struct epoll_event evs[16];
	uint64_t d[16], t;
	int n = epoll_wait(ep, evs, 16, 0), i, j;
	size_t at = 0;

	for (i = 0; i < n; i++)
		d[i] = evs[i].data.u64;
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (d[j] < d[i]) {
				t = d[i];
				d[i] = d[j];
				d[j] = t;
			}
	out[0] = 0;
	for (i = 0; i < n && at < len; i++)
		at += snprintf(out + at, len - at, "%s%llx", i ? "," : "", (unsigned long long)d[i]);
}

/* Whether fdinfo of epoll @ep lists a watch registered as descriptor @fd. */
static int watches_fd(int ep, int fd)
{
	char path[64], line[256];
	int tfd, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "tfd: %d", &tfd) == 1 && tfd == fd)
			found = 1;
	fclose(f);
	return found;
}

static int watch(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static uint64_t read_u64(int fd, int *err)
{
	uint64_t v = 0;

	*err = read(fd, &v, sizeof(v)) == sizeof(v) ? 0 : errno;
	return v;
}

int main(int argc, char **argv)
{
	char ready[4096], go[4096], out[4096];
	struct itimerspec its = { 0 }, now_its;
	struct signalfd_siginfo si;
	struct timespec real, ms = { 0, 50 * 1000 * 1000 };
	int sem, sem2, big, shared, periodic, hour, wall, fired, idle, sigs, err;
	int ep, inner, e_level, e_once, e_inner, et[2], edge[2], closed;
	char list[256];
	int64_t wall_target;
	sigset_t mask;
	pid_t child;
	uint64_t v;
	int i;

	if (argc == 4 && !strcmp(argv[1], "grab"))
		grab(atoi(argv[2]), atoi(argv[3]));
	if (argc != 2) {
		fprintf(stderr, "usage: cr_events OUT | cr_events grab PID FD\n");
		return 2;
	}
	snprintf(ready, sizeof(ready), "%s.ready", argv[1]);
	snprintf(go, sizeof(go), "%s.go", argv[1]);
	snprintf(out, sizeof(out), "%s.result", argv[1]);

	sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	big = eventfd(0, EFD_CLOEXEC);
	shared = eventfd(0, 0);
	if (sem < 0 || big < 0 || shared < 0)
		die("eventfd");
	sem2 = dup(sem);
	/* 2^40 + 5 is more than eventfd2() takes: written in two steps. */
	v = BIG - 5;
	if (write(big, &v, sizeof(v)) != sizeof(v))
		die("write big");
	v = 5;
	if (write(big, &v, sizeof(v)) != sizeof(v))
		die("write big");

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		wait_for_file(go);
		v = 7;
		_exit(write(shared, &v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}

	periodic = timerfd_create(CLOCK_MONOTONIC, 0);
	hour = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
	wall = timerfd_create(CLOCK_REALTIME, 0);
	fired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	idle = timerfd_create(CLOCK_MONOTONIC, 0);
	if (periodic < 0 || hour < 0 || wall < 0 || fired < 0 || idle < 0)
		die("timerfd_create");
	its.it_value.tv_nsec = 20 * 1000 * 1000;
	its.it_interval.tv_nsec = 20 * 1000 * 1000;
	if (timerfd_settime(periodic, 0, &its, NULL))
		die("periodic");
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = HOUR_S;
	if (timerfd_settime(hour, 0, &its, NULL))
		die("hour");
	clock_gettime(CLOCK_REALTIME, &real);
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = real.tv_sec + WALL_S;
	its.it_value.tv_nsec = real.tv_nsec;
	wall_target = ns_of(&its.it_value);
	if (timerfd_settime(wall, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL))
		die("wall");
	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = 1000 * 1000;
	if (timerfd_settime(fired, 0, &its, NULL))
		die("fired");
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = 1;
	its.it_interval.tv_sec = 3;
	if (timerfd_settime(idle, 0, &its, NULL))
		die("idle");
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_sec = 3;
	if (timerfd_settime(idle, 0, &its, NULL)) /* disarmed; the interval stays */
		die("idle");

	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigs = signalfd(-1, &mask, SFD_NONBLOCK);
	if (sigs < 0)
		die("signalfd");
	raise(SIGUSR1);

	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create1(0);
	e_level = eventfd(1, EFD_NONBLOCK);
	e_once = eventfd(1, EFD_NONBLOCK);
	e_inner = eventfd(1, EFD_NONBLOCK);
	if (ep < 0 || inner < 0 || e_level < 0 || e_once < 0 || e_inner < 0 ||
	    pipe2(et, O_NONBLOCK) || pipe2(edge, O_NONBLOCK))
		die("epoll set-up");
	if (write(et[1], "x", 1) != 1)
		die("write");
	/* High, so that no later open takes the number. */
	closed = dup2(et[0], 100);
	if (watch(ep, e_level, EPOLLIN, 0x1111) || watch(ep, et[0], EPOLLIN | EPOLLET, 0x2222) ||
	    watch(ep, e_once, EPOLLIN | EPOLLONESHOT, 0x3333) ||
	    watch(ep, closed, EPOLLIN, 0x4444) || watch(inner, e_inner, EPOLLIN, 0x5555) ||
	    watch(ep, inner, EPOLLIN, 0x6666) || watch(ep, edge[0], EPOLLIN | EPOLLET, 0x7777))
		die("epoll_ctl");
	close(closed);
	/* Reports the edge of "et" and fires the one-shot; then "edge" gets an edge of its own. */
	ready_list(ep, list, sizeof(list));
	if (strcmp(list, "1111,2222,3333,4444,6666"))
		die(list);
	if (write(edge[1], "y", 1) != 1)
		die("write");

	nanosleep(&ms, NULL); /* "fired" fires */
	if (close(open(ready, O_CREAT | O_WRONLY, 0644)))
		die(ready);
	wait_for_file(go);

	result = fopen(out, "w");
	if (!result)
		die(out);

	/* eventfd: the semaphore counts down by one from 3, through either descriptor. */
	v = read_u64(sem, &err);
	check(!err && v == 1, "eventfd-semaphore-reads-one", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	read_u64(sem2, &err);
	read_u64(sem, &err);
	check(!err, "eventfd-semaphore-three", "third read failed: %s", strerror(err));
	read_u64(sem2, &err);
	check(err == EAGAIN, "eventfd-semaphore-then-empty", "fourth read: %s", strerror(err));
	check(fcntl(sem2, F_GETFL) & O_NONBLOCK, "eventfd-nonblock", "O_NONBLOCK lost");
	v = read_u64(big, &err);
	check(!err && v == BIG, "eventfd-64-bit-counter", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	check(fcntl(big, F_GETFD) == FD_CLOEXEC, "eventfd-cloexec", "FD_CLOEXEC lost");
	v = read_u64(shared, &err);
	check(!err && v == 7, "eventfd-shared-with-child", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	check(waitpid(child, &i, 0) == child && WIFEXITED(i) && !WEXITSTATUS(i),
	      "eventfd-child-wrote", "the child failed");

	/* timerfd: the periodic timer kept firing, and goes on. */
	v = read_u64(periodic, &err);
	check(!err && v >= 1, "timerfd-periodic-unread-ticks", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	v = read_u64(periodic, &err);
	check(!err && v >= 1, "timerfd-periodic-goes-on", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	timerfd_gettime(periodic, &now_its);
	check(ns_of(&now_its.it_interval) == 20 * 1000 * 1000, "timerfd-periodic-interval",
	      "interval %lld ns", (long long)ns_of(&now_its.it_interval));
	/* The hour's timer has about an hour left: its time counted again from the restart. */
	timerfd_gettime(hour, &now_its);
	check(now_its.it_value.tv_sec > HOUR_S - 900 && now_its.it_value.tv_sec < HOUR_S,
	      "timerfd-relative-time-left", "%lld s left",
	      (long long)now_its.it_value.tv_sec);
	check(fcntl(hour, F_GETFD) == FD_CLOEXEC, "timerfd-cloexec", "FD_CLOEXEC lost");
	/* The wall-clock timer still waits for the same moment of the wall clock. */
	timerfd_gettime(wall, &now_its);
	{
		int64_t left = ns_of(&now_its.it_value), want = wall_left_ns(wall_target);
		int64_t off = left > want ? left - want : want - left;

		check(off < 1000 * 1000 * 1000 && left > 0, "timerfd-absolute-wall-clock",
		      "%lld ns left, want %lld", (long long)left, (long long)want);
	}
	v = read_u64(fired, &err);
	check(!err && v == 1, "timerfd-fired-unread", "read %llu (%s)",
	      (unsigned long long)v, strerror(err));
	read_u64(fired, &err);
	check(err == EAGAIN, "timerfd-fired-once", "second read: %s", strerror(err));
	timerfd_gettime(idle, &now_its);
	check(!ns_of(&now_its.it_value) && now_its.it_interval.tv_sec == 3,
	      "timerfd-disarmed-keeps-interval", "value %lld ns, interval %lld s",
	      (long long)ns_of(&now_its.it_value), (long long)now_its.it_interval.tv_sec);
	{
		struct pollfd p = { .fd = idle, .events = POLLIN };

		check(poll(&p, 1, 0) == 0, "timerfd-disarmed-stays", "it fired");
	}

	/* signalfd: the pending SIGUSR1 is there to read, SIGUSR2 still in its mask. */
	err = read(sigs, &si, sizeof(si)) == sizeof(si) ? 0 : errno;
	check(!err && si.ssi_signo == SIGUSR1, "signalfd-reads-pending", "signo %u (%s)",
	      err ? 0 : si.ssi_signo, strerror(err));
	raise(SIGUSR2);
	err = read(sigs, &si, sizeof(si)) == sizeof(si) ? 0 : errno;
	check(!err && si.ssi_signo == SIGUSR2, "signalfd-mask-kept", "signo %u (%s)",
	      err ? 0 : si.ssi_signo, strerror(err));
	err = read(sigs, &si, sizeof(si)) < 0 ? errno : 0;
	check(err == EAGAIN, "signalfd-then-empty", "third read: %s", strerror(err));

	/* epoll: what waited to be reported is reported, and only that. */
	ready_list(ep, list, sizeof(list));
	check(!strcmp(list, "1111,4444,6666,7777"), "epoll-reports-what-waited",
	      "reported %s", list);
	ready_list(ep, list, sizeof(list));
	check(!strcmp(list, "1111,4444,6666"), "epoll-edge-reported-once", "then %s", list);
	check(watches_fd(ep, closed), "epoll-watch-under-closed-descriptor",
	      "no watch registered as fd %d", closed);
	check(epoll_ctl(ep, EPOLL_CTL_DEL, closed, NULL) && errno == EBADF,
	      "epoll-closed-descriptor-stays-closed", "EPOLL_CTL_DEL: %s", strerror(errno));
	{
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x3333 };

		err = epoll_ctl(ep, EPOLL_CTL_MOD, e_once, &ev) ? errno : 0;
		ready_list(ep, list, sizeof(list));
		check(!err && !strcmp(list, "1111,3333,4444,6666"), "epoll-one-shot-rearms",
		      "%s; reported %s", strerror(err), list);
	}
	ready_list(inner, list, sizeof(list));
	check(!strcmp(list, "5555"), "epoll-nested", "the inner epoll reported %s", list);
	err = write(et[1], "z", 1) == 1 ? 0 : errno;
	ready_list(ep, list, sizeof(list));
	check(!err && !strcmp(list, "1111,2222,4444,6666"), "epoll-new-edge-reported",
	      "reported %s", list);
	check(fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll-cloexec", "FD_CLOEXEC lost");

	fprintf(result, "done\n");
	fclose(result);
	return failures ? 1 : 0;
}
