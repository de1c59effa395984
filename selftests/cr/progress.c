// SPDX-License-Identifier: GPL-2.0
/*
 * CR_IOC_PROGRESS and CR_CHECKPOINT_STATS: while one thread checkpoints a 64 MiB process into a
 * pipe that another thread drains slowly, a third sees the bytes written grow towards an
 * estimate that covers the image; once done, the stats line on logfd gives the tasks, the pages
 * and the bytes the reader got.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cr.h>

#include "cr_ksft.h"

#define MIB 64
#define CG "/sys/fs/cgroup/cr-progress"

static int dev, image[2];
static volatile int checkpointing = 1;
static long long drained;

static void put(const char *path, const char *what)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, what, strlen(what)) != (ssize_t)strlen(what))
		cr_bail(path);
	close(fd);
}

static void frozen(int on)
{
	char events[256];
	int i;

	put(CG "/cgroup.freeze", on ? "1" : "0");
	for (i = 0; i < 1000; i++) {
		int fd = open(CG "/cgroup.events", O_RDONLY);
		ssize_t n = read(fd, events, sizeof(events) - 1);

		close(fd);
		events[n > 0 ? n : 0] = 0;
		if (strstr(events, on ? "frozen 1" : "frozen 0"))
			return;
		usleep(10000);
	}
	cr_bail("freezing");
}

static int nsamples;

/* Another thread of the checkpointing process asks how far it has come, every 5 ms. */
static void *watch(void *arg)
{
	struct cr_progress *s = arg;

	while (checkpointing && nsamples < 4096) {
		if (ioctl(dev, CR_IOC_PROGRESS, &s[nsamples]) == 0)
			nsamples++;
		usleep(5000);
	}
	return NULL;
}

/* Reads the image 64 KiB at a time with a pause between, so the checkpoint takes a while. */
static void *drain(void *arg)
{
	static char buf[65536];
	ssize_t n;

	(void)arg;
	while ((n = read(image[0], buf, sizeof(buf))) > 0) {
		drained += n;
		usleep(2000);
	}
	return NULL;
}

int main(void)
{
	static struct cr_progress samples[4096];
	struct cr_progress p;
	int logpipe[2], ready[2], i, grew = 0, below = 0, covered = 1;
	unsigned long long tasks, pages, bytes, ns;
	pthread_t reader;
	char log[1024];
	pid_t child;
	ssize_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_set_plan(6);
	dev = open(CR_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0 || pipe(image) || pipe(logpipe) || pipe(ready))
		cr_bail("setup");
	cr_expect_errno(ioctl(dev, CR_IOC_PROGRESS, &p), ENOENT, "progress with no checkpoint running");

	mkdir(CG, 0755);
	child = fork();
	if (child == 0) {
		char *mem;
		int null;

		/*
		 * Only the test may hold the image's pipe, or its reader never sees the end; and
		 * /dev/cr and the serial console are nothing a checkpoint takes.
		 */
		null = open("/dev/null", O_RDWR);
		close(image[0]);
		close(image[1]);
		close(logpipe[0]);
		close(logpipe[1]);
		close(dev);
		close(ready[0]);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
		mem = mmap(NULL, MIB << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			_exit(1);
		memset(mem, 0x5a, MIB << 20);
		/* The pipe closes on exit, so a child that dies also releases the test. */
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		for (;;)
			pause();
	}
	{
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", child);
		put(CG "/cgroup.procs", pid);
	}
	/*
	 * Freeze only once every page is written: under KASAN the memset alone can outlast any
	 * fixed delay, and a half-written process makes the page count wrong.
	 */
	close(ready[1]);
	/* The byte says the memory is written; the end of file, that the child let go of the pipe. */
	if (read(ready[0], log, 1) != 1 || read(ready[0], log, 1) != 0)
		cr_bail("the child did not get ready");
	close(ready[0]);
	frozen(1);
	if (pthread_create(&reader, NULL, drain, NULL))
		cr_bail("pthread_create");
	{
		struct cr_checkpoint_args a = { .pid = child, .fd = image[1], .logfd = logpipe[1],
						.flags = CR_CHECKPOINT_STATS };
		pthread_t watcher;

		if (pthread_create(&watcher, NULL, watch, samples))
			cr_bail("pthread_create");
		ksft_test_result(ioctl(dev, CR_IOC_CHECKPOINT, &a) == 0,
				 "checkpoint of %d MiB into a slow pipe succeeds\n", MIB);
		checkpointing = 0;
		pthread_join(watcher, NULL);
	}
	close(image[1]);
	pthread_join(reader, NULL);
	frozen(0);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	rmdir(CG);

	for (i = 0; i < nsamples; i++) {
		if (i && samples[i].done > samples[i - 1].done)
			grew++;
		if (samples[i].done && samples[i].done < samples[i].total)
			below++;
		if (samples[i].total < samples[i].done)
			covered = 0;
	}
	ksft_print_msg("%d samples, %d grew, %d between 0 and the estimate\n", nsamples, grew, below);
	ksft_test_result(grew >= 3 && below >= 3,
			 "the bytes written grow, below the estimate, while it runs\n");
	ksft_test_result(covered && nsamples &&
				 samples[nsamples - 1].total >= (unsigned long long)MIB << 20,
			 "the estimate covers the process's memory\n");
	n = read(logpipe[0], log, sizeof(log) - 1);
	log[n > 0 ? n : 0] = 0;
	ksft_print_msg("logfd: %s", log);
	ksft_test_result(sscanf(log, "cr: stats: tasks=%llu pages=%llu bytes=%llu ns=%llu", &tasks,
				&pages, &bytes, &ns) == 4,
			 "logfd has the stats line\n");
	ksft_test_result(tasks == 1 && pages >= (MIB << 20) / 4096 && bytes == (unsigned long long)drained
				 && ns > 0,
			 "one task, every page, and the bytes the reader got\n");
	ksft_finished();
}
