#!/usr/bin/env bash
# Installs Debian's chromium for the headless chart checks (tests/RoentGen.Tests/Interactive/ChartRenderingTests.cs).
# Idempotent: does nothing where a chromium is already on PATH. Never fails the caller: where it cannot
# install (no root, no sudo, no network, apt error) it prints a warning and exits 0, and the chart tests
# then report "skipped".
set -u

log()  { echo "install-chromium: $*"; }
warn() { echo "install-chromium: WARNING: $*" >&2; }

for name in chromium chromium-browser google-chrome; do
  if path=$(command -v "$name" 2>/dev/null); then
    log "already installed: $path ($("$path" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null 2>&1; then
  warn "apt-get not found (not a Debian-like system): install chromium yourself; chart tests will be skipped"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  warn "not root and no password-less sudo: cannot install chromium; chart tests will be skipped"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "running apt-get update"
if ! $SUDO apt-get update -q; then
  warn "apt-get update failed; chart tests will be skipped"
  exit 0
fi
log "running apt-get install -y --no-install-recommends chromium"
if ! $SUDO apt-get install -y -q --no-install-recommends chromium; then
  warn "apt-get install chromium failed; chart tests will be skipped"
  exit 0
fi

if path=$(command -v chromium 2>/dev/null); then
  log "installed: $path ($("$path" --version 2>/dev/null || echo 'version unknown'))"
else
  warn "apt-get reported success but chromium is not on PATH"
fi
exit 0
