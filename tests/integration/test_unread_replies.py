#!/usr/bin/env python3
"""A client that sends and never reads does not hold mailtap: what mailtap writes to it has
--timeout-command to be taken (docs/dialogue.md, "Timeouts"), then the connection is reset,
the upstream closed (with mailtap's QUIT where the server can read one) and the record and
the log say the client was the slow one.

Before, such a client held the session for ever once the sockets' buffers were full: the
session's last reply (a 421, a 221) was written without a deadline, so after the proxy's own
timeout had fired and been recorded, both the client and the upstream connection stayed
open; and while mailtap stopped reading a server whose replies the client did not take, the
server was cut off as too slow to reply.

The clients are raw sockets with a small receive buffer that greet, then flood or pipeline
without reading. Upstreams are in-process fakes (harness.FakeServer); no Postfix, no root."""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import events, query, wait_ended, wait_for  # noqa: E402

# linux/tcp.h: tcpi_state, the first octet of struct tcp_info.
TCP_ESTABLISHED, TCP_CLOSE = 1, 7
# What a test waits for at most: many times the limits it sets, never a measure of them.
PATIENCE = 30.0

BIG_REPLY_LINES = 200  # a reply of about 200 KiB, under the reply parser's 256 KiB


def big_help_reply() -> bytes:
    line = b"214-" + b"h" * 1000 + b"\r\n"
    return line * (BIG_REPLY_LINES - 1) + b"214 2.0.0 end of help\r\n"


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]


class NonReadingClient:
    """A client socket that reads the greeting and the EHLO reply, then never reads again; its
    receive buffer is small, so what mailtap writes to it soon waits in mailtap."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(15)
        self._read_reply()
        self.sock.sendall(b"EHLO client.test\r\n")
        self._read_reply()
        self.flood_error: OSError | None = None
        self._stop = threading.Event()
        self._flooder: threading.Thread | None = None

    def _read_reply(self) -> None:
        data = b""
        while not any(line[3:4] == b" " for line in data.split(b"\r\n")):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(data)
            data += chunk

    def flood(self, line: bytes = b"NOOP\r\n") -> None:
        """Sends `line` over and over from a thread until mailtap lets go (or close())."""
        def run():
            chunk = line * (16 * 1024 // len(line))
            self.sock.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    self.sock.send(chunk)
                except socket.timeout:
                    continue
                except OSError as e:
                    self.flood_error = e
                    return
        self._flooder = threading.Thread(target=run, daemon=True)
        self._flooder.start()

    def wait_let_go(self) -> int:
        """How mailtap's side ended (tcpi_state: TCP_CLOSE after a reset), waiting for it."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            state = tcp_state(self.sock)
            if state != TCP_ESTABLISHED:
                return state
            time.sleep(0.1)
        return TCP_ESTABLISHED

    def close(self) -> None:
        self._stop.set()
        if self._flooder:
            self._flooder.join(5)
        self.sock.close()


class UnreadRepliesTest(h.IntegrationCase):

    def client(self, port: int) -> NonReadingClient:
        c = NonReadingClient(port)
        self.addCleanup(c.close)
        return c

    def assertReset(self, c: NonReadingClient):
        self.assertEqual(c.wait_let_go(), TCP_CLOSE,
                         "the proxy still holds the client's connection (or ended it with a FIN "
                         "behind replies the client never read, not a reset)")

    def wait_not_read(self, mt: h.Mailtap) -> None:
        """Until mailtap says (-v) it stopped reading the client: the client's socket refused
        some of its replies and as much as mailtap holds for a client waits, so whatever comes
        next waits behind them. Not "the flood has been stuck for a second": mailtap reads
        ahead a receive buffer of megabytes (some 300,000 NOOPs) that the fake upstream takes
        seconds to answer, and on a loaded machine the flood stalls for that long while mailtap
        still reads, with room left in its socket for the reply the test meant to be unread."""
        line = ": the client is not reading its replies: mailtap reads none of its input"
        self.assertIn(line, mt.wait_stderr(line, timeout=PATIENCE),
                      "mailtap never stopped reading the client")

    def assertUpstreamClosed(self, f: h.FakeServer) -> h.FakeSession:
        sess = f.wait_sessions(1)[0]
        self.assertTrue(sess.closed.wait(PATIENCE), "the upstream connection is still open")
        return sess

    def test_a_client_flooding_commands_it_never_reads_the_replies_of_is_let_go(self):
        """The report's case: pipelined NOOPs, never a reply read, --timeout-command 2s. The
        client is reset, the server gets mailtap's QUIT, and the record says the client did
        not read (a timeout, not an idle client nor a slow server)."""
        f = self.fake("good")
        db = self.tmp / "flood.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--timeout-command", "2s"])
        c = self.client(mt.port)
        c.flood()
        self.assertReset(c)
        sess = self.assertUpstreamClosed(f)
        self.assertEqual(sess.commands[-1], ("tls", b"QUIT\r\n"))
        row = wait_ended(db, 1)[0]
        self.assertEqual(row["outcome"], "timeout")
        self.assertEqual(row["outcome_reason"], "client did not read its replies in time")
        notes = [e["note"] for e in events(db, row["id"]) if e["direction"] == "mailtap_note"]
        self.assertIn("the client did not read its replies for 2s (--timeout-command): mailtap "
                      "dropped the connection, as a 421 would have waited unread behind them",
                      notes)
        own = [bytes(e["bytes"]) for e in events(db, row["id"])
               if e["direction"] == "mailtap_to_upstream"]
        self.assertEqual(own[-1], b"QUIT\r\n")
        self.assertIn("ended: timeout (client did not read its replies in time)",
                      mt.wait_stderr("ended: timeout"))
        self.assertTrue(mt.alive())

    def test_a_server_mailtap_stopped_reading_for_such_a_client_is_not_blamed(self):
        """Forty pipelined HELPs with replies of 200 KiB each (more than every buffer on the
        way holds), never read: mailtap stops reading the server once more than 1 MiB waits
        for the client, so the server can finish no reply. The client's clock is the one that
        runs, not the server's."""
        f = self.fake("good", replies={"HELP": big_help_reply()})
        db = self.tmp / "big-replies.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--timeout-command", "2s"])
        c = self.client(mt.port)
        c.sock.sendall(b"HELP\r\n" * 40)
        self.assertReset(c)
        self.assertUpstreamClosed(f)
        row = wait_ended(db, 1)[0]
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "client did not read its replies in time"))
        self.assertIn("ended: timeout (client did not read its replies in time)",
                      mt.wait_stderr("ended: timeout"))

    def test_the_last_reply_of_an_ending_the_server_chose_is_not_waited_on_for_ever(self):
        """The server says 421 and leaves while the client floods without reading: the session
        ends (recorded as the server's ending, as it was), and its last reply, the 421, gets
        --timeout-command to be taken like any other; the log says it was not."""
        # Plain text upstream: the test speaks on the fake's socket beside the fake's thread
        # (waiting for the next command by then), which TLS would not allow.
        f = self.fake("no_starttls")
        db = self.tmp / "server-ending.db"
        mt = self.mailtap(f.address, tls="none", db=db,
                          extra_args=["--timeout-command", "2s", "-v"])
        c = self.client(mt.port)
        c.flood()
        self.wait_not_read(mt)
        f.wait_sessions(1)[0].sock.sendall(b"421 4.3.2 fake: going away\r\n")
        self.assertReset(c)
        self.assertUpstreamClosed(f)
        row = wait_ended(db, 1)[0]
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("upstream_closed", "upstream: 421 4.3.2 fake: going away"))
        self.assertIn("ended: upstream_closed", mt.wait_stderr("ended:"))
        self.assertIn("the client did not read its last reply within 2s (--timeout-command): "
                      "connection reset", mt.stderr)
        # The record, closed before that 421 went, says it in a note after its end: which
        # replies the client never got, the 421 last.
        note = wait_for(lambda: query(db, "SELECT note FROM events WHERE session_id = 1 AND "
                                          "note LIKE '%did not reach the client%'"),
                        timeout=PATIENCE,
                        what="the note of the replies that did not reach the client")[0]["note"]
        self.assertTrue(note.startswith("the client did not read its last reply within 2s "
                                        "(--timeout-command): connection reset; replies that did "
                                        "not reach the client: "),
                        note)
        self.assertTrue(note.endswith("421 4.3.2 fake: going away"), note)
        self.assertEqual(query(db, "SELECT outcome FROM sessions")[0]["outcome"],
                         "upstream_closed", "the ending stays the server's")
        self.assertTrue(mt.alive())

    def test_a_shutdown_does_not_wait_for_a_client_that_does_not_read_its_421(self):
        """--timeout-command 5m, --grace 1s: once the grace period is over, the shutdown's 421
        is not waited on to be read (as the lingering close after it is not): mailtap exits."""
        f = self.fake("good")
        db = self.tmp / "shutdown.db"
        mt = self.mailtap(f.address, db=db,
                          extra_args=["--timeout-command", "5m", "--grace", "1s", "-v"])
        c = self.client(mt.port)
        c.flood()
        self.wait_not_read(mt)
        mt.signal(signal.SIGTERM)
        try:
            rc = mt.wait(timeout=PATIENCE)
        except Exception:
            self.fail(f"mailtap still running {PATIENCE}s after SIGTERM with --grace 1s:\n"
                      f"{mt.stderr}")
        self.assertEqual(rc, 0, mt.stderr)
        self.assertReset(c)
        self.assertUpstreamClosed(f)
        row = query(db, "SELECT outcome FROM sessions")[0]
        self.assertEqual(row["outcome"], "shutdown")
        self.assertIn("the client did not read its last reply by the end of the grace period: "
                      "connection reset", mt.stderr)


if __name__ == "__main__":
    h.main()
