#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The in-kernel KUnit suite (cr_format) ran at module load: report each of its cases.
. "$(dirname "$0")/tap.sh.inc"
RESULTS=/sys/kernel/debug/kunit/cr_format/results

if [ ! -r $RESULTS ]; then
	tap_plan 1
	tap_ok 1 "KUnit results for cr_format exist ($RESULTS)"
	tap_finish
fi
cases=$(grep -E '^ +(not )?ok [0-9]+ ' $RESULTS)
tap_plan $((2 + $(printf '%s\n' "$cases" | grep -c .)))
[ -n "$cases" ]
tap_ok $? "cr_format reported its cases"
# Each KUnit case line becomes one of ours; a skipped case is a failure here, since the suite
# needs nothing the test kernel lacks.
while read -r line; do
	name=${line##* }
	case $line in
	"not ok"*) tap_ok 1 "kunit cr_format.$name" ;;
	*"# SKIP"*) tap_ok 1 "kunit cr_format.$name was skipped" ;;
	*) tap_ok 0 "kunit cr_format.$name" ;;
	esac
done <<EOT
$cases
EOT
grep -q '^ok [0-9]* cr_format' $RESULTS
tap_ok $? "the cr_format suite passed as a whole"
tap_finish
