#!/usr/bin/env bash
# Installs what the benchmark compares against: git http-backend behind nginx + fcgiwrap.
set -euo pipefail
if command -v nginx >/dev/null && command -v fcgiwrap >/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "bench: needs nginx and fcgiwrap; run as root or: apt-get install -y nginx fcgiwrap" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq nginx-light fcgiwrap >/dev/null 2>&1 || apt-get install -y -qq nginx fcgiwrap
