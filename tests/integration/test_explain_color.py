#!/usr/bin/env python3
"""`mailtap explain`, the proxy's `--transcript --explain`, and colour (`--color`, NO_COLOR,
terminal or not) in `show`, `sessions` and `--transcript`.  Fake servers only: no root."""

import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ESC = "\x1b["
GMAIL_535 = ("535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
             "535 5.7.8  https://support.google.com/mail/?p=BadCredentials x12 - gsmtp\r\n")
PASSWORD = "s3cret-Pa55word-never-printed"


def tool(*args, env=None, check=True):
    cp = subprocess.run([str(h.mailtap_bin()), *args], capture_output=True, timeout=30,
                        env=env)
    if check and cp.returncode != 0:
        raise AssertionError(f"mailtap {' '.join(args)}: exit {cp.returncode}\n"
                             f"{cp.stderr.decode(errors='replace')}")
    return cp


def env_without_no_color(**extra):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm"
    env.update(extra)
    return env


class ExplainCommandTest(h.IntegrationCase):
    def test_explains_code_and_status_with_a_fix(self):
        out = tool("explain", "535", "5.7.8").stdout.decode()
        self.assertTrue(out.startswith("535 5.7.8: authentication failed"), out)
        self.assertIn("What usually fixes it:", out)
        self.assertIn("app password", out)

    def test_pasted_reply_finds_the_servers_wording(self):
        out = tool("explain", "535 5.7.139 Authentication unsuccessful, "
                   "SmtpClientAuthentication is disabled for the Tenant.").stdout.decode()
        self.assertIn("SMTP AUTH is disabled for the tenant", out)
        self.assertIn("Set-TransportConfig", out)
        self.assertIn("as Microsoft 365 uses this reply", out)

    def test_json(self):
        doc = json.loads(tool("explain", "--json", "534-5.7.9 Application-specific password "
                              "required. Learn more at").stdout)
        self.assertEqual(doc["code"], 534)
        self.assertEqual(doc["enhanced_status"], "5.7.9")
        self.assertEqual(doc["server"], "Gmail")
        self.assertIn("apppasswords", doc["fix"])
        self.assertEqual(doc["status"]["detail"], "authentication mechanism is too weak")

    def test_two_failures_of_different_kinds_are_explained(self):
        # Servers do send a permanent code with a temporary status and the other way round.
        out = tool("explain", "535", "4.7.0").stdout.decode()
        self.assertTrue(out.startswith("535 4.7.0: "), out)
        doc = json.loads(tool("explain", "--json", "450 5.7.1 Client host rejected").stdout)
        self.assertEqual((doc["code"], doc["enhanced_status"]), (450, "5.7.1"))

    def test_not_a_reply_is_a_usage_error(self):
        for args in (["999"], ["hello"], ["535", "2.0.0"], ["5.7"]):
            cp = tool("explain", *args, check=False)
            self.assertEqual(cp.returncode, 2, args)
            self.assertEqual(cp.stdout, b"", args)
            self.assertIn(b"mailtap: explain:", cp.stderr)
        self.assertNotEqual(tool("explain", check=False).returncode, 0)


class TranscriptExplainColourTest(h.IntegrationCase):
    def failing_auth_session(self, extra_args, env=None):
        fake = self.fake("good", replies={"AUTH": GMAIL_535})
        m = self.mailtap(fake.address, extra_args=["--transcript", *extra_args], env=env)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO me.test")
            r = c.cmd("AUTH PLAIN " + h.auth_plain("alice@example.test", PASSWORD))
            self.assertEqual(r.code, 535)
            c.cmd("QUIT")
        m.stop()
        return m

    def test_explain_lines_under_each_reply_and_no_secret(self):
        m = self.failing_auth_session(["--explain"])
        out = m.stdout
        self.assertIn("#  535 5.7.8: Gmail did not accept the user name and password", out)
        self.assertIn("#  fix: Use the full address as user name and an app password", out)
        self.assertRegex(out, r"#  220: service ready")
        self.assertNotIn(PASSWORD, m.output)
        self.assertNotIn(base64.b64encode(f"\0alice@example.test\0{PASSWORD}".encode()).decode(),
                         m.output)
        self.assertNotIn(ESC, out, "colour escapes on a pipe")

    def test_explain_needs_transcript(self):
        cp = tool("proxy", "--explain", "--no-record", check=False)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn(b"--transcript", cp.stderr)

    def test_transcript_colour_always_and_never(self):
        m = self.failing_auth_session(["--color", "always"], env={"NO_COLOR": "1"})
        self.assertIn(ESC + "36m[", m.stdout)  # client lines cyan, even with NO_COLOR set
        self.assertIn(ESC + "31m[", m.stdout)  # the 535 red
        m = self.failing_auth_session(["--color", "never"])
        self.assertNotIn(ESC, m.stdout)

    def test_show_and_sessions_colour(self):
        m = self.failing_auth_session([])
        db = m.args()[m.args().index("--db") + 1]
        for cmd in (["sessions"], ["show", "1"]):
            plain = tool(*cmd, "--db", db, env=env_without_no_color()).stdout.decode()
            self.assertNotIn(ESC, plain, cmd)
            forced = tool(*cmd, "--db", db, "--color", "always",
                          env=env_without_no_color(NO_COLOR="1")).stdout.decode()
            self.assertIn(ESC, forced, cmd)
            rc, tty = h.run_on_terminal([*cmd, "--db", db], env_without_no_color())
            self.assertEqual(rc, 0)
            self.assertIn(ESC.encode(), tty, cmd)
            rc, tty = h.run_on_terminal([*cmd, "--db", db],
                                        env_without_no_color(NO_COLOR="yes"))
            self.assertNotIn(ESC.encode(), tty, f"{cmd}: NO_COLOR ignored")
            rc, tty = h.run_on_terminal([*cmd, "--db", db, "--color", "never"],
                                        env_without_no_color())
            self.assertNotIn(ESC.encode(), tty, f"{cmd}: --color never ignored")
        cp = tool("show", "1", "--db", db, "--color", "sometimes", check=False)
        self.assertNotEqual(cp.returncode, 0)


if __name__ == "__main__":
    h.main()
