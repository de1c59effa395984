#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make bench: cr against criu, in one boot of the bench kernel (the normal test kernel plus ACPI
# and what criu needs) on a Debian root (9p) that has criu. Prints a table, and writes build/bench/results.json and build/bench/memory.svg.
#
#   BENCH_RUNS=3        runs of each scenario and tool (medians and spread are reported)
#   BENCH_SCALE=full    or small (the sizes `make check` runs), memory, thawed, incremental, migrate
#   BENCH_TOOLS="cr criu"
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
export CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-full}
TOOLS=${BENCH_TOOLS:-cr criu}
OUT=$TOP/build/bench
HOST_TARGET=x86_64-unknown-linux-gnu
TOOLS_BIN=$TOP/tools/target/$HOST_TARGET/release

log() { echo "bench: $*" >&2; }

make -s -C "$TOP" vm-image KERNEL=bench
ROOT=$("$TOP/selftests/bench/rootfs.sh")
kernel=$(cat "$TOP/build/vm/bench/kernel-path")
(cd "$TOP/tools" && cargo build -q --release -p crbench)

# What the guest runs, fresh in the root each time.
rm -rf "$ROOT/opt/cr"
mkdir -p "$ROOT/opt/cr/bin" "$OUT"
cp "$TOP/build/module/bench/rust/cr.ko" "$TOP/selftests/bench/init" "$ROOT/opt/cr/"
cp "$TOOLS_BIN"/{ckpt,restart,crinfo} "$TOP"/build/helpers/{cr_target,cr_writer,cr_timed,cr_memcpy_bw} \
	"$ROOT/opt/cr/bin/"
install -m 755 "$TOP/selftests/bench/scenarios.sh" "$ROOT/opt/cr/bin/cr-bench-scenarios"

run=$(mktemp -d "${TMPDIR:-/tmp}/cr-bench.XXXXXX")
trap 'rm -rf "$run"' EXIT
log "booting the bench kernel ($kernel) with criu: $SCALE scale, $RUNS runs, tools: $TOOLS"
# The memory scenario needs the target, its image on tmpfs and the tool's own memory at once.
set +e
timeout 3000 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 6144 -smp 2 \
	-no-reboot -display none -monitor none -nodefaults \
	-kernel "$kernel" \
	-append "console=ttyS0 loglevel=5 panic=-1 root=/dev/root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=262144 rw init=/opt/cr/init BENCH_SCALE=$SCALE BENCH_RUNS=$RUNS BENCH_TOOLS=${TOOLS// /,}" \
	-fsdev local,id=root,path="$ROOT",security_model=passthrough \
	-device virtio-9p-pci,fsdev=root,mount_tag=/dev/root \
	-serial "file:$run/console.log" \
	-chardev stdio,id=out,signal=off \
	-device virtio-serial-pci,max_ports=1 -device virtconsole,chardev=out </dev/null 2>"$run/qemu.err" |
	awk -v exitfile="$run/rc" -v dmesgfile="$run/dmesg.log" -v raw="$OUT/raw.jsonl" '
		{ sub(/\r$/, "") }
		/^@@cr-dmesg-begin@@$/ { indmesg = 1; next }
		/^@@cr-dmesg-end@@$/ { indmesg = 0; next }
		indmesg { print > dmesgfile; next }
		/^@@cr-exit=[0-9]+@@$/ { gsub(/[^0-9]/, ""); print > exitfile; next }
		{ print > raw; fflush(raw) }'
status=("${PIPESTATUS[@]}")
set -e
cp "$run/console.log" "$OUT/console.log" 2>/dev/null || true
grep '^bench:' "$run/console.log" | grep -v ' run [0-9]*$' >&2 || true
if [[ ! -f $run/rc ]]; then
	log "the guest stopped without reporting (qemu: ${status[0]}); console tail:"
	tail -30 "$run/console.log" >&2
	exit 1
fi
splat='WARNING:|BUG:|Oops|KASAN:|kernel BUG|general protection fault|Call Trace:'
if grep -E -q "$splat" "$run/console.log" "$run/dmesg.log" 2>/dev/null; then
	log "the guest kernel log has a report:"
	grep -E -B5 -A30 "$splat" "$run/console.log" "$run/dmesg.log" | head -60 >&2
	exit 1
fi
"$TOP/tools/target/release/crbench" --machine "$(nproc) cores, $(uname -m), TCG guest" \
	--json "$OUT/results.json" --svg "$OUT/memory.svg" <"$OUT/raw.jsonl"
rc=$(cat "$run/rc")
((rc == 0)) || log "some runs failed (see above): the table counts only the good ones"
exit "$rc"
