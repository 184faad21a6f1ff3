#!/usr/bin/env python3
"""`mailtap probe HOST[:PORT]` against the private Gmail-style Postfix (its STARTTLS port and its
implicit-TLS port) and against the fault servers: what a user reads, the JSON, the exit status of
each failure, and that the probe ends every session it can with QUIT."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def probe(target: str, *args, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    cp = subprocess.run([str(h.mailtap_bin()), "probe", target, *args], capture_output=True,
                        text=True, timeout=timeout, env=env)
    h.log(f"probe {target} {' '.join(args)} -> {cp.returncode}\n{cp.stdout}{cp.stderr}")
    return cp


def summary(out: str) -> str:
    return out[out.index("\nSummary\n"):]


class ProbePostfixTest(h.IntegrationCase):
    with_postfix = True

    def ca(self):
        return ["--ca-file", str(self.pki.ca_cert)]

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.postfix.maillog_text()
            if re.search(pattern, text):
                return text
            time.sleep(0.1)
        self.fail(f"no {pattern!r} in the maillog:\n{self.postfix.maillog_text()[-3000:]}")

    def test_starttls_port_shows_every_step_and_says_auth_comes_after_tls(self):
        cp = probe(self.postfix.submission, *self.ca())
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        out = cp.stdout
        for heading in ("Greeting", "EHLO before TLS (in clear)", "STARTTLS", "TLS",
                        "Certificate chain", "EHLO after TLS", "QUIT", "Summary"):
            self.assertIn("\n" + heading, out)
        self.assertRegex(out, r"\n  220 [^\n]*ESMTP")
        self.assertRegex(out, r"TLSv1\.[23] \S+")
        self.assertIn("verification: ok (for 127.0.0.1", out)
        self.assertIn("[0] CN=localhost", out)
        self.assertIn("issuer  CN=mailtap test CA,O=mailtap tests", out)
        self.assertIn("names   localhost, mx.example.test, 127.0.0.1", out)
        self.assertRegex(out, r"valid   \S+ to \S+ \(\d+ days left\)")
        before = out[out.index("EHLO before TLS"):out.index("\nSTARTTLS\n")]
        after = out[out.index("EHLO after TLS"):out.index("\nQUIT\n")]
        self.assertIn("STARTTLS", before)
        self.assertNotIn("AUTH", before)
        self.assertRegex(after, r"250[- ]AUTH PLAIN LOGIN")
        self.assertIn("  221 2.0.0 Bye", out)
        s = summary(out)
        self.assertIn("AUTH is offered only after TLS (PLAIN LOGIN): use `mailtap proxy "
                      f"--upstream {self.postfix.submission}`", s)
        self.assertIn(f"STARTTLS on port {self.postfix.submission_port}", s)
        self.assertIn(f"next: mailtap proxy --upstream {self.postfix.submission} --ca-file", s)
        # Postfix counts the commands of the session: the probe ended it with QUIT.
        self.wait_for_log(r"disconnect from [^\n]*ehlo=2 starttls=1 quit=1 commands=4")

    def test_starttls_port_json(self):
        cp = probe(self.postfix.submission, *self.ca(), "--json")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        doc = json.loads(cp.stdout)
        self.assertTrue(doc["ok"])
        self.assertEqual(doc["exit_status"], 0)
        self.assertEqual(doc["tls_mode"], "starttls")
        self.assertEqual(doc["greeting"]["code"], 220)
        self.assertIn("STARTTLS", doc["ehlo_before_tls"]["lines"])
        self.assertEqual(doc["starttls"]["code"], 220)
        self.assertTrue(doc["tls"]["verified"])
        self.assertIn(doc["tls"]["version"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(doc["tls"]["chain"][0]["names"],
                         ["localhost", "mx.example.test", "127.0.0.1"])
        self.assertGreater(doc["tls"]["chain"][0]["days_left"], 300)
        self.assertEqual(doc["auth_mechanisms"], ["PLAIN", "LOGIN"])
        self.assertIn("PIPELINING", doc["extensions"])
        self.assertEqual(doc["quit"]["code"], 221)
        self.assertIsNone(doc["failure"])
        self.assertTrue(any("AUTH is offered only after TLS" in l for l in doc["summary"]))

    def test_implicit_tls_port(self):
        cp = probe(self.postfix.smtps, *self.ca(), "--tls", "implicit")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertNotIn("EHLO before TLS", cp.stdout)
        self.assertNotIn("\nSTARTTLS\n", cp.stdout)
        self.assertRegex(cp.stdout, r"250[- ]AUTH PLAIN LOGIN")
        s = summary(cp.stdout)
        self.assertIn(f"implicit TLS on port {self.postfix.smtps_port}", s)
        self.assertIn(f"implicit TLS on {self.postfix.smtps_port}: use --tls implicit", s)
        self.assertIn(f"mailtap proxy --upstream {self.postfix.smtps} --tls implicit", s)

    def test_implicit_port_probed_with_starttls_hints_at_tls_implicit(self):
        cp = probe(self.postfix.smtps, *self.ca(), "--timeout", "2s")
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertIn(f"timed out after 2s waiting for the greeting: if {self.postfix.smtps} "
                      "expects TLS from the first byte (as port 465 does), use --tls implicit; "
                      "else see --timeout", cp.stdout)
        self.assertEqual(cp.stdout.count("use --tls implicit"), 1, "said once:\n" + cp.stdout)

    def test_starttls_port_probed_with_implicit_hints_at_starttls(self):
        cp = probe(self.postfix.submission, *self.ca(), "--tls", "implicit", "--timeout", "5s")
        self.assertEqual(cp.returncode, 3, cp.stdout)
        self.assertIn("TLS handshake with", cp.stdout)
        self.assertIn("use --tls starttls", cp.stdout)

    def test_untrusted_ca_then_insecure_shows_the_chain_loudly(self):
        env = dict(os.environ, SSL_CERT_FILE=str(self.pki.other_ca_cert))
        cp = probe(self.postfix.submission, env=env)
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("is issued by CN=mailtap test CA,O=mailtap tests, which 127.0.0.1 did not "
                      "send and", cp.stdout)
        self.assertIn("if it is your own root CA, use --ca-file with it", cp.stdout)
        self.assertNotIn("Certificate chain", cp.stdout)
        self.assertIn("--insecure shows the chain anyway", cp.stdout)

        cp = probe(self.postfix.submission, "--insecure", env=env)
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("WARNING: --insecure", cp.stderr)
        self.assertIn("verification: FAILED, gone on because of --insecure", cp.stdout)
        self.assertIn("[0] CN=localhost", cp.stdout)
        self.assertIn("CERTIFICATE NOT TRUSTED", summary(cp.stdout))
        self.assertRegex(cp.stdout, r"250[- ]AUTH PLAIN LOGIN")  # it went on, as asked

    def test_tls_none_against_starttls_advises_dropping_it(self):
        # Postfix offers STARTTLS in clear: a plain-text proxy is not the advice to give.
        cp = probe(self.postfix.submission, "--tls", "none")
        self.assertEqual(cp.returncode, 0, cp.stdout)
        self.assertIn("the server offers STARTTLS: drop --tls none", cp.stdout)
        self.assertNotIn("next: mailtap proxy", cp.stdout)


class ServerWithoutCertificateTest(h.IntegrationCase):
    """A Postfix whose certificate file is gone (a path left stale after a renewal) still
    offers STARTTLS, then ends every handshake with "handshake failure": the alert's words
    name that cause first, in the proxy's 421 and in probe's summary alike."""
    with_postfix = True
    postfix_kwargs = {"extra_main": {"smtpd_tls_chain_files": "/nonexistent.pem",
                                     "smtpd_tls_security_level": "may"}}

    def test_the_missing_certificate_is_named_first(self):
        words = ('ended the TLS handshake (TLS alert "handshake failure"): either it has no '
                 "usable certificate")
        cp = probe(self.postfix.submission, "--ca-file", str(self.pki.ca_cert))
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        self.assertIn(f"{self.postfix.submission} {words}", summary(cp.stdout))
        mt = self.mailtap(self.postfix.submission)
        with h.SmtpSocket(mt.port, timeout=20) as c:
            r = c.reply()
        self.assertEqual(r.code, 421, mt.output)
        self.assertIn(words, r.text)

    def test_an_alert_on_the_implicit_port_is_no_reason_to_try_starttls(self):
        """The smtps port answers the ClientHello with a TLS alert: it speaks TLS from the first
        byte, so probe does not suggest --tls starttls (nor does the proxy)."""
        cp = probe(self.postfix.smtps, "--ca-file", str(self.pki.ca_cert), "--tls", "implicit")
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        self.assertIn('TLS alert "handshake failure"', summary(cp.stdout))
        self.assertNotIn("--tls starttls", cp.stdout)


class ProbeFaultTest(h.IntegrationCase):
    """The fault servers of the harness: each failure has its message and exit status."""

    def assertQuitSent(self, fake: h.FakeServer):
        sess = fake.wait_sessions(1)[0]
        self.assertTrue(sess.closed.wait(5))
        self.assertEqual(sess.commands[-1][1].strip().upper(), b"QUIT", sess.commands)

    def test_no_starttls(self):
        fake = self.fake("no_starttls")
        cp = probe(fake.address, "--ca-file", str(self.pki.ca_cert))
        self.assertEqual(cp.returncode, 3, cp.stdout)
        self.assertIn("server does not offer STARTTLS: refusing to go on in plain text",
                      summary(cp.stdout))
        self.assertIn("does not offer STARTTLS", cp.stderr)
        self.assertQuitSent(fake)

    def test_no_starttls_json(self):
        fake = self.fake("no_starttls")
        cp = probe(fake.address, "--json")
        self.assertEqual(cp.returncode, 3)
        doc = json.loads(cp.stdout)
        self.assertFalse(doc["ok"])
        self.assertEqual(doc["exit_status"], 3)
        self.assertIsNone(doc["tls"])
        self.assertNotIn("STARTTLS", doc["ehlo_before_tls"]["lines"])
        self.assertIn("does not offer STARTTLS", doc["failure"])

    def test_out_of_descriptors_names_no_option_probe_lacks(self):
        """No descriptor for the socket to the server: mailtap's own limit, with what mends it
        for probe, which has no --max-sessions to lower (the proxy's advice)."""
        lib = h.HARNESS_ENV.get("MAILTAP_SOCKET_EMFILE_LIB")
        if not lib:
            self.skipTest("MAILTAP_SOCKET_EMFILE_LIB not set (run through ctest)")
        out = self.tmp / "out-of-descriptors"
        out.touch()
        env = dict(os.environ, LD_PRELOAD=lib, MAILTAP_SOCKET_EMFILE_WHEN=str(out),
                   ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
        fake = self.fake("good")
        cp = probe(fake.address, env=env)
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertRegex(summary(cp.stdout), r"Too many open files \(mailtap's open-file limit "
                                             r"is \d+\); try again later \(whoever runs "
                                             r"mailtap: raise the limit, ulimit -n or "
                                             r"LimitNOFILE=\)")
        self.assertNotIn("--max-sessions", cp.stdout + cp.stderr)

    def test_injection_after_220(self):
        fake = self.fake("inject")
        cp = probe(fake.address, "--ca-file", str(self.pki.ca_cert), "--tls-name", "localhost")
        self.assertEqual(cp.returncode, 3, cp.stdout)
        self.assertIn("possible STARTTLS command injection", cp.stdout)
        self.assertIn("CVE-2011-0411", cp.stdout)

    def test_self_signed(self):
        fake = self.fake("self_signed")
        cp = probe(fake.address, "--tls-name", "localhost")
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("certificate for localhost is self-signed", cp.stdout)
        cp = probe(fake.address, "--tls-name", "localhost", "--insecure")
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("CERTIFICATE NOT TRUSTED", cp.stdout)
        self.assertIn("[0] CN=localhost", cp.stdout)
        self.assertIn("issuer  CN=localhost", cp.stdout)

    def test_wrong_name(self):
        fake = self.fake("wrong_name")
        ca = ["--ca-file", str(self.pki.ca_cert)]
        cp = probe(fake.address, *ca, "--tls-name", "localhost")
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("the certificate does not match localhost", cp.stdout)
        self.assertIn("issued for other.example.test", cp.stdout)
        cp = probe(fake.address, *ca, "--tls-name", "localhost", "--insecure")
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("names   other.example.test", cp.stdout)
        # The name the certificate does carry verifies.
        cp = probe(fake.address, *ca, "--tls-name", "other.example.test")
        self.assertEqual(cp.returncode, 0, cp.stdout)
        self.assertIn("certificate verified for other.example.test", cp.stdout)

    def test_certificate_without_subject_alt_name(self):
        """The proxy's rule: a subject CN is no name (RFC 6125), even when it is the one asked."""
        fake = h.FakeServer("good", h.issue_certificate(self.pki, "cn-only", san=None))
        fake.__enter__()
        self.addCleanup(fake.close)
        cp = probe(fake.address, "--ca-file", str(self.pki.ca_cert), "--tls-name", "localhost")
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("certificate is issued for no name, not for localhost: it has no "
                      "subjectAltName", cp.stdout)

    def test_expired(self):
        fake = self.fake("expired")
        ca = ["--ca-file", str(self.pki.ca_cert), "--tls-name", "localhost"]
        cp = probe(fake.address, *ca)
        self.assertEqual(cp.returncode, 4, cp.stdout)
        self.assertIn("expired on 2020-02-01T00:00:00Z", cp.stdout)
        cp = probe(fake.address, *ca, "--insecure", "--json")
        self.assertEqual(cp.returncode, 4)
        doc = json.loads(cp.stdout)
        self.assertLess(doc["tls"]["chain"][0]["days_left"], 0)
        self.assertFalse(doc["tls"]["verified"])

    def test_certificate_expiring_soon(self):
        d = self.pki.dir
        key, csr, crt = d / "soon.key", d / "soon.csr", d / "soon.pem"
        h.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
               "-subj", "/CN=localhost"])
        start = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 86400))
        end = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 9 * 86400 + 3600))
        h.run(["openssl", "ca", "-batch", "-notext", "-config", d / "ca.cnf", "-extensions",
               "server_valid", "-in", csr, "-out", crt, "-startdate", start, "-enddate", end])
        pki = dataclasses.replace(self.pki, valid_cert=crt, valid_key=key)
        fake = h.FakeServer("good", pki)
        fake.__enter__()
        self.addCleanup(fake.close)
        cp = probe(fake.address, "--ca-file", str(pki.ca_cert), "--tls-name", "localhost")
        self.assertEqual(cp.returncode, 0, cp.stdout)
        self.assertIn("certificate expires in 9 days", summary(cp.stdout))

    def test_never_greets(self):
        fake = self.fake("stall")
        cp = probe(fake.address, "--timeout", "1s")
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertIn("timed out after 1s waiting for the greeting: if", cp.stdout)
        self.assertIn("use --tls implicit; else see --timeout", cp.stdout)

    def test_an_ehlo_reply_trickled_over_tls_is_cut_off_at_the_timeout(self):
        """--timeout is for the whole reply: a server trickling it a byte at a time (here 9 s
        in all) is cut off, and said to be slow rather than silent."""
        def handler(sess, phase, line):
            if phase == "tls" and line.upper().startswith(b"EHLO"):
                return h.paced(sess, h.trickled(b"250 fake.example.test at last\r\n"), 0.3)
            return None

        fake = self.fake("good", handler=handler)
        started = time.monotonic()
        cp = probe(fake.address, "--ca-file", str(self.pki.ca_cert), "--timeout", "2s")
        self.assertLess(time.monotonic() - started, 7)
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertIn("the reply to EHLO was not complete within 2s (see --timeout: it is for "
                      "the whole reply", cp.stdout)

    def test_starttls_refused_454(self):
        fake = self.fake("refuse_starttls")
        cp = probe(fake.address)
        self.assertEqual(cp.returncode, 3, cp.stdout)
        self.assertIn("server refused STARTTLS: 454 4.7.0 TLS not available", cp.stdout)
        self.assertQuitSent(fake)

    def test_refused_greeting(self):
        fake = self.fake("good", banner=b"554 5.7.1 No SMTP service for you\r\n")
        cp = probe(fake.address)
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertIn("refused the session: 554 5.7.1 No SMTP service for you", cp.stdout)
        # explained as a refusal at connect time, not with the advice for a 554 to RCPT
        self.assertIn("554: the server refuses this connection before any command", cp.stdout)
        self.assertNotIn("relay", cp.stdout.split("Summary")[-1])
        self.assertQuitSent(fake)

    def test_unreachable(self):
        cp = probe(f"127.0.0.1:{h.closed_port()}")
        self.assertEqual(cp.returncode, 1, cp.stdout)
        self.assertIn("cannot connect to", cp.stdout)

    def test_tls_none_says_plain_text_loudly(self):
        fake = self.fake("no_starttls")
        cp = probe(fake.address, "--tls", "none")
        self.assertEqual(cp.returncode, 0, cp.stdout)
        self.assertIn("plain text only (--tls none)", cp.stdout)
        self.assertIn("EHLO (plain text)", cp.stdout)
        self.assertQuitSent(fake)

    def test_unbracketed_ipv6_with_a_port_is_refused_with_the_brackets_to_write(self):
        cp = probe(f"::1:{h.closed_port()}")
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("an IPv6 address with a port is written in brackets: [::1]:", cp.stderr)
        cp = probe(f"[::1]:{h.closed_port()}", "--timeout", "2s")
        self.assertRegex(cp.stdout, r"cannot connect to \[::1\]:\d+")  # shown bracketed

    def test_a_tls_name_that_is_no_host_name_is_bad_usage(self):
        """"." or "mx.example.test.." cannot be a certificate's name, and would go out as SNI:
        refused before any connection, as a malformed --ehlo-name is."""
        for name in (".", "mx.example.test..", "a..b"):
            with self.subTest(name):
                cp = probe(f"127.0.0.1:{h.closed_port()}", "--tls-name", name)
                self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
                self.assertIn(f"--tls-name {name}: expected a host name", cp.stderr)
                self.assertEqual(cp.stdout, "")

    def test_usage_errors(self):
        for args in (["127.0.0.1:99999"], ["[::1"], ["127.0.0.1", "--timeout", "0s"],
                     ["127.0.0.1", "--ehlo-name", "two words"]):
            cp = probe(*args)
            self.assertEqual(cp.returncode, 2, args)
            self.assertIn("mailtap: probe:", cp.stderr)
        # Mistakes CLI11 itself finds are bad usage too, not its own codes (105, 109, ...).
        for args in (["127.0.0.1", "--tls", "bogus"], ["127.0.0.1", "--no-such-flag"]):
            cp = probe(*args)
            self.assertEqual(cp.returncode, 2, args)
            self.assertIn("--", cp.stderr)


if __name__ == "__main__":
    h.main()
