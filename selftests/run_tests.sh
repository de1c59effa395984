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
for t in "$@"; do
	i=$((i + 1))
	echo "# selftests: cr: $t"
	began=$(cut -d. -f1 /proc/uptime)
	{
		timeout $timeout ./"$t" 2>&1
		echo $? >$status
	} | sed 's/^/    /'
	st=$(cat $status)
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
rm -f $status
[ $failed -eq 0 ]
