#!/usr/bin/env bash
# A reproducible profile of mailtap's recording relay, for the two shapes issue 10 cares most
# about: one large message (32 MiB) and many small ones (4 KiB, one after another), and on
# request the NOOP round trip (10,000 NOOPs in one session, `--only noop`).
#
#   tests/bench/profile.sh [--tool auto|callgrind|perf|strace|heaptrack|all]
#                          [--only large|small|noop]
#                          [--out DIR]
#
# CPU: `perf record` when the machine has hardware counters (`perf stat -e instructions true`
# counts), otherwise valgrind's callgrind, whose instruction counts do not depend on the load
# of a shared machine (but see only user space). Kernel work: system calls counted by strace,
# per MiB or per message (counts, not times: they hold on a loaded machine too). Only the relay
# is profiled: the profilers switch on once the session is established (the load generator
# holds it after EHLO) and run until mailtap has exited, so the recorder's last commits and its
# final WAL checkpoint are included, the TLS handshake and start-up are not.
# Memory: heaptrack over the whole run (peak heap and who holds it).
#
# Environment: MAILTAP_BIN (profile a prebuilt binary), PROFILE_SIZE_MIB (default 32),
# PROFILE_SMALL_MESSAGES (default 1000), PROFILE_NOOPS (default 10000), RECORD_ARGS (default
# --max-body 1GiB; --no-record profiles the relay alone), BENCH_BUILD_DIR. Writes raw profiles and annotated text to DIR (default
# build-bench/profile) and prints the top of each.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD_DIR:-$repo/build-bench}
tool=auto
only="large small"
outdir=$build/profile
while [[ $# -gt 0 ]]; do
  case $1 in
    --tool) tool=$2; shift ;;
    --only) only=${2//,/ }; shift ;;
    --out) outdir=$2; shift ;;
    -h|--help) sed -n 2,23p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
size_mib=${PROFILE_SIZE_MIB:-32}
small_messages=${PROFILE_SMALL_MESSAGES:-1000}
noops=${PROFILE_NOOPS:-10000}
read -ra record_args <<<"${RECORD_ARGS:---max-body 1GiB}"

hardware_counters() { perf stat -x, -e instructions true 2>&1 >/dev/null | grep -q '^[0-9]'; }
case $tool in
  auto) if command -v perf >/dev/null && hardware_counters; then tools="perf strace heaptrack"; else tools="callgrind strace heaptrack"; fi ;;
  all) tools="callgrind perf strace heaptrack" ;;
  callgrind|perf|strace|heaptrack) tools=$tool ;;
  *) echo "unknown tool $tool" >&2; exit 2 ;;
esac
for t in $tools; do
  case $t in
    callgrind) need=(valgrind callgrind_annotate callgrind_control) ;;
    perf) need=(perf) ;;
    strace) need=(strace) ;;
    heaptrack) need=(heaptrack heaptrack_print) ;;
  esac
  for c in "${need[@]}"; do
    command -v "$c" >/dev/null || { echo "$c is not installed (apt-get install valgrind linux-perf strace heaptrack)" >&2; exit 1; }
  done
done

# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
pids=()
work=$(mktemp -d /tmp/mailtap-profile.XXXXXX)
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_build
[[ ${#binaries[@]} == 1 ]] || { echo "profile.sh takes one binary in MAILTAP_BIN" >&2; exit 2; }
mailtap=${binaries[0]#*=}
mkdir -p "$outdir"
start_sink "$work"
proxy_port=$(free_port)

load_args() {  # scenario
  case $1 in
    large) echo "--messages 1 --size $((size_mib << 20))" ;;
    small) echo "--messages $small_messages --size 4096" ;;
    noop) echo "--messages 0 --noops $noops" ;;
  esac
}

# The mailtap process being profiled (for heaptrack: the child of its wrapper script).
target_pid() {  # launcher pid tool
  if [[ $2 != heaptrack ]]; then echo "$1"; return; fi
  local child
  for _ in $(seq 100); do
    for child in $(ps -o pid= --ppid "$1"); do
      [[ $(readlink "/proc/$child/exe") == "$(readlink -f "$mailtap")" ]] && { echo "$child"; return; }
    done
    sleep 0.1
  done
  echo "heaptrack: no mailtap child of $1" >&2
  exit 1
}

profile_one() {  # tool scenario
  local t=$1 scenario=$2 db=$work/profile.db launcher pid perf_pid="" hold=$work/hold args
  local stem=$outdir/$t.$scenario
  rm -f "$db" "$db-wal" "$db-shm" "$hold" "$stem".*
  local proxy=("$mailtap" proxy --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$sink_port"
               --tls starttls --tls-name localhost --ca-file "$ca" --quiet "${record_args[@]}")
  # RECORD_ARGS=--no-record profiles the relay alone, for comparison.
  [[ " ${record_args[*]} " == *" --no-record "* ]] || proxy+=(--db "$db")
  case $t in
    callgrind)
      valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$stem.out" \
        "${proxy[@]}" 2>"$stem.log" & ;;
    heaptrack) heaptrack -o "$stem" "${proxy[@]}" >"$stem.log" 2>&1 & ;;
    perf|strace) "${proxy[@]}" 2>"$stem.log" & ;;
  esac
  launcher=$!
  pids+=("$launcher")
  wait_listening "$proxy_port" "$launcher" 60 || { echo "mailtap did not start under $t:" >&2; cat "$stem.log" >&2; exit 1; }
  pid=$(target_pid "$launcher" "$t")
  [[ $pid == "$launcher" ]] || pids+=("$pid")  # heaptrack's child: ours to end too

  echo "== $t: $scenario (mailtap pid $pid)" >&2
  read -ra args <<<"$(load_args "$scenario")"
  "$load" --port "$proxy_port" --pid "$pid" --label "$t-$scenario" --timeout 3600 \
    --hold-file "$hold" "${args[@]}" >"$stem.load.json" &
  local gen=$!
  pids+=("$gen")
  for _ in $(seq 600); do [[ -e $hold ]] || ! kill -0 "$gen" 2>/dev/null && break; sleep 0.1; done
  # The session is established: profile from here. callgrind takes the request when mailtap
  # next runs, which is when the held session moves again.
  case $t in
    callgrind) callgrind_control -i on "$pid" >/dev/null & local control=$! ;;
    perf)
      perf record -g --call-graph dwarf,16384 -F 999 -p "$pid" -o "$stem.data" 2>"$stem.perf.log" &
      perf_pid=$!
      sleep 1 ;;
    strace)
      # -p with the process id attaches to all its threads, -f to any made later.
      strace -f -c -o "$stem.txt" -p "$pid" 2>"$stem.strace.log" &
      perf_pid=$!
      sleep 1 ;;
  esac
  rm -f "$hold"
  wait "$gen" || echo "   load generator reported errors: $(cat "$stem.load.json")" >&2
  forget_pid "$gen"
  [[ $t == callgrind ]] && { wait "$control" || true; }

  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 3000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$launcher" 2>/dev/null || true
  forget_pid "$launcher"
  forget_pid "$pid"
  if [[ -n $perf_pid ]]; then
    [[ $t == perf ]] && { kill -INT "$perf_pid" 2>/dev/null || true; }  # strace ends with mailtap
    wait "$perf_pid" 2>/dev/null || true
  fi
  report_one "$t" "$scenario" "$stem"
}

# The inclusive listing keeps mailtap's own functions and the library calls they make.
inclusive_match='^(void )?mailtap::|^SSL_|^sqlite3[A-Za-z]*(Step|Exec|Checkpoint|Commit|Write|_step|_exec|_blob|_bind)|SHA256|^__?memcpy|^__memmove|^malloc|^free|^operator new|^(__libc_)?(write|read|send|recv|sendmsg|recvmsg|writev|pwrite64|fsync|fdatasync)$'
report_one() {  # tool scenario stem
  local t=$1 scenario=$2 stem=$3 per unit
  case $scenario in
    large) per=$size_mib unit=MiB ;;
    small) per=$small_messages unit=msg ;;
    noop) per=$noops unit=NOOP ;;
  esac
  echo
  echo "## $t, $scenario ($(load_args "$2"))"
  # Listings go to files first: a reader that stops early must not fail the script (pipefail).
  case $t in
    callgrind)
      callgrind_annotate --auto=no --inclusive=no --threshold=100 "$stem.out" >"$stem.self.txt"
      callgrind_annotate --auto=no --inclusive=yes --threshold=100 "$stem.out" >"$stem.inclusive.txt"
      callgrind_annotate --auto=no --inclusive=yes --tree=calling --threshold=99 "$stem.out" >"$stem.tree.txt"
      echo "### self cost by function (instructions)"
      python3 "$here/callgrind_top.py" "$stem.self.txt" --top 25 --per "$per" --unit "$unit"
      echo "### inclusive cost by function"
      python3 "$here/callgrind_top.py" "$stem.inclusive.txt" --inclusive --top 40 --per "$per" --unit "$unit" \
        --match "$inclusive_match" ;;
    perf)
      perf report -i "$stem.data" --no-children --stdio --percent-limit 1 >"$stem.self.txt" 2>/dev/null || true
      perf report -i "$stem.data" --children --stdio --percent-limit 2 -g none >"$stem.inclusive.txt" 2>/dev/null || true
      echo "### self"
      grep -E '^ +[0-9.]+%' "$stem.self.txt" >"$stem.top.txt" || true
      sed -n 1,25p "$stem.top.txt"
      echo "### inclusive"
      grep -E '^ +[0-9.]+%' "$stem.inclusive.txt" >"$stem.top.txt" || true
      sed -n 1,40p "$stem.top.txt" ;;
    strace)
      echo "### system calls (all threads, from the established session to exit)"
      awk -v per="$per" -v unit="$unit" 'NR > 2 && $1 ~ /^[0-9.]+$/ {
          calls = $4; errors = ($6 == "" ? 0 : $5); name = ($6 == "" ? $5 : $6)
          printf "%10d calls %8.1f/%s %7d errors  %s\n", calls, calls / per, unit, errors, name }' \
        "$stem.txt" | sort -nr ;;
    heaptrack)
      local data=""
      for data in "$stem.zst" "$stem.gz" ""; do [[ -e $data ]] && break; done
      [[ -n $data ]] || { echo "no heaptrack data for $stem" >&2; return 0; }
      heaptrack_print -f "$data" --print-peaks 1 --print-allocators 0 --print-temporary 0 \
        --print-leaks 0 -n 15 -s 5 >"$stem.txt" 2>/dev/null || true
      echo "### peak heap consumers (bytes held at the peak, by backtrace)"
      python3 "$here/heaptrack_top.py" "$stem.txt" --paths 15 ;;
  esac
  python3 - "$stem.load.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"(under the profiler: {r['messages_done']} messages, {r['errors']} errors "
      f"{r['first_error']}, peak RSS {r['proxy_peak_rss_kib'] / 1024:.1f} MiB)")
EOF
}

for t in $tools; do
  for scenario in $only; do
    profile_one "$t" "$scenario"
  done
done
stop_sink "$work"
echo
echo "Raw profiles and full annotations: $outdir"
