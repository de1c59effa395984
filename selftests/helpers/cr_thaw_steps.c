// SPDX-License-Identifier: GPL-2.0
/*
 * A thawed checkpoint taken step by step, with something done between the rounds and the
 * freeze: cr_thaw_steps PID CGROUP IMAGE -- COMMAND [ARGS...]
 *
 * It copies PID's tree while it runs (CR_IOC_PRECOPY, two rounds) into IMAGE, runs COMMAND and
 * waits for it, then freezes CGROUP, writes the frozen round (CR_IOC_CHECKPOINT with
 * CR_CHECKPOINT_AFTER_PRECOPY) and kills the cgroup. COMMAND changes the target in a way the
 * rounds must notice: memory written from outside with process_vm_writev, areas remapped, a
 * fork. Kernel reasons go to standard error. Exit 0 once the image is whole.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cr.h>

static void put(const char *cg, const char *file, const char *what)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, what, strlen(what)) != (ssize_t)strlen(what)) {
		perror(path);
		exit(1);
	}
	close(fd);
}

static int is_frozen(const char *cg)
{
	char path[512], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.events", cg);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, "frozen 1") != NULL;
}

int main(int argc, char **argv)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	struct cr_precopy_args pre = { .logfd = 2, .max_rounds = 2 };
	struct cr_checkpoint_args args = { .logfd = 2 };
	const char *cg;
	int dev, status, tries;
	pid_t child;

	if (argc < 6 || strcmp(argv[4], "--")) {
		fprintf(stderr, "usage: cr_thaw_steps PID CGROUP IMAGE -- COMMAND [ARGS...]\n");
		return 2;
	}
	cg = argv[2];
	dev = open("/dev/cr", O_RDWR);
	pre.pid = args.pid = atoi(argv[1]);
	pre.fd = args.fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (dev < 0 || pre.fd < 0) {
		perror("open");
		return 1;
	}
	if (ioctl(dev, CR_IOC_PRECOPY, &pre)) {
		perror("CR_IOC_PRECOPY");
		return 1;
	}
	child = fork();
	if (child == 0) {
		execvp(argv[5], argv + 5);
		perror(argv[5]);
		_exit(127);
	}
	if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "cr_thaw_steps: %s failed\n", argv[5]);
		return 1;
	}
	put(cg, "cgroup.freeze", "1");
	for (tries = 0; !is_frozen(cg); tries++) {
		if (tries > 1000) {
			fprintf(stderr, "cr_thaw_steps: %s does not freeze\n", cg);
			return 1;
		}
		nanosleep(&tick, NULL);
	}
	args.flags = CR_CHECKPOINT_AFTER_PRECOPY;
	if (ioctl(dev, CR_IOC_CHECKPOINT, &args)) {
		perror("CR_IOC_CHECKPOINT");
		put(cg, "cgroup.freeze", "0");
		return 1;
	}
	put(cg, "cgroup.kill", "1");
	put(cg, "cgroup.freeze", "0");
	return 0;
}
