#!/usr/bin/env python3
"""A session's last reply reaches a client that sent more than mailtap read.

Every ending that says "nothing more is read" (a failed set-up while the client typed ahead, a
refused BDAT with its chunk behind it, bytes after STARTTLS, --max-sessions, a timeout or a
shutdown with input waiting, the mock's 421 at a divergence) used to close the socket with the
client's input unread, and the kernel then answers with a TCP reset: a client that sees the
reset first (nc) shows nothing, not even the 421 that says why. mailtap now ends with a
lingering close: the reply, a FIN, then what the client still sends read and thrown away
until it closes. Each test checks that the client reads the whole reply, then a clean end
(no reset: the socket's error is 0), over several connections, as the reset was a race.

Upstreams are in-process fakes (harness.FakeServer); no Postfix, no root."""

import base64
import contextlib
import errno
import os
import re
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import find_leaks, mailtap_files, query, secret_forms, wait_ended, wait_for  # noqa: E402,E501

CONNECTIONS = 20  # the reset raced the client's read: one connection proves little


def read_to_the_end(sock: socket.socket, timeout: float = 20.0) -> tuple[bytes, str]:
    """Everything the peer sends until it closes, and how it closed: "FIN" for a clean end,
    else the error a reset left on the socket (ECONNRESET, or EPIPE after a FIN)."""
    data = read_to_the_fin(sock, timeout)
    if isinstance(data, str):
        return b"", data
    return data, resets_after_fin([sock])[0]


def read_to_the_fin(sock: socket.socket, timeout: float = 20.0):
    """What the peer sends up to its FIN, or (a str) the reset that came before it."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return "ECONNRESET"
        if not chunk:
            return data
        data += chunk


def resets_after_fin(socks: list[socket.socket], within: float = 2.0) -> list[str]:
    """For each socket whose peer's FIN was read: "FIN" if no reset comes within `within`
    seconds from now, else its error. A peer that closes with input unread resets at once,
    but one that reads on for a while first (or whose reset is slow to come) resets later: the
    sockets are looked at until then, not once. The error is what a reset leaves on the socket
    (a recv after the FIN only says end of file). Nothing is sent: a byte would draw a reset
    from a peer that closed cleanly once its lingering close or a shutdown's grace period is
    over, which a client that has its last reply never sees."""
    deadline = time.monotonic() + within
    found: list = [None] * len(socks)
    while True:
        for i, sock in enumerate(socks):
            if found[i] is None:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    found[i] = errno.errorcode.get(err, str(err))
        if all(f is not None for f in found) or time.monotonic() >= deadline:
            return [f or "FIN" for f in found]
        time.sleep(0.02)


def read_to_the_ends(fins: list) -> list[tuple[bytes, str]]:
    """read_to_the_end of several connections, each already read up to its FIN (the pairs of
    a socket and what read_to_the_fin returned for it, the socket still open), with one wait
    for their resets: a reset comes on its own connection whatever the others do, so one
    resets_after_fin of all of them after the last FIN sees each as a wait of its own would (a
    connection read early is held open and looked at longer, never less), where a wait per
    connection took 2 s each."""
    ended = [i for i, (_, data) in enumerate(fins) if isinstance(data, bytes)]
    hows = dict(zip(ended, resets_after_fin([fins[i][0] for i in ended])))
    return [(data, hows[i]) if i in hows else (b"", data) for i, (_, data) in enumerate(fins)]


def reply_codes(data: bytes) -> list[bytes]:
    """The code of each reply in `data` (a multi-line reply once)."""
    return [line[:3] for line in data.split(b"\r\n") if line[3:4] == b" "]


class ResetCheckTest(unittest.TestCase):
    """The check every test here relies on sees a reset that comes a while after the FIN."""

    @staticmethod
    def ending_from(then) -> tuple[bytes, str]:
        """read_to_the_end of a peer that sends a 221 and its FIN, then does `then(conn)`."""
        with socket.create_server(("127.0.0.1", 0)) as srv:
            def peer():
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    conn.shutdown(socket.SHUT_WR)
                    then(conn)
            t = threading.Thread(target=peer, daemon=True)
            t.start()
            with socket.create_connection(srv.getsockname()) as c:
                ending = read_to_the_end(c)
            t.join(10)
        return ending

    def test_a_reset_half_a_second_after_the_fin_is_seen(self):
        def reset_later(conn):
            time.sleep(0.5)
            # Closing with SO_LINGER 0 resets the connection.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        data, how = self.ending_from(reset_later)
        self.assertEqual(data, b"221 2.0.0 bye\r\n")
        self.assertNotEqual(how, "FIN")

    def test_one_wait_for_several_connections_sees_each_ones_reset(self):
        """read_to_the_ends: of two connections read to their FINs, the one whose peer resets
        half a second later ends with that reset, the other with its FIN."""
        with socket.create_server(("127.0.0.1", 0)) as srv:
            def peer(reset: bool):
                conn, _ = srv.accept()
                with conn:
                    conn.sendall(b"221 2.0.0 bye\r\n")
                    conn.shutdown(socket.SHUT_WR)
                    if reset:
                        time.sleep(0.5)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    else:
                        conn.recv(1)
            fins = []
            threads = []
            for reset in (True, False):
                threads.append(threading.Thread(target=peer, args=(reset,), daemon=True))
                threads[-1].start()
                c = socket.create_connection(srv.getsockname())
                self.addCleanup(c.close)
                fins.append((c, read_to_the_fin(c)))
            endings = read_to_the_ends(fins)
            for c, _ in fins:
                c.close()
            for t in threads:
                t.join(10)
        self.assertEqual([data for data, _ in endings], [b"221 2.0.0 bye\r\n"] * 2)
        self.assertNotEqual(endings[0][1], "FIN")
        self.assertEqual(endings[1][1], "FIN")

    def test_a_clean_end_is_a_fin(self):
        # The peer closes once this side has (its recv ends with that close).
        self.assertEqual(self.ending_from(lambda conn: conn.recv(1)),
                         (b"221 2.0.0 bye\r\n", "FIN"))


class LastReplyTest(h.IntegrationCase):

    def assertEndsCleanly(self, ending: tuple[bytes, str], *expected_codes: bytes):
        data, how = ending
        self.assertEqual(reply_codes(data), list(expected_codes), data)
        self.assertTrue(data == b"" or data.endswith(b"\r\n"), f"a whole last reply: {data!r}")
        self.assertEqual(how, "FIN", f"the connection ended with a reset after {data!r}")

    def recorded_client_bytes(self, mt: h.Mailtap) -> bytes:
        """Every client octet the record holds (none under MAILTAP_TEST_RECORD=0)."""
        if "--db" not in mt.args():
            return b""
        db = Path(mt.args()[mt.args().index("--db") + 1])
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            rows = c.execute("SELECT bytes FROM events WHERE direction LIKE 'client_%'")
            return b"".join(bytes(r[0]) for r in rows)

    # the upstream set-up -----------------------------------------------------------------
    def test_a_client_that_typed_before_the_upstream_was_up_reads_the_whole_421(self):
        """The report's case: EHLO typed while mailtap waits for the greeting, which never
        comes. Nothing of the EHLO is read as a command or recorded."""
        f = self.fake("stall")
        mt = self.mailtap(f.address, extra_args=["--timeout-connect", "1s"])

        def typed_ahead(_):
            with socket.create_connection(("127.0.0.1", mt.port)) as c:
                c.sendall(b"EHLO typed.ahead.test\r\n")
                return read_to_the_end(c)

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            endings = list(pool.map(typed_ahead, range(CONNECTIONS)))
        for ending in endings:
            self.assertEndsCleanly(ending, b"421")
            self.assertIn(b"timed out after 1s waiting for the greeting", ending[0])
        mt.wait_stderr("refused:", CONNECTIONS)
        self.assertNotIn(b"typed.ahead", self.recorded_client_bytes(mt))
        self.assertTrue(mt.alive())

    def test_nc_shows_the_421_to_a_person_who_typed_ahead(self):
        """The same with nc, the README's client, whose stdin stays open: it printed nothing
        in half the runs, as it saw the reset before it read the reply."""
        f = self.fake("stall")
        mt = self.mailtap(f.address, extra_args=["--timeout-connect", "1s"])

        def person(_):
            with h.NetcatClient(mt.port) as nc:
                nc.send(b"EHLO me\r\n")
                try:
                    return nc.reply(timeout=20).raw
                except EOFError as e:
                    return str(e).encode()

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            shown = list(pool.map(person, range(CONNECTIONS)))
        for raw in shown:
            self.assertRegex(raw, rb"^421 4\.4\.1 mailtap: .* timed out after 1s waiting for the "
                                  rb"greeting: .*\r\n$")

    # endings in the relay ----------------------------------------------------------------
    def slow_noop_server(self) -> h.FakeServer:
        """A server that takes a moment over NOOP: what the client sends meanwhile waits in
        the kernel, unread, when mailtap ends the session."""
        def handler(sess, phase, line):
            if line.upper().startswith(b"NOOP"):
                time.sleep(0.2)
                return b"250 2.0.0 Ok\r\n"
            return None
        return self.fake("good", handler=handler)

    def test_a_refused_bdat_with_its_chunk_behind_it(self):
        """`BDAT x` is refused and nothing after it is read (dialogue.md, "BDAT"): the chunk
        the client sent behind it must not turn the 421 into a reset. The reply owed to the
        NOOP ahead of it comes first."""
        mt = self.mailtap(self.slow_noop_server().address)
        fins = []
        for _ in range(5):
            c = self.client(mt.port)
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            fins.append(self.bdat_refused_with_its_chunk_behind(c))
        self.assertBdatRefusedWithItsChunkBehind(read_to_the_ends(fins))
        self.assertNotIn(b"the chunk the client meant", self.recorded_client_bytes(mt))

    def client(self, port: int) -> h.SmtpSocket:
        """A client connection held open until the test's end (read_to_the_ends)."""
        c = h.SmtpSocket(port)
        self.addCleanup(c.close)
        return c

    @staticmethod
    def bdat_refused_with_its_chunk_behind(c: h.SmtpSocket):
        """A NOOP the slow server takes its time over, a BDAT line mailtap refuses, and the
        chunk behind it in a write of its own; then what comes up to the FIN (for
        read_to_the_ends)."""
        c.send(b"NOOP\r\nBDAT x LAST\r\n")
        c.send(b"the chunk the client meant\r\n" * 100)
        return c.sock, read_to_the_fin(c.sock)

    def assertBdatRefusedWithItsChunkBehind(self, endings: list[tuple[bytes, str]]):
        """Each: the NOOP's 250, the 421, a clean end."""
        for ending in endings:
            self.assertEndsCleanly(ending, b"250", b"421")
            self.assertIn(b"421 4.5.4 mailtap: BDAT refused", ending[0])

    def test_a_timeout_with_input_waiting(self):
        """A server that never answers DATA, and a client that sent its body behind it: more
        than mailtap reads ahead at a sync point, the rest waiting in the kernel when
        --timeout-command ends the session."""
        released = threading.Event()

        def handler(sess, phase, line):
            if phase == "tls" and line.upper().startswith(b"DATA"):
                released.wait(30)
            return None
        f = self.fake("good", handler=handler)
        # Cleanups run last first: the handlers are let go before the fake joins their threads
        # (5 s each, or the test's end waited 15 s for three sleeping handlers).
        self.addCleanup(released.set)
        mt = self.mailtap(f.address, extra_args=["--timeout-command", "1s"])
        body = b"x" * 998 + b"\r\n"

        def timed_out(_):
            c = self.client(mt.port)
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            # 1000 KiB: past what mailtap reads ahead (256 KiB and a read), within what its
            # lingering close throws away (1 MiB).
            sender = threading.Thread(
                target=lambda: c.sock.sendall(b"DATA\r\n" + body * 1000), daemon=True)
            sender.start()
            fin = read_to_the_fin(c.sock)
            sender.join(20)
            self.assertFalse(sender.is_alive(), "the client's body was read")
            return c.sock, fin

        # The three sessions at once, each with its own upstream session: they wait out their
        # --timeout-command together.
        with ThreadPoolExecutor(3) as pool:
            fins = list(pool.map(timed_out, range(3)))
        for data, how in read_to_the_ends(fins):
            self.assertEndsCleanly((data, how), b"421")
            self.assertIn(b"no reply from 127.0.0.1 within", data)

    def test_too_many_sessions_to_a_client_that_spoke_first(self):
        """Beyond --max-sessions the 421 comes once the refusal is recorded: an EHLO sent at
        once is in by then. The clients come one after another, each held open after its FIN
        until all are looked at for a reset in one wait; --max-sessions is as many as they are,
        so that each refusal is recorded while the earlier ones linger (each keeps its place
        among the refusals then)."""
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--max-sessions", str(CONNECTIONS)])
        for _ in range(CONNECTIONS):
            holder = self.client(mt.port)
            self.assertEqual(holder.reply().code, 220)
        fins = []
        for _ in range(CONNECTIONS):
            c = socket.create_connection(("127.0.0.1", mt.port))
            self.addCleanup(c.close)
            c.sendall(b"EHLO spoke.first.test\r\n")
            fins.append((c, read_to_the_fin(c)))
        for ending in read_to_the_ends(fins):
            self.assertEndsCleanly(ending, b"421")
            self.assertIn(b"too many sessions (%d)" % CONNECTIONS, ending[0])
        self.assertNotIn(b"spoke.first", self.recorded_client_bytes(mt))
        if "--db" in mt.args():
            db = Path(mt.args()[mt.args().index("--db") + 1])
            self.assertEqual(len(query(db, "SELECT 1 FROM sessions WHERE outcome = 'refused'")),
                             CONNECTIONS, "every refusal recorded")

    def test_too_many_sessions_to_many_clients_at_once(self):
        """A burst past --max-sessions: more refused clients at once than may linger at once
        (--max-sessions recorded refusals, as many unrecorded). Each sends its line as its 421
        arrives, then reads: every one reads the 421 and a clean end. Those past the lingering
        closes' budget were closed without a wait, before their line came, and the line drew
        a reset (2 of 20 in the report, where a line came late by chance): now mailtap takes
        the next client only once a refusal can linger for it."""
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--max-sessions", "4"])
        holders = [h.SmtpSocket(mt.port) for _ in range(4)]
        for holder in holders:
            self.addCleanup(holder.close)
            self.assertEqual(holder.reply().code, 220)
        clients = [socket.create_connection(("127.0.0.1", mt.port)) for _ in range(CONNECTIONS)]
        for c in clients:
            self.addCleanup(c.close)

        def refused(c: socket.socket) -> tuple[bytes, str]:
            select.select([c], [], [], 60)
            c.sendall(b"EHLO many.at.once.test\r\n")
            return read_to_the_end(c)

        with ThreadPoolExecutor(len(clients)) as pool:
            endings = list(pool.map(refused, clients))
        for ending in endings:
            self.assertEndsCleanly(ending, b"421")
            self.assertIn(b"too many sessions (4)", ending[0])

    def mailtap_out_of_descriptors(self) -> h.Mailtap:
        """A mailtap whose open-file limit leaves it no descriptor but its reserve."""
        import resource

        if "ASAN_OPTIONS" in os.environ:
            self.skipTest("a sanitizer build cannot be checked while it is out of descriptors")
        f = self.fake("good")
        mt = self.mailtap(f.address, tls="none", record=False, extra_args=["--threads", "1"])
        descriptors = f"/proc/{mt.proc.pid}/fd"
        taken = {int(n) for n in os.listdir(descriptors)}
        lowest_free = min(n for n in range(len(taken) + 1) if n not in taken)
        resource.prlimit(mt.proc.pid, resource.RLIMIT_NOFILE,
                         (lowest_free, resource.prlimit(mt.proc.pid, resource.RLIMIT_NOFILE)[1]))
        return mt

    def test_out_of_descriptors_to_a_client_that_spoke_first(self):
        """Out of descriptors, a client waiting to be accepted is taken with the one mailtap
        keeps in reserve and told why: that close did not linger, so the EHLO it had sent drew
        a reset that can cost it the 421. It lingers as every refusal does, holding the reserve's
        descriptor meanwhile, which is taken back once the close is done."""
        mt = self.mailtap_out_of_descriptors()
        for _ in range(CONNECTIONS // 4):
            with socket.create_connection(("127.0.0.1", mt.port)) as c:
                c.sendall(b"EHLO spoke.first.test\r\n")
                ending = read_to_the_end(c)
            self.assertEndsCleanly(ending, b"421")
            self.assertIn(b"Too many open files", ending[0])

    def test_out_of_descriptors_to_a_client_that_speaks_after_the_421(self):
        """Out of descriptors, the client turned away through the reserve keeps its lingering
        close while no other client waits: every accept fails then, the one right after the
        turn-away too, and that failure used to end the close at once, so an EHLO that came a
        moment after the 421 drew a reset (which can cost a client the 421 it has not read)."""
        mt = self.mailtap_out_of_descriptors()
        for _ in range(CONNECTIONS // 4):
            with socket.create_connection(("127.0.0.1", mt.port)) as c:
                c.settimeout(20)
                first = c.recv(65536)
                self.assertTrue(first.startswith(b"421 "), first)
                c.sendall(b"EHLO spoke.after.test\r\n")
                data, how = read_to_the_end(c)
            self.assertEndsCleanly((first + data, how), b"421")
            self.assertIn(b"Too many open files", first + data)

    def test_a_free_session_does_not_wait_for_refused_clients_lingering(self):
        """While --max-sessions unrecorded refusals linger (their clients stay open after the
        421), mailtap takes no client that would be refused too; but once a session ends, the
        next client gets that session and its 220 at once, while the refused ones still linger:
        a line they send then is still taken (and thrown away), not answered with a reset as
        after their lingering closes, which the new client used to wait for in the backlog."""
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--max-sessions", "1"])
        session = h.SmtpSocket(mt.port)
        self.addCleanup(session.close)
        self.assertEqual(session.reply().code, 220)
        refused = []
        for _ in range(2):  # one recorded refusal, then one unrecorded: the group is full
            c = socket.create_connection(("127.0.0.1", mt.port))
            self.addCleanup(c.close)
            data = read_to_the_fin(c)
            self.assertIsInstance(data, bytes, "a clean 421")
            self.assertEqual(reply_codes(data), [b"421"], data)
            refused.append(c)
        self.assertEqual(session.cmd("QUIT").code, 221)
        session.close()
        with h.SmtpSocket(mt.port, timeout=20) as next_client:
            self.assertEqual(next_client.reply().code, 220, mt.output)
            for c in refused:
                c.sendall(b"NOOP\r\n")
            self.assertEqual(resets_after_fin(refused), ["FIN", "FIN"],
                             "the free session waited for the refused clients' lingering "
                             "closes")
            self.assertEqual(next_client.cmd("QUIT").code, 221)

    def test_shutdown_of_a_session_whose_client_typed_ahead(self):
        """A shutdown ends a session still setting up (the greeting never came) once --grace
        is over: the 421 and a clean end, and mailtap does not wait for the client to close
        (the lingering close is cut with the grace period)."""
        f = self.fake("stall")
        mt = self.mailtap(f.address, extra_args=["--grace", "1s", "--timeout-connect", "60s"])
        clients = [socket.create_connection(("127.0.0.1", mt.port)) for _ in range(5)]
        for c in clients:
            c.sendall(b"EHLO typed.ahead.test\r\n")
        f.wait_sessions(len(clients))
        mt.signal(signal.SIGTERM)
        try:
            for ending in read_to_the_ends([(c, read_to_the_fin(c)) for c in clients]):
                self.assertEndsCleanly(ending, b"421")
                self.assertIn(b"4.3.2 mailtap: shutting down; try again later", ending[0])
            # The clients are still connected: the exit does not wait for them.
            self.assertEqual(mt.wait(timeout=30), 0, mt.stderr)
        finally:
            for c in clients:
                c.close()

    # --local-tls --------------------------------------------------------------------------
    def local_tls_mailtap(self, upstream: str, **kw) -> tuple[h.Mailtap, Path]:
        config_home = Path(tempfile.mkdtemp(prefix="xdg-config-", dir=self.tmp))
        mt = self.mailtap(upstream, extra_args=["--local-tls", "starttls"],
                          env={"XDG_CONFIG_HOME": str(config_home)}, **kw)
        return mt, config_home / "mailtap" / "local-tls-cert.pem"

    def inside_tls(self, port: int, cert: Path) -> h.SmtpSocket:
        """A client of a --local-tls starttls mailtap, greeted again inside its TLS (held open
        until the test's end)."""
        c = self.client(port)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.starttls(ca_file=cert)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        return c

    def test_bytes_after_starttls_and_more_behind_them(self):
        """An injection after STARTTLS ends the session unread (proxy.md, "--local-tls"); a
        client that goes on writing (its next command, without waiting for the end) gets the
        421 and the end all the same."""
        mt, _ = self.local_tls_mailtap(self.fake("good").address)
        fins = []
        for _ in range(5):
            c = self.client(mt.port)
            self.assertEqual(c.reply().code, 220)
            c.send(b"EHLO client.test\r\nSTARTTLS\r\nMAIL FROM:<injected@client.test>\r\n")
            self.assertEqual([c.reply().code for _ in range(3)], [250, 220, 421])
            c.send(b"RCPT TO:<b@example.test>\r\n")
            fins.append((c.sock, read_to_the_fin(c.sock)))
        for ending in read_to_the_ends(fins):
            self.assertEndsCleanly(ending)
        self.assertNotIn(b"injected", self.recorded_client_bytes(mt))

    def test_a_refused_bdat_inside_the_clients_tls(self):
        """The same ending inside the client's TLS: the 421, close_notify and a clean end."""
        mt, cert = self.local_tls_mailtap(self.slow_noop_server().address)
        fins = [self.bdat_refused_with_its_chunk_behind(self.inside_tls(mt.port, cert))
                for _ in range(5)]
        self.assertBdatRefusedWithItsChunkBehind(read_to_the_ends(fins))

    # what the record says once the last reply went -------------------------------------------
    # The last reply goes only once the session's record is committed, so what became of it,
    # and of what the client sent after it, follows in notes of their own (recording.md, "What
    # the client sends after the end").
    def notes_after_the_end(self, db: Path, containing: str, session: int = 1) -> list[str]:
        """The notes of `session` with `containing`, waited for: they are written once the
        lingering close after the last reply is over."""
        def found():
            rows = query(db, "SELECT note FROM events WHERE session_id = ? AND note LIKE ? "
                             "ORDER BY seq", (session, f"%{containing}%"))
            return [r["note"] for r in rows]
        return wait_for(found, timeout=20, what=f"a note with {containing!r}")

    def test_a_secret_typed_after_the_quit_is_counted_not_recorded(self):
        """A client that sends an AUTH line after its QUIT was answered (session 1), or
        pipelined behind the QUIT (session 2): nothing after a QUIT is read, the lingering close
        (or the dialogue, which had read it with the QUIT) throws it away, and the record says
        how many octets that was, never what they were."""
        db = self.tmp / "after-the-end.db"
        mt = self.mailtap(self.fake("good").address, db=db)
        secret = b"typed-after-the-end-7Hq2"
        auth = b"AUTH PLAIN " + base64.b64encode(b"\0me\0" + secret) + b"\r\n"
        fins = []
        for pipelined in (False, True):
            c = self.client(mt.port)
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            if pipelined:
                c.send(b"QUIT\r\n" + auth)
                self.assertEqual(c.reply().code, 221)
            else:
                self.assertEqual(c.cmd("QUIT").code, 221)
                c.send(auth)
            fins.append((c.sock, read_to_the_fin(c.sock)))
        for ending in read_to_the_ends(fins):
            self.assertEndsCleanly(ending)
        for session in (1, 2):
            notes = self.notes_after_the_end(db, "after the end", session)
            # The client looks for a reset for 2 s after mailtap's FIN before it closes, as long
            # as the lingering close waits for it: the note may add that mailtap closed first.
            self.assertEqual(len(notes), 1, f"session {session}: {notes}")
            self.assertTrue(notes[0].startswith(f"{len(auth)} octets the client sent after the "
                                                f"end were discarded unread"),
                            f"session {session}: {notes}")
        for row in wait_ended(db, 2):
            self.assertEqual(row["outcome"], "quit", "the client took its 221")
        forbidden = {f"secret form {i}": f for i, f in enumerate(secret_forms(secret))}
        forbidden["the AUTH line"] = auth.strip()
        self.assertEqual(find_leaks(mailtap_files(db), forbidden), [])
        self.assertNotIn(secret.decode(), mt.stderr)
        shown = subprocess.run([str(h.mailtap_bin()), "show", "--db", str(db), "1"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn(f"{len(auth)} octets the client sent after the end were discarded unread",
                      shown.stdout)

    def test_inside_the_clients_tls_the_octets_after_the_end_are_its_plaintext(self):
        """With --local-tls, what the lingering close reads is TLS records: a client that takes
        its 221 and ends its TLS cleanly (close_notify, then its FIN: Python's unwrap(), msmtp,
        s-nail, ...) sent no data after the end, and a NOOP it sends inside TLS after the 221
        is its 6 octets, not the 28 of the record that carries it."""
        db = self.tmp / "tls-after-the-end.db"
        mt, cert = self.local_tls_mailtap(self.fake("good").address, db=db)
        fins = []
        for after_the_221 in (b"", b"NOOP\r\n"):
            c = self.inside_tls(mt.port, cert)
            self.assertEqual(c.cmd("QUIT").code, 221)
            if after_the_221:
                c.send(after_the_221)
            c.sock = c.sock.unwrap()  # close_notify both ways: mailtap's came behind the 221
            fins.append((c.sock, read_to_the_fin(c.sock)))
        for ending in read_to_the_ends(fins):
            self.assertEndsCleanly(ending)
        self.assertEqual(self.notes_after_the_end(db, "after the end", 2),
                         ["6 octets the client sent after the end were discarded unread"])
        self.assertEqual(query(db, "SELECT note FROM events WHERE session_id = 1 "
                                   "AND note LIKE '%after the end%'"), [])
        for row in wait_ended(db, 2):
            self.assertEqual(row["outcome"], "quit")

    def test_more_than_the_lingering_close_reads_is_said(self):
        """Past 1 MiB the lingering close stops reading and closes first: the note says it
        stopped at its limit (the client may have sent more)."""
        db = self.tmp / "after-the-end-limit.db"
        mt = self.mailtap(self.fake("good").address, db=db)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)

            def flood():
                with contextlib.suppress(OSError):
                    c.sock.sendall(b"x" * (2 << 20))
            sender = threading.Thread(target=flood, daemon=True)
            sender.start()
            read_to_the_end(c.sock)
            sender.join(20)
        self.assertEqual(self.notes_after_the_end(db, "after the end"),
                         ["1048576 octets the client sent after the end were discarded unread "
                          "(closed before the client did: the lingering close reads at most "
                          "1 MiB)"])
        self.assertTrue(mt.alive())

    def test_a_221_the_client_closed_on_unread_is_not_a_clean_quit(self):
        """The client sends QUIT and closes with the 221 come but unread, as an MTA does that
        gave up waiting just as it came: its kernel resets the connection. The record said
        `quit`, as if the client had been told; now it says the 221 did not reach the client and the
        outcome is the one a close before the 221 gets (dialogue.md, "When the client
        closes")."""
        db = self.tmp / "unread-221.db"
        mt = self.mailtap(self.fake("good").address, db=db)
        c = h.SmtpSocket(mt.port)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        c.send(b"QUIT\r\n")
        readable, _, _ = select.select([c.sock], [], [], 20)
        self.assertTrue(readable, "the 221 came")
        c.close()  # with the 221 unread: a reset
        notes = self.notes_after_the_end(db, "did not reach the client")
        self.assertEqual(len(notes), 1, notes)
        self.assertRegex(notes[0], r"^client closed the connection while replies were still due "
                                   r"to it: it reset the connection; replies that did not reach "
                                   r"the client: 221 \S")
        row = wait_for(lambda: [r for r in query(db, "SELECT * FROM sessions")
                                if r["outcome"] == "client_closed"], timeout=20,
                       what="the outcome corrected")[0]
        self.assertRegex(row["outcome_reason"],
                         r"^client closed the connection before the reply to its QUIT \(221 ")
        self.assertIn("ended: client_closed (client closed the connection before the reply to "
                      "its QUIT", mt.wait_stderr("ended:"))

    def test_a_221_read_then_reset_is_recorded_as_an_unread_one(self):
        """The documented limit (recording.md, "What the client sends after the end"): a client
        that reads its 221 and then closes abortively (SO_LINGER 0) resets the connection as
        one that closed with the 221 unread (above) does, and mailtap's side of the two is the
        same: the 221 acknowledged by the client's kernel (send queue empty), then a reset. A
        delivery it cannot know is not recorded: the note and the outcome are the unread one's."""
        db = self.tmp / "read-221-reset.db"
        mt = self.mailtap(self.fake("good").address, db=db)
        c = h.SmtpSocket(mt.port)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)  # read, all of it
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        notes = self.notes_after_the_end(db, "did not reach the client")
        self.assertEqual(len(notes), 1, notes)
        self.assertRegex(notes[0], r"^client closed the connection while replies were still due "
                                   r"to it: it reset the connection; replies that did not reach "
                                   r"the client: 221 \S")
        wait_for(lambda: [r for r in query(db, "SELECT * FROM sessions")
                          if r["outcome"] == "client_closed"], timeout=20,
                 what="the outcome the unread 221 gets")

    # mailtap mock ----------------------------------------------------------------------------
    def test_mock_divergence_to_a_client_that_writes_on(self):
        """The mock's 421 at a divergence, to a client that sends its next command without
        waiting for the end."""
        mt = self.mailtap(self.fake("good").address)
        if "--db" not in mt.args():
            self.skipTest("the mock needs a recorded session (MAILTAP_TEST_RECORD=0)")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        db = mt.args()[mt.args().index("--db") + 1]
        mt.wait_stderr("session 1 ended")
        # A mock each: the mock serves one client at a time, its lingering close included, and
        # each client is held open after its FIN until all are looked at for a reset at once.
        mocks, fins = [], []
        for _ in range(5):
            mock = subprocess.Popen([str(h.mailtap_bin()), "mock", "1", "--db", db, "--loop",
                                     "--listen", "127.0.0.1:0"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(lambda mock=mock: mock.poll() is None and mock.kill())
            mocks.append(mock)
            ready = mock.stderr.readline()
            self.assertIn("listening on", ready)
            c = self.client(int(re.search(r"listening on 127\.0\.0\.1:(\d+)", ready)[1]))
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("NOOP").code, 421)
            c.send(b"QUIT\r\n")
            fins.append((c.sock, read_to_the_fin(c.sock)))
        for ending in read_to_the_ends(fins):
            self.assertEndsCleanly(ending)
        for mock in mocks:
            mock.terminate()
            out, _ = mock.communicate(timeout=10)
            self.assertEqual(out.count("diverged from session 1"), 1, out)

if __name__ == "__main__":
    h.main()
