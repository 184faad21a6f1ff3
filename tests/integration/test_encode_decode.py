#!/usr/bin/env python3
"""`mailtap encode` and `mailtap decode` (issue 8): the lines encode prints, typed as a person
would through a running `mailtap proxy`, authenticate against the private Gmail-like Postfix and a
message is delivered; decode explains what encode printed and what the server prompted; no secret
reaches mailtap's stderr, its database and WAL, the transcript, or a process's command line.

The credentials are random per run, so a hit in a scan can only be a leak."""

import base64
import os
import pty
import secrets
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import find_leaks, mailtap_files, query, secret_forms, wait_ended  # noqa: E402

USER = "enc" + secrets.token_hex(4)
PASSWORD = "Pw-" + secrets.token_urlsafe(18)
ENV = "MAILTAP_TEST_SECRET"


def b64(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


def forbidden() -> dict:
    out = {f"password form {i}": f for i, f in enumerate(secret_forms(PASSWORD.encode()))}
    out["PLAIN blob"] = b64(f"\0{USER}\0{PASSWORD}").encode()
    out["LOGIN password"] = b64(PASSWORD).encode()
    return out


class EncodeDecodeTest(h.IntegrationCase):
    with_postfix = True
    postfix_kwargs = {"users": {USER: PASSWORD, "alice": h.USERS["alice"]}}

    # --- helpers ---------------------------------------------------------------------------
    def encode(self, *args, env=None, check=True) -> subprocess.CompletedProcess:
        e = dict(os.environ)
        e.pop(ENV, None)
        e.update(env or {})
        cp = subprocess.run([str(h.mailtap_bin()), "encode", *args], capture_output=True,
                            env=e, timeout=30)
        if check:
            self.assertProcOk(cp, "mailtap encode")
        return cp

    def decode(self, *args, stdin: bytes = b"") -> str:
        cp = subprocess.run([str(h.mailtap_bin()), "decode", *args], input=stdin,
                            capture_output=True, timeout=30)
        self.assertProcOk(cp, "mailtap decode")
        return cp.stdout.decode()

    def proxy(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--transcript", "-vv"])
        self.cmdline_seen = Path(f"/proc/{m.proc.pid}/cmdline").read_bytes()
        return m

    def deliver(self, typist, token: str) -> bytes:
        msg = h.make_message(token, to_addr="alice@example.test")
        self.assertEqual(typist(b"MAIL FROM:<sender@client.test>").code, 250)
        self.assertEqual(typist(b"RCPT TO:<alice@example.test>").code, 250)
        self.assertEqual(typist(b"DATA").code, 354)
        return msg

    def assert_no_leaks(self, m, extra: dict = None):
        db = Path(m._tmp) / "mailtap.db"
        wait_ended(db, 1)
        blobs = {name: data for name, data in mailtap_files(db).items()}
        self.assertIn("mailtap.db-wal", blobs, "the WAL is scanned while mailtap runs")
        blobs["stderr"] = m.stderr.encode()
        blobs["transcript"] = m.stdout.encode()
        blobs["/proc/PID/cmdline"] = self.cmdline_seen
        blobs.update(extra or {})
        self.assertIn("<redacted", m.stdout, "the AUTH exchange is in the scanned transcript")
        self.assertEqual(find_leaks(blobs, forbidden()), [])
        users = {r["auth_user"] for r in query(db, "SELECT auth_user FROM sessions")}
        self.assertEqual(users, {USER}, "recorded as the user who authenticated")

    # --- encode -> proxy -> Postfix --------------------------------------------------------
    def test_encode_plain_typed_through_the_proxy_delivers(self):
        cp = self.encode("plain", USER, "--password-env", ENV, env={ENV: PASSWORD})
        lines = cp.stdout.decode().splitlines()
        self.assertEqual(lines, ["AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}")])
        self.assertIn("# after EHLO, type:", cp.stderr.decode())

        m = self.proxy()
        tok = h.unique_token()
        with h.SmtpSocket(m.port) as c:  # telnet-style: CRLF
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            r = c.cmd(lines[0])
            self.assertEqual(r.code, 235, r)
            msg = self.deliver(lambda line: c.cmd(line), tok)
            c.send(h.dot_stuff(msg))
            self.assertEqual(c.cmd(".").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertDelivered(tok, msg)
        self.assert_no_leaks(m, {"encode stderr": cp.stderr})

    def test_encode_login_typed_at_the_prompts_with_nc(self):
        cp = self.encode("login", USER, "--password-env", ENV, env={ENV: PASSWORD})
        lines = cp.stdout.decode().splitlines()
        self.assertEqual(lines, ["AUTH LOGIN", b64(USER), b64(PASSWORD)])
        comments = cp.stderr.decode()
        self.assertIn("# at the prompt 334 VXNlcm5hbWU6 (Username:), type:", comments)
        self.assertIn("# at the prompt 334 UGFzc3dvcmQ6 (Password:), type:", comments)

        m = self.proxy()
        tok = h.unique_token()
        with h.NetcatClient(m.port) as nc:  # a person at nc: bare LF
            self.assertEqual(nc.reply().code, 220)
            self.assertEqual(nc.cmd(b"EHLO x").code, 250)
            r = nc.cmd(lines[0].encode())
            self.assertEqual((r.code, r.lines), (334, ["VXNlcm5hbWU6"]))
            r = nc.cmd(lines[1].encode())
            self.assertEqual((r.code, r.lines), (334, ["UGFzc3dvcmQ6"]))
            r = nc.cmd(lines[2].encode())
            self.assertEqual(r.code, 235, r)
            msg = self.deliver(lambda line: nc.cmd(line), tok)
            nc.send(h.dot_stuff(msg.replace(b"\r\n", b"\n")))
            self.assertEqual(nc.cmd(b".").code, 250)
            self.assertEqual(nc.cmd(b"QUIT").code, 221)
        self.assertDelivered(tok, msg)
        self.assert_no_leaks(m)

    def test_wrong_password_from_encode_is_refused(self):
        cp = self.encode("plain", USER, "--password-env", ENV, env={ENV: PASSWORD + "x"})
        m = self.mailtap(self.postfix.submission)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd(cp.stdout.decode().strip()).code, 535)

    # --- decode ----------------------------------------------------------------------------
    def test_decode_round_trips_what_encode_printed(self):
        plain = self.encode("plain", USER, "--password-env", ENV, env={ENV: PASSWORD}).stdout
        login = self.encode("login", USER, "--password-env", ENV, env={ENV: PASSWORD}).stdout
        n = len(PASSWORD)
        self.assertEqual(self.decode("-", stdin=plain),
                         f'AUTH PLAIN: authzid="" authcid="{USER}" password=<secret, {n} bytes>\n')
        self.assertEqual(self.decode("--show-secret", "-", stdin=plain),
                         f'AUTH PLAIN: authzid="" authcid="{USER}" password="{PASSWORD}"\n')
        self.assertEqual(self.decode("-", stdin=login),
                         "AUTH LOGIN (no initial response: the server answers 334)\n"
                         f'response: user="{USER}"\n'
                         f"response: password=<secret, {n} bytes>\n")
        # Everything at once, as copied from a terminal: comments, prompts and responses.
        both = self.encode("login", USER, "--password-env", ENV, env={ENV: PASSWORD})
        lines = both.stdout.decode().splitlines()
        session = "\n".join(["# copied from a terminal", lines[0], "334 VXNlcm5hbWU6", lines[1],
                             "334 UGFzc3dvcmQ6", lines[2], "235 2.7.0 Authentication successful"])
        self.assertEqual(self.decode(session),
                         "AUTH LOGIN (no initial response: the server answers 334)\n"
                         '334 challenge: "Username:"\n'
                         f'response: user="{USER}"\n'
                         '334 challenge: "Password:"\n'
                         f"response: password=<secret, {n} bytes>\n"
                         "reply 235: 2.7.0 Authentication successful\n")
        self.assertNotIn(PASSWORD, self.decode(session))

    def test_decode_escapes_a_pasted_reply_as_show_does(self):
        # A reply copied from a hostile server's session: its escape sequence is shown, never
        # played on the terminal: decode's output is printable ASCII (docs/tools/decode.md).
        out = self.decode("-", stdin=b"250 ok\x01\x1b[31m caf\xc3\xa9 \xff\n")
        self.assertEqual(out, "reply 250: ok\\x01\\x1b[31m caf\\xc3\\xa9 \\xff\n")
        # An AUTH line whose words the client split with VT and FF, as the proxy reads them.
        out = self.decode("-", stdin=b"AUTH\vPLAIN\fjunk!\n")
        self.assertEqual(out, "AUTH PLAIN: AUTH\\x0bPLAIN [<secret, 5 bytes>]\n")

    def test_decode_oauth_error_and_xoauth2_from_a_token_command(self):
        token = "ya29." + secrets.token_urlsafe(30)
        cp = self.encode("xoauth2", "alice@gmail.com", "--oauth2-token-cmd", f"echo {token}")
        [line] = cp.stdout.decode().splitlines()
        self.assertEqual(
            line, "AUTH XOAUTH2 " + b64(f"user=alice@gmail.com\x01auth=Bearer {token}\x01\x01"))
        self.assertIn("type an empty line", cp.stderr.decode())
        out = self.decode(line)
        self.assertEqual(
            out, f'AUTH XOAUTH2: user="alice@gmail.com" bearer=<secret, {len(token)} bytes>\n')
        error = b64('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}')
        out = self.decode("334 " + error)
        self.assertIn(
            "OAuth error (status 400, schemes Bearer, scope https://mail.google.com/)", out)
        self.assertIn("the token lacks the scope https://mail.google.com/", out)

    # --- where the secret comes from -------------------------------------------------------
    def test_password_file_and_command(self):
        f = self.tmp / "pw"
        f.write_text(PASSWORD + "\nignored second line\n")
        f.chmod(0o600)
        want = "AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}") + "\n"
        cp = self.encode("plain", USER, "--password-file", str(f))
        self.assertEqual(cp.stdout.decode(), want)
        f.chmod(0o644)
        cp = self.encode("plain", USER, "--password-file", str(f), check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertIn("permissions 0644 are too open", cp.stderr.decode())
        self.assertEqual(cp.stdout, b"")

        # The command's stdout is the secret, its stderr is shown; the secret is never in
        # encode's command line (checked while the command runs).
        f.chmod(0o600)
        proc = subprocess.Popen([str(h.mailtap_bin()), "encode", "plain", USER, "--password-cmd",
                                 f"echo helper-notice >&2; sleep 0.5; cat {f}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out.decode(), want)
        self.assertIn(b"helper-notice", err)
        self.assertEqual(find_leaks({"cmdline": cmdline, "stderr": err}, forbidden()), [])

        cp = self.encode("plain", USER, "--password-cmd", "echo not-it; exit 3", check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertIn("--password-cmd exited with status 3", cp.stderr.decode())
        self.assertNotIn(b"not-it", cp.stdout + cp.stderr)

    def test_no_core_dump_while_the_secret_is_held(self):
        # The token command inherits encode's core size limit: one byte from before the secret
        # is read, so a crash while it is held leaves no core file.
        limits = self.tmp / "encode-limits"
        cp = self.encode("xoauth2", "alice@gmail.com", "--oauth2-token-cmd",
                         f"grep 'Max core file size' /proc/self/limits > {limits}; echo tok")
        self.assertTrue(cp.stdout.startswith(b"AUTH XOAUTH2 "), cp.stdout)
        self.assertRegex(limits.read_text(), r"Max core file size\s+1\s")

    def type_at_the_prompt(self, args: list, typed: bytes) -> tuple[int, bytes, bytes]:
        """Runs `mailtap encode ARGS` on a pseudo-terminal, types `typed` once the prompt has
        switched the echo off (as a person would: mailtap discards what came before), checks
        the echo is back at the end, and returns the exit code, stdout and the screen."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([str(h.mailtap_bin()), "encode", *args], stdin=slave,
                                stdout=subprocess.PIPE, stderr=slave)
        try:
            deadline = time.monotonic() + 10
            while termios.tcgetattr(slave)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertFalse(termios.tcgetattr(slave)[3] & termios.ECHO, "echo switched off")
            while typed:
                typed = typed[os.write(master, typed):]
            out, _ = proc.communicate(timeout=30)
            self.assertTrue(termios.tcgetattr(slave)[3] & termios.ECHO, "echo restored")
            screen = b""
            while select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                screen += chunk
        finally:
            os.close(master)
            os.close(slave)
        return proc.returncode, out, screen

    def test_prompt_without_echo_on_a_terminal(self):
        code, out, screen = self.type_at_the_prompt(["plain", USER], PASSWORD.encode() + b"\n")
        self.assertEqual(code, 0, screen)
        self.assertEqual(out.decode(), "AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}") + "\n")
        self.assertIn(f"Password for {USER}: ".encode(), screen)
        self.assertNotIn(PASSWORD.encode(), screen, "the password was not echoed")

    def test_a_pasted_token_longer_than_a_terminal_line_is_read_whole(self):
        """A terminal's line editing keeps 4095 characters of a line and drops the rest without
        a word; Microsoft 365 access tokens are often longer. The prompt must take the whole
        paste, or the line encode prints is a credential the server refuses with no hint why."""
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(6000)[:6000]
        code, out, screen = self.type_at_the_prompt(["xoauth2", "alice@outlook.com"],
                                                    token.encode() + b"\n")
        self.assertEqual(code, 0, screen)
        response = base64.b64decode(out.removeprefix(b"AUTH XOAUTH2 "))
        self.assertTrue(response.startswith(b"user=alice@outlook.com\1auth=Bearer "), response[:40])
        got = response.removeprefix(b"user=alice@outlook.com\1auth=Bearer ").removesuffix(b"\1\1")
        self.assertEqual(len(got), len(token), "the whole token was encoded")
        self.assertTrue(got == token.encode(), "the token was encoded unchanged")
        self.assertNotIn(token[:40].encode(), screen, "the token was not echoed")

    def test_typing_corrections_at_the_prompt_work_as_on_any_terminal(self):
        """Backspace rubs out a character, Ctrl-U the whole line, Ctrl-W a word, as the
        terminal's own line editing does; none of them ends up in the password."""
        typed = b"wrong guess\x15" + b"xx \x17" + PASSWORD.encode() + b"q\x7f" + b"\n"
        code, out, screen = self.type_at_the_prompt(["plain", USER], typed)
        self.assertEqual(code, 0, screen)
        self.assertEqual(out.decode(), "AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}") + "\n")

    def test_ctrl_c_at_the_prompt_gives_up_and_gives_the_terminal_back(self):
        """Ctrl-C typed at the prompt (the terminal's own interrupt key, mailtap the foreground
        job) ends encode as Ctrl-C ends any command, with the echo and line editing back."""
        pid, terminal = pty.fork()
        if pid == 0:  # child
            os.execv(str(h.mailtap_bin()), ["mailtap", "encode", "plain", USER])
        try:
            deadline = time.monotonic() + 10
            while termios.tcgetattr(terminal)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertFalse(termios.tcgetattr(terminal)[3] & termios.ECHO, "echo switched off")
            os.write(terminal, b"half a passw\x03")
            _, status = os.waitpid(pid, 0)
            modes = termios.tcgetattr(terminal)[3]
        finally:
            os.close(terminal)
        self.assertEqual(os.waitstatus_to_exitcode(status), -signal.SIGINT)
        self.assertTrue(modes & termios.ECHO, "echo restored")
        self.assertTrue(modes & termios.ICANON, "line editing restored")

    def test_ctrl_d_at_the_prompt_is_no_secret(self):
        code, out, screen = self.type_at_the_prompt(["plain", USER], b"\x04")
        self.assertEqual(code, 1, screen)
        self.assertEqual(out, b"")
        self.assertIn(b"no secret was entered (no input)", screen)

    def test_password_command_may_ask_on_the_terminal(self):
        """A helper that reads the terminal itself (as a passphrase prompt does) gets it: mailtap
        hands the terminal's foreground to the helper's process group while it runs."""
        code, out = h.run_in_terminal_session(
            [h.mailtap_bin(), "encode", "plain", USER, "--password-cmd", 'read -r p && echo "$p"'],
            typed=PASSWORD.encode() + b"\n")
        self.assertEqual(code, 0, out)
        want = "AUTH PLAIN " + b64(f"\0{USER}\0{PASSWORD}")
        self.assertIn(want.encode(), out)

    def test_no_terminal_and_no_source_is_a_clear_error(self):
        cp = subprocess.run([str(h.mailtap_bin()), "encode", "login", USER],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 1)
        self.assertIn("--password-env VAR, --password-file PATH or --password-cmd CMD",
                      cp.stderr.decode())


    def test_a_bad_user_is_an_option_error_and_a_bad_secret_is_not(self):
        # A user or --authzid that cannot be sent is a usage mistake (2), found before any
        # secret is asked for; a secret that cannot be sent is "no usable secret" (1).
        for args in (["plain", ""], ["plain", "al\nice"], ["login", "al\x1bice"],
                     ["plain", USER, "--authzid", "x\ny"]):
            cp = self.encode(*args, "--password-env", ENV, env={ENV: PASSWORD}, check=False)
            self.assertEqual(cp.returncode, 2, args)
            self.assertEqual(cp.stdout, b"", args)
            self.assertIn(b"mailtap: encode: cannot encode AUTH", cp.stderr)
        # No source and no terminal: the bad user is reported, no password is asked for.
        cp = subprocess.run([str(h.mailtap_bin()), "encode", "plain", ""],
                            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 2)
        self.assertIn(b"the user name is empty", cp.stderr)
        cp = self.encode("login", USER, "--password-env", ENV, env={ENV: "p" * 20000},
                         check=False)
        self.assertEqual(cp.returncode, 1)
        self.assertIn(b"over the 12288-octet line limit", cp.stderr)
        self.assertNotIn(b"ppppp", cp.stderr)

    def test_a_port_is_a_plain_decimal_number(self):
        for bad in ("0x24b", "0", "-1", "65536", "587 "):
            cp = self.encode("oauthbearer", USER, "--host", "smtp.example.test", "--port", bad,
                             "--oauth2-token-cmd", "echo tok", check=False)
            self.assertEqual(cp.returncode, 2, bad)
            self.assertEqual(cp.stdout, b"", bad)
            self.assertIn(f"--port: not a port: {bad} (a number from 1 to 65535".encode(),
                          cp.stderr)

if __name__ == "__main__":
    h.main()
