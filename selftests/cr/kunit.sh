#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The in-kernel KUnit suite (cr_format) ran at module load: report each of its cases.
. "$(dirname "$0")/tap.sh.inc"
RESULTS=/sys/kernel/debug/kunit/cr_format/results

if [ ! -r $RESULTS ]; then
	tap_ok 1 "KUnit results for cr_format exist ($RESULTS)"
	tap_finish
fi
cases=$(grep -E '^ +(not )?ok [0-9]+ ' $RESULTS)
[ -n "$cases" ]
tap_ok $? "cr_format reported its cases"
# Each KUnit case line becomes one of ours.
printf '%s\n' "$cases" | {
	while read -r line; do
		name=${line##* }
		case $line in
		"not ok"*) echo "not ok - kunit cr_format.$name" ;;
		*"# SKIP"*) echo "not ok - kunit cr_format.$name was skipped" ;;
		*) echo "ok - kunit cr_format.$name" ;;
		esac
	done
} >/tmp/kunit.$$
while read -r line; do
	case $line in
	"ok"*) tap_ok 0 "${line#ok - }" ;;
	*) tap_ok 1 "${line#not ok - }" ;;
	esac
done </tmp/kunit.$$
rm -f /tmp/kunit.$$
grep -q '^ok [0-9]* cr_format' $RESULTS
tap_ok $? "the cr_format suite passed as a whole"
tap_finish
