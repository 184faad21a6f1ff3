#!/usr/bin/env python3
"""`mailtap replay` as a CI check, on sessions recorded through `mailtap proxy --tls none` to a
small in-process server whose answers then change: what a CI script reads (the exit status, the
JSON, the text table in a log) must say what changed, and tell a server that cannot be reached
from a reply that differs."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MESSAGE = "Subject: t\r\n\r\nhello\r\n"


class ReplayCiTest(h.IntegrationCase):
    def setUp(self):
        self.server = h.BodySink()
        self.addCleanup(self.server.close)
        self.db = self.tmp / f"{self.id().rsplit('.', 1)[-1]}.db"

    def proxy(self) -> h.Mailtap:
        return self.mailtap(f"127.0.0.1:{self.server.port}", tls="none", tls_name=None,
                            ca_file=None, db=self.db)

    def replay(self, *extra, to=None):
        cmd = [str(h.mailtap_bin()), "replay", "1", "--to", to or f"127.0.0.1:{self.server.port}",
               "--tls", "none", "--db", str(self.db), "--no-record", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    # a record without an end ------------------------------------------------------------
    def test_a_session_without_an_end_is_refused_unless_asked_for(self):
        proxy = self.proxy()
        with h.SmtpSocket(proxy.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@client.test>")
            h.wait_recorded_reply(self.db, 1, "MAIL", 250)
            proxy.proc.kill()
            proxy.proc.wait(10)
        cp = self.replay()
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("replay: session 1 cannot be replayed: it has no end (cut: the process "
                      "recording it stopped without ending it), so what the server said after "
                      "its last recorded event is unknown; record it again, or give "
                      "--unfinished to replay the part recorded", cp.stderr)
        self.assertEqual(cp.stdout, "")
        cp = self.replay("--unfinished")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertIn("session 1 has no end (cut", cp.stderr)
        self.assertIn("every reply class matches", cp.stdout)


    def record(self):
        proxy = self.proxy()
        h.smtplib_send(proxy.port, MESSAGE.encode(), mail_from="a@client.test",
                       rcpts=["b@example.test"])
        self._stop_mailtap(proxy)

    # a replay that cannot start ---------------------------------------------------------
    def test_a_server_that_cannot_be_reached_is_not_a_difference(self):
        self.record()
        to = f"127.0.0.1:{h.closed_port()}"
        cp = self.replay("--json", to=to)
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        report = json.loads(cp.stdout)
        self.assertEqual(report["original_session"], 1)
        self.assertEqual(report["target"], to)
        self.assertFalse(report["match"])
        self.assertEqual(report["replies"], [])
        self.assertIn("Connection refused", report["failure"])
        cp = self.replay(to=to)
        self.assertEqual(cp.returncode, 3, cp.stdout + cp.stderr)
        self.assertIn(f"replay of session 1 to {to} failed: ", cp.stderr)
        self.assertIn("Connection refused", cp.stderr)
        # A replay that ran has "failure": null.
        report = json.loads(self.replay("--json").stdout)
        self.assertIsNone(report["failure"])
        self.assertTrue(report["match"])


    # what the output shows of a reply that changed --------------------------------------
    def test_json_keeps_every_line_of_a_reply(self):
        self.record()
        self.server.rcpt_reply = (b"550-5.7.1 The recipient is on a block list.\r\n"
                                  b"550-5.7.1 Reason: policy 42 (see https://example.test/p42)\r\n"
                                  b"550 5.7.1 Contact postmaster.\r\n")
        cp = self.replay("--json")
        self.assertEqual(cp.returncode, 1, cp.stdout + cp.stderr)
        replies = json.loads(cp.stdout)["replies"]
        [rcpt] = [r for r in replies if r["replay"] and r["replay"]["code"] == 550]
        self.assertEqual(rcpt["replay"]["text"], "550-5.7.1 The recipient is on a block list.")
        self.assertEqual(rcpt["replay"]["lines"],
                         ["550-5.7.1 The recipient is on a block list.",
                          "550-5.7.1 Reason: policy 42 (see https://example.test/p42)",
                          "550 5.7.1 Contact postmaster."])
        self.assertEqual(rcpt["original"]["lines"], ["250 ok"])
        # The original is what the client got: under --tls none its first line is marked.
        [ehlo] = [r for r in replies if r["original"]["text"].startswith("250-sink [mailtap: "
                                                                         "plain text to ")]
        self.assertEqual(ehlo["replay"]["lines"], ["250-sink", "250 PIPELINING"])


    def test_json_names_the_command_each_pipelined_reply_answers(self):
        proxy = self.proxy()
        with h.SmtpSocket(proxy.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\n"
                   b"RCPT TO:<c@example.test>\r\nDATA\r\n")
            self.assertEqual([c.reply().code for _ in range(4)], [250, 250, 250, 354])
            c.send(b"Subject: t\r\n\r\nhello\r\n.\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self._stop_mailtap(proxy)
        self.server.rcpt_reply = b"550 5.1.1 no such user\r\n"
        cp = self.replay("--json")
        self.assertEqual(cp.returncode, 1, cp.stdout + cp.stderr)
        replies = json.loads(cp.stdout)["replies"]
        pipelined = [r for r in replies if r["original"]["text"] == "250 ok"]
        self.assertEqual([r["command"] for r in pipelined],
                         ["MAIL FROM:<a@client.test>", "RCPT TO:<b@example.test>",
                          "RCPT TO:<c@example.test>"])
        self.assertEqual([r["replay"]["code"] for r in pipelined], [250, 550, 550])
        self.assertEqual(len(pipelined[0]["sent"]), 4)  # the flight, as sent
        self.assertIsNone(replies[0]["command"])  # the greeting


    def test_text_shows_a_changed_reply_whole(self):
        self.record()
        reason = ("550-5.7.1 <b@example.test>: Recipient address rejected: this mailbox was "
                  "closed on 2026-12-01\r\n550 5.7.1 Write to postmaster@example.test instead\r\n")
        self.server.rcpt_reply = reason.encode()
        cp = self.replay()
        self.assertEqual(cp.returncode, 1, cp.stdout + cp.stderr)
        lines = cp.stdout.splitlines()
        [row] = [i for i, line in enumerate(lines) if "DIFFERENT" in line]
        self.assertEqual(lines[row + 1:row + 3],
                         ["   replay: 550-5.7.1 <b@example.test>: Recipient address rejected: "
                          "this mailbox was closed on 2026-12-01",
                          "   replay: 550 5.7.1 Write to postmaster@example.test instead"])
        # A reply that fits and is the same is not repeated.
        self.assertFalse(any(line.startswith("   replay: 250") for line in lines), cp.stdout)


if __name__ == "__main__":
    h.main()
