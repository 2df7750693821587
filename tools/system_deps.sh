#!/usr/bin/env bash
# Install the Debian packages the live tests need when they are missing (CI runs as root).
# Usage: tools/system_deps.sh COMMAND=PACKAGE ...   e.g. redis-server=redis-server chromium=chromium
set -euo pipefail
missing=()
for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
echo "Installing ${missing[*]} from the distribution's packages ..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
