#!/usr/bin/env python3
"""Upstream failures reach the client as a 421 with a specific reason, and the proxy stays up.

Upstreams are in-process fakes (harness.FakeServer) that misbehave on purpose."""

import contextlib
import dataclasses
import json
import os
import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class PlainAfterStarttlsServer:
    """A server that accepts mailtap's STARTTLS with 220, then sends plain text where its TLS
    handshake is due, in a write of its own: once mailtap's ClientHello is in
    (`after_220`), or right behind its EHLO reply, before the STARTTLS (`after_ehlo_reply`:
    its 220 to the STARTTLS then comes where the handshake is due). Plain TCP throughout;
    `received` keeps every octet of each connection."""

    def __init__(self, where: str):
        self.where = where
        self.received: list[bytes] = []
        self._lsock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._lsock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        with contextlib.suppress(OSError):
            self._lsock.close()

    def _serve(self):
        while True:
            try:
                conn, _ = self._lsock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                self._dialogue(conn)

    def _dialogue(self, conn):
        conn.settimeout(20)
        got = bytearray()
        self.received.append(got)

        def until(marker: bytes) -> None:
            while marker not in got:
                chunk = conn.recv(4096)
                if not chunk:
                    raise OSError("closed")
                got.extend(chunk)

        conn.sendall(b"220 plain.example.test ESMTP\r\n")
        until(b"\r\n")  # EHLO
        conn.sendall(b"250-plain.example.test\r\n250 STARTTLS\r\n")
        if self.where == "after_ehlo_reply":
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        until(b"STARTTLS\r\n")
        if self.where == "after_220":
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            mark = len(got)
            while len(got) == mark:  # mailtap's ClientHello: its handshake has begun
                chunk = conn.recv(4096)
                if not chunk:
                    return
                got.extend(chunk)
            conn.sendall(b"250 injected\r\n")
        else:
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")  # the STARTTLS's own reply
        while chunk := conn.recv(4096):
            got.extend(chunk)


class StarttlsAnsweredServer(PlainAfterStarttlsServer):
    """Plain TCP: greets with `greeting` (`repeat` times), offers STARTTLS, answers it with
    `answer`, and reads on until mailtap closes."""

    def __init__(self, answer: bytes, *, greeting: bytes = b"220 odd.example.test ESMTP\r\n",
                 repeat: int = 1):
        self.answer, self.greeting, self.repeat = answer, greeting, repeat
        super().__init__("")

    def _dialogue(self, conn):
        conn.settimeout(20)
        for _ in range(self.repeat):
            conn.sendall(self.greeting)
        conn.recv(4096)  # EHLO
        conn.sendall(b"250-odd.example.test\r\n250 STARTTLS\r\n")
        conn.recv(4096)  # STARTTLS
        conn.sendall(self.answer)
        while conn.recv(4096):
            pass


def issue_via_intermediate(pki: h.Pki, name: str):
    """An intermediate CA of the test CA (CN=`name` intermediate CA) and a localhost server
    certificate it issued: (a Pki presenting the leaf alone, one presenting leaf + intermediate,
    the intermediate's PEM)."""
    d = pki.dir
    ica, ica_key, ica_csr, ica_ext = (d / f"{name}-ica.pem", d / f"{name}-ica.key",
                                      d / f"{name}-ica.csr", d / f"{name}-ica.ext")
    ica_ext.write_text("basicConstraints = critical, CA:TRUE, pathlen:0\n"
                       "keyUsage = critical, keyCertSign, cRLSign\n")
    h._openssl("req", "-new", *h.EC_P256, "-nodes", "-keyout", ica_key, "-out", ica_csr,  # noqa: SLF001
               "-subj", f"/O=mailtap tests/CN={name} intermediate CA")
    h._openssl("x509", "-req", "-in", ica_csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,  # noqa: SLF001
               "-set_serial", "7001", "-days", "30", "-extfile", ica_ext, "-out", ica)
    leaf, key, csr, ext = d / f"{name}.pem", d / f"{name}.key", d / f"{name}.csr", d / f"{name}.ext"
    ext.write_text("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                   "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n")
    h._openssl("req", "-new", *h.EC_P256, "-nodes", "-keyout", key, "-out", csr,  # noqa: SLF001
               "-subj", "/CN=localhost")
    h._openssl("x509", "-req", "-in", csr, "-CA", ica, "-CAkey", ica_key, "-set_serial", "7002",  # noqa: SLF001
               "-days", "30", "-extfile", ext, "-out", leaf)
    key.chmod(0o600)
    chain = d / f"{name}-chain.pem"
    chain.write_bytes(leaf.read_bytes() + ica.read_bytes())
    return (dataclasses.replace(pki, valid_cert=leaf, valid_key=key),
            dataclasses.replace(pki, valid_cert=chain, valid_key=key), ica)


def probe_summary(target: str, *args: str) -> str:
    """`mailtap probe`'s output from its Summary on."""
    cp = subprocess.run([str(h.mailtap_bin()), "probe", target, "--color", "never", *args],
                        capture_output=True, text=True, timeout=60, check=False)
    return cp.stdout[cp.stdout.find("Summary"):]


class ClosingInTheHandshakeServer(PlainAfterStarttlsServer):
    """A server that takes mailtap's ClientHello (after STARTTLS, or as the first bytes of an
    implicit-TLS port) and closes the connection, or resets it (`reset`), without an alert: a
    broken TLS set-up, or a box on the path that drops TLS."""

    def __init__(self, *, reset: bool, implicit: bool):
        self.reset, self.implicit = reset, implicit
        super().__init__("")

    def _dialogue(self, conn):
        conn.settimeout(20)
        if not self.implicit:
            conn.sendall(b"220 broken.example.test ESMTP\r\n")
            conn.recv(4096)  # EHLO
            conn.sendall(b"250-broken.example.test\r\n250 STARTTLS\r\n")
            conn.recv(4096)  # STARTTLS
            conn.sendall(b"220 2.0.0 Ready to start TLS\r\n")
        conn.recv(4096)  # the ClientHello
        if self.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")


class GarbageInTheHandshakeServer(ClosingInTheHandshakeServer):
    """A server that answers mailtap's ClientHello with a TLS record header and garbage where
    its ServerHello was due, then waits: BoringSSL fails with EXCESSIVE_MESSAGE_SIZE."""

    def __init__(self):
        super().__init__(reset=False, implicit=False)

    def _dialogue(self, conn):
        super()._dialogue(conn)
        conn.sendall(b"\x16\x03\x03\x00\x05garbagegarbage")
        try:
            conn.recv(4096)  # until mailtap closes
        except OSError:
            pass


class UpstreamFailureTest(h.IntegrationCase):

    def assert_421(self, mt: h.Mailtap, *needles: str, regex: str = None, times: int = 2):
        """Connect `times` times; each gets a 421 containing every needle (case-insensitive),
        the connection is closed after it, and mailtap keeps running."""
        last = None
        for i in range(times):
            with h.SmtpSocket(mt.port, timeout=20) as c:
                r = c.reply()
                if r.code == 220:  # a design that greets first reports the failure later
                    r = c.cmd("EHLO client.test")
                self.assertEqual(r.code, 421, f"expected 421, got: {r}\nmailtap output:\n{mt.output}")
                text = r.text
                self.assertRegex(r.lines[-1], r"^4\.\d+\.\d+ ", "421 without an enhanced code")
                for n in needles:
                    self.assertIn(n.lower(), text.lower(), f"{n!r} not in reply: {r}")
                if regex:
                    self.assertRegex(text, re.compile(regex, re.I))
                self.assertTrue(c.is_closed(5), "connection not closed after the 421")
            self.assertTrue(mt.alive(), f"mailtap exited after a failed session:\n{mt.output}")
            last = r
        return last

    def test_connection_refused(self):
        mt = self.mailtap(f"127.0.0.1:{h.closed_port()}")
        self.assert_421(mt, "refused")

    def test_a_no_starttls_offered(self):
        f = self.fake("no_starttls")
        mt = self.mailtap(f.address)
        self.assert_421(mt, "STARTTLS")
        # mailtap never sent a command in clear beyond EHLO (no AUTH, no MAIL)
        for s in f.sessions:
            for phase, line in s.commands:
                self.assertRegex(line, rb"^(EHLO|HELO|QUIT)\b", s.commands)

    def test_b_injection_after_starttls_ready(self):
        f = self.fake("inject")
        mt = self.mailtap(f.address)
        self.assert_421(mt, "inject", times=1)
        for s in f.sessions:
            self.assertEqual(bytes(s.post_tls), b"", "mailtap talked after an injection")
        # the record keeps the injected octets as evidence, escaped, not only their count
        mt.stop()
        _, notes = session_row(mt)
        self.assertIn('14 octets followed the 220 reply to STARTTLS before the handshake: '
                      '"250 injected\\r\\n"', notes)

    def test_b_a_tls_alert_behind_the_220_is_the_servers_tls_not_an_injection(self):
        """An OpenSSL server that cannot start any handshake (its TLS versions, ciphers or
        certificate do not fit its settings) sends an alert as soon as its handshake starts,
        right behind its 220: the reason says so, in proxy and probe, and not "injection"."""
        f = self.fake("inject", inject=b"\x15\x03\x01\x00\x02\x02\x28")
        mt = self.mailtap(f.address)
        words = (f'{f.address} sent a TLS alert ("handshake failure") before mailtap\'s handshake '
                 "began: its TLS configuration cannot start a handshake at all")
        r = self.assert_421(mt, words, times=1)
        self.assertNotIn("injection", r.text)
        summary = probe_summary(f.address, "--ca-file", str(self.pki.ca_cert))
        self.assertIn(words, summary)
        self.assertNotIn("injection", summary)
        self.assertNotIn("do not use this path", summary)
        mt.stop()
        _, notes = session_row(mt)
        self.assertIn('7 octets followed the 220 reply to STARTTLS before the handshake: '
                      '"\\x15\\x03\\x01\\x00\\x02\\x02("', notes)

    def test_b_plain_text_where_the_upstream_handshake_was_due(self):
        """The server's plain text comes in a write of its own, so it is not behind the 220 in
        mailtap's read (that case is test_b_injection_after_starttls_ready): it reaches the
        handshake instead, which fails on it. The client is told it was plain text, and what it
        said, not a bare library error, and mailtap sends nothing after its ClientHello."""
        for where in ("after_220", "after_ehlo_reply"):
            with self.subTest(where=where):
                f = PlainAfterStarttlsServer(where)
                self.addCleanup(f.close)
                mt = self.mailtap(f.address)
                said = "250 injected" if where == "after_220" else "220 2.0.0 Ready to start TLS"
                # Nothing behind the 220 was read as TLS, so no injection: the server (or a
                # firewall) said 220 and did not start TLS, and its words are quoted.
                words = (f"{f.address} answered STARTTLS with 220 but did not start TLS: it sent "
                         f'plain text where its TLS handshake was due ("{said}"): the server, or '
                         "a firewall between that inspects SMTP, is broken")
                r = self.assert_421(mt)
                self.assertEqual(r.text, f"4.7.0 mailtap: {words}")
                cp = subprocess.run([str(h.mailtap_bin()), "probe", f.address, "--ca-file",
                                     str(self.pki.ca_cert), "--color", "never"],
                                    capture_output=True, text=True, timeout=60)
                self.assertIn(words, cp.stdout)
                self.assertNotIn("injection", cp.stdout)
                for got in f.received:
                    # EHLO, STARTTLS, then one TLS record (the ClientHello), and no more
                    self.assertRegex(bytes(got), rb"^EHLO \S+\r\nSTARTTLS\r\n\x16\x03")
                    self.assertNotIn(b"QUIT", bytes(got))

    def test_a_close_or_reset_in_the_handshake_says_who_did_what_and_what_to_check(self):
        """Not BoringSSL's "stream truncated" or "Connection reset by peer": who ended it, when,
        and where to look; probe says the same as the proxy."""
        for reset, implicit in ((False, False), (True, False), (False, True)):
            with self.subTest(reset=reset, implicit=implicit):
                f = ClosingInTheHandshakeServer(reset=reset, implicit=implicit)
                self.addCleanup(f.close)
                mode = ["--tls", "implicit" if implicit else "starttls"]
                mt = self.mailtap(f.address, extra_args=mode)
                words = (f"{f.address} {'reset' if reset else 'closed'} the connection during the "
                         "TLS handshake, after mailtap's ClientHello and without a TLS alert: its "
                         "TLS set-up is broken, or something between drops TLS; check the "
                         "server's log (openssl s_client "
                         f"{'' if implicit else '-starttls smtp '}-connect {f.address} shows "
                         "the same)")
                r = self.assert_421(mt, times=1)
                self.assertEqual(r.text, f"4.7.0 mailtap: {words}")
                cp = subprocess.run([str(h.mailtap_bin()), "probe", f.address, *mode, "--ca-file",
                                     str(self.pki.ca_cert), "--color", "never"],
                                    capture_output=True, text=True, timeout=60)
                self.assertIn(words, cp.stdout)

    def test_verified_name_is_recorded_only_when_a_certificate_was_checked(self):
        """schema.md: verified_name is the name the certificate was checked against, NULL if
        none was: a handshake that ended before any certificate came checked none, while a
        refused certificate was checked (against that name)."""
        f = ClosingInTheHandshakeServer(reset=False, implicit=False)
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        self.assert_421(mt, "during the TLS handshake", times=1)
        mt.stop()
        row, _ = session_row(mt)
        self.assertEqual((row["sni"], row["verified_name"], row["verify_status"]),
                         ("localhost", None, None))
        f = self.fake("self_signed")
        mt = self.mailtap(f.address)
        self.assert_421(mt, "self-signed", times=1)
        mt.stop()
        row, _ = session_row(mt)
        self.assertEqual((row["verified_name"], row["verify_status"]), ("localhost", "failed"))

    def test_a_handshake_failing_on_what_the_server_sent_says_it_in_words(self):
        """Not BoringSSL's bare "EXCESSIVE_MESSAGE_SIZE (SSL routines, OPENSSL_internal)": what
        happened, what to check and how, with BoringSSL's reason kept in brackets at the end."""
        f = GarbageInTheHandshakeServer()
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, times=1)
        self.assertEqual(r.text, f"4.7.0 mailtap: TLS handshake with {f.address} failed: what it "
                         "sent was not a TLS handshake mailtap could complete; check the "
                         "server's TLS set-up (openssl s_client -starttls smtp -connect "
                         f"{f.address}), and whether that port expects --tls implicit or --tls "
                         "starttls [EXCESSIVE_MESSAGE_SIZE (SSL routines, OPENSSL_internal)]")

    def test_c_self_signed(self):
        f = self.fake("self_signed")
        mt = self.mailtap(f.address)
        # --ca-file was given: the reason says that file does not hold it, not to use --ca-file
        self.assert_421(mt, f"certificate for localhost is self-signed, and {self.pki.ca_cert} "
                        "does not hold it: if you trust it, use --ca-file with that very "
                        "certificate, or --insecure")

    def test_c_self_signed_implicit_tls(self):
        f = self.fake("self_signed", implicit=True)
        mt = self.mailtap(f.address, tls="implicit")
        self.assert_421(mt, "self-signed", "--insecure")

    def test_c_insecure_accepts_self_signed(self):
        f = self.fake("self_signed")
        mt = self.mailtap(f.address, extra_args=["--insecure"])
        with h.SmtpSocket(mt.port) as c:
            g = c.reply()
            self.assertEqual(str(g), f.banner.decode())
            # What everyone types first tells them the link is not verified, in the free text
            # of the reply's first line (no client parses it).
            r = c.cmd("EHLO client.test")
            self.assertEqual(r.code, 250)
            self.assertTrue(r.lines[0].endswith(
                f" [mailtap: certificate of {f.address} NOT verified: --insecure]"), r.lines)
            # A client that greets with HELO, as telnet tutorials do, is told too.
            r = c.cmd("HELO client.test")
            self.assertEqual(r.lines, [
                f"fake.example.test [mailtap: certificate of {f.address} NOT verified: --insecure]"])
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            self.assertEqual(c.cmd(b"Subject: insecure\r\n\r\nhello\r\n.").code, 250)
            # The one reply of mailtap's own about the link says it is not verified: the start
            # warning is on the stderr of whoever started the proxy.
            r = c.cmd("STARTTLS")
            self.assertEqual(r.code, 502)
            self.assertIn(", certificate NOT verified: --insecure); a client that requires TLS",
                          r.text)
            self.assertEqual(c.cmd("QUIT").code, 221)
        s = f.wait_sessions(1)[0]
        s.closed.wait(5)
        self.assertTrue(s.tls_established)
        self.assertEqual(s.messages, [b"Subject: insecure\r\n\r\nhello\r\n.\r\n"])
        mt.stop()
        db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001
        shown = subprocess.run([str(h.mailtap_bin()), "show", "1", "--db", db, "--color", "never"],
                               capture_output=True, text=True, check=True).stdout
        self.assertIn("certificate NOT verified: --insecure)", shown)  # the 502, recorded
        tls = [line for line in shown.splitlines() if line.startswith("tls ")]
        self.assertEqual(len(tls), 1, shown)
        # and what verification would have said: a certificate swapped on the path leaves a trace
        would = (f"verify: not verified (--insecure); verification would have failed: certificate "
                 f"for localhost is self-signed, and {self.pki.ca_cert} does not hold it: if you "
                 "trust it, use --ca-file with that very certificate, or --insecure")
        self.assertTrue(tls[0].endswith(would), tls[0])
        row, _ = session_row(mt)
        self.assertEqual(row["verify_status"], "not_verified_insecure")
        self.assertTrue(row["verify_reason"].startswith(
            "not verified (--insecure); verification would have failed: certificate for "
            "localhost is self-signed"), row["verify_reason"])
        # The `!` the list marks it with is explained where it is seen, and in --help.
        legend = "! after the TLS version: run with --insecure, the server's certificate NOT verified"
        listed = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", db, "--color", "never"],
                                capture_output=True, text=True, check=True).stdout
        self.assertIn("TLSv1.3!", listed)
        self.assertEqual(listed.splitlines()[-1], legend, listed)
        helped = subprocess.run([str(h.mailtap_bin()), "sessions", "--help"],
                                capture_output=True, text=True, check=True).stdout
        self.assertIn(legend, helped)

    def test_c_insecure_records_that_a_good_certificate_would_have_passed(self):
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--insecure"])
        self.assertEqual(first_reply_or_after_ehlo(mt.port).code, 250)
        mt.stop()
        row, _ = session_row(mt)
        self.assertEqual((row["verify_status"], row["verify_reason"], row["insecure"]),
                         ("not_verified_insecure",
                          "not verified (--insecure); verification would have passed", 1))

    def test_the_sessions_list_has_no_legend_without_an_insecure_session(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("QUIT").code, 221)
        mt.stop()
        db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001
        listed = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", db, "--color", "never"],
                                capture_output=True, text=True, check=True).stdout
        self.assertEqual(len(listed.splitlines()), 2, listed)
        self.assertNotIn("!", listed)

    def test_bytes_sent_before_a_refused_set_up_are_not_said_to_come_after_the_end(self):
        """A client that types ahead at connect, before any greeting: when the set-up is refused,
        what it sent was never read, and the note says so rather than "after the end"."""
        f = self.fake("self_signed")
        mt = self.mailtap(f.address)
        early = b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
        with h.SmtpSocket(mt.port, timeout=20) as c:
            c.sock.sendall(early)
            self.assertEqual(c.reply().code, 421)
        mt.stop()
        _, notes = session_row(mt)
        dropped = [n for n in notes if "discarded unread" in n]
        self.assertEqual(dropped, [f"{len(early)} octets the client sent were discarded unread: "
                                   "the session ended before the client was greeted, so nothing "
                                   "it sent was read"], notes)

    def test_d_wrong_name(self):
        f = self.fake("wrong_name")
        mt = self.mailtap(f.address, tls_name="localhost")
        self.assert_421(mt, "localhost")

    def fake_presenting(self, name: str, san):
        """A good fake whose certificate, signed by the test CA, has subjectAltName `san`."""
        f = h.FakeServer("good", h.issue_certificate(self.pki, name, san=san))
        f.__enter__()
        self.addCleanup(f.close)
        return f

    def test_certificate_without_subject_alt_name_is_issued_for_no_name(self):
        """CN=localhost and no subjectAltName: the subject's CN is not a name to check
        (RFC 6125 6.4.4, CA/Browser Forum baseline), so nothing matches."""
        f = self.fake_presenting("cn-only", None)
        mt = self.mailtap(f.address, tls_name="localhost")
        self.assert_421(mt, "issued for no name, not for localhost", "no subjectAltName",
                        "CN=localhost")
        self.assertEqual(f.sessions[0].commands[-1][1], b"STARTTLS\r\n", "went on after TLS")

    def test_a_dns_name_spelling_an_address_does_not_name_the_address(self):
        """SAN DNS:127.0.0.1 for the upstream 127.0.0.1: refused, and the reason tells the DNS
        entry from the IP address entry it would need."""
        f = self.fake_presenting("dns-ip", "DNS:127.0.0.1")
        mt = self.mailtap(f.address, tls_name=None)
        self.assert_421(mt, "certificate is issued for 127.0.0.1 (as a DNS name, not an IP "
                        "address entry), not for 127.0.0.1")

    def test_an_ipv6_address_entry_is_written_as_an_address(self):
        """SAN IP:::1 for the upstream 127.0.0.1: the reason names ::1 as people write it
        (RFC 5952), in the 421 and the record, not as 32 hex digits."""
        f = self.fake_presenting("ip6-only", "IP:::1")
        mt = self.mailtap(f.address, tls_name=None)
        self.assert_421(mt, "certificate is issued for ::1, not for 127.0.0.1", times=1)
        mt.stop()
        row, _ = session_row(mt)
        self.assertIn("issued for ::1, not for 127.0.0.1", row["outcome_reason"])

    def test_a_wildcard_over_a_top_level_label_is_said_to_be_too_broad(self):
        """SAN DNS:*.test for foo.test: refused (RFC 6125 6.4.3), and the reason says the
        wildcard is too broad, not that *.test names something else (--tls-name cannot help)."""
        f = self.fake_presenting("wild-tld", "DNS:*.test")
        mt = self.mailtap(f.address, tls_name="foo.test")
        r = self.assert_421(mt, "certificate is issued for *.test, not for foo.test: the "
                            "wildcard *.test is too broad to be accepted", times=1)
        self.assertNotIn("--tls-name", r.text)

    def test_a_missing_intermediate_is_the_servers_chain_in_proxy_and_probe_alike(self):
        """The server sends its certificate without the intermediate that issued it (the
        commonest chain fault): the 421, the record and probe say the same, that the server's
        chain is at fault and a --ca-file with the intermediate only works around it, and do not
        send the user to --insecure."""
        leaf_only, _, _ = issue_via_intermediate(self.pki, "leaf-only")
        f = h.FakeServer("good", leaf_only)
        f.__enter__()
        self.addCleanup(f.close)
        why = ("certificate for localhost is issued by CN=leaf-only intermediate CA,O=mailtap "
               "tests, which localhost did not send and " + str(self.pki.ca_cert) + " does not "
               "hold: if that is an intermediate CA (as public CAs issue from), the server's chain "
               "is at fault and must be fixed there (it must send the intermediate after its "
               "certificate), which a --ca-file holding that intermediate and its root only works "
               "around here; if it is your own root CA, use --ca-file with it")
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, why, times=1)
        self.assertNotIn("--insecure", r.text)
        mt.stop()
        row, _ = session_row(mt)
        self.assertIn(why, row["outcome_reason"])
        summary = probe_summary(f.address, "--tls-name", "localhost", "--ca-file",
                                str(self.pki.ca_cert))
        self.assertIn(why, summary)
        self.assertEqual(summary.count("intermediate CA (as public CAs issue from)"), 1, summary)

    def test_an_intermediate_in_ca_file_is_said_to_be_no_root(self):
        """The server sends its chain; --ca-file holds the intermediate that issued its
        certificate instead of the root. Refused (mailtap trusts a chain up to a root only), and
        the reason names that intermediate and its root, not the server's chain (it sent it)."""
        _, with_chain, ica = issue_via_intermediate(self.pki, "chain-sent")
        f = h.FakeServer("good", with_chain)
        f.__enter__()
        self.addCleanup(f.close)
        why = (f"the chain for localhost reaches CN=chain-sent intermediate CA,O=mailtap tests, "
               f"which {ica} holds, but that is an intermediate CA, not a root: mailtap trusts a "
               f"chain only up to a root CA; put its issuer (CN=mailtap test CA,O=mailtap tests) "
               f"in --ca-file too")
        mt = self.mailtap(f.address, ca_file=ica)
        self.assert_421(mt, why, times=1)
        summary = probe_summary(f.address, "--tls-name", "localhost", "--ca-file", str(ica))
        self.assertIn(why, summary)
        self.assertNotIn("did not send", summary)
        # with the root, as the reason says, the same server is verified
        mt = self.mailtap(f.address)
        self.assertEqual(first_reply_or_after_ehlo(mt.port).code, 250)

    def test_an_issuer_sent_that_is_no_ca_is_not_said_to_be_missing(self):
        """The server sends its certificate and the one that issued it, but that one is a
        server certificate itself (CA:FALSE): the reason says it was sent and is no CA, not
        that the server did not send it."""
        nonca = h.issue_certificate(self.pki, "not-a-ca", san="DNS:nonca.example.test",
                                    cn="not a CA",
                                    usage="keyUsage = critical, digitalSignature\n")
        d = self.pki.dir
        leaf, key, csr, ext = (d / "by-nonca.pem", d / "by-nonca.key", d / "by-nonca.csr",
                               d / "by-nonca.ext")
        ext.write_text("basicConstraints = critical, CA:FALSE\n"
                       "subjectAltName = DNS:localhost,IP:127.0.0.1\n")
        h._openssl("req", "-new", *h.EC_P256, "-nodes", "-keyout", key, "-out", csr,  # noqa: SLF001
                   "-subj", "/CN=localhost")
        h._openssl("x509", "-req", "-in", csr, "-CA", nonca.valid_cert, "-CAkey",  # noqa: SLF001
                   nonca.valid_key, "-set_serial", "7101", "-days", "30", "-extfile", ext,
                   "-out", leaf)
        key.chmod(0o600)
        chain = d / "by-nonca-chain.pem"
        chain.write_bytes(leaf.read_bytes() + nonca.valid_cert.read_bytes())
        f = h.FakeServer("good", dataclasses.replace(self.pki, valid_cert=chain, valid_key=key))
        f.__enter__()
        self.addCleanup(f.close)
        why = ("certificate for localhost is issued by CN=not a CA, which localhost sent, but "
               "that certificate is not a CA (CA:FALSE) and cannot issue certificates: the "
               "server's certificate or chain is wrong, and its administrator must install one "
               "issued by a CA (with that CA's intermediates), or use --insecure")
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, why, times=1)
        self.assertNotIn("did not send", r.text)
        summary = probe_summary(f.address, "--tls-name", "localhost", "--ca-file",
                                str(self.pki.ca_cert))
        self.assertIn(why, summary)

    def test_the_servers_own_certificate_in_ca_file_is_said_to_be_no_ca(self):
        """--ca-file holds the server's own certificate (issued by a CA: CA:FALSE), a common
        attempt at pinning it: refused, as BoringSSL takes no such certificate as a trust
        anchor, and the reason says what it is and what to put there, not "an intermediate CA"."""
        f = self.fake("good")
        mt = self.mailtap(f.address, ca_file=self.pki.valid_cert)
        why = (f"the chain for localhost reaches CN=localhost, which {self.pki.valid_cert} holds, "
               "but that is the server's own certificate, not a CA (CA:FALSE): mailtap trusts a "
               "chain only up to a root CA, and takes a server's certificate as one only when it "
               "is self-signed (and then only the very one the server sends); put the root CA it "
               "comes from (its issuer is CN=mailtap test CA,O=mailtap tests) in --ca-file "
               "instead, or use --insecure")
        r = self.assert_421(mt, why, times=1)
        self.assertNotIn("intermediate", r.text)

    def test_a_stale_intermediate_names_the_certificate_and_the_next_step(self):
        """The server sends an intermediate by the right name but with another key (left from
        before its CA re-keyed): the reason names the certificates and what the server must do,
        not a bare "certificate signature failure"."""
        old_leaf, _, _ = issue_via_intermediate(self.pki, "rekeyed")
        leaf_pem, key_pem = old_leaf.valid_cert.read_bytes(), old_leaf.valid_key.read_bytes()
        _, _, new_ica = issue_via_intermediate(self.pki, "rekeyed")  # same name, new key
        d = self.pki.dir
        chain, key = d / "stale-chain.pem", d / "stale.key"
        chain.write_bytes(leaf_pem + new_ica.read_bytes())
        key.write_bytes(key_pem)
        key.chmod(0o600)
        f = h.FakeServer("good", dataclasses.replace(self.pki, valid_cert=chain, valid_key=key))
        f.__enter__()
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, "CN=rekeyed intermediate CA,O=mailtap tests", "stale intermediate",
                            "must send the intermediate its certificate was issued from",
                            "--insecure", times=1)
        self.assertNotIn("did not send", r.text)

    def test_an_unknown_critical_extension_names_the_certificate_and_the_next_step(self):
        f = h.FakeServer("good", h.issue_certificate(
            self.pki, "crit-ext", san="DNS:localhost,IP:127.0.0.1",
            usage="keyUsage = critical, digitalSignature\n1.3.6.1.4.1.55555.1 = critical, "
                  "ASN1:NULL\n"))
        f.__enter__()
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        self.assert_421(mt, "the certificate for localhost (CN=localhost) has an extension marked "
                        "critical that mailtap's TLS library does not know (1.3.6.1.4.1.55555.1), "
                        "so it may not be trusted (RFC 5280 4.2): its issuer must replace it, or "
                        "use --insecure", times=1)

    def test_a_partial_label_wildcard_is_said_not_to_be_accepted(self):
        f = self.fake_presenting("wild-part", "DNS:m*.example.test")
        mt = self.mailtap(f.address, tls_name="mx.example.test")
        r = self.assert_421(mt, "certificate is issued for m*.example.test, not for "
                            "mx.example.test: m*.example.test is a partial-label wildcard, which "
                            "mailtap does not accept", times=1)
        self.assertNotIn("--tls-name", r.text)

    def test_expired(self):
        """The dates, the time they were judged by (this machine's clock may be the fault) and
        who must act."""
        f = self.fake("expired")
        mt = self.mailtap(f.address)
        self.assert_421(mt, regex=r"certificate for localhost expired on 2020-02-01T00:00:00Z "
                        r"\(it is 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ here\): the server's "
                        r"administrator must renew it \(unless this machine's clock is ahead\), "
                        r"or use --insecure")

    def test_unknown_ca(self):
        """The valid server cert, but mailtap is told to trust an unrelated CA."""
        f = self.fake("good")
        mt = self.mailtap(f.address, ca_file=self.pki.other_ca_cert)
        r = self.assert_421(mt)
        self.assertRegex(r.text, re.compile(r"certif|verif|issuer", re.I))

    def test_a_server_refused_in_clear_is_told_quit(self):
        """No STARTTLS, STARTTLS refused: mailtap ends the session with QUIT, as probe does, so
        the server sees an orderly end rather than a lost connection; both are recorded."""
        for mode in ("no_starttls", "refuse_starttls"):
            with self.subTest(mode):
                f = self.fake(mode)
                mt = self.mailtap(f.address)
                self.assert_421(mt, times=1)
                mt.stop()
                self.assertEqual(f.sessions[0].commands[-1], ("plain", b"QUIT\r\n"))
                events = session_events(mt)
                self.assertEqual(events[-3:-1], [
                    ("mailtap_to_upstream", "command", b"QUIT\r\n"),
                    ("upstream_to_mailtap", "reply", b"221 2.0.0 Bye\r\n")])
                self.assertEqual(events[-1][:2], ("mailtap_to_client", "local_reply"))

    def test_a_server_that_never_answers_the_quit_does_not_hold_the_421(self):
        """The QUIT after a refusal waits a moment for its reply, not what is left of
        --timeout-connect: the telnet user's 421 comes while the server still sits on the QUIT,
        well before the 30 s set-up limit, and the QUIT mailtap sent is recorded."""
        release = threading.Event()

        def silent_quit(_session, _phase, line):
            if line.upper().startswith(b"QUIT"):
                release.wait(60)  # never answers while the test looks
                return b""
            return None
        f = self.fake("no_starttls", handler=silent_quit)
        # Cleanups run last first: the handler is let go before the fake joins its thread
        # (registered before the fake, the test's end waited the join's 5 s for it).
        self.addCleanup(release.set)
        mt = self.mailtap(f.address, extra_args=["--timeout-connect", "30s"])
        with h.SmtpSocket(mt.port, timeout=10) as c:
            try:
                r = c.reply()
            except socket.timeout:
                self.fail("no 421 within 10 s: the QUIT waited for the whole --timeout-connect")
            self.assertEqual(r.code, 421, mt.output)
            self.assertIn("STARTTLS", r.text)
        self.assertFalse(release.is_set())
        mt.stop()
        events = session_events(mt)
        self.assertIn(("mailtap_to_upstream", "command", b"QUIT\r\n"), events)
        self.assertNotEqual(events[-2][:2], ("upstream_to_mailtap", "reply"), events)

    def test_a_certificate_refused_is_recorded_and_shown(self):
        """The chain the server presented is what a refusal for its certificate is about: it is
        in `certificates` as for a session that went on, and `mailtap show` lists it."""
        for mode in ("self_signed", "expired"):
            with self.subTest(mode):
                f = self.fake(mode)
                mt = self.mailtap(f.address)
                self.assert_421(mt, times=1)
                mt.stop()
                db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    rows = con.execute("SELECT position, subject FROM certificates").fetchall()
                finally:
                    con.close()
                self.assertEqual(rows, [(0, "CN=localhost")])
                shown = subprocess.run([str(h.mailtap_bin()), "show", "--db", db, "1",
                                        "--color", "never"], capture_output=True, text=True,
                                       timeout=30)
                self.assertRegex(shown.stdout, r"(?m)^cert\[0\]  CN=localhost  \(issuer ")

    def test_a_session_refused_in_set_up_records_the_server_greeting(self):
        """The 220 names the server that was refused (host, software): it is in the record of
        a session refused after it, as mailtap read it, before mailtap's own EHLO."""
        for mode in ("no_starttls", "refuse_starttls", "self_signed"):
            with self.subTest(mode):
                f = self.fake(mode)
                mt = self.mailtap(f.address)
                self.assert_421(mt, times=1)
                mt.stop()
                events = session_events(mt)
                self.assertEqual(events[0], ("upstream_to_mailtap", "greeting",
                                             b"220 fake.example.test ESMTP mailtap-fake\r\n"))
                self.assertEqual(events[1][:2], ("mailtap_to_upstream", "command"))
                self.assertTrue(events[1][2].startswith(b"EHLO "), events)

    def test_e_stall_times_out(self):
        f = self.fake("stall")
        mt = self.mailtap(f.address, extra_args=["--timeout-connect", "2s"])
        t0 = time.monotonic()
        self.assert_421(mt, regex=r"time[sd]?[ -]?out", times=1)
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.5, "timed out before the configured 2s")
        self.assertLess(elapsed, 8, "--timeout-connect 2s not honoured")
        self.assertTrue(mt.alive())

    def test_e_implicit_tls_port_without_tls_implicit_is_hinted(self):
        """A port with TLS from the first byte that is not 465 (so STARTTLS is assumed) waits
        for the ClientHello and never greets: the 421 and the log line say --tls implicit, as
        `mailtap probe` does, not only the timeout that a longer wait would not fix."""
        f = self.fake("good", implicit=True)
        mt = self.mailtap(f.address, extra_args=["--timeout-connect", "2s"])
        hint = (f"if {f.address} expects TLS from the first byte (as port 465 does), use --tls "
                "implicit; else see --timeout-connect")
        r = self.assert_421(mt, times=1)
        self.assertEqual(r.text, f"4.4.1 mailtap: {f.address} timed out after 2s waiting for the "
                         f"greeting: {hint}")
        self.assertIn(hint, mt.wait_stderr(hint), "the log line gives the same advice")

    def test_e_a_busy_server_that_greeted_before_is_not_called_implicit_tls(self):
        """The upstream greeted an earlier session of this proxy and now says nothing (a server
        at its process limit, as Postfix at 100 smtpd): the 421 says it is slow or busy, not to
        try --tls implicit, which cannot work against the port that greeted in plain text."""
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        held = []
        self.addCleanup(lambda: [c.close() for c in held])

        def serve():
            first = True
            while True:
                try:
                    c, _ = ls.accept()
                except OSError:
                    return
                held.append(c)
                if first:
                    c.sendall(b"220 busy.example.test ESMTP\r\n")
                    first = False
        threading.Thread(target=serve, daemon=True).start()
        address = f"127.0.0.1:{ls.getsockname()[1]}"
        mt = self.mailtap(address, extra_args=["--timeout-connect", "2s"])
        with h.SmtpSocket(mt.port, timeout=20) as c:  # greeted, then no answer to the EHLO
            self.assertNotIn("waiting for the greeting", c.reply().text, mt.output)
        r = self.assert_421(mt, times=1)
        self.assertEqual(r.text, f"4.4.1 mailtap: {address} timed out after 2s waiting for the "
                         "greeting: it greeted earlier sessions of this mailtap, so it is slow or "
                         "busy now (too many sessions at once?): try again later; else see "
                         "--timeout-connect")

    def test_f_starttls_refused(self):
        f = self.fake("refuse_starttls")
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, "TLS not available")
        self.assertIn("454", r.text)
        # and what to do next
        self.assertIn("454 4.7.0 TLS not available: it offers no working TLS on this port; if it "
                      "has an implicit-TLS port (465), use that with --tls implicit, else ask its "
                      "administrator to set TLS up", r.text)

    def test_f_a_250_to_starttls_is_no_refusal_and_not_taken(self):
        """A 250 to STARTTLS neither refuses nor starts TLS: said as what it is, not "refused"."""
        f = StarttlsAnsweredServer(b"250 2.0.0 ok sure\r\n")
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, times=1)
        self.assertEqual(r.text, f"4.7.0 mailtap: {f.address} answered STARTTLS with 250 2.0.0 ok "
                         "sure instead of 220: it did not agree to start TLS, and mailtap does not "
                         "go on in plain text; the server (or a firewall between that inspects "
                         "SMTP) is broken: ask its administrator")

    def test_f_a_greeting_too_long_says_what_to_check(self):
        f = StarttlsAnsweredServer(b"", greeting=b"220-" + b"x" * 1000 + b"\r\n", repeat=300)
        self.addCleanup(f.close)
        mt = self.mailtap(f.address)
        r = self.assert_421(mt, times=1)
        self.assertEqual(r.text, f"4.5.0 mailtap: upstream sent a reply longer than 256 KiB "
                         f"waiting for the greeting: {f.address} does not speak SMTP as a mail "
                         f"server does; check that it is the mail server's port (mailtap probe "
                         f"{f.address} shows what it sends), or ask its administrator")

    def test_a_refused_ehlo_is_answered_with_the_step_its_code_points_to(self):
        """A rate limit means wait, a 502 a server without ESMTP (so without STARTTLS); only a
        refusal of the name itself points to --ehlo-name. A 4.x.x of the server's is kept."""
        cases = {
            b"421 4.7.0 mx.example.test Too many connections, try later\r\n":
                "4.7.0 mailtap: {a} refused EHLO {n}: 421 4.7.0 mx.example.test Too many "
                "connections, try later (try again later: the server turns sessions away for now)",
            b"502 5.5.2 Error: command not recognized\r\n":
                "4.7.0 mailtap: {a} refused EHLO {n}: 502 5.5.2 Error: command not recognized "
                "(the server does not speak ESMTP, so it cannot offer STARTTLS)",
            b"501 5.5.2 Invalid domain name\r\n":
                "4.7.0 mailtap: {a} refused EHLO {n}: 501 5.5.2 Invalid domain name (try "
                "--ehlo-name)",
        }
        for reply, expected in cases.items():
            with self.subTest(reply):
                f = self.fake("good", handler=lambda s, phase, line, reply=reply:
                              reply if line.upper().startswith(b"EHLO") else None)
                mt = self.mailtap(f.address, extra_args=["--ehlo-name", "vm.example.test"])
                r = self.assert_421(mt, times=1)
                self.assertEqual(r.text, expected.format(a=f.address, n="vm.example.test"))

    def test_server_text_quoted_in_a_refusal_cannot_drive_a_terminal(self):
        """A refused greeting, EHLO or STARTTLS whose text carries escape sequences (retitle the
        window, clear the screen): the client's 421 and mailtap's stderr line quote it escaped,
        in printable ASCII."""
        esc = b"\x1b]0;PWNED-TITLE\x07\x1b[2J"
        shown = r"\x1b]0;PWNED-TITLE\x07\x1b[2J"
        refusals = {
            "greeting": dict(banner=b"554 5.7.1 go away " + esc + b"\r\n"),
            "EHLO": dict(handler=lambda s, phase, line: b"550 5.7.1 go away " + esc + b"\r\n"
                         if line.upper().startswith(b"EHLO") else None),
            "STARTTLS": dict(handler=lambda s, phase, line: b"454 4.7.0 go away " + esc + b"\r\n"
                             if line.upper().startswith(b"STARTTLS") else None),
        }
        for step, fake_kw in refusals.items():
            with self.subTest(step):
                f = self.fake("good", **fake_kw)
                mt = self.mailtap(f.address)
                r = self.assert_421(mt, "go away " + shown, times=1)
                self.assertRegex(str(r), r"^[\t\x20-\x7e\r\n]*$", "controls in the 421")
                err = mt.wait_stderr("go away")
                self.assertIn("go away " + shown, err)
                self.assertNotRegex(err, "[\x1b\x07]", "raw escape sequence on stderr")

    def test_same_proxy_serves_good_session_after_failures(self):
        """Failures do not wedge the proxy: the upstream starts refusing STARTTLS, then
        recovers (same fake, same certificate), and the same mailtap process relays."""
        f = self.fake("refuse_starttls")
        mt = self.mailtap(f.address)
        self.assert_421(mt, "TLS not available", times=3)
        f.mode = "good"
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(mt.alive())


def session_row(mt: h.Mailtap) -> sqlite3.Row:
    """The one session mailtap recorded, and its events' notes in order (after mt.stop())."""
    con = sqlite3.connect(f"file:{os.path.join(mt._tmp, 'mailtap.db')}?mode=ro", uri=True)  # noqa: SLF001
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("SELECT * FROM sessions").fetchall()
        notes = [r[0] for r in con.execute(
            "SELECT note FROM events WHERE note IS NOT NULL ORDER BY session_id, seq")]
    finally:
        con.close()
    assert len(rows) == 1, rows
    return rows[0], notes


def session_events(mt: h.Mailtap) -> list:
    """(direction, kind, bytes) of the one session's events that carry bytes, in order (after
    mt.stop())."""
    con = sqlite3.connect(f"file:{os.path.join(mt._tmp, 'mailtap.db')}?mode=ro", uri=True)  # noqa: SLF001
    try:
        return [(d, k, bytes(b)) for d, k, b in con.execute(
            "SELECT direction, kind, bytes FROM events WHERE length(bytes) > 0 ORDER BY seq")]
    finally:
        con.close()


def first_reply_or_after_ehlo(port: int) -> h.Reply:
    """The 421 a failed setup gives at once, or the one that follows the relayed 220 when the
    server refuses only after mailtap's side of the handshake (TLS 1.3)."""
    with h.SmtpSocket(port, timeout=20) as c:
        r = c.reply()
        if r.code == 220:
            r = c.cmd("EHLO client.test")
        return r


def require_client_certificate(pki: h.Pki, version: ssl.TLSVersion):
    def setup(ctx: ssl.SSLContext) -> None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(str(pki.ca_cert))
        ctx.maximum_version = version
    return setup


def lowest_security_level(ctx: ssl.SSLContext) -> None:
    """Lets the fake present what OpenSSL at its default level would refuse to load."""
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")


class RefusedGreetingTest(h.IntegrationCase):
    """Postfix refusing a client at connect time (smtpd_delay_reject = no) says so in its
    greeting, 554, and then answers only QUIT (RFC 5321 3.1: the client SHOULD send QUIT)."""

    with_postfix = True
    postfix_kwargs = {"extra_main": {"smtpd_delay_reject": "no",
                                     "smtpd_client_restrictions": "reject"}}

    def test_a_server_refusing_in_its_greeting_is_told_quit_and_its_221_recorded(self):
        mt = self.mailtap(self.postfix.submission)
        r = h.first_reply_421(mt.port)
        self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
        self.assertIn(f"mailtap: {self.postfix.submission} refused the session: 554 ", r.text)
        mt.stop()
        events = session_events(mt)
        greeting = [e for e in events if e[1] == "greeting"]
        self.assertEqual(len(greeting), 1, events)
        self.assertTrue(greeting[0][2].startswith(b"554 "), greeting)
        after = events[events.index(greeting[0]) + 1:]
        self.assertEqual(after[:2], [
            ("mailtap_to_upstream", "command", b"QUIT\r\n"),
            ("upstream_to_mailtap", "reply", b"221 2.0.0 Bye\r\n")], events)
        self.assertEqual(after[-1][:2], ("mailtap_to_client", "local_reply"))
        self.assertTrue(after[-1][2].startswith(b"421 "), after[-1])


class UpstreamTlsWordsTest(h.IntegrationCase):
    """What the upstream's TLS refuses, and what mailtap refuses of it, said in words in the
    421, on stderr and in the record: a server that requires a client certificate, certificates
    current clients refuse, a suite without forward secrecy."""

    def test_a_server_requiring_a_client_certificate_is_named(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                f = self.fake("good", tls_setup=require_client_certificate(self.pki, version))
                mt = self.mailtap(f.address)
                r = first_reply_or_after_ehlo(mt.port)
                self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
                self.assertRegex(r.text, rf"^4\.7\.0 mailtap: {re.escape(f.address)} requires a "
                                 r'client certificate \(TLS alert "(certificate required"|handshake '
                                 r'failure" after asking for one)\), and mailtap presents none: '
                                 r"give it one with --client-cert FILE \(and --client-key FILE "
                                 r"unless the key is in FILE\)")
                self.assertNotIn("OPENSSL_internal", r.text)
                self.assertIn("requires a client certificate", mt.wait_stderr("client certificate"))
                mt.stop()
                row, _ = session_row(mt)
                self.assertIn(f"{f.address} requires a client certificate", row["outcome_reason"])

    def good_fake(self, pki: h.Pki, tls_setup) -> h.FakeServer:
        """A good fake presenting `pki`'s valid certificate (self.fake() presents the class's)."""
        f = h.FakeServer("good", pki, tls_setup=tls_setup)
        f.__enter__()
        self.addCleanup(f.close)
        return f

    def fake_presenting(self, name: str, **issue) -> h.FakeServer:
        """A good fake whose certificate, signed by the test CA, is made with `issue`."""
        pki = h.issue_certificate(self.pki, name, san="DNS:localhost,IP:127.0.0.1", **issue)
        return self.good_fake(pki, lowest_security_level)

    def test_certificates_current_clients_refuse_are_refused_with_the_reason(self):
        cases = {
            "sha1-signed": (dict(digest="sha1"), "is signed with SHA-1"),
            "rsa-1024": (dict(key=("-newkey", "rsa:1024")), "has a 1024-bit RSA key"),
        }
        for name, (issue, why) in cases.items():
            with self.subTest(name):
                f = self.fake_presenting(name, **issue)
                mt = self.mailtap(f.address)
                r = first_reply_or_after_ehlo(mt.port)
                self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
                self.assertTrue(r.text.startswith(f"4.7.0 mailtap: certificate for localhost {why}"),
                                r.text)
                self.assertIn("--insecure", r.text)
                mt.stop()
                row, _ = session_row(mt)
                self.assertEqual(row["verify_status"], "failed")
                self.assertIn(why, row["verify_reason"])
                self.assertIn(why, row["outcome_reason"])
                # the explicit override still goes on, and says it did not verify
                mt = self.mailtap(f.address, extra_args=["--insecure"])
                self.assertEqual(first_reply_or_after_ehlo(mt.port).code, 250)

    def test_misissued_certificates_are_refused_in_words(self):
        """A certificate for TLS clients only, and an ECDSA one whose keyUsage forbids signing:
        the 421 says what is wrong with it and who must act, not the TLS library's code."""
        cases = {
            "eku-client-only": ("keyUsage = critical, digitalSignature\n"
                                "extendedKeyUsage = clientAuth\n",
                                "certificate for localhost is not issued for TLS servers (its "
                                "extendedKeyUsage is clientAuth, without serverAuth): its issuer "
                                "must replace it, or use --insecure", True),
            "ku-no-signature": ("keyUsage = critical, keyEncipherment\n"
                                "extendedKeyUsage = serverAuth\n",
                                "certificate for localhost may not be used for signing (its "
                                "keyUsage lacks digitalSignature), which its key must do in this "
                                "handshake: its issuer must replace it (--insecure does not help",
                                False),
        }
        for name, (usage, why, insecure_goes_on) in cases.items():
            with self.subTest(name):
                f = self.fake_presenting(name, usage=usage)
                mt = self.mailtap(f.address)
                r = first_reply_or_after_ehlo(mt.port)
                self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
                self.assertIn(why, r.text)
                self.assertNotIn("OPENSSL_internal", r.text)
                mt.stop()
                row, _ = session_row(mt)
                self.assertIn(why, row["outcome_reason"])
                mt = self.mailtap(f.address, extra_args=["--insecure"])
                self.assertEqual(first_reply_or_after_ehlo(mt.port).code,
                                 250 if insecure_goes_on else 421)

    def test_certificates_current_clients_verify_are_verified(self):
        """Python, curl and swaks (OpenSSL 3, security level 2) verify servers whose certificate
        has a P-521 or an Ed25519 key, which can sign the handshake with nothing else; so does
        mailtap, over TLS 1.3 and 1.2. An RSA-PSS key (id-RSASSA-PSS) is beyond BoringSSL: the
        refusal names that limit rather than blaming the server alone."""
        for name, key in (("p521", ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1")),
                          ("ed25519", ("-newkey", "ed25519"))):
            pki = h.issue_certificate(self.pki, name, san="DNS:localhost,IP:127.0.0.1", key=key)
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                with self.subTest(name, version=version.name):
                    def cap(ctx: ssl.SSLContext, version=version) -> None:
                        ctx.maximum_version = version
                    f = self.good_fake(pki, cap)
                    mt = self.mailtap(f.address)
                    with h.SmtpSocket(mt.port) as c:
                        r = c.reply()
                        self.assertEqual(r.code, 220, f"{r}\n{mt.output}")
                        self.assertEqual(c.cmd("QUIT").code, 221)
                    mt.stop()
                    row, _ = session_row(mt)
                    self.assertEqual(row["verify_status"], "ok")
                    self.assertEqual(row["tls_version"], version.name.replace("_", "."))
        pki = h.issue_certificate(self.pki, "rsapss", san="DNS:localhost,IP:127.0.0.1",
                                  key=("-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"))
        f = self.good_fake(pki, None)
        mt = self.mailtap(f.address)
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(r.code, 421, mt.output)
        self.assertIn("no certificate with an RSA-PSS or Ed448 key, which mailtap's TLS library "
                      "cannot verify", r.text)

    def test_a_server_wanting_a_name_from_an_address_is_told_to_get_one(self):
        """mailtap sends no SNI to an address (RFC 6066 3); a server that needs one ends the
        handshake with "unrecognized name". The reason must not speak of a name mailtap sent:
        it sent none, and --tls-name NAME sends one."""
        def needs_sni(ctx: ssl.SSLContext) -> None:
            ctx.sni_callback = lambda sock, name, c: (
                ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME if name is None else None)

        f = self.good_fake(self.pki, needs_sni)
        mt = self.mailtap(f.address, tls_name=None)
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(r.code, 421, mt.output)
        self.assertEqual(r.text, f"4.7.0 mailtap: {f.address} wants a server name in the TLS "
                         'handshake (TLS alert "unrecognized name"), and mailtap sent none: the '
                         "upstream is an address, and SNI carries only names; give it one with "
                         "--tls-name NAME")
        mt = self.mailtap(f.address)  # --tls-name localhost
        self.assertEqual(first_reply_or_after_ehlo(mt.port).code, 250, mt.output)

    def test_a_suite_without_forward_secrecy_is_taken_and_said(self):
        pki = h.issue_certificate(self.pki, "rsa-2048", san="DNS:localhost,IP:127.0.0.1",
                                  key=("-newkey", "rsa:2048"))

        def static_rsa_only(ctx: ssl.SSLContext) -> None:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("AES128-SHA")

        f = self.good_fake(pki, static_rsa_only)
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220, mt.output)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertIn("TLSv1.2 TLS_RSA_WITH_AES_128_CBC_SHA: no forward secrecy: RSA key "
                      "exchange; CBC", mt.wait_stderr("no forward secrecy"))
        mt.stop()
        row, notes = session_row(mt)
        self.assertEqual(row["cipher"], "TLS_RSA_WITH_AES_128_CBC_SHA")
        self.assertIn("TLSv1.2 TLS_RSA_WITH_AES_128_CBC_SHA (no forward secrecy: RSA key exchange; "
                      "CBC), certificate verified for localhost", notes)

    def test_no_suite_in_common_is_said_in_words(self):
        """A server whose only suite needs an RSA key exchange, with an EC certificate: it has
        nothing to agree on and ends the handshake with "handshake failure"."""
        def rsa_key_exchange_only(ctx: ssl.SSLContext) -> None:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("AES128-SHA")

        f = self.good_fake(self.pki, rsa_key_exchange_only)
        mt = self.mailtap(f.address)
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(r.code, 421, mt.output)
        self.assertTrue(r.text.startswith(f"4.7.0 mailtap: {f.address} ended the TLS handshake "
                                          '(TLS alert "handshake failure")'), r.text)
        self.assertNotIn("client certificate", r.text)
        self.assertNotIn("OPENSSL_internal", r.text)


class UpstreamAddressesTest(h.IntegrationCase):
    """A name with several addresses (::1 then 127.0.0.1, as a dual-stack host resolves a
    server): when the first drops SYNs (broken IPv6 routing), the next is tried after a short
    delay (RFC 8305) within --timeout-connect, and a failure names every address tried. mailtap
    runs with a private /etc/hosts (a mount namespace of its own: root only)."""

    NAME = "dual.mailtap.test"

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("a private /etc/hosts needs root")
        try:
            socket.socket(socket.AF_INET6).bind(("::1", 0))
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        self.hosts = self.tmp / "hosts"
        self.hosts.write_text(f"127.0.0.1 localhost\n::1 {self.NAME}\n127.0.0.1 {self.NAME}\n")

    def blackhole(self, family: int, host: str, port: int) -> None:
        """A listener whose accept queue is full at host:port: further SYNs are dropped."""
        ls = socket.socket(family)
        self.addCleanup(ls.close)
        ls.bind((host, port))
        ls.listen(0)
        for _ in range(3):
            s = socket.socket(family)
            self.addCleanup(s.close)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((host, port))
        time.sleep(0.2)

    def mailtap_for(self, port: int, *args: str) -> h.Mailtap:
        return self.mailtap(f"{self.NAME}:{port}", tls_name="localhost",
                            preexec_fn=h.private_hosts_file(self.hosts),
                            extra_args=["--timeout-connect", *args])

    def test_a_blackholed_first_address_gives_way_to_the_next(self):
        f = self.fake("good")
        self.blackhole(socket.AF_INET6, "::1", f.port)
        mt = self.mailtap_for(f.port, "10s")
        t0 = time.monotonic()
        with h.SmtpSocket(mt.port, timeout=30) as c:
            self.assertEqual(c.reply().code, 220, mt.output)
            took = time.monotonic() - t0
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertLess(took, 5, "the second address waited for the first's timeout")
        mt.stop()
        row, notes = session_row(mt)
        self.assertEqual(row["resolved_address"], f"127.0.0.1:{f.port}")
        self.assertIn(f"connected to {self.NAME}:{f.port} (127.0.0.1:{f.port}; also tried "
                      f"[::1]:{f.port})", notes)

    def test_probe_names_an_address_that_refused_before_the_one_it_used(self):
        """A broken IPv6 address costs every client that tries it first: probe says so in its
        text, its summary and its JSON, as the proxy's record does."""
        f = self.fake("good")  # listens on 127.0.0.1 only: [::1] refuses
        args = [str(h.mailtap_bin()), "probe", f"{self.NAME}:{f.port}", "--tls-name", "localhost",
                "--ca-file", str(self.pki.ca_cert), "--color", "never"]
        failed = f"[::1]:{f.port}: Connection refused"
        cp = subprocess.run(args, capture_output=True, text=True, timeout=60,
                            preexec_fn=h.private_hosts_file(self.hosts))
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn(f"connected to 127.0.0.1:{f.port}\n  also tried {failed}\n", cp.stdout)
        self.assertIn(f"another address of {self.NAME} failed: {failed}", cp.stdout)
        cp = subprocess.run(args + ["--json"], capture_output=True, text=True, timeout=60,
                            preexec_fn=h.private_hosts_file(self.hosts))
        self.assertEqual(json.loads(cp.stdout)["addresses_failed"], [failed])

    def silent(self, family: int, host: str, port: int) -> None:
        """A listener at host:port that never accepts: the kernel completes the connection, and
        not one byte comes (a hung node, or a port that waits for a TLS handshake)."""
        ls = socket.socket(family)
        self.addCleanup(ls.close)
        ls.bind((host, port))
        ls.listen(8)

    def test_a_silent_first_address_is_named_and_the_others_suggested(self):
        """[::1] accepts and says nothing while 127.0.0.1 is a good server: the 421 (and the
        record) names [::1] and the address not tried, and does not tell the user to use --tls
        implicit, which would break the healthy address too."""
        f = self.fake("good")
        self.silent(socket.AF_INET6, "::1", f.port)
        mt = self.mailtap_for(f.port, "2s")
        r = first_reply_or_after_ehlo(mt.port)
        reason = (f"[::1]:{f.port} ({self.NAME}; 127.0.0.1:{f.port}: not tried) timed out after "
                  f"2s waiting for the greeting: if 127.0.0.1:{f.port} greets when given instead "
                  f"of {self.NAME}:{f.port} (with --tls-name localhost), [::1]:{f.port} is "
                  "broken; else see --timeout-connect")
        self.assertEqual(r.text, "4.4.1 mailtap: " + reason)
        mt.stop()
        row, _ = session_row(mt)
        self.assertEqual(row["outcome_reason"], reason)
        self.assertEqual(row["resolved_address"], f"[::1]:{f.port}")

    def test_a_silent_address_after_a_refusing_one_keeps_the_implicit_tls_advice(self):
        """No other address left to try: a port waiting for a TLS handshake is as likely as
        before, and the advice for it stays, with the address that refused named."""
        port = h.free_port()
        self.silent(socket.AF_INET, "127.0.0.1", port)  # [::1]:port refuses
        mt = self.mailtap_for(port, "2s")
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(
            r.text, f"4.4.1 mailtap: 127.0.0.1:{port} ({self.NAME}; [::1]:{port}: Connection "
            f"refused) timed out after 2s waiting for the greeting: if {self.NAME}:{port} "
            "expects TLS from the first byte (as port 465 does), use --tls implicit; else see "
            "--timeout-connect")

    def test_a_refused_certificate_names_the_address_that_presented_it(self):
        expired = self.fake("expired", host="::1")
        self.fake("good", port=expired.port)
        mt = self.mailtap_for(expired.port, "10s")
        r = first_reply_or_after_ehlo(mt.port)
        self.assertTrue(
            r.text.startswith(f"4.7.0 mailtap: [::1]:{expired.port} ({self.NAME}; "
                              f"127.0.0.1:{expired.port}: not tried): certificate for localhost "
                              "expired on "), r.text)
        mt.stop()
        row, _ = session_row(mt)
        self.assertEqual(row["outcome_reason"], r.text.removeprefix("4.7.0 mailtap: "))

    def test_a_timeout_names_every_address_tried(self):
        port = h.free_port()
        self.blackhole(socket.AF_INET6, "::1", port)
        self.blackhole(socket.AF_INET, "127.0.0.1", port)
        mt = self.mailtap_for(port, "2s")
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(
            r.text, f"4.4.1 mailtap: {self.NAME}:{port} timed out after 2s while connecting "
            f"([::1]:{port}: no answer; 127.0.0.1:{port}: no answer) (see --timeout-connect)")

    def test_refusals_name_every_address(self):
        port = h.closed_port()
        mt = self.mailtap_for(port, "10s")
        r = first_reply_or_after_ehlo(mt.port)
        self.assertEqual(
            r.text, f"4.4.1 mailtap: cannot connect to {self.NAME}:{port}: [::1]:{port}: "
            f"Connection refused; 127.0.0.1:{port}: Connection refused; check the host and port "
            "in --upstream, and that the server runs and accepts connections there")

if __name__ == "__main__":
    h.main()
