// SPDX-License-Identifier: GPL-2.0
/*
 * A target that keeps writing its memory, for thawed checkpoints:
 *   cr_writer DIR MIB [PAGES [THREADS]]
 *
 * It fills MIB MiB of private anonymous memory, every 8-byte word of a page with the page's
 * generation, creates DIR/ready, then THREADS threads (default 1), each over its own share of
 * the pages, rewrite pages at pseudo-random, PAGES of them (default 16) every millisecond, each
 * with a new generation, and record it in a table. A thawed checkpoint copies this memory while
 * it changes.
 *
 * A mailbox of 64 pages, with a table and a pending slot of its own, is written from outside by
 * cr_poke through /proc/PID/mem (a write that sets no dirty bit in the page tables); its
 * addresses are in DIR/mailbox.
 *
 * Each SIGUSR2 reshapes 64 more pages between two writes: they move (mremap) to where a spare
 * reservation was, the spare takes their old place, a half of them is dropped (MADV_DONTNEED)
 * and a quarter freed lazily (MADV_FREE), and both are written again; a page of 4 MiB of
 * transparent huge pages (MADV_HUGEPAGE, otherwise never written) is rewritten; and a child is
 * forked, which sleeps. DIR/reshaped.N says it is done. The rounds of a thawed checkpoint must
 * notice pages that changed address, pages that went and came back, a huge page written, and
 * an address space that appeared.
 *
 * Each SIGWINCH rewrites, between two writes, the first N pages of the first writer's share,
 * N as DIR/sweep says, once each, and creates DIR/swept.K: with PAGES 0, an incremental image
 * taken then holds exactly those pages changed (and the few of the table).
 *
 * Each SIGUSR1 makes it check, with the writers held between two writes, that every page is
 * whole (all its words equal) and holds the generation its table says: a restart from a torn or
 * stale copy, or a copy that missed a write, fails the check. It writes DIR/result.N: "ok" or
 * "bad: ...". Any moment is a fine place to be frozen: a table entry is written after its page,
 * and the page being written (the pending one) may hold either generation.
 *
 * DIR/stall.N gives the longest gap, in microseconds, between two bursts of the first writer
 * since the previous round (a freeze shows up there).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rounds.h"

#define PAGE 4096
#define WORDS (PAGE / 8)
#define MAILBOX_PAGES 64
#define HUGE_PAGES 1024
#define THREADS_MAX 8

/* Pages, their generations, and the page being written with its new generation (or -1). */
struct share {
	volatile uint64_t *mem;
	volatile uint64_t *table;
	long pages;
	volatile int64_t pending[2];
	uint64_t seed, gen;
};

static struct share shares[THREADS_MAX + 3];
static volatile sig_atomic_t reshapes_requested, sweeps_requested;
static int reshape_no, sweep_no;
static int writers;
static long burst;
static pthread_rwlock_t hold = PTHREAD_RWLOCK_INITIALIZER;
static volatile uint64_t stall;
/* Set by a round: the first writer's next gap starts once the round let it go. */
static volatile int stall_restart;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fill(volatile uint64_t *page, uint64_t gen)
{
	for (int w = 0; w < WORDS; w++)
		page[w] = gen;
}

static void rewrite(struct share *s, long p)
{
	s->pending[1] = (int64_t)++s->gen;
	s->pending[0] = p;
	fill(s->mem + p * WORDS, s->gen);
	s->table[p] = s->gen;
	s->pending[0] = -1;
}

static int check(struct share *s, const char *what, char *why, size_t len)
{
	for (long p = 0; p < s->pages; p++) {
		volatile uint64_t *page = s->mem + p * WORDS;
		uint64_t first = page[0];

		for (int w = 1; w < WORDS; w++) {
			if (page[w] != first) {
				snprintf(why, len, "%s page %ld is torn: word 0 is %llu, word %d is %llu",
					 what, p, (unsigned long long)first, w,
					 (unsigned long long)page[w]);
				return 0;
			}
		}
		if (first != s->table[p] &&
		    !(p == s->pending[0] && first == (uint64_t)s->pending[1])) {
			snprintf(why, len, "%s page %ld holds generation %llu, the table says %llu",
				 what, p, (unsigned long long)first, (unsigned long long)s->table[p]);
			return 0;
		}
	}
	return 1;
}

static void *writer(void *arg)
{
	struct timespec tick = { 0, 1000 * 1000 };
	struct share *s = arg;
	uint64_t last = now_us();

	for (;;) {
		pthread_rwlock_rdlock(&hold);
		if (s == &shares[0] && stall_restart) {
			/* The round held the writers: that wait is the round's, not a stall. */
			stall_restart = 0;
			last = now_us();
		}
		for (long i = 0; i < burst; i++) {
			s->seed ^= s->seed << 13;
			s->seed ^= s->seed >> 7;
			s->seed ^= s->seed << 17;
			rewrite(s, (long)(s->seed % (uint64_t)s->pages));
		}
		pthread_rwlock_unlock(&hold);
		nanosleep(&tick, NULL);
		if (s == &shares[0]) {
			uint64_t t = now_us();

			if (t - last > stall)
				stall = t - last;
			last = t;
		}
	}
	return NULL;
}

/* @huge: in 2 MiB-aligned memory that asks for transparent huge pages. */
static void setup(struct share *s, long pages, uint64_t first_gen, int huge)
{
	size_t align = huge ? 2 << 20 : PAGE;
	char *room = mmap(NULL, pages * PAGE + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (room == MAP_FAILED)
		exit(3);
	s->pages = pages;
	s->mem = (uint64_t *)(((uintptr_t)room + align - 1) & ~(uintptr_t)(align - 1));
	if (huge && madvise((void *)s->mem, pages * PAGE, MADV_HUGEPAGE))
		exit(3);
	s->table = mmap(NULL, pages * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			0);
	if (s->table == MAP_FAILED)
		exit(3);
	s->gen = first_gen;
	s->seed = 88172645463325252ull + first_gen;
	s->pending[0] = -1;
	for (long p = 0; p < pages; p++) {
		fill(s->mem + p * WORDS, ++s->gen);
		s->table[p] = s->gen;
	}
}

static void on_usr2(int sig)
{
	(void)sig;
	reshapes_requested++;
}

static void on_winch(int sig)
{
	(void)sig;
	sweeps_requested++;
}

/* Rewrites the first pages of @s, as many as DIR/sweep says. */
static void sweep(struct share *s)
{
	char path[512];
	long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sweep", dir);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%ld", &n) != 1)
		exit(3);
	fclose(f);
	for (long p = 0; p < n && p < s->pages; p++)
		rewrite(s, p);
}

/*
 * Moves @s's pages to @spare and leaves a spare in their place, drops the first half and frees
 * the next quarter lazily, and rewrites both.
 */
static void reshape(struct share *s, void **spare)
{
	void *old = (void *)s->mem;
	size_t len = s->pages * PAGE;

	s->mem = mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, *spare);
	if (s->mem == MAP_FAILED ||
	    mmap(old, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != old)
		exit(3);
	*spare = old;
	if (madvise((void *)s->mem, len / 2, MADV_DONTNEED) ||
	    madvise((void *)(s->mem + s->pages / 2 * WORDS), len / 4, MADV_FREE))
		exit(3);
	for (long p = 0; p < s->pages * 3 / 4; p++)
		rewrite(s, p);
}

int main(int argc, char **argv)
{
	struct timespec tick = { 0, 2 * 1000 * 1000 };
	struct share *mailbox = &shares[THREADS_MAX], *moving = &shares[THREADS_MAX + 1];
	struct share *huge = &shares[THREADS_MAX + 2];
	void *spare;
	pthread_t threads[THREADS_MAX];
	long pages;
	char why[200];

	if (argc < 3) {
		fprintf(stderr, "usage: cr_writer DIR MIB [PAGES [THREADS]]\n");
		return 2;
	}
	dir = argv[1];
	pages = atol(argv[2]) * (1 << 20) / PAGE;
	burst = argc > 3 ? atol(argv[3]) : 16;
	writers = argc > 4 ? atoi(argv[4]) : 1;
	if (writers < 1 || writers > THREADS_MAX || pages < writers)
		return 2;
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	signal(SIGWINCH, on_winch);
	for (int t = 0; t < writers; t++)
		setup(&shares[t], pages / writers, (uint64_t)t << 40, 0);
	setup(mailbox, MAILBOX_PAGES, (uint64_t)THREADS_MAX << 40, 0);
	setup(moving, MAILBOX_PAGES, (uint64_t)(THREADS_MAX + 1) << 40, 0);
	setup(huge, HUGE_PAGES, (uint64_t)(THREADS_MAX + 2) << 40, 1);
	spare = mmap(NULL, MAILBOX_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (spare == MAP_FAILED)
		return 3;
	put_file("mailbox", "%lx %lx %lx %d\n", (unsigned long)mailbox->mem,
		 (unsigned long)mailbox->table, (unsigned long)mailbox->pending, MAILBOX_PAGES);
	for (int t = 0; t < writers; t++)
		if (pthread_create(&threads[t], NULL, writer, &shares[t]))
			return 3;
	put_file("ready", "%ld\n", pages);
	for (;;) {
		char name[32];
		uint64_t gap;
		int good = 1;

		nanosleep(&tick, NULL);
		if (reshapes_requested > reshape_no) {
			reshape_no++;
			pthread_rwlock_wrlock(&hold);
			reshape(moving, &spare);
			rewrite(huge, HUGE_PAGES / 2);
			pthread_rwlock_unlock(&hold);
			if (fork() == 0) {
				for (;;)
					pause();
			}
			snprintf(name, sizeof(name), "reshaped.%d", reshape_no);
			put_file(name, "ok\n");
		}
		if (sweeps_requested > sweep_no) {
			sweep_no++;
			pthread_rwlock_wrlock(&hold);
			sweep(&shares[0]);
			pthread_rwlock_unlock(&hold);
			snprintf(name, sizeof(name), "swept.%d", sweep_no);
			put_file(name, "ok\n");
		}
		if (rounds_requested <= round_no)
			continue;
		round_no++;
		pthread_rwlock_wrlock(&hold);
		for (int t = 0; t < writers && good; t++)
			good = check(&shares[t], "writer", why, sizeof(why));
		if (good)
			good = check(mailbox, "mailbox", why, sizeof(why));
		if (good)
			good = check(moving, "moved", why, sizeof(why));
		if (good)
			good = check(huge, "huge", why, sizeof(why));
		/* The gap since the last round; the next one starts once the writers go on. */
		gap = stall;
		stall = 0;
		stall_restart = 1;
		pthread_rwlock_unlock(&hold);
		snprintf(name, sizeof(name), "stall.%d", round_no);
		put_file(name, "%llu\n", (unsigned long long)gap);
		snprintf(name, sizeof(name), "result.%d", round_no);
		if (good)
			put_file(name, "ok\n");
		else
			put_file(name, "bad: %s\n", why);
	}
}
