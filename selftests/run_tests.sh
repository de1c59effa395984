#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs the cr selftests in the VM, kselftest style: each test's own TAP is nested (indented) under
# one top-level result for the test. Usage: run_tests.sh [TEST...]
cd "$(dirname "$0")" || exit 1
tests=${*:-$(ls | grep -v -e '\.inc$' -e '^run_tests.sh$' | sort)}
set -- $tests
echo "TAP version 13"
echo "1..$#"
i=0
failed=0
status=/tmp/run_tests.status
for t in "$@"; do
	i=$((i + 1))
	echo "# selftests: cr: $t"
	{
		timeout 600 ./"$t" 2>&1
		echo $? >$status
	} | sed 's/^/    /'
	st=$(cat $status)
	if [ "$st" -eq 0 ]; then
		echo "ok $i selftests: cr: $t"
	else
		failed=$((failed + 1))
		echo "not ok $i selftests: cr: $t # exit=$st"
	fi
done
rm -f $status
[ $failed -eq 0 ]
