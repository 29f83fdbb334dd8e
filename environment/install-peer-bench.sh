#!/usr/bin/env bash
# Installs what `roentgen bench --only peer-unet --peer-script ../shared/bench/peer-unet/bench.py` runs the PyTorch
# peer with: Debian's PyTorch (python3-torch, PyTorch 1.13) and the OpenMP OpenBLAS (libopenblas0-openmp; without it
# PyTorch falls back to a reference BLAS about 10x slower). Only the benchmark needs them, not the tests.
# Idempotent: does nothing where both are present. Exits non-zero when it cannot install.
set -eu

log() { echo "install-peer-bench: $*"; }

packages=""
if /usr/bin/python3 -c "import torch" 2>/dev/null; then log "python3-torch already installed"; else packages="python3-torch"; fi
if [ -d /usr/lib/x86_64-linux-gnu/openblas-openmp ]; then log "libopenblas0-openmp already installed"; else packages="$packages libopenblas0-openmp"; fi
[ -n "$packages" ] || exit 0

command -v apt-get >/dev/null 2>&1 || { echo "install-peer-bench: apt-get not found: install$packages yourself" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
log "installing$packages"
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $packages
