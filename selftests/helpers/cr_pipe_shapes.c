// SPDX-License-Identifier: GPL-2.0
/*
 * A process holding pipes of every shape cr saves beyond the plain one, for cr_pipe_shapes.sh.
 *
 *   cr_pipe_shapes OUT        sets them up, writes OUT.ready, waits (in nanosleep) for OUT.go,
 *                             then checks each one and writes a line per check to OUT.result
 *                             ("ok NAME" or "not ok NAME: what it saw"), and "done" last;
 *                             exits 0 if all held.
 *   cr_pipe_shapes merge OUT  holds the one shape cr refuses (a packet right after the last few
 *                             bytes of a page of plain data, which a refill would merge), writes
 *                             OUT.ready and sleeps until killed.
 *
 * What it sets up:
 *   - "big": a pipe grown to 1 MiB (F_SETPIPE_SZ), holding 300,000 bytes, more than a pipe of
 *     the default 64 KiB could;
 *   - "small": a pipe shrunk to one page, holding 1,000 bytes;
 *   - "packets": a packet-mode pipe (pipe2 O_DIRECT: its write end in packet mode), non-blocking,
 *     holding packets of 1, 100, 4096, 3000 and 2 bytes;
 *   - "mixed": a plain pipe holding 4000 plain bytes, a 200-byte packet (its write end put in
 *     packet mode with F_SETFL for that write only), then 50 plain bytes;
 *   - "fifo": a FIFO at OUT.fifo, grown to 128 KiB, open for reading (non-blocking) and, in
 *     packet mode, for writing, holding 25 pages of plain bytes (written before packet mode)
 *     then packets of 500 and 700 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "self_checks.h"

#define PAGE 4096
#define BIG_CAPACITY (1 << 20)
#define BIG_BYTES 300000
#define FIFO_CAPACITY (128 << 10)
#define FIFO_PLAIN (25 * PAGE)

static unsigned char buf[BIG_CAPACITY];

/* The byte at @i of stream @seed: every shape's bytes differ from every other's. */
static unsigned char byte_at(int seed, long i)
{
	return (unsigned char)(i * 7 + seed * 31 + i / 251);
}

static void fill(unsigned char *p, long len, int seed, long from)
{
	for (long i = 0; i < len; i++)
		p[i] = byte_at(seed, from + i);
}

static int holds(const unsigned char *p, long len, int seed, long from)
{
	for (long i = 0; i < len; i++)
		if (p[i] != byte_at(seed, from + i))
			return 0;
	return 1;
}

static void put(int fd, long len, int seed, long from)
{
	fill(buf, len, seed, from);
	if (write(fd, buf, len) != len)
		die("write");
}

static void set_packet_mode(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
		die("F_SETFL O_DIRECT");
}

static void pipe_of(int p[2], int flags)
{
	if (pipe2(p, flags) < 0)
		die("pipe2");
}

static void resize(int fd, int bytes)
{
	if (fcntl(fd, F_SETPIPE_SZ, bytes) != bytes)
		die("F_SETPIPE_SZ");
}

/*
 * Reads from @fd (non-blocking) until it is empty, into buf; each read's length goes into
 * @lens (up to @max of them). Returns the number of reads that returned data, or -1 if the
 * last read failed with other than EAGAIN.
 */
static int drain(int fd, long *lens, int max, long *total)
{
	int n = 0;
	long got;

	*total = 0;
	for (;;) {
		got = read(fd, buf + *total, sizeof(buf) - *total);
		if (got < 0)
			return errno == EAGAIN ? n : -1;
		if (got == 0)
			return n;
		if (n < max)
			lens[n] = got;
		n++;
		*total += got;
	}
}

/* "A,B,C": the first @n of @lens, for a check's message. */
static const char *list(const long *lens, int n)
{
	static char text[256];
	size_t at = 0;

	text[0] = 0;
	for (int i = 0; i < n && i < 16 && at < sizeof(text); i++)
		at += snprintf(text + at, sizeof(text) - at, "%s%ld", i ? "," : "", lens[i]);
	return text;
}

static int same(const long *a, const long *b, int n)
{
	for (int i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static _Noreturn void merge_shape(const char *out)
{
	char ready[4096];
	int p[2];

	pipe_of(p, 0);
	put(p[1], 4000, 9, 0);
	set_packet_mode(p[1], 1);
	put(p[1], 200, 9, 4000);
	/* Leaves 10 plain bytes at the end of their page: a refill would append the packet. */
	if (read(p[0], buf, 3990) != 3990)
		die("read");
	snprintf(ready, sizeof(ready), "%s.ready", out);
	close(open(ready, O_CREAT | O_WRONLY, 0644));
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	static const long packet_lens[] = { 1, 100, 4096, 3000, 2 };
	static const long mixed_lens[] = { 4200, 50 };
	static const long fifo_lens[] = { FIFO_PLAIN + 500, 700 };
	char ready[4096], go[4096], out[4096], fifo[4096];
	int big[2], small[2], packets[2], mixed[2], fifo_r, fifo_w, n, fl;
	long lens[32], total, from;

	if (argc == 3 && !strcmp(argv[1], "merge"))
		merge_shape(argv[2]);
	if (argc != 2) {
		fprintf(stderr, "usage: cr_pipe_shapes OUT | cr_pipe_shapes merge OUT\n");
		return 2;
	}
	snprintf(ready, sizeof(ready), "%s.ready", argv[1]);
	snprintf(go, sizeof(go), "%s.go", argv[1]);
	snprintf(out, sizeof(out), "%s.result", argv[1]);
	snprintf(fifo, sizeof(fifo), "%s.fifo", argv[1]);

	pipe_of(big, O_NONBLOCK);
	resize(big[1], BIG_CAPACITY);
	put(big[1], BIG_BYTES, 1, 0);

	pipe_of(small, O_NONBLOCK);
	resize(small[1], PAGE);
	put(small[1], 1000, 2, 0);

	pipe_of(packets, O_DIRECT | O_NONBLOCK);
	from = 0;
	for (unsigned int i = 0; i < sizeof(packet_lens) / sizeof(*packet_lens); i++) {
		put(packets[1], packet_lens[i], 3, from);
		from += packet_lens[i];
	}

	pipe_of(mixed, O_NONBLOCK);
	put(mixed[1], 4000, 4, 0);
	set_packet_mode(mixed[1], 1);
	put(mixed[1], 200, 4, 4000);
	set_packet_mode(mixed[1], 0);
	put(mixed[1], 50, 4, 4200);

	unlink(fifo);
	if (mkfifo(fifo, 0600) < 0)
		die("mkfifo");
	fifo_r = open(fifo, O_RDONLY | O_NONBLOCK);
	fifo_w = open(fifo, O_WRONLY | O_NONBLOCK);
	if (fifo_r < 0 || fifo_w < 0)
		die("open fifo");
	resize(fifo_w, FIFO_CAPACITY);
	put(fifo_w, FIFO_PLAIN, 5, 0);
	set_packet_mode(fifo_w, 1);
	put(fifo_w, 500, 5, FIFO_PLAIN);
	put(fifo_w, 700, 5, FIFO_PLAIN + 500);

	close(open(ready, O_CREAT | O_WRONLY, 0644));
	wait_for_file(go);
	result = fopen(out, "w");
	if (!result)
		die(out);

	check(fcntl(big[0], F_GETPIPE_SZ) == BIG_CAPACITY, "big-capacity", "F_GETPIPE_SZ %d",
	      fcntl(big[0], F_GETPIPE_SZ));
	n = drain(big[0], lens, 32, &total);
	check(n > 0 && total == BIG_BYTES && holds(buf, total, 1, 0), "big-bytes",
	      "%d reads, %ld bytes", n, total);

	check(fcntl(small[0], F_GETPIPE_SZ) == PAGE, "small-capacity", "F_GETPIPE_SZ %d",
	      fcntl(small[0], F_GETPIPE_SZ));
	n = drain(small[0], lens, 32, &total);
	check(n > 0 && total == 1000 && holds(buf, total, 2, 0), "small-bytes", "%d reads, %ld bytes",
	      n, total);
	/* One page, empty now: a page fits, and not a byte more. */
	fill(buf, PAGE + 1, 2, 0);
	check(write(small[1], buf, PAGE) == PAGE && write(small[1], buf, 1) < 0 && errno == EAGAIN,
	      "small-holds-one-page", "a second write went in");

	fl = fcntl(packets[1], F_GETFL);
	/* pipe2() puts the write end alone in packet mode. */
	check(fl >= 0 && (fl & O_DIRECT) && !(fcntl(packets[0], F_GETFL) & O_DIRECT),
	      "packets-mode-kept", "F_GETFL %#x and %#x", fl, fcntl(packets[0], F_GETFL));
	n = drain(packets[0], lens, 32, &total);
	check(n == 5 && same(lens, packet_lens, 5) && holds(buf, total, 3, 0), "packets-one-per-read",
	      "reads of %s", list(lens, n));
	put(packets[1], 10, 6, 0);
	put(packets[1], 20, 6, 10);
	n = drain(packets[0], lens, 32, &total);
	check(n == 2 && lens[0] == 10 && lens[1] == 20, "packets-new-writes-are-packets",
	      "reads of %s", list(lens, n));

	n = drain(mixed[0], lens, 32, &total);
	check(n == 2 && same(lens, mixed_lens, 2) && holds(buf, total, 4, 0),
	      "mixed-packet-ends-the-read", "reads of %s", list(lens, n));
	check(!(fcntl(mixed[1], F_GETFL) & O_DIRECT), "mixed-writer-plain",
	      "the write end is in packet mode");

	check(fcntl(fifo_r, F_GETPIPE_SZ) == FIFO_CAPACITY, "fifo-capacity", "F_GETPIPE_SZ %d",
	      fcntl(fifo_r, F_GETPIPE_SZ));
	check((fcntl(fifo_w, F_GETFL) & O_DIRECT) && !(fcntl(fifo_r, F_GETFL) & O_DIRECT),
	      "fifo-writer-packet-mode", "F_GETFL %#x and %#x", fcntl(fifo_w, F_GETFL),
	      fcntl(fifo_r, F_GETFL));
	n = drain(fifo_r, lens, 32, &total);
	check(n == 2 && same(lens, fifo_lens, 2) && holds(buf, total, 5, 0), "fifo-bytes-and-packets",
	      "reads of %s", list(lens, n));

	fprintf(result, "done\n");
	fclose(result);
	unlink(fifo);
	return failures ? 1 : 0;
}
