#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian 12 machine, and
# nothing that is already there. Run as root (or with sudo available).
set -euo pipefail
PGRX_VERSION=0.18.1
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

need=()
for pkg in postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "==> installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs '^pg15 = "/usr/bin/pg_config"' "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  echo "==> cargo pgrx init --pg15 /usr/bin/pg_config"
  cargo pgrx init --pg15 /usr/bin/pg_config
fi
