// SPDX-License-Identifier: GPL-2.0
/*
 * Checkpoint targets for the selftests: cr_target MODE DIR [MIB]
 *
 * The target sets up the state MODE names, creates DIR/ready, then waits. Each SIGUSR1 (whose
 * handler was installed before any checkpoint) makes it verify that state once more and write
 * DIR/result.N, N = 1, 2, ...: "ok", or "bad: what differed". A test checkpoints and restarts
 * the target between rounds.
 *
 * Modes:
 *   memory   MIB (default 256) MiB of patterned private anonymous memory
 *   files    a file offset shared by two descriptors, an O_APPEND file, a directory, and
 *            memory devices
 *   signals  a blocked pending signal with its siginfo, a sigaltstack, a handler with SA_SIGINFO
 *   vector   xmm/ymm registers, checked in a loop the checkpoint interrupts
 *   heap     brk and mmap keep working
 *   pause    blocked in pause(), which the checkpoint interrupts and restart resumes
 *   ttyread  blocked in read() on the terminal at fd 0, which restart re-attaches
 *   misc     robust list, tid address, personality, umask, comm, pdeath signal, an rlimit,
 *            ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF (whose SIGPROF it counts)
 *   creds    distinct real, effective and saved uids and gids, groups, no capabilities
 *   hints    areas with madvise() hints (huge pages on and off, no fork copy, no dump, wipe on
 *            fork, mergeable) keep them, and their contents, as /proc/self/smaps shows
 *
 * And the shapes `make bench` measures (N is the third argument):
 *   sparse   a MAP_NORESERVE reservation of N GiB with 64 pages touched (N = 0: the same 64
 *            pages in a mapping of their own)
 *   vmas     N one-page mappings, each written with its number
 *   fds      N descriptors of /dev/null
 *   threads  N threads, each counting on its own
 *   procs    N child processes, each pausing
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rounds.h"

static void result(const char *fmt, ...)
{
	char name[32], text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "result.%d", round_no);
	put_file(name, "%s\n", text);
}

/* Waits for the next SIGUSR1 in a plain sleep loop (a checkpoint lands in nanosleep). */
static void wait_round(void)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	while (rounds_requested <= round_no)
		nanosleep(&ts, NULL);
	round_no++;
}

/* ---- memory ---- */

/* Size of the memory mode's area: MIB from the command line. */
static unsigned long mem_size = 256UL << 20;

static uint64_t pattern(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ULL ^ (i >> 7);
}

static void mode_memory(void)
{
	uint64_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);
	uint64_t i, words = mem_size / 8;

	if (mem == MAP_FAILED)
		exit(4);
	for (i = 0; i < words; i++)
		mem[i] = pattern(i);
	put_file("ready", "%p\n", (void *)mem);
	for (;;) {
		wait_round();
		for (i = 0; i < words; i++)
			if (mem[i] != pattern(i))
				break;
		if (i == words)
			result("ok");
		else
			result("bad: word %lu is %#lx, not %#lx", (unsigned long)i,
			       (unsigned long)mem[i], (unsigned long)pattern(i));
	}
}

/* ---- files ---- */

static void mode_files(void)
{
	char path[256], buf[64];
	int rw, app, d, zero, urandom;
	off_t pos;

	snprintf(path, sizeof(path), "%s/data", dir);
	rw = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (rw < 0 || write(rw, "0123456789", 10) != 10 || lseek(rw, 4, SEEK_SET) != 4)
		exit(4);
	/* Fd 10 shares rw's open file, and so its offset. */
	if (dup2(rw, 10) != 10)
		exit(4);
	snprintf(path, sizeof(path), "%s/log", dir);
	app = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (app < 0 || write(app, "start\n", 6) != 6)
		exit(4);
	d = open(dir, O_RDONLY | O_DIRECTORY);
	zero = open("/dev/zero", O_RDONLY);
	urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (d < 0 || zero < 0 || urandom < 0)
		exit(4);
	put_file("ready", "fds %d %d %d\n", rw, app, d);
	for (;;) {
		wait_round();
		/* Each round reads one byte at the shared offset and appends a line. */
		pos = lseek(rw, 0, SEEK_CUR);
		if (pos != 3 + round_no) {
			result("bad: offset %ld, expected %d", (long)pos, 3 + round_no);
			continue;
		}
		if (read(rw, buf, 1) != 1 || buf[0] != '0' + 3 + round_no) {
			result("bad: read %c at offset %ld", buf[0], (long)pos);
			continue;
		}
		if (lseek(10, 0, SEEK_CUR) != pos + 1) {
			result("bad: the dup'd descriptor no longer shares the offset");
			continue;
		}
		if (!(fcntl(app, F_GETFL) & O_APPEND)) {
			result("bad: O_APPEND lost");
			continue;
		}
		snprintf(buf, sizeof(buf), "round %d\n", round_no);
		if (write(app, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
			result("bad: append failed");
			continue;
		}
		if (faccessat(d, "data", R_OK, 0)) {
			result("bad: directory descriptor lost");
			continue;
		}
		if (fcntl(d, F_GETFD) & FD_CLOEXEC || !(fcntl(urandom, F_GETFD) & FD_CLOEXEC)) {
			result("bad: close-on-exec flags changed");
			continue;
		}
		memset(buf, 1, sizeof(buf));
		if (read(zero, buf, 16) != 16 || memchr(buf, 1, 16) || read(urandom, buf, 16) != 16) {
			result("bad: /dev/zero or /dev/urandom lost");
			continue;
		}
		result("ok");
	}
}

/* ---- signals ---- */

static volatile sig_atomic_t usr2_seen, usr2_value;

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	usr2_seen++;
	usr2_value = si->si_value.sival_int;
}

static void mode_signals(void)
{
	static char altstack[64 * 1024];
	struct sigaction sa = { .sa_sigaction = on_usr2, .sa_flags = SA_SIGINFO };
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) }, now;
	union sigval v = { .sival_int = 4242 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	if (sigaltstack(&ss, NULL))
		exit(4);
	/* Pending and blocked through the checkpoint, with a payload only siginfo carries. */
	sigqueue(getpid(), SIGUSR2, v);
	put_file("ready", "ok\n");
	for (;;) {
		sigset_t pending;

		wait_round();
		sigpending(&pending);
		if (round_no == 1 && !sigismember(&pending, SIGUSR2)) {
			result("bad: SIGUSR2 is no longer pending");
			continue;
		}
		if (sigaltstack(NULL, &now) || now.ss_sp != altstack || now.ss_size != sizeof(altstack)) {
			result("bad: sigaltstack lost");
			continue;
		}
		if (round_no == 1) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			if (usr2_seen != 1 || usr2_value != 4242) {
				result("bad: SIGUSR2 seen %d times, value %d", usr2_seen, usr2_value);
				continue;
			}
		} else if (usr2_seen != 1) {
			result("bad: SIGUSR2 seen %d times", usr2_seen);
			continue;
		}
		result("ok");
	}
}

/* ---- vector registers ---- */

static void mode_vector(void)
{
	static uint8_t want[32] __attribute__((aligned(32)));
	int i, avx = __builtin_cpu_supports("avx");

	for (i = 0; i < 32; i++)
		want[i] = 0xa0 + i;
	put_file("ready", "%s\n", avx ? "avx" : "sse");
	for (;;) {
		int seen = round_no;
		uint64_t bad = 0;

		/*
		 * The registers hold the pattern for the whole spin, which ends at the next SIGUSR1;
		 * the checkpoint lands inside it.
		 */
		if (avx)
			__asm__ volatile("vmovdqa %[w], %%ymm7\n"
					 "vmovdqa %[w], %%ymm15\n"
					 "1:\n"
					 "vpcmpeqb %[w], %%ymm7, %%ymm0\n"
					 "vpmovmskb %%ymm0, %%eax\n"
					 "cmp $-1, %%eax\n"
					 "jne 2f\n"
					 "vpcmpeqb %[w], %%ymm15, %%ymm0\n"
					 "vpmovmskb %%ymm0, %%eax\n"
					 "cmp $-1, %%eax\n"
					 "jne 2f\n"
					 "cmpl %[seen], %[req]\n"
					 "je 1b\n"
					 "jmp 3f\n"
					 "2: incq %[bad]\n"
					 "3:\n"
					 : [bad] "+r"(bad)
					 : [w] "m"(want), [req] "m"(rounds_requested), [seen] "r"(seen)
					 : "rax", "xmm0", "xmm7", "xmm15", "cc", "memory");
		else
			__asm__ volatile("movdqa %[w], %%xmm7\n"
					 "movdqa %[w], %%xmm15\n"
					 "1:\n"
					 "movdqa %%xmm7, %%xmm0\n"
					 "pcmpeqb %[w], %%xmm0\n"
					 "pmovmskb %%xmm0, %%eax\n"
					 "cmp $0xffff, %%eax\n"
					 "jne 2f\n"
					 "movdqa %%xmm15, %%xmm0\n"
					 "pcmpeqb %[w], %%xmm0\n"
					 "pmovmskb %%xmm0, %%eax\n"
					 "cmp $0xffff, %%eax\n"
					 "jne 2f\n"
					 "cmpl %[seen], %[req]\n"
					 "je 1b\n"
					 "jmp 3f\n"
					 "2: incq %[bad]\n"
					 "3:\n"
					 : [bad] "+r"(bad)
					 : [w] "m"(want), [req] "m"(rounds_requested), [seen] "r"(seen)
					 : "rax", "xmm0", "xmm7", "xmm15", "cc", "memory");
		round_no++;
		if (bad)
			result("bad: a vector register changed under the loop");
		else
			result("ok");
	}
}

/* ---- heap ---- */

static void mode_heap(void)
{
	char *before = sbrk(0);

	if (sbrk(64 * 1024) == (void *)-1)
		exit(4);
	memset(before, 0x5a, 64 * 1024);
	put_file("ready", "%p\n", (void *)before);
	for (;;) {
		char *top, *m;

		wait_round();
		top = sbrk(0);
		if (before[64 * 1024 - 1] != 0x5a) {
			result("bad: heap contents lost");
			continue;
		}
		if (sbrk(1 << 20) == (void *)-1) {
			result("bad: brk cannot grow");
			continue;
		}
		memset(top, 1, 1 << 20);
		m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			result("bad: mmap failed");
			continue;
		}
		memset(m, 2, 1 << 20);
		result("ok");
	}
}

/* ---- restartable system calls ---- */

static void mode_pause(void)
{
	put_file("ready", "ok\n");
	for (;;) {
		int ret = pause();

		if (rounds_requested > round_no) {
			round_no++;
			result(ret == -1 && errno == EINTR ? "ok" : "bad: pause returned %d", ret);
		}
	}
}

static void mode_ttyread(void)
{
	char c;

	if (!isatty(0))
		exit(4);
	put_file("ready", "%s\n", ttyname(0));
	for (;;) {
		/* No input ever comes: the only way out is the SIGUSR1 handler (no SA_RESTART). */
		ssize_t n = read(0, &c, 1);

		if (rounds_requested > round_no) {
			round_no++;
			if (n == -1 && errno == EINTR && isatty(0))
				result("ok");
			else
				result("bad: read returned %zd, isatty %d", n, isatty(0));
		}
	}
}

/* ---- task scalars ---- */

static int tid_word;
static volatile sig_atomic_t profs;

static void on_prof(int sig)
{
	(void)sig;
	profs++;
}

/*
 * The CPU-time timers after a restart: ITIMER_VIRTUAL with no more than its 500 s left, and
 * ITIMER_PROF, armed for 300 ms and run down to 100 ms before the first checkpoint, with no
 * more than 150 ms left (a restart that started it afresh would leave 300), reloading every
 * 20 ms, which fires while the process burns CPU. NULL, or what went wrong.
 */
static const char *cpu_itimers_hold(void)
{
	static char why[128];
	struct itimerval virt, prof;
	struct timespec start, now;
	sig_atomic_t before = profs;

	if (getitimer(ITIMER_VIRTUAL, &virt) || getitimer(ITIMER_PROF, &prof))
		return "getitimer failed";
	if (virt.it_value.tv_sec < 400 || virt.it_value.tv_sec > 500 || virt.it_interval.tv_sec ||
	    virt.it_interval.tv_usec) {
		snprintf(why, sizeof(why), "ITIMER_VIRTUAL %ld.%06ld/%ld", virt.it_value.tv_sec,
			 virt.it_value.tv_usec, virt.it_interval.tv_sec);
		return why;
	}
	if ((!prof.it_value.tv_sec && !prof.it_value.tv_usec) || prof.it_value.tv_sec ||
	    prof.it_value.tv_usec > 150000 || prof.it_interval.tv_sec ||
	    prof.it_interval.tv_usec != 20000) {
		snprintf(why, sizeof(why), "ITIMER_PROF %ld.%06ld/%ld.%06ld", prof.it_value.tv_sec,
			 prof.it_value.tv_usec, prof.it_interval.tv_sec, prof.it_interval.tv_usec);
		return why;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while (profs == before && now.tv_sec - start.tv_sec < 20);
	return profs == before ? "no SIGPROF in 20 s of burning CPU" : NULL;
}

static void mode_misc(void)
{
	struct itimerval it = { .it_value = { 3600, 0 }, .it_interval = { 7200, 0 } }, now;
	struct itimerval virt = { .it_value = { 500, 0 } };
	struct itimerval prof = { .it_value = { 0, 300000 }, .it_interval = { 0, 20000 } }, left;
	struct sigaction sa = { .sa_handler = on_prof, .sa_flags = SA_RESTART };
	const char *why;
	struct robust_list_head *head0, *head;
	struct rlimit rl = { 123, 456 }, rl_now;
	size_t len0, len;
	int *tid_addr;
	char comm[16];

	if (syscall(SYS_get_robust_list, 0, &head0, &len0) || !head0)
		exit(4);
	syscall(SYS_set_tid_address, &tid_word);
	personality(PER_LINUX | ADDR_NO_RANDOMIZE);
	umask(027);
	prctl(PR_SET_NAME, "cr-misc");
	/* SIGWINCH is ignored by default: a parent that dies in a test does no harm. */
	prctl(PR_SET_PDEATHSIG, SIGWINCH);
	if (setrlimit(RLIMIT_NOFILE, &rl) || setitimer(ITIMER_REAL, &it, NULL) ||
	    sigaction(SIGPROF, &sa, NULL) || setitimer(ITIMER_VIRTUAL, &virt, NULL) ||
	    setitimer(ITIMER_PROF, &prof, NULL))
		exit(4);
	/* Down to 100 ms left, so that a restart that forgot the CPU time spent shows. */
	do
		if (getitimer(ITIMER_PROF, &left))
			exit(4);
	while (left.it_value.tv_usec > 100000 && !profs);
	/* SIGALRM would kill us only after an hour: it must neither fire early nor vanish. */
	put_file("ready", "ok\n");
	for (;;) {
		wait_round();
		if (syscall(SYS_get_robust_list, 0, &head, &len) || head != head0 || len != len0) {
			result("bad: robust list %p/%zu, was %p/%zu", head, len, head0, len0);
			continue;
		}
		if (prctl(PR_GET_TID_ADDRESS, &tid_addr) || tid_addr != &tid_word) {
			result("bad: tid address %p, was %p", tid_addr, &tid_word);
			continue;
		}
		if (personality(0xffffffff) != (PER_LINUX | ADDR_NO_RANDOMIZE)) {
			result("bad: personality %#x", personality(0xffffffff));
			continue;
		}
		if (umask(027) != 027) {
			result("bad: umask lost");
			continue;
		}
		{
			int pdeath = 0;

			if (prctl(PR_GET_PDEATHSIG, &pdeath) || pdeath != SIGWINCH) {
				result("bad: pdeath signal %d", pdeath);
				continue;
			}
		}
		if (prctl(PR_GET_NAME, comm) || strcmp(comm, "cr-misc")) {
			result("bad: comm %s", comm);
			continue;
		}
		if (getrlimit(RLIMIT_NOFILE, &rl_now) || rl_now.rlim_cur != 123 || rl_now.rlim_max != 456) {
			result("bad: RLIMIT_NOFILE %lu/%lu", rl_now.rlim_cur, rl_now.rlim_max);
			continue;
		}
		if (getitimer(ITIMER_REAL, &now) || now.it_value.tv_sec < 3000 ||
		    now.it_value.tv_sec > 3600 || now.it_interval.tv_sec != 7200) {
			result("bad: ITIMER_REAL %ld/%ld", now.it_value.tv_sec, now.it_interval.tv_sec);
			continue;
		}
		why = cpu_itimers_hold();
		if (why) {
			result("bad: %s", why);
			continue;
		}
		result("ok");
	}
}

/* ---- credentials ---- */

static void mode_creds(void)
{
	gid_t groups[3] = { 2001, 2002, 2003 }, now[8];
	uid_t r, e, su;
	gid_t rg, eg, sg;
	int n;

	/* Everything differs, so a restore that mixed up any two ids is caught. */
	if (setgroups(3, groups) || setresgid(1001, 1002, 1003) || setresuid(1004, 1005, 1006))
		exit(4);
	put_file("ready", "ok\n");
	for (;;) {
		wait_round();
		getresuid(&r, &e, &su);
		getresgid(&rg, &eg, &sg);
		n = getgroups(8, now);
		if (r != 1004 || e != 1005 || su != 1006 || rg != 1001 || eg != 1002 || sg != 1003) {
			result("bad: uids %d %d %d gids %d %d %d", r, e, su, rg, eg, sg);
			continue;
		}
		if (n != 3 || now[0] != 2001 || now[1] != 2002 || now[2] != 2003) {
			result("bad: %d groups", n);
			continue;
		}
		/* Without capabilities, setuid to root must fail as it did before. */
		if (setuid(0) == 0) {
			result("bad: the restored task can become root");
			continue;
		}
		result("ok");
	}
}

/* ---- madvise hints ---- */

static const struct {
	int advice;
	const char *flag; /* as smaps' VmFlags spells it */
} hints[] = {
	{ MADV_HUGEPAGE, "hg" },   { MADV_NOHUGEPAGE, "nh" }, { MADV_DONTFORK, "dc" },
	{ MADV_DONTDUMP, "dd" },   { MADV_WIPEONFORK, "wf" }, { MADV_MERGEABLE, "mg" },
};
#define NHINTS (sizeof(hints) / sizeof(hints[0]))

/* Whether smaps gives the area at @addr the VmFlags @flag. */
static int has_vmflag(void *addr, const char *flag)
{
	char line[512], want[32];
	int in = 0, found = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && line[0] != 'V' && strchr(line, ' ') > strchr(line, '-'))
			in = !strncmp(line, want, strlen(want));
		if (in && !strncmp(line, "VmFlags:", 8)) {
			char *tok;

			for (tok = strtok(line + 8, " \n"); tok; tok = strtok(NULL, " \n"))
				if (!strcmp(tok, flag))
					found = 1;
			break;
		}
	}
	fclose(f);
	return found;
}

static void mode_hints(void)
{
	char *area[NHINTS];
	size_t i;

	/* Two pages apart, so that no two areas merge. */
	char *base = mmap(NULL, 4 * 2097152 * NHINTS, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base == MAP_FAILED)
		exit(4);
	for (i = 0; i < NHINTS; i++) {
		area[i] = mmap(base + 4 * 2097152 * i, 2097152, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (area[i] == MAP_FAILED || madvise(area[i], 2097152, hints[i].advice))
			exit(4);
		memset(area[i], 'A' + (int)i, 2097152);
	}
	put_file("ready", "%p\n", base);
	for (;;) {
		const char *bad = NULL;

		wait_round();
		for (i = 0; i < NHINTS && !bad; i++) {
			if (!has_vmflag(area[i], hints[i].flag))
				bad = hints[i].flag;
			else if (area[i][0] != 'A' + (int)i || area[i][2097151] != 'A' + (int)i)
				bad = "contents";
		}
		if (bad)
			result("bad: %s", bad);
		else
			result("ok");
	}
}

/* ---- the bench's shapes ---- */

/* The count the bench's modes take: the third argument. */
static unsigned long count_arg;

static void check_round(const char *what, long bad)
{
	if (bad < 0)
		result("ok");
	else
		result("bad: %s %ld", what, bad);
}

#define SPARSE_PAGES 64

static void mode_sparse(void)
{
	unsigned long len = count_arg ? count_arg << 30 : SPARSE_PAGES * 4096UL;
	unsigned long stride = len / SPARSE_PAGES;
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	long i, bad;

	if (base == MAP_FAILED)
		exit(4);
	for (i = 0; i < SPARSE_PAGES; i++)
		memset(base + i * stride, 'a' + i % 26, 4096);
	put_file("ready", "%p\n", base);
	for (;;) {
		wait_round();
		for (bad = -1, i = 0; i < SPARSE_PAGES && bad < 0; i++)
			if (base[i * stride] != 'a' + i % 26 || base[i * stride + 4095] != 'a' + i % 26)
				bad = i;
		check_round("page", bad);
	}
}

static void mode_vmas(void)
{
	/* Every other page of one reservation, so that no two mappings merge. */
	char *base = mmap(NULL, 2 * 4096 * count_arg, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	unsigned long i;
	long bad;

	if (base == MAP_FAILED)
		exit(4);
	for (i = 0; i < count_arg; i++) {
		unsigned long *p = mmap(base + 2 * 4096 * i, 4096, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED)
			exit(4);
		*p = i;
	}
	put_file("ready", "%p\n", base);
	for (;;) {
		wait_round();
		for (bad = -1, i = 0; i < count_arg && bad < 0; i++)
			if (*(unsigned long *)(base + 2 * 4096 * i) != i)
				bad = i;
		check_round("mapping", bad);
	}
}

static void mode_fds(void)
{
	struct rlimit rl = { count_arg + 256, count_arg + 256 };
	int *fds = calloc(count_arg, sizeof(*fds));
	unsigned long i;
	struct stat st;
	long bad;

	if (!fds || setrlimit(RLIMIT_NOFILE, &rl))
		exit(4);
	for (i = 0; i < count_arg; i++) {
		fds[i] = open("/dev/null", O_RDWR);
		if (fds[i] < 0)
			exit(4);
	}
	put_file("ready", "%lu\n", count_arg);
	for (;;) {
		wait_round();
		for (bad = -1, i = 0; i < count_arg && bad < 0; i++)
			if (fstat(fds[i], &st) || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
				bad = fds[i];
		check_round("descriptor", bad);
	}
}

static volatile unsigned long *thread_counts;

static void *count_on(void *arg)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	unsigned long me = (unsigned long)arg;

	for (;;) {
		thread_counts[me]++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void mode_threads(void)
{
	struct timespec settle = { 0, 200 * 1000 * 1000 };
	unsigned long i, *before;
	long bad;

	thread_counts = calloc(count_arg, sizeof(*thread_counts));
	before = calloc(count_arg, sizeof(*before));
	if (!thread_counts || !before)
		exit(4);
	for (i = 0; i < count_arg; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, count_on, (void *)i))
			exit(4);
	}
	put_file("ready", "%lu\n", count_arg);
	for (;;) {
		wait_round();
		for (i = 0; i < count_arg; i++)
			before[i] = thread_counts[i];
		nanosleep(&settle, NULL);
		for (bad = -1, i = 0; i < count_arg && bad < 0; i++)
			if (thread_counts[i] == before[i])
				bad = i;
		check_round("thread stopped counting:", bad);
	}
}

static void mode_procs(void)
{
	pid_t *kids = calloc(count_arg, sizeof(*kids));
	unsigned long i;
	long bad;

	if (!kids)
		exit(4);
	for (i = 0; i < count_arg; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			exit(4);
		if (kids[i] == 0)
			for (;;)
				pause();
	}
	put_file("ready", "%lu\n", count_arg);
	for (;;) {
		int status;

		wait_round();
		for (bad = -1, i = 0; i < count_arg && bad < 0; i++)
			if (kill(kids[i], 0) || waitpid(kids[i], &status, WNOHANG) != 0)
				bad = kids[i];
		check_round("child gone:", bad);
	}
}

static const struct {
	const char *name;
	void (*run)(void);
} modes[] = {
	{ "memory", mode_memory }, { "files", mode_files },	{ "signals", mode_signals },
	{ "vector", mode_vector }, { "heap", mode_heap },	{ "pause", mode_pause },
	{ "ttyread", mode_ttyread }, { "misc", mode_misc }, { "creds", mode_creds },
	{ "hints", mode_hints },	 { "sparse", mode_sparse }, { "vmas", mode_vmas },	{ "fds", mode_fds },
	{ "threads", mode_threads }, { "procs", mode_procs },
};

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	size_t i;

	if (argc != 3 && argc != 4)
		return 2;
	dir = argv[2];
	if (argc == 4) {
		count_arg = strtoul(argv[3], NULL, 10);
		mem_size = count_arg << 20;
	}
	sigaction(SIGUSR1, &sa, NULL);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			modes[i].run();
	return 2;
}
