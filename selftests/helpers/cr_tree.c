// SPDX-License-Identifier: GPL-2.0
/*
 * Process-tree checkpoint targets for the selftests: cr_tree MODE DIR [ARG]
 *
 * Like cr_target: the root process sets up the state MODE names, creates DIR/ready, then waits.
 * Each SIGUSR1 makes it verify that state once more and write DIR/result.N, N = 1, 2, ...:
 * "ok", or "bad: what differed". A test checkpoints and restarts the tree between rounds.
 *
 * Modes:
 *   forks N    a session of N children in several process groups, some with a child of
 *              their own (the tree itself is compared from /proc by the test)
 *   threads N  N threads hammering a counter under a mutex, each with its own count
 *   zombie     two zombies (one with exit signal SIGUSR2) and a child with a parent-death
 *              signal; DIR/reap makes the next round reap the zombies
 *   pipe       60 KiB unread in a pipe whose write end a child holds
 *   sharedfd   a file descriptor shared (one struct file) by parent and child
 *   shm        MAP_SHARED anonymous memory and a memfd mapping, written by a child
 *   leak       the root's parent, outside the checkpoint, holds the write end of its pipe;
 *              ARG is the cgroup the root moves to, DIR/pid gets its pid
 *   container  run from outside: creates a pid, UTS and IPC namespace whose init, in the
 *              cgroup ARG, sets a host name and has a child whose session leader exited;
 *              DIR/pid gets the init's pid
 *   threadfork children forked by a second thread (which stays), by a third (which exits), and
 *              a grandchild forked by a thread of a child; the first child writes into a pipe
 *              the root reads; with ARG "pdeath", the first child also sets a parent-death
 *              signal, which restart could not keep
 *   reopen     both ends of a pipe and a memfd opened twice each through /proc/self/fd, with
 *              different flags and offsets on the two open files
 *   blocked    a thread blocked in read() on a pipe of the shared descriptor table
 *   unlinked   a file of the tmpfs ARG (mode 0645, set times, an offset) and a sealed memfd,
 *              both unlinked and open; "unlinked-ramfs" does the same on a ramfs ARG
 *   pdeath     a child with a parent-death signal, no_new_privs, a dumpable process; the test
 *              kills the root and the child writes DIR/fired
 *   orphangroup a zombie whose process group's leader was reaped (restart cannot recreate it)
 *
 * With CR_AS_USER=UID in the environment, the target drops to that uid and gid (no groups, no
 * capabilities) before it sets anything up.
 */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/magic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rounds.h"

static int file_exists(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Reads the number in DIR/NAME, or -1. */
static int read_number(const char *name)
{
	char path[512], text[32] = "";
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	return n > 0 ? atoi(text) : -1;
}

/* Waits (up to 30 s) for DIR/NAME to appear. */
static int wait_file(const char *name)
{
	for (int i = 0; i < 3000; i++) {
		if (file_exists(name))
			return 1;
		usleep(10000);
	}
	return 0;
}

/*
 * Runs CHECK on every SIGUSR1 and writes its verdict to result.N. It waits in a plain sleep
 * loop: a checkpoint lands in nanosleep, whose restart cr recreates.
 */
static void serve(const char *(*check)(void))
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	put_file("ready", "ok\n");
	for (;;) {
		char name[32];
		const char *bad;

		while (rounds_requested <= round_no)
			nanosleep(&ts, NULL);
		round_no++;
		bad = check();
		snprintf(name, sizeof(name), "result.%d", round_no);
		if (bad)
			put_file(name, "bad: %s\n", bad);
		else
			put_file(name, "ok\n");
	}
}

static void install_usr1(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigaction(SIGUSR1, &sa, NULL);
}

static void sleep_forever(void)
{
	for (;;)
		pause();
}

/* --- forks ------------------------------------------------------------------------------ */

static const char *check_nothing(void)
{
	return NULL;
}

static void mode_forks(int n)
{
	pid_t leader = 0;

	setsid();
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			exit(4);
		if (pid == 0) {
			signal(SIGUSR1, SIG_DFL);
			if (i % 10 == 0)
				setpgid(0, 0);
			else if (i % 10 == 1 && leader)
				setpgid(0, leader);
			if (i % 7 == 3 && fork() == 0)
				sleep_forever();
			sleep_forever();
		}
		if (i % 10 == 0)
			leader = pid;
	}
	serve(check_nothing);
}

/* --- threads ---------------------------------------------------------------------------- */

#define MAX_THREADS 64
static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long total, mine[MAX_THREADS];
static int nthreads;

static void *hammer(void *arg)
{
	long i = (long)arg;

	for (;;) {
		pthread_mutex_lock(&counter_lock);
		total++;
		mine[i]++;
		pthread_mutex_unlock(&counter_lock);
	}
	return NULL;
}

static const char *check_threads(void)
{
	static unsigned long before[MAX_THREADS];
	unsigned long sum = 0;

	pthread_mutex_lock(&counter_lock);
	for (int i = 0; i < nthreads; i++) {
		sum += mine[i];
		before[i] = mine[i];
	}
	if (sum != total) {
		pthread_mutex_unlock(&counter_lock);
		return "the per-thread counts do not add up to the shared counter";
	}
	pthread_mutex_unlock(&counter_lock);
	/* Every thread must still be running. */
	for (int tries = 0; tries < 3000; tries++) {
		int stalled = 0;

		usleep(10000);
		pthread_mutex_lock(&counter_lock);
		for (int i = 0; i < nthreads; i++)
			stalled += mine[i] == before[i];
		pthread_mutex_unlock(&counter_lock);
		if (!stalled)
			return NULL;
	}
	return "a thread stopped counting";
}

static void mode_threads(int n)
{
	sigset_t usr1;

	nthreads = n < MAX_THREADS ? n : MAX_THREADS;
	/* Only the main thread takes SIGUSR1. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (long i = 0; i < nthreads; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, hammer, (void *)i))
			exit(4);
	}
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	serve(check_threads);
}

/* --- zombie ----------------------------------------------------------------------------- */

static pid_t zombie, zombie_usr2, orphan_watch;
static int reaped;

static char state_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] ? p[2] : 0;
}

static void report_pdeath(int sig)
{
	int value = -1;
	char name[32];

	(void)sig;
	prctl(PR_GET_PDEATHSIG, &value);
	snprintf(name, sizeof(name), "pdeath.%d", getpid());
	put_file(name, "%d\n", value);
}

static const char *check_zombie(void)
{
	static char bad[128];
	char name[32];
	int status;

	if (reaped)
		return "the zombies were reaped already";
	if (state_of(zombie) != 'Z' || state_of(zombie_usr2) != 'Z')
		return "a zombie is no longer a zombie";
	snprintf(name, sizeof(name), "pdeath.%d", orphan_watch);
	kill(orphan_watch, SIGUSR2);
	if (!wait_file(name))
		return "the child did not report its parent-death signal";
	if (read_number(name) != SIGHUP)
		return "the child's parent-death signal is lost";
	{
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		unlink(path);
	}
	if (!file_exists("reap"))
		return NULL;
	reaped = 1;
	if (waitpid(zombie, &status, WNOHANG) != zombie || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 42) {
		snprintf(bad, sizeof(bad), "reaping the zombie gave status %#x", status);
		return bad;
	}
	if (waitpid(zombie_usr2, &status, __WALL | WNOHANG) != zombie_usr2 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 7)
		return "reaping the SIGUSR2 zombie failed";
	return NULL;
}

static void mode_zombie(void)
{
	struct sigaction sa = { .sa_handler = report_pdeath };

	/* First, so that the zombies come last in the image: the last section is a zombie's. */
	orphan_watch = fork();
	if (orphan_watch == 0) {
		prctl(PR_SET_PDEATHSIG, SIGHUP);
		sigaction(SIGUSR2, &sa, NULL);
		sleep_forever();
	}
	zombie = fork();
	if (zombie == 0)
		_exit(42);
	/* A child whose exit signal is SIGUSR2, not SIGCHLD (ignored here, as it must be). */
	signal(SIGUSR2, SIG_IGN);
	zombie_usr2 = syscall(SYS_clone, SIGUSR2, 0, 0, 0, 0);
	if (zombie_usr2 == 0)
		_exit(7);
	while (state_of(zombie) != 'Z' || state_of(zombie_usr2) != 'Z')
		usleep(1000);
	serve(check_zombie);
}

/* --- pipe ------------------------------------------------------------------------------- */

#define PIPE_DATA (60 << 10)
static int pipe_r, pipe_w;
static pid_t writer;

static unsigned char pattern_at(long i, int round)
{
	return (unsigned char)(i * 7 + round);
}

static void writer_fill(int sig)
{
	static int round;
	static unsigned char buf[PIPE_DATA];

	(void)sig;
	round++;
	for (long i = 0; i < PIPE_DATA; i++)
		buf[i] = pattern_at(i, round);
	if (write(pipe_w, buf, PIPE_DATA) != PIPE_DATA)
		_exit(5);
}

static const char *check_pipe(void)
{
	static unsigned char buf[PIPE_DATA + 1];
	long got = 0;
	int avail = 0;

	while (got < PIPE_DATA) {
		ssize_t n = read(pipe_r, buf + got, PIPE_DATA + 1 - got);

		if (n <= 0)
			return "the pipe holds less than 60 KiB";
		got += n;
	}
	if (read(pipe_r, buf, 1) != -1 || errno != EAGAIN)
		return "the pipe holds more than 60 KiB, or its writer is gone";
	for (long i = 0; i < PIPE_DATA; i++)
		if (buf[i] != pattern_at(i, round_no))
			return "the pipe's data differs";
	/* Refill it for the next cycle. */
	kill(writer, SIGUSR2);
	for (int tries = 0; tries < 3000 && avail < PIPE_DATA; tries++) {
		usleep(10000);
		ioctl(pipe_r, FIONREAD, &avail);
	}
	return avail == PIPE_DATA ? NULL : "the writer did not refill the pipe";
}

static void mode_pipe(void)
{
	int fds[2];
	int avail = 0;

	if (pipe(fds))
		exit(4);
	pipe_r = fds[0];
	pipe_w = fds[1];
	writer = fork();
	if (writer == 0) {
		struct sigaction sa = { .sa_handler = writer_fill };

		close(pipe_r);
		sigaction(SIGUSR2, &sa, NULL);
		writer_fill(0);
		sleep_forever();
	}
	close(pipe_w);
	fcntl(pipe_r, F_SETFL, O_NONBLOCK);
	while (avail < PIPE_DATA) {
		usleep(1000);
		ioctl(pipe_r, FIONREAD, &avail);
	}
	serve(check_pipe);
}

/* --- sharedfd --------------------------------------------------------------------------- */

static int shared_fd;
static pid_t reader;

static void reader_step(int sig)
{
	char buf[10], name[32];
	static int step;

	(void)sig;
	if (read(shared_fd, buf, sizeof(buf)) != sizeof(buf))
		_exit(5);
	snprintf(name, sizeof(name), "stepped.%d", ++step);
	put_file(name, "ok\n");
}

static const char *check_sharedfd(void)
{
	char name[32];
	off_t before = lseek(shared_fd, 0, SEEK_CUR);

	kill(reader, SIGUSR2);
	snprintf(name, sizeof(name), "stepped.%d", round_no);
	if (!wait_file(name))
		return "the child did not read";
	if (lseek(shared_fd, 0, SEEK_CUR) != before + 10)
		return "the child's read did not move the parent's offset";
	return NULL;
}

static void mode_sharedfd(void)
{
	char path[512], block[4096];

	snprintf(path, sizeof(path), "%s/data", dir);
	shared_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	memset(block, 'x', sizeof(block));
	if (shared_fd < 0 || write(shared_fd, block, sizeof(block)) != sizeof(block))
		exit(4);
	lseek(shared_fd, 100, SEEK_SET);
	reader = fork();
	if (reader == 0) {
		struct sigaction sa = { .sa_handler = reader_step };

		sigaction(SIGUSR2, &sa, NULL);
		sleep_forever();
	}
	serve(check_sharedfd);
}

/* --- shm -------------------------------------------------------------------------------- */

#define SHM_SIZE (1 << 20)
static volatile unsigned char *shared_anon, *shared_memfd;
static pid_t shm_child;

static void child_writes(int sig)
{
	static int round;
	char name[32];

	(void)sig;
	round++;
	shared_anon[SHM_SIZE - 1] = (unsigned char)round;
	shared_memfd[12345] = (unsigned char)round;
	snprintf(name, sizeof(name), "written.%d", round);
	put_file(name, "ok\n");
}

static const char *check_shm(void)
{
	char name[32];

	kill(shm_child, SIGUSR2);
	snprintf(name, sizeof(name), "written.%d", round_no);
	if (!wait_file(name))
		return "the child did not write";
	if (shared_anon[SHM_SIZE - 1] != (unsigned char)round_no)
		return "the child's write to MAP_SHARED memory is not seen by the parent";
	if (shared_memfd[12345] != (unsigned char)round_no)
		return "the child's write to the memfd is not seen by the parent";
	for (long i = 0; i < SHM_SIZE - 1; i += 4096)
		if (shared_anon[i] != (unsigned char)(i >> 12))
			return "the shared memory's pattern differs";
	if (shared_memfd[0] != 'm')
		return "the memfd's content differs";
	return NULL;
}

static void mode_shm(void)
{
	int mfd = memfd_create("cr-test", 0);

	shared_anon = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
			   0);
	if (mfd < 0 || ftruncate(mfd, 1 << 16) || shared_anon == MAP_FAILED)
		exit(4);
	shared_memfd = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (shared_memfd == MAP_FAILED)
		exit(4);
	for (long i = 0; i < SHM_SIZE - 1; i += 4096)
		shared_anon[i] = (unsigned char)(i >> 12);
	shared_memfd[0] = 'm';
	shm_child = fork();
	if (shm_child == 0) {
		struct sigaction sa = { .sa_handler = child_writes };

		sigaction(SIGUSR2, &sa, NULL);
		sleep_forever();
	}
	serve(check_shm);
}

/* --- leak ------------------------------------------------------------------------------- */

static void mode_leak(const char *cgroup)
{
	int fds[2];
	pid_t root;

	if (pipe(fds))
		exit(4);
	root = fork();
	if (root == 0) {
		char path[512];
		int fd;

		close(fds[1]);
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "0", 1) != 1)
			exit(4);
		close(fd);
		serve(check_nothing);
	}
	close(fds[0]);
	put_file("pid", "%d\n", root);
	sleep_forever();
}

/* --- container -------------------------------------------------------------------------- */

static pid_t session_child;

static const char *check_container(void)
{
	static char bad[160];
	struct utsname u;
	char name[32];

	uname(&u);
	if (strcmp(u.nodename, "cr-box"))
		return "the container's host name is lost";
	if (getpid() != 1)
		return "the init is not pid 1";
	snprintf(name, sizeof(name), "ids.%d", round_no);
	kill(session_child, SIGUSR2);
	if (!wait_file(name))
		return "the orphan did not report";
	{
		char path[512], text[128] = "";
		int fd, n, pid = 0, ppid = 0, sid = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		fd = open(path, O_RDONLY);
		n = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
		if (fd >= 0)
			close(fd);
		if (n <= 0 || sscanf(text, "%d %d %d", &pid, &ppid, &sid) != 3)
			return "the orphan's report is unreadable";
		if (pid != session_child || ppid != 1 || sid != 3) {
			snprintf(bad, sizeof(bad), "the orphan is pid %d ppid %d sid %d", pid, ppid,
				 sid);
			return bad;
		}
	}
	return NULL;
}

static void orphan_reports(int sig)
{
	static int round;
	char name[32];

	(void)sig;
	snprintf(name, sizeof(name), "ids.%d", ++round);
	put_file(name, "%d %d %d\n", getpid(), getppid(), getsid(0));
}

static int container_init(void *cgroup)
{
	char path[512];
	int fd;
	pid_t leader;
	int fds[2];

	snprintf(path, sizeof(path), "%s/cgroup.procs", (char *)cgroup);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1)
		exit(4);
	close(fd);
	sethostname("cr-box", 6);
	setsid();
	install_usr1();
	if (pipe(fds))
		exit(4);
	/* Pids 2 and 3 are burnt so that the session leader below is pid 3. */
	for (int i = 0; i < 1; i++)
		if (fork() == 0)
			_exit(0);
	while (wait(NULL) > 0)
		;
	leader = fork();
	if (leader == 0) {
		/* Pid 3: leads a session, leaves a child in it, and exits. */
		setsid();
		session_child = fork();
		if (session_child == 0) {
			struct sigaction sa = { .sa_handler = orphan_reports };

			sigaction(SIGUSR2, &sa, NULL);
			close(fds[0]);
			close(fds[1]);
			sleep_forever();
		}
		if (write(fds[1], &session_child, sizeof(session_child)) != sizeof(session_child))
			_exit(4);
		_exit(0);
	}
	if (read(fds[0], &session_child, sizeof(session_child)) != sizeof(session_child))
		exit(4);
	waitpid(leader, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	serve(check_container);
	return 0;
}

static void mode_container(const char *cgroup)
{
	static char stack[256 << 10];
	pid_t init = clone(container_init, stack + sizeof(stack),
			   CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, (void *)cgroup);

	if (init < 0)
		exit(4);
	put_file("pid", "%d\n", init);
	waitpid(init, NULL, 0);
}

/* --- children that answer ---------------------------------------------------------------- */

/* Where an answering child also writes one byte per answer, if anywhere. */
static int answer_pipe = -1;

/* A child that writes DIR/alive.PID.N for its N-th SIGUSR2: it is there and it runs. */
static void answer_usr2(int sig)
{
	static int n;
	char name[64];

	(void)sig;
	if (answer_pipe >= 0 && write(answer_pipe, "a", 1) != 1)
		_exit(5);
	snprintf(name, sizeof(name), "alive.%d.%d", getpid(), ++n);
	put_file(name, "%d %d\n", getpid(), getppid());
}

static void answering_child(void)
{
	struct sigaction sa = { .sa_handler = answer_usr2 };

	signal(SIGUSR1, SIG_DFL);
	sigaction(SIGUSR2, &sa, NULL);
	sleep_forever();
}

/* Asks child @pid to answer for the @n-th time; true when it did, with parent @ppid. */
static int answers(pid_t pid, int n, pid_t ppid)
{
	char name[64];

	kill(pid, SIGUSR2);
	snprintf(name, sizeof(name), "alive.%d.%d", pid, n);
	if (!wait_file(name))
		return 0;
	{
		char path[512], text[64] = "";
		int fd, got_pid = 0, got_ppid = 0;
		ssize_t len;

		snprintf(path, sizeof(path), "%s/%s", dir, name);
		fd = open(path, O_RDONLY);
		len = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
		if (fd >= 0)
			close(fd);
		return len > 0 && sscanf(text, "%d %d", &got_pid, &got_ppid) == 2 && got_pid == pid &&
		       got_ppid == ppid;
	}
}

/* --- threadfork ------------------------------------------------------------------------- */

static pid_t by_thread, by_gone_thread, grandchild, middle;
static int tf_pipe[2];
static volatile pid_t forked;
static const char *tf_arg;

static void *fork_and_stay(void *arg)
{
	(void)arg;
	pid_t pid = fork();

	if (pid == 0) {
		close(tf_pipe[0]);
		answer_pipe = tf_pipe[1];
		if (tf_arg && !strcmp(tf_arg, "pdeath"))
			prctl(PR_SET_PDEATHSIG, SIGHUP);
		answering_child();
	}
	forked = pid;
	sleep_forever();
	return NULL;
}

static void *fork_and_exit(void *arg)
{
	pid_t pid = fork();

	(void)arg;
	if (pid == 0)
		answering_child();
	forked = pid;
	return NULL;
}

static pid_t fork_from_thread(void *(*fn)(void *), int join)
{
	pthread_t t;

	forked = 0;
	if (pthread_create(&t, NULL, fn, NULL))
		exit(4);
	while (!forked)
		usleep(1000);
	if (join)
		pthread_join(t, NULL);
	return forked;
}

static const char *check_threadfork(void)
{
	char byte;

	if (!answers(by_thread, round_no, getpid()))
		return "the child forked by a thread does not answer, or has another parent";
	if (!answers(by_gone_thread, round_no, getpid()))
		return "the child of an exited thread does not answer, or has another parent";
	if (!answers(grandchild, round_no, middle))
		return "the grandchild forked by a child's thread does not answer";
	/* The first child's answer also went down the pipe, one byte per answer. */
	if (read(tf_pipe[0], &byte, 1) != 1 || byte != 'a')
		return "the pipe from the thread's child is broken";
	return NULL;
}

static void mode_threadfork(const char *arg)
{
	tf_arg = arg;
	if (pipe(tf_pipe))
		exit(4);
	by_thread = fork_from_thread(fork_and_stay, 0);
	close(tf_pipe[1]);
	by_gone_thread = fork_from_thread(fork_and_exit, 1);
	middle = fork();
	if (middle == 0) {
		/* A child whose own thread forks the grandchild, then waits. */
		close(tf_pipe[0]);
		close(tf_pipe[1]);
		tf_pipe[1] = -1;
		signal(SIGUSR1, SIG_DFL);
		grandchild = fork_from_thread(fork_and_stay, 0);
		put_file("grandchild", "%d\n", grandchild);
		sleep_forever();
	}
	if (!wait_file("grandchild"))
		exit(4);
	grandchild = read_number("grandchild");
	serve(check_threadfork);
}

/* --- reopen ----------------------------------------------------------------------------- */

static int ro_r, ro_r2, ro_w, ro_w2, ro_m, ro_m2;

static int reopen_fd(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags);
}

static const char *check_reopen(void)
{
	char buf[4];

	if (fcntl(ro_r, F_GETFL) & O_NONBLOCK || !(fcntl(ro_r2, F_GETFL) & O_NONBLOCK))
		return "the two open files of the read end share their flags";
	if (!(fcntl(ro_w, F_GETFL) & O_NONBLOCK) || fcntl(ro_w2, F_GETFL) & O_NONBLOCK)
		return "the two open files of the write end share their flags";
	if (read(ro_r2, buf, 1) != -1 || errno != EAGAIN)
		return "the second read end is not non-blocking over an empty pipe";
	if (write(ro_w, "x", 1) != 1 || write(ro_w2, "y", 1) != 1)
		return "writing through both write ends failed";
	if (read(ro_r, buf, 2) != 2 || memcmp(buf, "xy", 2))
		return "the pipe does not carry what both ends wrote";
	/* Still two open files: a flag set on one does not show on the other. */
	fcntl(ro_r, F_SETFL, O_NONBLOCK);
	if (fcntl(ro_r2, F_GETFL) & O_APPEND || !(fcntl(ro_r, F_GETFL) & O_NONBLOCK))
		return "setting a flag failed";
	fcntl(ro_r2, F_SETFL, 0);
	if (!(fcntl(ro_r, F_GETFL) & O_NONBLOCK))
		return "clearing a flag on one open file cleared it on the other";
	fcntl(ro_r, F_SETFL, 0);
	fcntl(ro_r2, F_SETFL, O_NONBLOCK);
	if (lseek(ro_m, 0, SEEK_CUR) != 10 || lseek(ro_m2, 0, SEEK_CUR) != 20)
		return "the memfd's two open files lost their own offsets";
	if ((fcntl(ro_m2, F_GETFL) & O_ACCMODE) != O_RDONLY)
		return "the memfd's read-only open file is no longer read-only";
	if (read(ro_m2, buf, 4) != 4 || memcmp(buf, "20..", 4) || lseek(ro_m2, 20, SEEK_SET) != 20)
		return "the memfd's second open file reads wrong";
	return NULL;
}

static void mode_reopen(void)
{
	int p[2];
	char data[100];

	if (pipe(p))
		exit(4);
	ro_r = p[0];
	ro_w = p[1];
	ro_r2 = reopen_fd(ro_r, O_RDONLY);
	ro_w2 = reopen_fd(ro_w, O_WRONLY);
	ro_m = memfd_create("cr-reopen", 0);
	for (int i = 0; i < 100; i += 10)
		snprintf(data + i, 11, "%02d........", i);
	if (ro_r2 < 0 || ro_w2 < 0 || ro_m < 0 || write(ro_m, data, 100) != 100)
		exit(4);
	ro_m2 = reopen_fd(ro_m, O_RDONLY);
	if (ro_m2 < 0)
		exit(4);
	lseek(ro_m, 10, SEEK_SET);
	lseek(ro_m2, 20, SEEK_SET);
	/* Flags changed on one open file of each end, after the second open. */
	fcntl(ro_r2, F_SETFL, O_NONBLOCK);
	fcntl(ro_w, F_SETFL, O_NONBLOCK);
	serve(check_reopen);
}

/* --- blocked ---------------------------------------------------------------------------- */

static int bl_pipe[2];
static volatile int bl_got;

static void *blocked_reader(void *arg)
{
	char c;

	(void)arg;
	for (;;) {
		if (read(bl_pipe[0], &c, 1) == 1)
			bl_got++;
	}
	return NULL;
}

static const char *check_blocked(void)
{
	int before = bl_got;

	if (write(bl_pipe[1], "z", 1) != 1)
		return "writing to the pipe failed";
	for (int i = 0; i < 3000 && bl_got == before; i++)
		usleep(10000);
	return bl_got == before + 1 ? NULL : "the blocked reader did not get the byte";
}

static void mode_blocked(void)
{
	pthread_t t;
	sigset_t usr1;

	if (pipe(bl_pipe))
		exit(4);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (pthread_create(&t, NULL, blocked_reader, NULL))
		exit(4);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	serve(check_blocked);
}

/* --- unlinked --------------------------------------------------------------------------- */

#define UL_SIZE 10000
static int ul_fd, ul_memfd;
static struct stat ul_stat, ul_dir_stat, ul_mem_stat;
static const struct timespec ul_times[2] = { { 1000000000, 123456789 }, { 1100000000, 500 } };

static unsigned char ul_byte(long i)
{
	return (unsigned char)(i * 13 + 5);
}

static const char *check_unlinked(void)
{
	static char bad[200];
	unsigned char buf[UL_SIZE];
	struct stat st;
	struct statfs fs;
	char link[128], path[64];
	ssize_t n;

	if (fstat(ul_fd, &st) || fstatfs(ul_fd, &fs))
		return "fstat of the unlinked file failed";
	if (st.st_mode != ul_stat.st_mode || st.st_uid != ul_stat.st_uid ||
	    st.st_gid != ul_stat.st_gid || st.st_size != UL_SIZE || st.st_nlink != 0) {
		snprintf(bad, sizeof(bad),
			 "the unlinked file is mode %o uid %d gid %d size %ld links %ld, not %o %d %d %d 0",
			 st.st_mode, st.st_uid, st.st_gid, (long)st.st_size, (long)st.st_nlink,
			 ul_stat.st_mode, ul_stat.st_uid, ul_stat.st_gid, UL_SIZE);
		return bad;
	}
	if (st.st_mtim.tv_sec != ul_times[1].tv_sec || st.st_mtim.tv_nsec != ul_times[1].tv_nsec)
		return "the unlinked file's modification time is lost";
	if (fs.f_type != TMPFS_MAGIC || st.st_dev != ul_dir_stat.st_dev)
		return "the unlinked file is no longer on its tmpfs";
	if ((fcntl(ul_fd, F_GETFL) & (O_ACCMODE | O_APPEND)) != (O_RDWR | O_APPEND))
		return "the unlinked file's open flags are lost";
	if (lseek(ul_fd, 0, SEEK_CUR) != 1234)
		return "the unlinked file's offset is lost";
	if (pread(ul_fd, buf, UL_SIZE, 0) != UL_SIZE)
		return "reading the unlinked file failed";
	for (long i = 0; i < UL_SIZE; i++)
		if (buf[i] != ul_byte(i))
			return "the unlinked file's content differs";
	/* The memfd: still a memfd, by name, with its mode, size, content and seals. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ul_memfd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	if (strncmp(link, "/memfd:cr-memfd", 15))
		return "the memfd is not a memfd called cr-memfd";
	if (fstat(ul_memfd, &st) || st.st_mode != ul_mem_stat.st_mode || st.st_size != 5000 ||
	    st.st_uid != ul_mem_stat.st_uid)
		return "the memfd's mode, owner or size changed";
	if (fcntl(ul_memfd, F_GET_SEALS) != F_SEAL_GROW)
		return "the memfd's seals changed";
	if (ftruncate(ul_memfd, 6000) == 0)
		return "the memfd grew despite F_SEAL_GROW";
	if (pread(ul_memfd, buf, 5000, 0) != 5000 || buf[4999] != 0x5a || buf[0] != 0x5a)
		return "the memfd's content differs";
	return NULL;
}

static void mode_unlinked(const char *tmpfs, int want_tmpfs)
{
	char path[512];
	unsigned char buf[UL_SIZE];

	snprintf(path, sizeof(path), "%s/cr-unlinked.%d", tmpfs, getpid());
	ul_fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	for (long i = 0; i < UL_SIZE; i++)
		buf[i] = ul_byte(i);
	if (ul_fd < 0 || write(ul_fd, buf, UL_SIZE) != UL_SIZE || fchmod(ul_fd, 0645) ||
	    futimens(ul_fd, ul_times) || lseek(ul_fd, 1234, SEEK_SET) != 1234 ||
	    fcntl(ul_fd, F_SETFL, O_APPEND) || unlink(path) || stat(tmpfs, &ul_dir_stat) ||
	    fstat(ul_fd, &ul_stat))
		exit(4);
	ul_memfd = memfd_create("cr-memfd", MFD_ALLOW_SEALING);
	memset(buf, 0x5a, 5000);
	if (ul_memfd < 0 || write(ul_memfd, buf, 5000) != 5000 || fchmod(ul_memfd, 0640) ||
	    fcntl(ul_memfd, F_ADD_SEALS, F_SEAL_GROW) || fstat(ul_memfd, &ul_mem_stat))
		exit(4);
	(void)want_tmpfs;
	serve(check_unlinked);
}

/* --- pdeath ----------------------------------------------------------------------------- */

static pid_t pd_child;

static void pd_fired(int sig)
{
	(void)sig;
	put_file("fired", "%d\n", getppid());
	_exit(0);
}

static const char *check_pdeath(void)
{
	if (prctl(PR_GET_DUMPABLE) != 1)
		return "the process is no longer dumpable";
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return "no_new_privs is lost";
	if (!answers(pd_child, round_no, getpid()))
		return "the child does not answer";
	return NULL;
}

static void mode_pdeath(void)
{
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	pd_child = fork();
	if (pd_child == 0) {
		struct sigaction sa = { .sa_handler = pd_fired };

		sigaction(SIGHUP, &sa, NULL);
		prctl(PR_SET_PDEATHSIG, SIGHUP);
		answering_child();
	}
	serve(check_pdeath);
}

/* --- orphangroup ------------------------------------------------------------------------ */

static void mode_orphangroup(void)
{
	pid_t leader;
	int fds[2];

	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (pipe(fds))
		exit(4);
	leader = fork();
	if (leader == 0) {
		/* Leads a new group, leaves a zombie in it, and exits. */
		setpgid(0, 0);
		if (fork() == 0)
			_exit(3);
		wait_file("never");
		_exit(0);
	}
	/* Reap the leader once its child is a zombie, reparented to us. */
	usleep(200000);
	kill(leader, SIGKILL);
	waitpid(leader, NULL, 0);
	serve(check_nothing);
}

/* Drops to CR_AS_USER's uid and gid, with no groups. */
static void maybe_drop_privileges(void)
{
	const char *as = getenv("CR_AS_USER");
	int id;

	if (!as)
		return;
	id = atoi(as);
	if (setgroups(0, NULL) || setresgid(id, id, id) || setresuid(id, id, id))
		exit(4);
	prctl(PR_SET_DUMPABLE, 1);
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 3) {
		fprintf(stderr, "usage: cr_tree MODE DIR [ARG]\n");
		return 2;
	}
	mode = argv[1];
	dir = argv[2];
	maybe_drop_privileges();
	install_usr1();
	if (!strcmp(mode, "forks"))
		mode_forks(argc > 3 ? atoi(argv[3]) : 50);
	else if (!strcmp(mode, "threads"))
		mode_threads(argc > 3 ? atoi(argv[3]) : 16);
	else if (!strcmp(mode, "zombie"))
		mode_zombie();
	else if (!strcmp(mode, "pipe"))
		mode_pipe();
	else if (!strcmp(mode, "sharedfd"))
		mode_sharedfd();
	else if (!strcmp(mode, "shm"))
		mode_shm();
	else if (!strcmp(mode, "leak") && argc > 3)
		mode_leak(argv[3]);
	else if (!strcmp(mode, "container") && argc > 3)
		mode_container(argv[3]);
	else if (!strcmp(mode, "threadfork"))
		mode_threadfork(argc > 3 ? argv[3] : NULL);
	else if (!strcmp(mode, "reopen"))
		mode_reopen();
	else if (!strcmp(mode, "blocked"))
		mode_blocked();
	else if (!strcmp(mode, "unlinked") && argc > 3)
		mode_unlinked(argv[3], 1);
	else if (!strcmp(mode, "unlinked-ramfs") && argc > 3)
		mode_unlinked(argv[3], 0);
	else if (!strcmp(mode, "pdeath"))
		mode_pdeath();
	else if (!strcmp(mode, "orphangroup"))
		mode_orphangroup();
	else
		return 2;
	return 0;
}
