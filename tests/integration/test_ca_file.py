#!/usr/bin/env python3
"""A --ca-file that cannot be used (missing, a directory, no certificate in it) is a usage
error: `mailtap proxy`, `probe` and `replay` refuse it at start with exit status 2 and the
file's name and the reason, before anything listens, connects or reads the record; whether it
comes from the flag, MAILTAP_CA_FILE or the config file's ca-file (which the message names).
A systemd unit does not restart after exit status 2 (RestartPreventExitStatus=2)."""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class CaFileTest(h.IntegrationCase):
    def setUp(self):
        self.home = self.tmp / f"home-{self._testMethodName}"
        self.home.mkdir()
        self.directory = self.tmp / "a-directory"
        self.directory.mkdir(exist_ok=True)
        self.no_certificate = self.tmp / "no-certificate.pem"
        self.no_certificate.write_text("not a certificate\n")
        # path -> what the refusal says of it
        self.unusable = {
            self.tmp / "no-such-ca.pem": "No such file or directory",
            self.directory: "a directory, not a file",
            self.no_certificate: "no certificate in it",
        }

    def run_mailtap(self, *args, **env) -> subprocess.CompletedProcess:
        """mailtap ARGS with only this test's MAILTAP_ variables and no config file."""
        full = {k: v for k, v in os.environ.items()
                if not k.startswith("MAILTAP_") or k in ("MAILTAP_BIN", "MAILTAP_TEST_DEBUG")}
        full.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), **env)
        return subprocess.run([str(h.mailtap_bin()), *map(str, args)], capture_output=True,
                              text=True, timeout=30, env=full, stdin=subprocess.DEVNULL)

    def assertRefused(self, cp: subprocess.CompletedProcess, path: Path, reason: str):
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f"--ca-file {path}: {reason}", cp.stderr)
        self.assertNotIn("listening on", cp.stderr)

    def proxy_args(self, *args):
        return ["proxy", "--listen", f"127.0.0.1:{h.closed_port()}",
                "--upstream", f"127.0.0.1:{h.closed_port()}", "--no-record", *args]

    def test_the_proxy_refuses_it_at_start(self):
        for path, reason in self.unusable.items():
            for print_config in ([], ["--print-config"]):
                with self.subTest(path=path.name, print_config=bool(print_config)):
                    cp = self.run_mailtap(*self.proxy_args("--ca-file", path, *print_config))
                    self.assertRefused(cp, path, reason)
        # --insecure does not make a named file that is not there right.
        path = self.tmp / "no-such-ca.pem"
        cp = self.run_mailtap(*self.proxy_args("--ca-file", path, "--insecure"))
        self.assertRefused(cp, path, "No such file or directory")

    def test_the_environment_and_the_config_file_are_named(self):
        path = self.tmp / "no-such-ca.pem"
        cp = self.run_mailtap(*self.proxy_args(), MAILTAP_CA_FILE=str(path))
        self.assertRefused(cp, path, "No such file or directory")
        self.assertIn("(env MAILTAP_CA_FILE)", cp.stderr)

        config = self.home / "config.toml"
        h.write_config_file(config, f'[proxy]\nca-file = "{path}"\n')
        cp = self.run_mailtap(*self.proxy_args("--config", config))
        self.assertRefused(cp, path, "No such file or directory")
        self.assertIn(f"(file {config}:2 [proxy])", cp.stderr)

    def test_probe_and_replay_refuse_it_before_connecting(self):
        fake = self.fake("good")
        db = self.tmp / "no-record-here.db"
        for path, reason in self.unusable.items():
            with self.subTest("probe", path=path.name):
                cp = self.run_mailtap("probe", fake.address, "--ca-file", path)
                self.assertRefused(cp, path, reason)
            with self.subTest("replay", path=path.name):
                cp = self.run_mailtap("replay", "1", "--to", fake.address, "--ca-file", path,
                                      "--db", db)
                self.assertRefused(cp, path, reason)
                self.assertNotIn(str(db), cp.stderr, "read the record before the options")
        self.assertEqual(fake.sessions, [], "connected with a --ca-file it could not use")


if __name__ == "__main__":
    h.main()
