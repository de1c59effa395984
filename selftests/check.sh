#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: every test of cr, ending in one line "check: N passed, N failed, N skipped".
#
#   selftests/check.sh all             set-up, host tests, lint and the fuzz smoke run, while the
#                                      normal and the debug kernel each run the VM selftests and
#                                      KUnit, side by side (one vCPU each; the debug kernel's
#                                      suite in two VMs, half each; the debug kernel is built
#                                      after the normal one), then, on the normal kernel, the
#                                      live migration between two guests
#                                      (selftests/migrate.sh --check)
#   selftests/check.sh vm VARIANT [T]  one kernel's VM run only, of the selftests matching the
#                                      glob T (`make check T=cr_pipes`)
#   selftests/check.sh host            host side only
#   selftests/check.sh fuzz-smoke      the short fuzz run only
#
# Each part adds its counts; a part that cannot run at all counts as one failure, never a skip.
# A skip is counted only where a selftest says "# SKIP" (the machine lacks a feature).
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
export CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
FUZZ_RUNS=${FUZZ_RUNS:-300000}
LOG="$TOP/build/check"
mkdir -p "$LOG"
COUNTS="$LOG/counts"

note() { printf '\n=== %s\n' "$*"; }
# since: "at N s", the time since check.sh began, for the log to show where a run's time went.
BEGAN=$(date +%s)
since() { echo "at $(($(date +%s) - BEGAN)) s"; }
# count PASSED FAILED SKIPPED: adds to the totals (a file, since lanes run in subshells).
count() { echo "$1 $2 $3" >>"$COUNTS"; }
pass() { count 1 0 0; echo "PASS: $*"; }
fail() { count 0 1 0; echo "FAIL: $*"; }

# One named step: pass or fail on its exit status; the log is shown on failure.
step() {
	local name=$1 log="$LOG/$1.log"
	shift
	if "$@" >"$log" 2>&1; then
		pass "$name"
	else
		fail "$name (log: $log)"
		tail -30 "$log"
	fi
}

host_tests() {
	note "host: cargo test (format, forest rules, ABI mirror, crinfo, tools)"
	local log="$LOG/cargo-test.log" p f
	(cd tools && cargo test --workspace 2>&1) | tee "$log" | grep -E '^test .* FAILED|^test result'
	if ! grep -qE '^test result' "$log"; then
		fail "cargo test did not run (log: $log)"
		tail -30 "$log"
		return
	fi
	p=$(grep -E '^test result' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s += $1} END {print s + 0}')
	f=$(grep -E '^test result' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s += $1} END {print s + 0}')
	count "$p" "${f:-0}" 0

	note "host: lint (tools)"
	step tools-rustfmt sh -c 'cd tools && cargo fmt --check'
	step tools-clippy sh -c 'cd tools && cargo clippy -q --workspace --all-targets -- -D warnings'
}

# The module's lint needs a configured kernel tree: it runs in the normal kernel's lane.
module_lint() {
	note "host: lint (module)"
	step rustfmt make -s fmt-check
	step clippy sh -c 'out=$(make -s CLIPPY=1 module 2>&1); echo "$out"; ! echo "$out" | grep -E "^(warning|error)"'
}

fuzz_smoke() {
	note "host: fuzz the image parser and the record decoders, $FUZZ_RUNS runs each"
	if ! command -v cargo-fuzz >/dev/null; then
		fail "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
		return
	fi
	make -s tools >/dev/null 2>&1
	mkdir -p tools/fuzz/corpus/image_parser
	tools/target/x86_64-unknown-linux-gnu/release/examples/write-sample \
		tools/fuzz/corpus/image_parser/sample
	step fuzz-image-parser sh -c "cd tools/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run image_parser -- -runs=$FUZZ_RUNS"
	mkdir -p tools/fuzz/corpus/records
	step fuzz-records sh -c "cd tools/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run records -- -runs=$FUZZ_RUNS"
}

# vm_flags VARIANT: vm-run's flags for VARIANT's guests, in the caller's array flag. A debug
# guest gets 1 GiB: room for every debug test (their scale tests run smaller there), and each
# of kmemleak's two closing scans reads half the memory that 2 GiB had it read.
vm_flags() {
	flag=()
	[[ $1 == debug ]] && flag=(--debug --mem "${CR_DEBUG_MEM:-1024}")
}

# run_vm VARIANT LOG [GLOB...]: one VM of VARIANT runs the selftests matching GLOB (all without
# one) and counts the nested TAP: each indented ok / not ok / SKIP is one result, and a selftest
# that failed without a failing line of its own (a crash, a timeout) counts once more.
run_vm() {
	local variant=$1 log=$2 flag rc p f s crashed share short
	shift 2
	vm_flags "$variant"
	# A host directory at /mnt/share: images on a network filesystem (9p), for cr_netfs.sh.
	share=$(mktemp -d "$LOG/share.XXXXXX")
	tools/vm-run --no-build "${flag[@]}" --smp "${CR_VM_SMP:-1}" --timeout "${CR_VM_TIMEOUT:-3000}" \
		--share "$share" -- /usr/lib/cr/selftests/run_tests.sh "$@" >"$log" 2>&1
	rc=$?
	rm -rf "$share"
	grep -E '^(not )?ok |^    not ok|^    ok .*# SKIP|^    # ' "$log"
	p=$(grep -E '^    ok [0-9]+' "$log" | grep -cv '# SKIP')
	s=$(grep -cE '^    ok [0-9]+.*# SKIP' "$log")
	f=$(grep -cE '^    not ok [0-9]+' "$log")
	crashed=0
	while read -r name; do
		grep -A10000 "^# selftests: cr: $name\$" "$log" | sed -n '2,/^\(not \)\?ok /p' |
			grep -qE '^    not ok' || crashed=$((crashed + 1))
	done < <(grep -E '^not ok [0-9]+ selftests: cr: ' "$log" | sed -E 's/^not ok [0-9]+ selftests: cr: ([^ ]+).*/\1/')
	# A selftest whose results do not add up to its plan lost some (a redirect that swallowed a
	# TAP line, an early exit): one failure more, named.
	short=$(awk '
		/^# selftests: cr: / { name = $4; plan = -1; n = 0 }
		/^    1\.\.[0-9]+$/ { plan = substr($1, 4) + 0 }
		/^    (not )?ok [0-9]+/ { n++ }
		/^(not )?ok [0-9]+ selftests: cr: / { if (plan >= 0 && n != plan) print name " (" n " of " plan ")" }
	' "$log")
	if [[ -n $short ]]; then
		echo "FAIL: results missing from their plan on the $variant kernel: $(echo $short)"
		crashed=$((crashed + $(echo "$short" | wc -l)))
	fi
	count "$p" $((f + crashed)) "$s"
	if ((rc != 0 && f + crashed == 0)); then
		fail "vm-run on the $variant kernel exited $rc (log: $log)"
		tail -40 "$log"
	fi
	if ((p + f + s == 0 && rc == 0)); then
		fail "no selftest matched '$*' on the $variant kernel"
	fi
}

# two_guests VARIANT: the live migration between two guests (selftests/migrate.sh --check),
# each TAP line one result.
two_guests() {
	local variant=$1 log="$LOG/migrate-$1.log" flag p f
	vm_flags "$variant"
	selftests/migrate.sh --no-build --check "${flag[@]}" >"$log" 2>&1
	grep -E '^(not )?ok ' "$log" | sed "s/^/    two guests ($variant): /"
	p=$(grep -cE '^ok ' "$log")
	f=$(grep -cE '^not ok ' "$log")
	count "$p" "$f" 0
	if ((p + f == 0)); then
		fail "the two-guest migration on the $variant kernel did not run (log: $log)"
		tail -30 "$log"
	fi
}

# halves LOG...: the selftests in two lists of about equal time (by the times the logs of the
# last run give, or else selftests/debug-times, longest first, each to the lighter half), one
# per line. Under KASAN one VM would take most of the run while the other CPU idled.
halves() {
	local names
	names=$(cd selftests/cr && ls *.sh *.c | grep -v '\.inc$' | sed 's/\.c$//' | sort)
	cat selftests/debug-times "$@" 2>/dev/null | sed -n 's/^# \(.*\) took \([0-9]*\) s$/\1 \2/p' |
		awk -v names="$names" '
			BEGIN { n = split(names, all, "\n"); for (i = 1; i <= n; i++) t[all[i]] = 1 }
			$1 in t { t[$1] = $2 + 1 }
			END {
				for (i = 1; i <= n; i++) order[i] = all[i]
				for (i = 1; i <= n; i++)
					for (j = i + 1; j <= n; j++)
						if (t[order[j]] > t[order[i]]) { x = order[i]; order[i] = order[j]; order[j] = x }
				for (i = 1; i <= n; i++) {
					if (a <= b) { a += t[order[i]]; A = A " " order[i] }
					else { b += t[order[i]]; B = B " " order[i] }
				}
				print A; print B
			}'
}

# vm_tests VARIANT [GLOB...]: builds what the VM needs and runs the selftests in it. The whole
# suite on the debug kernel runs in two VMs at once, each with half of it.
vm_tests() {
	local variant=$1 log="$LOG/vm-$1.log" a b first
	shift
	note "vm ($variant kernel): kselftests and KUnit"
	if ! make -s vm-image KERNEL="$variant" >"$LOG/build-$variant.log" 2>&1; then
		fail "building the $variant kernel, module or image (log: $LOG/build-$variant.log)"
		tail -30 "$LOG/build-$variant.log"
		return
	fi
	echo "check: the $variant kernel, module and image are ready $(since)"
	[[ $variant == normal && $# -eq 0 ]] && module_lint
	if [[ $variant == debug && $# -eq 0 ]]; then
		{ read -r a; read -r b; } < <(halves "$LOG"/vm-debug*.log)
		run_vm debug "$log" $a >"$LOG/vm-debug-a.out" &
		# Kept now: run_vm's process substitutions change $! too.
		first=$!
		run_vm debug "$LOG/vm-debug-2.log" $b >"$LOG/vm-debug-b.out"
		wait "$first"
		cat "$LOG/vm-debug-a.out" "$LOG/vm-debug-b.out"
		# No two-guest step here: it would add a minute to the end of the longest lane, and
		# cr_migrate.sh already runs the module's migration paths under KASAN; what the two
		# guests add is the virtio link (`selftests/migrate.sh --debug` runs it).
		echo "check: the debug kernel's lane ended $(since)"
		return
	fi
	run_vm "$variant" "$log" "$@"
	if (($# == 0)); then
		echo "check: the $variant kernel's selftests ended $(since)"
		two_guests "$variant"
		echo "check: the $variant kernel's lane ended $(since)"
	fi
}

summary() {
	awk '{p += $1; f += $2; s += $3} END {printf "\ncheck: %d passed, %d failed, %d skipped\n", p, f, s; exit f > 0}' "$COUNTS"
}

rm -f "$COUNTS"
touch "$COUNTS"
case ${1:-all} in
host)
	host_tests
	module_lint
	;;
fuzz-smoke) fuzz_smoke ;;
vm)
	variant=${2:-normal}
	shift 2
	selftests/setup-host.sh demo || fail "host set-up"
	vm_tests "$variant" "$@"
	;;
all)
	selftests/setup-host.sh demo || fail "host set-up"
	echo "check: the host set-up ended $(since)"
	# The kernel lanes wait first on the toolchain chroot and the patched source (debootstrap,
	# apt and tar: minutes on a new machine, mostly I/O), the host tests and cargo-fuzz's
	# install build meanwhile. Then the normal kernel is built, and the debug one after it:
	# the normal kernel's suite runs in one VM, on one CPU, while the other builds the debug
	# kernel, whose suite then has both CPUs. Built side by side, with their four compilers on
	# two CPUs, the two kernels took 13 % longer than one after the other, and neither was
	# ready before both were (1250 s into an empty-cache run). A warm run builds nothing, and
	# the two lanes run side by side from the start.
	(
		if ! kernel/build.sh prepare >"$LOG/prepare.log" 2>&1; then
			fail "kernel toolchain or source (log: $LOG/prepare.log)"
			tail -20 "$LOG/prepare.log"
			exit 1
		fi
		echo "check: the toolchain and the kernel source are ready $(since)"
		if ! make -s selftests >"$LOG/build-selftests.log" 2>&1; then
			fail "selftests build (log: $LOG/build-selftests.log)"
			tail -20 "$LOG/build-selftests.log"
			exit 1
		fi
		vm_tests normal >"$LOG/lane-normal.out" 2>&1 &
		{
			# Waits on the normal kernel's build (build.sh locks each variant; a built one
			# returns at once), or builds it, whichever lane comes first.
			kernel/build.sh normal >/dev/null 2>&1
			vm_tests debug
		} >"$LOG/lane-debug.out" 2>&1 &
		wait
	) >"$LOG/lanes.out" 2>&1 &
	lanes=$!
	make -s tools >"$LOG/build-tools.log" 2>&1 || { fail "tools build (log: $LOG/build-tools.log)"; tail -20 "$LOG/build-tools.log"; }
	host_tests
	echo "check: the host tests ended $(since)"
	selftests/setup-host.sh fuzz >"$LOG/setup-fuzz.log" 2>&1 || { fail "installing cargo-fuzz (log: $LOG/setup-fuzz.log)"; tail -20 "$LOG/setup-fuzz.log"; }
	echo "check: cargo-fuzz is installed $(since)"
	fuzz_smoke
	echo "check: the fuzz smoke run ended $(since)"
	wait $lanes
	cat "$LOG/lanes.out" "$LOG/lane-normal.out" "$LOG/lane-debug.out"
	echo
	echo "check: took $(($(date +%s) - BEGAN)) s"
	;;
*) echo "usage: $0 all|host|fuzz-smoke|vm VARIANT [TEST...]" >&2; exit 2 ;;
esac

summary
