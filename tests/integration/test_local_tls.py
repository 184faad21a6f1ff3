#!/usr/bin/env python3
"""Real clients that refuse to authenticate in plain text, through `mailtap proxy --local-tls`
(issue 11): msmtp, swaks and smtplib speak STARTTLS (or implicit TLS) to mailtap, trusting
mailtap's own self-signed certificate, and mailtap relays to the private Gmail-like Postfix.
Each delivers, and each session is recorded with the client's TLS version and AUTH redacted.
Also: the default certificate is made once (0600 key in a 0700 directory under
$XDG_CONFIG_HOME/mailtap) and reused (also from a read-only directory, as under the systemd
unit), a key others could read or plant is refused, its printed fingerprint is the one openssl
computes, bytes injected after STARTTLS end the session (also behind an EHLO in the same
write) while EHLO and STARTTLS in one write then a handshake work, AUTH before STARTTLS is
refused, and the lines pasted behind an AUTH refused after STARTTLS stay out of the record.
And a server that refuses the client's repeated EHLO (the one RFC 3207 asks for after
STARTTLS, the server's second) does not keep smtplib from sending mail (the fake upstream)."""

import base64
import contextlib
import os
import re
import shutil
import socket
import sqlite3
import ssl
import smtplib
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import wait_for  # noqa: E402

USER, PASSWORD = "alice", h.USERS["alice"]


class ReadOnlyMailtap(h.Mailtap):
    """mailtap with `directory` read-only (a bind mount in a mount namespace of its own), as the
    systemd unit's ProtectHome=read-only leaves the config directory."""

    def __init__(self, directory: Path, *args, **kw):
        super().__init__(*args, **kw)
        self.directory = directory

    def args(self) -> list[str]:
        return ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
                str(self.directory), *super().args()]


def can_mount_read_only() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "sh", "-c", "mount --bind -o ro / /"],
                          capture_output=True).returncode == 0


class LocalTlsCase(h.IntegrationCase):
    """mailtap with --local-tls, its certificate in a config directory of the test's own, and
    the record it keeps."""

    def setUp(self):
        self.config_home = Path(tempfile.mkdtemp(prefix="xdg-config-", dir=self.tmp))
        self.cert = self.config_home / "mailtap" / "local-tls-cert.pem"
        self.db = self.config_home / "mailtap.db"

    def start(self, mode: str = "starttls", *extra, upstream=None, **kw) -> h.Mailtap:
        return self.mailtap(upstream or self.postfix.submission, db=self.db,
                            extra_args=["--local-tls", mode, *extra],
                            env={"XDG_CONFIG_HOME": str(self.config_home)}, **kw)

    def refused_start(self, *extra) -> str:
        """mailtap's stderr, once it has refused to start: with exit status 2, a configuration
        error, which the systemd unit does not restart (RestartPreventExitStatus=2)."""
        mt = self.start("starttls", *extra, ready=False)
        self.assertEqual(mt.wait(timeout=15), 2, mt.stderr)
        self.assertNotIn("listening on", mt.stderr)
        return mt.stderr

    # the record ---------------------------------------------------------------------
    def sessions(self):
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as c:
            c.row_factory = sqlite3.Row
            return c.execute("SELECT * FROM sessions ORDER BY id").fetchall()

    def ended_session(self):
        """The one session, once it is closed in the record."""
        def ended():
            rows = self.sessions() if self.db.exists() else []
            return rows if rows and all(r["ended_at"] for r in rows) else None
        rows = wait_for(ended, what="the session's record to be closed")
        self.assertEqual(len(rows), 1)
        return rows[0]

    def events(self, session_id: int):
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as c:
            c.row_factory = sqlite3.Row
            return c.execute("SELECT * FROM events WHERE session_id = ? ORDER BY seq",
                             (session_id,)).fetchall()


class LocalTlsTest(LocalTlsCase):
    """Real clients through mailtap to the private Postfix."""

    with_postfix = True

    def assertRecordedOverTls(self, mt: h.Mailtap, starttls: bool):
        s = self.ended_session()
        self.assertRegex(s["client_tls_version"] or "", r"^TLSv1\.[23]$",
                         "the record says the client's side was TLS, and which version")
        self.assertEqual(s["auth_user"], USER)
        events = self.events(s["id"])
        tls_notes = [e for e in events if e["kind"] == "tls" and
                     "client side: TLS established" in (e["note"] or "")]
        self.assertEqual(len(tls_notes), 1, [dict(e) for e in events])
        if starttls:
            verbs = [(e["direction"], e["verb"]) for e in events if e["kind"] == "command"]
            self.assertIn(("client_to_mailtap", "STARTTLS"), verbs)
            self.assertTrue(any(e["kind"] == "local_reply" and
                                bytes(e["bytes"]).startswith(b"220 2.0.0") for e in events))
        auth = [e for e in events if e["kind"] == "auth"]
        self.assertTrue(auth and any(e["redacted"] for e in auth), "AUTH is recorded redacted")
        # The client's TLS close_notify after its 221 is the end, not data sent after it. The
        # notes after the end are committed before the session's "ended:" line.
        mt.wait_stderr(" ended: ")
        self.assertEqual([e["note"] for e in self.events(s["id"])
                          if "discarded unread" in (e["note"] or "")], [])
        mt.stop()
        for f in self.db.parent.glob(self.db.name + "*"):
            self.assertNotIn(PASSWORD.encode(), f.read_bytes(), f"the password is in {f}")
        return s

    def tool(self, *args) -> subprocess.CompletedProcess:
        """A record tool (`show`, `audit`) run on this test's database."""
        return subprocess.run([str(h.mailtap_bin()), *args, "--db", str(self.db)],
                              capture_output=True, timeout=60)

    # clients ------------------------------------------------------------------------
    def msmtp(self, port: int, message: bytes, *, starttls: bool,
              auth: bool = True) -> subprocess.CompletedProcess:
        conf = self.tmp / f"msmtprc-{h.unique_token()}"
        login = ["auth on", f"user {USER}", f"password {PASSWORD}"] if auth else ["auth off"]
        conf.write_text("\n".join([
            "defaults", "logfile -", "account mailtap", "host 127.0.0.1", f"port {port}",
            "from sender@client.test", *login,
            "tls on", f"tls_starttls {'on' if starttls else 'off'}",
            f"tls_trust_file {self.cert}", ""]))
        conf.chmod(0o600)  # msmtp refuses a password in a file others can read
        cmd = ["msmtp", "-C", str(conf), "-a", "mailtap", "alice@example.test"]
        h.log("run:", " ".join(cmd))
        return subprocess.run(cmd, input=message, capture_output=True, timeout=60)

    def smtplib_send(self, port: int, message: bytes, *, implicit: bool):
        ctx = ssl.create_default_context(cafile=str(self.cert))
        if implicit:
            s = smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test", context=ctx,
                                 timeout=30)
        else:
            s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30)
        with s:
            if not implicit:
                s.ehlo()
                self.assertTrue(s.has_extn("starttls"))
                self.assertFalse(s.has_extn("auth"), "AUTH is withheld until the client's TLS")
                s.starttls(context=ctx)
            s.ehlo()
            s.login(USER, PASSWORD)
            refused = s.sendmail("sender@client.test", ["alice@example.test"], message)
            s.quit()
        return refused

    def deliver_with(self, send, mode: str):
        mt = self.start(mode)
        tok = h.unique_token()
        msg = h.make_message(tok)
        send(mt.port, msg)
        self.assertDelivered(tok, msg)
        return self.assertRecordedOverTls(mt, starttls=mode == "starttls")

    def test_msmtp_starttls(self):
        def send(port, msg):
            self.assertProcOk(self.msmtp(port, msg, starttls=True), "msmtp")
        self.deliver_with(send, "starttls")

    def test_msmtp_implicit_tls(self):
        def send(port, msg):
            self.assertProcOk(self.msmtp(port, msg, starttls=False), "msmtp")
        self.deliver_with(send, "implicit")

    def test_msmtp_with_auth_user_needs_auth_off(self):
        """What README.md and docs/proxy.md say: with --auth-user, AUTH is not offered, so msmtp
        with `auth on` stops (exit 69) and with `auth off` delivers."""
        pw = self.tmp / f"pw-{h.unique_token()}"
        pw.write_text(PASSWORD + "\n")
        pw.chmod(0o600)
        mt = self.start("starttls", "--auth-user", USER, "--password-file", str(pw))
        refused = self.msmtp(mt.port, h.make_message(h.unique_token()), starttls=True)
        self.assertEqual(refused.returncode, 69, refused.stderr)
        self.assertIn(b"does not support authentication", refused.stderr)
        tok = h.unique_token()
        msg = h.make_message(tok)
        sent = self.msmtp(mt.port, msg, starttls=True, auth=False)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertDelivered(tok, msg)

    def test_swaks_starttls(self):
        def send(port, msg):
            self.assertProcOk(h.swaks(port, tls="starttls", ca_file=self.cert, auth="PLAIN",
                                      user=USER, password=PASSWORD, data=msg), "swaks")
        self.deliver_with(send, "starttls")

    def test_swaks_implicit_tls(self):
        def send(port, msg):
            self.assertProcOk(h.swaks(port, tls="implicit", ca_file=self.cert, auth="LOGIN",
                                      user=USER, password=PASSWORD, data=msg), "swaks")
        self.deliver_with(send, "implicit")

    def test_smtplib_starttls(self):
        s = self.deliver_with(lambda port, msg: self.assertEqual(
            self.smtplib_send(port, msg, implicit=False), {}), "starttls")
        out = h.run([str(h.mailtap_bin()), "show", "--db", str(self.db), str(s["id"])])
        self.assertRegex(out.stdout.decode(), r"client +127\.0\.0\.1:\d+ -> [^\n]*\(TLSv1\.[23]\)")
        self.assertIn("[answered by mailtap] C: STARTTLS", out.stdout.decode())
        self.assertIn("M: 220 2.0.0 Ready to start TLS", out.stdout.decode())
        out = h.run([str(h.mailtap_bin()), "sessions", "--db", str(self.db), "--json"])
        self.assertRegex(out.stdout.decode(), r'"client_tls_version": ?"TLSv1\.[23]"')

    def test_smtplib_implicit_tls(self):
        self.deliver_with(lambda port, msg: self.assertEqual(
            self.smtplib_send(port, msg, implicit=True), {}), "implicit")

    def test_own_certificate_and_key(self):
        """--local-cert/--local-key: the client trusts the CA that signed them."""
        mt = self.start("starttls", "--local-cert", self.pki.valid_cert, "--local-key",
                        self.pki.valid_key)
        self.assertFalse(self.cert.exists(), "no default certificate is made")
        tok = h.unique_token()
        msg = h.make_message(tok)
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        with smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test", timeout=30) as s:
            s.starttls(context=ctx)
            s.login(USER, PASSWORD)
            s.sendmail("sender@client.test", ["alice@example.test"], msg)
        self.assertDelivered(tok, msg)

    # the default certificate --------------------------------------------------------
    def test_default_certificate_private_printed_and_reused(self):
        mt = self.start("starttls")
        key = self.cert.with_name("local-tls-key.pem")
        self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(key.parent.stat().st_mode), 0o700)
        fp = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-noout", "-fingerprint",
                             "-sha256"], capture_output=True, check=True).stdout.decode()
        fp = fp.strip().split("=", 1)[1]
        self.assertIn(f"created the local TLS certificate {self.cert} (SHA-256 {fp},",
                      mt.stderr)
        text = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-noout", "-text"],
                              capture_output=True, check=True).stdout.decode()
        self.assertRegex(text, r"DNS:localhost, IP Address:127\.0\.0\.1")
        self.assertIn("ASN1 OID: prime256v1", text)
        pem = self.cert.read_bytes()
        mt.stop()

        again = self.start("implicit")
        self.assertIn(f"using the local TLS certificate {self.cert} (SHA-256 {fp},",
                      again.stderr)
        self.assertEqual(self.cert.read_bytes(), pem, "the certificate is reused")

    def test_default_key_others_could_read_or_plant_is_refused(self):
        """As ssh refuses such a key: a key others can read leaks the server's identity, and
        one another user owns may be theirs, so clients trusting the file would trust them."""
        self.start("starttls").stop()
        key = self.cert.with_name("local-tls-key.pem")
        pem = key.read_bytes()
        key.chmod(0o644)
        err = self.refused_start()
        self.assertIn(f"--local-tls: the key {key}: permissions 0644 are too open", err)
        self.assertIn(f"(chmod 600 {key}, or delete it and {self.cert} for a new pair)", err)
        self.assertEqual(key.read_bytes(), pem, "the key is left alone")
        key.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(key, 65534, 65534)
            self.assertIn(f"--local-tls: the key {key}: owned by uid 65534, not by the user "
                          "running mailtap", self.refused_start())
            os.chown(key, 0, 0)
        self.assertIn("using the local TLS certificate", self.start("starttls").stderr)

    def test_an_unusable_certificate_or_key_is_refused(self):
        """--local-cert/--local-key that cannot be read or do not belong together: a
        configuration error, as a bad option is."""
        garbage = self.tmp / f"garbage-{h.unique_token()}.pem"
        garbage.write_text("not PEM\n")
        garbage.chmod(0o600)  # private, so that what is refused is its content
        cert, key = str(self.pki.valid_cert), str(self.pki.valid_key)
        cases = {
            "missing certificate": (["--local-cert", str(self.tmp / "no-such.pem"),
                                     "--local-key", key], "--local-cert "),
            "not a certificate": (["--local-cert", str(garbage), "--local-key", key],
                                  f"--local-cert {garbage}: no PEM certificate could be read"),
            "not a key": (["--local-cert", cert, "--local-key", str(garbage)],
                          f"--local-key {garbage}: no PEM private key could be read"),
            # The words --client-key uses for the same file (test_client_cert.py).
            "missing key": (["--local-cert", cert, "--local-key", str(self.tmp / "no-such.key")],
                            f"--local-key {self.tmp / 'no-such.key'}: No such file or directory"),
            "a directory as key": (["--local-cert", cert, "--local-key", str(self.tmp)],
                                   f"--local-key {self.tmp}: a directory, not a file"),
            "another certificate's key": (["--local-cert", cert, "--local-key",
                                           str(self.pki.wrong_name_key)],
                                          "is not the key of --local-cert"),
        }
        for what, (args, reason) in cases.items():
            with self.subTest(what):
                self.assertIn(reason, self.refused_start(*args))
        self.assertFalse(self.cert.exists(), "no default certificate is made")

    def test_an_open_local_key_of_your_own_is_refused(self):
        """--local-key is held to what mailtap asks of the key it makes (as ssh of a private
        key): group or others may not read it; chmod 600 makes it usable."""
        key = self.tmp / f"open-{h.unique_token()}.key"
        key.write_bytes(self.pki.valid_key.read_bytes())
        key.chmod(0o640)
        err = self.refused_start("--local-cert", str(self.pki.valid_cert), "--local-key", str(key))
        self.assertIn(f"--local-key {key}: permissions 0640 are too open", err)
        self.assertIn(f"chmod 600 {key}", err)
        key.chmod(0o600)
        self.start("starttls", "--local-cert", self.pki.valid_cert, "--local-key", key)

    def test_failing_to_write_a_new_certificate_exits_1(self):
        """An I/O error while writing the new pair (here EFBIG, from a file size limit; ENOSPC
        and EIO alike) is a failure of the run, not a configuration error: exit status 1, which
        the systemd unit restarts, unlike 2."""
        def tiny_files():
            import resource
            import signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

        mt = self.start("starttls", ready=False, preexec_fn=tiny_files)
        self.assertEqual(mt.wait(timeout=15), 1, mt.stderr)
        self.assertIn("--local-tls: cannot write ", mt.stderr)
        self.assertNotIn("listening on", mt.stderr)
        self.assertFalse(self.cert.exists())

    def test_a_config_directory_whose_parent_cannot_be_made_exits_2(self):
        """As under the systemd unit (ProtectHome=read-only) for an account without ~/.config:
        the config directory's parent cannot be made. mailtap says why (not the ENOENT of the
        directory below it) and exits 2, a configuration error the unit does not restart."""
        loop = self.config_home / "loop"
        loop.symlink_to(loop)
        long_name = self.config_home / ("x" * 300)
        cases = {
            "through a symlink loop": (loop / "config", "Too many levels of symbolic links"),
            "a name too long": (long_name / "config", "File name too long"),
        }
        config = self.config_home / "config.toml"  # not looked for under XDG_CONFIG_HOME
        h.write_config_file(config, "")
        for what, (xdg, reason) in cases.items():
            with self.subTest(what):
                mt = self.mailtap(self.postfix.submission, db=self.db, ready=False,
                                  extra_args=["--local-tls", "starttls", "--config", str(config)],
                                  env={"XDG_CONFIG_HOME": str(xdg)})
                self.assertEqual(mt.wait(timeout=15), 2, mt.stderr)
                self.assertIn(f"--local-tls: cannot create {xdg}: {reason}", mt.stderr)
                self.assertNotIn("listening on", mt.stderr)
        if not can_mount_read_only():
            self.skipTest("needs root and unshare to mount a directory read-only")
        home = self.config_home / "home"
        home.mkdir()
        m = ReadOnlyMailtap(home, self.postfix.submission, ca_file=self.pki.ca_cert,
                            db=self.db, extra_args=["--local-tls", "starttls"], ready=False,
                            env={"XDG_CONFIG_HOME": str(home / ".config")})
        m.start()
        self.addCleanup(self._stop_mailtap, m)
        self.assertEqual(m.wait(timeout=15), 2, m.stderr)
        self.assertIn(f"--local-tls: cannot create {home / '.config'}: Read-only file system",
                      m.stderr)

    def test_existing_certificate_is_reused_from_a_read_only_directory(self):
        """The systemd unit's home is read-only: a pair made earlier is used all the same, and
        without one mailtap says how to make it."""
        if not can_mount_read_only():
            self.skipTest("needs root and unshare to mount the directory read-only")
        mailtap_dir = self.config_home / "mailtap"
        mailtap_dir.mkdir(mode=0o700)

        def start_read_only(**kw) -> h.Mailtap:
            m = ReadOnlyMailtap(mailtap_dir, self.postfix.submission, ca_file=self.pki.ca_cert,
                                db=self.db, extra_args=["--local-tls", "starttls"],
                                env={"XDG_CONFIG_HOME": str(self.config_home)}, **kw)
            m.start()
            self.addCleanup(self._stop_mailtap, m)
            return m

        none_yet = start_read_only(ready=False)
        self.assertEqual(none_yet.wait(timeout=15), 2, none_yet.stderr)
        self.assertIn(f"--local-tls: no certificate to reuse in {mailtap_dir}, and a new one "
                      "cannot be made there", none_yet.stderr)
        self.assertIn("Read-only file system", none_yet.stderr)
        self.assertIn("once where that directory is writable", none_yet.stderr)

        self.start("starttls").stop()  # made where the directory is writable
        mt = start_read_only()
        self.assertIn(f"using the local TLS certificate {self.cert}", mt.stderr)
        tok = h.unique_token()
        msg = h.make_message(tok)
        self.assertEqual(self.smtplib_send(mt.port, msg, implicit=False), {})
        self.assertDelivered(tok, msg)

    def test_config_directory_others_can_write_is_tightened(self):
        mailtap_dir = self.config_home / "mailtap"
        mailtap_dir.mkdir()
        mailtap_dir.chmod(0o777)
        self.start("starttls")
        self.assertEqual(stat.S_IMODE(mailtap_dir.stat().st_mode), 0o755)

    # refusals -----------------------------------------------------------------------
    def test_starttls_injection_ends_the_session(self):
        """Bytes after STARTTLS, before the handshake, are an injection (CVE-2011-0411)."""
        mt = self.start("starttls")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            ehlo = c.cmd("EHLO client.test")
            self.assertIn("STARTTLS", ehlo.lines)
            c.send(b"STARTTLS\r\nMAIL FROM:<injected@client.test>\r\n")
            self.assertEqual(c.reply().code, 220)
            r = c.reply()
            self.assertEqual(r.code, 421, r)
            self.assertIn("after STARTTLS", r.text)
            self.assertTrue(c.is_closed())
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        self.assertIsNone(s["client_tls_version"])
        for e in self.events(s["id"]):
            self.assertNotIn(b"injected", bytes(e["bytes"]))
            if e["direction"] == "client_to_upstream":
                self.assertNotEqual(e["verb"], "MAIL")
        self.assertNotIn("injected@client.test", self.postfix.maillog_text())

    def test_plain_text_after_the_220_to_starttls_is_no_command(self):
        """A command sent in its own write once the 220 to STARTTLS is in, where the client's
        TLS handshake is due (a client that does not do TLS, or an injection timed after the
        220): read by the handshake, which fails, never as a command. The client gets no SMTP
        reply to it (the handshake answers with a TLS alert), the command never reaches the
        server, and the record and the log say what happened in words."""
        mt = self.start("starttls")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertIn("STARTTLS", c.cmd("EHLO client.test").lines)
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            c.send(b"MAIL FROM:<injected@client.test>\r\n")
            rest = b""
            with contextlib.suppress(OSError):
                while chunk := c.sock.recv(4096):
                    rest += chunk
            self.assertFalse(re.search(rb"^\d{3}[ -]", rest, re.M),
                             f"an SMTP reply after the 220 to STARTTLS: {rest!r}")
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        reason = ("client TLS handshake failed: the client sent plain text where its TLS "
                  "handshake was due; none of it was read as a command")
        self.assertEqual(s["outcome_reason"], reason)
        self.assertIsNone(s["client_tls_version"])
        events = self.events(s["id"])
        self.assertEqual([e["verb"] for e in events if e["direction"] == "client_to_upstream"],
                         ["EHLO"])
        for e in events:
            self.assertNotIn(b"injected", bytes(e["bytes"] or b""))
        self.assertNotIn("injected@client.test", self.postfix.maillog_text())
        wait_for(lambda: "the client sent plain text where its TLS handshake was due" in mt.stderr,
                 what="the log line")

    def test_ehlo_and_starttls_in_one_write_then_the_handshake(self):
        """RFC 2920/3207 allow STARTTLS last in a group: "EHLO x\\r\\nSTARTTLS\\r\\n" in one
        write (HELO too), then the handshake once the 220 is in. The read mailtap had waiting
        while it waited for the EHLO reply must leave the ClientHello to the handshake."""
        mt = self.start("starttls")
        ctx = ssl.create_default_context(cafile=str(self.cert))
        for greeting in (b"EHLO client.test", b"HELO client.test"):
            with h.SmtpSocket(mt.port) as c:
                self.assertEqual(c.reply().code, 220)
                c.send(greeting + b"\r\nSTARTTLS\r\n")
                self.assertEqual(c.reply().code, 250)
                r = c.reply()
                self.assertEqual(r.code, 220, r)
                self.assertIn("Ready to start TLS", r.text)
                c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
                self.assertIn("AUTH PLAIN LOGIN", c.cmd("EHLO client.test").lines)
                self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(USER, PASSWORD)).code, 235)
                self.assertEqual(c.cmd("QUIT").code, 221)
        rows = wait_for(lambda: [r for r in self.sessions() if r["ended_at"]]
                        if self.db.exists() and len(self.sessions()) == 2 else None,
                        what="both sessions to be recorded")
        for row in rows:
            self.assertEqual(row["outcome"], "quit", dict(row))
            self.assertRegex(row["client_tls_version"] or "", r"^TLSv1\.[23]$")
        self.assertNotIn("injection", mt.stderr)

    def test_injection_behind_ehlo_in_one_write_is_still_refused(self):
        """The same write with bytes after STARTTLS: those are still an injection."""
        mt = self.start("starttls")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            c.send(b"EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<injected@client.test>\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.reply().code, 220)
            r = c.reply()
            self.assertEqual(r.code, 421, r)
            self.assertIn("after STARTTLS", r.text)
            self.assertTrue(c.is_closed())
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        self.assertIn("after STARTTLS", s["outcome_reason"])
        self.assertNotIn("injected@client.test", self.postfix.maillog_text())

    def test_bdat_before_the_new_ehlo_says_to_send_ehlo_again(self):
        """Like every other command there, with its chunk consumed, never relayed."""
        mt = self.start("starttls")
        chunk = b"RCPT TO:<bob@example.test>\r\n"
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            self.assertIn("CHUNKING", c.cmd("EHLO client.test").lines)
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            c.starttls(ca_file=self.cert)
            r = c.cmd(b"BDAT %d LAST\r\n" % len(chunk) + chunk, eol=b"")
            self.assertEqual(r.code, 503, r)
            self.assertIn("send EHLO again after STARTTLS", r.text)
            self.assertIn("BDAT chunk discarded", r.text)
            self.assertEqual(c.cmd("NOOP").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertNotIn("bob@example.test", self.postfix.maillog_text())

    def test_auth_before_starttls_is_refused(self):
        mt = self.start("starttls")
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            ehlo = c.cmd("EHLO client.test")
            self.assertFalse([line for line in ehlo.lines if line.upper().startswith("AUTH")],
                             ehlo)
            r = c.cmd("AUTH PLAIN " + h.auth_plain(USER, PASSWORD))
            self.assertEqual(r.code, 530, r)
            self.assertIn("STARTTLS", r.text)
            self.assertEqual(c.cmd("QUIT").code, 221)
        s = self.ended_session()
        self.assertIsNone(s["client_tls_version"])
        self.assertIsNone(s["auth_user"])
        mt.stop()
        for f in self.db.parent.glob(self.db.name + "*"):
            self.assertNotIn(PASSWORD.encode(), f.read_bytes())

    def test_auth_pasted_after_starttls_before_ehlo_stays_out_of_the_record(self):
        """openssl s_client -starttls smtp sends its own EHLO before STARTTLS; a user who then
        pastes AUTH LOGIN and two base64 lines meets mailtap's "send EHLO again". The AUTH is
        refused, so the base64 lines are its SASL responses: recorded redacted, never in clear
        in the database, its WAL, `show` or the log, and `audit` has nothing to report."""
        if h.require_tools("openssl"):
            self.skipTest("missing tools: openssl")
        user64 = base64.b64encode(USER.encode())
        pw64 = base64.b64encode(PASSWORD.encode())
        mt = self.start("starttls")
        typed = b"AUTH LOGIN\r\n" + user64 + b"\r\n" + pw64 + b"\r\nQUIT\r\n"
        cp = subprocess.run(["openssl", "s_client", "-quiet", "-starttls", "smtp", "-connect",
                             f"127.0.0.1:{mt.port}", "-CAfile", str(self.cert)],
                            input=typed, capture_output=True, timeout=60)
        out = cp.stdout.decode(errors="replace")
        self.assertEqual(out.count("503 5.5.1 mailtap: send EHLO again"), 3, out)
        self.assertIn("221", out)
        s = self.ended_session()
        redacted = [e for e in self.events(s["id"]) if e["kind"] == "command" and e["redacted"]]
        self.assertEqual(len(redacted), 2, [dict(e) for e in self.events(s["id"])])
        shown = self.tool("show", str(s["id"]))
        self.assertEqual(shown.returncode, 0, shown.stderr)
        audit = self.tool("audit")
        self.assertEqual(audit.returncode, 0, audit.stdout + audit.stderr)
        mt.stop()
        self.assertNotIn(pw64, shown.stdout)
        self.assertNotIn(pw64.decode(), mt.stderr)
        for f in self.db.parent.glob(self.db.name + "*"):
            self.assertNotIn(pw64, f.read_bytes(), f"the base64 password is in {f}")
            self.assertNotIn(pw64.upper(), f.read_bytes(), f"an upper-cased copy is in {f}")

    def test_a_refused_tls_renegotiation_is_in_the_record(self):
        """openssl s_client's "R" over TLS 1.2 asks to renegotiate: mailtap (BoringSSL) refuses
        with the alert no_renegotiation, which ends the connection; the record says so."""
        if h.require_tools("openssl"):
            self.skipTest("missing tools: openssl")
        mt = self.start("implicit")
        p = subprocess.Popen(["openssl", "s_client", "-tls1_2", "-crlf", "-connect",
                              f"127.0.0.1:{mt.port}", "-CAfile", str(self.cert)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            # Each line once the one before it has had its effect (s_client reads its commands
            # from a terminal-like stream line by line).
            for line in (b"EHLO c.test\n", b"R\n"):
                time.sleep(1)
                p.stdin.write(line)
                p.stdin.flush()
            out = p.communicate(timeout=30)[0].decode(errors="replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn("RENEGOTIATING", out)
        s = self.ended_session()
        self.assertEqual(s["outcome"], "client_closed")
        notes = [e["note"] for e in self.events(s["id"]) if e["kind"] == "tls" and e["note"]]
        self.assertTrue(any("asked to renegotiate TLS" in n and "no renegotiation" in n
                            for n in notes), notes)

    def test_a_client_that_does_not_trust_the_certificate_is_told_apart(self):
        """The most common --local-tls mistake: the client was not told to trust mailtap's
        certificate. Over TLS 1.3 an OpenSSL client (Python here; curl, swaks and s_client are
        the same) sends its unknown_ca alert in clear, which BoringSSL reports only as
        BAD_PACKET_LENGTH: the record and the log say what happened and which file to trust."""
        untrusting = ssl.create_default_context()  # the system's CAs: not mailtap's certificate
        for mode in ("implicit", "starttls"):
            with self.subTest(mode=mode):
                if self.db.exists():
                    for f in self.db.parent.glob(self.db.name + "*"):
                        f.unlink()
                mt = self.start(mode)
                with h.SmtpSocket(mt.port) as c:
                    if mode == "starttls":
                        self.assertEqual(c.reply().code, 220)
                        self.assertEqual(c.cmd("EHLO client.test").code, 250)
                        self.assertEqual(c.cmd("STARTTLS").code, 220)
                    with self.assertRaises(ssl.SSLCertVerificationError):
                        untrusting.wrap_socket(c.sock, server_hostname="localhost")
                s = self.ended_session()
                self.assertEqual(s["outcome"], "error")
                reason = s["outcome_reason"]
                self.assertIn("client TLS handshake failed: the client refused mailtap's "
                              "certificate (TLS alert \"unknown CA\")", reason)
                self.assertIn(f"make it trust {self.cert}", reason)
                self.assertNotIn("BAD_PACKET_LENGTH", reason)
                wait_for(lambda: f"make it trust {self.cert}" in mt.stderr, what="the log line")
                mt.stop()

    # the names in the certificate, against the address clients connect to ---------------
    def ipv6_listen(self) -> str:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            return f"[::1]:{s.getsockname()[1]}"

    def curl_send(self, url: str, cacert: Path, message: bytes) -> subprocess.CompletedProcess:
        path = self.tmp / f"curl-{h.unique_token()}.eml"
        path.write_bytes(message)
        cmd = ["curl", "-sS", url, "--cacert", str(cacert), "--user", f"{USER}:{PASSWORD}",
               "--mail-from", "sender@client.test", "--mail-rcpt", "alice@example.test",
               "--upload-file", str(path)]
        h.log("run:", " ".join(cmd))
        return subprocess.run(cmd, capture_output=True, timeout=60)

    def test_clients_of_ipv6_loopback_accept_the_certificate_by_its_address(self):
        """--listen [::1]: the certificate mailtap makes names ::1 too, so curl and Python,
        which check an address against the certificate's IP address entries, accept it by
        the address they connect to (it named localhost and 127.0.0.1 only: curl exit 60,
        Python "IP address mismatch"), and there is nothing to warn about."""
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        mt = self.start("implicit", listen=self.ipv6_listen())
        self.assertNotIn("WARNING: --local-tls", mt.stderr)
        tok = h.unique_token()
        msg = h.make_message(tok)
        r = self.curl_send(f"smtps://[::1]:{mt.port}", self.cert, msg)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertDelivered(tok, msg)
        tok = h.unique_token()
        msg = h.make_message(tok)
        ctx = ssl.create_default_context(cafile=str(self.cert))
        with smtplib.SMTP_SSL("::1", mt.port, local_hostname="client.test", context=ctx,
                              timeout=30) as s:
            s.login(USER, PASSWORD)
            self.assertEqual(s.sendmail("sender@client.test", ["alice@example.test"], msg), {})
        self.assertDelivered(tok, msg)

    def test_an_older_certificate_without_ipv6_loopback_is_made_anew_for_it(self):
        """A pair an older mailtap made (names localhost and 127.0.0.1) is reused on
        127.0.0.1 (its fingerprint may be pinned: msmtp tls_fingerprint), and made anew, as on
        expiry, when --listen is [::1], whose clients need ::1 in it."""
        directory = self.cert.parent
        directory.mkdir(mode=0o700)
        key = directory / "local-tls-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out",
                        str(self.cert), "-days", "30", "-subj", "/O=mailtap local TLS/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        key.chmod(0o600)
        old = self.cert.read_bytes()
        mt = self.start("starttls")
        self.assertIn("using the local TLS certificate", mt.stderr)
        mt.stop()
        self.assertEqual(self.cert.read_bytes(), old)
        mt = self.start("starttls", listen=self.ipv6_listen())
        self.assertIn("created the local TLS certificate", mt.stderr)
        self.assertNotIn("WARNING: --local-tls", mt.stderr)
        text = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-noout", "-ext",
                               "subjectAltName"], check=True, capture_output=True).stdout.decode()
        self.assertIn("IP Address:0:0:0:0:0:0:0:1", text.replace("::1", "0:0:0:0:0:0:0:1"))

    def test_a_certificate_that_does_not_name_the_listen_address_is_warned_about(self):
        """--local-cert for localhost, mx.example.test and 127.0.0.1 with --listen [::1]: a
        warning at start says clients connecting by ::1 refuse it and what to do; Python,
        which trusts its CA, refuses it by ::1 with "bad certificate", and the reason names the
        name check beside trust (it used to send the user to trust a file already trusted).
        A client that does not trust the CA is told to trust the CA that issued the
        certificate, named, and the file by its absolute path (given relative: it was printed
        as given, and the leaf alone does not do for Python or swaks)."""
        relative = os.path.relpath(self.pki.valid_cert)
        mt = self.start("starttls", "--local-cert", relative, "--local-key", self.pki.valid_key,
                        listen=self.ipv6_listen())
        cert = str(Path(self.pki.valid_cert).resolve())
        self.assertIn(f"WARNING: --local-tls: the certificate {cert} names localhost, "
                      "mx.example.test, 127.0.0.1, not ::1 that mailtap listens on", mt.stderr)
        self.assertIn("have them connect by a name it holds (localhost)", mt.stderr)
        self.assertIn("clients must trust the CA that issued it (CN=mailtap test CA,O=mailtap "
                      "tests)", mt.stderr)
        trusting = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        untrusting = ssl.create_default_context()
        for ctx, host in ((trusting, "::1"), (untrusting, "localhost")):
            with h.SmtpSocket(mt.port, host="::1") as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                self.assertEqual(c.cmd("STARTTLS").code, 220)
                with self.assertRaises(ssl.SSLCertVerificationError):
                    ctx.wrap_socket(c.sock, server_hostname=host)
        wait_for(lambda: mt.stderr.count("TLS handshake after STARTTLS failed") >= 2 or None,
                 what="both refusals in the log")
        failures = [l for l in mt.stderr.splitlines() if "TLS handshake after STARTTLS failed" in l]
        name_line, = [l for l in failures if '"bad certificate"' in l or
                      '"certificate unknown"' in l]
        self.assertIn(f"make it trust the CA that issued {cert}", name_line)
        self.assertIn("and make it connect by a name the certificate holds (localhost, "
                      "mx.example.test, 127.0.0.1), not by another address or name", name_line)
        ca_line, = [l for l in failures if '"unknown CA"' in l]
        self.assertIn(f"make it trust the CA that issued {cert} (CN=mailtap test CA,O=mailtap "
                      "tests), not that file itself", ca_line)
        self.assertNotIn("connect by a name", ca_line)

    def test_tls_client_on_the_plain_port_is_told_what_to_do(self):
        """swaks --tlsc (TLS from the first byte) against a listener without --local-tls: its
        ClientHello is recognised, never read as commands nor relayed, and the record and the
        log say to use --local-tls implicit or connect without TLS."""
        if h.require_tools("swaks"):
            self.skipTest("missing tools: swaks")
        mt = self.mailtap(self.postfix.submission, db=self.db)
        cp = subprocess.run(["swaks", "--server", f"127.0.0.1:{mt.port}", "--to",
                             "alice@example.test", "--from", "sender@client.test", "--tlsc",
                             "--timeout", "15"], capture_output=True, timeout=60)
        self.assertNotEqual(cp.returncode, 0)
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        self.assertIn("TLS handshake on a plain-text port", s["outcome_reason"])
        self.assertIn("--local-tls implicit", s["outcome_reason"])
        events = self.events(s["id"])
        self.assertEqual([e for e in events if e["direction"] == "client_to_upstream"], [])
        self.assertFalse([e for e in events if "NUL byte" in (e["note"] or "")])
        wait_for(lambda: "TLS handshake on a plain-text port" in mt.stderr, what="the log line")

    def test_shutdown_ends_a_client_stuck_in_its_handshake(self):
        """A client that connects to the implicit port and says nothing does not hold
        mailtap past --grace (the handshake limit is --timeout-connect, 30 s)."""
        mt = self.start("implicit", "--grace", "1s", "-v")
        with socket.create_connection(("127.0.0.1", mt.port), timeout=15):
            wait_for(lambda: "connected, opening" in mt.stderr, what="the session to start")
            self.assertEqual(mt.stop(timeout=15), 0, mt.stderr)
        s = self.ended_session()
        self.assertEqual(s["outcome"], "shutdown")
        notes = " ".join(e["note"] or "" for e in self.events(s["id"]))
        self.assertIn("TLS handshake not finished: mailtap shut down during it", notes)
        self.assertNotIn("Operation aborted", notes + mt.stderr)

    def test_shutdown_during_the_handshake_after_starttls_is_recorded_as_shutdown(self):
        """The 220 to STARTTLS is out, the client has not begun its handshake when the grace
        period ends: mailtap's shutdown ended it, which is no failure of the client's TLS."""
        mt = self.start("starttls", "--grace", "1s")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            self.assertEqual(mt.stop(timeout=15), 0, mt.stderr)
        s = self.ended_session()
        self.assertEqual((s["outcome"], s["outcome_reason"]),
                         ("shutdown", "mailtap shut down during the client's handshake"))
        notes = " ".join(e["note"] or "" for e in self.events(s["id"]))
        self.assertIn("client side: TLS handshake not finished: mailtap shut down during it", notes)
        self.assertNotIn("Operation aborted", notes + mt.stderr)
        self.assertIn("ended: shutdown (mailtap shut down during the client's handshake)",
                      mt.stderr)

    def test_plain_client_on_implicit_port_is_recorded(self):
        mt = self.start("implicit")
        with socket.create_connection(("127.0.0.1", mt.port), timeout=15) as sock:
            sock.sendall(b"EHLO client.test\r\n")
            sock.settimeout(15)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        self.assertIn("TLS handshake failed: the client sent plain text", s["outcome_reason"])
        # logged after the record is committed
        wait_for(lambda: re.search(r"TLS handshake failed", mt.stderr), what="the log line")


class RepeatedEhloTest(LocalTlsCase):
    """smuggle2-F2: the upstream had the client's EHLO before the client's STARTTLS (mailtap's
    own), so the EHLO after it is the server's second. Postfix accepts that one; OpenSMTPD
    answers "503 5.5.1 Invalid command: Already identified" (RFC 5321 §4.1.4 lets it), which
    the fake here does too."""

    ALREADY = b"503 5.5.1 Invalid command: Already identified\r\n"

    def refusing_fake(self) -> h.FakeServer:
        def ehlo(sess, line):
            greeted = sum(1 for phase, cmd in sess.commands
                          if phase == "tls" and cmd[:5].upper() in (b"EHLO ", b"HELO "))
            return self.ALREADY if greeted > 1 else None  # None: the fake's own EHLO reply
        return self.fake("good", replies={"EHLO": ehlo})

    def test_smtplib_sends_mail_through_a_server_refusing_the_repeated_ehlo(self):
        f = self.refusing_fake()
        mt = self.start("starttls", upstream=f.address)
        msg = h.make_message(h.unique_token())
        ctx = ssl.create_default_context(cafile=str(self.cert))
        with smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            self.assertFalse(s.has_extn("auth"), "AUTH is withheld until the client's TLS")
            s.starttls(context=ctx)
            code, _ = s.ehlo()
            self.assertEqual(code, 250, "the client is greeted again")
            self.assertTrue(s.has_extn("auth"), "inside TLS the server's AUTH is offered")
            self.assertFalse(s.has_extn("starttls"))
            self.assertEqual(s.sendmail("sender@client.test", ["bob@example.test"], msg), {})
            s.quit()
        sess = f.wait_sessions(1)[0]
        self.assertTrue(sess.closed.wait(5))
        self.assertEqual(sess.messages, [h.dot_stuff(msg) + b".\r\n"])
        ehlos = [cmd for phase, cmd in sess.commands
                 if phase == "tls" and cmd[:5].upper() == b"EHLO "]
        self.assertEqual(ehlos, [b"ehlo client.test\r\n"] * 2,  # smtplib's spelling
                         "both of the client's EHLOs reach the server, as the client sent them")
        s = self.ended_session()
        self.assertEqual(s["outcome"], "quit")
        events = self.events(s["id"])
        refusal = [e for e in events if e["direction"] == "upstream_to_client"
                   and bytes(e["bytes"] or b"") == self.ALREADY]
        self.assertEqual(len(refusal), 1, "the server's 503 stays in the record")
        after = events[list(events).index(refusal[0]) + 1]
        self.assertEqual((after["direction"], after["kind"]), ("mailtap_to_client", "rewrite"))
        self.assertIn("refused the repeated EHLO", after["note"])
        self.assertIn(b"AUTH PLAIN LOGIN", bytes(after["bytes"]))
        # Replayed to the same server, the session goes as it went: the EHLO's reply compared
        # as the client got it both times (the 503 taken at the server's earlier word).
        mt.stop()
        cp = subprocess.run([str(h.mailtap_bin()), "replay", str(s["id"]), "--to", f.address,
                             "--ca-file", str(self.pki.ca_cert), "--tls-name", "localhost",
                             "--db", str(self.db)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertNotIn("DIFFERENT", cp.stdout)
        self.assertEqual(len(f.sessions[-1].messages), 1, "the replay sent the message again")


class ClientHandshakeWordsTest(LocalTlsCase):
    """What mailtap says of a client whose TLS handshake cannot work. A client with nothing in common with mailtap's TLS (openssl s_client offering only
    TLS 1.1, only finite-field groups, only RSA signatures) was logged with BoringSSL's code
    alone (UNSUPPORTED_PROTOCOL (SSL routines, OPENSSL_internal)); a plain-text client on the
    implicit port, which sends nothing, with "no handshake within 30s" alone."""

    def setUp(self):
        super().setUp()
        self.upstream = self.fake("good")

    def start_on_fake(self, mode: str, *extra) -> h.Mailtap:
        return self.start(mode, *extra, upstream=self.upstream.address)

    def s_client(self, port: int, *args) -> subprocess.CompletedProcess:
        return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)

    def test_a_client_offering_only_tls_1_1_is_told_what_mailtap_accepts(self):
        for mode, starttls in (("implicit", []), ("starttls", ["-starttls", "smtp"])):
            with self.subTest(mode=mode):
                if self.db.exists():
                    for f in self.db.parent.glob(self.db.name + "*"):
                        f.unlink()
                mt = self.start_on_fake(mode)
                cp = self.s_client(mt.port, *starttls, "-tls1_1", "-cipher",
                                   "DEFAULT:@SECLEVEL=0")
                self.assertNotEqual(cp.returncode, 0, cp.stdout)
                s = self.ended_session()
                reason = s["outcome_reason"] or " ".join(
                    e["note"] or "" for e in self.events(s["id"]))
                self.assertIn("the client offered only TLS versions older than 1.2", reason)
                self.assertIn("mailtap accepts TLS 1.2 and 1.3", reason)
                self.assertIn("[UNSUPPORTED_PROTOCOL]", reason)
                self.assertNotIn("OPENSSL_internal", reason)
                wait_for(lambda: "[UNSUPPORTED_PROTOCOL]" in mt.stderr, what="the log line")
                self.assertNotIn("OPENSSL_internal", mt.stderr)
                mt.stop()

    def test_no_shared_group_or_cipher_is_said_in_words(self):
        mt = self.start_on_fake("implicit")
        for args, words in (
                (["-groups", "ffdhe2048"], "no key exchange group mailtap accepts (X25519, "
                                           "P-256, P-384"),
                (["-tls1_2", "-sigalgs", "RSA+SHA256"],
                 "no TLS 1.2 cipher suite that mailtap's certificate (EC P-256 key) can serve"),
                (["-tls1_2", "-cipher", "DHE-RSA-AES128-SHA"],
                 "--local-cert and --local-key with an RSA key"),
                (["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"],
                 "the client accepts no signature algorithm mailtap's certificate (EC P-256 key) "
                 "can make")):
            with self.subTest(args=args):
                self.assertNotEqual(self.s_client(mt.port, *args).returncode, 0)
                wait_for(lambda: words in mt.stderr, what=f"the log line saying {words!r}")
        self.assertNotIn("OPENSSL_internal", mt.stderr)

    def test_a_plain_text_client_on_the_implicit_port_is_told_what_to_do(self):
        """smtplib.SMTP (no TLS) waits for a greeting, mailtap for a ClientHello: after
        --timeout-connect the reason says the client sent nothing and how to set it."""
        mt = self.start_on_fake("implicit", "--timeout-connect", "2s")
        with self.assertRaises(smtplib.SMTPServerDisconnected):
            smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test", timeout=30)
        s = self.ended_session()
        self.assertEqual(s["outcome"], "error")
        reason = s["outcome_reason"]
        self.assertIn("client TLS handshake failed: the client sent nothing within 2", reason)
        self.assertIn("(--timeout-connect): --local-tls implicit expects TLS from the first byte",
                      reason)
        self.assertIn("set the client to SSL/TLS", reason)
        self.assertIn("or run mailtap with --local-tls starttls", reason)
        wait_for(lambda: "the client sent nothing within" in mt.stderr, what="the log line")

    def test_a_client_that_begins_its_handshake_is_not_said_to_have_sent_nothing(self):
        mt = self.start_on_fake("implicit", "--timeout-connect", "2s")
        with socket.create_connection(("127.0.0.1", mt.port), timeout=15) as sock:
            sock.sendall(bytes.fromhex("160301"))  # a record header, begun
            sock.settimeout(15)
            with contextlib.suppress(OSError):
                while sock.recv(4096):
                    pass
        reason = self.ended_session()["outcome_reason"]
        self.assertIn("the client did not finish its TLS handshake within 2", reason)

    def test_a_client_silent_after_the_220_to_starttls_is_said_to_be(self):
        mt = self.start_on_fake("starttls", "--timeout-connect", "2s")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            wait_for(lambda: "TLS handshake after STARTTLS failed" in mt.stderr, timeout=20,
                     what="the log line")
        self.assertIn("TLS handshake after STARTTLS failed: the client sent nothing within 2s "
                      "(--timeout-connect) after the 220 to its STARTTLS", mt.stderr)


class ListeningLineTest(LocalTlsCase):
    """The "listening on" line says what clients are offered: with --auth-user no AUTH at all,
    inside TLS neither (it said "AUTH only inside TLS", as if they should authenticate there)."""

    def test_with_auth_user_the_listening_line_offers_clients_no_auth(self):
        upstream = self.fake("good").address
        pw = self.tmp / f"pw-{h.unique_token()}"
        pw.write_text(PASSWORD + "\n")
        pw.chmod(0o600)
        mt = self.start("starttls", "--auth-user", USER, "--password-file", str(pw),
                        upstream=upstream)
        [line] = [ln for ln in mt.stderr.splitlines() if "listening on" in ln]
        self.assertIn("(clients: STARTTLS offered, no AUTH: mailtap authenticates)", line)
        self.assertNotIn("AUTH only inside TLS", line)
        mt.stop()
        mt = self.start("starttls", upstream=upstream)
        [line] = [ln for ln in mt.stderr.splitlines() if "listening on" in ln]
        self.assertIn("(clients: STARTTLS offered, AUTH only inside TLS)", line)


if __name__ == "__main__":
    h.main()
