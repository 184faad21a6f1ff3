#!/usr/bin/env python3
"""PIPELINING (RFC 2920) through mailtap to Postfix."""

import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import query, wait_ended  # noqa: E402

ALICE = ("alice", h.USERS["alice"])


class PipeliningPostfixTest(h.IntegrationCase):
    with_postfix = True
    postfix_kwargs = {"bare_newline": "reject"}

    def test_mail_rcpt_data_in_one_write(self):
        mt = self.mailtap(self.postfix.submission)
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="bob@example.test")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            e = c.cmd("EHLO client.test")
            self.assertIn("PIPELINING", e.lines)
            c.send(b"MAIL FROM:<sender@client.test>\r\n"
                   b"RCPT TO:<bob@example.test>\r\n"
                   b"DATA\r\n")
            replies = [c.reply() for _ in range(3)]
            self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
            self.assertTrue(replies[0].text.startswith("2.1.0"), replies)
            self.assertTrue(replies[1].text.startswith("2.1.5"), replies)
            # end of data and QUIT pipelined too
            c.send(h.dot_stuff(msg) + b".\r\nQUIT\r\n")
            r1, r2 = c.reply(), c.reply()
            self.assertEqual((r1.code, r2.code), (250, 221), (r1, r2))
            self.assertTrue(c.is_closed(5))
        self.assertDelivered(tok, msg, mailbox="bob")

    def test_replies_stay_in_order_with_a_rejected_recipient(self):
        mt = self.mailtap(self.postfix.submission)
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="carol@example.test")
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.send(b"MAIL FROM:<sender@client.test>\r\n"
                   b"RCPT TO:<carol@example.test>\r\n"
                   b"RCPT TO:<no-such-user@example.test>\r\n"
                   b"RCPT TO:<someone@elsewhere.test>\r\n"
                   b"RCPT TO:<alice@example.test>\r\n"
                   b"DATA\r\n")
            replies = [c.reply() for _ in range(6)]
            self.assertEqual([r.code for r in replies], [250, 250, 550, 554, 250, 354],
                             "\n".join(map(str, replies)))
            self.assertIn("no-such-user@example.test", replies[2].text)
            self.assertIn("Relay access denied", replies[3].text)
            self.assertEqual(c.cmd(h.dot_stuff(msg) + b".").code, 250)
            c.cmd("QUIT")
        self.assertDelivered(tok, msg, mailbox="carol")
        self.assertDelivered(tok, msg, mailbox="alice")

    def test_bdat_after_helo_says_to_send_ehlo_and_swallows_its_chunk(self):
        """Postfix advertises CHUNKING, but only in the reply to EHLO: after HELO the chunk
        (a command here) is consumed, never relayed, and the reply says to send EHLO."""
        mt = self.mailtap(self.postfix.submission)
        chunk = b"RCPT TO:<bob@example.test>\r\n"
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            self.assertEqual(c.cmd("HELO client.test").code, 250)
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
            self.assertEqual(c.cmd("MAIL FROM:<alice@example.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            r = c.cmd(b"BDAT %d LAST\r\n" % len(chunk) + chunk, eol=b"")
            self.assertEqual(r.code, 503, r)
            self.assertIn("only the reply to EHLO offers", r.text)
            self.assertIn("send EHLO", r.text)
            self.assertNotIn("did not advertise", r.text)
            self.assertEqual(c.cmd("NOOP").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertNotIn("bob@example.test", self.postfix.maillog_text())

    def test_auth_then_pipelined_transaction(self):
        mt = self.mailtap(self.postfix.submission)
        tok = h.unique_token()
        msg = h.make_message(tok)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
            c.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
                   b"DATA\r\n")
            self.assertEqual([c.reply().code for _ in range(3)], [250, 250, 354])
            self.assertEqual(c.cmd(h.dot_stuff(msg) + b".").code, 250)
            c.cmd("QUIT")
        self.assertDelivered(tok, msg)

    # A client that pipelines commands whose meaning depends on replies still to come (RSET,
    # a MAIL the server refuses): every message the server accepts is in the record, with
    # the recipients and body the server gave it.
    def recorded_messages(self, db):
        [s] = wait_ended(db, 1)
        rows = query(db, "SELECT * FROM messages WHERE session_id = ? ORDER BY seq", (s["id"],))
        return [(m, [r["command"] for r in query(
            db, "SELECT command FROM recipients WHERE message_id = ? ORDER BY position",
            (m["id"],))]) for m in rows]

    def pipelined_transaction(self, first: bytes, replies: list, bdat: bool = False):
        mt = self.mailtap(self.postfix.submission)
        db = Path(mt._tmp) / "mailtap.db"
        tok = h.unique_token()
        msg = h.make_message(tok, to_addr="carol@example.test")
        transaction = b"MAIL FROM:<sender@client.test>\r\nRCPT TO:<carol@example.test>\r\n"
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            e = c.cmd("EHLO client.test")
            if bdat:
                self.assertIn("CHUNKING", e.lines)
                c.send(first + transaction + b"BDAT %d LAST\r\n" % len(msg) + msg)
            else:
                c.send(first + transaction + b"DATA\r\n")
            got = [c.reply() for _ in range(len(replies))]
            self.assertEqual([r.code for r in got], replies, "\n".join(map(str, got)))
            if not bdat:
                self.assertEqual(c.cmd(h.dot_stuff(msg) + b".").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertDelivered(tok, msg, mailbox="carol")
        [(m, rcpts)] = self.recorded_messages(db)
        self.assertEqual(m["mail_from"], "MAIL FROM:<sender@client.test>")
        self.assertEqual(rcpts, ["RCPT TO:<carol@example.test>"])
        self.assertEqual(m["final_code"], 250)
        self.assertEqual(m["body_truncated"], 0)
        self.assertEqual(h.recorded_body(db, m["id"]), msg)
        return m

    def test_pipelined_rset_and_mail_record_the_delivered_message(self):
        m = self.pipelined_transaction(
            b"MAIL FROM:<sender@client.test>\r\nRCPT TO:<bob@example.test>\r\nRSET\r\n",
            [250, 250, 250, 250, 250, 354])
        self.assertEqual(m["mail_transaction"], 2)

    def test_refused_mail_then_pipelined_mail_records_the_delivered_message(self):
        m = self.pipelined_transaction(b"MAIL FROM:<sender@client.test> FOO=bar\r\n",
                                       [555, 250, 250, 354])
        self.assertEqual(m["mail_transaction"], 2)

    def test_nested_mail_refused_keeps_the_open_transaction(self):
        # Postfix answers the second MAIL 503 (nested); the first transaction takes carol.
        m = self.pipelined_transaction(b"MAIL FROM:<sender@client.test>\r\n",
                                       [250, 503, 250, 354])
        self.assertEqual(m["mail_transaction"], 1)

    def test_bdat_behind_a_refused_mail_records_the_delivered_message(self):
        m = self.pipelined_transaction(b"MAIL FROM:<sender@client.test> FOO=bar\r\n",
                                       [555, 250, 250, 250], bdat=True)
        self.assertEqual(m["mail_transaction"], 2)
        self.assertEqual(m["via_bdat"], 1)

    def test_bdat_behind_rset_and_mail_records_the_delivered_message(self):
        m = self.pipelined_transaction(
            b"MAIL FROM:<sender@client.test>\r\nRCPT TO:<bob@example.test>\r\nRSET\r\n",
            [250, 250, 250, 250, 250, 250], bdat=True)
        self.assertEqual(m["mail_transaction"], 2)



class ForbidUnauthPipeliningTest(h.IntegrationCase):
    """Postfix with smtpd_forbid_unauth_pipelining (the default from 3.9) drops a session that
    pipelines a command behind one that must end a group (RFC 2920 §3.1)."""
    with_postfix = True
    postfix_kwargs = {"bare_newline": "reject",
                      "extra_main": {"smtpd_forbid_unauth_pipelining": "yes"}}

    def test_client_closing_after_noop_or_vrfy_gets_its_reply_not_a_554(self):
        # nc -N style: one command, then the client closes its sending side. mailtap's own QUIT
        # must wait for the reply, or Postfix answers the client's command with 554.
        mt = self.mailtap(self.postfix.submission)
        for line in (b"NOOP\r\n", b"VRFY bob@example.test\r\n"):
            with self.subTest(line=line), h.SmtpSocket(mt.port) as c:
                c.reply()
                c.cmd("EHLO client.test")
                self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(*ALICE)).code, 235)
                c.send(line)
                c.sock.shutdown(socket.SHUT_WR)
                rest = c.read_until_closed(15)
                self.assertTrue(rest.startswith((b"250 ", b"252 ")), rest)
                self.assertNotIn(b"554", rest)
        self.assertNotIn("improper command pipelining", self.postfix.maillog_text())
        for s in wait_ended(Path(mt.args()[mt.args().index("--db") + 1]), 2):
            self.assertEqual(s["outcome"], "client_closed", s)


if __name__ == "__main__":
    h.main()
