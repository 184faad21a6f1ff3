#!/usr/bin/env python3
"""cmake/bootstrap.sh's `run` and `test` share build/: whichever runs first must not decide for
the other through CMake's cache (a `test` after a `run` once configured build/ without tests,
ran none, and passed). Run on a copy of the sources, with the slow steps stubbed on PATH: the
packages count as installed, `cmake --build` writes a stand-in build/mailtap, ctest reports how
many tests the real `ctest -N` finds, clang-format and clang-tidy find nothing. Only CMake's
configure steps are real.

Needs cmake, ninja, the build's packages and clang (the fuzz tree's configure), as the test
command does."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
import harness as h  # noqa: E402  (its main(): exit 77 when every test was skipped)

SOURCE = Path(__file__).resolve().parent.parent.parent
KEEP = bool(os.environ.get("MAILTAP_KEEP_TMP"))

STUBS = {
    "dpkg-query": "printf 'install ok installed'\n",
    "clang-format": "exit 0\n",
    "run-clang-tidy": "exit 0\n",
    # The number of tests the real ctest would run here, one line per directory.
    "ctest": 'n=$("$REAL_CTEST" -N | sed -n "s/^Total Tests: //p")\n'
             'echo "$(basename "$PWD") ${n:-0}" >> "$STUB_LOG"\n',
    # A configure goes to the real cmake; a build only leaves a mailtap that says it ran.
    "cmake": 'if [ "$1" = --build ]; then\n'
             '  printf \'#!/bin/sh\\necho "mailtap $*"\\n\' > "$2/mailtap"\n'
             '  chmod +x "$2/mailtap"\n'
             '  exit 0\n'
             'fi\n'
             'exec "$REAL_CMAKE" "$@"\n',
}


def cache_entry(build: Path, name: str) -> str:
    text = (build / "CMakeCache.txt").read_text()
    m = re.search(rf"^{re.escape(name)}:\w+=(.*)$", text, re.M)
    return m.group(1) if m else "(unset)"


class BootstrapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in ("cmake", "ctest", "ninja", "clang++") if shutil.which(t) is None]
        if missing:
            raise unittest.SkipTest(f"not installed: {', '.join(missing)}")
        cls.tmp = Path(tempfile.mkdtemp(prefix="mailtap-bootstrap-"))
        if not KEEP:
            cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = cls.tmp / "src"
        top_level_builds = lambda d, names: [  # noqa: E731
            n for n in names if Path(d) == SOURCE and (n.startswith("build") or n == ".git")]
        shutil.copytree(SOURCE, cls.src, ignore=top_level_builds, symlinks=True)
        stubs = cls.tmp / "stubs"
        stubs.mkdir()
        for name, body in STUBS.items():
            path = stubs / name
            path.write_text("#!/bin/sh\n" + body)
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        cls.log = cls.tmp / "ctest.log"
        cls.env = dict(os.environ, PATH=f"{stubs}:{os.environ['PATH']}", STUB_LOG=str(cls.log),
                       REAL_CMAKE=shutil.which("cmake"), REAL_CTEST=shutil.which("ctest"))

    def bootstrap(self, *args: str) -> subprocess.CompletedProcess:
        cp = subprocess.run(["bash", str(self.src / "cmake/bootstrap.sh"), *args],
                            capture_output=True, text=True, env=self.env, timeout=600)
        self.assertEqual(cp.returncode, 0, f"bootstrap.sh {' '.join(args)}:\n"
                                           f"{cp.stdout}\n{cp.stderr}")
        return cp

    def test_run_then_test_then_run(self):
        build = self.src / "build"
        self.assertEqual(self.bootstrap("run", "--verbose").stdout, "mailtap proxy --verbose\n")
        self.assertEqual(cache_entry(build, "MAILTAP_TESTS"), "OFF")
        flags = cache_entry(build, "CMAKE_CXX_FLAGS_RELWITHDEBINFO")

        self.bootstrap("test")
        self.assertEqual(cache_entry(build, "MAILTAP_TESTS"), "ON")
        self.assertEqual(cache_entry(build, "CMAKE_CXX_FLAGS_RELWITHDEBINFO"), flags,
                         "the same flags, so that switching rebuilds only the tests")
        counts = dict(line.split() for line in self.log.read_text().splitlines())
        self.assertEqual(counts.keys(), {"build", "build-asan", "build-fuzz"}, counts)
        for tree, n in counts.items():
            self.assertGreater(int(n), 0, f"{tree} has no tests after a run: {counts}")

        self.assertEqual(self.bootstrap("run").stdout, "mailtap proxy\n")
        self.assertEqual(cache_entry(build, "MAILTAP_TESTS"), "OFF")
        self.assertEqual(cache_entry(build, "CMAKE_CXX_FLAGS_RELWITHDEBINFO"), flags)
        for option in ("MAILTAP_SANITIZE", "MAILTAP_FUZZ"):
            self.assertEqual(cache_entry(build, option), "OFF", option)


if __name__ == "__main__":
    h.main()
