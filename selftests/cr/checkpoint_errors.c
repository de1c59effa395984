// SPDX-License-Identifier: GPL-2.0
/*
 * CR_IOC_CHECKPOINT and CR_IOC_RESTART argument and permission errors, each with its errno and,
 * where the kernel got as far as the target, a reason on logfd.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/cr.h>

#include "cr_ksft.h"

static int dev, logpipe[2];


static int checkpoint(int pid, int fd, int logfd, __u64 flags)
{
	struct cr_checkpoint_args a = { .pid = pid, .fd = fd, .logfd = logfd, .flags = flags };

	return ioctl(dev, CR_IOC_CHECKPOINT, &a);
}

/* Makes the calling process nobody's (uid and gid 65534), or ends it with status 2. */
static void become_nobody(void)
{
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		_exit(2);
}

/* Reads what the kernel logged since the last call. */
static const char *logged(void)
{
	static char buf[1024];
	ssize_t n = read(logpipe[0], buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = 0;
	return buf;
}

int main(void)
{
	int out[2], status;
	pid_t child;

	/* Line-buffered: no result is printed twice by a forked child. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	ksft_print_header();
	ksft_set_plan(14);
	dev = open(CR_DEVICE, O_RDWR | O_CLOEXEC);
	if (dev < 0 || pipe(out) || pipe2(logpipe, O_NONBLOCK))
		cr_bail("setup");

	child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}

	cr_expect_errno(checkpoint(child, out[1], logpipe[1], 0), EBUSY, "checkpoint of a running task");
	ksft_test_result(strstr(logged(), "not frozen") != NULL, "logfd says the task is not frozen\n");
	cr_expect_errno(checkpoint(999999, out[1], logpipe[1], 0), ESRCH, "checkpoint of no such pid");
	ksft_test_result(strstr(logged(), "no such process") != NULL, "logfd says there is no such process\n");
	cr_expect_errno(checkpoint(child, out[1], logpipe[1], 1ULL << 40), EINVAL, "checkpoint with unknown flags");
	cr_expect_errno(checkpoint(child, out[1], 1000, 0), EBADF, "checkpoint with a bad logfd");
	{
		struct cr_checkpoint_args a = { .pid = child, .fd = out[1], .logfd = -1 };

		a.__reserved = 1;
		cr_expect_errno(ioctl(dev, CR_IOC_CHECKPOINT, &a), EINVAL, "checkpoint with reserved bits");
	}
	{
		unsigned char big[64] = {};
		struct cr_checkpoint_args *a = (void *)big;

		a->pid = child;
		a->fd = out[1];
		a->logfd = -1;
		big[40] = 1;
		cr_expect_errno(ioctl(dev, _IOC(_IOC_WRITE, CR_IOC_MAGIC, 0x01, sizeof(big)), big), E2BIG,
			  "checkpoint with a longer struct whose unknown tail is not zero");
	}
	{
		struct cr_restart_args r = { .pid = child, .fd = out[0], .logfd = -1 };

		cr_expect_errno(ioctl(dev, CR_IOC_RESTART, &r), EINVAL, "restart on behalf of another task");
	}
	{
		/* An image that is not one: restart fails before it changes anything. */
		struct cr_restart_args r = { .fd = out[0], .logfd = logpipe[1] };

		if (write(out[1], "not an image at all", 19) != 19)
			cr_bail("write");
		close(out[1]);
		cr_expect_errno(ioctl(dev, CR_IOC_RESTART, &r), EINVAL, "restart from garbage");
		ksft_test_result(strstr(logged(), "bad magic") != NULL, "logfd says the magic is wrong\n");
		ksft_test_result(1, "the caller survived a refused restart\n");
	}

	/* Unprivileged: the device is already open, as a privileged helper could hand it over. */
	if (fork() == 0) {
		struct cr_restart_args r = { .fd = 0, .logfd = -1 };
		int ok;

		become_nobody();
		ok = checkpoint(1, 1, -1, 0) == -1 && errno == EPERM;
		ok = ok && ioctl(dev, CR_IOC_RESTART, &r) == -1 && errno == EPERM;
		_exit(ok ? 0 : 1);
	}
	wait(&status);
	ksft_test_result(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		   "a non-root caller gets EPERM for checkpoint of root's task and for restart\n");

	/*
	 * The rounds of a thawed checkpoint read no task the caller may not checkpoint: a non-root
	 * caller's own process whose child stayed root's is refused before a page of the child is
	 * copied (the rounds take the tree as it is while it runs, without a frozen tree's checks).
	 */
	{
		int ready[2], sink = open("/dev/null", O_WRONLY);
		pid_t pids[2], mine;

		if (sink < 0 || pipe(ready))
			cr_bail("set-up");
		mine = fork();
		if (mine == 0) {
			pid_t root_child = fork();

			if (root_child == 0)
				for (;;)
					pause();
			become_nobody();
			if (prctl(PR_SET_DUMPABLE, 1))
				_exit(2);
			if (write(ready[1], &root_child, sizeof(root_child)) != sizeof(root_child))
				_exit(2);
			for (;;)
				pause();
		}
		pids[0] = mine;
		if (read(ready[0], &pids[1], sizeof(pids[1])) != sizeof(pids[1]))
			cr_bail("the unprivileged tree did not start");
		if (fork() == 0) {
			struct cr_precopy_args p = { .pid = mine, .fd = sink, .logfd = -1 };
			int ok;

			become_nobody();
			ok = ioctl(dev, CR_IOC_PRECOPY, &p) == -1 && errno == EPERM;
			_exit(ok ? 0 : 1);
		}
		wait(&status);
		ksft_test_result(WIFEXITED(status) && WEXITSTATUS(status) == 0,
				 "a precopy of a tree with a task the caller may not checkpoint gets EPERM\n");
		kill(pids[1], SIGKILL);
		kill(pids[0], SIGKILL);
		waitpid(pids[0], NULL, 0);
		close(sink);
	}

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ksft_finished();
}
