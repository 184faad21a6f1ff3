#!/usr/bin/env bash
# Benchmarks mailtap against stunnel (client mode, protocol = smtp) and against a TLS client
# talking to the sink directly (the physical limit), through the same upstream sink and the
# same load, and prints one table per scenario and a summary of every ratio against stunnel.
#
#   tests/bench/run.sh [--quick] [--rounds N] [--only SCENARIO[,SCENARIO...]] [--results FILE]
#
# Scenarios: setup setup200 throughput throughput32 throughput256 sequential noop idle
#            concurrency slowdisk (all by default; see docs/benchmarks.md).
# Environment:
#   QUICK=1            tiny sizes and counts, to smoke-test the script (same as --quick)
#   ROUNDS=N           rounds per scenario, figures are medians (default 3; 1 with QUICK=1)
#   MAILTAP_BIN=PATH   benchmark a prebuilt binary instead of building one; several binaries
#                      side by side: MAILTAP_BIN="old=/path/a new=/path/b" (rows old-record ...)
#   PROXIES="record no-record stunnel direct"   which rows to run (default: all four)
#   RECORD_ARGS        extra mailtap flags when recording (default: --max-body 1GiB, so every
#                      body is recorded whole)
#   SLOW_DISK_MIBPS=N  write bandwidth of the throttled device (default 8)
#   SLOW_DISK_CACHE_KIB=N   dirty page cache the device may hold (default 1024)
#   IDLE_SETTLE_S=N    how long sessions idle before their RSS is read (default 2)
#   BENCH_BUILD_DIR    where mailtap and the tools are built (default build-bench)
#   BENCH_DIR=DIR      where the recording databases live (default /tmp); the "database disk"
#                      line times it. BENCH_DIR=/dev/shm takes the disk out of the recorded rows
# Needs stunnel4, openssl, python3 (PKI, database counts and tables: never on the measured
# path); slowdisk needs root, losetup, mkfs.ext4 and cgroup v1 blkio throttling.
# Never run from ctest: timing on a shared machine is not a pass/fail property.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD_DIR:-$repo/build-bench}
quick=${QUICK:-0}
rounds=${ROUNDS:-}
only=""
results=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --only) only=$2; shift ;;
    --results) results=$2; shift ;;
    -h|--help) sed -n 2,27p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $rounds ]] || { [[ $quick == 1 ]] && rounds=1 || rounds=3; }
all_scenarios="setup setup200 throughput throughput32 throughput256 sequential noop idle concurrency slowdisk"
scenarios=${only//,/ }
scenarios=${scenarios:-$all_scenarios}
for s in $scenarios; do
  [[ " $all_scenarios " == *" $s "* ]] || { echo "unknown scenario $s (have: $all_scenarios)" >&2; exit 2; }
done
proxies=${PROXIES:-record no-record stunnel direct}
read -ra record_args <<<"${RECORD_ARGS:---max-body 1GiB}"
slow_mibps=${SLOW_DISK_MIBPS:-8}
slow_cache_kib=${SLOW_DISK_CACHE_KIB:-1024}
idle_settle=${IDLE_SETTLE_S:-2}
[[ $quick == 1 ]] && idle_settle=${IDLE_SETTLE_S:-1}

command -v stunnel4 >/dev/null || { echo "stunnel4 is not installed (apt-get install stunnel4)" >&2; exit 1; }

# shellcheck source=tests/bench/lib.sh
source "$here/lib.sh"
bench_build  # mailtap binaries: "name=path" entries; the rows are NAME-record and NAME-no-record

# 1,000 idle sessions need ~2,000 descriptors in the proxy alone, and stunnel as many.
want_files=16384
hard_files=$(ulimit -Hn)
[[ $hard_files != unlimited && $hard_files -lt $want_files ]] && want_files=$hard_files
ulimit -n "$want_files" || true
(( $(ulimit -n) >= 4096 )) || { echo "need at least 4096 open files (ulimit -n)" >&2; exit 1; }

load_before=$(cut -d" " -f1-3 /proc/loadavg)
work=$(mktemp -d "${BENCH_DIR:-/tmp}/mailtap-bench.XXXXXX")
pids=()
slow_dev="" slow_img="" slow_mnt="" slow_majmin="" slow_saved_ratio="" slow_saved_strict=""
slow_disk_down() {
  [[ -n $slow_mnt ]] && mountpoint -q "$slow_mnt" && { umount "$slow_mnt" || true; }
  [[ -n $slow_dev ]] && { losetup -d "$slow_dev" || true; }
  [[ -n $slow_img ]] && rm -f "$slow_img"
  if [[ -n $slow_majmin ]]; then
    echo "$slow_majmin 0" >/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device 2>/dev/null || true
    local bdi=/sys/class/bdi/$slow_majmin
    [[ -n $slow_saved_strict ]] && { echo "$slow_saved_strict" >"$bdi/strict_limit" 2>/dev/null || true; }
    [[ -n $slow_saved_ratio ]] && { echo "$slow_saved_ratio" >"$bdi/max_ratio" 2>/dev/null || true; }
  fi
  slow_dev="" slow_img="" slow_mnt="" slow_majmin=""
}
cleanup() {
  stop_all
  slow_disk_down
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the throttled disk for "slowdisk" -----------------------------------------------------
# An ext4 file system on a loop device backed by a sparse file in /dev/shm (so the device itself
# is fast and only the throttle makes it slow). Two knobs make it a slow disk with a small
# write cache: blk-throttle in the root blkio cgroup limits every write to the device to
# SLOW_DISK_MIBPS, and the device's writeback limit (strict_limit + max_bytes) lets at most
# SLOW_DISK_CACHE_KIB of dirty pages pile up, after which write() itself waits for the device,
# as it does on a real slow disk once the cache is full.
slow_disk_up() {
  local throttle=/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device
  if [[ $(id -u) != 0 || ! -w $throttle ]] || ! command -v losetup >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
    echo "slowdisk: needs root, losetup, mkfs.ext4 and cgroup v1 blkio ($throttle); skipped" >&2
    return 1
  fi
  slow_img=$(mktemp /dev/shm/mailtap-bench-disk.XXXXXX)
  truncate -s 8G "$slow_img"
  slow_dev=$(losetup --find --show "$slow_img")
  mkfs.ext4 -q -F "$slow_dev"
  slow_mnt=$work/slowdisk
  mkdir -p "$slow_mnt"
  mount -o discard "$slow_dev" "$slow_mnt"
  slow_majmin=$(lsblk -dno MAJ:MIN "$slow_dev" | tr -d ' ')
  local bdi=/sys/class/bdi/$slow_majmin
  slow_saved_ratio=$(cat "$bdi/max_ratio")
  slow_saved_strict=$(cat "$bdi/strict_limit")
  echo 1 >"$bdi/strict_limit"
  if [[ -w $bdi/max_bytes ]]; then echo $((slow_cache_kib * 1024)) >"$bdi/max_bytes"; else echo 1 >"$bdi/max_ratio"; fi
  echo "$slow_majmin $((slow_mibps << 20))" >"$throttle"
  slow_disk_text="ext4 on $slow_dev (backed by $slow_img), writes throttled to $slow_mibps MiB/s, at most $slow_cache_kib KiB dirty"
  echo "== slow disk: $slow_disk_text" >&2
}

# ---- the database's disk: the ceiling of recorded throughput ------------------------------
# A recording proxy writes every relayed body octet to the file system of $work once (body
# files, O_DIRECT, synced before the commit that refers to them), so it cannot record faster
# than that file system writes. Measured the same way, before the scenarios.
disk_speed() {
  local probe=$work/disk-probe mib=$(( quick == 1 ? 32 : 256 )) flags=oflag=direct start end
  dd if=/dev/zero of="$probe" bs=1M count=1 $flags 2>/dev/null || flags=
  start=$(date +%s.%N)
  dd if=/dev/zero of="$probe" bs=1M count=$mib $flags conv=fdatasync 2>/dev/null
  end=$(date +%s.%N)
  rm -f "$probe"
  python3 -c "print(f'{$mib / ($end - $start):.0f}')"
}
disk_text="$(disk_speed) MiB/s ($(( quick == 1 ? 32 : 256 )) MiB of 1 MiB writes with O_DIRECT, then fdatasync, to $work): recorded throughput cannot exceed it"
echo "== database disk: $disk_text" >&2

start_sink "$work"
proxy_port=$(free_port)

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

# ---- proxies ----------------------------------------------------------------------------------
db=""
start_proxy() {  # label dbdir -> sets proxy_pid (0 for the direct row: no proxy)
  local label=$1 bin common
  proxy_pid=0
  case $label in
    direct-tls) return 0 ;;
    stunnel) stunnel4 "$work/stunnel.conf" 2>"$work/proxy.log" & ;;
    *)
      bin=$(binary_of "$label")
      # --max-sessions: the default (512) would refuse half of the 1,000 idle sessions with a
      # 421; stunnel has no such limit.
      common=(proxy --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$sink_port"
              --tls starttls --tls-name localhost --ca-file "$ca" --quiet --max-sessions 4096)
      if [[ $label == *-no-record ]]; then
        "$bin" "${common[@]}" --no-record 2>"$work/proxy.log" &
      else
        db=$2/mailtap.db
        rm -rf "$db" "$db-wal" "$db-shm" "$db-bodies"
        "$bin" "${common[@]}" --db "$db" "${record_args[@]}" 2>"$work/proxy.log" &
      fi ;;
  esac
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_listening "$proxy_port" "$proxy_pid" || { echo "$label did not start:" >&2; cat "$work/proxy.log" >&2; exit 1; }
}

stop_proxy() {
  [[ $proxy_pid == 0 ]] && return 0
  kill -TERM "$proxy_pid" 2>/dev/null || true
  # A recording proxy drains its queue before it exits; on a slow disk that takes a while.
  for _ in $(seq 1200); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$proxy_pid" 2>/dev/null; then
    echo "   proxy $proxy_pid still running 120 s after SIGTERM: killed" >&2
    kill -KILL "$proxy_pid" 2>/dev/null || true
  fi
  wait "$proxy_pid" 2>/dev/null || true
  forget_pid "$proxy_pid"
}

binary_of() {  # label -> path
  local entry name
  for entry in "${binaries[@]}"; do
    name=${entry%%=*}
    if [[ $1 == "$name-record" || $1 == "$name-no-record" ]]; then echo "${entry#*=}"; return; fi
  done
  echo "no binary for $1" >&2
  exit 1
}

labels_for() {  # scenario -> the rows to run, in the order they alternate within a round
  local scenario=$1 entry rows=()
  for entry in "${binaries[@]}"; do
    [[ " $proxies " == *" record "* ]] && rows+=("${entry%%=*}-record")
    [[ " $proxies " == *" no-record "* ]] && rows+=("${entry%%=*}-no-record")
  done
  [[ " $proxies " == *" stunnel "* ]] && rows+=(stunnel)
  # The direct client has no proxy whose memory, database or idle cost could be measured.
  case $scenario in
    setup|setup200|throughput|throughput32|throughput256|sequential|noop)
      [[ " $proxies " == *" direct "* ]] && rows+=(direct-tls) ;;
  esac
  echo "${rows[@]}"
}

# ---- what run.sh reads from /proc around the load generator ---------------------------------
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }  # pid, or pid/task/tid
# The same for the recorder's storage thread alone (named mailtap-record); 0 without one.
storage_ticks() {
  local task name total=0
  for task in /proc/"$1"/task/*; do
    read -r name <"$task/comm" 2>/dev/null || continue
    [[ $name == mailtap-record ]] || continue
    total=$((total + $(cpu_ticks "${task#/proc/}" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
disk_writes() { awk '/^write_bytes/ { w = $2 } /^cancelled_write_bytes/ { c = $2 } END { printf "%.0f\n", w - c }' "/proc/$1/io"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# After the client has its last reply the recorder may still be writing: wait until the proxy's
# CPU time and disk writes have not moved for 300 ms (at most 120 s).
wait_quiet() {  # pid
  local last="" now stable=0
  for _ in $(seq 1200); do
    now="$(cpu_ticks "$1") $(disk_writes "$1")"
    if [[ $now == "$last" ]]; then ((++stable >= 3)) && return 0; else stable=0; fi
    last=$now
    sleep 0.1
  done
}

db_counts() {  # db -> JSON fields: what the database holds after the proxy stopped
  python3 - "$1" <<'EOF'
import os, sqlite3, sys
path = sys.argv[1]
bodies = path + "-bodies"  # large bodies live in one file per session beside the database
size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
if os.path.isdir(bodies):
    size += sum(e.stat().st_size for e in os.scandir(bodies))
try:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sessions = db.execute("SELECT count(*) FROM sessions WHERE ended_at IS NOT NULL").fetchone()[0]
    messages, body = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM messages").fetchone()
    print(f'"db_bytes": {size}, "db_sessions_closed": {sessions}, "db_messages": {messages}, '
          f'"db_body_bytes": {body}')
except sqlite3.Error as e:
    print(f'"db_bytes": {size}, "db_error": "{str(e).replace(chr(34), chr(39))}"')
EOF
}

# ---- scenarios ----------------------------------------------------------------------------------
scenario_args() {  # scenario -> load generator arguments (full, or tiny with QUICK=1)
  local q=$quick
  case $1 in
    setup) ((q)) && echo "--connections 16 --sessions 200 --messages 0" \
                 || echo "--connections 16 --sessions 3000 --messages 0" ;;
    setup200) ((q)) && echo "--connections 200 --sessions 400 --messages 0" \
                    || echo "--connections 200 --sessions 4000 --messages 0" ;;
    throughput) ((q)) && echo "--connections 2 --sessions 2 --messages 1 --size $((1 << 20))" \
                      || echo "--connections 2 --sessions 2 --messages 15 --size $((10 << 20))" ;;
    throughput32) ((q)) && echo "--connections 1 --sessions 1 --messages 2 --size $((2 << 20))" \
                        || echo "--connections 1 --sessions 1 --messages 8 --size $((32 << 20))" ;;
    throughput256) ((q)) && echo "--connections 1 --sessions 1 --messages 1 --size $((8 << 20))" \
                         || echo "--connections 1 --sessions 1 --messages 2 --size $((256 << 20))" ;;
    sequential) ((q)) && echo "--connections 1 --sessions 1 --messages 200 --size 4096" \
                      || echo "--connections 1 --sessions 1 --messages 5000 --size 4096" ;;
    noop) ((q)) && echo "--connections 1 --sessions 1 --messages 0 --noops 1000" \
                || echo "--connections 1 --sessions 1 --messages 0 --noops 10000" ;;
    idle) ((q)) && echo "--connections 100 --sessions 100 --messages 0" \
                || echo "--connections 1000 --sessions 1000 --messages 0" ;;
    concurrency) ((q)) && echo "--connections 100 --sessions 100 --messages 1 --size 4096 --auth --hold" \
                       || echo "--connections 500 --sessions 500 --messages 2 --size 4096 --auth --hold" ;;
    # One large message: its body streams to the recorder, so the relay can run ahead of the
    # disk by the recorder's queue (8 MiB). Small messages would each wait for their commit
    # (committed before acknowledged) and go at the disk's pace from the first one.
    slowdisk) ((q)) && echo "--connections 1 --sessions 1 --messages 1 --size $((16 << 20)) --timeline-ms 100" \
                    || echo "--connections 1 --sessions 1 --messages 1 --size $((48 << 20)) --timeline-ms 100" ;;
  esac
}

out=${results:-$work/results.jsonl}
: >"$out"
slow_disk_text="not used"
if [[ " $scenarios " == *" slowdisk "* ]] && ! slow_disk_up; then
  scenarios=${scenarios/slowdisk/}
  slow_disk_text="unavailable (skipped)"
fi

run_one() {  # scenario round label
  local scenario=$1 round=$2 label=$3 args line extra="" dbdir=$work
  read -ra args <<<"$(scenario_args "$scenario")"
  [[ $scenario == slowdisk ]] && dbdir=$slow_mnt
  start_proxy "$label" "$dbdir"
  local target=(--port "$proxy_port" --pid "$proxy_pid")
  [[ $label == direct-tls ]] && target=(--port "$sink_port" --tls --ca-file "$ca" --tls-name localhost)
  local cpu0=0 io0=0 storage0=0
  if [[ $proxy_pid != 0 ]]; then
    cpu0=$(cpu_ticks "$proxy_pid"); io0=$(disk_writes "$proxy_pid")
    [[ $label == *-record && $label != *-no-record ]] && storage0=$(storage_ticks "$proxy_pid")
  fi

  if [[ $scenario == idle ]]; then
    # The generator holds every session open after EHLO until the hold file is deleted; the
    # proxy's RSS is read while they sit idle.
    local hold=$work/hold rss0 rss1 gen
    rm -f "$hold"
    rss0=$(rss_kib "$proxy_pid")
    "$load" "${target[@]}" --label "$label" "${args[@]}" --hold-file "$hold" >"$work/load.out" &
    gen=$!
    pids+=("$gen")
    for _ in $(seq 1200); do [[ -e $hold ]] || ! kill -0 "$gen" 2>/dev/null && break; sleep 0.1; done
    sleep "$idle_settle"
    rss1=$(rss_kib "$proxy_pid")
    rm -f "$hold"
    wait "$gen" || true
    forget_pid "$gen"
    line=$(cat "$work/load.out")
    extra="\"idle_rss_before_kib\": $rss0, \"idle_rss_kib\": $rss1, \"idle_settle_s\": $idle_settle, "
  else
    line=$("$load" "${target[@]}" --label "$label" "${args[@]}") || true
  fi

  if [[ $proxy_pid != 0 ]]; then
    wait_quiet "$proxy_pid"
    local hz cpu1 io1 storage1
    hz=$(getconf CLK_TCK)
    cpu1=$(cpu_ticks "$proxy_pid")
    io1=$(disk_writes "$proxy_pid")
    storage1=0
    [[ $label == *-record && $label != *-no-record ]] && storage1=$(storage_ticks "$proxy_pid")
    extra+="\"proxy_cpu_settled_s\": $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }'), "
    extra+="\"storage_cpu_settled_s\": $(awk -v a="$storage0" -v b="$storage1" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) / hz }'), "
    extra+="\"disk_write_bytes\": $((io1 - io0)), "
  fi
  stop_proxy
  if [[ $label == *-record && $label != *-no-record ]]; then
    extra+="$(db_counts "$db"), "
    rm -rf "$db" "$db-wal" "$db-shm" "$db-bodies"
  fi
  [[ -n $line ]] || { echo "load generator produced nothing" >&2; tail -5 "$work/proxy.log" >&2; exit 1; }
  echo "{\"scenario\": \"$scenario\", \"round\": $round, $extra${line#\{}" >>"$out"
  if grep -q '"errors": [1-9]' <<<"$line"; then
    echo "   errors: $(grep -o '"first_error": "[^"]*"' <<<"$line")" >&2
    tail -3 "$work/proxy.log" >&2
  fi
}

# Rounds are the outer loop and the rows alternate inside each scenario, so drift in the
# machine's load spreads over every row instead of favouring one.
for round in $(seq "$rounds"); do
  for scenario in $scenarios; do
    for label in $(labels_for "$scenario"); do
      echo "== round $round/$rounds: $scenario: $label" >&2
      run_one "$scenario" "$round" "$label"
    done
  done
done

stop_sink "$work"
slow_disk_down

load_after=$(cut -d" " -f1-3 /proc/loadavg)
versions=""
for entry in "${binaries[@]}"; do
  versions+="${entry%%=*}: $("${entry#*=}" --version 2>/dev/null | sed -n 1p) (${entry#*=}); "
done
# Readers that stop early (head, grep -m1) let the writer die of SIGPIPE: exit 141 under pipefail.
versions+=$(stunnel4 -version 2>&1 | awk '/^stunnel/ && !seen++')
[[ $quick == 1 ]] && mode_text="QUICK=1 (tiny sizes: a smoke test, not numbers)" || mode_text="full"
BENCH_MACHINE="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)" \
BENCH_VERSIONS=$versions BENCH_MODE="$mode_text, $rounds round(s)" \
BENCH_LOAD_BEFORE="$load_before (1, 5, 15 min; other work on the machine competes for the same cores)" \
BENCH_LOAD_AFTER=$load_after BENCH_SLOW_DISK=$slow_disk_text BENCH_DATABASE_DISK=$disk_text \
python3 - "$out" <<'EOF'
import json, os, sys
keys = ("machine", "versions", "mode", "load_before", "load_after", "slow_disk", "database_disk")
meta = {k: os.environ["BENCH_" + k.upper()] for k in keys}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"meta": meta}) + "\n")
EOF
echo
python3 "$here/report.py" "$out"
