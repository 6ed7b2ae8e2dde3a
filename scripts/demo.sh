#!/usr/bin/env bash
# The main job: installs what is missing (Debian, as root), builds, and
# starts the demo server on 127.0.0.1:${PORT:-8000}. Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
bash scripts/build.sh
exec bash scripts/lua-env.sh luajit examples/demo_server.lua
