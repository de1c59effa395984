// SPDX-License-Identifier: GPL-2.0
/*
 * A migration destination that fails, for ckpt --migrate:
 *   cr_sink PORT READY [BYTES]
 *
 * It listens on 127.0.0.1:PORT, creates the file READY, and takes one connection. With BYTES,
 * it reads that many bytes of the image and resets the connection (a destination that dies
 * mid-stream, while the source's rounds run). Without, it reads the whole image, to the end of
 * the source's side, and closes without an answer (one that dies while the source is frozen,
 * waiting to hear that the tree runs). Either way the source must thaw its tree.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	long long want = -1, got = 0;
	int one = 1, listener, conn, fd;
	char buf[65536];
	ssize_t n;

	if (argc < 3)
		return 2;
	if (argc > 3)
		want = atoll(argv[3]);
	addr.sin_port = htons(atoi(argv[1]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 1)) {
		perror("cr_sink: listen");
		return 1;
	}
	fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	conn = accept(listener, NULL, NULL);
	if (conn < 0) {
		perror("cr_sink: accept");
		return 1;
	}
	while (want < 0 || got < want) {
		n = read(conn, buf, want < 0 || want - got > (long long)sizeof(buf) ?
					    sizeof(buf) : (size_t)(want - got));
		if (n <= 0)
			break;
		got += n;
	}
	/* A reset, not an orderly close: the source's next write fails at once. */
	if (want >= 0)
		setsockopt(conn, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(conn);
	printf("cr_sink: read %lld bytes\n", got);
	return 0;
}
