// SPDX-License-Identifier: GPL-2.0
/*
 * cr_signal_on_comm PID COMM SIG: spins on /proc/PID/comm and sends SIG to PID the moment it
 * reads COMM, as a supervisor would that signals a restarted process as soon as it sees it.
 * A restored task takes its name early in its restore, so the signal lands while the task is
 * still being restored. Exits 0 once the signal is sent, 1 if PID is gone or 60 s pass.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[64], name[64];
	time_t end = time(NULL) + 60;
	pid_t pid;
	int sig;

	if (argc != 4)
		return 2;
	pid = atoi(argv[1]);
	sig = atoi(argv[3]);
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	while (time(NULL) < end) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd < 0 ? -1 : read(fd, name, sizeof(name) - 1);

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			name[n] = 0;
			name[strcspn(name, "\n")] = 0;
			if (!strcmp(name, argv[2]))
				return kill(pid, sig) ? 1 : 0;
		}
	}
	return 1;
}
