# SPDX-License-Identifier: GPL-2.0
#
# cr: build, test and demo entry points. `make help` lists them.
#
# The kernel toolchain (a Debian trixie chroot) and the kernel trees live under $(CR_CACHE),
# outside the work tree; everything else builds into build/ and tools/target/.

CR_CACHE ?= $(HOME)/.cache/cr
KERNEL ?= normal
export CR_CACHE

TOP := $(CURDIR)
BUILD := $(TOP)/build
TC := $(TOP)/kernel/toolchain.sh
KDIR_FILE := $(BUILD)/kernel-$(KERNEL).path
# The patched kernel source both variants build from; its tools/testing/selftests gives the
# selftests kselftest.h and ktap_helpers.sh.
SRC_FILE := $(BUILD)/kernel-src.path
export KSRC
MODULE_OUT := $(BUILD)/module/$(KERNEL)
HOST_TARGET := x86_64-unknown-linux-gnu
TOOLS_BIN := $(TOP)/tools/target/$(HOST_TARGET)/release
TOOLS := crinfo ckpt restart
SELFTEST_OUT := $(BUILD)/selftests
SELFTEST_C := $(wildcard selftests/cr/*.c)
SELFTEST_SH := $(wildcard selftests/cr/*.sh) $(wildcard selftests/cr/*.inc)
# `make check T=cr_pipes` (a glob) runs just the matching selftests on KERNEL.
T ?=
HELPER_C := $(wildcard selftests/helpers/*.c)
HELPER_OUT := $(BUILD)/helpers
VM_OUT := $(BUILD)/vm/$(KERNEL)
FUZZ_SECONDS ?= 600

.PHONY: all module kernel tools selftests vm-image check host-check demo demo-migrate bench fuzz fuzz-smoke \
	fmt fmt-check clean help FORCE

all: module

help:
	@echo "make              build cr.ko (make CLIPPY=1 lints it)"
	@echo "make kernel       build the test kernel (KERNEL=normal|debug|bench, KSRC=tree to use your own)"
	@echo "make check        host tests, fuzz smoke run, KUnit and kselftests in the VM (both kernels)"
	@echo "make check T=GLOB just the matching selftests, on KERNEL (default normal)"
	@echo "make demo         show what cr does today, in the VM"
	@echo "make demo-migrate move a counting program from one VM to another while it counts"
	@echo "make bench        cr against criu in one VM boot (BENCH_RUNS=3, BENCH_SCALE=full|small|memory|thawed|incremental)"
	@echo "make fuzz         fuzz the image parser and the record decoders, FUZZ_SECONDS each"
	@echo "make fmt          rustfmt the module and the tools"
	@echo "tools/vm-run -- CMD   run CMD in the VM with cr loaded"

kernel:
	@mkdir -p $(BUILD)
	@$(TOP)/kernel/build.sh $(KERNEL) > $(KDIR_FILE).tmp && mv $(KDIR_FILE).tmp $(KDIR_FILE)

# Rewritten only when the path changes, so that the selftests are not rebuilt for nothing; each
# make has its own temporary file, since both kernels' lanes of `make check` get here at once.
$(SRC_FILE): FORCE
	@mkdir -p $(BUILD)
	@t=$@.tmp.$$$$; $(TOP)/kernel/build.sh prepare >$$t && { cmp -s $$t $@ && rm $$t || mv $$t $@; }

# Kbuild tracks the module's own dependencies; MO= keeps one output tree per kernel variant.
module: kernel
	@$(TC) run make -s -C $$(cat $(KDIR_FILE)) LLVM=-19 M=$(TOP) MO=$(MODULE_OUT) \
		$(if $(CLIPPY),CLIPPY=1) modules

# Static binaries, so the VM needs no libraries.
tools:
	@cd tools && RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build -q --release --target $(HOST_TARGET) --bins --examples

selftests: $(patsubst selftests/cr/%.c,$(SELFTEST_OUT)/%,$(SELFTEST_C)) \
	$(patsubst selftests/helpers/%.c,$(HELPER_OUT)/%,$(HELPER_C))

$(HELPER_OUT)/%: selftests/helpers/%.c selftests/helpers/rounds.h selftests/helpers/self_checks.h \
		include/uapi/linux/cr.h
	@mkdir -p $(HELPER_OUT)
	@cc -static -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -I include/uapi -o $@ $<

$(SELFTEST_OUT)/%: selftests/cr/%.c selftests/cr/cr_ksft.h include/uapi/linux/cr.h $(SRC_FILE)
	@mkdir -p $(SELFTEST_OUT)
	@cc -static -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -I include/uapi \
		-I $$(cat $(SRC_FILE))/tools/testing/selftests -o $@ $<

# The guest's root file system: busybox, the module, the tools and the selftests; remade only
# when one of those changed.
vm-image: module tools selftests $(SRC_FILE)
	@mkdir -p $(VM_OUT)
	@selftests/make-image.sh $(VM_OUT) $(MODULE_OUT)/rust/cr.ko \
		$(if $(KSRC),$(KSRC),$$(cat $(KDIR_FILE)))/arch/x86/boot/bzImage \
		$$(cat $(SRC_FILE))/tools/testing/selftests $(TOOLS_BIN) $(HELPER_OUT) \
		$(patsubst selftests/cr/%.c,$(SELFTEST_OUT)/%,$(SELFTEST_C)) $(SELFTEST_SH) \
		selftests/run_tests.sh

host-check:
	@selftests/check.sh host

# The globs of T are the guest's to match, not the work tree's.
check:
	@set -f; selftests/check.sh $(if $(T),vm $(KERNEL) $(T),all)

fuzz-smoke:
	@selftests/check.sh fuzz-smoke

fuzz:
	@cd tools/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run image_parser -- -max_total_time=$(FUZZ_SECONDS)
	@cd tools/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run records -- -max_total_time=$(FUZZ_SECONDS)

demo:
	@selftests/setup-host.sh demo
	@selftests/demo.sh

demo-migrate:
	@selftests/setup-host.sh demo
	@selftests/migrate.sh

bench:
	@selftests/setup-host.sh demo
	@selftests/bench/run.sh

# The module follows the kernel's rustfmt settings, the tools cargo's defaults.
fmt: kernel
	@cd tools && cargo fmt
	@$(TC) run rustfmt --config-path $$(cat $(KDIR_FILE))/source/.rustfmt.toml rust/cr_main.rs

fmt-check: kernel
	@cd tools && cargo fmt --check
	@$(TC) run rustfmt --check --config-path $$(cat $(KDIR_FILE))/source/.rustfmt.toml rust/cr_main.rs

clean:
	rm -rf $(BUILD) tools/target tools/fuzz/target
