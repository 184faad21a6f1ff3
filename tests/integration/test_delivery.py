#!/usr/bin/env python3
"""Clients speaking plain SMTP to mailtap, which relays over STARTTLS (or implicit TLS) to a
private Gmail-like Postfix.  Every delivered body must match the body sent byte for byte
(Postfix stores LF line ends).

Postfix runs with smtpd_forbid_bare_newline=reject here: any bare LF that mailtap forwards
instead of normalising to CRLF gets a 550."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import events, query, wait_ended, wait_for  # noqa: E402

ALICE = ("alice", h.USERS["alice"])
BOB = ("bob", h.USERS["bob"])


class DeliveryTest(h.IntegrationCase):
    with_postfix = True
    postfix_kwargs = {"bare_newline": "reject"}

    def starttls_proxy(self, *extra):
        return self.mailtap(self.postfix.submission, extra_args=extra)

    # --- swaks --------------------------------------------------------------------------
    def test_swaks_auth_plain(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok)
        cp = h.swaks(mt.port, auth="PLAIN", user=ALICE[0], password=ALICE[1], data=msg)
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg)

    def test_swaks_auth_login(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="bob@example.test")
        cp = h.swaks(mt.port, auth="LOGIN", user=BOB[0], password=BOB[1], data=msg,
                     to="bob@example.test")
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg, mailbox="bob")

    def test_swaks_implicit_tls_upstream(self):
        mt = self.mailtap(self.postfix.smtps, tls="implicit")
        tok = h.unique_token()
        msg = h.make_message(tok)
        cp = h.swaks(mt.port, auth="PLAIN", user=ALICE[0], password=ALICE[1], data=msg)
        self.assertProcOk(cp, "swaks")
        self.assertDelivered(tok, msg)

    # --- curl ----------------------------------------------------------------------------
    def test_curl(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok)
        f = self.tmp / f"{tok}.eml"
        f.write_bytes(msg)
        cp = h.curl_send(mt.port, f, user=ALICE[0], password=ALICE[1])
        self.assertProcOk(cp, "curl")
        self.assertDelivered(tok, msg)

    # --- smtplib -------------------------------------------------------------------------
    def test_smtplib_login(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="carol@example.test")
        refused = h.smtplib_send(mt.port, msg, rcpts=["carol@example.test"], user=ALICE[0],
                                 password=ALICE[1])
        self.assertEqual(refused, {})
        self.assertDelivered(tok, msg, mailbox="carol")

    # --- netcat with bare LF -------------------------------------------------------------
    def test_nc_bare_lf(self):
        """A person at `nc`: every line ends in a bare LF, AUTH PLAIN with an initial
        response, the body dot-stuffed by hand, ".\\n" ends DATA."""
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok, eol="\n")
        with h.NetcatClient(mt.port) as nc:
            h.start_data(nc, ehlo="x", auth=ALICE)
            nc.send(h.dot_stuff(msg))
            r = nc.cmd(b".")
            self.assertEqual(r.code, 250, r)
            self.assertEqual(nc.cmd(b"QUIT").code, 221)
        self.assertDelivered(tok, msg)

    def test_raw_crlf_with_dot_stuffing(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        msg = h.make_message(tok)
        with h.SmtpSocket(mt.port) as c:
            h.start_data(c, auth=ALICE)
            c.send(h.dot_stuff(msg))
            self.assertEqual(c.cmd(".").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertDelivered(tok, msg)

    def test_ctrl_c_in_a_body_is_answered_and_the_message_still_goes(self):
        """Line-mode telnet sends Ctrl-C as IAC IP IAC DO TM, glued to the next line typed, and
        then shows nothing until the DO TM is answered. In a body those octets are data (they go
        to Postfix as they came, as sent straight to it), but mailtap answers the DO TM with IAC
        WONT TM at once, before anything else, so the person sees the 250 that says the message
        was sent after all."""
        mt = self.starttls_proxy()
        tok = h.unique_token()
        with h.SmtpSocket(mt.port) as c:
            h.start_data(c, auth=ALICE)
            c.send(f"Subject: {tok}\r\n\r\nI changed my mind, abo\r\n".encode())
            c.send(b"\xff\xf4\xff\xfd\x06.\r\n")
            c.sock.settimeout(5)
            answer = b""
            while len(answer) < 3:
                chunk = c.sock.recv(3 - len(answer))
                self.assertTrue(chunk, "mailtap closed")
                answer += chunk
            self.assertEqual(answer, b"\xff\xfc\x06", "IAC WONT TM, before anything else")
            r = c.cmd(".")
            self.assertEqual(r.code, 250, r)
            self.assertEqual(c.cmd("QUIT").code, 221)
        got = self.postfix.wait_for_message(tok)
        self.assertIn(b"\xff\xf4\xff\xfd\x06.\n", got, "the body's octets went unchanged")
        db = Path(mt.args()[mt.args().index("--db") + 1])
        [s] = wait_ended(db, 1)
        notes = [e for e in events(db, s["id"])
                 if e["direction"] == "mailtap_to_client" and e["verb"] == "DATA"]
        self.assertEqual([bytes(e["bytes"]) for e in notes], [b"\xff\xfc\x06"], notes)
        self.assertIn("did not abort the message", notes[0]["note"])

    def test_mixed_line_endings_in_body(self):
        mt = self.starttls_proxy()
        tok = h.unique_token()
        body = (f"token {tok}\r\nbare lf line\nthen crlf\r\n.dot after bare lf\n"
                "last\n").encode()
        msg = f"Subject: {tok}\r\nFrom: <s@client.test>\n\r\n".encode() + body
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test", eol=b"\n")
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<carol@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA", eol=b"\n").code, 354)
            c.send(h.dot_stuff(msg))
            r = c.cmd(".", eol=b"\n")
            self.assertEqual(r.code, 250, r)
            c.cmd("QUIT")
        got = self.postfix.wait_for_message(tok, mailbox="carol")
        self.assertTrue(got.endswith(body.replace(b"\r\n", b"\n")), got)

    # --- dialogue as the client sees it ----------------------------------------------------
    def test_greeting_is_postfix_banner(self):
        mt = self.starttls_proxy()
        with h.SmtpSocket(mt.port) as c:
            g = c.reply()
            self.assertEqual(str(g), "220 mx.example.test ESMTP Postfix (mailtap test instance)\r\n")

    def test_ehlo_offers_auth_not_starttls(self):
        mt = self.starttls_proxy()
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            e = c.cmd("EHLO client.test")
            self.assertEqual(e.code, 250)
            self.assertTrue(e.lines[0].startswith("mx.example.test"), e)
            keywords = [l.split()[0].upper() for l in e.lines[1:] if l.strip()]
            self.assertNotIn("STARTTLS", keywords, e)
            auth = [l for l in e.lines if l.upper().startswith("AUTH ")]
            self.assertEqual(len(auth), 1, e)
            self.assertIn("PLAIN", auth[0].split())
            self.assertIn("LOGIN", auth[0].split())

    def test_client_starttls_is_answered_not_forwarded(self):
        mt = self.starttls_proxy()
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd("STARTTLS")
            self.assertIn(r.code, (454, 502), r)
            # the session is still usable
            self.assertEqual(c.cmd("NOOP").code, 250)
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        # (forwarded, Postfix would have said "554 5.5.1 Error: TLS already active")

    def test_wrong_password_is_relayed(self):
        mt = self.starttls_proxy()
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd("AUTH PLAIN " + h.auth_plain("alice", "not-the-password"))
            self.assertEqual(r.code, 535, r)
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)

    def test_relay_requires_auth(self):
        mt = self.starttls_proxy()
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>").code, 250)
            r = c.cmd("RCPT TO:<someone@elsewhere.test>")
            self.assertEqual(r.code, 554, r)
            self.assertIn("Relay access denied", r.text)
            self.assertEqual(c.cmd("QUIT").code, 221)

    def test_several_sessions_one_after_another_and_concurrently(self):
        import threading
        mt = self.starttls_proxy()
        toks, msgs, results = [], [], []

        def send(i):
            tok = h.unique_token(f"c{i}")
            msg = h.make_message(tok, to_addr="carol@example.test")
            toks.append(tok)
            msgs.append(msg)
            try:
                results.append(h.smtplib_send(mt.port, msg, rcpts=["carol@example.test"]))
            except Exception as e:  # noqa: BLE001
                results.append(e)

        send(0)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(results, [{}] * 5)
        for tok, msg in zip(toks, msgs):
            self.assertDelivered(tok, msg, mailbox="carol")
        self.assertTrue(mt.alive())


class CutMessageTest(h.IntegrationCase):
    """A proxy killed (kill -9) inside a message body: the record keeps what got through, and
    the tools show it, and hand it out, as an unfinished message, never as a delivered one."""
    with_postfix = True

    def tool(self, db, *args, status: int = 0) -> subprocess.CompletedProcess:
        cp = subprocess.run([str(h.mailtap_bin()), *args, "--db", str(db)], capture_output=True,
                            timeout=60)
        self.assertEqual(cp.returncode, status, cp.stderr.decode(errors="replace"))
        return cp

    def test_a_body_cut_by_kill_9_is_an_unfinished_message(self):
        db = self.tmp / "cutmsg.db"
        m = self.mailtap(self.postfix.submission, db=db)
        tok = h.unique_token("cutmsg")
        # Past 64 KiB (its last pieces in the body file), a line the client dot-stuffed, and a
        # last line cut in the middle.
        sent = (f"Subject: {tok}\r\n\r\n".encode() +
                b"".join(b"line %05d of a message cut by kill -9\r\n" % i for i in range(3000)) +
                b"..a line the client dot-stuffed\r\n" + b"the last line, cut in the midd")
        body = sent.replace(b"\r\n..a line", b"\r\n.a line")  # as the server would store it
        with h.SmtpSocket(m.port) as c:
            h.start_data(c, auth=ALICE)
            c.send(sent)
            wait_for(lambda: query(db, "SELECT COALESCE(SUM(wire_size), 0) FROM events WHERE "
                                       "kind = 'data' AND direction = 'client_to_upstream'")[0][0]
                     == len(sent), 20, "the body recorded")
            os.kill(m.proc.pid, signal.SIGKILL)
            m.proc.wait(timeout=10)
        [sid] = [r[0] for r in query(db, "SELECT id FROM sessions")]
        self.assertEqual(query(db, "SELECT count(*) FROM messages")[0][0], 0)

        shown = self.tool(db, "show", str(sid), "--color", "never").stdout.decode()
        self.assertIn("outcome  cut: the process recording it is gone", shown[:2000])
        # The transcript ends with it: the last thing a reader sees of the session.
        end = shown[shown.index("C: the last line, cut in the midd\n"):]
        self.assertEqual(end.splitlines()[1:], [
            "", "message 1  MAIL FROM:<sender@client.test>  (not finished)",
            f"  message 1 not finished: session cut after {len(body)} octets of its body (no end "
            "of data in the record; the server accepts a message only at its end of data, so it "
            "never accepted this one unless mailtap relayed that after its last commit)",
            f"  (print what was recorded with: mailtap show {sid} --message 1)"])

        cp = self.tool(db, "show", str(sid), "--message", "1")
        self.assertEqual(cp.stdout, body)
        self.assertIn(b"show: warning: message 1 not finished: session cut after", cp.stderr)
        self.assertIn(b"not a delivered message", cp.stderr)
        cp = self.tool(db, "show", str(sid), "--message", "2", status=1)
        self.assertIn(b"has no message 2 (it has 0; message 1 not finished: give --message 1",
                      cp.stderr)

        # export: left out and named unless asked for, then marked as unfinished.
        cp = self.tool(db, "export", str(sid), "--format", "eml", status=1)
        self.assertEqual(cp.stdout, b"")
        self.assertIn(b"message 1 not finished: session cut after", cp.stderr)
        self.assertIn(b"left out (--unfinished exports", cp.stderr)
        self.assertIn(b"no messages in the selected sessions", cp.stderr)
        self.tool(db, "export", str(sid), "--format", "mbox", status=1)
        out = self.tmp / "cut.eml"
        cp = self.tool(db, "export", str(sid), "--format", "eml", "--unfinished", "-o", str(out))
        self.assertEqual(out.read_bytes(), body)
        self.assertIn(b"warning: session %d message 1 not finished" % sid, cp.stderr)
        emls = self.tmp / "emls"
        cp = self.tool(db, "export", str(sid), "--format", "eml", "--unfinished", "-o",
                       str(emls) + "/")
        self.assertEqual(cp.stdout.decode(),
                         f"{emls}/session-{sid}-message-1.unfinished.eml  (not finished)\n")
        mbox = self.tool(db, "export", str(sid), "--format", "mbox", "--unfinished").stdout
        self.assertTrue(mbox.startswith(b"From sender@client.test "), mbox[:200])
        self.assertIn(b"\nX-Mailtap-Unfinished: message 1 not finished: session cut after", mbox)
        self.assertIn(b"\nSubject: " + tok.encode() + b"\n", mbox)
        self.tool(db, "export", str(sid), "--format", "json", "--unfinished", status=2)
        whole = json.loads(self.tool(db, "export", str(sid)).stdout)
        self.assertEqual(whole["messages"], [])

        # The other readers of the record take the cut session as before.
        audit = json.loads(self.tool(db, "audit", "--json").stdout)
        self.assertEqual(audit["outcomes"], {"cut": 1})
        fake = self.fake("good")
        cp = subprocess.run([str(h.mailtap_bin()), "replay", str(sid), "--unfinished", "--to",
                             fake.address, "--ca-file", str(self.pki.ca_cert), "--no-record",
                             "--db", str(db),
                             "--password-env", "CUTMSG_PW"],
                            env={**os.environ, "CUTMSG_PW": ALICE[1]}, capture_output=True,
                            timeout=60)
        self.assertIn(cp.returncode, (0, 1), cp.stderr.decode(errors="replace"))
        port = h.free_port()
        mock = subprocess.Popen([str(h.mailtap_bin()), "mock", str(sid), "--unfinished",
                                 "--listen", f"127.0.0.1:{port}", "--wait-for-client", "20s",
                                 "--db", str(db)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(lambda: mock.poll() is None and mock.kill())
        deadline = time.monotonic() + 10
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or mock.poll() is not None:
                    self.fail(f"mock did not listen: {mock.communicate()}")
                time.sleep(0.05)
        with client:
            self.assertTrue(client.recv(4096).startswith(b"220 "))
        mock.communicate(timeout=30)
        self.assertIn(mock.returncode, (0, 1))


if __name__ == "__main__":
    h.main()
