// SPDX-License-Identifier: GPL-2.0
/*
 * cr_memcpy_bw MIB: the machine's memory copy bandwidth in MB/s, the best of five copies of MIB
 * MiB (after one to fault both buffers in). The bench's yardstick for the memory path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 256) << 20;
	char *a = malloc(len), *b = malloc(len);
	double best = 0;
	int i;

	if (!a || !b)
		return 2;
	memset(a, 1, len);
	memcpy(b, a, len);
	for (i = 0; i < 5; i++) {
		double t;

		a[i] = (char)i;
		t = now();
		memcpy(b, a, len);
		t = now() - t;
		if (b[i] != (char)i)
			return 3;
		if (len / t > best)
			best = len / t;
	}
	printf("%.0f\n", best / 1e6);
	return 0;
}
