#!/usr/bin/env python3
"""mailtap's client certificate (--client-cert, --client-key): mutual TLS to a real Postfix that
requires one (smtpd_tls_req_ccert, certificates of the test CA, relaying by fingerprint with
permit_tls_clientcerts), through proxy, probe and replay; a server that refuses the certificate,
or its absence, said in words (Postfix in SMTP, an OpenSSL server with a TLS alert); the record
naming the certificate presented; an implicit-TLS greeting that refuses keeps the server's
4.x.x status with mailtap's note; every file a user can get wrong refused at start (exit 2);
and the key's bytes nowhere in the database, its WAL, stderr or the transcript."""

import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_failures import first_reply_or_after_ehlo, require_client_certificate  # noqa: E402
from test_recording import find_leaks, mailtap_files, query, wait_ended  # noqa: E402

OUTSIDE = "someone@elsewhere.test"  # relaying there needs AUTH, or a known certificate


def db_of(m: h.Mailtap) -> Path:
    return Path(m._tmp) / "mailtap.db"  # noqa: SLF001


def cert_args(c: h.ClientCertificate, *, key: bool = True) -> list:
    return ["--client-cert", str(c.cert)] + (["--client-key", str(c.key)] if key else [])


def key_forms(key: Path) -> dict:
    """The key's bytes in every form a leak could take: each base64 line of its PEM, its DER,
    its private scalar (raw and as hex)."""
    pem = key.read_bytes()
    forms = {f"PEM line {i}": line for i, line in enumerate(pem.splitlines())
             if line and not line.startswith(b"-----")}
    forms["DER"] = h.run(["openssl", "pkey", "-in", key, "-outform", "DER"]).stdout
    text = h.run(["openssl", "pkey", "-in", key, "-noout", "-text"]).stdout.decode()
    scalar = re.search(r"priv:\n((?:\s+[0-9a-f:]+\n)+)", text).group(1)
    hex_digits = re.sub(r"[\s:]", "", scalar)
    forms["scalar"] = bytes.fromhex(hex_digits).lstrip(b"\0")
    forms["scalar hex"] = hex_digits.lstrip("0").encode()
    return forms


class ClientCertPostfixTest(h.IntegrationCase):
    """A Postfix that requires a client certificate from the test CA on both ports, and relays
    for the ones it knows by fingerprint."""

    with_postfix = True

    @classmethod
    def prepare_pki(cls):
        cls.good = h.issue_client_certificate(cls.pki, "relay client")
        cls.chained = h.issue_client_certificate(cls.pki, "chained client", intermediate=True)
        cls.stranger = h.issue_client_certificate(cls.pki, "stranger", issuer="other-ca")
        cls.postfix_kwargs = {"extra_main": h.client_certificate_postfix(
            cls.pki, cls.good, cls.chained)}

    def proxy(self, cert, *, upstream=None, key=True, **kw) -> h.Mailtap:
        args = cert_args(cert, key=key) if cert is not None else []
        return self.mailtap(upstream or self.postfix.submission,
                            extra_args=args + kw.pop("extra_args", []), **kw)

    def test_swaks_through_mailtap_with_the_certificate_delivers_and_the_record_names_it(self):
        mt = self.proxy(self.good)
        self.assertIn(f"presenting the client certificate {self.good.cert} "
                      f"({self.good.subject})", mt.stderr)
        for n in range(2):  # the second one resumes the first's TLS session
            token = h.unique_token()
            message = h.make_message(token)
            self.assertProcOk(h.swaks(mt.port, data=message), f"swaks {n}")
            self.assertDelivered(token, message)
        # Postfix knows the certificate by its fingerprint: it may relay (permit_tls_clientcerts).
        self.assertEqual(h.smtplib_send(mt.port, h.make_message(h.unique_token()),
                                        rcpts=(OUTSIDE,)), {})
        self.assertIn("Trusted TLS connection established", self.postfix.maillog_text())
        rows = wait_ended(db_of(mt), 3)
        for row in rows:
            self.assertEqual(row["outcome"], "quit")
            self.assertEqual(row["client_cert_sha256"], self.good.sha256)
            self.assertEqual(row["client_cert_subject"], self.good.subject)
        self.assertEqual(rows[1]["tls_resumed"], 1, "the record of a resumed session names the "
                         "certificate presented when its TLS session was made")
        show = subprocess.run([str(h.mailtap_bin()), "show", "--db", str(db_of(mt)),
                               str(rows[0]["id"])], capture_output=True, timeout=30)
        self.assertProcOk(show, "mailtap show")
        self.assertIn(f"presented {self.good.subject}  (mailtap's client certificate, sha256 "
                      f"{self.good.sha256})", show.stdout.decode())
        shown = subprocess.run([str(h.mailtap_bin()), "show", "--json", "--db", str(db_of(mt)),
                                str(rows[1]["id"])], capture_output=True, timeout=30)
        self.assertProcOk(shown, "mailtap show --json")
        session = json.loads(shown.stdout)
        self.assertEqual((session["client_cert_sha256"], session["client_cert_subject"]),
                         (self.good.sha256, self.good.subject))
        notes = [r["note"] for r in query(db_of(mt), "SELECT note FROM events WHERE kind = 'tls'")]
        self.assertIn(f"client certificate {self.good.subject} presented", notes[0])

    def test_the_key_in_the_certificate_file_and_its_intermediates_are_sent(self):
        """The test CA is all Postfix trusts: the intermediate that signed the certificate must
        come from the file, after the leaf. The key is in the same file (mode 0600)."""
        both = self.tmp / "chained-with-key.pem"
        both.write_bytes(self.chained.cert.read_bytes() + self.chained.key.read_bytes())
        both.chmod(0o600)
        for upstream, tls in ((self.postfix.submission, None), (self.postfix.smtps, "implicit")):
            with self.subTest(tls=tls or "starttls"):
                mt = self.mailtap(upstream, tls=tls, extra_args=["--client-cert", str(both)])
                self.assertIn("1 intermediate(s)", mt.stderr)
                token = h.unique_token()
                message = h.make_message(token)
                self.assertProcOk(h.swaks(mt.port, data=message))
                self.assertDelivered(token, message)
                [row] = wait_ended(db_of(mt), 1)
                self.assertEqual(row["client_cert_subject"], self.chained.subject)

    def test_without_a_certificate_the_421_names_the_option(self):
        mt = self.proxy(None)
        cp = h.swaks(mt.port)
        out = cp.stdout.decode()
        self.assertIn("421-4.7.1 mx.example.test Error: No client certificate presented", out)
        self.assertIn(f"421 4.7.1 mailtap: {self.postfix.submission} asked for a client "
                      "certificate in the TLS handshake, and mailtap presented none: give it one "
                      "with --client-cert FILE (and --client-key FILE unless the key is in FILE)",
                      out)
        [row] = wait_ended(db_of(mt), 1)
        self.assertEqual(row["outcome"], "upstream_closed")
        self.assertIn("No client certificate presented; ", row["outcome_reason"])
        self.assertIn("give it one with --client-cert FILE", row["outcome_reason"])
        self.assertIsNone(row["client_cert_subject"])
        # The server's reply as it came, and what the client got.
        [server] = query(db_of(mt), "SELECT bytes FROM events WHERE direction = "
                                    "'upstream_to_client' AND reply_code = 421")
        self.assertEqual(bytes(server["bytes"]),
                         b"421 4.7.1 mx.example.test Error: No client certificate presented\r\n")
        [told] = query(db_of(mt), "SELECT bytes FROM events WHERE kind = 'rewrite'")
        self.assertIn(b"--client-cert FILE", bytes(told["bytes"]))
        # Implicit TLS: the refusal is the greeting, and mailtap's own 421 says it.
        mt = self.mailtap(self.postfix.smtps, tls="implicit")
        r = h.first_reply_421(mt.port)
        self.assertEqual(r.code, 421)
        self.assertIn("No client certificate presented; it asked for a client certificate in the "
                      "TLS handshake, and mailtap presented none: give it one with --client-cert",
                      r.text)

    def test_a_certificate_from_another_ca_is_refused_in_words(self):
        mt = self.proxy(self.stranger)
        out = h.swaks(mt.port).stdout.decode()
        self.assertIn("421-4.7.1 mx.example.test Error: Client certificate not trusted", out)
        self.assertIn(f"421 4.7.1 mailtap: {self.postfix.submission} ended the session after "
                      f"mailtap presented its client certificate {self.stranger.cert} "
                      f"({self.stranger.subject}): check that the server trusts its issuer "
                      "(CN=unrelated test CA,O=elsewhere)", out)
        self.assertIn("certificate verification failed", self.postfix.maillog_text())
        [row] = wait_ended(db_of(mt), 1)
        self.assertEqual(row["client_cert_subject"], self.stranger.subject)
        self.assertIn("Client certificate not trusted", row["outcome_reason"])

    def test_the_keys_bytes_appear_nowhere(self):
        mt = self.proxy(self.good, extra_args=["--transcript", "-vv"])
        for _ in range(2):
            self.assertProcOk(h.swaks(mt.port))
        wait_ended(db_of(mt), 2)
        mt.wait_stdout("S: 221", count=2)
        forbidden = key_forms(self.good.key)
        self.assertIn(forbidden["scalar"], forbidden["DER"], "the scan looks for the real key")
        blobs = {f"database {name}": data for name, data in mailtap_files(db_of(mt)).items()}
        self.assertIn("database mailtap.db-wal", blobs, "the WAL is scanned while mailtap runs")
        blobs["stderr"] = mt.stderr.encode()
        blobs["transcript"] = mt.stdout.encode()
        blobs["/proc/PID/cmdline"] = Path(f"/proc/{mt.proc.pid}/cmdline").read_bytes()
        self.assertEqual(find_leaks(blobs, forbidden), [])
        self.assertEqual(mt.stop(), 0, mt.stderr)
        blobs = {f"database {name}": data for name, data in mailtap_files(db_of(mt)).items()}
        self.assertEqual(find_leaks(blobs, forbidden), [], "after mailtap stopped")

    def probe(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([str(h.mailtap_bin()), "probe", self.postfix.submission,
                               "--ca-file", str(self.pki.ca_cert), "--tls-name", "localhost",
                               *map(str, args)], capture_output=True, timeout=60)

    def test_probe_presents_the_certificate(self):
        cp = self.probe(*cert_args(self.good))
        self.assertEqual(cp.returncode, 0, cp.stderr.decode() + cp.stdout.decode())
        out = cp.stdout.decode()
        self.assertIn(f"client certificate: {self.good.subject} presented (sha256 "
                      f"{self.good.sha256})", out)
        self.assertIn(f"--client-cert {self.good.cert} --client-key {self.good.key}", out)
        report = json.loads(self.probe("--json", *cert_args(self.good)).stdout)
        self.assertTrue(report["tls"]["client_certificate_requested"])
        self.assertEqual(report["tls"]["client_certificate"]["sha256"], self.good.sha256)

        cp = self.probe()
        self.assertEqual(cp.returncode, 1, cp.stdout.decode())
        self.assertIn("client certificate: asked for, none presented", cp.stdout.decode())
        self.assertIn("the server answered EHLO with 421 4.7.1 mx.example.test Error: No client "
                      "certificate presented: it asked for a client certificate in the TLS "
                      "handshake, and mailtap presented none: give it one with --client-cert",
                      cp.stderr.decode())

    def test_replay_presents_the_certificate(self):
        mt = self.proxy(self.good)
        self.assertEqual(h.smtplib_send(mt.port, h.make_message(h.unique_token())), {})
        [row] = wait_ended(db_of(mt), 1)
        mt.stop()

        def replay(*args):
            return subprocess.run(
                [str(h.mailtap_bin()), "replay", str(row["id"]), "--to", self.postfix.submission,
                 "--db", str(db_of(mt)), "--ca-file", str(self.pki.ca_cert), "--tls-name",
                 "localhost", *map(str, args)], capture_output=True, timeout=60)

        cp = replay(*cert_args(self.good))
        self.assertEqual(cp.returncode, 0, cp.stderr.decode() + cp.stdout.decode())
        replayed = query(db_of(mt), "SELECT * FROM sessions WHERE replay_of = ?", (row["id"],))
        self.assertEqual([r["client_cert_subject"] for r in replayed], [self.good.subject])
        cp = replay("--no-record")
        self.assertEqual(cp.returncode, 1, cp.stdout.decode())
        self.assertIn("--client-cert FILE", cp.stdout.decode() + cp.stderr.decode())


class ClientCertAlertTest(h.IntegrationCase):
    """An OpenSSL server that requires a client certificate refuses one it does not trust with
    a TLS alert, in the handshake (TLS 1.2) or after mailtap's side of it (TLS 1.3)."""

    @classmethod
    def prepare_pki(cls):
        cls.good = h.issue_client_certificate(cls.pki, "relay client")
        cls.stranger = h.issue_client_certificate(cls.pki, "stranger", issuer="other-ca")

    def test_a_certificate_the_server_does_not_trust_is_named_with_the_alert(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                f = self.fake("good", tls_setup=require_client_certificate(self.pki, version))
                mt = self.mailtap(f.address, extra_args=cert_args(self.stranger))
                r = first_reply_or_after_ehlo(mt.port)
                self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
                self.assertEqual(
                    r.text,
                    f"4.7.0 mailtap: {f.address} refused mailtap's client certificate "
                    f"{self.stranger.cert} ({self.stranger.subject}) (TLS alert \"unknown CA\"): "
                    "it does not trust the CA that issued it (CN=unrelated test CA,O=elsewhere): "
                    "check that the certificate comes from the CA the server's administrator "
                    "named, and that the file holds the intermediate certificates "
                    "after it (it holds none)")
                mt.stop()
                [row] = query(db_of(mt), "SELECT * FROM sessions")
                self.assertIn("refused mailtap's client certificate", row["outcome_reason"])
                self.assertEqual(row["client_cert_subject"], self.stranger.subject)

                mt = self.mailtap(f.address, extra_args=cert_args(self.good))
                with h.SmtpSocket(mt.port) as c:
                    self.assertEqual(c.reply().code, 220, mt.output)
                    self.assertEqual(c.cmd("EHLO client.test").code, 250, mt.output)
                    self.assertEqual(c.cmd("QUIT").code, 221)


def ask_for_a_client_certificate(pki: h.Pki):
    """A server that asks for a client certificate and completes the handshake without one,
    as Postfix does, to refuse in SMTP what it got."""
    def setup(ctx: ssl.SSLContext) -> None:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(str(pki.ca_cert))
    return setup


class ClientCertGreetingRefusalTest(h.IntegrationCase):
    """Implicit TLS: a server that asked for a client certificate refuses in its greeting. The
    421 keeps the server's enhanced status when it is a 4.x.x (4.3.2 otherwise, as any refused
    greeting gets) and only adds what mailtap knows of the certificate."""

    def refusal(self, greeting: bytes) -> h.Reply:
        f = self.fake("good", implicit=True, banner=greeting,
                      tls_setup=ask_for_a_client_certificate(self.pki))
        mt = self.mailtap(f.address, tls="implicit")
        r = h.first_reply_421(mt.port)
        self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
        self.assertIn(f"mailtap: {f.address} refused the session: ", r.text)
        self.assertIn("; it asked for a client certificate in the TLS handshake, and mailtap "
                      "presented none: give it one with --client-cert FILE", r.text)
        return r

    def test_a_4xx_status_of_the_servers_is_kept(self):
        r = self.refusal(b"421 4.7.1 fake.example.test Client certificate required\r\n")
        self.assertTrue(r.text.startswith("4.7.1 mailtap: "), r.text)
        self.assertIn("Client certificate required", r.text)

    def test_a_5xx_status_becomes_4_3_2_with_the_note(self):
        r = self.refusal(b"554 5.7.1 fake.example.test no certificate, no service\r\n")
        self.assertTrue(r.text.startswith("4.3.2 mailtap: "), r.text)
        self.assertNotIn("4.7.0", r.text)
        self.assertIn("no certificate, no service", r.text)


class ClientCertStartTest(h.IntegrationCase):
    """Every file a user can get wrong is refused before mailtap listens, exit status 2, in
    words that name the file; an expired certificate is presented, with a warning."""

    @classmethod
    def prepare_pki(cls):
        cls.good = h.issue_client_certificate(cls.pki, "relay client")
        cls.other = h.issue_client_certificate(cls.pki, "other client")
        cls.expired = h.issue_client_certificate(cls.pki, "expired client",
                                                 start="20200101000000Z", end="20200201000000Z")

    def start(self, *args, **kw) -> h.Mailtap:
        # --ca-file and --tls-name are refused with --tls none: left out there.
        plain = "none" in [str(a) for a in args]
        mt = h.Mailtap("127.0.0.1:1", ca_file=None if plain else self.pki.ca_cert,
                       tls_name=None if plain else "localhost", ready=False,
                       extra_args=[str(a) for a in args], **kw)
        mt.start()
        self.addCleanup(mt.__exit__, None, None, None)
        return mt

    def refused(self, *args) -> str:
        mt = self.start(*args)
        self.assertEqual(mt.wait(timeout=20), 2, mt.output)
        self.assertNotIn("listening on", mt.stderr)
        return mt.stderr

    def copy(self, source: Path, name: str, mode: int) -> Path:
        path = self.tmp / name
        shutil.copyfile(source, path)
        path.chmod(mode)
        return path

    def test_each_bad_file_is_refused_at_start_naming_it(self):
        der = self.tmp / "client.der"
        der.write_bytes(h.run(["openssl", "x509", "-in", self.good.leaf, "-outform", "DER"]).stdout)
        encrypted = self.tmp / "encrypted.key"
        h.run(["openssl", "pkey", "-in", self.good.key, "-aes128", "-passout", "pass:secret",
               "-out", encrypted])
        encrypted.chmod(0o600)
        missing = self.tmp / "missing.pem"
        open_key = self.copy(self.good.key, "open.key", 0o644)
        cases = {
            "missing": (("--client-cert", missing, "--client-key", self.good.key),
                        f"--client-cert {missing}: No such file or directory"),
            "unreadable key": (("--client-cert", self.good.cert, "--client-key", missing),
                               f"--client-key {missing}: No such file or directory"),
            # The words --local-key uses for the same file (test_local_tls.py).
            "a directory as key": (("--client-cert", self.good.cert, "--client-key", self.tmp),
                                   f"--client-key {self.tmp}: a directory, not a file"),
            "not PEM": (("--client-cert", der, "--client-key", self.good.key),
                        f"--client-cert {der}: not a PEM file (no -----BEGIN line); convert a "
                        "DER certificate with openssl x509 -inform der"),
            "no certificate": (("--client-cert", self.good.key, "--client-key", self.good.key),
                               f"--client-cert {self.good.key}: no certificate in it"),
            "no key": (("--client-cert", self.good.cert),
                       f"--client-cert {self.good.cert} holds no private key: give its key with "
                       "--client-key FILE"),
            "another key": (("--client-cert", self.good.cert, "--client-key", self.other.key),
                            f"--client-key {self.other.key} is not the key of --client-cert "
                            f"{self.good.cert}"),
            "encrypted": (("--client-cert", self.good.cert, "--client-key", encrypted),
                          f"--client-key {encrypted}: the private key is encrypted (protected by "
                          "a passphrase), and mailtap asks for none: write a copy without the "
                          "passphrase, private to you, and give that one as --client-key: "
                          f"(umask 077; openssl pkey -in {encrypted} -out KEY.pem)"),
            "open to others": (("--client-cert", self.good.cert, "--client-key", open_key),
                               f"--client-key {open_key}: permissions 0644 are too open; a "
                               f"private key must not be accessible by group or others (chmod "
                               f"600 {open_key})"),
            "key alone": (("--client-key", self.good.key,),
                          "--client-key needs --client-cert"),
            "plain text": (("--tls", "none", *cert_args(self.good)),
                           "--client-cert needs TLS to present it in: not with --tls none"),
        }
        if os.geteuid() == 0:
            foreign = self.copy(self.good.key, "foreign.key", 0o600)
            os.chown(foreign, 65534, 65534)
            cases["another user's"] = (
                ("--client-cert", self.good.cert, "--client-key", foreign),
                f"--client-key {foreign}: owned by uid 65534, not by the user running mailtap "
                "(chown it to yourself)")
        for name, (args, said) in cases.items():
            with self.subTest(name):
                self.assertIn(said, self.refused(*args))
        # The key in the certificate file holds that file to the key's rule.
        both = self.tmp / "both.pem"
        both.write_bytes(self.good.cert.read_bytes() + self.good.key.read_bytes())
        both.chmod(0o640)
        self.assertIn(f"--client-cert {both} (it holds a private key): permissions 0640 are too "
                      f"open", self.refused("--client-cert", both))

    def test_an_expired_certificate_is_presented_with_a_warning(self):
        mt = self.start(*cert_args(self.expired))
        mt.wait_stderr("listening on")
        self.assertIn(f"WARNING: --client-cert {self.expired.cert}: it expired on "
                      "2020-02-01T00:00:00Z; it is presented all the same", mt.stderr)

    def test_the_config_file_and_the_environment_give_it_too(self):
        conf_dir = self.tmp / "conf"
        conf_dir.mkdir(exist_ok=True)
        shutil.copyfile(self.good.cert, conf_dir / "client.pem")
        self.copy(self.good.key, "conf/client.key", 0o600)
        config = h.write_config_file(conf_dir / "config.toml",
                                     'client-cert = "client.pem"\nclient-key = "client.key"\n')
        mt = self.start("--config", config)
        mt.wait_stderr("listening on")
        self.assertIn(f"presenting the client certificate {conf_dir / 'client.pem'} "
                      f"({self.good.subject})", mt.stderr)
        printed = subprocess.run([str(h.mailtap_bin()), "proxy", "--config", str(config),
                                  "--print-config"], capture_output=True, timeout=30)
        self.assertEqual(printed.returncode, 0, printed.stderr.decode())
        self.assertRegex(printed.stdout.decode(),
                         rf'client-cert = "{re.escape(str(conf_dir / "client.pem"))}" +# file '
                         rf"{re.escape(str(config))}:1")
        # --print-config refuses what the start refuses, without reading the key.
        (conf_dir / "client.key").chmod(0o644)
        printed = subprocess.run([str(h.mailtap_bin()), "proxy", "--config", str(config),
                                  "--print-config"], capture_output=True, timeout=30)
        self.assertEqual(printed.returncode, 2)
        self.assertIn(f"--client-key {conf_dir / 'client.key'}: permissions 0644 are too open",
                      printed.stderr.decode())
        mt = self.start(env={"MAILTAP_CLIENT_CERT": str(self.good.cert),
                             "MAILTAP_CLIENT_KEY": str(self.good.key)})
        mt.wait_stderr("listening on")
        self.assertIn(f"presenting the client certificate {self.good.cert}", mt.stderr)


if __name__ == "__main__":
    h.main()
