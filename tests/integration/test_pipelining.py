#!/usr/bin/env python3
"""PIPELINING (RFC 2920) through mailtap to Postfix."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

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


if __name__ == "__main__":
    h.main()
