#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Every `make bench` scenario once, small (tiny on the debug kernel), with cr alone: each target
# checks its own state after the restart (and a thawed checkpoint's writer before it too), so
# the bench cannot rot. No time is asserted; `make bench` measures.
. "$(dirname "$0")/tap.sh.inc"
tap_plan 11

out=/tmp/cr_bench.out
scale=$(scale small tiny)
BENCH_WORK=/tmp/cr_bench cr-bench-scenarios $scale 1 cr >$out 2>/tmp/cr_bench.err
grep -q memcpy_mbps $out || cat /tmp/cr_bench.err | sed 's/^/# /'
if [ $scale = small ]; then
	set -- '"memory","size":16777216' '"sparse","size":64' '"sparse","size":0' \
		'"vmas","size":300' '"fds","size":10000' '"procs","size":20' '"threads","size":10' \
		'"stream","size":16777216' '"thawed-8","size":16' '"incremental-16","size":1' \
		'"migrate-8","size":16'
else
	set -- '"memory","size":4194304' '"sparse","size":64' '"sparse","size":0' \
		'"vmas","size":100' '"fds","size":1000' '"procs","size":8' '"threads","size":4' \
		'"stream","size":4194304' '"thawed-4","size":16' '"incremental-8","size":1' \
		'"migrate-4","size":16'
fi
for s in "$@"; do
	line=$(grep -F "\"scenario\":$s," $out)
	name=$(echo "$s" | tr -d '"' | sed 's/,size:/ /')
	case $line in
	*'"ok":true'*) tap_ok 0 "bench scenario $name: checkpoint, restart, the target's own check" ;;
	*)
		tap_ok 1 "bench scenario $name: checkpoint, restart, the target's own check"
		echo "# ${line:-no result}"
		;;
	esac
done
tap_finish
