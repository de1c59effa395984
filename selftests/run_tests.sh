#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the cr selftests in the VM, kselftest style: each test's own KTAP is nested (indented)
# under one top-level result for the test. Usage: run_tests.sh [GLOB...] (default: all).
cd "$(dirname "$0")" || exit 1
all=$(ls | grep -v -e '\.inc$' -e '\.h$' -e '^run_tests.sh$' -e '^ktap_helpers.sh$' | sort)
if [ $# -eq 0 ]; then
	tests=$all
else
	tests=
	for t in $all; do
		for glob in "$@"; do
			# A glob matches the test's name with or without its .sh.
			case $t in $glob | $glob.sh) tests="$tests $t"; break ;; esac
		done
	done
fi
set -- $tests
echo "TAP version 13"
echo "1..$#"
i=0
failed=0
status=/tmp/run_tests.status
timeout=${CR_TEST_TIMEOUT:-900}
# task_state PID: the state and parent of process PID, in $state and $ppid (fails when it is
# gone). Read from stat after the last ')', as a comm may hold spaces and parentheses.
task_state() {
	{ read -r line </proc/"$1"/stat; } 2>/dev/null || return 1
	set -- ${line##*) }
	state=$1 ppid=$2
}

# user_pids: the pids of the processes (not kernel threads, not zombies) that exist now,
# sorted. A kernel thread is kthreadd (2) or one of its children; procfs gives every file a
# size of 0, so nothing in it tells a process from a thread but its parent.
user_pids() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		task_state "$p" && [ "$p" != 2 ] && [ "$ppid" != 2 ] && [ "$state" != Z ] && echo "$p"
	done | sort
}

# find_leftovers: the processes that the test left running, in $left: those alive now that were
# not in /tmp/run_tests.before. Each is looked at again once the listing is done: the listing's
# own subshell lists itself, and is gone by then.
find_leftovers() {
	user_pids >/tmp/run_tests.after
	left=
	for p in $(grep -vxF -f /tmp/run_tests.before /tmp/run_tests.after); do
		task_state "$p" && [ "$state" != Z ] && left="$left $p"
	done
}

# show_tasks: every process, with where it waits, for a test about to be killed by its
# timeout: the log then says what hung.
show_tasks() {
	for p in $(user_pids); do
		task_state "$p" || continue
		echo "# task $p ($(cat /proc/"$p"/comm 2>/dev/null)) parent $ppid state $state" \
			"wchan $(cat /proc/"$p"/wchan 2>/dev/null): $(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
		sed 's/^/#     /' /proc/"$p"/stack 2>/dev/null
	done
}

# The check must see processes, or every test passes it: it saw none from when it was written,
# as it asked procfs for a size.
sleep 600 &
planted=$!
if ! user_pids | grep -qx "$planted"; then
	echo "Bail out! the harness cannot list processes, so it cannot see what a test leaves"
	exit 1
fi
kill $planted
wait $planted 2>/dev/null
mkfifo /tmp/run_tests.nap

for t in "$@"; do
	i=$((i + 1))
	echo "# selftests: cr: $t"
	began=$(cut -d. -f1 /proc/uptime)
	user_pids >/tmp/run_tests.before
	# The test gets its time; then what each task waits on is written down, and the test is
	# killed. The watchdog's sleep is a builtin read with a timeout, so that killing it
	# leaves no child of its own (busybox's timeout leaves one for up to a second).
	(
		read -r -t $timeout _ <>/tmp/run_tests.nap
		echo "# $t still runs after $timeout s; its tasks:"
		show_tasks
		kill -TERM "$(cat /tmp/run_tests.pid)"
		read -r -t 10 _ <>/tmp/run_tests.nap
		kill -KILL "$(cat /tmp/run_tests.pid)"
	) 2>/dev/null &
	watchdog=$!
	{
		./"$t" 2>&1 &
		echo $! >/tmp/run_tests.pid
		wait $!
		echo $? >$status
	} | sed 's/^/    /'
	st=$(cat $status)
	kill $watchdog 2>/dev/null
	wait $watchdog 2>/dev/null
	# A test's processes must not outlive it: they hide leaks, and a thousand sleeping tasks
	# made each /proc scan of the tests after them many times slower. They are killed, and
	# the test fails.
	find_leftovers
	if [ -n "$left" ]; then
		echo "# $t left $(echo $left | wc -w) processes running: $(for p in $left; do
			cat /proc/"$p"/comm 2>/dev/null
		done | sort | uniq -c | head -5 | tr -s ' \n' ' ')"
		for p in $left; do
			cg=$(sed -n 's/^0:://p' /proc/"$p"/cgroup 2>/dev/null)
			[ -n "$cg" ] && [ "$cg" != / ] && echo 1 >/sys/fs/cgroup"$cg"/cgroup.kill 2>/dev/null
			kill -9 "$p" 2>/dev/null
		done
		[ "$st" = 0 ] || [ "$st" = 4 ] && st=1
	fi
	# What each test costs on this kernel, to keep the suite's time in view.
	echo "# $t took $(($(cut -d. -f1 /proc/uptime) - began)) s"
	case $st in
	0) echo "ok $i selftests: cr: $t" ;;
	4) echo "ok $i selftests: cr: $t # SKIP" ;;
	*)
		failed=$((failed + 1))
		echo "not ok $i selftests: cr: $t # exit=$st"
		;;
	esac
done
rm -f $status /tmp/run_tests.before /tmp/run_tests.after /tmp/run_tests.nap /tmp/run_tests.pid
[ $failed -eq 0 ]
