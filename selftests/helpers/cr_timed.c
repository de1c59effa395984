// SPDX-License-Identifier: GPL-2.0
/*
 * cr_timed OUT COMMAND [ARGS...]: runs COMMAND and writes to OUT its wall-clock time in
 * nanoseconds and its peak resident memory in KiB ("NS KIB"), then exits with its status (128+N
 * when killed by signal N). The bench's stopwatch: busybox date has no nanoseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long start;
	int status;
	FILE *out;
	pid_t pid;

	if (argc < 3)
		return 2;
	start = now_ns();
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) != pid)
		return 2;
	out = fopen(argv[1], "w");
	if (!out)
		return 2;
	fprintf(out, "%lld %ld\n", now_ns() - start, ru.ru_maxrss);
	fclose(out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
