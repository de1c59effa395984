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
# user_pids: the pids of the processes (not kernel threads) that exist now, sorted.
user_pids() {
	for d in /proc/[0-9]*; do
		[ -s "$d/cmdline" ] && echo "${d#/proc/}"
	done 2>/dev/null | sort
}

# leftovers BEFORE: the processes that a test left running, from the pids BEFORE it began;
# the listing's own subshells are gone by the time each pid is checked again.
leftovers() {
	echo "$1" >/tmp/run_tests.before
	user_pids | grep -vxF -f /tmp/run_tests.before | while read -r p; do
		[ -s /proc/"$p"/cmdline ] && [ "$(cut -d' ' -f3 /proc/"$p"/stat 2>/dev/null)" != Z ] &&
			echo "$p"
	done
}

for t in "$@"; do
	i=$((i + 1))
	echo "# selftests: cr: $t"
	began=$(cut -d. -f1 /proc/uptime)
	before=$(user_pids)
	{
		timeout $timeout ./"$t" 2>&1
		echo $? >$status
	} | sed 's/^/    /'
	st=$(cat $status)
	# A test's processes must not outlive it: they hide leaks, and a thousand sleeping tasks
	# made each /proc scan of the tests after them many times slower. They are killed, and
	# the test fails.
	left=$(leftovers "$before")
	if [ -n "$left" ]; then
		echo "# $t left $(echo "$left" | wc -l) processes running: $(for p in $left; do
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
rm -f $status /tmp/run_tests.before
[ $failed -eq 0 ]
