#!/usr/bin/env bash
# clang-tidy over mailtap's sources, with the settings in .clang-tidy. Needs a configured
# build/ (compile_commands.json). clang 14 only sees Asio's coroutine support when told so.
set -euo pipefail
cd "$(dirname "$0")/.."
run-clang-tidy -p build -quiet -j "$(nproc)" \
  -extra-arg=-DASIO_HAS_CO_AWAIT=1 -extra-arg=-DASIO_HAS_STD_COROUTINE=1 \
  "$PWD/(proxy|storage|tools)/" 2>&1 |
  sed 's/\x1b\[[0-9;]*m//g' | grep -E "^$PWD/.*(warning|error):" | sort -u || true
