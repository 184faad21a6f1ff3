# shellcheck shell=bash disable=SC2034,SC2154
# (it sets and reads variables of the script that sources it)
# Shared by run.sh and profile.sh (sourced, not run): building the tools and mailtap, the
# test PKI, ports, and the upstream sink. Expects `repo`, `here` and `build` to be set, and a
# `pids` array the caller's cleanup kills.

# Builds the bench tools and, unless MAILTAP_BIN names binaries, mailtap itself. Sets `sink`,
# `load` and `binaries` ("name=path" entries; one named "mailtap" when MAILTAP_BIN is a bare
# path or unset).
bench_build() {
  local entry
  binaries=()
  echo "== building the bench tools${MAILTAP_BIN:+ }${MAILTAP_BIN:- and mailtap} in $build" >&2
  if [[ -z ${MAILTAP_BIN:-} ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMAILTAP_TESTS=OFF >/dev/null
    cmake --build "$build" -j2 --target mailtap >/dev/null
    binaries=("mailtap=$build/mailtap")
  else
    for entry in $MAILTAP_BIN; do
      [[ $entry == *=* ]] || entry="mailtap=$entry"
      [[ -x ${entry#*=} ]] || { echo "MAILTAP_BIN: ${entry#*=} is not an executable" >&2; exit 1; }
      binaries+=("$entry")
    done
  fi
  cmake -S "$here" -B "$build/bench-tools" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build/bench-tools" -j2 >/dev/null
  sink=$build/bench-tools/mailtap_bench_sink
  load=$build/bench-tools/mailtap_bench_load
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_listening() {  # port pid [seconds]
  local tries=$(( ${3:-10} * 20 ))
  for _ in $(seq "$tries"); do
    [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# Ends every process in `pids`: SIGTERM, then SIGKILL for whatever is still there after 10 s
# (a recording proxy on the slow disk would otherwise drain its whole queue first).
stop_all() {
  local p alive
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

forget_pid() {  # pid: no longer ours to clean up
  local kept=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  pids=("${kept[@]}")
}

# Makes the test CA and a certificate for "localhost" in DIR/pki (the integration tests' PKI),
# and starts the STARTTLS sink on a free port. Sets `ca`, `sink_port`, `sink_pid`.
start_sink() {  # dir
  python3 -c "import sys; sys.path.insert(0, '$repo/tests/integration'); import harness; harness.make_pki('$1/pki')" >/dev/null
  ca=$1/pki/ca.pem
  sink_port=$(free_port)
  "$sink" --listen "127.0.0.1:$sink_port" --cert "$1/pki/server.pem" --key "$1/pki/server.key" \
    --threads 2 2>"$1/sink.log" &
  sink_pid=$!
  pids+=("$sink_pid")
  wait_listening "$sink_port" "$sink_pid" || { cat "$1/sink.log" >&2; exit 1; }
}

stop_sink() {  # dir: prints the sink's counters
  kill -INT "$sink_pid" 2>/dev/null || true
  wait "$sink_pid" 2>/dev/null || true
  forget_pid "$sink_pid"
  grep '^sink:' "$1/sink.log" | tail -1 >&2
}
