#!/usr/bin/env bash
# Installs the Debian packages that some tests use where they are missing:
#   chromium          headless chart rendering (tests/RoentGen.Tests/Interactive/ChartRenderingTests.cs)
#   chromium-driver   /usr/bin/chromedriver for the feedback page's browser test (tests/RoentGen.Tests/Feedback/FeedbackBrowserTests.cs)
#   python3-nbformat  Jupyter's official notebook validator (tests/RoentGen.Tests/Interactive/NbformatValidator.cs)
# Idempotent: does nothing where all are present. Never fails the caller: where it cannot install (no root,
# no sudo, no network, apt error) it prints a warning and exits 0, and those tests then report "skipped".
set -u

log()  { echo "install-test-packages: $*"; }
warn() { echo "install-test-packages: WARNING: $*" >&2; }

packages=""
have_chromium=""
for name in chromium chromium-browser google-chrome; do
  if path=$(command -v "$name" 2>/dev/null); then have_chromium="$path"; break; fi
done
if [ -n "$have_chromium" ]; then log "chromium already installed: $have_chromium"; else packages="chromium"; fi
if [ -x /usr/bin/chromedriver ]; then log "chromium-driver already installed: /usr/bin/chromedriver"; else packages="$packages chromium-driver"; fi
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import nbformat" 2>/dev/null; then
  log "python3-nbformat already installed"
else
  packages="$packages python3-nbformat"
fi
[ -n "$packages" ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  warn "apt-get not found (not a Debian-like system): install$packages yourself; the tests that need them will be skipped"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  warn "not root and no password-less sudo: cannot install$packages; the tests that need them will be skipped"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "running apt-get update"
if ! $SUDO apt-get update -q; then
  warn "apt-get update failed; the tests that need$packages will be skipped"
  exit 0
fi
log "running apt-get install -y --no-install-recommends$packages"
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $packages; then
  warn "apt-get install$packages failed; the tests that need them will be skipped"
  exit 0
fi
exit 0
