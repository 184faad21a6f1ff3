#!/usr/bin/env python3
"""The config file and MAILTAP_… variables (issue 11, "configuration like the tools people
know"), with the real binary: `mailtap proxy NAME` takes [upstream.NAME] of
$XDG_CONFIG_HOME/mailtap/config.toml and delivers through the private Gmail-style Postfix
(mailtap authenticating with the file's password or password-cmd); precedence flag >
environment > file; --print-config shows each value's source with secrets masked and runs no
command; a password in a file others can read is refused; an unknown name lists the names the
file defines; the tools read `db` from the file.

Every credential is random per run, so finding one in an output can only be a leak."""

import os
import re
import secrets
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import find_leaks, secret_forms, wait_ended  # noqa: E402

USER = "cf" + secrets.token_hex(4)
PASSWORD = "Pw#" + secrets.token_urlsafe(18) + ", with \"quotes\" and spaces"
TOML_PASSWORD = PASSWORD.replace("\\", "\\\\").replace('"', '\\"')


def toml(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class ConfigCase(h.IntegrationCase):
    with_postfix = True
    postfix_kwargs = {"users": {USER: PASSWORD}}

    def setUp(self):
        self.home = Path(self.tmp) / f"home-{self._testMethodName}"
        self.xdg = self.home / ".config"
        (self.xdg / "mailtap").mkdir(parents=True)
        self.config = self.xdg / "mailtap" / "config.toml"
        self.marker = self.home / "command-ran"

    def write_config(self, text: str, mode: int = 0o600, path: Path = None) -> Path:
        return h.write_config_file(path or self.config, text, mode)

    def overrides(self, **extra) -> dict:
        """Only this test's config and variables count, whatever the caller's environment
        (an empty variable counts as unset)."""
        env = {k: "" for k in os.environ
               if k.startswith("MAILTAP_") and k not in ("MAILTAP_BIN", "MAILTAP_TEST_DEBUG",
                                                          "MAILTAP_KEEP_TMP")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.xdg))
        env.update(extra)
        return env

    def env(self, **extra) -> dict:
        return {**os.environ, **self.overrides(**extra)}

    def named_upstream(self, name: str = "pf", *, secret: str = "password") -> str:
        """[upstream.NAME] for the private Postfix, authenticating as USER."""
        source = (f"password = {toml(PASSWORD)}\n" if secret == "password"
                  else f"password-cmd = {toml(secret)}\n")
        return (f"[upstream.{name}]\n"
                f"upstream = {toml(self.postfix.submission)}\n"
                f"ca-file = {toml(self.pki.ca_cert)}\n"
                f"tls-name = \"localhost\"\n"
                f"auth-user = {toml(USER)}\n" + source)

    def start(self, *args, upstream=None, env=None, **kw) -> h.Mailtap:
        """mailtap proxy ARGS with no --upstream/--ca-file/--tls-name of its own."""
        m = h.Mailtap(upstream, ca_file=None, tls_name=None, extra_args=list(args),
                      env=env if env is not None else self.overrides(), **kw)
        m.start()
        self.addCleanup(m.__exit__, None, None, None)
        return m

    def proxy(self, *args, env=None) -> subprocess.CompletedProcess:
        """mailtap proxy ARGS with stdin not a terminal (as under systemd)."""
        return subprocess.run([str(h.mailtap_bin()), "proxy", *args], capture_output=True,
                              text=True, timeout=30, env=env if env is not None else self.env(),
                              stdin=subprocess.DEVNULL)

    def send(self, m: h.Mailtap) -> None:
        tok = h.unique_token("cfg")
        msg = h.make_message(tok)
        self.assertEqual(h.smtplib_send(m.port, msg), {})
        self.assertDelivered(tok, msg)

    def assertUpstream(self, m: h.Mailtap, address: str):
        self.assertIn(f"-> {address} (starttls, verified)", m.ready_line)

    def assertNoPassword(self, what: str, *texts):
        blobs = {f"{what} {i}": (t if isinstance(t, bytes) else t.encode())
                 for i, t in enumerate(texts)}
        forbidden = {f"password form {i}": f for i, f in enumerate(secret_forms(PASSWORD.encode()))}
        forbidden["password as written"] = TOML_PASSWORD.encode()
        self.assertEqual(find_leaks(blobs, forbidden), [])


class NamedUpstreamTest(ConfigCase):
    def test_named_upstream_from_the_config_file_delivers(self):
        db = Path(self.tmp) / "named.db"
        self.write_config(f"db = {toml(db)}\n"
                          "[proxy]\n"
                          f"upstream = \"127.0.0.1:{h.closed_port()}\"  # the named table wins\n"
                          "transcript = true\n" + self.named_upstream("pf"))
        m = self.start("pf", db=db)
        self.assertUpstream(m, self.postfix.submission)
        self.send(m)
        [s] = wait_ended(db, 1)
        self.assertEqual(s["auth_user"], USER, "mailtap authenticated with the file's password")
        self.assertRegex(m.stdout, r"(?i)\] C: mail from:", "[proxy]'s transcript = true applies")
        pid = m.proc.pid
        self.assertNoPassword("mailtap", m.stderr, m.stdout,
                              Path(f"/proc/{pid}/cmdline").read_bytes(),
                              Path(f"/proc/{pid}/environ").read_bytes(),
                              *(p.read_bytes() for p in db.parent.glob("named.db*")))
        # The tools read the same top-level db from the file.
        cp = subprocess.run([str(h.mailtap_bin()), "sessions", "--json"], capture_output=True,
                            text=True, timeout=30, env=self.env())
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(USER, cp.stdout, "mailtap sessions reads db from the config file")

    def test_port_zero_listens_on_a_free_port_and_says_which(self):
        """Parallel CI jobs give --listen/--web port 0: the lines name the ports got, mail goes
        through the one named, and the session's record names it too."""
        db = Path(self.tmp) / "port0.db"
        self.write_config(f"db = {toml(db)}\n" + self.named_upstream("pf"))
        m = self.start("pf", "--web", "127.0.0.1:0", db=db, listen="127.0.0.1:0")
        listening = re.search(r"listening on 127\.0\.0\.1:(\d+) ", m.ready_line or m.stderr)
        web = re.search(r"web page at http://127\.0\.0\.1:(\d+)/", m.stderr)
        self.assertTrue(listening and web, m.stderr)
        self.assertNotIn("0", (listening.group(1), web.group(1)))
        m.port = int(listening.group(1))
        self.send(m)
        [s] = wait_ended(db, 1)
        self.assertIn(f"127.0.0.1:{m.port}", [s[k] for k in s.keys()],
                      "the record names the port got")

    def test_password_cmd_in_a_readable_file(self):
        pw_file = self.home / "pw"
        pw_file.write_text(PASSWORD + "\n")
        os.chmod(pw_file, 0o600)
        self.write_config(self.named_upstream("pf", secret=f"cat '{pw_file}'"), mode=0o644)
        m = self.start("pf")
        self.assertUpstream(m, self.postfix.submission)
        self.send(m)
        [s] = wait_ended(Path(m._tmp) / "mailtap.db", 1)
        self.assertEqual(s["auth_user"], USER)

    def test_unknown_name_lists_the_names(self):
        self.write_config(self.named_upstream("gmail") + self.named_upstream("m365"))
        cp = self.proxy("gmial")
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f'no upstream named "gmial" in {self.config}; it defines: gmail, m365',
                      cp.stderr)
        self.config.unlink()
        cp = self.proxy("gmail")
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn('no upstream named "gmail": there is no config file', cp.stderr)

    def test_an_empty_upstream_table_is_refused_at_its_line(self):
        """`[upstream.work]` with no key was taken, and `mailtap proxy work` then said the file
        had no upstream named "work" ("it defines: pf"), which it plainly has. A table without
        a single key names no server: the file is refused at the table's line, saying what it
        lacks, whichever upstream is asked for and with --print-config too."""
        text = (self.named_upstream("pf") + "\n[upstream.work]  # to be filled in\n\n"
                "[proxy]\ntranscript = true\n")
        self.write_config(text)
        line = text.splitlines().index("[upstream.work]  # to be filled in") + 1
        for args in (["work"], ["work", "--print-config"], ["pf"], []):
            with self.subTest(args=args):
                cp = self.proxy(*args, "--listen", f"127.0.0.1:{h.closed_port()}")
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"mailtap: {self.config}:{line}: [upstream.work] is empty, so it "
                              "names no server: give it upstream = \"HOST[:PORT]\" (or host = "
                              "\"HOST\"), or remove the table\n", cp.stderr)
                self.assertNotIn("no upstream named", cp.stderr)
                self.assertNotIn("listening on", cp.stderr)
        # A table given its keys by dotted names is not empty.
        self.write_config(f"[upstream]\nwork.upstream = {toml(self.postfix.submission)}\n")
        cp = self.proxy("work", "--print-config")
        self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_a_password_in_a_file_others_can_read_is_refused(self):
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                self.write_config(self.named_upstream("other") +
                                  "[upstream.pf]\nupstream = \"127.0.0.1:1\"\n", mode=mode)
                cp = self.proxy("pf", "--listen", f"127.0.0.1:{h.free_port()}")
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"chmod 600 {self.config}", cp.stderr)
                self.assertIn("password-cmd", cp.stderr)
                self.assertIn(f"mode {mode:04o}", cp.stderr)
                self.assertNoPassword("stderr", cp.stdout, cp.stderr)

    def test_a_file_others_can_change_is_refused_before_any_command_runs(self):
        """It chooses the commands mailtap runs: whoever can write it could run theirs."""
        cases = [(0o666, "every local user", f"chmod go-w {self.config}"),
                 (0o620, "the group", f"chmod go-w {self.config}"),
                 (0o600, "owned by uid 65534", f"chown $(id -un) {self.config}")]
        for mode, why, fix in cases:
            with self.subTest(mode=oct(mode), why=why):
                self.write_config(self.named_upstream("pf", secret=f"touch '{self.marker}'"),
                                  mode=mode)
                if why.startswith("owned"):
                    if os.geteuid() != 0:
                        self.skipTest("giving the file to another user needs root")
                    os.chown(self.config, 65534, 65534)
                for args in (["pf", "--print-config"], ["pf", "--listen",
                                                        f"127.0.0.1:{h.free_port()}"]):
                    cp = self.proxy(*args)
                    self.assertEqual(cp.returncode, 2, cp.stderr)
                    self.assertIn(f"config file {self.config}: ", cp.stderr)
                    self.assertIn(why, cp.stderr)
                    self.assertIn(fix, cp.stderr)
                    self.assertFalse(self.marker.exists(), "the file's password-cmd ran")
                cp = subprocess.run([str(h.mailtap_bin()), "sessions"], capture_output=True,
                                    text=True, timeout=30, env=self.env())
                self.assertEqual(cp.returncode, 2, "the tools refuse it too: " + cp.stderr)
                self.assertIn(fix, cp.stderr)

    def test_explicit_config_must_exist(self):
        cp = self.proxy("--config", str(self.home / "nope.toml"), "--print-config")
        self.assertEqual(cp.returncode, 2)
        self.assertIn("nope.toml", cp.stderr)
        cp = self.proxy("--print-config")  # the default file may be missing
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(f"# config file: none ({self.config} does not exist)", cp.stdout)


class PrecedenceTest(ConfigCase):
    def test_environment_beats_the_file(self):
        self.write_config(self.named_upstream("pf").replace(
            f"upstream = {toml(self.postfix.submission)}",
            f"upstream = \"127.0.0.1:{h.closed_port()}\""))
        m = self.start("pf", env=self.overrides(MAILTAP_UPSTREAM=self.postfix.submission))
        self.assertUpstream(m, self.postfix.submission)
        self.send(m)

    def test_flag_beats_the_environment(self):
        self.write_config(self.named_upstream("pf"))
        env = self.overrides(MAILTAP_UPSTREAM=f"127.0.0.1:{h.closed_port()}",
                             MAILTAP_AUTH_USER="nobody-from-env")
        m = self.start("pf", "--auth-user", USER, upstream=self.postfix.submission, env=env)
        self.assertUpstream(m, self.postfix.submission)
        self.send(m)
        [s] = wait_ended(Path(m._tmp) / "mailtap.db", 1)
        self.assertEqual(s["auth_user"], USER)

    def test_bad_value_in_the_environment_names_it(self):
        cp = self.proxy("--print-config", env=self.env(MAILTAP_TLS="sometimes"))
        self.assertEqual(cp.returncode, 2)
        self.assertIn("env MAILTAP_TLS: tls = sometimes", cp.stderr)

    def test_the_environment_is_refused_what_the_file_is(self):
        """A control character or bytes that are not UTF-8 in a MAILTAP_ variable are refused
        as in the file (exit status 2), by the proxy and the tools, without the value."""
        db = str(Path(self.tmp) / "env.db")
        cases = (("MAILTAP_EHLO_NAME", "vm\x1b[2Jx", "a control character (U+001B), which no "
                  "value can mean"),
                 ("MAILTAP_DB", db + "\x01", "a control character (U+0001), which no value can "
                  "mean"),
                 ("MAILTAP_AUTH_USER", "caf\udce9", "not valid UTF-8"))
        for name, value, why in cases:
            for command in (["proxy", "--print-config"], ["sessions"]):
                if command == ["sessions"] and name != "MAILTAP_DB":
                    continue
                with self.subTest(variable=name, command=command):
                    cp = subprocess.run([str(h.mailtap_bin()), *command], capture_output=True,
                                        timeout=30, env=self.env(**{name: value}),
                                        stdin=subprocess.DEVNULL)
                    err = cp.stderr.decode(errors="replace")
                    self.assertEqual(cp.returncode, 2, err)
                    self.assertIn(f"env {name}: {why}", err)
                    self.assertNotIn(b"\x1b", cp.stderr)
                    self.assertNotIn(b"\xe9", cp.stderr)
        self.assertFalse(Path(db + "\x01").exists())

    def test_a_control_character_typed_raw_in_the_file_is_refused_as_its_escape_is(self):
        """TOML lets a C1 control (U+0080..U+009F) stand raw in a string, where an editor
        shows nothing; `\\u009b` and MAILTAP_ variables were refused, the raw character taken.
        Refused the same (exit status 2), naming the file, line and key, never the value."""
        cases = (("ehlo-name = \"vm\u009b2Jx\"\n", "ehlo-name", "U+009B"),
                 ("[proxy]\ndb = 'rec\u0085.db'\n", "db in [proxy]", "U+0085"),
                 ("auth-user = me\u0080\n", "auth-user", "U+0080"))
        for text, key, code in cases:
            with self.subTest(key=key):
                config = self.write_config("# raw\n" + text)
                cp = self.proxy("--print-config")
                line = 2 + text.count("\n") - 1
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"config file {config}, line {line}: the value of {key} holds a "
                              f"control character ({code}), which no value can mean", cp.stderr)
                self.assertNotIn("\u009b", cp.stderr)
                self.assertNotIn("\u0085", cp.stderr)


    def test_tls_options_with_tls_none_are_refused_naming_their_source(self):
        """--tls none with --insecure, --ca-file or --tls-name: the option would be dropped in
        silence (whoever meant --tls starttls gets plain text), so the start is refused as
        --client-cert's is, and wherever each came from is named, so the user finds what to
        drop: the flag, a MAILTAP_ variable or a line of the file."""
        ca = str(self.pki.ca_cert)
        said = {"insecure": "--insecure has no effect with --tls none: without TLS there is no "
                            "certificate to verify, and the link is plain text; drop one of them",
                "ca-file": "--ca-file has no effect with --tls none: without TLS there is no "
                           "certificate to verify; drop one of them",
                "tls-name": "--tls-name has no effect with --tls none: without TLS no name is "
                            "sent or checked; drop one of them"}
        flags = {"insecure": ["--insecure"], "ca-file": ["--ca-file", ca],
                 "tls-name": ["--tls-name", "mx.example.test"]}
        file_values = {"insecure": "true", "ca-file": toml(ca), "tls-name": '"mx.example.test"'}
        env_values = {"insecure": "1", "ca-file": ca, "tls-name": "mx.example.test"}
        upstream = f"127.0.0.1:{h.closed_port()}"
        for key in said:
            variable = "MAILTAP_" + key.upper().replace("-", "_")
            cases = {
                "flags": (["--tls", "none", *flags[key]], {}, None),
                "option in the file": (["--tls", "none"], {}, f"[proxy]\n{key} = {file_values[key]}\n"),
                "option in the environment": (["--tls", "none"], {variable: env_values[key]}, None),
                "tls in the file": (flags[key], {}, '[proxy]\ntls = "none"\n'),
                "tls in the environment": (flags[key], {"MAILTAP_TLS": "none"}, None),
            }
            sources = {"flags": None,
                       "option in the file": f"(file {self.config}:2 [proxy])",
                       "option in the environment": f"(env {variable})",
                       "tls in the file": f"(--tls from file {self.config}:2 [proxy])",
                       "tls in the environment": "(--tls from env MAILTAP_TLS)"}
            for case, (args, env, config) in cases.items():
                with self.subTest(key=key, case=case):
                    self.write_config(config or "")
                    cp = self.proxy("--upstream", upstream, "--no-record", *args,
                                    env=self.env(**env))
                    self.assertEqual(cp.returncode, 2, cp.stderr)
                    self.assertIn(said[key], cp.stderr)
                    self.assertNotIn("listening on", cp.stderr)
                    if sources[case] is None:
                        self.assertNotRegex(cp.stderr, r"\((file|env) |from (file|env) ")
                    else:
                        self.assertIn(sources[case], cp.stderr)
                    # --print-config refuses what the start refuses.
                    cp = self.proxy("--upstream", upstream, "--no-record", "--print-config",
                                    *args, env=self.env(**env))
                    self.assertEqual(cp.returncode, 2, cp.stderr)
                    self.assertIn(said[key], cp.stderr)
        # probe takes the same options, and refuses the same.
        cp = subprocess.run([str(h.mailtap_bin()), "probe", upstream, "--tls", "none",
                             "--insecure"], capture_output=True, text=True, timeout=30,
                            env=self.env())
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(said["insecure"], cp.stderr)

    def test_a_misspelled_variable_is_warned_about_by_name_only(self):
        """MAILTAP_UPSTREM would leave the default upstream (smtp.gmail.com) without a word; a
        warning names it and the variable meant, never the value (it may be a secret)."""
        value = "s3cret-" + secrets.token_hex(4)
        env = self.env(MAILTAP_UPSTREM=value, MAILTAP_PASSWORD=value)
        for command in (["proxy", "--print-config"], ["sessions"]):
            with self.subTest(command=command):
                cp = subprocess.run([str(h.mailtap_bin()), *command], capture_output=True,
                                    text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
                self.assertIn("mailtap: warning: MAILTAP_UPSTREM is set, but mailtap reads no "
                              "such variable (did you mean MAILTAP_UPSTREAM?); ignored\n",
                              cp.stderr)
                self.assertIn("--password-env MAILTAP_PASSWORD reads it", cp.stderr)
                self.assertNotIn(value, cp.stderr + cp.stdout)
        cp = self.proxy("--print-config", env=self.env(MAILTAP_UPSTREAM="a.example:587"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertNotIn("warning", cp.stderr, "the harness's own variables are not passed on")


class PrintConfigTest(ConfigCase):
    def test_the_output_is_toml_and_names_are_read_as_toml_reads_them(self):
        """A TOML reader takes the whole output, whatever bytes a flag or the config's path
        holds; and [upstream.a.b] is what TOML makes of it, a table b inside [upstream.a], so
        mailtap refuses it rather than read it as the name "a.b" ([upstream."a.b"])."""
        self.assertEqual(tomllib.loads('[upstream.a.b]\nport = 1\n'),
                         {"upstream": {"a": {"b": {"port": 1}}}})
        self.assertEqual(tomllib.loads('[upstream."a.b"]\nport = 1\n'),
                         {"upstream": {"a.b": {"port": 1}}})
        odd = self.xdg / "mailtap" / "odd\nname\udcff.toml"
        self.write_config('[upstream."a.b"]\nupstream = "a.example:587"\n', path=odd)
        cp = subprocess.run([str(h.mailtap_bin()), "proxy", "a.b", "--print-config", "--config",
                             str(odd), "--auth-user", "caf\udce9\x1b]0;t\x07",
                             "--password-cmd", "pass\x01 caf\u00e9", "--tls-name", "xn--caf-dma.test"],
                            capture_output=True, timeout=30, env=self.env(),
                            stdin=subprocess.DEVNULL)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        out = cp.stdout.decode()  # UTF-8, or this raises
        settings = tomllib.loads(out)
        self.assertEqual(settings["upstream"], "a.example:587")
        self.assertEqual(settings["tls-name"], "xn--caf-dma.test")  # a name must be ASCII
        self.assertEqual(settings["password-cmd"], "pass\x01 caf\u00e9")
        self.assertNotIn("auth-user", settings, "no TOML string holds it: a comment")
        self.assertIn('\n# auth-user = "caf\\xe9\\x1b]0;t\\x07"', out)
        self.assertIn("the [upstream.\"a.b\"] table", out)
        self.assertRegex(out, r'\nupstream = "a\.example:587" +# file .*:2 \[upstream\."a\.b"\]\n',
                         "the source names the table as the file writes it")

        self.write_config('[upstream.a.b]\nupstream = "a.example:587"\n')
        cp = self.proxy("a.b", "--print-config")
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f"{self.config}, line 1: [upstream.a.b] is a table inside [upstream.a], "
                      "which mailtap has no use for; a name with a dot is quoted: "
                      "[upstream.\"a.b\"]", cp.stderr)

    def test_values_are_shown_as_they_were_given(self):
        """config.md: "a size as written (max-body = "64MiB") ... a number bare": a flag's size
        was shown as its octet count ("67108864"), a port from the file as a string."""
        self.write_config('[proxy]\nhost = "smtp.office365.com"\nport = 587\n')
        for given, env in ((["--max-body", "64MiB"], {}), ([], {"MAILTAP_MAX_BODY": "64MiB"}),
                           (["--max-body", "10M"], {})):
            with self.subTest(given=given, env=env):
                cp = self.proxy(*given, "--print-config", env=self.env(**env))
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertRegex(cp.stdout, rf'\nmax-body = "{given[1] if given else "64MiB"}" +# ')
                self.assertRegex(cp.stdout, r'\n# port = 587 +# file ')

    def test_sources_and_masked_secrets(self):
        self.write_config("[proxy]\n"
                          "timeout-command = \"10m\"\n"
                          f"oauth2-token-cmd = \"touch '{self.marker}'; echo tok\"\n"
                          "timeout-token-cmd = \"45s\"\n"
                          + self.named_upstream("pf"))
        cp = self.proxy("pf", "--print-config", "--listen", "127.0.0.1:2999",
                        env=self.env(MAILTAP_EHLO_NAME="from-env.test"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        out = cp.stdout
        lines = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line
                 and not line.startswith("#")}
        self.assertRegex(lines["listen"], r'^listen = "127\.0\.0\.1:2999" +# flag --listen$')
        self.assertRegex(lines["ehlo-name"], r'# env MAILTAP_EHLO_NAME$')
        self.assertIn(f'upstream = "{self.postfix.submission}"', lines["upstream"])
        self.assertRegex(lines["upstream"], rf'# file {self.config}:\d+ \[upstream\.pf\]$')
        self.assertRegex(lines["timeout-command"], rf'"10m" +# file {self.config}:2 \[proxy\]$')
        # A comment: pasted back into the file, the mask would become the password.
        self.assertRegex(out, r'(?m)^# password = "\*\*\*\*\*\*\*\*" +# file .*; not shown')
        self.assertRegex(lines["timeout-token-cmd"], rf'"45s" +# file {self.config}:4 \[proxy\]$')
        self.assertRegex(lines["grace"], r'"30s" +# default$')
        self.assertRegex(lines["tls"], r'"starttls" +# default \(port \d+\)$')
        self.assertIn(f"# config file: {self.config} (private to you)", out)
        self.assertIn("# upstream name: pf, the [upstream.pf] table", out)
        self.assertNoPassword("--print-config", cp.stdout, cp.stderr)
        self.assertFalse(self.marker.exists(), "--print-config ran the token command")

    def test_print_config_runs_no_password_command(self):
        self.write_config(self.named_upstream("pf", secret=f"touch '{self.marker}'; echo x"))
        cp = self.proxy("pf", "--print-config")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(f"password-cmd = \"touch '{self.marker}'; echo x\"", cp.stdout)
        self.assertFalse(self.marker.exists(), "--print-config ran the password command")
        # A --password-env flag makes the key irrelevant: still shown, as overridden, not as
        # "not set" (which would send the user looking for a key the file has).
        cp = self.proxy("pf", "--print-config", "--password-env", "PW", env=self.env(PW="x"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertRegex(cp.stdout, rf"\n# password-cmd = \"touch '{re.escape(str(self.marker))}'; "
                         rf"echo x\" +# file {re.escape(str(self.config))}:\d+ \[upstream\.pf\]; "
                         r"overridden by flag --password-env\n")
        self.assertFalse(self.marker.exists(), "--print-config ran the password command")

    def test_print_config_refuses_what_the_start_refuses(self):
        """docs/config.md: --print-config exits 2 (after printing) when the configuration would
        not start, with the start's reason. install.md has unit users check with it."""
        open_file = Path(self.tmp) / "pw-open"
        open_file.write_text("pw\n")
        open_file.chmod(0o644)
        db = Path(self.tmp) / "refused.db"
        empty = self.write_config('[proxy]\nauth-user = "u"\npassword = ""\n',
                                  path=self.home / "empty.toml")
        two_lines = self.write_config('[proxy]\nauth-user = "u"\npassword = "a\\nb"\n',
                                      path=self.home / "two-lines.toml")
        ehlo = self.write_config('[proxy]\nehlo-name = "caf\u00e9"\n',
                                 path=self.home / "ehlo.toml")
        web_port = h.closed_port()
        cases = {
            "--web with --no-record": (["--no-record", "--web", f"127.0.0.1:{web_port}"],
                                       "--web shows the record: it cannot go with --no-record"),
            "--web not on loopback": (["--db", str(db), "--web", f"0.0.0.0:{web_port}"],
                                      f"refusing to listen on 0.0.0.0:{web_port}"),
            "empty password in the file": (["--config", str(empty), "--no-record"],
                                           "the config file's password must be one non-empty line"),
            "two-line password in the file": (["--config", str(two_lines), "--no-record"],
                                              "the config file's password must be one non-empty "
                                              "line"),
            "password file open to others": (["--no-record", "--auth-user", "u", "--password-file",
                                              str(open_file)], "permissions 0644 are too open"),
            "password file missing": (["--no-record", "--auth-user", "u", "--password-file",
                                       str(Path(self.tmp) / "no-such-file")],
                                      "No such file or directory"),
            "no password source, no terminal": (["--no-record", "--auth-user", "u"],
                                                "--auth-user u needs a password"),
            "non-ASCII --ehlo-name": (["--no-record", "--ehlo-name", "m\u00fcller.example"],
                                      "--ehlo-name m\\xc3\\xbcller.example: expected a domain"),
            "non-ASCII ehlo-name in the file": (["--config", str(ehlo), "--no-record"],
                                                "--ehlo-name caf\\xc3\\xa9: expected a domain"),
        }
        for what, (args, reason) in cases.items():
            with self.subTest(what):
                args = ["--listen", f"127.0.0.1:{h.closed_port()}",
                        "--upstream", "127.0.0.1:1", *args]
                start = self.proxy(*args)
                self.assertEqual(start.returncode, 2, start.stderr)
                self.assertIn(reason, start.stderr)
                cp = self.proxy(*args, "--print-config")
                self.assertIn("# mailtap proxy: effective configuration", cp.stdout)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertEqual(cp.stderr, start.stderr)
        self.assertFalse(db.exists(), "--print-config opened the database")

    def test_web_on_the_listen_address_is_a_usage_error(self):
        """Not "Address already in use" (exit 1) after the start, as if another program held
        the port: both options are named, at start and by --print-config (exit 2)."""
        port = h.closed_port()
        db = Path(self.tmp) / "same.db"
        args = ["--db", str(db), "--upstream", "127.0.0.1:1", "--listen", f"127.0.0.1:{port}",
                "--web", f"localhost:{port}"]
        for extra in ([], ["--print-config"]):
            with self.subTest(extra=extra):
                cp = self.proxy(*args, *extra)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"--web localhost:{port} and --listen 127.0.0.1:{port} are the same "
                              "address", cp.stderr)

    def test_cli11_s_terse_refusals_say_what_was_meant(self):
        """CLI11 said "The following argument was not expected: --bogus" (no "unknown option",
        no suggestion, and for the proxy no hint that it takes one NAME), "--limit: 1 required
        N missing", and "id is required" where mock and replay say ID (docs/tools/README.md)."""
        cases = {
            ("sessions", "--lmit", "3"): "mailtap: sessions: unknown option --lmit (did you mean "
                                         "--limit?); mailtap sessions --help lists its options",
            ("sessions", "--bogus"): "mailtap: sessions: unknown option --bogus; mailtap sessions"
                                     " --help lists its options",
            ("proxy", "--lsiten", "x"): "mailtap: unknown option --lsiten (did you mean "
                                        "--listen?); mailtap proxy --help lists its options",
            ("proxy", "a", "b"): 'mailtap: unexpected argument "b": mailtap proxy takes one NAME'
                                 ' and options',
            ("show", "1", "2"): 'mailtap: show: unexpected argument "2": mailtap show takes one '
                                'ID and options',
            ("sessions", "x"): 'mailtap: sessions: unexpected argument "x": mailtap sessions '
                               'takes options only',
            ("sessions", "--limit"): "mailtap: sessions: --limit: a value is missing (--limit N)",
            ("show",): "mailtap: show: ID is required",
        }
        for args, said in cases.items():
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, text=True,
                                    timeout=30, env=self.env(), stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertEqual(cp.stderr, said + "\nRun with --help for more information.\n")

    def test_a_listen_port_in_use_says_what_to_do(self):
        """The proxy said only "Address already in use", where web and --web add what to do."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            cp = self.proxy("--config", "/dev/null", "--no-record", "--upstream", "127.0.0.1:1",
                            "--listen", f"127.0.0.1:{port}")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(f"mailtap: cannot listen on 127.0.0.1:{port}: Address already in use "
                      "(choose another ADDR:PORT)\n", cp.stderr)

    def test_a_zero_timeout_is_refused_saying_the_rule(self):
        """`--timeout-command 0s` was refused with "expected a duration such as 30s or 5m",
        which 0s is, while `--grace 0` was taken: the message now says the rule."""
        for option in ("--timeout-connect", "--timeout-command", "--timeout-data",
                       "--timeout-token-cmd"):
            with self.subTest(option=option):
                cp = self.proxy("--config", "/dev/null", option, "0s", "--print-config")
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"mailtap: {option} 0s: must be more than zero, such as 30s or 5m\n",
                              cp.stderr)
        self.write_config('[proxy]\ntimeout-data = "0"\n')
        cp = self.proxy("--print-config")
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f"--timeout-data 0: must be more than zero, such as 30s or 5m (file "
                      f"{self.config}:2 [proxy])", cp.stderr)
        for tool in (["probe", "127.0.0.1:1"], ["mock", "1"]):
            with self.subTest(tool=tool[0]):
                cp = subprocess.run([str(h.mailtap_bin()), *tool, "--timeout", "0"],
                                    capture_output=True, text=True, timeout=30, env=self.env())
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn("--timeout 0: must be more than zero", cp.stderr)
        cp = self.proxy("--config", "/dev/null", "--grace", "0", "--print-config")
        self.assertEqual(cp.returncode, 0, "--grace 0 ends the sessions at once: " + cp.stderr)
        self.assertRegex(cp.stdout, r'\ngrace = "0" +# flag --grace\n')

    def test_a_refused_configuration_still_shows_its_derived_defaults(self):
        """The defaults that follow from other values (tls from the port, tls-name and
        ehlo-name, the default db) were printed as "not set" when any check failed, e.g. the
        listen address: unlike the same output for a valid configuration."""
        self.write_config('[proxy]\nupstream = "smtp.example.test:465"\n')
        valid = self.proxy("--print-config")
        self.assertEqual(valid.returncode, 0, valid.stderr)
        refused = self.proxy("--print-config", "--listen", "0.0.0.0:2525")
        self.assertEqual(refused.returncode, 2, refused.stderr)
        self.assertIn("refusing to listen on 0.0.0.0:2525", refused.stderr)
        for line in ('tls = "implicit"', 'tls-name = "smtp.example.test"', "ehlo-name = ", "db = ",
                     "# no-record = false"):
            with self.subTest(line=line):
                self.assertRegex(valid.stdout, rf"\n{re.escape(line)}.*# default")
                self.assertRegex(refused.stdout, rf"\n{re.escape(line)}.*# default")
        def others(out: str) -> list:  # every line but listen's, alignment aside
            return [" ".join(line.split()) for line in out.splitlines()
                    if not line.startswith("listen = ")]
        self.assertEqual(others(valid.stdout), others(refused.stdout))

    def test_an_option_refused_while_parsing_says_mailtap_as_every_refusal_does(self):
        """`--max-body 5GiB` was refused as "--max-body: 5GiB: too large ..." while
        `--timeout-connect 169h` gave "mailtap: --timeout-connect 169h: too long ...": the
        refusals of the command-line parser now begin as mailtap's own, a tool's with its name."""
        for args, first_line in (
                (["proxy", "--max-body", "5GiB"],
                 "mailtap: --max-body: 5GiB: too large; the largest is 4GiB"),
                (["proxy", "--db", ""], "mailtap: --db: an empty path names no database: "),
                (["sessions", "--limit", "x"], "mailtap: sessions: --limit: not a number of "),
                (["proxy", "--timeout-connect", "169h", "--config", "/dev/null"],
                 "mailtap: --timeout-connect 169h: too long")):
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, text=True,
                                    timeout=30, env=self.env(), stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertTrue(cp.stderr.startswith(first_line), cp.stderr)

    def test_an_empty_db_is_refused(self):
        """`--db ""` or `db = ""` (a variable that expanded to nothing, a key left blank) is
        no path: taken for the default it would record where nobody meant to look. Refused as
        a configuration error (exit status 2) before anything is created."""
        default_db = self.home / ".local" / "share" / "mailtap" / "mailtap.db"
        top_level = self.write_config('db = ""\n', path=self.home / "top-level.toml")
        in_proxy = self.write_config('[proxy]\ndb = ""\n', path=self.home / "in-proxy.toml")
        cases = {
            "flag": (["--db", ""], "--db: "),
            "top-level key": (["--config", str(top_level)], f"file {top_level}:1: db = \"\": "),
            "[proxy] key": (["--config", str(in_proxy)], f"file {in_proxy}:2 [proxy]: db = \"\": "),
        }
        for what, (args, where) in cases.items():
            for print_config in ([], ["--print-config"]):
                with self.subTest(what, print_config=bool(print_config)):
                    cp = self.proxy("--listen", f"127.0.0.1:{h.closed_port()}",
                                    "--upstream", "127.0.0.1:1", *args, *print_config)
                    self.assertEqual(cp.returncode, 2, cp.stderr)
                    self.assertIn(where, cp.stderr)
                    self.assertIn("an empty path names no database", cp.stderr)
                    self.assertIn("--no-record", cp.stderr, "says what to do")
                    self.assertNotIn("listening on", cp.stderr)
                    self.assertFalse(default_db.parent.exists(), "recorded at the default")
        # The environment's empty MAILTAP_DB is unset, as every empty variable (docs/config.md).
        cp = self.proxy("--print-config", env=self.env(MAILTAP_DB=""))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(f'db = "{default_db}"', cp.stdout)

    def test_an_empty_value_after_the_equals_sign_is_the_empty_value(self):
        """`--db=` and `--config=` (`--db="$DB"` with DB unset) got the parser's own "1 required
        TEXT missing", and with an argument after them took it as the value: `show --db= 1`
        read the database "1". The empty value is refused as `--db ""` is."""
        cases = {
            ("proxy", "--print-config", "--db="): "mailtap: --db: an empty path names no database",
            ("proxy", "--db=", "--print-config"): "mailtap: --db: an empty path names no database",
            ("show", "--db=", "1"): "mailtap: show: --db: an empty path names no database",
            ("proxy", "--print-config", "--config="):
                "mailtap: --config: an empty path names no config file",
            ("sessions", "--config=", "--db", "x.db"):
                "mailtap: sessions: --config: an empty path names no config file",
            ("proxy", "--print-config", "--config", "/dev/null", "--upstream="):
                "mailtap: --upstream : expected HOST[:PORT]",
        }
        for args, refusal in cases.items():
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, text=True,
                                    timeout=30, env=self.env(), stdin=subprocess.DEVNULL,
                                    cwd=self.home)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertTrue(cp.stderr.startswith(refusal), cp.stderr)
                self.assertNotIn("required", cp.stderr)
                self.assertFalse((self.home / "1").exists())
        # A flag's `--NAME=` is still the flag parser's to read.
        cp = self.proxy("--print-config", "--no-record=")
        self.assertNotIn("an empty", cp.stderr)

    def test_control_characters_in_a_refused_argument_are_escaped_in_every_refusal(self):
        """Only the unknown-command message escaped an ESC it quoted: a bad number, an unknown
        option of a command, a path refused by the parser went to the terminal raw, so a pasted
        argument could recolour or retitle it. Every refusal escapes it the same way."""
        esc = "\x1b]0;owned\x07\x1b[31m"
        cases = (
            ["proxy", "--print-config", f"--max-sessions={esc}"],
            ["proxy", "--print-config", f"--no-such{esc}"],
            ["proxy", "--print-config", "--db", f"-{esc}"],
            ["proxy", "--print-config", "--config", "/dev/null", "--timeout-connect", f"5{esc}"],
            ["proxy", "--print-config", "--config", "/dev/null", "--listen", f"a{esc}:1"],
            ["proxy", "--print-config", "--config", str(self.home / f"{esc}.toml")],
            ["show", "1", "--config", str(self.home / f"{esc}.toml")],
            ["sessions", "--limit", esc],
            [f"sesions{esc}"],
            [f"--verison{esc}"],
        )
        for args in cases:
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, timeout=30,
                                    env=self.env(), stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertTrue(cp.stderr.startswith(b"mailtap: "), cp.stderr)
                self.assertNotIn(b"\x1b", cp.stderr)
                self.assertNotIn(b"\x07", cp.stderr)
                self.assertIn(b"\\x1b", cp.stderr, "shown escaped, as the unknown command is")

    def test_an_explicit_verbose_count_sets_the_level_that_each_v_adds_to(self):
        """`-v --verbose=2` ran at verbosity 3 while --print-config said 2: CLI11 added up every
        value (and `--verbose=false` was -1, quieter than no flag). Left to right, a bare -v adds
        one and a count sets it, for the run and --print-config alike (docs/config.md)."""
        cases = {("-v", "--verbose=2"): 2, ("--verbose=2", "-v"): 3, ("-vv",): 2,
                 ("-vvv", "--verbose=1"): 1, ("--verbose=false",): 0, ("-vv", "--verbose=0"): 0,
                 ("--verbose=true", "-v"): 2}
        for args, count in cases.items():
            with self.subTest(args=args):
                cp = self.proxy("--print-config", "--config", "/dev/null", "--no-record", *args)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertRegex(cp.stdout, rf"\nverbose = {count} +# flag ")
        cp = self.proxy("--print-config", "--config", "/dev/null", "--no-record",
                        env=self.env(MAILTAP_VERBOSE="2"))
        self.assertRegex(cp.stdout, r"\nverbose = 2 +# env MAILTAP_VERBOSE")
        # The level the run uses: a session's "connected, opening" line is -v's.
        for args, shown in ((("-vv", "--verbose=0"), False), (("--verbose=0", "-v"), True)):
            with self.subTest(run=args):
                m = self.start("--config", "/dev/null", "--tls", "none", *args,
                               upstream=f"127.0.0.1:{h.closed_port()}", record=False)
                with socket.create_connection(("127.0.0.1", m.port), timeout=10) as c:
                    self.assertTrue(c.recv(512).startswith(b"421"))
                # The session's last line (a refused session has no "ended" line): the -v line
                # comes before it, if at all.
                self.assertIn("refused: cannot connect", m.wait_stderr("refused: cannot connect"))
                self.assertEqual("connected, opening" in m.stderr, shown, m.stderr)

    def test_relative_paths_in_the_file_are_relative_to_its_directory(self):
        """The same file records to the same database from any current directory (a terminal
        in ~/src, the unit in ~), and --print-config shows where."""
        cfgdir = self.home / "cfgdir"
        cfgdir.mkdir()
        ca = cfgdir / "ca.pem"
        ca.write_bytes(Path(self.pki.ca_cert).read_bytes())
        config = self.write_config('db = "mail.db"\n[proxy]\nca-file = "ca.pem"\n',
                                   path=cfgdir / "config.toml")
        for cwd in ("/", str(cfgdir), str(self.home)):
            with self.subTest(cwd=cwd):
                cp = subprocess.run([str(h.mailtap_bin()), "proxy", "--config", "cfgdir/config.toml"
                                     if cwd == str(self.home) else str(config), "--print-config"],
                                    capture_output=True, text=True, timeout=30, env=self.env(),
                                    stdin=subprocess.DEVNULL, cwd=cwd)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertRegex(cp.stdout, rf'\ndb = "{cfgdir}/mail.db" +# file ')
                self.assertRegex(cp.stdout, rf'\nca-file = "{ca}" +# file ')
        cp = subprocess.run([str(h.mailtap_bin()), "proxy", "--print-config", "--db", "flag.db"],
                            capture_output=True, text=True, timeout=30, env=self.env(), cwd="/",
                            stdin=subprocess.DEVNULL)
        self.assertIn('\ndb = "flag.db"', cp.stdout, "a flag stays relative to the current directory")

    def test_typos_in_a_tools_table_are_refused_by_the_tool_too(self):
        """`[show] colr` and `[shwo]` were ignored by `mailtap show` while the proxy refused the
        file: each command checks its own table's keys, and an unknown table is refused by all."""
        # An unknown table is named at its header's line, and refused with no key under it too.
        cases = {'[show]\ncolr = "never"\n': (2, "unknown key colr in [show]; known keys: db, "
                                                  "color", None),
                 '# comment\n[shwo]\n\n\ncolor = "never"\n': (2, "unknown table [shwo]",
                                                           "unknown table [shwo]"),
                 'db = "/nonexistent/x.db"\n[shwo]\n': (2, "unknown table [shwo]",
                                                       "unknown table [shwo]")}
        for text, (line, tool_error, proxy_error) in cases.items():
            with self.subTest(text=text):
                self.write_config(text)
                cp = subprocess.run([str(h.mailtap_bin()), "show", "1"], capture_output=True,
                                    text=True, timeout=30, env=self.env())
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"mailtap: show: {self.config}:{line}: {tool_error}", cp.stderr)
                cp = self.proxy("--print-config")
                if proxy_error:
                    self.assertEqual(cp.returncode, 2, cp.stderr)
                    self.assertIn(f"{self.config}:{line}: {proxy_error}", cp.stderr)
                else:
                    self.assertEqual(cp.returncode, 0, "[show] is show's to check: " + cp.stderr)
        # Another command's table and the proxy's keys are not the tool's business.
        self.write_config('listen = "127.0.0.1:2600"\n[proxy]\ntls = "none"\n'
                          '[export]\ndb = "/nonexistent/x.db"\n[show]\ncolor = "never"\n')
        cp = subprocess.run([str(h.mailtap_bin()), "show", "1"], capture_output=True, text=True,
                            timeout=30, env=self.env(MAILTAP_DB=str(self.home / "none.db")))
        self.assertNotIn("unknown", cp.stderr)

    def test_an_empty_config_path_is_refused(self):
        """`--config "$TEST_CFG"` with the variable unset must not run against the user's
        real config (real upstream, real credentials): refused as `--db ""` is."""
        self.write_config(f"[proxy]\npassword-cmd = \"touch '{self.marker}'\"\n"
                          "auth-user = \"a@b\"\nupstream = \"127.0.0.1:1\"\n")
        for command in (["proxy", "--print-config"], ["proxy"], ["sessions"]):
            with self.subTest(command=command):
                cp = subprocess.run([str(h.mailtap_bin()), *command, "--config", ""],
                                    capture_output=True, text=True, timeout=30, env=self.env(),
                                    stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn("--config: an empty path names no config file: give a path, or "
                              "--config /dev/null for none", cp.stderr)
                self.assertNotIn("# config file", cp.stdout)
                self.assertFalse(self.marker.exists())

    def test_a_db_that_looks_like_an_option_is_refused(self):
        """`--db --print-config` would record to a file named --print-config, `sessions --db
        --json` read one named --json: a path starting with '-' is refused (exit 2), with how
        to write one that really does."""
        cwd = Path(self.tmp) / "cwd-dash-db"
        cwd.mkdir()
        runs = {
            "proxy": ["proxy", "--listen", f"127.0.0.1:{h.closed_port()}", "--upstream",
                      "127.0.0.1:1", "--db", "--print-config"],
            "sessions": ["sessions", "--db", "--json"],
        }
        for what, args in runs.items():
            with self.subTest(what):
                cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, text=True,
                                    timeout=30, env=self.env(), cwd=cwd,
                                    stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn("must be written ./-", cp.stderr)
                self.assertNotIn("listening on", cp.stderr)
                self.assertEqual(list(cwd.iterdir()), [], "a database was made")

    def test_an_upstream_that_is_no_host_is_refused_at_start_as_by_print_config(self):
        """`--upstream 'a b'` passed --print-config and started the proxy, which then failed
        every session on the lookup: now the start refuses it (exit status 2), and
        --print-config with the same words, from the one check of what a host is."""
        in_file = self.write_config('[proxy]\nhost = "a b"\n', path=self.home / "host.toml")
        cases = {
            "flag": (["--upstream", "a b"], {},
                     "mailtap: --upstream a b: expected HOST[:PORT]"),
            "flag with a port": (["--upstream", "smtp.example.test/x:587"], {},
                                 "mailtap: --upstream smtp.example.test/x:587: expected "
                                 "HOST[:PORT]"),
            "environment": ([], {"MAILTAP_UPSTREAM": "a\tb:587"},
                            "(env MAILTAP_UPSTREAM)"),
            # Empty labels: refused as --tls-name refuses them, which the host becomes.
            "two dots": (["--upstream", "a..b"], {},
                         "mailtap: --upstream a..b: expected HOST[:PORT]"),
            "only a dot": (["--upstream", ".:587"], {},
                           "mailtap: --upstream .:587: expected HOST[:PORT]"),
            "two dots at the end": (["--upstream", "mx.example.test..:587"], {},
                                    "mailtap: --upstream mx.example.test..:587: expected "
                                    "HOST[:PORT]"),
            "config file host": (["--config", str(in_file)], {},
                                 f"mailtap: file {in_file}:2 [proxy]: host must be a host name "
                                 "or an IP address"),
        }
        for what, (args, env, message) in cases.items():
            with self.subTest(what):
                args = ["--listen", f"127.0.0.1:{h.closed_port()}", "--no-record", *args]
                start = self.proxy(*args, env=self.env(**env))
                self.assertEqual(start.returncode, 2, start.stderr)
                self.assertIn(message, start.stderr)
                self.assertNotIn("listening on", start.stderr)
                cp = self.proxy(*args, "--print-config", env=self.env(**env))
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertEqual(cp.stderr, start.stderr)
        for good in ("smtp.example.test:587", "xn--bcher-kva.example:465", "[::1]:587",
                     "127.0.0.1:25", "my_host.lan", "mx.example.test.:587"):
            with self.subTest(good=good):
                cp = self.proxy("--config", "/dev/null", "--upstream", good, "--print-config")
                self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_the_data_timeout_gives_up_before_a_sender_that_waits_ten_minutes(self):
        """Postfix (smtp_data_done_timeout) and Exim (final_timeout) wait 10 minutes for the
        reply to the end of data, as RFC 5321 4.5.3.2 asks, and their clock starts before
        mailtap's: with mailtap's limit at 10m too, a relaying MTA always gave up first and
        never got mailtap's 421 "it may have the message". The proxy's default is 9m; replay,
        itself the sender, keeps the RFC's 10m."""
        cp = self.proxy("--config", "/dev/null", "--print-config")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertRegex(cp.stdout, r'\ntimeout-data = "9m" +# default\n')
        helps = {}
        for command in ("proxy", "replay"):
            helps[command] = subprocess.run([str(h.mailtap_bin()), command, "--help"],
                                            capture_output=True, text=True, timeout=30,
                                            env=self.env()).stdout
        self.assertRegex(helps["proxy"], r"--timeout-data TEXT=9m ")
        self.assertRegex(helps["replay"], r"--timeout-data TEXT=10m ")

    def test_an_unbracketed_ipv6_upstream_is_refused(self):
        """`--upstream ::1:2525` would be looked up as the host "::1:2525" on port 587: refused
        (exit status 2) with the bracketed forms, as probe and replay --to refuse it; and an
        IPv6 upstream is shown in brackets."""
        in_file = self.write_config('[proxy]\nupstream = "::1:2525"\n',
                                    path=self.home / "ipv6.toml")
        cases = {
            "flag": (["--upstream", "::1:2525"], "--upstream ::1:2525: "),
            "config file": (["--config", str(in_file)], f"(file {in_file}:2 [proxy])"),
        }
        for what, (args, where) in cases.items():
            with self.subTest(what):
                cp = self.proxy("--listen", f"127.0.0.1:{h.closed_port()}", "--no-record", *args)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(where, cp.stderr)
                self.assertIn("written in brackets: [::1]:2525", cp.stderr)
                self.assertNotIn("listening on", cp.stderr)
        port = h.closed_port()
        m = self.start("--tls", "implicit", upstream=f"[::1]:{port}", record=False)
        self.assertIn(f"-> [::1]:{port} (implicit", m.ready_line)


class DocumentedSampleTest(ConfigCase):
    with_postfix = False

    def test_the_print_config_sample_of_config_md_is_what_the_binary_prints(self):
        """docs/config.md's --print-config sample, run on its own config file: the same lines,
        once its home directory and host name are this test's (and the padding before each
        comment, which a longer path or name shifts, is left out)."""
        doc = (h.REPO_ROOT / "docs/config.md").read_text()
        intro = "With this `~/.config/mailtap/config.toml` (mode 0600):"
        config = re.search(re.escape(intro) + r"\n\n```toml\n(.*?)```", doc, re.S).group(1)
        sample = re.search(r"\n```\n\$ (MAILTAP_VERBOSE=1 mailtap proxy gmail [^\n]*)\n(.*?)```",
                           doc, re.S)
        self.write_config(config)
        args = sample.group(1).split()[3:]
        cp = self.proxy(*args, env={"PATH": os.environ["PATH"], "HOME": str(self.home),
                                    "MAILTAP_VERBOSE": "1"})
        self.assertEqual(cp.returncode, 0, cp.stderr)

        def lines(text: str) -> list:
            return [re.sub(r" +#", " #", line) for line in text.splitlines()]
        expected = (sample.group(2).replace("/home/alice", str(self.home))
                    .replace('ehlo-name = "vm"', f"ehlo-name = {toml(socket.gethostname())}"))
        self.assertEqual(lines(cp.stdout), lines(expected))


class ThreadsZeroTest(ConfigCase):
    with_postfix = False

    def test_zero_threads_is_one_per_core_and_says_so(self):
        """`--threads 0` (or MAILTAP_THREADS=0, threads = 0) starts one I/O thread per core, as
        leaving it out does: --help says so, and --print-config's line for it, which would
        otherwise read as no thread at all."""
        def line(*args, **env) -> str:
            cp = self.proxy("--config", "/dev/null", "--no-record", "--upstream",
                            "smtp.example.test:587", "--print-config", *args,
                            env=self.env(**env))
            self.assertEqual(cp.returncode, 0, cp.stderr)
            return next(x for x in cp.stdout.splitlines() if re.match(r"#? ?threads\b", x))
        self.assertRegex(line("--threads", "0"),
                         r"^threads = 0 +# flag --threads; 0: one per core$")
        self.assertRegex(line(MAILTAP_THREADS="0"),
                         r"^threads = 0 +# env MAILTAP_THREADS; 0: one per core$")
        self.assertRegex(line("--threads", "2"), r"^threads = 2 +# flag --threads$")
        self.assertEqual(line(), "# threads (not set: one per core)")
        self.assertIn("(default, or 0: one per core)", self.proxy("--help").stdout)


if __name__ == "__main__":
    h.main()
