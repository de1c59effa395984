#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Live migration between two guests: a counter moves from guest A to guest B while it counts.
#
#   selftests/migrate.sh [--debug] [--no-build] [--check]
#
# The guests are joined by one Ethernet link (tools/vm-run --link: a QEMU socket netdev on the
# host's loopback), A at 10.0.2.1 and B at 10.0.2.2, and share one host directory at /mnt/share,
# as two machines would share an NFS export. The counter appends 1, 2, 3... to a file there,
# one line a millisecond. B runs `restart --listen 10.0.2.2:7000`; A runs `ckpt PID --migrate
# 10.0.2.2:7000`. The host watches the file grow (sampled every millisecond): the longest time
# it stood still is the downtime as the counter's output shows it.
#
# With --check (make check), it prints one TAP line per result and exits 1 when one fails: the
# migration succeeded on both sides, the counter's lines are exactly 1, 2, 3... (no count lost
# or written twice: it never ran in both places), it counted on B with its pid, and it is gone
# from A.
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
vm=("$TOP/tools/vm-run")
build=1
check=0
for a in "$@"; do
	case $a in
	--debug) vm+=(--debug) ;;
	--no-build) build=0 ;;
	--check) check=1 ;;
	*) echo "usage: $0 [--debug] [--no-build] [--check]" >&2; exit 2 ;;
	esac
done
if ((build)); then
	make -s -C "$TOP" vm-image KERNEL="$([[ ${vm[*]} == *--debug* ]] && echo debug || echo normal)" >&2 || exit 1
fi
vm+=(--no-build --smp 1 --timeout "${CR_VM_TIMEOUT:-600}")

share=$(mktemp -d "${TMPDIR:-/tmp}/cr-migrate.XXXXXX")
chmod 777 "$share"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	[[ -n ${CR_KEEP_SHARE:-} ]] || rm -rf "$share"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The downtime as the host sees the counter's output: the file's size sampled every millisecond,
# until both guests are done; the longest time between two growths, and the count it resumed at.
python3 - "$share" <<'PY' &
import os, sys, time
share = sys.argv[1]
path = os.path.join(share, "count")
last_size, last_change, worst, resumed = -1, None, 0.0, None
while not os.path.exists(os.path.join(share, "done")):
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = -1
    now = time.monotonic()
    if size != last_size and size >= 0:
        if last_change is not None and now - last_change > worst:
            worst = now - last_change
            resumed = size
        last_size, last_change = size, now
    time.sleep(0.001)
with open(os.path.join(share, "gap"), "w") as f:
    f.write("%d\n" % round(worst * 1000))
PY
sampler=$!
pids+=("$sampler")

# Guest A, the source: it starts first, since its end of the link listens for B's.
"${vm[@]}" --share "$share" --link "listen:$port" --ip 10.0.2.1/24 -- sh -c '
	cd /mnt/share
	# The two guests boot alike: a pid of the counter from the same boot would be taken on B.
	echo 4999 >/proc/sys/kernel/ns_last_pid
	ckpt run -- cr_counter /mnt/share/count 1 >/dev/null 2>&1 &
	PID=$!
	until [ -s count ] && [ $(wc -l <count) -ge 300 ]; do sleep 0.05; done
	echo $PID >source.pid
	until grep -qs listening dest.err; do sleep 0.05; done
	echo "A: the counter, pid $PID, has counted to $(tail -n 1 count): ckpt $PID --migrate 10.0.2.2:7000"
	ckpt $PID --migrate 10.0.2.2:7000 --stats 2>ckpt.err
	rc=$?
	echo $rc >ckpt.rc
	sed "s/^/A: /" ckpt.err
	# A failed migration leaves the counter running here: this guest is done with it.
	[ $rc = 0 ] || { kill -9 $PID; touch failed; }
	wait $PID 2>/dev/null
	if kill -0 $PID 2>/dev/null; then echo "A: pid $PID still runs here"; else echo "A: pid $PID is gone from here"; touch source.gone; fi
' >"$share/a.out" 2>&1 &
a=$!
pids+=("$a")
listening=":$(printf %04X "$port") 00000000:0000 0A"
for _ in $(seq 600); do
	grep -q "$listening" /proc/net/tcp && break
	sleep 0.05
done

# Guest B, the destination: once the counter runs here, it lets it count 300 more lines, and
# ends it.
"${vm[@]}" --share "$share" --link "connect:$port" --ip 10.0.2.2/24 -- sh -c '
	cd /mnt/share
	restart --listen 10.0.2.2:7000 --no-pidns --detach --log dest.log >dest.pid 2>dest.err
	echo $? >dest.rc
	sed "s/^/B: /" dest.err dest.log
	pid=$(cat dest.pid)
	[ -n "$pid" ] || exit 1
	at=$(wc -l <count)
	until [ $(wc -l <count) -gt $((at + 300)) ] || [ -e failed ]; do sleep 0.05; done
	echo "B: the counter runs here, at $(tail -n 1 count): $(grep -E "^(Name|Pid|State)" /proc/$pid/status | tr "\t\n" "  ")"
	echo $pid >dest.ran
	kill -9 $pid
' >"$share/b.out" 2>&1
b_rc=$?
wait "$a"
a_rc=$?
touch "$share/done"
wait "$sampler" 2>/dev/null

cat "$share/a.out" "$share/b.out"
gap=$(cat "$share/gap" 2>/dev/null || echo "?")
echo
echo "downtime, as the counter's output shows it: ${gap} ms (the longest its file stood still)"
grep -ho 'stopped [0-9.]* s' "$share/ckpt.err" 2>/dev/null | sed 's/^/downtime, as ckpt measured it (frozen until B answered): /'

((check)) || exit $((a_rc || b_rc))

# The TAP results for make check.
n=0
failed=0
result() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n $1"; else echo "not ok $n $1"; failed=1; fi
}
echo "TAP version 13"
echo "1..6"
result "guest A and guest B ran their parts (vm-run exited $a_rc and $b_rc)" "((a_rc == 0 && b_rc == 0))"
result "ckpt --migrate exited 0" "[[ \$(cat $share/ckpt.rc 2>/dev/null) == 0 ]]"
result "restart --listen exited 0" "[[ \$(cat $share/dest.rc 2>/dev/null) == 0 ]]"
result "the counter counted on at B with its pid" "[[ \$(cat $share/dest.ran 2>/dev/null) == \$(cat $share/source.pid 2>/dev/null) ]]"
result "it is gone from A" "[[ -e $share/source.gone ]]"
result "its lines are exactly 1, 2, 3... ($(wc -l <"$share/count" 2>/dev/null || echo 0)): none lost, none written twice" \
	"[[ -s $share/count ]] && awk '\$1 != NR { bad = 1 } END { exit bad }' $share/count"
exit $failed
