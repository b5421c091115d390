#!/usr/bin/env bash
# promtool (Debian's `prometheus` package) for the alert rules' check in tests/deploy/.
# Idempotent: does nothing when promtool is on PATH. Needs root (or sudo) to install.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-promtool: no apt-get here; install Prometheus' promtool onto PATH" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
promtool --version
