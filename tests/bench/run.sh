#!/usr/bin/env bash
# Benchmarks mailtap against stunnel (client mode, protocol = smtp) through the same upstream
# sink and the same load, and prints one table per scenario with mailtap/stunnel ratios.
#
#   tests/bench/run.sh [--quick] [--only setup|throughput|sequential|concurrency] [--results FILE]
#
# --quick takes ~15 s once built (smaller counts, same shapes). Builds mailtap and the
# bench tools in build-bench (override with BENCH_BUILD_DIR; MAILTAP_BIN=path skips building
# mailtap). Needs stunnel4, openssl and python3 (PKI and table formatting only).
# Never run from ctest: timing on a shared machine is not a pass/fail property.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD_DIR:-$repo/build-bench}
quick=0
only=""
results=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1 ;;
    --only) only=$2; shift ;;
    --results) results=$2; shift ;;
    -h|--help) sed -n 2,9p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

command -v stunnel4 >/dev/null || { echo "stunnel4 is not installed (apt-get install stunnel4)" >&2; exit 1; }

echo "== building mailtap and the bench tools in $build" >&2
if [[ -z ${MAILTAP_BIN:-} ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j2 --target mailtap >/dev/null
fi
cmake -S "$here" -B "$build/bench-tools" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build/bench-tools" -j2 >/dev/null
mailtap=${MAILTAP_BIN:-$build/mailtap}  # MAILTAP_BIN: benchmark a prebuilt binary instead
sink=$build/bench-tools/mailtap_bench_sink
load=$build/bench-tools/mailtap_bench_load

# 500 sessions need ~1000 descriptors in the proxy alone.
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt 4096 ]]; then
  ulimit -n 4096 || { echo "need at least 4096 open files (ulimit -n)" >&2; exit 1; }
fi

load_before=$(cut -d" " -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/mailtap-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listening() {  # port pid
  for _ in $(seq 200); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

python3 -c "import sys; sys.path.insert(0, '$repo/tests/integration'); import harness; harness.make_pki('$work/pki')" >/dev/null
ca=$work/pki/ca.pem
sink_port=$(free_port)
proxy_port=$(free_port)

"$sink" --listen "127.0.0.1:$sink_port" --cert "$work/pki/server.pem" --key "$work/pki/server.key" \
  --threads 2 2>"$work/sink.log" &
sink_pid=$!
pids+=("$sink_pid")
wait_listening "$sink_port" "$sink_pid" || { cat "$work/sink.log" >&2; exit 1; }

cat >"$work/stunnel.conf" <<EOF
foreground = yes
pid =
debug = err
[smtp]
client = yes
accept = 127.0.0.1:$proxy_port
connect = 127.0.0.1:$sink_port
protocol = smtp
verifyChain = yes
CAfile = $ca
checkHost = localhost
; the same suite mailtap's BoringSSL picks, so both pay for the same cipher
ciphersuites = TLS_AES_128_GCM_SHA256
; mailtap sets TCP_NODELAY on both sockets; so does stunnel here
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
EOF

start_proxy() {  # name -> sets proxy_pid
  case $1 in
    mailtap-record)
      rm -f "$work"/mailtap.db*
      "$mailtap" proxy --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$sink_port" \
        --tls starttls --tls-name localhost --ca-file "$ca" --quiet --db "$work/mailtap.db" \
        2>"$work/proxy.log" & ;;
    mailtap-no-record)
      "$mailtap" proxy --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$sink_port" \
        --tls starttls --tls-name localhost --ca-file "$ca" --quiet --no-record \
        2>"$work/proxy.log" & ;;
    stunnel)
      stunnel4 "$work/stunnel.conf" 2>"$work/proxy.log" & ;;
  esac
  proxy_pid=$!
  wait_listening "$proxy_port" "$proxy_pid" || { echo "$1 did not start:" >&2; cat "$work/proxy.log" >&2; exit 1; }
}

stop_proxy() {
  kill -TERM "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
}

if [[ $quick == 1 ]]; then
  setup_args=(--connections 8 --sessions 300 --messages 0)
  throughput_args=(--connections 2 --sessions 2 --messages 2 --size $((10 << 20)))
  sequential_args=(--connections 1 --sessions 1 --messages 300 --size 4096)
  concurrency_args=(--connections 500 --sessions 500 --messages 1 --size 4096 --auth --hold)
else
  setup_args=(--connections 16 --sessions 3000 --messages 0)
  throughput_args=(--connections 2 --sessions 2 --messages 15 --size $((10 << 20)))
  sequential_args=(--connections 1 --sessions 1 --messages 2000 --size 4096)
  concurrency_args=(--connections 500 --sessions 500 --messages 2 --size 4096 --auth --hold)
fi

out=${results:-$work/results.jsonl}
: >"$out"
for scenario in setup throughput sequential concurrency; do
  [[ -n $only && $only != "$scenario" ]] && continue
  case $scenario in
    setup) args=("${setup_args[@]}") ;;
    throughput) args=("${throughput_args[@]}") ;;
    sequential) args=("${sequential_args[@]}") ;;
    concurrency) args=("${concurrency_args[@]}") ;;
  esac
  for proxy in mailtap-record mailtap-no-record stunnel; do
    echo "== $scenario: $proxy" >&2
    start_proxy "$proxy"
    line=$("$load" --port "$proxy_port" --pid "$proxy_pid" --label "$proxy" "${args[@]}") || true
    stop_proxy
    [[ -n $line ]] || { echo "load generator produced nothing" >&2; exit 1; }
    echo "{\"scenario\": \"$scenario\", ${line#\{}" >>"$out"
    if grep -q '"errors": [1-9]' <<<"$line"; then
      echo "   errors: $line" >&2
      tail -5 "$work/proxy.log" >&2
    fi
  done
done

kill -INT "$sink_pid" 2>/dev/null || true
wait "$sink_pid" 2>/dev/null || true
grep '^sink:' "$work/sink.log" | tail -1 >&2

echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "Load average before the run: $load_before (other work on the machine competes for the same cores)"
echo "Versions: mailtap $("$mailtap" --version 2>/dev/null | head -1), $(stunnel4 -version 2>&1 | grep -m1 '^stunnel')"
python3 "$here/report.py" "$out"
