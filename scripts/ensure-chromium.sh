#!/usr/bin/env bash
# Headless Chromium for the coordinator page's browser test (Debian's `chromium` package).
# Idempotent: does nothing when /usr/bin/chromium is there. Needs root (or sudo) to install.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get here; install Chromium so that /usr/bin/chromium exists" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
