#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs what a fresh Debian 12 machine lacks for `make demo` and `make check`:
#
#   selftests/setup-host.sh demo    debootstrap (the toolchain chroot), QEMU, busybox-static and
#                                   cpio (the VM and its initramfs), libc6-dev (static helpers)
#   selftests/setup-host.sh fuzz    cargo-fuzz, for the fuzz smoke run (`make check` installs it
#                                   while the toolchain chroot is made: both take minutes)
#   selftests/setup-host.sh check   both
#
# Each is installed only when missing, so a warm machine pays a few `command -v` calls.
set -euo pipefail

want=${1:-check}
if [[ $want == fuzz ]]; then
	if ! command -v cargo-fuzz >/dev/null; then
		echo "setup: installing cargo-fuzz" >&2
		cargo install -q cargo-fuzz --locked
	fi
	exit 0
fi
pkgs=()
command -v debootstrap >/dev/null || pkgs+=(debootstrap)
command -v qemu-system-x86_64 >/dev/null || pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || pkgs+=(cpio)
[[ -x /bin/busybox ]] || pkgs+=(busybox-static)
[[ -e /usr/include/stdio.h ]] || pkgs+=(libc6-dev)
if ((${#pkgs[@]})); then
	if ((EUID != 0)); then
		echo "setup: missing ${pkgs[*]}; install them as root (apt-get install ${pkgs[*]})" >&2
		exit 1
	fi
	echo "setup: installing ${pkgs[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
[[ $want == check ]] && exec "$0" fuzz
exit 0
