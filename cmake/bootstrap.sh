#!/usr/bin/env bash
# Installs what mailtap needs from Debian 12's packages, builds it, and then either runs the
# proxy or runs every test. Works as root or through sudo; installs only what is missing.
#
#   cmake/bootstrap.sh run [proxy options...]   build, then: build/mailtap proxy [options]
#   cmake/bootstrap.sh test                     build (plain, ASan+UBSan, libFuzzer) and test
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
[ $# -gt 0 ] && shift

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

build_packages=(cmake ninja-build g++ libasio-dev android-libboringssl-dev libcli11-dev
                libsqlite3-dev libcivetweb-dev ca-certificates)
# Real SMTP peers the integration tests start on loopback, plus the sanitizer/fuzzer toolchain.
test_packages=(libgtest-dev libgmock-dev clang libclang-rt-14-dev clang-format clang-tidy python3
               openssl sqlite3 postfix sasl2-bin libsasl2-modules libsasl2-modules-db swaks
               libnet-ssleay-perl curl netcat-openbsd telnet msmtp
               man-db systemd dpkg-dev file git lintian  # tests/install: man -l, systemd-analyze, cpack, versions from git
               chromium chromium-driver python3-selenium  # tests/integration/test_web_browser.py
               iproute2)  # test_local_users.py: a client in a network namespace of its own

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "bootstrap: installing ${missing[*]}"
  # Postfix is a test peer started privately by the tests: the system instance must not run.
  echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}

# `run` and `test` share build/, and CMake keeps a setting from one configure to the next: each
# gives every setting the other might have left, or the first to run would decide for both (a
# `test` after a `run` once built no tests and ran none, and passed). Both use the same flags,
# so switching between them builds or drops only the tests. The builds keep line tables only
# (-g1): what the sanitizers', gtest's and gdb's backtraces use. Full debug info made each
# compile about a quarter slower, and the sanitizer build at -O1 (ASan's own advice) compiles in
# half the time of -O2: on CI's two cores the two builds are most of the run.
plain_build=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DMAILTAP_SANITIZE=OFF
             -DMAILTAP_FUZZ=OFF)

# A stage's heading with the time the run has taken so far: CI's budget is read from these.
stage() { echo "== $* (at $((SECONDS / 60))m$((SECONDS % 60))s)"; }

configure_and_build() {  # dir, extra cmake args... (BUILD_TARGET: one target instead of all)
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$(nproc)" ${BUILD_TARGET:+--target "$BUILD_TARGET"}
}

case "$mode" in
  run)
    install_missing "${build_packages[@]}"
    configure_and_build build "${plain_build[@]}" -DMAILTAP_TESTS=OFF
    exec build/mailtap proxy "$@"
    ;;
  test)
    install_missing "${build_packages[@]}" "${test_packages[@]}"
    status=0
    stage "format check"
    # The sources themselves, not git's index: a tarball or a container has no git.
    find proxy storage tools tests -name '*.cpp' -o -name '*.hpp' | sort |
      xargs clang-format --dry-run -Werror || status=1

    stage "build and test (RelWithDebInfo)"
    configure_and_build build "${plain_build[@]}" -DMAILTAP_TESTS=ON
    (cd build && ctest --output-on-failure -j 2) || status=1

    stage "clang-tidy: function size and complexity (over build/compile_commands.json)"
    cmake/tidy.sh --gate build || status=1

    stage "build and test with AddressSanitizer + UndefinedBehaviorSanitizer"
    # clang builds this tree: under the sanitizers it compiles a file in about 60 % of gcc's time
    # (a unit test file: 22 s against 36), and a second compiler's warnings come with it.
    configure_and_build build-asan -DCMAKE_CXX_COMPILER=clang++ -DMAILTAP_SANITIZE=ON \
      -DMAILTAP_TESTS=ON -DMAILTAP_FUZZ=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2) || status=1

    stage "fuzz targets (libFuzzer, short runs over the seed corpora)"
    CC=clang CXX=clang++ BUILD_TARGET=fuzz_targets configure_and_build build-fuzz -DMAILTAP_FUZZ=ON -DMAILTAP_TESTS=OFF
    (cd build-fuzz && ctest --output-on-failure -j 2) || status=1
    stage "done, status $status"
    exit $status
    ;;
  *)
    echo "usage: cmake/bootstrap.sh run [proxy options] | test" >&2
    exit 2
    ;;
esac
