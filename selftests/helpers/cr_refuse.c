// SPDX-License-Identifier: GPL-2.0
/*
 * A counter that also holds one piece of state cr refuses to checkpoint, for the refusal
 * selftests: cr_refuse KIND OUT, KIND one of socket, pipe, child, thread, shared, timer,
 * unlinked, gsbase, lease (a read lease on OUT.lease), timens (a time namespace made for
 * its children), epollelsewhere (an epoll watching a pipe end only a child forked after it
 * holds).
 *
 * With KIND poll, futex or sigsuspend, it instead sleeps for good in that system call, whose
 * interrupted state cr cannot recreate yet (a poll or futex restart block, a temporary mask).
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <asm/prctl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	unsigned long n = 0;
	pthread_t thread;
	char line[32];
	int fds[2], fd;

	if (argc != 3)
		return 2;
	if (!strcmp(argv[1], "poll")) {
		for (;;)
			poll(NULL, 0, 3600 * 1000);
	} else if (!strcmp(argv[1], "futex")) {
		struct timespec hour = { 3600, 0 };
		int word = 0;

		for (;;)
			syscall(SYS_futex, &word, FUTEX_WAIT, 0, &hour, NULL, 0);
	} else if (!strcmp(argv[1], "sigsuspend")) {
		sigset_t none;

		sigemptyset(&none);
		for (;;)
			sigsuspend(&none);
	} else if (!strcmp(argv[1], "timer")) {
		struct sigevent ev = { .sigev_notify = SIGEV_NONE };
		timer_t timer;

		if (timer_create(CLOCK_MONOTONIC, &ev, &timer))
			return 3;
	} else if (!strcmp(argv[1], "unlinked")) {
		char path[] = "/tmp/cr-unlinked-XXXXXX";

		if (mkstemp(path) < 0 || unlink(path))
			return 3;
	} else if (!strcmp(argv[1], "gsbase")) {
		static char area[64];

		if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)area))
			return 3;
	} else if (!strcmp(argv[1], "socket")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
			return 3;
	} else if (!strcmp(argv[1], "pipe")) {
		if (pipe(fds))
			return 3;
	} else if (!strcmp(argv[1], "child")) {
		if (fork() == 0)
			idle(NULL);
	} else if (!strcmp(argv[1], "thread")) {
		if (pthread_create(&thread, NULL, idle, NULL))
			return 3;
	} else if (!strcmp(argv[1], "shared")) {
		if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0) ==
		    MAP_FAILED)
			return 3;
	} else if (!strcmp(argv[1], "lease")) {
		char path[256];
		int lfd;

		snprintf(path, sizeof(path), "%s.lease", argv[2]);
		lfd = open(path, O_RDONLY | O_CREAT, 0644);
		if (lfd < 0 || fcntl(lfd, F_SETLEASE, F_RDLCK))
			return 3;
	} else if (!strcmp(argv[1], "epollelsewhere")) {
		/* An epoll watching a pipe end that only a child holds, forked after it. */
		struct epoll_event ev = { .events = EPOLLIN };
		int ep = epoll_create1(0);

		if (ep < 0 || pipe(fds) || epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev))
			return 3;
		if (fork() == 0)
			idle(NULL);
		close(fds[0]);
	} else if (!strcmp(argv[1], "timens")) {
		if (unshare(CLONE_NEWTIME))
			return 3;
	} else {
		return 2;
	}
	fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return 1;
	for (;;) {
		int len = snprintf(line, sizeof(line), "%lu\n", ++n);

		if (write(fd, line, len) != len)
			return 1;
		nanosleep(&ts, NULL);
	}
}
