#!/usr/bin/env python3
"""Self-tests of the harness: PKI, the private Postfix and the fake servers, without mailtap.

If these fail, the mailtap integration tests cannot be trusted."""

import base64
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ALICE = ("alice", h.USERS["alice"])


class PkiTest(h.IntegrationCase):
    needs_mailtap = False

    def verify(self, cert, *extra):
        return subprocess.run(["openssl", "verify", "-CAfile", str(self.pki.ca_cert), *extra,
                               str(cert)], capture_output=True, text=True)

    def test_valid_cert_verifies_for_its_names(self):
        for name in ("localhost", "mx.example.test"):
            cp = self.verify(self.pki.valid_cert, "-verify_hostname", name)
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        cp = self.verify(self.pki.valid_cert, "-verify_ip", "127.0.0.1")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)

    def test_wrong_name_cert_chains_but_not_for_localhost(self):
        self.assertEqual(self.verify(self.pki.wrong_name_cert).returncode, 0)
        cp = self.verify(self.pki.wrong_name_cert, "-verify_hostname", "localhost")
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("hostname mismatch", cp.stdout + cp.stderr)

    def test_expired_cert_is_expired(self):
        cp = self.verify(self.pki.expired_cert)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("expired", cp.stdout + cp.stderr)

    def test_self_signed_cert_is_self_signed(self):
        cp = self.verify(self.pki.self_signed_cert)
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("self-signed", cp.stdout + cp.stderr)


class PostfixFixtureTest(h.IntegrationCase):
    needs_mailtap = False
    with_postfix = True

    def test_greeting_and_plain_ehlo(self):
        with h.SmtpSocket(self.postfix.submission_port) as c:
            g = c.reply()
            self.assertEqual(g.code, 220)
            self.assertTrue(g.text.startswith("mx.example.test ESMTP Postfix"), g)
            e = c.cmd("EHLO client.test")
            self.assertEqual(e.code, 250)
            self.assertIn("STARTTLS", e.lines)
            self.assertFalse(any(l.startswith("AUTH") for l in e.lines), e)
            r = c.cmd("MAIL FROM:<a@client.test>")
            self.assertEqual(str(r), "530 5.7.0 Must issue a STARTTLS command first\r\n")
            self.assertEqual(c.cmd("QUIT").code, 221)

    def test_ehlo_after_starttls_offers_auth_plain_login_only(self):
        with h.SmtpSocket(self.postfix.submission_port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("STARTTLS").code, 220)
            c.starttls(self.pki.ca_cert, "localhost")
            e = c.cmd("EHLO client.test")
            self.assertIn("AUTH PLAIN LOGIN", e.lines)
            self.assertNotIn("STARTTLS", e.lines)
            r = c.cmd("AUTH PLAIN " + h.auth_plain("alice", "wrong"))
            self.assertEqual(r.code, 535, r)
            r = c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE))
            self.assertEqual(r.code, 235, r)

    def test_implicit_tls_port(self):
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        with socket.create_connection(("127.0.0.1", self.postfix.smtps_port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                self.assertTrue(t.recv(1024).startswith(b"220 mx.example.test"))

    def test_openssl_s_client_verifies(self):
        cp = subprocess.run(
            ["openssl", "s_client", "-starttls", "smtp", "-connect", self.postfix.submission,
             "-CAfile", str(self.pki.ca_cert), "-verify_hostname", "localhost",
             "-verify_return_error", "-brief", "-ign_eof"],
            input="QUIT\r\n", capture_output=True, text=True, timeout=30)
        out = cp.stdout + cp.stderr
        self.assertIn("Verification: OK", out)
        self.assertIn("221", out)

    def test_swaks_starttls_auth_plain_delivers_byte_exact(self):
        tok = h.unique_token()
        msg = h.make_message(tok)
        cp = h.swaks(self.postfix.submission_port, tls="starttls", ca_file=self.pki.ca_cert,
                     auth="PLAIN", user=ALICE[0], password=ALICE[1], data=msg)
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg)

    def test_swaks_auth_login_realm_user_delivers(self):
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="bob@example.test")
        cp = h.swaks(self.postfix.submission_port, tls="starttls", auth="LOGIN",
                     user="bob@example.test", password=h.USERS["bob"], data=msg,
                     to="bob@example.test")
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg, mailbox="bob")

    def test_swaks_implicit_tls_delivers(self):
        tok = h.unique_token()
        msg = h.make_message(tok)
        cp = h.swaks(self.postfix.smtps_port, tls="implicit", ca_file=self.pki.ca_cert,
                     auth="PLAIN", user=ALICE[0], password=ALICE[1], data=msg)
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg)

    def test_curl_starttls_and_smtps_deliver(self):
        for url in (f"smtp://localhost:{self.postfix.submission_port}",
                    f"smtps://localhost:{self.postfix.smtps_port}"):
            with self.subTest(url=url):
                tok = h.unique_token()
                msg = h.make_message(tok)
                f = self.tmp / f"{tok}.eml"
                f.write_bytes(msg)
                cp = h.curl_send(0, f, url=url, user=ALICE[0], password=ALICE[1],
                                 extra=["--ssl-reqd", "--cacert", str(self.pki.ca_cert)])
                self.assertProcOk(cp, "curl")
                self.assertDelivered(tok, msg)

    def test_smtplib_starttls_login_delivers(self):
        import smtplib
        tok = h.unique_token()
        msg = h.make_message(tok)
        with smtplib.SMTP("127.0.0.1", self.postfix.submission_port, timeout=15) as s:
            s.starttls(context=ssl.create_default_context(cafile=str(self.pki.ca_cert)))
            s.login(*ALICE)
            s.sendmail("sender@client.test", ["alice@example.test"], msg)
        self.assertDelivered(tok, msg)

    def test_local_delivery_needs_no_auth_but_relaying_does(self):
        with h.SmtpSocket(self.postfix.submission_port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("STARTTLS")
            c.starttls(self.pki.ca_cert)
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>").code, 250)
            r = c.cmd("RCPT TO:<someone@elsewhere.test>")
            self.assertEqual(r.code, 554, r)
            self.assertIn("Relay access denied", r.text)
            r = c.cmd("RCPT TO:<nobody-here@example.test>")
            self.assertEqual(r.code, 550, r)
            self.assertEqual(c.cmd("RCPT TO:<carol@example.test>").code, 250)
            self.assertEqual(c.cmd("RSET").code, 250)
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<someone@elsewhere.test>").code, 250)
            c.cmd("QUIT")

    def test_bare_lf_dot_does_not_end_data(self):
        """smtpd_forbid_bare_newline=yes (normalize): bare-LF lines are accepted, but only
        CRLF.CRLF ends DATA -- a proxy that forwards '.\\n' verbatim leaves the server
        waiting."""
        tok = h.unique_token()
        with h.SmtpSocket(self.postfix.submission_port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("STARTTLS")
            c.starttls(self.pki.ca_cert)
            self.assertEqual(c.cmd("EHLO client.test", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<carol@example.test>", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("DATA", eol=b"\n").code, 354)
            c.send(f"Subject: {tok}\n\nbody\n.\n".encode())
            with self.assertRaises(socket.timeout):
                c.reply(timeout=1.5)
            r = c.cmd(b"\r\n.")
            self.assertEqual(r.code, 250, r)
        got = self.postfix.wait_for_message(tok, mailbox="carol")
        self.assertIn(b"\n\nbody\n", got)

    def test_junk_command_limit_is_default(self):
        out = subprocess.run(["postconf", "-c", str(self.postfix.conf_dir), "-h",
                              "smtpd_junk_command_limit"], capture_output=True, text=True)
        self.assertEqual(out.stdout.strip(), "100")


class PostfixRejectBareLfTest(h.IntegrationCase):
    needs_mailtap = False
    with_postfix = True
    postfix_kwargs = {"bare_newline": "reject"}

    def test_bare_lf_command_rejected(self):
        with h.SmtpSocket(self.postfix.submission_port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("STARTTLS")
            c.starttls(self.pki.ca_cert)
            r = c.cmd("EHLO client.test", eol=b"\n")
            self.assertEqual(r.code, 550, r)
            self.assertIn("bare <LF>", r.text)


class FakeServerTest(h.IntegrationCase):
    needs_mailtap = False

    def plain_to_starttls(self, f, expect=220):
        c = h.SmtpSocket(f.port, timeout=5)
        self.addCleanup(c.close)
        self.assertEqual(c.reply().code, 220)
        e = c.cmd("EHLO client.test")
        self.assertIn("STARTTLS", e.lines)
        self.assertEqual(c.cmd("STARTTLS").code, expect)
        return c

    def test_a_no_starttls(self):
        f = self.fake("no_starttls")
        with h.SmtpSocket(f.port, timeout=5) as c:
            c.reply()
            e = c.cmd("EHLO client.test")
            self.assertEqual(e.code, 250)
            self.assertNotIn("STARTTLS", e.lines)

    def test_b_inject_in_same_segment(self):
        f = self.fake("inject")
        with h.SmtpSocket(f.port, timeout=5) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.send(b"STARTTLS\r\n")
            time.sleep(0.2)
            data = c.sock.recv(4096)
            self.assertEqual(data, b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")

    def _handshake_error(self, mode, **ctxkw):
        f = self.fake(mode)
        c = self.plain_to_starttls(f)
        with self.assertRaises(ssl.SSLCertVerificationError) as cm:
            c.starttls(self.pki.ca_cert, "localhost")
        return cm.exception.verify_message

    def test_c_self_signed(self):
        self.assertIn("self-signed", self._handshake_error("self_signed"))

    def test_d_wrong_name(self):
        self.assertIn("Hostname mismatch", self._handshake_error("wrong_name"))

    def test_expired(self):
        self.assertIn("expired", self._handshake_error("expired"))

    def test_e_stall(self):
        f = self.fake("stall")
        with h.SmtpSocket(f.port, timeout=5) as c:
            with self.assertRaises(socket.timeout):
                c.reply(timeout=1.0)
        self.assertEqual(len(f.wait_sessions(1)), 1)

    def test_f_refuse_starttls(self):
        f = self.fake("refuse_starttls")
        with h.SmtpSocket(f.port, timeout=5) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(str(c.cmd("STARTTLS")), "454 4.7.0 TLS not available\r\n")

    def test_g_good_records_bytes(self):
        f = self.fake("good")
        c = self.plain_to_starttls(f)
        c.starttls(self.pki.ca_cert, "localhost")
        e = c.cmd("EHLO client.test")
        self.assertIn("AUTH PLAIN LOGIN", e.lines)
        self.assertNotIn("STARTTLS", e.lines)
        self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertEqual(c.cmd("YWxpY2U=").code, 334)
        self.assertEqual(c.cmd("cHc=").code, 235)
        c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        self.assertEqual([c.reply().code for _ in range(3)], [250, 250, 354])
        self.assertEqual(c.cmd(b"line1\r\n..dot\r\n.").code, 250)
        c.cmd("QUIT")
        s = f.wait_sessions(1)[0]
        s.closed.wait(5)
        self.assertTrue(s.tls_established)
        self.assertEqual(s.sni, "localhost")
        self.assertEqual(s.messages, [b"line1\r\n..dot\r\n.\r\n"])
        self.assertTrue(bytes(s.post_tls).startswith(b"EHLO client.test\r\n"))
        self.assertTrue(bytes(s.post_tls).endswith(b"QUIT\r\n"))
        self.assertEqual(bytes(s.pre_tls), b"EHLO client.test\r\nSTARTTLS\r\n")

    def test_g_scripted_replies_and_implicit(self):
        f = self.fake("good", implicit=True,
                      replies={"RCPT": "550 5.1.1 scripted no such user\r\n"})
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        with socket.create_connection(("127.0.0.1", f.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                t.recv(1024)
                t.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")
                got = b""
                while got.count(b"\r\n") < 2:
                    got += t.recv(4096)
                self.assertEqual(got, b"250 2.1.0 Ok\r\n550 5.1.1 scripted no such user\r\n")


class OAuthServerTest(h.IntegrationCase):
    """The Gmail / Microsoft 365 look-alikes, checked with real clients (smtplib, curl)."""

    needs_mailtap = False
    USER, TOKEN = "me@gmail.test", "ya29.good-" + h.unique_token()

    def smtplib_auth(self, f, mech, respond):
        s = smtplib.SMTP("127.0.0.1", f.port, local_hostname="client.test", timeout=10)
        self.addCleanup(s.close)
        s.starttls(context=ssl.create_default_context(cafile=str(self.pki.ca_cert)))
        s.ehlo()
        return s, s.auth(mech, respond, initial_response_ok=True)

    def test_gmail_xoauth2_good_and_expired_token_with_smtplib(self):
        f = self.oauth_server(valid_tokens={self.TOKEN})
        # MAIL before TLS and before AUTH: Gmail's own refusals
        with h.SmtpSocket(f.port, timeout=5) as c:
            c.reply()
            self.assertNotIn("AUTH", " ".join(c.cmd("EHLO client.test").lines))
            self.assertEqual(c.cmd("MAIL FROM:<a@b>").code, 530)
            c.cmd("STARTTLS")
            c.starttls(self.pki.ca_cert)
            e = c.cmd("EHLO client.test")
            self.assertIn("AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH", e.lines)
            r = c.cmd("MAIL FROM:<a@b>")
            self.assertEqual((r.code, len(r.lines)), (530, 2), r)
            self.assertIn("Authentication Required", r.text)

        good = h.xoauth2_bytes(self.USER, self.TOKEN).decode()
        s, (code, _) = self.smtplib_auth(f, "XOAUTH2", lambda challenge=None: good)
        self.assertEqual(code, 235)
        self.assertEqual(s.sendmail("a@b", ["c@d"], b"Subject: x\r\n\r\nhi\r\n"), {})
        s.quit()

        expired = h.xoauth2_bytes(self.USER, "ya29.expired").decode()
        # smtplib answers the error challenge with base64("") = the empty line Gmail wants
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            self.smtplib_auth(f, "XOAUTH2", lambda c=None: expired if c is None else "")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn(b"BadCredentials", cm.exception.smtp_error)
        first, second = (x.auths[0] for x in f.wait_sessions(3)[1:3])
        self.assertEqual((first.code, first.user, first.secret), (235, self.USER, self.TOKEN))
        self.assertEqual(first.lines, [b"AUTH XOAUTH2 " + base64.b64encode(good.encode()) +
                                       b"\r\n"])
        self.assertEqual(second.code, 535)
        self.assertEqual(base64.b64decode(second.error_challenge[4:]),
                         b'{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}')
        self.assertEqual(second.after_error, b"\r\n")
        self.assertEqual(f.sessions[1].messages, [b"Subject: x\r\n\r\nhi\r\n.\r\n"])

    def test_gmail_app_password_and_microsoft_basic_auth_disabled(self):
        f = self.oauth_server(app_password_required=True)
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s = smtplib.SMTP("127.0.0.1", f.port, timeout=10)
            self.addCleanup(s.close)
            s.starttls(context=ssl.create_default_context(cafile=str(self.pki.ca_cert)))
            s.login(self.USER, "account-password")
        self.assertEqual(cm.exception.smtp_code, 534)
        self.assertIn(b"Application-specific password required", cm.exception.smtp_error)

        ms = self.oauth_server("microsoft365", valid_tokens={self.TOKEN})
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s = smtplib.SMTP("127.0.0.1", ms.port, timeout=10)
            self.addCleanup(s.close)
            s.starttls(context=ssl.create_default_context(cafile=str(self.pki.ca_cert)))
            s.ehlo()
            self.assertEqual(s.esmtp_features["auth"], " LOGIN XOAUTH2")
            s.login(self.USER, "a-password")  # smtplib tries LOGIN, the only one it has
        self.assertEqual(cm.exception.smtp_code, 535)
        self.assertIn(b"basic authentication is disabled", cm.exception.smtp_error)
        self.assertEqual(ms.wait_sessions(1)[0].auths[0].mechanism, "LOGIN")

    def test_curl_oauth2_bearer_against_both_flavours(self):
        """curl picks OAUTHBEARER at Gmail and XOAUTH2 at Microsoft 365 for --oauth2-bearer;
        both servers parse what it sends and accept only the valid token."""
        msg = self.tmp / "curl-msg.txt"
        msg.write_bytes(b"Subject: curl\r\n\r\nhello\r\n")
        for flavour, mech in (("gmail", "OAUTHBEARER"), ("microsoft365", "XOAUTH2")):
            f = self.oauth_server(flavour, valid_tokens={self.TOKEN}, account=self.USER)
            for token, rc in ((self.TOKEN, 0), ("ya29.expired", 67)):
                cp = h.curl_send(f.port, msg, user=self.USER, password="",
                                 url=f"smtp://localhost:{f.port}",
                                 extra=["--ssl-reqd", "--cacert", str(self.pki.ca_cert),
                                        "--oauth2-bearer", token])
                self.assertEqual(cp.returncode, rc, cp.stderr.decode(errors="replace"))
            good, bad = (s.auths[0] for s in f.wait_sessions(2)[:2])
            self.assertEqual((good.mechanism, good.user, good.secret, good.code),
                             (mech, self.USER, self.TOKEN, 235), good)
            self.assertEqual(bad.code, 535, bad)
            if mech == "OAUTHBEARER":
                self.assertEqual((good.fields["host"], good.fields["port"]),
                                 ("localhost", str(f.port)))
                self.assertEqual(bad.after_error, b"AQ==\r\n")
            else:
                self.assertIsNone(bad.error_challenge, "Microsoft sends no error challenge")
            self.assertEqual(len(f.sessions[0].messages), 1)


if __name__ == "__main__":
    h.main()
