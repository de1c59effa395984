// SPDX-License-Identifier: GPL-2.0
/*
 * A checkpoint target: counts, and every @period_ms appends the count to the file @out (opened
 * O_APPEND), sleeping in nanosleep between lines, so a checkpoint usually interrupts a sleep.
 * Usage: cr_counter OUT [PERIOD_MS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long period = argc > 2 ? atol(argv[2]) : 20;
	struct timespec ts = { period / 1000, (period % 1000) * 1000000 };
	unsigned long n = 0;
	char line[32];
	int fd;

	if (argc < 2)
		return 2;
	fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return 1;
	for (;;) {
		int len = snprintf(line, sizeof(line), "%lu\n", ++n);

		if (write(fd, line, len) != len)
			return 1;
		nanosleep(&ts, NULL);
	}
}
