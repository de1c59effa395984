#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The bench's scenarios, run inside the guest (installed there as cr-bench-scenarios):
#   cr-bench-scenarios SCALE RUNS TOOL...
#
#   SCALE  full (make bench), small (make check: every scenario once, quickly), memory
#          (the 1 GiB checkpoint and restart alone, for work on the memory path), thawed
#          (the thawed checkpoints alone), or migrate (the migrations alone)
#   RUNS   runs of each scenario and tool
#   TOOL   cr, criu
#
# Each run starts a target (cr_target, the selftests' helper) the same way for every tool, in a
# cgroup of its own; checkpoints it with the tool, which kills it; measures the image; restarts
# it from the image on tmpfs; and asks the target to check its own state, which must be intact.
# One JSON object per line goes to standard output:
#   {"scenario":..,"size":..,"tool":..,"run":..,"checkpoint_ns":..,"restart_ns":..,
#    "image_bytes":..,"checkpoint_kib":..,"restart_kib":..,"ok":true|false,"why":..}
# plus one {"memcpy_mbps":..} line. Progress and failures go to standard error. The exit status
# is 1 if any target came back wrong or any tool failed.
set -u

SCALE=${1:?scale}
RUNS=${2:?runs}
shift 2
TOOLS=$*
WORK=${BENCH_WORK:-/tmp/bench}
CG=/sys/fs/cgroup
failures=0

say() { echo "bench: $*" >&2; }

wait_for_file() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ $i -gt "${2:-6000}" ] && return 1
		sleep 0.05
	done
}

# Kills whatever is left in cgroup $1 and removes it.
drop_cgroup() {
	[ -d "$CG/$1" ] || return 0
	if [ -e "$CG/$1/cgroup.kill" ]; then
		echo 1 >"$CG/$1/cgroup.kill"
	else
		for p in $(cat "$CG/$1/cgroup.procs"); do kill -9 "$p"; done
	fi
	i=0
	while [ -s "$CG/$1/cgroup.procs" ] && [ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	rmdir "$CG/$1" 2>/dev/null
	return 0
}

# Whether process $1 is dead (gone, or a zombie its parent has yet to reap).
dead() {
	[ ! -e "/proc/$1/stat" ] && return 0
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

wait_dead() {
	i=0
	while ! dead "$1"; do
		i=$((i + 1))
		[ $i -gt 400 ] && return 1
		sleep 0.05
	done
}

bytes_of() {
	if [ -d "$1" ]; then
		ls -ln "$1" | awk '{ s += $5 } END { print s + 0 }'
	else
		ls -ln "$1" | awk '{ print $5 }'
	fi
}

# restart_from TOOL: restarts the target from $img (cr) or $img.d (criu), timed into
# $dir/t.restart; sets why on failure.
restart_from() {
	case $1 in
	# Its progress line would flood the console, which is a terminal.
	cr) cr_timed "$dir/t.restart" restart -i "$img" --detach --log "$dir/log" \
		>/dev/null 2>>"$dir/log" ;;
	criu) cr_timed "$dir/t.restart" criu restore -D "$img.d" -d --shell-job \
		-o restore.log 2>>"$dir/log" ;;
	esac
	[ $? -eq 0 ] || why="$1 restart failed: $(tail -q -n 3 "$dir/log" "$img.d/restore.log" 2>/dev/null | tr '\n"' ' _')"
}

# check_round N WHO WHAT: asks the target $pid for its round N, which must say ok; sets why
# ("WHO is not there", "WHO did not answer", "WHO found its WHAT wrong: ...") otherwise.
check_round() {
	if ! kill -USR1 "$pid" 2>/dev/null; then
		why="$2 is not there"
	elif ! wait_for_file "$dir/result.$1"; then
		why="$2 did not answer"
	elif [ "$(cat "$dir/result.$1")" != ok ]; then
		why="$2 found its $3 wrong: $(cat "$dir/result.$1")"
	fi
}

# begin_run: starts a run of $scenario with $tool: its directory and cgroup, empty; $img (and the
# $img.* of its kind: criu's directory, a precopy, a parent) gone; nothing measured yet.
begin_run() {
	dir=$WORK/$scenario.$tool.$run
	cg=bench-$scenario-$tool-$run
	img=$WORK/img
	rm -rf "$dir" "$img" "$img".*
	mkdir -p "$dir"
	drop_cgroup "$cg"
	why=
	ckpt_ns=0 rst_ns=0 ckpt_kib=0 rst_kib=0 bytes=0
}

# end_run SIZE EXTRA PATH...: ends a run of $scenario with $tool: its timings read back, the
# target and its cgroups gone (criu puts a restored tree back in its cgroup, restart in one of
# its own), PATH... removed, a failure counted and told, and the run's JSON line printed, with
# EXTRA (`"name":value,` fields, or nothing) before "ok".
end_run() {
	size=$1 extra=$2
	shift 2
	[ -f "$dir/t.ckpt" ] && read -r ckpt_ns ckpt_kib <"$dir/t.ckpt"
	[ -f "$dir/t.restart" ] && read -r rst_ns rst_kib <"$dir/t.restart"
	drop_cgroup "$cg"
	drop_cgroup "cr-restart-$pid"
	kill -9 "$pid" 2>/dev/null
	rm -rf "$@"
	ok=true
	if [ -n "$why" ]; then
		ok=false
		failures=$((failures + 1))
		say "$scenario $size $tool run $run: $why"
	fi
	printf '{"scenario":"%s","size":%s,"tool":"%s","run":%s,"checkpoint_ns":%s,"restart_ns":%s,"image_bytes":%s,"checkpoint_kib":%s,"restart_kib":%s,%s"ok":%s,"why":"%s"}\n' \
		"$scenario" "$size" "$tool" "$run" "$ckpt_ns" "$rst_ns" "$bytes" "$ckpt_kib" \
		"$rst_kib" "$extra" "$ok" "$why"
	rm -rf "$dir"
}

# run_one SCENARIO SIZE MODE ARG TOOL RUN [stream]
run_one() {
	scenario=$1 size=$2 mode=$3 arg=$4 tool=$5 run=$6 how=${7:-file}
	begin_run
	# setsid does not fork here (a script's job is no group leader), and ckpt run execs the
	# target: $! is the target, a child of this shell, which reaps it once it is killed.
	setsid ckpt run --cgroup "$cg" -- cr_target "$mode" "$dir" "$arg" </dev/null >/dev/null 2>&1 &
	pid=$!
	if ! wait_for_file "$dir/ready"; then
		why="the target did not start"
	fi
	if [ -z "$why" ]; then
		case $tool.$how in
		cr.file) cr_timed "$dir/t.ckpt" ckpt "$pid" -o "$img" --kill --log "$dir/log" ;;
		cr.stream)
			cr_timed "$dir/t.ckpt" sh -c "ckpt $pid -o - --kill --log $dir/log |
				restart -i - --detach --log $dir/log >$dir/newpid 2>>$dir/log" ;;
		criu.file)
			mkdir -p "$img.d"
			cr_timed "$dir/t.ckpt" criu dump -t "$pid" -D "$img.d" --shell-job \
				-o dump.log 2>>"$dir/log" ;;
		esac
		[ $? -eq 0 ] || why="$tool checkpoint failed: $(tail -q -n 3 "$dir/log" "$img.d/dump.log" 2>/dev/null | tr '\n"' ' _')"
	fi
	if [ -z "$why" ] && [ "$how" = file ]; then
		wait_dead "$pid" || why="the checkpointed target still runs"
		# Reaped, so that its pid is free for the restart.
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	if [ -z "$why" ] && [ "$how" = file ]; then
		if [ "$tool" = cr ]; then bytes=$(bytes_of "$img"); else bytes=$(bytes_of "$img.d"); fi
	fi
	if [ -z "$why" ] && [ "$how" = file ]; then
		restart_from "$tool"
	fi
	[ -z "$why" ] && check_round 1 "the restarted target" state
	[ "$how" = stream ] && bytes=0
	end_run "$size" "" "$img" "$img.d"
}

minflt() {
	sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f8
}

# run_thawed MIB RATE TOOL RUN: a checkpoint of a cr_writer rewriting random pages of its MIB
# MiB at about RATE MiB/s, that leaves it running: cr's thawed checkpoint, or criu's pre-dump
# then dump (soft-dirty). What counts is how long the writer stalled (its longest gap between
# two bursts, around the checkpoint, against the same over a quiet second before: the TCG guest
# has stalls of its own) and the faults the checkpoint added to it (its minor faults during the
# checkpoint, less those of the quiet second). Then the writer is killed and restarted from the
# image, and checks its memory page by page.
run_thawed() {
	mib=$1 rate=$2 tool=$3 run=$4
	scenario=thawed-$mib
	begin_run
	frozen_ns=0 stall_us=0 faults=0 quiet=0
	quiet_stall_us=0
	# Pages per burst, a burst a millisecond.
	burst=$(((rate * 256 + 999) / 1000))
	setsid ckpt run --cgroup "$cg" -- cr_writer "$dir" "$mib" "$burst" 1 </dev/null \
		>/dev/null 2>&1 &
	pid=$!
	wait_for_file "$dir/ready" || why="the writer did not start"
	if [ -z "$why" ]; then
		kill -USR1 "$pid"
		wait_for_file "$dir/result.1" || why="the writer did not answer"
	fi
	if [ -z "$why" ]; then
		f0=$(minflt "$pid")
		sleep 1
		kill -USR1 "$pid"
		wait_for_file "$dir/result.2" || why="the writer did not answer"
		quiet_stall_us=$(cat "$dir/stall.2" 2>/dev/null || echo 0)
		f1=$(minflt "$pid")
		quiet=$((f1 - f0))
	fi
	if [ -z "$why" ]; then
		case $tool in
		cr) cr_timed "$dir/t.ckpt" ckpt "$pid" -o "$img" --thawed --stats \
			--log "$dir/log" 2>"$dir/stats" ;;
		criu)
			mkdir -p "$img.pre" "$img.d"
			cr_timed "$dir/t.ckpt" sh -c "criu pre-dump -t $pid -D $img.pre --shell-job \
				-o pre.log 2>>$dir/log && criu dump -t $pid -D $img.d --shell-job \
				--prev-images-dir ../img.pre --track-mem --leave-running -o dump.log \
				2>>$dir/log" ;;
		esac
		[ $? -eq 0 ] || why="$tool checkpoint failed: $(tail -q -n 3 "$dir/log" "$img.d/dump.log" "$img.pre/pre.log" 2>/dev/null | tr '\n"' ' _')"
		f2=$(minflt "$pid")
		faults=$((f2 - f1 - quiet))
	fi
	[ -z "$why" ] && check_round 3 "the writer, after the checkpoint," memory
	if [ -z "$why" ]; then
		stall_us=$(cat "$dir/stall.3")
		frozen=$(sed -n 's/.*stopped \([0-9.]*\) s.*/\1/p' "$dir/stats" 2>/dev/null)
		[ -n "$frozen" ] && frozen_ns=$(echo "$frozen" | awk '{ printf "%d", $1 * 1e9 }')
	fi
	if [ -z "$why" ]; then
		# Killed, but its cgroup stays: criu restores the writer into it.
		echo 1 >"$CG/$cg/cgroup.kill"
		wait_dead "$pid" || why="the writer does not die"
		wait "$pid" 2>/dev/null
	fi
	if [ -z "$why" ]; then
		if [ "$tool" = cr ]; then bytes=$(bytes_of "$img"); else
			bytes=$(($(bytes_of "$img.d") + $(bytes_of "$img.pre")))
		fi
		restart_from "$tool"
	fi
	# The image was taken before the writer's third round, which it makes again.
	rm -f "$dir/result.3"
	[ -z "$why" ] && check_round 3 "the restarted writer" memory
	end_run "$rate" "\"frozen_ns\":$frozen_ns,\"stall_us\":$stall_us,\"quiet_stall_us\":$quiet_stall_us,\"faults\":$faults,\"quiet_faults\":$quiet," \
		"$img" "$img.d" "$img.pre"
}

# run_incremental MIB CHANGE TOOL RUN: a writer of MIB MiB that writes nothing on its own is
# checkpointed and left running, then rewrites CHANGE MiB (cr_writer's sweep), and is
# checkpointed again, incrementally: cr's ckpt --track then ckpt --parent, criu's dump
# --track-mem then dump --prev-images-dir (soft-dirty). What counts is the second image's size
# against the CHANGE MiB that changed. Then the writer is killed, restarted from the second
# image (which needs the first), and checks its memory page by page.
run_incremental() {
	mib=$1 change=$2 tool=$3 run=$4
	scenario=incremental-$mib
	begin_run
	base=$img.base base_bytes=0
	setsid ckpt run --cgroup "$cg" -- cr_writer "$dir" "$mib" 0 1 </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_for_file "$dir/ready" || why="the writer did not start"
	if [ -z "$why" ]; then
		case $tool in
		cr) ckpt "$pid" -o "$base" --track --log "$dir/log" ;;
		criu) mkdir -p "$base" && criu dump -t "$pid" -D "$base" --shell-job --track-mem \
			--leave-running -o dump.log 2>>"$dir/log" ;;
		esac
		[ $? -eq 0 ] || why="$tool base checkpoint failed: $(tail -q -n 3 "$dir/log" "$base/dump.log" 2>/dev/null | tr '\n"' ' _')"
	fi
	if [ -z "$why" ]; then
		echo $((change * 256)) >"$dir/sweep"
		kill -WINCH "$pid"
		wait_for_file "$dir/swept.1" || why="the writer did not rewrite its pages"
	fi
	if [ -z "$why" ]; then
		case $tool in
		cr) cr_timed "$dir/t.ckpt" ckpt "$pid" -o "$img" --parent "$base" --log "$dir/log" ;;
		criu) mkdir -p "$img.d" && cr_timed "$dir/t.ckpt" criu dump -t "$pid" -D "$img.d" \
			--shell-job --prev-images-dir ../img.base --track-mem --leave-running \
			-o dump.log 2>>"$dir/log" ;;
		esac
		[ $? -eq 0 ] || why="$tool incremental checkpoint failed: $(tail -q -n 3 "$dir/log" "$img.d/dump.log" 2>/dev/null | tr '\n"' ' _')"
	fi
	[ -z "$why" ] && check_round 1 "the writer, after the checkpoints," memory
	if [ -z "$why" ]; then
		echo 1 >"$CG/$cg/cgroup.kill"
		wait_dead "$pid" || why="the writer does not die"
		wait "$pid" 2>/dev/null
	fi
	if [ -z "$why" ]; then
		if [ "$tool" = cr ]; then
			bytes=$(bytes_of "$img") base_bytes=$(bytes_of "$base")
		else
			bytes=$(bytes_of "$img.d") base_bytes=$(bytes_of "$base")
		fi
		restart_from "$tool"
	fi
	# The second image was taken before the writer's first round, which it makes again.
	rm -f "$dir/result.1"
	[ -z "$why" ] && check_round 1 "the restarted writer" memory
	end_run "$change" "\"base_bytes\":$base_bytes,\"changed_bytes\":$((change << 20))," \
		"$img" "$img.d" "$base"
}

# run_migrate MIB RATE TOOL RUN: a writer of MIB MiB, rewriting random pages at about RATE MiB/s,
# moves to a new home in the same guest while it runs: cr's ckpt --migrate over loopback TCP to
# restart --listen --pidns (the source keeps its pids until the destination answers), or criu's
# pre-dump, dump and restore (a migration with CRIU, less the copy of the images between
# machines). The downtime: cr's from the freeze until the destination said the tree runs (ckpt's
# "stopped"), criu's dump and restore; and the writer's own longest stall across the move, by its
# monotonic clock, which the same guest keeps. Then the writer checks its memory at its new home.
run_migrate() {
	mib=$1 rate=$2 tool=$3 run=$4
	scenario=migrate-$mib
	begin_run
	downtime_ns=0 stall_us=0
	burst=$(((rate * 256 + 999) / 1000))
	setsid ckpt run --cgroup "$cg" -- cr_writer "$dir" "$mib" "$burst" 1 </dev/null \
		>/dev/null 2>&1 &
	pid=$!
	wait_for_file "$dir/ready" || why="the writer did not start"
	[ -z "$why" ] && check_round 1 "the writer" memory
	if [ -z "$why" ]; then
		case $tool in
		cr)
			restart --listen 127.0.0.1:7300 --pidns --detach --log "$dir/log" \
				>/dev/null 2>"$dir/listen" &
			listener=$!
			i=0
			until grep -qs listening "$dir/listen" || [ $i -gt 600 ]; do
				sleep 0.05
				i=$((i + 1))
			done
			cr_timed "$dir/t.ckpt" ckpt "$pid" --migrate 127.0.0.1:7300 --stats \
				--log "$dir/log" 2>"$dir/stats" || why="cr migration failed: $(tail -q -n 3 "$dir/log" "$dir/stats" "$dir/listen" 2>/dev/null | tr '\n"' ' _')"
			wait "$listener" || [ -n "$why" ] || why="restart --listen failed: $(tail -n 3 "$dir/listen" | tr '\n"' ' _')"
			frozen=$(sed -n 's/.*stopped \([0-9.]*\) s.*/\1/p' "$dir/stats" 2>/dev/null)
			[ -n "$frozen" ] && downtime_ns=$(echo "$frozen" | awk '{ printf "%d", $1 * 1e9 }')
			wait "$pid" 2>/dev/null
			# The writer at its new home, by its pid outside the new namespace.
			source=$pid
			pid=
			for p in $(cat "$CG/cr-restart-$source/cgroup.procs" 2>/dev/null); do
				[ "$(cat "/proc/$p/comm" 2>/dev/null)" = cr_writer ] && pid=$p
			done
			[ -n "$pid" ] || [ -n "$why" ] || why="the migrated writer is not there"
			;;
		criu)
			mkdir -p "$img.pre" "$img.d"
			cr_timed "$dir/t.pre" criu pre-dump -t "$pid" -D "$img.pre" --shell-job \
				-o pre.log 2>>"$dir/log" &&
				cr_timed "$dir/t.dump" criu dump -t "$pid" -D "$img.d" --shell-job \
					--prev-images-dir ../img.pre --track-mem -o dump.log 2>>"$dir/log" ||
				why="criu dump failed: $(tail -q -n 3 "$dir/log" "$img.d/dump.log" 2>/dev/null | tr '\n"' ' _')"
			if [ -z "$why" ]; then
				wait_dead "$pid" || why="the dumped writer still runs"
				wait "$pid" 2>/dev/null
			fi
			[ -z "$why" ] && restart_from criu
			if [ -z "$why" ]; then
				read -r pre_ns _ <"$dir/t.pre"
				read -r dump_ns _ <"$dir/t.dump"
				read -r rst_ns _ <"$dir/t.restart"
				downtime_ns=$((dump_ns + rst_ns))
				echo "$((pre_ns + dump_ns + rst_ns)) 0" >"$dir/t.ckpt"
				rm -f "$dir/t.restart"
			fi
			;;
		esac
	fi
	[ -z "$why" ] && check_round 2 "the migrated writer" memory
	[ -z "$why" ] && stall_us=$(cat "$dir/stall.2")
	end_run "$rate" "\"frozen_ns\":$downtime_ns,\"stall_us\":$stall_us," "$img" "$img.d" "$img.pre"
	[ -n "${source:-}" ] && drop_cgroup "cr-restart-$source"
	source=
}

# each_run KIND MIB ARG: run_KIND MIB ARG for every tool, RUNS times (thawed: ARG is the rate
# in MiB/s; incremental: the MiB changed; migrate: the rate).
each_run() {
	for tool in $TOOLS; do
		r=1
		while [ $r -le "$RUNS" ]; do
			say "$1 $2 MiB, $3, $tool run $r"
			"run_$1" "$2" "$3" "$tool" "$r"
			r=$((r + 1))
		done
	done
}

# scenario NAME SIZE MODE ARG [TOOLS] [stream]
scenario() {
	for tool in ${5:-$TOOLS}; do
		case " $TOOLS " in *" $tool "*) ;; *) continue ;; esac
		r=1
		while [ $r -le "$RUNS" ]; do
			say "$1 $2 $tool run $r"
			run_one "$1" "$2" "$3" "$4" "$tool" "$r" "${6:-file}"
			r=$((r + 1))
		done
	done
}

# yardstick MIB: the in-VM memcpy bandwidth. The copy runs over two buffers of MIB MiB, so it
# also makes the host back that much guest RAM before anything is timed: otherwise the first
# tool pays for first touches of guest memory, and the second does not.
yardstick() {
	printf '{"memcpy_mbps":%s}\n' "$(cr_memcpy_bw "$1")"
}

mkdir -p "$WORK"
case $SCALE in
full)
	yardstick 1024
	for mib in 64 256 1024; do
		scenario memory "$((mib << 20))" memory "$mib"
	done
	scenario sparse 64 sparse 64
	scenario sparse 0 sparse 0
	for n in 1000 10000; do
		scenario vmas "$n" vmas "$n"
		scenario fds "$n" fds "$n"
	done
	for n in 100 1000; do
		# The root and its children.
		scenario procs "$n" procs "$((n - 1))"
	done
	scenario threads 100 threads 100
	scenario stream "$((1024 << 20))" memory 1024 cr stream
	each_run thawed 1024 16
	each_run thawed 1024 128
	each_run incremental 1024 10
	each_run migrate 1024 16
	;;
thawed)
	each_run thawed 1024 16
	each_run thawed 1024 128
	each_run incremental 1024 10
	each_run migrate 1024 16
	;;
migrate)
	each_run migrate 64 16
	each_run migrate 1024 16
	;;
incremental)
	each_run incremental 1024 10
	;;
memory)
	yardstick 1024
	scenario memory "$((1024 << 20))" memory 1024
	;;
small)
	yardstick 16
	scenario memory "$((16 << 20))" memory 16
	scenario sparse 64 sparse 64
	scenario sparse 0 sparse 0
	scenario vmas 300 vmas 300
	# 10,000 descriptors once took a per-table vector past the largest kmalloc.
	scenario fds 10000 fds 10000
	scenario procs 20 procs 19
	scenario threads 10 threads 10
	scenario stream "$((16 << 20))" memory 16 cr stream
	each_run thawed 8 16
	each_run incremental 16 1
	each_run migrate 8 16
	;;
tiny)
	# small's scenarios at a size the debug kernel (KASAN under TCG) runs in a minute.
	yardstick 4
	scenario memory "$((4 << 20))" memory 4
	scenario sparse 64 sparse 64
	scenario sparse 0 sparse 0
	scenario vmas 100 vmas 100
	scenario fds 1000 fds 1000
	scenario procs 8 procs 7
	scenario threads 4 threads 4
	scenario stream "$((4 << 20))" memory 4 cr stream
	each_run thawed 4 16
	each_run incremental 8 1
	each_run migrate 4 16
	;;
*)
	say "unknown scale $SCALE"
	exit 2
	;;
esac
[ $failures -eq 0 ]
