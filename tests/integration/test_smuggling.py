"""SMTP smuggling and session-lifetime defences, through the real proxy to the Gmail-style Postfix.

* Every smuggling shape (CVE-2023-51764 family) sent inside one authenticated message by a
  CRLF client gives exactly one delivered message, to its real recipient, with the smuggled
  commands as text; nobody else receives anything; `mailtap show --message`, `export` and
  `audit` agree with what Postfix delivered.  Bare-LF (nc) and bare-CR clients still end
  their messages with `.` on a line of their own.
* A BDAT size of any number of digits frames its chunk where Postfix does; a BDAT line mailtap
  refuses (a size of 2^31 or more, a spelling other than `BDAT SP size [SP LAST]`) ends the
  session, its chunk never read as commands (nobody else receives anything).
* Between the chunks of a message (after a BDAT without LAST) mailtap answers any command but
  BDAT, RSET, NOOP and QUIT itself (503, not forwarded): Postfix would answer a VRFY there, but
  Exim refuses it and then answers the next BDAT line without reading its chunk, executing the
  chunk's text (smuggle3-F1; an in-process server models Exim's states). The message is still
  delivered after its BDAT LAST.
* A BDAT chunk that would take the message past the server's SIZE (less mailtap's margin) is
  refused by mailtap (552) and never sent: Exim 4.96 reads such a chunk only to its limit and
  the rest as commands (servers-F1; the in-process server models it). An older recording of one
  is listed by `audit` and not sent again by `replay`; a message under Postfix's SIZE goes.
  Pipelined ahead of such a chunk, the 250s to MAIL and RCPT come after mailtap's refusal and do
  not end it: a BDAT ... LAST behind it ends the session, and Postfix delivers nothing.
* A body line `.` then NUL (the end of data for OpenSMTPD, which reads lines as C strings) ends
  the session with a 421, recorded, and nothing reaches the mailbox.
* A `221` (to QUIT, or Postfix's to a header line read as a command) reaches the client only
  once its session's record is committed (kill -9 right after).
* A client trickling bytes cannot hold a session; `--max-sessions` refuses the excess with 421.
"""

import contextlib
import email
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    USERS, IntegrationCase, NetcatClient, SmtpSocket, auth_plain, body_of, free_port, main,
    mailtap_bin, start_data, unique_token)
from test_recording import events, mailtap_files, query, wait_ended  # noqa: E402

SHAPES = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r\n.\r\r\n"]


def escaped(shape: bytes) -> str:
    return shape.decode().replace("\r", "\\r").replace("\n", "\\n")


def replies_to_the_end(s: SmtpSocket) -> list:
    """Every reply until the session's last (221 or 421) or the connection's end."""
    replies = []
    while True:
        try:
            r = s.reply(timeout=15)
        except EOFError:
            return replies
        replies.append(r)
        if r.code in (221, 421):
            return replies


def mid_bdat_vrfy(s: SmtpSocket, token: str, between: bytes = b"VRFY bob@example.test\r\n") -> list:
    """smuggle3-F1: a first chunk, then in one write a VRFY (or `between`), the last chunk hiding
    a second transaction (to carol), and QUIT. Returns every reply after the first chunk's."""
    head = b"Subject: outer " + token.encode() + b"\r\n\r\nhello\r\n"
    inner = b"Subject: smuggled " + token.encode() + b"\r\n\r\nsmuggled\r\n"
    hidden = (b"RSET\r\nMAIL FROM:<ceo@example.test>\r\nRCPT TO:<carol@example.test>\r\n"
              b"BDAT %d LAST\r\n" % len(inner) + inner + b"NOOP\r\n")
    assert s.cmd("MAIL FROM:<alice@example.test>").code == 250
    assert s.cmd("RCPT TO:<bob@example.test>").code == 250
    s.send(b"BDAT %d\r\n" % len(head) + head)
    assert s.reply().code == 250
    s.send(between + b"BDAT %d LAST\r\n" % len(hidden) + hidden + b"QUIT\r\n")
    return replies_to_the_end(s)


class EximLikeServer:
    """Exim 4.96's BDAT states (smtp_in.c, bdat_getc), over plain TCP: after a chunk that is
    not the last, only BDAT, RSET, NOOP and QUIT are taken; anything else gets 503 and from then
    on every command, BDAT included and its chunk left unread, gets 503 until RSET. No real
    server in the harness has this state. Messages queued are kept as (sender, recipients,
    body).

    With `size_limit`, Exim 4.96's message_size_limit too (servers-F1): SIZE is advertised, and a
    chunk that takes the message past it is read only to the limit, answered 552, and the rest of
    the chunk is read as commands."""

    def __init__(self, size_limit: int = 0, advertise_size: bool = True):
        self.size_limit = size_limit
        self.advertise_size = advertise_size
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.queued = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        f = conn.makefile("rb")

        def say(text):
            conn.sendall(text.encode() + b"\r\n")

        sender, rcpts, body = None, [], b""
        between_chunks, only_rset = False, False
        with conn, f:
            say("220 exim-like ESMTP")
            while line := f.readline():
                got = line.rstrip(b"\r\n")
                verb = got.split(b" ", 1)[0].upper()
                if only_rset:
                    if verb == b"RSET":
                        only_rset, sender, rcpts, body = False, None, [], b""
                        say("250 Reset OK")
                    elif verb == b"QUIT":
                        say("221 bye")
                        return
                    else:
                        say("503 only RSET accepted now")
                    continue
                if between_chunks and verb not in (b"BDAT", b"RSET", b"NOOP", b"QUIT"):
                    between_chunks, only_rset = False, True
                    say("503 only BDAT permissible after non-LAST BDAT")
                    continue
                if verb == b"EHLO":
                    size = ("250-SIZE %d\r\n" % self.size_limit
                            if self.size_limit and self.advertise_size else "")
                    say("250-exim-like\r\n250-PIPELINING\r\n" + size + "250 CHUNKING")
                elif verb == b"MAIL":
                    sender, rcpts, body = got, [], b""
                    say("250 OK")
                elif verb == b"RCPT":
                    rcpts.append(got)
                    say("250 Accepted")
                elif verb == b"BDAT":
                    words = got.split(b" ")
                    if self.size_limit and len(body) + int(words[1]) > self.size_limit:
                        f.read(self.size_limit - len(body) + 1)  # the rest: read as commands
                        sender, rcpts, body, between_chunks = None, [], b"", False
                        say("552 Message size exceeds maximum permitted")
                        continue
                    chunk = f.read(int(words[1]))
                    body += chunk
                    if len(words) > 2:
                        self.queued.append((sender, rcpts, body))
                        sender, rcpts, body, between_chunks = None, [], b"", False
                        say("250 OK id=1")
                    else:
                        between_chunks = True
                        say("250 %d byte chunk received" % len(chunk))
                elif verb == b"RSET":
                    sender, rcpts, body, between_chunks = None, [], b"", False
                    say("250 Reset OK")
                elif verb == b"NOOP":
                    say("250 OK")
                elif verb == b"VRFY":
                    say("252 cannot verify")
                elif verb == b"QUIT":
                    say("221 bye")
                    return
                else:
                    say("500 unrecognized command")


class EximMidBdatTest(IntegrationCase):
    def test_a_command_between_bdat_chunks_never_reaches_an_exim_like_server(self):
        self.check_between_chunks(b"VRFY bob@example.test\r\n")

    def test_a_noop_after_white_space_between_bdat_chunks_never_reaches_an_exim_like_server(self):
        # Exim matches a verb only from the line's first octet: " NOOP" is a bad command to it
        # (503, then the next chunk read as commands), where Postfix tokenizes it as a NOOP.
        self.check_between_chunks(b" NOOP\r\n")

    def test_an_assisted_auth_between_bdat_chunks_never_reaches_an_exim_like_server(self):
        # --assist-auth would send the AUTH typed in clear as base64: mailtap refuses it there
        # before the assistant sees it, and the password stays out of the record.
        db = self.check_between_chunks(b"AUTH PLAIN alice s3cret-between\r\n",
                                       extra_args=["--assist-auth"])
        for name, data in mailtap_files(db).items():
            for secret in (b"s3cret-between", b"AGFsaWNlAHMzY3JldC1iZXR3ZWVu"):
                self.assertNotIn(secret, data, name)

    def check_between_chunks(self, between, extra_args=()):
        exim = EximLikeServer()
        self.addCleanup(exim.close)
        m = self.mailtap(exim.address, tls="none", extra_args=extra_args)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("exim")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertEqual(s.cmd("EHLO client.test").code, 250)
            replies = mid_bdat_vrfy(s, token, between)
        self.assertEqual([r.code for r in replies], [503, 250, 221], replies)
        self.assertIn("mailtap: only BDAT", replies[0].text)
        # One message, the client's, the hidden lines its text; no second one for carol.
        self.assertEqual(len(exim.queued), 1, exim.queued)
        sender, rcpts, body = exim.queued[0]
        self.assertEqual((sender, rcpts), (b"MAIL FROM:<alice@example.test>",
                                           [b"RCPT TO:<bob@example.test>"]))
        self.assertIn(b"RCPT TO:<carol@example.test>", body)
        # The record says the same: one message, the hidden lines in its body.
        sid = wait_ended(db, 1)[-1]["id"]
        rows = query(db, "SELECT final_code FROM messages WHERE session_id = ?", (sid,))
        self.assertEqual([r["final_code"] for r in rows], [250])
        return db


def over_size_bdat(s: SmtpSocket, token: str, last: bool = True) -> list:
    """servers-F1: one BDAT whose chunk (over SIZE 20480) hides a second transaction (to carol)
    in its tail, as the tester's repro sends it. Returns the replies to MAIL, RCPT and BDAT."""
    hidden = (b"RSET\r\nMAIL FROM:<ceo@example.test>\r\nRCPT TO:<carol@example.test>\r\n"
              b"BDAT 27 LAST\r\nSubject: hidden\r\n\r\nhidden\r\nNOOP\r\n")
    msg = b"Subject: " + token.encode() + b"\r\n\r\n" + b"b" * 30000 + b"\r\n" + hidden
    s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n" +
           (b"BDAT %d LAST\r\n" if last else b"BDAT %d\r\n") % len(msg) + msg)
    return [s.reply(timeout=15) for _ in range(3)]


class EximSizeLimitTest(IntegrationCase):
    def test_a_chunk_past_an_exim_like_servers_size_never_reaches_it(self):
        for last in (True, False):
            with self.subTest(last=last):
                self.check_over_size(last)

    def check_over_size(self, last: bool):
        exim = EximLikeServer(size_limit=20480)
        self.addCleanup(exim.close)
        m = self.mailtap(exim.address, tls="none")
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("size")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertIn("SIZE 20480", s.cmd("EHLO client.test").text)
            replies = over_size_bdat(s, token, last)
            self.assertEqual([r.code for r in replies], [250, 250, 552], replies)
            self.assertIn("mailtap: this chunk would take the message to", replies[2].text)
            self.assertIn("take the rest as commands", replies[2].text)
            # The session goes on: after an RSET a message under the limit is delivered.
            self.assertEqual(s.cmd("RSET").code, 250)
            small = b"Subject: small " + token.encode() + b"\r\n\r\nsmall\r\n"
            s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT %d LAST\r\n" % len(small) + small)
            self.assertEqual([s.reply().code for _ in range(3)], [250, 250, 250])
            self.assertEqual(s.cmd("QUIT").code, 221)
        # Only the small message was queued: nothing for carol, no chunk read as commands.
        self.assertEqual([(snd, body) for snd, _, body in exim.queued],
                         [(b"MAIL FROM:<alice@example.test>", small)], exim.queued)
        sid = wait_ended(db, 1)[-1]["id"]
        rows = query(db, "SELECT final_code FROM messages WHERE session_id = ?", (sid,))
        self.assertEqual([r["final_code"] for r in rows], [250])
        local = query(db, "SELECT reply_code FROM events WHERE session_id = ? AND "
                      "direction = 'mailtap_to_client' AND kind = 'local_reply'", (sid,))
        self.assertEqual([r["reply_code"] for r in local], [552])

    def test_a_session_with_mailtaps_552_mocks_the_same_and_replay_says_why_not(self):
        # The recording holds the BDAT line and mailtap's 552 as mailtap's, not the chunk:
        # replay refuses the session (the chunk cannot be sent again); the mock gives a client
        # sending the same bytes the same replies, mailtap's 552 included.
        exim = EximLikeServer(size_limit=20480)
        self.addCleanup(exim.close)
        m = self.mailtap(exim.address, tls="none")
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("again")
        small = b"Subject: small " + token.encode() + b"\r\n\r\nsmall\r\n"

        def talk(port):
            with SmtpSocket(port) as s:
                s.reply()
                s.cmd("EHLO client.test")
                replies = over_size_bdat(s, token)
                replies.append(s.cmd("RSET"))
                s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                       b"BDAT %d LAST\r\n" % len(small) + small)
                replies += [s.reply() for _ in range(3)]
                replies.append(s.cmd("QUIT"))
            return [(r.code, r.text) for r in replies]

        live = talk(m.port)
        self.assertEqual([c for c, _ in live], [250, 250, 552, 250, 250, 250, 250, 221], live)
        sid = wait_ended(db, 1)[-1]["id"]
        again = EximLikeServer(size_limit=20480)
        self.addCleanup(again.close)
        cp = subprocess.run([str(mailtap_bin()), "replay", str(sid), "--db", str(db), "--to",
                             again.address, "--tls", "none", "--no-record"],
                            capture_output=True, timeout=60, text=True)
        # The discarded chunk is not recorded, so replay cannot send the session again: it says
        # so before connecting (as for any chunk mailtap discarded), and nothing is queued.
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("mailtap answered the client's BDAT itself and discarded its chunk",
                      cp.stderr)
        self.assertEqual(again.queued, [])
        port = free_port()
        p = subprocess.Popen([str(mailtap_bin()), "mock", str(sid), "--db", str(db), "--listen",
                              f"127.0.0.1:{port}", "--timeout", "20s"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertIn("listening on", p.stderr.readline())
        mocked = talk(port)
        out, err = p.communicate(timeout=30)
        self.assertEqual(mocked[:5], live[:5], out + err)
        self.assertEqual([c for c, _ in mocked], [c for c, _ in live], out + err)
        self.assertEqual(p.returncode, 0, out + err)

    def test_an_older_recording_of_a_chunk_past_size_is_listed_by_audit_and_not_replayed(self):
        # A server that enforces its limit without advertising SIZE gives the record a mailtap
        # before this fix made of Exim: the chunk sent whole, 552, its tail read as commands.
        quiet = EximLikeServer(size_limit=20480, advertise_size=False)
        self.addCleanup(quiet.close)
        m = self.mailtap(quiet.address, tls="none")
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("older")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertEqual(s.cmd("EHLO client.test").code, 250)
            self.assertEqual([r.code for r in over_size_bdat(s, token)][:2], [250, 250])
        sid = wait_ended(db, 1)[-1]["id"]
        audit = json.loads(subprocess.run(
            [str(mailtap_bin()), "audit", "--db", str(db), "--json"], capture_output=True,
            timeout=60).stdout)
        listed = [x for x in audit["refused_chunks_with_commands"] if x["session"] == sid]
        self.assertEqual(len(listed), 1, audit)
        self.assertIn("MAIL FROM, RCPT TO, RSET", listed[0]["what"])
        # replay sends the recorded bytes through mailtap's dialogue: to a server that
        # advertises its SIZE, the chunk is refused by mailtap and never sent.
        exim = EximLikeServer(size_limit=20480)
        self.addCleanup(exim.close)
        cp = subprocess.run([str(mailtap_bin()), "replay", str(sid), "--db", str(db), "--to",
                             exim.address, "--tls", "none", "--no-record"],
                            capture_output=True, timeout=60)
        out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
        self.assertIn("552 5.3.4 mailtap: this chunk would take", out)
        time.sleep(0.5)  # the server's thread has read whatever reached it
        self.assertEqual(exim.queued, [], out)


class SmugglingTest(IntegrationCase):
    with_postfix = True
    # Any bare LF reaching Postfix is refused with a 550: a leak would fail loudly.
    postfix_kwargs = {"bare_newline": "reject"}

    def tool(self, *args, db) -> subprocess.CompletedProcess:
        cp = subprocess.run([str(mailtap_bin()), *args, "--db", str(db)], capture_output=True,
                            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr.decode(errors="replace"))
        return cp

    def login(self, s, eol: bytes = b"\r\n") -> None:
        self.assertEqual(s.reply().code, 220)
        self.assertEqual(s.cmd(b"EHLO client.test", eol).code, 250)
        user, password = "alice", USERS["alice"]
        self.assertEqual(s.cmd(b"AUTH PLAIN " + auth_plain(user, password).encode(), eol).code,
                         235)

    def attack(self, port: int, shape: bytes, token: str) -> list:
        """The issue's attack: a message to bob whose body hides a second transaction to carol,
        in one write with the client's own end of data and QUIT."""
        with SmtpSocket(port) as s:
            self.login(s)
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.test>").code, 250)
            self.assertEqual(s.cmd("RCPT TO:<bob@example.test>").code, 250)
            self.assertEqual(s.cmd("DATA").code, 354)
            s.send(b"Subject: outer " + token.encode() + b"\r\n\r\nfirst line" + shape +
                   b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n"
                   b"Subject: smuggled " + token.encode() + b"\r\n\r\nsmuggled body\r\n"
                   b".\r\nQUIT\r\n")
            return [r.code for r in replies_to_the_end(s)]

    def test_every_shape_gives_one_message_to_its_recipient(self):
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        for shape in SHAPES:
            with self.subTest(shape=escaped(shape)):
                token = unique_token("smug")
                # One 250 for the one message, then the 221: nothing smuggled was answered.
                self.assertEqual(self.attack(m.port, shape, token), [250, 221])
                got = self.postfix.wait_for_message(token, mailbox="bob")
                self.assertIn(b"MAIL FROM:<evil@x.test>", got)
                self.assertIn(b"smuggled body", got)
                self.assertTrue(self.postfix.no_message("smuggled " + token, wait=0.5,
                                                        mailbox="carol"))
                # The record says what Postfix delivered.
                sid = wait_ended(db, 1)[-1]["id"]
                shown = self.tool("show", str(sid), "--message", "1", db=db).stdout
                self.assertEqual(body_of(shown), body_of(got))
                eml = self.tool("export", str(sid), "--format", "eml", db=db).stdout
                self.assertEqual(body_of(eml), body_of(got))
                notes = [e["note"] for e in events(db, sid)
                         if e["kind"] == "rewrite" and e["note"].startswith("smuggling shape ")]
                self.assertEqual(len(notes), 1, notes)
                self.assertIn(" at offset ", notes[0])
        audit = json.loads(self.tool("audit", "--json", db=db).stdout)
        self.assertEqual(len(audit["smuggling_shapes"]), len(SHAPES), audit["smuggling_shapes"])
        listed = " ".join(x["shapes"] for x in audit["smuggling_shapes"])
        for shape in ["\\n.\\n", "\\r.\\r", "\\r\\n.\\n", "\\r\\n.\\r"]:
            self.assertIn(shape, listed)

    def bdat_attack(self, port: int, size: bytes, token: str, verb: bytes = b"BDAT ") -> list:
        """A CHUNKING client's message to bob whose last chunk hides a transaction to carol,
        pipelined with QUIT; the chunk's BDAT line carries `size`. The headers go in a first
        chunk, as clients that chunk by buffer send them. Returns the replies' codes."""
        head = b"Subject: outer " + token.encode() + b"\r\n\r\n"
        chunk = (b"hello\r\nRSET\r\nMAIL FROM:<alice@example.test>\r\n"
                 b"RCPT TO:<carol@example.test>\r\nDATA\r\nSubject: smuggled " + token.encode() +
                 b"\r\n\r\nsmuggled body\r\n.\r\n")
        size = size.replace(b"N", b"%d" % len(chunk))
        with SmtpSocket(port) as s:
            self.login(s)
            s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT %d\r\n" % len(head) + head + verb + size + b"\r\n" + chunk +
                   b"QUIT\r\n")
            return replies_to_the_end(s)

    def test_bdat_size_of_19_digits_frames_its_chunk_as_postfix_does(self):
        # RFC 3030: chunk-size = 1*DIGIT; Postfix takes the leading zeros.
        m = self.mailtap(self.postfix.submission)
        token = unique_token("bdat19")
        replies = self.bdat_attack(m.port, b"000000000000000000N LAST", token)
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 221], replies)
        got = self.postfix.wait_for_message(token, mailbox="bob")
        self.assertIn(b"RCPT TO:<carol@example.test>", got)
        self.assertTrue(self.postfix.no_message("smuggled " + token, wait=1.5, mailbox="carol"))

    def test_a_bdat_mailtap_refuses_ends_the_session_unread(self):
        # Where the chunk ends is unknown: its text is never read as commands.
        m = self.mailtap(self.postfix.submission)
        # 2^31 and 2^32: Postfix counts them in an off_t, Exim's 32-bit count reads 2^32 as 0.
        tokens = {}
        for size in (b"N LAST junk", b"99999999999999999999 LAST", b"+N LAST",
                     b"2147483648 LAST", b"4294967296 LAST"):
            with self.subTest(size=size):
                token = tokens[size] = unique_token("bdatbad")
                replies = self.bdat_attack(m.port, size, token)
                # The replies owed for the commands ahead of the refused line come first.
                self.assertEqual([r.code for r in replies], [250, 250, 250, 421], replies)
                self.assertIn("where its chunk ends is unknown", replies[-1].text)
        self.assertNoneDelivered([{"size": size} for size in tokens], tokens.values())

    def assertNoneDelivered(self, subtests, tokens):
        """Neither the smuggled message of each bdat_attack (`tokens`, their subTest keywords
        `subtests`) nor its outer one is delivered: one wait of 1.5 s for all of them, after
        the last attack (each attack had as long as a wait of its own would give it)."""
        waited = False
        for params, token in zip(subtests, tokens):
            with self.subTest(**params):
                self.assertTrue(self.postfix.no_message("smuggled " + token,
                                                        wait=0.1 if waited else 1.5,
                                                        mailbox="carol"))
                waited = True
                self.assertTrue(self.postfix.no_message(token, wait=0.1, mailbox="bob"))

    def test_a_command_between_bdat_chunks_is_answered_by_mailtap(self):
        # Postfix would answer the VRFY (252); mailtap answers it so that no server, Exim
        # included, gets a command there (see EximMidBdatTest). The message still goes through.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("midbdat")
        with SmtpSocket(m.port) as s:
            self.login(s)
            replies = mid_bdat_vrfy(s, token)
        self.assertEqual([r.code for r in replies], [503, 250, 221], replies)
        self.assertIn("mailtap: only BDAT, RSET, NOOP or QUIT, without arguments (NOOP's may be", replies[0].text)
        got = self.postfix.wait_for_message("outer " + token, mailbox="bob")
        self.assertIn(b"RCPT TO:<carol@example.test>", got)
        self.assertTrue(self.postfix.no_message("smuggled " + token, wait=1.0, mailbox="carol"))
        sid = wait_ended(db, 1)[-1]["id"]
        vrfy = [e for e in events(db, sid) if e["verb"] == "VRFY"]
        self.assertEqual([(e["direction"], e["kind"]) for e in vrfy],
                         [("client_to_mailtap", "command")], vrfy)
        local = [e for e in events(db, sid) if e["kind"] == "local_reply"]
        self.assertEqual([e["reply_code"] for e in local], [503], local)

    def test_a_noop_with_a_parameter_between_bdat_chunks_reaches_the_server(self):
        # RFC 5321's "NOOP SP String": Postfix (and Exim 4.96) answer it 250 between chunks and
        # read the next chunk as a chunk, so mailtap relays it, in its one plain spelling; the
        # last chunk, pipelined behind it, waits for its reply (a NOOP there is a sync point).
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("noopword")
        with SmtpSocket(m.port) as s:
            self.login(s)
            replies = mid_bdat_vrfy(s, token, b"NOOP still here\r\n")
        self.assertEqual([r.code for r in replies], [250, 250, 221], replies)
        self.assertNotIn("mailtap", replies[0].text)
        got = self.postfix.wait_for_message("outer " + token, mailbox="bob")
        self.assertIn(b"RCPT TO:<carol@example.test>", got)
        self.assertTrue(self.postfix.no_message("smuggled " + token, wait=1.0, mailbox="carol"))
        sid = wait_ended(db, 1)[-1]["id"]
        noop = [e for e in events(db, sid) if e["verb"] == "NOOP" and e["kind"] == "command"]
        self.assertEqual([(e["direction"], bytes(e["bytes"])) for e in noop][0],
                         ("client_to_upstream", b"NOOP still here\r\n"), noop)

    def test_a_bdat_message_under_postfixs_size_is_delivered(self):
        # Postfix advertises SIZE (message_size_limit): mailtap keeps chunks below it less its
        # margin, and an ordinary message in two chunks, far below, goes through as before.
        m = self.mailtap(self.postfix.submission)
        token = unique_token("undersize")
        head = b"Subject: under " + token.encode() + b"\r\n\r\n" + b"x" * 70 + b"\r\n"
        tail = (b"y" * 70 + b"\r\n") * 1000
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            ehlo = s.cmd("EHLO client.test")
            self.assertRegex(ehlo.text, r"SIZE [1-9]")
            self.assertEqual(s.cmd("AUTH PLAIN " + auth_plain("alice", USERS["alice"])).code, 235)
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.test>").code, 250)
            self.assertEqual(s.cmd("RCPT TO:<bob@example.test>").code, 250)
            s.send(b"BDAT %d\r\n" % len(head) + head)
            self.assertEqual(s.reply().code, 250)
            s.send(b"BDAT %d LAST\r\n" % len(tail) + tail)
            self.assertEqual(s.reply().code, 250)
            self.assertEqual(s.cmd("QUIT").code, 221)
        got = self.postfix.wait_for_message("under " + token, mailbox="bob")
        self.assertIn(b"y" * 70, got)

    def test_a_last_chunk_behind_a_refused_one_never_ends_the_message_without_it(self):
        # MAIL, RCPT and a first chunk past Postfix's SIZE (less mailtap's margin) in one
        # write: mailtap refuses that chunk as it reads it, before the replies to the MAIL and
        # RCPT come. Their 250s say nothing of the refusal: Postfix still holds the transaction
        # without the chunk, and the BDAT ... LAST behind it, let through, would end a message
        # the client never meant (its last chunk only). It ends the session instead.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("refusedfirst")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            ehlo = s.cmd("EHLO client.test")
            size = int(ehlo.text.split("SIZE ", 1)[1].split()[0])
            self.assertEqual(s.cmd("AUTH PLAIN " + auth_plain("alice", USERS["alice"])).code, 235)
            first = b"Subject: first\r\n\r\n" + (b"x" * 78 + b"\r\n") * (size // 80 + 1)
            last = b"Subject: last " + token.encode() + b"\r\n\r\nonly the end\r\n"
            s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n" +
                   b"BDAT %d\r\n" % len(first) + first +
                   b"BDAT %d LAST\r\n" % len(last) + last + b"QUIT\r\n")
            replies = replies_to_the_end(s)
        self.assertEqual([r.code for r in replies], [250, 250, 552, 421], replies)
        self.assertIn("past the server's SIZE", replies[2].text)
        self.assertIn("BDAT refused (mailtap refused an earlier chunk of this message",
                      replies[3].text)
        self.assertTrue(self.postfix.no_message(token, wait=1.5, mailbox="bob"))
        session = wait_ended(db, 1)[-1]
        self.assertEqual(query(db, "SELECT COUNT(*) FROM messages WHERE session_id = ?",
                               (session["id"],))[0][0], 0)

    def test_commands_behind_a_refused_first_chunk_never_reach_the_open_transaction(self):
        # mailtap refuses the FIRST chunk of a message itself (past Postfix's SIZE less its
        # margin), so Postfix saw no BDAT and still holds the transaction (MAIL, RCPT carol).
        # What the client pipelines behind the refusal must not land in it: a next message's
        # MAIL (Postfix: 503 nested), RCPT bob (Postfix: taken into the old transaction) and
        # DATA (Postfix: ends it) would deliver the next message to carol too, under the first
        # one's sender; a DATA alone would end the first message without its chunk. mailtap
        # answers each 503 (RSET), as between chunks, and the client's RSET then frees it.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        for last, name in ((b" LAST", "nextmsg"), (b"", "dataonly")):
            with self.subTest(last=last):
                token = unique_token("firstrefused" + name)
                with SmtpSocket(m.port) as s:
                    self.assertEqual(s.reply().code, 220)
                    ehlo = s.cmd("EHLO client.test")
                    size = int(ehlo.text.split("SIZE ", 1)[1].split()[0])
                    self.assertEqual(
                        s.cmd("AUTH PLAIN " + auth_plain("alice", USERS["alice"])).code, 235)
                    first = b"Subject: first\r\n\r\n" + (b"x" * 78 + b"\r\n") * (size // 80 + 1)
                    body = (b"Subject: two " + token.encode() + b"\r\n\r\nfor bob only\r\n.\r\n")
                    behind = (b"MAIL FROM:<bob-sender@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                              if last else b"")
                    s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\n"
                           + b"BDAT %d%s\r\n" % (len(first), last) + first
                           + behind + b"DATA\r\n" + body)
                    lines = (2 if last else 0) + 1 + body.count(b"\n")
                    replies = []
                    try:  # as many as come (forwarded, DATA's body gets fewer replies)
                        while len(replies) < 3 + lines:
                            replies.append(s.reply(timeout=5))
                    except TimeoutError:
                        pass
                    self.assertEqual([r.code for r in replies], [250, 250, 552] + [503] * lines,
                                     replies)
                    self.assertIn("past the server's SIZE", replies[2].text)
                    for r in replies[3:]:
                        self.assertIn("mailtap:", r.text)
                        self.assertIn("so drop it with RSET", r.text)
                    # The RSET ends it: the client's message goes to bob alone, from its sender.
                    self.assertEqual(s.cmd("RSET").code, 250)
                    self.assertEqual(s.cmd("MAIL FROM:<bob-sender@example.test>").code, 250)
                    self.assertEqual(s.cmd("RCPT TO:<bob@example.test>").code, 250)
                    self.assertEqual(s.cmd("DATA").code, 354)
                    s.send(b"Subject: three " + token.encode() + b"\r\n\r\nfor bob\r\n.\r\n")
                    self.assertEqual(s.reply().code, 250)
                    self.assertEqual(s.cmd("QUIT").code, 221)
                got = self.postfix.wait_for_message("three " + token, mailbox="bob")
                self.assertIn(b"bob-sender@example.test", got)
                self.assertTrue(self.postfix.no_message(token, wait=1.5, mailbox="carol"))
                self.assertTrue(self.postfix.no_message("two " + token, wait=0.5, mailbox="bob"))
        sessions = wait_ended(db, 2)
        for session in sessions[-2:]:
            self.assertEqual(query(db, "SELECT COUNT(*) FROM messages WHERE session_id = ?",
                                   (session["id"],))[0][0], 1)

    def test_a_body_line_dot_nul_ends_the_session_unsent(self):
        # OpenSMTPD compares lines as C strings: ".\0..." is its end of data, text for Postfix.
        # No reading is shared, so nothing of the line goes, and the message is not ended.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("dotnul")
        with SmtpSocket(m.port) as s:
            self.login(s)
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.test>").code, 250)
            self.assertEqual(s.cmd("RCPT TO:<bob@example.test>").code, 250)
            self.assertEqual(s.cmd("DATA").code, 354)
            s.send(b"Subject: pay " + token.encode() + b"\r\n\r\nPay 100 EUR to the account "
                   b"below.\r\n.")
            time.sleep(0.2)  # the lone dot is held until the next octet shows what it is
            s.send(b"\0\r\nAccount: DE00 1234\r\n.\r\nQUIT\r\n")
            replies = replies_to_the_end(s)
        self.assertEqual([r.code for r in replies], [421], replies)
        self.assertIn("SMTP smuggling", replies[0].text)
        self.assertIn("Remove the NUL", replies[0].text)
        self.assertTrue(self.postfix.no_message(token, wait=1.5, mailbox="bob"))
        session = wait_ended(db, 1)[-1]
        self.assertEqual(session["outcome"], "error")
        evs = events(db, session["id"])
        refused = [e for e in evs if e["kind"] == "error" and e["direction"] == "client_to_mailtap"]
        self.assertEqual(len(refused), 1, evs)
        self.assertIn("followed by a NUL", refused[0]["note"])
        self.assertTrue(any(e["kind"] == "local_reply" and e["reply_code"] == 421 for e in evs))
        self.assertEqual(query(db, "SELECT COUNT(*) FROM messages WHERE session_id = ?",
                               (session["id"],))[0][0], 0)

    def test_a_bdat_line_not_in_rfc_3030_form_ends_the_session_unread(self):
        # Postfix tokenizes these and frames the chunk; Exim answers 500 and reads the chunk as
        # commands. No reading is safe, so mailtap forwards neither the line nor the chunk.
        m = self.mailtap(self.postfix.submission)
        subtests, tokens = [], []
        for verb, size in ((b"BDAT\t", b"N LAST"), (b" BDAT ", b"N LAST"), (b"BDAT\x0b", b"N LAST"),
                           (b"bdat\x0c", b"N LAST"), (b"BDAT  ", b"N LAST"), (b"BDAT ", b"N\tLAST")):
            with self.subTest(verb=verb, size=size):
                subtests.append({"verb": verb, "size": size})
                tokens.append(unique_token("bdatws"))
                replies = self.bdat_attack(m.port, size, tokens[-1], verb=verb)
                self.assertEqual([r.code for r in replies], [250, 250, 250, 421], replies)
                self.assertIn("syntax is BDAT SP <size> [SP LAST]", replies[-1].text)
        self.assertNoneDelivered(subtests, tokens)

    def test_a_refused_bdat_line_comes_after_the_replies_owed_ahead_of_it(self):
        # A first message ended with BDAT LAST, then a second transaction whose BDAT line
        # mailtap refuses, all in one write: Postfix delivers the first, so its client gets the
        # 250 (and the record its message) before the 421, and is not invited to send it again.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("owed")
        first = b"Subject: first " + token.encode() + b"\r\n\r\nfirst\r\n"
        with SmtpSocket(m.port) as s:
            self.login(s)
            s.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT %d LAST\r\n" % len(first) + first +
                   b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT x LAST\r\nRSET\r\nQUIT\r\n")
            replies = replies_to_the_end(s)
        self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 250, 421], replies)
        self.assertIn("where its chunk ends is unknown", replies[-1].text)
        self.postfix.wait_for_message("first " + token, mailbox="bob")
        sid = wait_ended(db, 1)[-1]["id"]
        rows = query(db, "SELECT via_bdat FROM messages WHERE session_id = ?", (sid,))
        self.assertEqual([r["via_bdat"] for r in rows], [1])

    def test_audit_names_the_message_of_each_shape(self):
        # Two messages in one session, each with a neutralised shape: a shape's offset is its
        # message's, so audit (text and JSON) says which message each is in.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("which")
        with SmtpSocket(m.port) as s:
            self.login(s)
            for text in (b"first\n.\nstill the first\r\n", b"second one\n.\nstill\r\n"):
                self.assertEqual(s.cmd("MAIL FROM:<alice@example.test>").code, 250)
                self.assertEqual(s.cmd("RCPT TO:<bob@example.test>").code, 250)
                self.assertEqual(s.cmd("DATA").code, 354)
                self.assertEqual(s.cmd(b"Subject: " + token.encode() + b"\r\n\r\n" + text +
                                       b".").code, 250)
            self.assertEqual(s.cmd("QUIT").code, 221)
        sid = wait_ended(db, 1)[-1]["id"]
        notes = [e for e in events(db, sid) if e["kind"] == "rewrite" and e["verb"] == "DATA"]
        self.assertTrue(notes and all(e["mail_transaction"] for e in notes), notes)
        audit = json.loads(self.tool("audit", "--json", db=db).stdout)
        shapes = [x["shapes"] for x in audit["smuggling_shapes"] if x["session"] == sid]
        header = len("Subject: " + token) + 4
        expected = (f"message 1: \\n.\\n at offset {header + 7}; "
                    f"message 2: \\n.\\n at offset {header + 12}")
        self.assertEqual(shapes, [expected])
        text = self.tool("audit", "--color", "never", db=db).stdout.decode()
        self.assertIn(f"session {sid}: client DATA contains smuggling shapes: {expected}", text)

    def test_a_telnet_subnegotiation_cannot_turn_a_bdat_chunk_into_commands(self):
        # 0xFF 0xFA (Latin-1 text, or telnet's IAC SB) in a pipelined MAIL, and 0xFF 0xF0 (IAC
        # SE) in the chunk: read as one subnegotiation, it would swallow the RCPT and BDAT lines
        # and relay the rest of the chunk as a transaction to carol. The MAIL line is refused
        # instead, and everything after it is framed as Postfix frames it.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("iacsb").encode()
        chunk = (b"Subject: " + token + b"\r\n\r\nhello \xff\xf0alice@example.test>\r\n"
                 b"RCPT TO:<carol@example.test>\r\nDATA\r\nSubject: smuggled " + token +
                 b"\r\n\r\nsmuggled\r\n.\r\n")
        with SmtpSocket(m.port) as s:
            self.login(s)
            s.send(b"MAIL FROM:<j\xff\xfa@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"QUIT\r\n")
            replies = replies_to_the_end(s)
        codes = [r.code for r in replies]
        self.assertEqual(codes[0], 500, replies)
        self.assertIn("telnet subnegotiation", replies[0].text)
        self.assertEqual(codes[-1], 221, codes)
        self.assertNotIn(354, codes)  # no DATA was ever read from the chunk
        self.assertTrue(self.postfix.no_message(token.decode(), wait=2, mailbox="carol"))
        bob = [p for p in self.postfix.delivered_files("bob") if token in p.read_bytes()]
        self.assertLessEqual(len(bob), 1, bob)
        sid = wait_ended(db, 1)[-1]["id"]
        refused = [e for e in events(db, sid) if e["kind"] == "error" and e["verb"] == "MAIL"]
        self.assertEqual(len(refused), 1, events(db, sid))
        self.assertIn("telnet subnegotiation", refused[0]["note"])

    def test_a_bare_cr_inside_a_crlf_clients_rcpt_adds_no_recipient(self):
        # A program that checks an address for CRLF and LF but not a lone CR: its one RCPT line
        # holds a second RCPT after the CR. Postfix alone refuses the line (555); mailtap read
        # the CR as a line ending and relayed two RCPTs, and carol got the message.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        with SmtpSocket(m.port) as s:
            self.login(s)
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.test>").code, 250)
            refused = s.cmd(b"RCPT TO:<bob@example.test>\rRCPT TO:<carol@example.test>")
            self.assertEqual(refused.code, 500, refused)
            self.assertIn("a bare CR inside it, where this client ends its lines with CRLF",
                          refused.text)
            self.assertEqual(s.cmd("DATA").code, 554)  # Postfix: no valid recipients
            self.assertEqual(s.cmd("QUIT").code, 221)
        sid = wait_ended(db, 1)[-1]["id"]
        self.assertEqual([e["verb"] for e in events(db, sid)
                          if e["direction"] == "client_to_upstream" and e["verb"] == "RCPT"], [])

    def test_bare_lf_client_ends_its_message_with_a_lone_dot(self):
        m = self.mailtap(self.postfix.submission)
        token = unique_token("nclf")
        with NetcatClient(m.port) as nc:
            start_data(nc, ehlo="nc.test", mail_from="nc@client.test")
            nc.send(b"Subject: " + token.encode() + b"\n\nhello from nc\n")
            self.assertEqual(nc.cmd(b".").code, 250)
            self.assertEqual(nc.cmd(b"QUIT").code, 221)
        got = self.postfix.wait_for_message(token, mailbox="alice")
        self.assertTrue(got.endswith(b"\n\nhello from nc\n"), got)

    def test_bare_cr_client_ends_its_message_with_a_lone_dot(self):
        # A terminal that sends CR for Enter; the line completes with the next byte.
        m = self.mailtap(self.postfix.submission)
        token = unique_token("cr")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            s.send(b"EHLO cr.test\rMAIL FROM:<cr@client.test>\r")
            self.assertEqual(s.reply().code, 250)
            s.send(b"RCPT TO:<alice@example.test>\r")
            self.assertEqual(s.reply().code, 250)  # MAIL's
            s.send(b"DATA\r")
            self.assertEqual(s.reply().code, 250)  # RCPT's: its line completed with "D"
            s.send(b"Subject: " + token.encode() + b"\r\rhello from a CR terminal\r")
            self.assertEqual(s.reply().code, 354)
            s.send(b".\rQUIT\r\n")
            self.assertEqual(s.reply().code, 250)
            self.assertEqual(s.reply().code, 221)
        got = self.postfix.wait_for_message(token, mailbox="alice")
        self.assertTrue(got.endswith(b"\n\nhello from a CR terminal\n"), got)

    def test_a_bare_cr_clients_end_of_data_is_not_held_for_its_next_octet(self):
        # Its "." line ends at the CR whatever follows: a client that then closes (or waits for
        # the 250 before typing on) gets its message delivered; mailtap held the CR for the next
        # octet and lost the message at the close.
        m = self.mailtap(self.postfix.submission)
        token = unique_token("crend")
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            s.send(b"EHLO cr.test\rMAIL FROM:<cr@client.test>\rRCPT TO:<alice@example.test>\r"
                   b"DATA\r")
            self.assertEqual([s.reply().code for _ in range(3)], [250, 250, 250])
            s.send(b"Subject: " + token.encode() + b"\r\rlast line\r.\r")
            self.assertEqual(s.reply().code, 354)
            s.sock.shutdown(socket.SHUT_WR)
            self.assertEqual(s.reply().code, 250)
        got = self.postfix.wait_for_message(token, mailbox="alice")
        self.assertTrue(got.endswith(b"\n\nlast line\n"), got)

    def test_a_raw_terminals_lines_are_answered_at_their_own_cr(self):
        # A person at a raw-mode terminal (socat -,raw,echo=0) presses Enter, which sends a bare
        # CR, and waits for the reply before typing on: each line is answered with nothing more
        # sent. mailtap held each CR for the next octet, so every reply came one line late (a
        # refused RCPT read as the answer to QUIT) and QUIT\r was never answered.
        m = self.mailtap(self.postfix.submission)
        with SmtpSocket(m.port, timeout=5.0) as s:
            self.assertEqual(s.reply().code, 220)
            s.send(b"EHLO me\r")
            self.assertEqual(s.reply().code, 250)
            s.send(b"MAIL FROM:<cr@client.test>\r")
            self.assertEqual(s.reply().code, 250)
            s.send(b"RCPT TO:<nobody@example.test>\r")
            refused = s.reply()
            self.assertEqual(refused.code // 100, 5, refused)
            self.assertIn("nobody@example.test", " ".join(refused.lines))
            s.send(b"QUIT\r")
            self.assertEqual(s.reply().code, 221)
            self.assertEqual(s.read_until_closed(timeout=5.0), b"")

    def test_a_line_held_at_the_timeout_is_named_not_called_idle(self):
        # A first line that is no greeting (a typo) does not make the bare CR this client's
        # line ending: its lines run on, and at --timeout-command the 421 says why, not "idle".
        m = self.mailtap(self.postfix.submission, extra_args=["--timeout-command", "2s"])
        db = Path(m.args()[m.args().index("--db") + 1])
        with SmtpSocket(m.port, timeout=10.0) as s:
            self.assertEqual(s.reply().code, 220)
            s.send(b"EHOL me\rEHLO me\r")
            reply = s.reply()
            self.assertEqual(reply.code, 421, reply)
            self.assertIn("command line was not complete within 2s; its line holds a bare CR at "
                          "octet 8, which ends a line only for a client whose first line (EHLO,",
                          " ".join(reply.lines))
        sid = wait_ended(db, 1)[-1]["id"]
        notes = [e["note"] for e in events(db, sid) if e["kind"] == "note"]
        self.assertIn("timed out after an unterminated line of 17 octets; not forwarded", notes)

    def test_a_crlf_written_through_a_text_mode_stream_keeps_the_header_whole(self):
        # A client that writes "\r\n" through a text-mode stream sends "\r\r\n" for every line,
        # which Postfix alone reads as one line each (it strips the CRs): read as a bare CR and
        # a CRLF, each command drew a 500 for an empty line (replies out of step) and the body
        # got an empty line after its first header, which moved the rest into the body.
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("crcrlf")
        eol = b"\r\r\n"
        with SmtpSocket(m.port) as s:
            self.login(s, eol)
            self.assertEqual(s.cmd(b"MAIL FROM:<alice@example.test>", eol).code, 250)
            self.assertEqual(s.cmd(b"RCPT TO:<bob@example.test>", eol).code, 250)
            self.assertEqual(s.cmd(b"DATA", eol).code, 354)
            self.assertEqual(s.cmd(b"Subject: " + token.encode() + b"\r\r\nX-Second: h2\r\r\n"
                                   b"\r\r\nbody line\r\r\n.", eol).code, 250)
            self.assertEqual(s.cmd(b"QUIT", eol).code, 221)
        got = self.postfix.wait_for_message(token, mailbox="bob")
        message = email.message_from_bytes(got)
        self.assertEqual(message["X-Second"], "h2")
        self.assertEqual(body_of(got), b"body line\n")
        sid = wait_ended(db, 1)[-1]["id"]
        shown = self.tool("show", str(sid), "--message", "1", db=db).stdout
        self.assertEqual(body_of(shown), body_of(got))
        notes = [(e["verb"], e["note"]) for e in events(db, sid) if e["kind"] == "rewrite"
                 and e["note"].startswith("CR before CRLF")]
        self.assertEqual(notes, [(verb, "CR before CRLF removed (1x)")
                                 for verb in ["EHLO", "AUTH", "MAIL", "RCPT", "DATA"]] +
                         [("DATA", "CR before CRLF removed (5x)"),
                          ("QUIT", "CR before CRLF removed (1x)")])

class DurableEndTest(IntegrationCase):
    with_postfix = True

    def test_221_only_after_the_session_is_committed(self):
        """Another process holds the database's write lock while the client quits; the proxy is
        killed (SIGKILL) the instant the 221 arrives: the session must be complete on disk."""
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertEqual(s.cmd("EHLO race.test").code, 250)
            self.assertEqual(s.cmd("NOOP").code, 250)
            time.sleep(0.2)  # everything so far committed
            locker = sqlite3.connect(str(db), timeout=10, isolation_level=None,
                                     check_same_thread=False)
            locker.execute("BEGIN IMMEDIATE")  # the write lock: the recorder cannot commit
            release = threading.Timer(1.0, lambda: locker.execute("COMMIT"))
            release.start()
            try:
                sent = time.monotonic()
                s.send(b"QUIT\r\n")
                reply = s.reply(timeout=15)
                m.proc.kill()
                waited = time.monotonic() - sent
            finally:
                release.join()
                locker.close()
            m.proc.wait(timeout=10)
        self.assertEqual(reply.code, 221)
        self.assertGreater(waited, 0.5, "the 221 came while the record could not be committed")
        rows = query(db, "SELECT * FROM sessions")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["outcome"], "quit")
        self.assertIsNotNone(rows[0]["ended_at"])
        self.assertIn(221, [e["reply_code"] for e in events(db, rows[0]["id"])])

    def test_servers_221_to_another_command_only_after_the_session_is_committed(self):
        """Postfix answers a line that looks like a header, sent as a command after DATA was
        refused, with "221 2.7.0 Error: I can break rules, too. Goodbye." and closes. That 221
        ends the session as one to QUIT does: while another process holds the write lock the
        client gets no 221; once the lock goes it does, and a kill -9 then finds the session."""
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        with SmtpSocket(m.port) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertEqual(s.cmd("EHLO race.test").code, 250)
            time.sleep(0.2)  # everything so far committed
            locker = sqlite3.connect(str(db), timeout=10, isolation_level=None,
                                     check_same_thread=False)
            locker.execute("BEGIN IMMEDIATE")  # the write lock: the recorder cannot commit
            try:
                s.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<nobody@example.test>\r\n"
                       b"DATA\r\nSubject: rules\r\n\r\nhi\r\n.\r\nQUIT\r\n")
                while_locked = []
                with contextlib.suppress(socket.timeout, EOFError):
                    while True:  # until nothing more comes for 2 s
                        while_locked.append(s.reply(timeout=2).code)
            finally:
                locker.execute("COMMIT")
                locker.close()
            self.assertNotIn(221, while_locked, "the 221 came while the record could not be "
                             "committed")
            self.assertEqual(while_locked, [250, 550, 554])  # MAIL, RCPT, DATA
            reply = s.reply(timeout=15)
            m.proc.kill()
            m.proc.wait(timeout=10)
        self.assertEqual(reply.code, 221)
        self.assertIn(b"break rules", reply.raw)
        rows = query(db, "SELECT * FROM sessions")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["outcome"], "upstream_closed")
        self.assertIsNotNone(rows[0]["ended_at"])
        self.assertIn(221, [e["reply_code"] for e in events(db, rows[0]["id"])])

    def test_end_of_data_reply_only_after_the_message_is_committed(self):
        m = self.mailtap(self.postfix.submission)
        db = Path(m.args()[m.args().index("--db") + 1])
        token = unique_token("ack")
        with SmtpSocket(m.port) as s:
            start_data(s, ehlo="race.test", mail_from="a@client.test")
            time.sleep(0.2)
            locker = sqlite3.connect(str(db), timeout=10, isolation_level=None,
                                     check_same_thread=False)
            locker.execute("BEGIN IMMEDIATE")
            release = threading.Timer(1.0, lambda: locker.execute("COMMIT"))
            release.start()
            try:
                s.send(f"Subject: {token}\r\n\r\nbody\r\n.\r\n".encode())
                reply = s.reply(timeout=15)
                m.proc.kill()
            finally:
                release.join()
                locker.close()
            m.proc.wait(timeout=10)
        self.assertEqual(reply.code, 250)
        self.assertEqual(len(query(db, "SELECT * FROM messages WHERE final_code = 250")), 1)


class SlowClientTest(IntegrationCase):
    with_postfix = True

    def trickle(self, s, data: bytes, interval: float, until: float) -> bytes:
        """Send `data` a byte at a time every `interval` s until the proxy answers."""
        s.sock.settimeout(interval)
        i = 0
        deadline = time.monotonic() + until
        while time.monotonic() < deadline:
            try:
                got = s.sock.recv(4096)
                return got
            except socket.timeout:
                pass
            s.send(data[i % len(data):i % len(data) + 1])
            i += 1
        return b""

    def test_trickled_command_line_times_out(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--timeout-command", "2s"])
        db = Path(m.args()[m.args().index("--db") + 1])
        result = {}

        def slowloris():
            with SmtpSocket(m.port) as s:
                self.assertEqual(s.reply().code, 220)
                started = time.monotonic()
                result["got"] = self.trickle(s, b"NOOP and more and more ", 0.3, until=10)
                result["elapsed"] = time.monotonic() - started

        attacker = threading.Thread(target=slowloris)
        attacker.start()
        time.sleep(0.5)
        # Another client is served while the trickle goes on.
        with SmtpSocket(m.port) as other:
            self.assertEqual(other.reply().code, 220)
            self.assertEqual(other.cmd("NOOP").code, 250)
            self.assertEqual(other.cmd("QUIT").code, 221)
        attacker.join()
        self.assertTrue(result["got"].startswith(b"421 4.4.2 mailtap: the client's command line "
                                                 b"was not complete within 2s"), result)
        self.assertLess(result["elapsed"], 6)
        rows = wait_ended(db, 2)
        timed_out = [r for r in rows if r["outcome"] == "timeout"]
        self.assertEqual(len(timed_out), 1)
        self.assertIn(421, [e["reply_code"] for e in events(db, timed_out[0]["id"])])

    def test_trickled_message_line_times_out(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--timeout-data", "2s"])
        with SmtpSocket(m.port) as s:
            start_data(s, ehlo="slow.test", mail_from="a@client.test")
            got = self.trickle(s, b"a very slow line that never ends ", 0.3, until=10)
            self.assertTrue(got.startswith(b"421 4.4.2 mailtap: the client's message line was "
                                           b"not complete within 2s"), got)

    def test_a_client_stalled_inside_a_bdat_chunk_is_the_one_timed_out(self):
        """While the client is still sending a chunk, the server owes no reply to its BDAT:
        the client is on the clock (--timeout-data), and the 421 says so, not "no reply from
        the server"."""
        m = self.mailtap(self.postfix.submission,
                         extra_args=["--timeout-data", "2s", "--timeout-command", "30s"])
        with SmtpSocket(m.port, timeout=30) as s:
            self.assertEqual(s.reply().code, 220)
            self.assertIn("CHUNKING", s.cmd("EHLO slow.test").text)
            self.assertEqual(s.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(s.cmd("RCPT TO:<alice@example.test>").code, 250)
            started = time.monotonic()
            s.send(b"BDAT 100 LAST\r\nSubject: x\r\n")
            time.sleep(0.5)
            s.send(b"\r\nthe rest never comes")
            r = s.reply()
            took = time.monotonic() - started
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.4.2 mailtap: the client's message line was not complete within 2s",
                      r.text)
        self.assertLess(took, 6)

    def test_max_sessions_refuses_the_excess_and_records_it(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--max-sessions", "2"])
        db = Path(m.args()[m.args().index("--db") + 1])
        with SmtpSocket(m.port) as a, SmtpSocket(m.port) as b:
            self.assertEqual(a.reply().code, 220)
            self.assertEqual(b.reply().code, 220)
            with SmtpSocket(m.port) as c:
                r = c.reply()
                self.assertEqual(r.code, 421)
                self.assertIn("too many sessions (2); try again later", r.text)
                self.assertTrue(c.is_closed())
            # The two sessions carry on; once one ends, a new client is served.
            self.assertEqual(a.cmd("NOOP").code, 250)
            self.assertEqual(a.cmd("QUIT").code, 221)
            # The slot frees once a's session has wound down, a moment after its 221: a client
            # that comes sooner is refused (and recorded) like c was.
            early_refusals = 0
            deadline = time.monotonic() + 10
            while True:
                with SmtpSocket(m.port) as d:
                    r = d.reply()
                    if r.code == 220:
                        self.assertEqual(d.cmd("QUIT").code, 221)
                        break
                    self.assertEqual(r.code, 421)
                    early_refusals += 1
                self.assertLess(time.monotonic(), deadline, "no slot freed after a QUIT")
                time.sleep(0.05)
            self.assertEqual(b.cmd("QUIT").code, 221)
        refused = query(db, "SELECT * FROM sessions WHERE outcome = 'refused'")
        self.assertEqual(len(refused), 1 + early_refusals)
        self.assertIn("too many sessions", refused[0]["outcome_reason"])
        self.assertIn("too many sessions", m.stderr)


if __name__ == "__main__":
    main()
