// SPDX-License-Identifier: GPL-2.0
/*
 * Writes another process's memory from outside, as a debugger would, through /proc/PID/mem:
 *   cr_poke write PID DIR    rewrites every mailbox page of the cr_writer PID once
 *   cr_poke vmwrite PID DIR  the same through process_vm_writev (which pins the pages)
 *   cr_poke verify PID DIR   checks that PID's mailbox holds what the last write put there
 *
 * DIR/mailbox (written by cr_writer) gives the addresses of the mailbox pages, their table and
 * their pending slot. Pages are written in the order cr_writer's own
 * writers follow (pending slot, page, table entry, pending slot cleared), so that cr_writer's
 * check holds at any moment; what was written goes to DIR/poked. Such writes go through the
 * kernel's mapping of the page (get_user_pages, as process_vm_writev's do) and set no dirty bit
 * in the page tables: a thawed checkpoint taken around them must still restore them, which
 * verify reads back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS (PAGE / 8)

static int mem_fd;
/* Writes go through process_vm_writev to this pid instead. */
static pid_t vm_pid;

static void xfer(int write, unsigned long addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)addr, len };
	ssize_t n;

	if (write && vm_pid)
		n = process_vm_writev(vm_pid, &local, 1, &remote, 1, 0);
	else
		n = write ? pwrite(mem_fd, buf, len, (off_t)addr) : pread(mem_fd, buf, len, (off_t)addr);

	if (n != (ssize_t)len) {
		perror(write ? "writing /proc/PID/mem" : "reading /proc/PID/mem");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	unsigned long mem, table, pending;
	uint64_t page[WORDS], gen;
	char path[512];
	int pages, write;
	FILE *f;

	if (argc != 4 ||
	    (strcmp(argv[1], "write") && strcmp(argv[1], "vmwrite") && strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: cr_poke write|vmwrite|verify PID DIR\n");
		return 2;
	}
	write = strcmp(argv[1], "verify") != 0;
	if (!strcmp(argv[1], "vmwrite"))
		vm_pid = atoi(argv[2]);
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[2]);
	mem_fd = open(path, O_RDWR);
	if (mem_fd < 0) {
		perror(path);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/mailbox", argv[3]);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%lx %lx %lx %d", &mem, &table, &pending, &pages) != 4 || pages < 1)
		return 2;
	fclose(f);
	snprintf(path, sizeof(path), "%s/poked", argv[3]);
	if (write) {
		/* New generations, never used by cr_writer's own writers. */
		gen = (1ull << 62) + (uint64_t)time(NULL) * 1000;
		f = fopen(path, "w");
		if (!f || fprintf(f, "%llu\n", (unsigned long long)gen) < 0 || fclose(f))
			return 1;
		for (int p = 0; p < pages; p++) {
			int64_t slot[2] = { p, (int64_t)(gen + p) }, none = -1;
			uint64_t g = gen + p;

			for (int w = 0; w < WORDS; w++)
				page[w] = g;
			xfer(1, pending + 8, &slot[1], 8);
			xfer(1, pending, &slot[0], 8);
			xfer(1, mem + (unsigned long)p * PAGE, page, PAGE);
			xfer(1, table + (unsigned long)p * 8, &g, 8);
			xfer(1, pending, &none, 8);
		}
		return 0;
	}
	f = fopen(path, "r");
	if (!f || fscanf(f, "%llu", (unsigned long long *)&gen) != 1)
		return 2;
	fclose(f);
	for (int p = 0; p < pages; p++) {
		xfer(0, mem + (unsigned long)p * PAGE, page, PAGE);
		for (int w = 0; w < WORDS; w++) {
			if (page[w] != gen + p) {
				printf("mailbox page %d word %d holds %llu, cr_poke wrote %llu\n", p, w,
				       (unsigned long long)page[w], (unsigned long long)(gen + p));
				return 1;
			}
		}
	}
	return 0;
}
