#!/usr/bin/env python3
"""Clients that misbehave or crowd in: mailtap holds no more than its documented bounds
(docs/dialogue.md, "Memory bounds"), and tells every client it turns away why.

A client that floods lines mailtap answers itself (STARTTLS with no --local-tls, a line with a
NUL byte) and never reads: each few octets make a reply of a hundred, held for the client.
mailtap stops reading such a client once its unread replies reach the bound, so its memory
stays flat; once the client reads, every line gets its reply, in order."""

import os
import pty
import select
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import events, query, wait_ended, wait_for  # noqa: E402

MIB = 1 << 20


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def telnet_screen(port: int, keys: list, settle: float = 1.0) -> bytes:
    """What Debian's telnet shows on its terminal when a person types `keys` (bytes, each
    followed by a pause) into it, connected to 127.0.0.1:`port`."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("telnet", ["telnet", "127.0.0.1", str(port)])
    screen = b""

    def drain(seconds: float) -> None:
        nonlocal screen
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if not select.select([fd], [], [], left)[0]:
                return
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            screen += chunk

    try:
        drain(settle)
        for key in keys:
            os.write(fd, key)
            drain(settle)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return screen


class TelnetClientTest(h.IntegrationCase):
    def test_after_ctrl_c_telnet_still_shows_the_replies(self):
        """Ctrl-C in telnet's line mode sends IAC IP IAC DO TM, and telnet shows no output until
        the server answers the DO TM: unanswered, every later reply went by unseen (the QUIT's
        221 too). mailtap refuses the option at once (IAC WONT TM), so the person sees them."""
        f = self.fake("good")
        mt = self.mailtap(f.address)
        screen = telnet_screen(mt.port, [b"ehlo me\r", b"\x03", b"noop\r", b"quit\r"])
        after_ctrl_c = screen[screen.find(b"noop"):]
        self.assertIn(b"221", after_ctrl_c, screen.decode(errors="replace"))

    def test_telnet_synch_reaches_mailtap_whole(self):
        """telnet's `send synch` sends the IAC of IAC DM as TCP urgent data, which the kernel
        keeps out of the stream unless the socket reads it inline (SO_OOBINLINE): the lone DM
        (0xF2) left went upstream glued to the next command, and Postfix ended the session at
        it. Inline, IAC DM is removed like any telnet command."""
        f = self.fake("good")
        mt = self.mailtap(f.address)
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO me").code, 250)
            c.sock.send(b"\xff", socket.MSG_OOB)  # what telnet's send synch does
            time.sleep(0.3)  # the urgent octet in a segment of its own, as telnet sends it
            self.assertEqual(c.cmd(b"\xf2NOOP").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [sess] = f.wait_sessions(1)
        lines = [bytes(line) for _, line in sess.commands]
        self.assertIn(b"NOOP\r\n", lines, lines)

    def test_telnet_send_synch_from_a_real_telnet(self):
        """The same through Debian's telnet: ^] `send synch`, then a NOOP the person sees
        answered."""
        f = self.fake("good")
        mt = self.mailtap(f.address)
        screen = telnet_screen(mt.port, [b"ehlo me\r", b"\x1d", b"send synch\r", b"noop\r",
                                         b"quit\r"])
        after_synch = screen[screen.find(b"send synch"):]
        self.assertIn(b"250", after_synch, screen.decode(errors="replace"))
        self.assertIn(b"221", after_synch, screen.decode(errors="replace"))
        [sess] = f.wait_sessions(1)
        lines = [bytes(line) for _, line in sess.commands]
        self.assertIn(b"noop\r\n", lines, lines)

class HalfClosedClientTest(h.IntegrationCase):
    """A client that closes its sending side inside a message body (nc -N fed a message file
    without its final "." line) still reads: it is told why the message was not sent, where it
    saw the 354 and then the end of the connection (faults REPORT finding 7)."""

    told = (b"421 4.4.2 mailtap: the client closed its sending side inside the message body (no "
            b"end of data: a line with a single \".\" was missing); the message was not sent: "
            b"send it again, ending it with a line holding only \".\"\r\n")

    def test_nc_n_with_a_message_file_lacking_its_final_dot_is_told_the_message_was_not_sent(self):
        fake = self.fake("good")
        m = self.mailtap(fake.address)
        db = Path(m._tmp) / "mailtap.db"
        message_file = (b"EHLO client.test\r\nMAIL FROM:<s@client.test>\r\n"
                        b"RCPT TO:<alice@example.test>\r\nDATA\r\n"
                        b"Subject: no dot\r\n\r\nthe file ends here, without its dot\r\n")
        cp = subprocess.run(["nc", "-N", "127.0.0.1", str(m.port)], input=message_file,
                            capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(b"\r\n354 ", cp.stdout)
        self.assertTrue(cp.stdout.endswith(self.told), cp.stdout)
        [s] = wait_ended(db, 1)
        self.assertEqual((s["outcome"], s["outcome_reason"]),
                         ("client_closed", "client closed inside a message body"))
        own = [e for e in events(db, s["id"]) if e["direction"] == "mailtap_to_client"
               and e["kind"] == "local_reply"]
        self.assertEqual([bytes(e["bytes"]) for e in own], [self.told], "recorded as mailtap's")
        self.assertEqual(own[0]["reply_code"], 421)
        self.assertEqual(query(db, "SELECT count(*) AS n FROM messages")[0]["n"], 0)
        time.sleep(0.3)
        self.assertEqual([msg for f in fake.sessions for msg in f.messages], [],
                         "no end of data reached the server: nothing delivered")

    def test_a_bdat_chunk_cut_short_by_a_half_close_is_told_the_message_was_not_sent(self):
        sink = h.BodySink(chunking=True)
        self.addCleanup(sink.sock.close)
        m = self.mailtap(sink.address, tls="none")
        with h.SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertIn("CHUNKING", c.cmd("EHLO client.test").text)
            self.assertEqual(c.cmd("MAIL FROM:<s@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            c.send(b"BDAT 100 LAST\r\nonly 19 octets sent")
            c.sock.shutdown(socket.SHUT_WR)
            told = c.reply()
            self.assertEqual(c.read_until_closed(5), b"")
        self.assertEqual(told.code, 421, told.raw)
        self.assertIn("inside a BDAT chunk (81 of its octets were still to come); the message was "
                      "not sent", re.sub(r"\s+", " ", told.text))


class NonReadingClientTest(h.IntegrationCase):

    def flood_without_reading(self, mt: h.Mailtap, line: bytes, *, limit: int = 24 * MIB,
                              seconds: float = 8.0) -> tuple[h.SmtpSocket, int, bytes, int]:
        """Greets, learns the reply to `line`, then sends `line` over and over without
        reading until the socket stays full for 2 s, `limit` octets went, or `seconds`
        passed. Returns the client (with .unsent: the rest of a line cut short), the whole
        lines sent in the flood, the reply to one, and the most the proxy's memory grew."""
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        reply = c.cmd(line).raw
        self.assertTrue(reply.startswith((b"5", b"4")), reply)
        base = rss_bytes(mt.proc.pid)
        chunk = line + b"\r\n"
        chunk *= (64 * 1024) // len(chunk)
        sent, pending, grew = 0, b"", 0
        stalled_since = None
        deadline = time.monotonic() + seconds
        c.sock.settimeout(0.2)
        while sent < limit and time.monotonic() < deadline:
            if not pending:
                pending = chunk
            try:
                n = c.sock.send(pending)
                pending = pending[n:]
                sent += n
                stalled_since = None
            except socket.timeout:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 2:
                    break
            grew = max(grew, rss_bytes(mt.proc.pid) - base)
        time.sleep(0.5)
        grew = max(grew, rss_bytes(mt.proc.pid) - base)
        # The line cut short goes once the client reads (mailtap may not read it before).
        c.unsent = pending[:(-sent) % len(line + b"\r\n")]
        return c, sent // (len(line) + 2), reply, grew

    def read_exactly(self, c: h.SmtpSocket, size: int, timeout: float = 60) -> bytes:
        got = bytearray(c.buf)
        c.buf = b""
        c.sock.settimeout(timeout)
        while len(got) < size:
            data = c.sock.recv(1 << 20)
            if not data:
                break
            got += data
        c.buf = bytes(got[size:])
        return bytes(got[:size])

    def check_bounded_then_answered(self, line: bytes):
        f = self.fake("good")
        # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) before
        # it is reused, so the churn of answered lines grows the RSS though what is held stays
        # bounded; a small quarantine keeps the measure about what mailtap holds.
        mt = self.mailtap(f.address, record=False, env=h.small_asan_quarantine())
        c, lines, reply, grew = self.flood_without_reading(mt, line)
        self.assertGreater(lines, 10000, "the flood hardly started")
        # About 1 MiB of unread replies and 512 KiB of unread lines; the kernel holds the rest.
        self.assertLess(grew, 16 * MIB,
                        f"the proxy grew {grew / MIB:.1f} MiB for {lines} lines it answers itself")
        # The client reads: every line has its reply, in order, and the session goes on.
        got = self.read_exactly(c, lines * len(reply))
        self.assertEqual(len(got), lines * len(reply))
        self.assertEqual(got, reply * lines, "a reply is missing or out of order")
        if c.unsent:
            c.send(c.unsent)
            self.assertEqual(c.reply().raw, reply)
        self.assertEqual(c.cmd("QUIT").code, 221)

    def test_starttls_flood_without_reading_stays_bounded(self):
        self.check_bounded_then_answered(b"STARTTLS")

    def test_nul_line_flood_without_reading_stays_bounded(self):
        self.check_bounded_then_answered(b"NOOP \x00")

    def test_reset_after_a_flood_without_reading_ends_the_session(self):
        """A client that floods, never reads, then resets the connection: the replies it left
        unread go nowhere, so they no longer hold its lines back, and the session (with its
        upstream connection) ends at once and is recorded, not at the idle timeout."""
        f = self.fake("good")
        db = self.tmp / "reset.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--timeout-command", "5m"])
        c, lines, _, _ = self.flood_without_reading(mt, b"STARTTLS")
        self.assertGreater(lines, 10000, "the flood hardly started")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST: the unread replies are thrown away
        rows = wait_ended(db, 1, timeout=15)
        self.assertEqual(len(rows), 1)
        self.assertIsNotNone(rows[0]["outcome"])


class BurstOverMaxSessionsTest(h.IntegrationCase):

    def test_every_client_of_a_burst_gets_the_421(self):
        """300 clients at once with --max-sessions 2: each is told, and those not recorded
        (past 2 refusals waiting for their record) are counted in the log. Each closes once
        told, as telnet, swaks or smtplib do: one that stays open holds its place among the
        refusals' lingering closes for 2 s, and mailtap takes no new client while they are
        all taken (docs/proxy.md, "Ending a session")."""
        f = self.fake("good")
        db = self.tmp / "burst.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--max-sessions", "2"])
        held = [h.SmtpSocket(mt.port) for _ in range(2)]
        for c in held:
            self.addCleanup(c.close)
            self.assertEqual(c.reply().code, 220)
        burst = []
        for _ in range(300):
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", mt.port))
            except BlockingIOError:
                pass
            burst.append(s)
        told = []
        for s in burst:
            s.setblocking(True)
            s.settimeout(15)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(200)
                if not chunk:
                    break
                data += chunk
            told.append(data)
            s.close()
        silent = sum(1 for d in told if not d.startswith(b"421 4.3.2 mailtap: too many sessions (2)"))
        self.assertEqual(silent, 0, f"{silent} of 300 clients were not told")
        # Each refusal is recorded, or counted in the log line that ends its burst.
        def accounted() -> int:
            logged = re.findall(r"(\d+) client\(s\) over --max-sessions got the 421 but were "
                                r"not recorded", mt.stderr)
            refused = query(db, "SELECT count(*) AS n FROM sessions WHERE outcome = 'refused'")
            return refused[0]["n"] + sum(int(n) for n in logged)
        deadline = time.monotonic() + 15
        while accounted() < 300:
            self.assertLess(time.monotonic(), deadline,
                            f"{accounted()} of 300 refusals recorded or logged:\n{mt.stderr}")
            time.sleep(0.05)
        self.assertEqual(accounted(), 300)
        # The numbers go on without gaps: a client not recorded takes none.
        ids = [r["id"] for r in query(db, "SELECT id FROM sessions ORDER BY id")]
        self.assertEqual(ids, list(range(1, len(ids) + 1)))
        for c in held:
            self.assertEqual(c.cmd("QUIT").code, 221)


class OutOfDescriptorsTest(h.IntegrationCase):
    """Out of file descriptors (a low ulimit -n): accept fails while clients wait in the listen
    queue. Each of them is told why with a 421 (not left hanging), and the log says it once,
    then counts, instead of a line per wake-up (ten a second, for as long as it lasts)."""

    LIMIT = 30
    CLIENTS = 60

    def silent_upstream(self) -> tuple[str, list]:
        """A server that takes connections and never greets: each session holds its two
        descriptors while it waits. Its address, and the connections it holds."""
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(256)
        held = []

        def take():
            while True:
                try:
                    held.append(srv.accept()[0])
                except OSError:
                    return
        threading.Thread(target=take, daemon=True).start()
        self.addCleanup(lambda: [c.close() for c in held])
        return f"127.0.0.1:{srv.getsockname()[1]}", held

    def test_clients_over_the_descriptor_limit_get_a_421_saying_so_and_the_log_one_line(self):
        import resource

        if "ASAN_OPTIONS" in os.environ:
            # The sanitizers' own checks need descriptors (UBSan's vptr check asks whether
            # memory is readable through a pipe): in a process that has none left they fail and
            # report a type error where there is none. The release build runs this case.
            self.skipTest("a sanitizer build cannot be checked while it is out of descriptors")

        def few_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.LIMIT, self.LIMIT))

        address, held = self.silent_upstream()
        # --grace 1s: the sessions waiting for the silent server's greeting would hold the
        # stop at the test's end for the default 30 s, past the harness's 5 s before SIGKILL.
        mt = self.mailtap(address, ca_file=self.pki.ca_cert, record=False,
                          extra_args=["--threads", "1", "--timeout-connect", "5m",
                                      "--grace", "1s"],
                          preexec_fn=few_descriptors)
        clients = []
        for _ in range(self.CLIENTS):
            s = socket.create_connection(("127.0.0.1", mt.port), timeout=10)
            self.addCleanup(s.close)
            s.setblocking(False)
            clients.append(s)
        told = {}

        def everyone_placed() -> bool:
            """Each client has a session (waiting for the server's greeting) or was told."""
            for s in clients:
                if s not in told:
                    try:
                        told[s] = s.recv(500)
                    except BlockingIOError:
                        pass
            return len(held) + len(told) == self.CLIENTS
        try:
            wait_for(everyone_placed, what="every client placed")
        except AssertionError:
            self.fail(f"{self.CLIENTS - len(held) - len(told)} client(s) waiting in the listen "
                      f"queue were told nothing; stderr:\n{mt.stderr[-2000:]}")
        turned_away = [t for t in told.values() if t.startswith(b"421 4.3.2 mailtap: Too many")]
        self.assertTrue(turned_away, f"no client was told the descriptors ran out: {told}")
        self.assertIn(f"Too many open files (mailtap's open-file limit is {self.LIMIT}); try again "
                      f"later (whoever runs mailtap: raise the limit, ulimit -n or "
                      f"LimitNOFILE=".encode(), turned_away[0])
        # The listener woke for every one of them: still one line.
        self.assertEqual(mt.stderr.count("accept failed"), 1, mt.stderr)
        self.assertIn("accept failed: Too many open files: turning new clients away with 421",
                      mt.stderr)
        for c in clients + held:
            c.close()
        # The sessions end as their server closes; then a client is accepted again.
        stderr = ""
        while "accept works again" not in stderr:
            with socket.create_connection(("127.0.0.1", mt.port), timeout=10):
                stderr = mt.wait_stderr("accept works again", timeout=1,
                                        required=False)
        self.assertRegex(stderr, r"accept works again: (\d+) client\(s\) turned away with 421 "
                                 r"meanwhile \(not recorded\)")
        # Accepted, but with no descriptor left for the server's socket: told the same, as a
        # session (logged as one), not through the reserve.
        as_sessions = mt.stderr.count(" refused: Too many open files")
        self.assertEqual(int(re.search(r"works again: (\d+)", stderr).group(1)),
                         len(turned_away) - as_sessions)

    def test_a_burst_over_the_descriptor_limit_gets_some_sessions_relayed_and_the_rest_a_421(self):
        """A burst of clients larger than the open-file limit allows: as many as there are
        descriptors for (each session needs one for its client and one for the server) are
        relayed end to end, and every other one is told why. Taking clients until the
        descriptors ran out left none for the server's socket of any of them: none served."""
        f = self.fake("good")
        self.check_burst_over_the_descriptor_limit(f, f.address)

    def test_a_burst_to_a_server_named_not_addressed_gets_its_sessions_relayed(self):
        """The same burst with the server given by name, the common case: each session gives
        the descriptor kept for its socket up to resolve the name, and the acceptor must not
        take that slot for a next client meanwhile, which cost the session its socket."""
        f, g = self.fake("good"), self.fake("good")
        by_address = self.check_burst_over_the_descriptor_limit(f, f.address)
        by_name = self.check_burst_over_the_descriptor_limit(g, f"localhost:{g.port}")
        self.assertEqual(by_name, by_address, "sessions relayed: the name cost some")

    def test_a_burst_with_large_messages_keeps_recording(self):
        """The same burst, each session sending a message over 64 KiB, whose body the recorder
        keeps in a file of its own (<db>-bodies/): with every descriptor held by the burst, it
        could not open one, and recording failed for every session. The recorder has its own
        descriptor in reserve: every admitted session's record is complete."""
        f = self.fake("good")
        line = b"x" * 998 + b"\r\n"
        self.check_burst_over_the_descriptor_limit(f, f.address,
                                                   body=b"Subject: burst\r\n\r\n" + line * 100)

    def check_burst_over_the_descriptor_limit(self, f, upstream: str,
                                              body: bytes = b"Subject: burst\r\n\r\nserved\r\n") -> int:
        """The burst through `upstream` (the fake `f`'s), each served client sending `body` in
        one message: how many sessions were relayed (each recorded whole, audit clean)."""
        import resource

        if "ASAN_OPTIONS" in os.environ:
            self.skipTest("a sanitizer build cannot be checked while it is out of descriptors")
        limit, burst = 64, 120

        def few_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        db = self.tmp / f"burst-{upstream.replace(':', '-')}.db"
        # Each I/O thread holds descriptors of its own: two leave room for about 24 sessions.
        mt = self.mailtap(upstream, db=db, extra_args=["--threads", "2"],
                          preexec_fn=few_descriptors)
        clients = []
        for _ in range(burst):
            c = h.SmtpSocket(mt.port, timeout=20)
            self.addCleanup(c.close)
            clients.append(c)
        first = [c.reply() for c in clients]
        served = [c for c, r in zip(clients, first) if r.code == 220]
        told = [r for r in first if r.code != 220]
        for r in told:
            self.assertEqual(r.code, 421, r.raw)
            self.assertIn("4.3.2 mailtap: Too many open files (mailtap's open-file limit is "
                          f"{limit}); try again later", r.text)
        # Fewer than those, with room to spare for whatever else mailtap opens meanwhile.
        self.assertGreaterEqual(len(served), 10, f"{len(served)} of {burst} served: "
                                                f"{[r.raw for r in told[:3]]}")
        for c in served:
            self.assertEqual(c.cmd("EHLO burst.example.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@example.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            reply = c.cmd(body + b".")
            self.assertEqual(reply.code, 250, f"{reply.raw}; stderr:\n{mt.stderr[-2000:]}")
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertEqual(len(f.wait_sessions(len(served))), len(served))
        self.assertEqual(mt.stop(timeout=15), 0, mt.stderr)
        rows = query(db, "SELECT outcome FROM sessions WHERE outcome = 'quit'")
        self.assertEqual(len(rows), len(served))
        # Each message recorded whole: its octets in the row and in the body file together.
        stored = query(db, "SELECT session_id, SUM(length(bytes) + coalesce(file_length, 0)) "
                           "AS octets FROM events WHERE kind = 'data' GROUP BY session_id")
        self.assertEqual(len(stored), len(served))
        for row in stored:
            self.assertGreaterEqual(row["octets"], len(body), row["session_id"])
        audit = subprocess.run([str(h.mailtap_bin()), "audit", "--db", str(db)],
                               capture_output=True, text=True)
        self.assertEqual(audit.returncode, 0, audit.stdout + audit.stderr)
        return len(served)

    def test_no_descriptor_for_the_upstream_socket_is_said_to_be_mailtap_s_limit(self):
        """The client is accepted, but no descriptor is left for the socket to the server:
        mailtap's own limit, which the 421 and the record say, with what mends it, instead of
        "cannot connect to HOST: Too many open files" (the server blamed)."""
        f = self.fake("good")
        self.check_out_of_descriptors_is_mailtap_s_limit(f, f.address)

    def test_no_descriptor_to_resolve_the_upstream_name_is_said_to_be_mailtap_s_limit(self):
        """Resolving a name opens files too (/etc/hosts): with none left, the resolver fails
        with EMFILE, mailtap's own limit as well, not "cannot resolve localhost: Too many open
        files" (the server's name blamed)."""
        f = self.fake("good")
        self.check_out_of_descriptors_is_mailtap_s_limit(f, f"localhost:{f.port}")

    def test_no_descriptor_for_the_socket_after_the_resolve_is_said_to_be_mailtap_s_limit(self):
        """A descriptor was free when the session began to resolve the server's name, none is
        when it opens the socket to connect (another session took the last one meanwhile):
        still mailtap's own limit, not "cannot connect to HOST: Too many open files". A
        preloaded socket() (socket_emfile.cpp) runs out exactly there."""
        lib = h.HARNESS_ENV.get("MAILTAP_SOCKET_EMFILE_LIB")
        if not lib:
            self.skipTest("MAILTAP_SOCKET_EMFILE_LIB not set (run through ctest)")
        out = self.tmp / "out-of-descriptors"
        env = {"LD_PRELOAD": lib, "MAILTAP_SOCKET_EMFILE_WHEN": str(out),
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        f = self.fake("good")
        db = self.tmp / "connect-fd.db"
        mt = self.mailtap(f.address, tls="none", db=db, env=env)
        out.touch()
        with h.SmtpSocket(mt.port) as c:
            reply = c.reply()
        self.assertEqual(reply.code, 421, reply.text)
        self.assertRegex(reply.text, r"4\.3\.2 mailtap: Too many open files \(mailtap's open-file "
                                     r"limit is \d+\); try again later \(whoever runs mailtap: "
                                     r"raise the limit, ulimit -n or LimitNOFILE=")
        self.assertNotIn("cannot connect", reply.text)
        self.assertEqual(f.wait_sessions(0, timeout=0), [], "the server was reached after all")
        self.assertEqual(mt.stop(timeout=15), 0, mt.stderr)
        row = query(db, "SELECT outcome, outcome_reason FROM sessions ORDER BY id")[-1]
        self.assertEqual(row["outcome"], "error")
        self.assertTrue(row["outcome_reason"].startswith(
            "Too many open files (mailtap's open-file limit is"), row["outcome_reason"])

    def check_out_of_descriptors_is_mailtap_s_limit(self, f, upstream: str):
        import resource

        if "ASAN_OPTIONS" in os.environ:
            self.skipTest("a sanitizer build cannot be checked while it is out of descriptors")
        db = self.tmp / "fd.db"
        mt = self.mailtap(upstream, tls="none", db=db, extra_args=["--threads", "1"])
        descriptors = f"/proc/{mt.proc.pid}/fd"

        def sockets() -> int:
            return sum(os.readlink(f"{descriptors}/{n}").startswith("socket:")
                       for n in os.listdir(descriptors))
        idle = sockets()
        # A first session makes whatever mailtap opens once and keeps (the resolver's).
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_for(lambda: sockets() == idle, what="the first session's sockets closed")
        # Room for one more descriptor: the next client's; its upstream socket gets EMFILE.
        taken = {int(n) for n in os.listdir(descriptors)}
        free = [n for n in range(len(taken) + 2) if n not in taken]
        was = resource.prlimit(mt.proc.pid, resource.RLIMIT_NOFILE, (free[1], free[1]))
        with h.SmtpSocket(mt.port) as c:
            reply = c.reply()
        self.assertEqual(reply.code, 421)
        self.assertIn(f"4.3.2 mailtap: Too many open files (mailtap's open-file limit is "
                      f"{free[1]}); try again later (whoever runs mailtap: raise the limit, "
                      "ulimit -n or LimitNOFILE=, or lower --max-sessions)", reply.text)
        self.assertNotIn("cannot connect", reply.text)
        self.assertNotIn("cannot resolve", reply.text)
        self.assertEqual(mt.stop(timeout=15), 0, mt.stderr)
        row = query(db, "SELECT outcome, outcome_reason FROM sessions ORDER BY id")[-1]
        self.assertEqual(row["outcome"], "error")
        self.assertTrue(row["outcome_reason"].startswith(
            "Too many open files (mailtap's open-file limit is"), row["outcome_reason"])

if __name__ == "__main__":
    h.main()
