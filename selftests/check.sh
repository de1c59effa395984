#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: every test of cr, ending in one line "check: N passed, N failed".
#
#   selftests/check.sh all         host tests, lint, fuzz smoke run, then the VM selftests and KUnit
#                                  on the normal and the debug kernel
#   selftests/check.sh host        host side only
#   selftests/check.sh fuzz-smoke  the short fuzz run only
#
# Each part adds its counts; a part that cannot run at all counts as one failure, never a skip.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
export CR_CACHE=${CR_CACHE:-$HOME/.cache/cr}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
LOG="$TOP/build/check"
mkdir -p "$LOG"
passed=0
failed=0

note() { printf '\n=== %s\n' "$*"; }
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

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
	note "host: cargo test (format, ABI mirror, crinfo)"
	local log="$LOG/cargo-test.log" p f
	(cd tools && cargo test --workspace 2>&1) | tee "$log" | grep -E '^test .* FAILED|^test result'
	p=$(grep -E '^test result' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s += $1} END {print s + 0}')
	f=$(grep -E '^test result' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s += $1} END {print s + 0}')
	if ! grep -qE '^test result' "$log"; then
		fail "cargo test did not run (log: $log)"
		tail -30 "$log"
		return
	fi
	passed=$((passed + p))
	failed=$((failed + ${f:-0}))

	note "host: lint"
	step rustfmt make -s fmt-check
	step clippy sh -c 'out=$(make -s CLIPPY=1 module 2>&1); echo "$out"; ! echo "$out" | grep -E "^(warning|error)"'
	step tools-clippy sh -c 'cd tools && cargo clippy -q --workspace --all-targets -- -D warnings'
}

fuzz_smoke() {
	note "host: fuzz the image parser for $FUZZ_RUNS runs"
	if ! command -v cargo-fuzz >/dev/null; then
		fail "cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
		return
	fi
	make -s tools >/dev/null 2>&1
	mkdir -p tools/fuzz/corpus/image_parser
	tools/target/x86_64-unknown-linux-gnu/release/examples/write-sample \
		tools/fuzz/corpus/image_parser/sample
	step fuzz-image-parser sh -c "cd tools/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run image_parser -- -runs=$FUZZ_RUNS"
}

# Runs the VM selftests on one kernel and counts the nested TAP: each indented ok / not ok is one
# result, and a test that failed without a failing line of its own (a crash) counts once more.
vm_tests() {
	local variant=$1 log="$LOG/vm-$1.log" flag=() rc p f crashed
	[[ $variant == debug ]] && flag=(--debug)
	note "vm ($variant kernel): kselftests and KUnit"
	if ! make -s vm-image KERNEL="$variant" >"$LOG/build-$variant.log" 2>&1; then
		fail "building the $variant kernel, module or image (log: $LOG/build-$variant.log)"
		tail -30 "$LOG/build-$variant.log"
		return
	fi
	tools/vm-run --no-build "${flag[@]}" --timeout 2400 -- /usr/lib/cr/selftests/run_tests.sh \
		>"$log" 2>&1
	rc=$?
	grep -E '^(not )?ok |^    not ok|^    # ' "$log"
	p=$(grep -cE '^    ok [0-9]+' "$log")
	f=$(grep -cE '^    not ok [0-9]+' "$log")
	crashed=0
	while read -r name; do
		grep -A10000 "^# selftests: cr: $name\$" "$log" | sed -n '2,/^\(not \)\?ok /p' |
			grep -qE '^    not ok' || crashed=$((crashed + 1))
	done < <(grep -E '^not ok [0-9]+ selftests: cr: ' "$log" | sed -E 's/^not ok [0-9]+ selftests: cr: ([^ ]+).*/\1/')
	passed=$((passed + p))
	failed=$((failed + f + crashed))
	if ((rc != 0 && f + crashed == 0)); then
		fail "vm-run on the $variant kernel exited $rc (log: $log)"
		tail -40 "$log"
	fi
}

case ${1:-all} in
host) host_tests ;;
fuzz-smoke) fuzz_smoke ;;
all)
	host_tests
	fuzz_smoke
	vm_tests normal
	vm_tests debug
	;;
*) echo "usage: $0 all|host|fuzz-smoke" >&2; exit 2 ;;
esac

echo
echo "check: $passed passed, $failed failed"
((failed == 0))
