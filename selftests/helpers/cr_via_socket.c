// SPDX-License-Identifier: GPL-2.0
/*
 * cr_via_socket OUT CMD [ARGS...]: runs CMD with its standard output on a UNIX stream socket
 * and copies what arrives to OUT; exits with CMD's status. Shows that an image needs no more
 * than a stream.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int sv[2], out, status;
	char buf[65536];
	ssize_t n;
	pid_t pid;

	if (argc < 3 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 2;
	out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return 2;
	pid = fork();
	if (pid == 0) {
		dup2(sv[1], 1);
		close(sv[0]);
		close(sv[1]);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	close(sv[1]);
	while ((n = read(sv[0], buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			return 2;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}
