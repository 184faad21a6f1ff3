#!/usr/bin/env python3
"""What mailtap sends upstream and shows the client, observed with the scriptable fake
server (mode "good"), which records every byte received after TLS."""

import base64
import json
import os
import re
import contextlib
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def ended_session(mt: h.Mailtap, timeout: float = 15.0):
    """The one session row of `mt`'s record once it has ended, its events in order, and its
    message rows."""
    db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001
    deadline = time.monotonic() + timeout
    while True:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            rows = con.execute("SELECT * FROM sessions WHERE ended_at IS NOT NULL").fetchall()
            if rows:
                evs = con.execute("SELECT * FROM events WHERE session_id = ? ORDER BY seq",
                                  (rows[0]["id"],)).fetchall()
                msgs = con.execute("SELECT * FROM messages WHERE session_id = ?",
                                   (rows[0]["id"],)).fetchall()
                return rows[0], evs, msgs
        finally:
            con.close()
        if time.monotonic() > deadline:
            raise AssertionError("the session did not end in the record")
        time.sleep(0.05)


TCP_ESTABLISHED = 1


def tcp_bytes_received(sock) -> int:
    """tcp_info's tcpi_bytes_received: the octets (of sequence space: a FIN counts one) this
    socket's kernel has taken from its peer, read or not."""
    return struct.unpack_from("Q", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256), 128)[0]


def _proc_net_tcp(local_port: int, remote_port: int):
    """The fields of /proc/net/tcp for the loopback connection from `local_port` to
    `remote_port` (seen from the `local_port` end), or None once it is gone."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        for row in f.readlines()[1:]:
            fields = row.split()
            if (fields[1].endswith(f":{local_port:04X}")
                    and fields[2].endswith(f":{remote_port:04X}")):
                return fields
    return None


def tcp_state(local_port: int, remote_port: int) -> int:
    fields = _proc_net_tcp(local_port, remote_port)
    return int(fields[3], 16) if fields else 0


def tcp_send_queue(local_port: int, remote_port: int) -> int:
    """Octets written to that socket that its peer has not acknowledged yet."""
    fields = _proc_net_tcp(local_port, remote_port)
    return int(fields[4].split(":")[0], 16) if fields else 0


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class FakeUpstreamTest(h.IntegrationCase):
    """The scriptable fake (g) records what mailtap sends after TLS."""

    def test_pipelined_commands_and_body_reach_upstream_exactly(self):
        f = self.fake("good")
        msg = h.make_message(h.unique_token())
        wire = h.dot_stuff(msg) + b".\r\n"
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            cmds = (b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\n"
                    b"RCPT TO:<c@example.test>\r\nDATA\r\n")
            c.send(cmds)
            self.assertEqual([c.reply().code for _ in range(4)], [250, 250, 250, 354])
            c.send(wire + b"QUIT\r\n")
            self.assertEqual([c.reply().code for _ in range(2)], [250, 221])
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(s.messages, [wire], "DATA bytes changed on the way upstream")
        post = bytes(s.post_tls)
        self.assertIn(cmds + wire + b"QUIT\r\n", post)

    def test_a_server_that_stops_reading_gets_every_byte_in_order(self):
        # mailtap writes to the upstream in place while nothing is queued; once the server stops
        # reading, the socket refuses part of a write and the writer carries on with the rest.
        f = self.fake("good", body_pause=1.0)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        msg = b"Subject: slow reader\r\n\r\n" + line * (12 * 1024 * 1024 // len(line))
        wire = h.dot_stuff(msg) + b".\r\n"
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port, timeout=60) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            c.send(wire + b"NOOP\r\n")
            self.assertEqual([c.reply().code for _ in range(2)], [250, 250])
            self.assertEqual(c.cmd("QUIT").code, 221)
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(len(s.messages), 1)
        self.assertTrue(s.messages[0] == wire, "DATA bytes changed on the way upstream")
        self.assertIn(b".\r\nNOOP\r\nQUIT\r\n", bytes(s.post_tls)[-64:])

    def test_records_the_socket_had_no_room_for_go_out_though_no_more_input_comes(self):
        # The body arrives in one read and is sealed into TLS records at once, but the socket
        # takes half of them (a preloaded send() comes out short, then the socket is "full" once)
        # and the client then waits for its 250. Nothing else will happen unless the session's
        # writer sends the rest by itself.
        lib = h.HARNESS_ENV.get("MAILTAP_SHORT_SEND_LIB")
        if not lib:
            self.skipTest("MAILTAP_SHORT_SEND_LIB not set (run through ctest)")
        mark = os.path.join(self.tmp, "short-send-happened")
        env = {"LD_PRELOAD": lib, "MAILTAP_SHORT_SEND_AT": "16384", "MAILTAP_SHORT_SEND_MARK": mark,
               # A sanitizer build has its runtime linked in: it need not come first here.
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        f = self.fake("good")
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        wire = line * (24 * 1024 // len(line)) + b".\r\n"  # sealed as two records, 16 + 8 KiB
        mt = self.mailtap(f.address, env=env)
        with h.SmtpSocket(mt.port, timeout=10) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            c.send(wire)
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(os.path.exists(mark), "no send() came out short: the test proved nothing")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(s.messages, [wire], "DATA bytes changed on the way upstream")

    def test_bare_lf_normalised_to_crlf_upstream(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        body_lf = b"Subject: lf\n\none\n..two\nthree\n"
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test", eol=b"\n")
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("DATA", eol=b"\n").code, 354)
            c.send(body_lf)
            self.assertEqual(c.cmd(".", eol=b"\n").code, 250)
            self.assertEqual(c.cmd("QUIT", eol=b"\n").code, 221)
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(s.messages, [b"Subject: lf\r\n\r\none\r\n..two\r\nthree\r\n.\r\n"])
        post = bytes(s.post_tls)
        self.assertIn(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n",
                      post)
        self.assertNotRegex(post, rb"[^\r]\n", "a bare LF went upstream")

    def test_upstream_sees_fresh_ehlo_after_tls_and_sni(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("QUIT")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(s.sni, "localhost")
        plain = [line for phase, line in s.commands if phase == "plain"]
        self.assertRegex(plain[0], rb"^EHLO \S+\r\n$")
        self.assertEqual(plain[1], b"STARTTLS\r\n")
        self.assertEqual(len(plain), 2, "commands after STARTTLS in clear")
        tls = [line for phase, line in s.commands if phase == "tls"]
        self.assertRegex(tls[0], rb"^EHLO \S+\r\n$", "first command after TLS is not EHLO")

    def test_peer_text_in_the_session_lines_cannot_drive_a_terminal(self):
        """The server's last reply and the client's user name, each with escape sequences
        (retitle the window, clear the screen), reach mailtap's stderr escaped; the client
        still gets the server's reply as it was sent (mailtap relays)."""
        esc = b"\x1b]0;PWNED-TITLE\x07\x1b[2J"
        shown = r"\x1b]0;PWNED-TITLE\x07\x1b[2J"
        f = self.fake("good", replies={"QUIT": b"221 2.0.0 bye " + esc + b"\r\n"})
        mt = self.mailtap(f.address, extra_args=["-v"])
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            blob = base64.b64encode(b"\0al" + esc + b"ice\0pw").decode()
            self.assertEqual(c.cmd("AUTH PLAIN " + blob).code, 235)
            bye = c.cmd("QUIT")
            self.assertIn("bye \x1b]0;PWNED-TITLE\x07\x1b[2J", str(bye))
        err = mt.wait_stderr(" ended: ")
        self.assertIn("quit (221 2.0.0 bye " + shown + ")", err)
        self.assertIn("user al" + shown + "ice", err)
        self.assertNotRegex(err, "[\x1b\x07]", "raw escape sequence on stderr")

    def test_a_greeting_before_tls_cannot_drive_the_clients_terminal(self):
        """The greeting comes before STARTTLS, where anyone on the path may write it: a verified
        certificate must not be preceded by text that retitles the window or clears a telnet
        user's screen. The client gets its text escaped; the record keeps the server's bytes
        and the rewrite; `mailtap show` shows both."""
        esc = b"\x1b]0;owned\x07\x1b[2J"
        banner = b"220-fake.example.test ESMTP\r\n220-" + esc + b"re-enter your password\r\n220 ok\r\n"
        f = self.fake("good", banner=banner)
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            greeting = c.reply()
            self.assertEqual(greeting.code, 220)
            self.assertEqual(str(greeting), "220-fake.example.test ESMTP\r\n"
                                            "220-\\x1b]0;owned\\x07\\x1b[2Jre-enter your password\r\n"
                                            "220 ok\r\n")
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        row, events, _ = ended_session(mt)
        greeting_ev = [e for e in events if e["kind"] == "greeting"]
        self.assertEqual([bytes(e["bytes"]) for e in greeting_ev], [banner])
        rewrite = [e for e in events if e["kind"] == "rewrite" and e["seq"] == greeting_ev[0]["seq"] + 1]
        self.assertEqual(len(rewrite), 1, [dict(e) for e in events])
        self.assertEqual(bytes(rewrite[0]["bytes"]), str(greeting).encode())
        self.assertIn("before TLS, where nothing authenticates it: 3 octet(s)", rewrite[0]["note"])
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(row["id"]), "--color", "never",
                                "--db", os.path.join(mt._tmp, "mailtap.db")],  # noqa: SLF001
                               capture_output=True, text=True, check=True).stdout
        self.assertNotRegex(shown, "[\x1b\x07]", "raw escape sequence in show")
        self.assertIn("re-enter your password", shown)
        self.assertIn("nothing authenticates it", shown)

    def test_an_absolute_name_verifies_and_is_sent_without_its_dot(self):
        """'localhost.' is the name 'localhost' (an upstream 'smtp.gmail.com.:587' is the same
        name by default): it verifies against DNS:localhost, and SNI carries no trailing dot
        (RFC 6066 3). Only one dot goes: 'localhost..' is no name, refused at the start."""
        f = self.fake("good")
        mt = self.mailtap(f.address, tls_name="localhost.")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220, mt.output)
            c.cmd("QUIT")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertEqual(s.sni, "localhost")
        cp = subprocess.run([str(h.mailtap_bin()), "proxy", "--upstream", f.address,
                             "--tls-name", "localhost..", "--print-config"],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn("--tls-name localhost..: expected a host name", cp.stderr)

    def test_ehlo_reply_filtered_even_if_upstream_offers_starttls_after_tls(self):
        ehlo = ("250-fake.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
                "250-AUTH PLAIN LOGIN\r\n250-starttls\r\n250 8BITMIME\r\n")
        f = self.fake("good", replies={"EHLO": ehlo})
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            g = c.reply()
            self.assertEqual(str(g), f.banner.decode())
            e = c.cmd("EHLO client.test")
            self.assertEqual(e.code, 250)
            kw = [l.split()[0].upper() for l in e.lines[1:]]
            self.assertNotIn("STARTTLS", kw, e)
            self.assertIn("AUTH", kw, e)
            self.assertIn("PIPELINING", kw, e)
            # well-formed multi-line reply: only the last line uses "250 "
            raw_lines = e.raw.split(b"\r\n")[:-1]
            self.assertTrue(all(l.startswith(b"250-") for l in raw_lines[:-1]), e.raw)
            self.assertTrue(raw_lines[-1].startswith(b"250 "), e.raw)
            r = c.cmd("STARTTLS")
            self.assertIn(r.code, (454, 502), r)
            self.assertEqual(c.cmd("QUIT").code, 221)
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        tls_cmds = [line for phase, line in s.commands if phase == "tls"]
        self.assertNotIn(b"STARTTLS\r\n", tls_cmds, "client STARTTLS forwarded upstream")

    def test_tls_none_to_a_server_offering_starttls_says_so(self):
        """--tls none relays in plain text; that the server offered STARTTLS is not silent: the
        session's line and the record's note say so, in probe's words."""
        f = self.fake("good")
        mt = self.mailtap(f.address, tls="none")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        said = "the server offers STARTTLS: drop --tls none so that nothing travels in plain text"
        self.assertRegex(mt.wait_stderr(said), r"session \d+: " + re.escape(said))
        mt.stop()
        con = sqlite3.connect(f"file:{os.path.join(mt._tmp, 'mailtap.db')}?mode=ro", uri=True)  # noqa: SLF001
        try:
            notes = [n for (n,) in con.execute(
                "SELECT note FROM events WHERE kind = 'rewrite' AND verb = 'EHLO'")]
        finally:
            con.close()
        self.assertEqual(notes, ["STARTTLS removed from the EHLO reply (--tls none): " + said +
                                 f"; its first line ends [mailtap: plain text to {f.address}: "
                                 "--tls none]"])

    def test_tls_none_marks_the_ehlo_and_helo_replies(self):
        """--tls none: what everyone types first says the link to the server is plain text, as
        --insecure's mark says it is not verified (docs/proxy.md), in the free text of the
        reply's first line; both rewrites are recorded with the bytes the client got."""
        f = self.fake("good")
        mt = self.mailtap(f.address, tls="none")
        mark = f" [mailtap: plain text to {f.address}: --tls none]"
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            ehlo = c.cmd("EHLO client.test")
            self.assertEqual(ehlo.code, 250)
            self.assertTrue(ehlo.lines[0].endswith(mark), ehlo.lines)
            self.assertFalse(any(mark in line for line in ehlo.lines[1:]), ehlo.lines)
            helo = c.cmd("HELO client.test")
            self.assertEqual(helo.code, 250)
            self.assertEqual(helo.lines, ["fake.example.test" + mark])
            self.assertEqual(c.cmd("QUIT").code, 221)
        mt.stop()
        con = sqlite3.connect(f"file:{os.path.join(mt._tmp, 'mailtap.db')}?mode=ro", uri=True)  # noqa: SLF001
        try:
            rewrites = dict(((v, (n, b)) for v, n, b in con.execute(
                "SELECT verb, note, bytes FROM events WHERE kind = 'rewrite'")))
        finally:
            con.close()
        self.assertTrue(rewrites["EHLO"][0].endswith(f"; its first line ends [{mark[2:-1]}]"),
                        rewrites["EHLO"][0])
        self.assertEqual(rewrites["HELO"],
                         (f"HELO reply: its first line ends [{mark[2:-1]}]",
                          f"250 fake.example.test{mark}\r\n".encode()))

    def test_show_explains_a_reply_by_the_command_it_answers(self):
        """250 2.1.0 says "sender address" by its status, but to RCPT it accepted a recipient:
        show's explanation follows the command (and 2.1.5 to MAIL a sender)."""
        f = self.fake("good", replies={"RCPT": b"250 2.1.0 Ok\r\n", "MAIL": b"250 2.1.5 Ok\r\n"})
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        mt.stop()
        shown = subprocess.run([str(h.mailtap_bin()), "show", "1", "--db",
                                os.path.join(mt._tmp, "mailtap.db"), "--color", "never"],  # noqa: SLF001
                               capture_output=True, text=True, check=True).stdout
        explained = [line.split("# ", 1)[1] for line in shown.splitlines() if "# 250 2.1." in line]
        self.assertEqual(explained, ["250 2.1.5: sender accepted", "250 2.1.0: recipient accepted"],
                         shown)

    def test_auth_login_continuations_forwarded(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd("AUTH LOGIN", eol=b"\n")
            self.assertEqual(str(r), "334 VXNlcm5hbWU6\r\n")
            self.assertEqual(c.cmd("YWxpY2U=", eol=b"\n").code, 334)
            self.assertEqual(c.cmd("c2VjcmV0").code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        self.assertIn(b"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n", bytes(s.post_tls))

    def test_a_second_greeting_read_as_the_reply_to_ehlo_ends_the_session(self):
        # A server that greets again after STARTTLS: if its second 220 comes once the client's
        # EHLO is on its way (here: in answer to it, so the order is certain), it is EHLO's
        # reply by order, every later reply is one off, and DATA would get RCPT's 250.
        again = b"220 fake.example.test ESMTP again\r\n"

        def greet_again(sess, phase, line):
            if phase == "tls" and line.upper().startswith(b"EHLO"):
                return again + b"250-fake.example.test\r\n250 PIPELINING\r\n"
            return None

        f = self.fake("good", handler=greet_again)
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            r = c.cmd("EHLO client.test")
            self.assertEqual(r.code, 421, r)
            self.assertRegex(r.text, r"^4\.5\.0 mailtap: .* answered EHLO with 220, which SMTP "
                             r"does not allow")
            self.assertTrue(c.is_closed(5), "connection not closed after the 421")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        tls = [line for phase, line in s.commands if phase == "tls"]
        self.assertEqual(tls, [b"EHLO client.test\r\n"], "sent upstream after the 421")
        row, evs, _ = ended_session(mt)
        self.assertEqual(row["outcome"], "error")
        self.assertIn("answered EHLO with 220", row["outcome_reason"])
        self.assertIn("EHLO and HELO succeed only with 250", row["outcome_reason"])
        refused = [e for e in evs if e["direction"] == "upstream_to_mailtap"
                   and bytes(e["bytes"]) == again]
        self.assertEqual(len(refused), 1, [dict(e) for e in evs])
        self.assertTrue(refused[0]["note"].startswith("impossible reply: "), refused[0]["note"])
        self.assertEqual(bytes(evs[-1]["bytes"]), r.raw, "the 421 is the last event")

    def test_a_421_inside_a_body_stops_what_mailtap_still_had_queued(self):
        # The server stops reading the body, so that mailtap holds a good part of what it read
        # from the client queued for it, then says 421 and reads on. Before the fix mailtap
        # wrote its queue all the same: the server received every octet mailtap had read. Now
        # the queue is dropped, and the server receives only what the sockets already held.
        state = {}

        def stop_mid_body(sess, phase, line):
            if phase != "tls":
                return None
            if line.upper().startswith(b"DATA"):
                state["body"] = True
                return b"354 go\r\n"
            if not state.get("body"):
                return None
            if "at_421" not in state:
                time.sleep(1.5)  # not reading: the sockets and mailtap's queue fill up
                state["at_421"] = len(sess.post_tls)
                return b"421 4.3.2 shutting down\r\n"
            return b""  # reads on, answering nothing, to count what still comes

        def send_body(sock, body):
            with contextlib.suppress(OSError):  # mailtap closes the connection after the 421
                sock.sendall(body)

        f = self.fake("good", handler=stop_mid_body, body_pause=1.0)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        body = b"Subject: stopped\r\n\r\n" + line * (12 * 1024 * 1024 // len(line)) + b".\r\n"
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port, timeout=60) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            threading.Thread(target=send_body, args=(c.sock, body), daemon=True).start()
            r = c.reply()
            self.assertEqual(str(r), "421 4.3.2 shutting down\r\n")
            self.assertTrue(c.is_closed(5), "connection not closed after the 421")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(10))
        row, evs, msgs = ended_session(mt)
        self.assertEqual(row["outcome"], "upstream_closed")
        self.assertEqual(row["outcome_reason"], "upstream: 421 4.3.2 shutting down")
        self.assertEqual(msgs, [])
        # What mailtap had queued was not written: the events relayed more than the server got,
        # and say how much of it never went.
        relayed = sum(e["wire_size"] for e in evs if e["direction"] == "client_to_upstream")
        self.assertLess(len(s.post_tls), relayed,
                        "mailtap wrote the body it had queued after the server's 421")
        # bytes_client_to_upstream is what the server received (everything inside TLS here is
        # the client's), and the events add up to it (docs/recording.md, "Byte counts").
        self.assertEqual(row["bytes_client_to_upstream"], len(s.post_tls),
                         "bytes_client_to_upstream counts octets the server never received")
        unsent = [e for e in evs if e["direction"] == "client_to_mailtap"
                  and (e["note"] or "").startswith("not sent upstream: ")]
        self.assertEqual(len(unsent), 1, "no event says what was dropped unwritten")
        self.assertEqual((unsent[0]["kind"], unsent[0]["mail_transaction"]), ("data", 1))
        self.assertEqual(relayed - unsent[0]["wire_size"], row["bytes_client_to_upstream"])
        # show prints it as mailtap's note, not as a line of the client's.
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(row["id"]), "--color", "never",
                                "--db", os.path.join(mt._tmp, "mailtap.db")],  # noqa: SLF001
                               capture_output=True, text=True, check=True).stdout
        noted = [line for line in shown.splitlines() if "not sent upstream: " in line]
        self.assertEqual(len(noted), 1, noted)
        self.assertIn("  ~~ data: not sent upstream: the last ", noted[0])
        self.assertNotIn(b"\r\n.\r\n", bytes(s.post_tls), "an end of data went upstream")

    def test_an_abandoned_upstream_that_stops_reading_does_not_hold_the_session(self):
        # The server says 421 inside a body and then neither reads nor closes: mailtap's write
        # of what it had already sealed for it never completes. Before the fix the session
        # waited for that write forever, and the client's connection stayed open with it; now
        # mailtap drops what it sealed (see the 552 test below) and closes at once.
        state = {}
        release = threading.Event()

        def stall_after_421(sess, phase, line):
            if phase != "tls":
                return None
            if line.upper().startswith(b"DATA"):
                state["body"] = True
                return b"354 go\r\n"
            if not state.get("body"):
                return None
            if "at_421" not in state:
                time.sleep(1.5)  # not reading: the sockets and mailtap's queue fill up
                state["at_421"] = True
                return b"421 4.3.2 shutting down\r\n"
            release.wait(60)  # reads no more, and keeps the connection open
            return b""

        def send_body(sock, body):
            with contextlib.suppress(OSError):  # mailtap closes the connection after the 421
                sock.sendall(body)

        f = self.fake("good", handler=stall_after_421, body_pause=1.0)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        body = b"Subject: stalled\r\n\r\n" + line * (12 * 1024 * 1024 // len(line)) + b".\r\n"
        mt = self.mailtap(f.address)
        try:
            with h.SmtpSocket(mt.port, timeout=60) as c:
                h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
                threading.Thread(target=send_body, args=(c.sock, body), daemon=True).start()
                r = c.reply()
                self.assertEqual(str(r), "421 4.3.2 shutting down\r\n")
                self.assertTrue(c.is_closed(10), "the session waited on a server that stopped "
                                "reading")
            row, _, _ = ended_session(mt)
            self.assertEqual(row["outcome"], "upstream_closed")
        finally:
            release.set()

    def test_after_its_552_inside_a_body_the_server_gets_only_what_the_socket_held(self):
        # The server stops reading the body, so that the sockets fill and mailtap's TLS stream
        # holds records it sealed that the socket had no room for; then it says 552, and reads
        # on a little later. Before the fix those records went out once it did (to a server
        # that had said it stopped reading the message: out of DATA mode it would read them as
        # commands), and after a failed write they were counted as received. Now mailtap drops
        # them when it reads the 552: the server gets what mailtap's socket already held and
        # nothing more, and the record counts exactly what it got.
        state = {}

        def refuse_mid_body(sess, phase, line):
            if phase != "tls":
                return None
            if line.upper().startswith(b"DATA"):
                state["body"] = True
                return b"354 go\r\n"
            if not state.get("body"):
                return None
            time.sleep(1.5)  # not reading: the sockets fill, and mailtap stops writing
            tls = sess._tls_sock  # noqa: SLF001
            ports = (sess.peer[1], tls.getsockname()[1])  # mailtap's end, the server's
            # Until nothing moves (on a loaded machine mailtap may take longer to fill them):
            # what mailtap wrote to its socket that the server's kernel has not taken (window
            # closed), and what the server's kernel has taken so far. Ciphertext, both.
            last = None
            while (now := (tcp_bytes_received(tls), tcp_send_queue(*ports))) != last:
                last = now
                time.sleep(0.2)
            before, in_flight = now
            tls.sendall(b"552 5.3.4 Message size exceeds fixed limit\r\n")
            # Mailtap read the 552 when it closes the connection (a FIN queued behind what its
            # socket holds); the server, not reading yet, lets nothing more through meanwhile.
            # It reads on after 2 s at the latest (mailtap used to wait 5 s for it).
            state["closed_unread"] = wait_until(lambda: tcp_state(*ports) != TCP_ESTABLISHED, 2.0)
            with contextlib.suppress(OSError):  # a record cut short: mailtap sends no more
                while chunk := tls.recv(65536):
                    sess.post_tls += chunk
            # After the 552: what the socket held, and the FIN (one octet of sequence space).
            state["received_after"] = tcp_bytes_received(tls) - before - in_flight
            return b""

        def send_body(sock, body):
            with contextlib.suppress(OSError):  # mailtap closes the connection after the 552
                sock.sendall(body)

        f = self.fake("good", handler=refuse_mid_body, body_pause=1.0)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
        body = b"Subject: refused\r\n\r\n" + line * (12 * 1024 * 1024 // len(line)) + b".\r\n"
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port, timeout=60) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            threading.Thread(target=send_body, args=(c.sock, body), daemon=True).start()
            r = c.reply()
            self.assertEqual(str(r), "552 5.3.4 Message size exceeds fixed limit\r\n")
            self.assertTrue(c.is_closed(5), "connection not closed after the 552")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(10))
        self.assertTrue(state.get("closed_unread"),
                        "mailtap kept the connection open after the 552, to write more")
        self.assertEqual(state["received_after"], 1,
                         "after its 552 the server received octets other than those mailtap's "
                         "socket already held (and its FIN)")
        row, evs, _ = ended_session(mt)
        self.assertEqual(row["outcome"], "upstream_closed")
        # Everything inside TLS is the client's here: the count is what the server decrypted.
        self.assertEqual(row["bytes_client_to_upstream"], len(s.post_tls),
                         "bytes_client_to_upstream is not what the server received")
        relayed = sum(e["wire_size"] for e in evs if e["direction"] == "client_to_upstream")
        unsent = sum(e["wire_size"] for e in evs if e["direction"] == "client_to_mailtap"
                     and (e["note"] or "").startswith("not sent upstream: "))
        self.assertEqual(relayed - unsent, len(s.post_tls))
        self.assertNotIn(b"\r\n.\r\n", bytes(s.post_tls), "an end of data went upstream")

    def test_a_reply_no_command_awaited_ends_the_session(self):
        # A second reply to NOOP: a program client would read it as the answer to its next
        # command, and every reply after it would be one off.
        f = self.fake("good", replies={"NOOP": b"250 2.0.0 Ok\r\n250 2.0.0 Ok again\r\n"})
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("NOOP").code, 250)
            r = c.reply()
            self.assertEqual(r.code, 421, r)
            self.assertRegex(r.text, r"^4\.5\.0 mailtap: .* replied 250 when no command awaited "
                             r"a reply, which SMTP does not allow")
            self.assertNotIn("Ok again", r.text)
            self.assertTrue(c.is_closed(5), "connection not closed after the 421")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(5))
        tls = [line for phase, line in s.commands if phase == "tls"]
        self.assertEqual(tls, [b"EHLO client.test\r\n", b"NOOP\r\n"], "sent upstream after the 421")
        row, evs, _ = ended_session(mt)
        self.assertEqual(row["outcome"], "error")
        self.assertIn("replied 250 when no command awaited a reply", row["outcome_reason"])
        refused = [e for e in evs if e["direction"] == "upstream_to_mailtap"
                   and bytes(e["bytes"]) == b"250 2.0.0 Ok again\r\n"]
        self.assertEqual(len(refused), 1, [dict(e) for e in evs])
        self.assertTrue(refused[0]["note"].startswith("impossible reply: "), refused[0]["note"])

    def test_a_reply_behind_the_greeting_in_one_read_ends_the_session_too(self):
        # Implicit TLS: the greeting and a reply no command awaited come in one record, so the
        # set-up reads both. The second is no less unsolicited than one read on its own.
        f = self.fake("good", implicit=True,
                      banner=b"220 fake.example.test ESMTP\r\n250 2.0.0 unasked\r\n")
        mt = self.mailtap(f.address, tls="implicit")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(str(c.reply()), "220 fake.example.test ESMTP\r\n")
            r = c.reply()
            self.assertEqual(r.code, 421, r)
            self.assertIn("replied 250 when no command awaited a reply", r.text)
            self.assertTrue(c.is_closed(5), "connection not closed after the 421")
        row, evs, _ = ended_session(mt)
        self.assertEqual(row["outcome"], "error")
        refused = [e for e in evs if e["direction"] == "upstream_to_mailtap"
                   and bytes(e["bytes"]) == b"250 2.0.0 unasked\r\n"]
        self.assertEqual(len(refused), 1, [dict(e) for e in evs])

    def test_a_reply_inside_a_message_body_is_not_relayed(self):
        # 354 and "250 queued" in one write: the 250 answers no end of data the client sent.
        f = self.fake("good", replies={"DATA": b"354 go\r\n250 2.0.0 queued early\r\n"})
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
            got = [c.reply() for _ in range(4)]
            self.assertEqual([g.code for g in got], [250, 250, 354, 421], got)
            self.assertIn("replied 250 while the message body was still being sent", got[3].text)
            self.assertTrue(c.is_closed(5), "connection not closed after the 421")
        row, evs, msgs = ended_session(mt)
        self.assertEqual(row["outcome"], "error")
        self.assertNotIn(b"queued early", b"".join(bytes(e["bytes"] or b"") for e in evs
                                                   if e["direction"] == "upstream_to_client"))
        self.assertEqual(msgs, [], "no end of data was sent: no message")


class RecipientsLeftOutTest(h.IntegrationCase):
    """A message keeps a bounded share of its RCPTs (recording.md, "Messages"): those left out
    after the last one kept leave no gap in the positions, so the tools must say they are
    missing, not show a list that looks complete."""

    RCPTS = 600

    def test_show_and_export_say_how_many_rcpts_the_message_left_out(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        local = "r" * 1900  # a command line is at most 2048 octets with its CRLF
        with h.SmtpSocket(mt.port, timeout=30) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            for batch in range(0, self.RCPTS, 50):
                c.send(b"".join(f"RCPT TO:<{local}{i}@example.test>\r\n".encode()
                                for i in range(batch, batch + 50)))
                self.assertEqual({c.reply().code for _ in range(50)}, {250})
            self.assertEqual(c.cmd("DATA").code, 354)
            self.assertEqual(c.cmd(b"Subject: many\r\n\r\nhi\r\n.").code, 250)
            c.cmd("QUIT")
        row, _, _ = ended_session(mt)
        db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001

        def tool(*args) -> str:
            return subprocess.run([str(h.mailtap_bin()), *args, "--db", db],
                                  capture_output=True, check=True).stdout.decode()

        exported = json.loads(tool("export", str(row["id"])))["messages"][0]
        kept = exported["recipients"]
        self.assertLess(len(kept), self.RCPTS)
        self.assertEqual([r["position"] for r in kept], list(range(len(kept))))
        self.assertEqual(exported["recipients_left_out"], self.RCPTS - len(kept))
        self.assertEqual(exported["accepted_recipients_left_out"], self.RCPTS - len(kept))
        self.assertEqual(json.loads(tool("show", str(row["id"]), "--json"))["messages"][0]
                         ["recipients_left_out"], self.RCPTS - len(kept))
        shown = tool("show", str(row["id"]), "--color", "never")
        left_out = self.RCPTS - len(kept)
        self.assertIn(f"  ({left_out} RCPTs ({left_out} accepted) not kept in the message's "
                      "recipients, past what a message keeps; each is in the events above)",
                      shown)
        # Every RCPT is in the transcript all the same.
        self.assertEqual(shown.count("C: RCPT TO:<"), self.RCPTS)
        # The count is the message row's (schema version 10), not read from the note's text.
        con = sqlite3.connect(db, isolation_level=None)
        self.addCleanup(con.close)
        self.assertEqual(con.execute("SELECT recipients_left_out, accepted_recipients_left_out "
                                     "FROM messages WHERE session_id = ?", (row["id"],)).fetchall(),
                         [(left_out, left_out)])
        con.execute("UPDATE events SET note = 'recipients left out: 1 RCPTs (0 accepted) of "
                    "message transaction 1' WHERE session_id = ? AND note LIKE "
                    "'recipients left out: %'", (row["id"],))
        self.assertEqual(json.loads(tool("export", str(row["id"])))["messages"][0]
                         ["recipients_left_out"], left_out)
        # A message recorded before mailtap counted them, which the upgrade could not count:
        # unknown, never 0.
        con.execute("UPDATE messages SET recipients_left_out = NULL, "
                    "accepted_recipients_left_out = NULL WHERE session_id = ?", (row["id"],))
        unknown = json.loads(tool("export", str(row["id"])))["messages"][0]
        self.assertIsNone(unknown["recipients_left_out"])
        self.assertIsNone(unknown["accepted_recipients_left_out"])
        self.assertIn("  (RCPTs left out of the message's recipients: unknown, recorded before "
                      "mailtap counted them; each RCPT is in the events above)",
                      tool("show", str(row["id"]), "--color", "never"))


class UpstreamReplyTimeoutTest(h.IntegrationCase):
    """docs/dialogue.md "Timeouts": --timeout-command is how long the upstream may take to
    answer each command, --timeout-data to answer the end of data. The clock starts when the
    reply is owed and restarts with each reply line the server completes; bytes that complete
    no line do not restart it (a server trickling its reply is cut off like a slowloris
    client)."""

    def mail_replied_by(self, reply, limit: str = "2s"):
        """Greeting, EHLO and MAIL through mailtap to a fake answering MAIL with `reply`
        (sess, line) -> bytes; the reply to MAIL, the seconds it took and the session row."""
        f = self.fake("good", replies={"MAIL": reply})
        mt = self.mailtap(f.address, extra_args=["--timeout-command", limit])
        with h.SmtpSocket(mt.port, timeout=60) as c:
            c.reply()
            c.cmd("EHLO client.test")
            started = time.monotonic()
            r = c.cmd("MAIL FROM:<a@client.test>")
            took = time.monotonic() - started
        row, _, _ = ended_session(mt)
        return r, took, row

    def test_a_reply_trickled_a_byte_at_a_time_is_cut_off(self):
        r, took, row = self.mail_replied_by(
            lambda sess, line: h.paced(sess, h.trickled(b"250 2.1.0 Ok, at last\r\n"), 0.3))
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2 mailtap: the reply from 127.0.0.1 was not complete within 2s; "
                      "closing", r.text)
        self.assertLess(took, 5, "the trickle held the reply past --timeout-command")
        self.assertEqual(row["outcome"], "timeout")
        self.assertEqual(row["outcome_reason"], "upstream reply not complete in time")

    def test_no_reply_at_all_is_cut_off(self):
        r, took, row = self.mail_replied_by(lambda sess, line: h.paced(sess, [], 0))
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2 mailtap: no reply from 127.0.0.1 within 2s; closing: connect again, and raise "
                      "--timeout-command if the server is this slow", r.text)
        self.assertLess(took, 5)
        self.assertEqual(row["outcome_reason"], "upstream did not reply in time")

    def test_a_reply_later_than_the_limit_is_cut_off_every_time(self):
        """The reply's clock starts as soon as the server has the command (here at once), not
        at mailtap's next look at its sockets, which may be a second later: a reply 1.8s after
        its MAIL, with a limit of 1s, is cut off in every session, wherever that look falls."""
        for _ in range(4):
            r, _, row = self.mail_replied_by(
                lambda sess, line: h.paced(sess, [b"250 2.1.0 Ok, late\r\n"], 1.8), limit="1s")
            self.assertEqual(r.code, 421, r)
            self.assertIn("4.4.2 mailtap: no reply from 127.0.0.1 within 1s; closing", r.text)
            self.assertEqual(row["outcome_reason"], "upstream did not reply in time")

    def test_each_complete_line_of_a_reply_restarts_the_clock(self):
        """As Postfix's smtp_per_record_deadline and the client's own clock: the limit is per
        line, so a long multi-line reply whose lines each come in time is relayed whole."""
        r, took, _ = self.mail_replied_by(
            lambda sess, line: h.paced(sess, [b"250-2.1.0 one\r\n", b"250-two\r\n",
                                              b"250 three\r\n"], 1.2))
        self.assertEqual((r.code, r.lines), (250, ["2.1.0 one", "two", "three"]), r)
        self.assertGreater(took, 3, "the reply took longer than --timeout-command in all")

    def test_a_trickled_reply_to_the_end_of_data_is_cut_at_the_data_timeout(self):
        in_body = threading.Event()

        def handler(sess, phase, line):
            if line.upper().startswith(b"DATA"):
                in_body.set()
                return b"354 go ahead\r\n"
            if in_body.is_set():
                if line != b".\r\n":
                    return b""  # a body line: no reply
                in_body.clear()
                return h.paced(sess, h.trickled(b"250 2.0.0 queued, slowly\r\n"), 0.3)
            return None

        f = self.fake("good", handler=handler)
        mt = self.mailtap(f.address, extra_args=["--timeout-data", "2s",
                                                 "--timeout-command", "30s"])
        with h.SmtpSocket(mt.port, timeout=60) as c:
            h.start_data(c, ehlo="client.test", mail_from="a@client.test")
            started = time.monotonic()
            r = c.cmd(b"Subject: slow\r\n\r\nbody\r\n.")
            took = time.monotonic() - started
        self.assertEqual(r.code, 421, r)
        self.assertIn("the reply from 127.0.0.1 was not complete within 2s", r.text)
        self.assertLess(took, 5, "the trickle held the reply past --timeout-data")
        row, _, _ = ended_session(mt)
        self.assertEqual(row["outcome"], "timeout")


class SlowBodyReaderTest(h.IntegrationCase):
    """docs/dialogue.md "Timeouts": the clock for the reply to an end of data starts once the
    server has it, not when mailtap queues it behind the body the server is still reading;
    until then the server is timed on taking that body, each piece it takes restarting the
    clock."""

    LINE = b"x" * 78 + b"\r\n"

    def send_slowly_read_message(self, fake, octets: int, limit: str = "2s"):
        """A message of about `octets` through mailtap (--timeout-data `limit`) to `fake`: the
        reply to its end, the seconds from the end of data to that reply, and the message."""
        msg = b"Subject: slowly read\r\n\r\n" + self.LINE * (octets // len(self.LINE))
        mt = self.mailtap(fake.address, extra_args=["--timeout-data", limit])
        with h.SmtpSocket(mt.port, timeout=60) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            c.send(msg + b".\r\n")
            started = time.monotonic()
            r = c.reply()
            took = time.monotonic() - started
            if r.code == 250:
                self.assertEqual(c.cmd("QUIT").code, 221)
        return mt, r, took, msg + b".\r\n"

    def test_a_server_reading_the_body_steadily_answers_its_end_in_time(self):
        """512 KiB/s, 3 MiB: the end of data waits behind what mailtap and the kernel still
        hold for the server (a few seconds of it), longer than --timeout-data, though the server
        never pauses near the limit: the 250 is relayed and the message recorded."""
        f = self.fake("good", body_rate=512 * 1024)
        mt, r, took, wire = self.send_slowly_read_message(f, 3 * 1024 * 1024)
        self.assertEqual(r.code, 250, r)
        self.assertGreater(took, 2, "the server read the body too fast to test the clock")
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.closed.wait(10))
        self.assertTrue(s.messages == [wire], "the message did not reach the server whole")
        row, _, msgs = ended_session(mt)
        self.assertEqual((row["outcome"], len(msgs)), ("quit", 1))

    def test_a_server_that_takes_the_body_and_never_answers_is_cut_off(self):
        """The reply's clock still runs once the server has the end of data: one that never
        answers is cut off --timeout-data after it took it, and the 421 says it may have the
        message."""
        f = self.fake("good", body_rate=512 * 1024, end_of_data_reply=b"")
        mt, r, took, wire = self.send_slowly_read_message(f, 3 * 1024 * 1024)
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2 mailtap: no reply from 127.0.0.1 within 2s to the end of data; "
                      "it may have the message: check before sending it again; closing", r.text)
        s = f.wait_sessions(1)[0]
        self.assertTrue(s.messages == [wire], "the server had not taken the message whole")
        row, _, _ = ended_session(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "upstream did not answer the end of data in time; it may "
                                     "have the message"))

    def test_a_server_that_stops_taking_the_body_is_told_so(self):
        """A server that takes none of the message for longer than --timeout-data after its end
        was queued: the 421 says it did not take the data, not that it did not reply."""
        f = self.fake("good", body_pause=6)
        mt, r, took, _ = self.send_slowly_read_message(f, 512 * 1024)
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2 mailtap: 127.0.0.1 did not take the data within 2s; it may have the "
                      "message: check before sending it again; closing", r.text)
        row, _, _ = ended_session(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "upstream did not take the data in time; it may have the "
                                     "message"))


class UnreadCommandTest(h.IntegrationCase):
    """docs/dialogue.md "Timeouts": a reply owed for a command the server has not taken (here a
    BDAT chunk, not the last, that it stopped reading) is not yet on the clock; the server is,
    for taking it, within --timeout-command, and the 421 says the server or the network to it
    is slow, not that the reply did not come."""

    def test_a_server_that_does_not_take_a_bdat_chunk_is_told_as_slow(self):
        release = threading.Event()

        def handler(sess, phase, line):
            verb = line[:4].upper()
            if phase == "tls" and verb == b"EHLO":
                return b"250-fake.example.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
            if phase == "tls" and verb == b"BDAT":
                release.wait(60)  # reads nothing more meanwhile
                return b""
            return None

        f = self.fake("good", handler=handler)
        # Cleanups run last first: the handler is let go before the fake joins its thread
        # (registered before the fake, the test's end waited the join's 5 s for it).
        self.addCleanup(release.set)
        mt = self.mailtap(f.address, extra_args=["--timeout-command", "1s"])
        chunk = b"x" * (768 << 10)
        with h.SmtpSocket(mt.port, timeout=60) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            sender = threading.Thread(
                target=lambda: c.sock.sendall(b"BDAT %d\r\n" % len(chunk) + chunk), daemon=True)
            sender.start()
            r = c.reply()
            sender.join(30)
        self.assertEqual(r.code, 421, f"{r}\n{mt.output}")
        self.assertEqual(r.text, "4.4.2 mailtap: 127.0.0.1 did not take what mailtap sent within "
                                 "1s; the server or the network to it is slow: try again later; "
                                 "closing")
        row, _, _ = ended_session(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "upstream did not take what mailtap sent in time"))


class EndOfDataUnansweredTest(h.IntegrationCase):
    """The server has a whole message and the session ends before its reply: it may have
    queued the message, whether it closed the connection or did not answer in time."""

    BODY = b"Subject: unanswered\r\n\r\nthe whole message\r\n"

    def send_message(self, fake, extra_args=()):
        """One message through mailtap to `fake`; the reply to its end of data."""
        mt = self.mailtap(fake.address, extra_args=list(extra_args))
        with h.SmtpSocket(mt.port, timeout=30) as c:
            h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
            r = c.cmd(self.BODY + b".")
        return mt, r

    def assert_recorded_without_a_reply(self, mt):
        """schema.md: a message whose end reached the server has its row, final_code NULL;
        the tools show it, its recipients and its body like any other."""
        row, _, msgs = ended_session(mt)
        self.assertEqual(len(msgs), 1, "the message the server may have is not in `messages`")
        m = msgs[0]
        self.assertEqual((m["mail_from"], m["final_code"], m["final_reply"], m["finished_at"]),
                         ("MAIL FROM:<a@client.test>", None, None, None))
        self.assertEqual(m["size"], len(self.BODY))
        db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001

        def tool(*args) -> bytes:
            return subprocess.run([str(h.mailtap_bin()), *args, "--db", db],
                                  capture_output=True, check=True).stdout

        listed = json.loads(tool("sessions", "--json"))
        self.assertEqual([s["messages"] for s in listed], [1])
        self.assertEqual(tool("show", str(row["id"]), "--message", "1"), self.BODY)
        shown = tool("show", str(row["id"]), "--color", "never").decode()
        self.assertIn("  final: none (the session ended before the server answered the end of "
                      "data: it may have the message)", shown)
        exported = json.loads(tool("export", str(row["id"])))["messages"]
        self.assertEqual(len(exported), 1)
        self.assertEqual((exported[0]["final_code"], exported[0]["final_reply"]), (None, None))
        self.assertEqual([(r["command"], r["reply_code"]) for r in exported[0]["recipients"]],
                         [("RCPT TO:<b@example.test>", 250)])
        self.assertEqual(exported[0]["body"], self.BODY.decode())
        return row

    def test_a_server_that_closes_after_the_end_of_data_may_have_the_message(self):
        """The 421 says what the timeout's says: a client (a relaying MTA) told only that the
        server closed would send the message again, and the server may have queued it. The
        record keeps the message, with no final reply."""
        f = self.fake("good", close_after_data=True)
        mt, r = self.send_message(f)
        self.assertEqual(r.code, 421, r)
        self.assertIn(f"4.4.2 mailtap: {f.address} closed the connection after the end of data; "
                      "it may have the message: check before sending it again", r.text)
        self.assertEqual(len(f.wait_sessions(1)[0].messages), 1, "the server had the message")
        row = self.assert_recorded_without_a_reply(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("upstream_closed", "upstream closed the connection after the end of "
                                             "data; it may have the message"))

    def test_a_server_that_never_answers_the_end_of_data_keeps_the_message(self):
        f = self.fake("good", end_of_data_reply=b"")
        mt, r = self.send_message(f, ["--timeout-data", "2s"])
        self.assertEqual(r.code, 421, r)
        self.assertIn("to the end of data; it may have the message", r.text)
        self.assertEqual(len(f.wait_sessions(1)[0].messages), 1, "the server had the message")
        row = self.assert_recorded_without_a_reply(mt)
        self.assertEqual(row["outcome"], "timeout")


class ClientClosedBeforeTheReplyTest(h.IntegrationCase):
    """A sender pipelines QUIT behind its end of data (Postfix and Exim do, for the last
    message of a connection) and closes before the server answers: it gave up waiting (its own
    end-of-data timeout), or it closed only its sending side and still reads. A FIN does not
    say which, so the replies still go, and the record says the client closed before them."""

    def close_before_the_replies(self, how: str):
        """A message and QUIT in one write to a server that answers 3 s later, then the
        client's close (`how`: "hang up", or "half-close" and read on). The ended session's
        row, its events, its messages and the replies the client read."""
        f = self.fake("good", body_pause=3)
        mt = self.mailtap(f.address)
        c = h.SmtpSocket(mt.port, timeout=30)
        self.addCleanup(c.close)
        h.start_data(c, mail_from="a@client.test", rcpts=["b@example.test"])
        c.send(b"Subject: gone\r\n\r\nhello\r\n.\r\nQUIT\r\n")
        time.sleep(0.5)
        read = []
        if how == "hang up":
            c.close()
        else:
            c.sock.shutdown(socket.SHUT_WR)
            read = [c.reply().code, c.reply().code]
        row, evs, msgs = ended_session(mt)
        self.assertEqual(len(f.wait_sessions(1)[0].messages), 1)
        return row, evs, msgs, read

    def assert_recorded_as_closed_first(self, row, evs, msgs):
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("client_closed", "client closed the connection before the reply to "
                                           "its QUIT (221 2.0.0 Bye)"))
        kinds = [(e["direction"], e["kind"], e["verb"] or e["reply_code"]) for e in evs]
        quit_at = kinds.index(("client_to_upstream", "command", "QUIT"))
        # Not the note after the end that a client that hung up may get too, when its reset
        # comes before mailtap's close ("...; replies that did not reach the client: 250 ...,
        # 221 ..."): read before it is written, or after.
        notes = [i for i, e in enumerate(evs)
                 if e["direction"] == "mailtap_note" and (e["note"] or "").startswith(
                     "client closed the connection while replies were still due to it")
                 and "; replies that did not reach the client: " not in e["note"]]
        self.assertEqual(len(notes), 1, kinds)
        replies = [i for i, e in enumerate(evs)
                   if e["direction"] == "upstream_to_client" and e["reply_code"] in (250, 221)
                   and i > quit_at]
        self.assertEqual(len(replies), 2, kinds)
        self.assertTrue(quit_at < notes[0] < replies[0],
                        f"the close is not recorded between the QUIT and the replies: {kinds}")
        # The server queued the message: its row has the 250.
        self.assertEqual([m["final_code"] for m in msgs], [250])

    def test_a_client_that_hung_up_before_the_replies_did_not_quit(self):
        row, evs, msgs, _ = self.close_before_the_replies("hang up")
        self.assert_recorded_as_closed_first(row, evs, msgs)

    def test_a_client_that_closed_its_sending_side_still_gets_the_replies(self):
        row, evs, msgs, read = self.close_before_the_replies("half-close")
        self.assertEqual(read, [250, 221])
        self.assert_recorded_as_closed_first(row, evs, msgs)


class Ipv6UpstreamTest(h.IntegrationCase):
    def test_an_ipv6_upstream_is_shown_in_brackets(self):
        """`::1:P` is the form --upstream refuses as ambiguous: the session's log line,
        `sessions` and `show` print the upstream as `[::1]:P`, as it is given."""
        f = self.fake("good", host="::1")
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("QUIT").code, 221)
        row, _, _ = ended_session(mt)
        bracketed = f"[::1]:{f.port}"
        self.assertIn(f" -> {bracketed} ([::1]:{f.port}, TLSv1.3", mt.wait_stderr(" started: "))
        db = os.path.join(mt._tmp, "mailtap.db")  # noqa: SLF001
        listed = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", db],
                                capture_output=True, text=True, check=True).stdout
        self.assertIn(f"  {bracketed}  ", listed.splitlines()[-1])
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(row["id"]), "--color", "never",
                                "--db", db], capture_output=True, text=True, check=True).stdout
        self.assertIn(f"upstream {bracketed} (", shown)
        self.assertNotIn(f" ::1:{f.port}", mt.stderr + listed + shown)


class UpstreamResetTest(h.IntegrationCase):
    def test_a_reset_inside_a_body_is_told_as_a_reset(self):
        """A server that resets the connection (RST) mid-DATA did not close it: the 421 and
        the record say which."""
        in_body = threading.Event()

        def handler(sess, phase, line):
            if line.upper().startswith(b"DATA"):
                in_body.set()
                return b"354 go ahead\r\n"
            if in_body.is_set():
                # SO_LINGER 0: the close sends a reset, not a FIN.
                sess.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(sess.sock.detach())
                raise ConnectionResetError("the fake reset the connection")
            return None

        f = self.fake("good", handler=handler)
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port, timeout=30) as c:
            h.start_data(c)
            c.send(b"Subject: reset\r\n\r\nline\r\n")
            r = c.reply()
        self.assertEqual(r.code, 421, r)
        self.assertIn(f"4.4.2 mailtap: {f.address} reset the connection", r.text)
        row, evs, _ = ended_session(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("upstream_closed", "upstream reset the connection"))
        self.assertIn("upstream connection error: Connection reset by peer",
                      [e["note"] for e in evs])


class PlainTextInsideTlsTest(h.IntegrationCase):
    def test_a_reply_in_plain_text_inside_tls_is_quoted_never_relayed(self):
        """Exim writes the replies that end a session (500 Too many unrecognized commands, 554
        SMTP synchronization error, its 421 command timeout) unencrypted on its TLS connection,
        then closes. The client is told what came, quoted in mailtap's own 421 and escaped, not
        that the server just closed; the octets are no reply mailtap relays: nothing vouches
        for them."""
        said = b"500 Too many unrecognized commands\x1b[31m"

        def handler(sess, phase, line):
            if phase == "tls" and line.startswith(b"FOO"):
                os.write(sess.sock.fileno(), said + b"\r\n")  # beside TLS, not in a record
                sess.sock.shutdown(socket.SHUT_RDWR)
                return b""
            return None

        f = self.fake("good", handler=handler)
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port, timeout=30) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd("FOO")
        quoted = '"500 Too many unrecognized commands\\x1b[31m"'
        what = ("sent octets that are not TLS, perhaps a reply in plain text inside TLS "
                "(unencrypted, so not relayed): " + quoted)
        self.assertEqual(r.code, 421, r)
        self.assertIn(f"4.4.2 mailtap: {f.address} " + what, r.text)
        self.assertNotIn(b"\x1b", r.raw)
        self.assertFalse(r.raw.startswith(b"500"), "the unauthenticated text relayed as a reply")
        row, evs, _ = ended_session(mt)
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("upstream_closed", f"{f.address} " + what))
        self.assertIn("upstream " + what, [e["note"] for e in evs])
        self.assertFalse([e for e in evs if e["reply_code"] == 500],
                         "recorded as the server's reply")


if __name__ == "__main__":
    h.main()
