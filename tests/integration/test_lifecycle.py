#!/usr/bin/env python3
"""Process life cycle: refusing a non-loopback listener, SIGTERM while idle and during a
session (grace period), SIGHUP (a closed terminal) as the same orderly shutdown, unless mailtap
was started with SIGHUP ignored (nohup); a stop signal during the start held for the handler."""

import os
import pty
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import query, wait_for  # noqa: E402


class ListenTest(h.IntegrationCase):

    def test_non_loopback_listen_refused_without_allow_remote(self):
        f = self.fake("good")
        port = h.free_port()
        mt = h.Mailtap(f.address, ca_file=self.pki.ca_cert, listen=f"0.0.0.0:{port}",
                       ready=False)
        mt.start()
        self.addCleanup(mt.__exit__, None, None, None)
        try:
            rc = mt.wait(timeout=10)
        except Exception:
            self.fail(f"mailtap kept running with --listen 0.0.0.0 and no --allow-remote:\n"
                      f"{mt.output}")
        self.assertNotEqual(rc, 0)
        self.assertNotIn(h.Mailtap.READY_PREFIX, mt.output)
        self.assertTrue(mt.stderr.strip(), "no message on stderr")
        self.assertRegex(mt.stderr, r"allow-remote|loopback")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_loopback_listen_ready_line(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        self.assertTrue(mt.ready_line.startswith(f"mailtap: listening on 127.0.0.1:{mt.port}"),
                        mt.ready_line)
        self.assertIn(f"-> {f.address}", mt.ready_line)
        self.assertIn("starttls", mt.ready_line)


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


class StartRefusalTest(h.IntegrationCase):
    """What keeps the proxy from starting and no restart mends exits 2, a configuration error,
    which the systemd unit does not restart (RestartPreventExitStatus=2); what may pass exits 1
    and is retried. Run as nobody (root may bind any port and write any directory)."""

    def start_as_nobody(self, *args) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env["HOME"] = "/nonexistent"
        return subprocess.run([str(h.mailtap_bin()), "proxy", "--config", "/dev/null",
                               "--upstream", "127.0.0.1:1", *args], capture_output=True,
                              text=True, timeout=30, env=env, stdin=subprocess.DEVNULL,
                              preexec_fn=as_nobody)

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root, to run mailtap as nobody")

    def test_a_privileged_port_is_a_configuration_error(self):
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            if int(f.read()) <= 25:
                self.skipTest("port 25 is not privileged here")
        cp = self.start_as_nobody("--no-record", "--listen", "127.0.0.1:25")
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn("mailtap: cannot listen on 127.0.0.1:25: Permission denied (a port below "
                      "1024 needs root or CAP_NET_BIND_SERVICE: choose one from 1024 up)",
                      cp.stderr)

    def test_a_port_in_use_may_pass_and_is_retried(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            cp = self.start_as_nobody("--no-record", "--listen", f"127.0.0.1:{port}")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn("Address already in use (choose another ADDR:PORT)", cp.stderr)

    def test_a_database_in_a_directory_nobody_may_write_is_a_configuration_error(self):
        """The user's own file, mode 0600, in root's 0755 directory: SQLite said only "attempt
        to write a readonly database", which sends one to the file's mode, which is fine.
        mailtap must make the -wal, -shm and -bodies beside it: the directory is named, with
        its owner and mode, and who mailtap runs as."""
        d = self.tmp / "roots-dir"
        d.mkdir()
        os.chmod(d, 0o755)
        db = d / "m.db"
        first = h.Mailtap(self.fake("good").address, ca_file=self.pki.ca_cert, db=db)
        first.start()
        self.assertEqual(first.stop(), 0, first.stderr)
        for side in ("-wal", "-shm"):
            Path(f"{db}{side}").unlink(missing_ok=True)
        os.chown(db, 65534, 65534)
        if Path(f"{db}-bodies").exists():
            os.chown(f"{db}-bodies", 65534, 65534)
        # Every directory on the way must let nobody in.
        for up in [d, *d.parents]:
            if up == Path("/"):
                break
            os.chmod(up, os.stat(up).st_mode | 0o005)
        cp = self.start_as_nobody("--listen", f"127.0.0.1:{h.free_port()}", "--db", str(db))
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f"cannot record to {db}: ", cp.stderr)
        self.assertIn(f"(mailtap must create the database's -wal and -shm files and its -bodies "
                      f"directory beside it, and '{d}' (owned by root (uid 0), mode 0755) is not "
                      f"writable by nobody (uid 65534), as whom mailtap runs: let this user write "
                      f"in that directory, or choose a database in one it may write)", cp.stderr)
        self.assertNotIn("listening on", cp.stderr)


class ThreadLimitTest(h.IntegrationCase):
    """--threads beyond what the task limit (ulimit -u, systemd's TasksMax, a container's
    pids.max) lets mailtap start: an error naming the cause before it says it listens, not an
    abort after it."""

    UNUSED_UID = 59871  # RLIMIT_NPROC counts the uid's tasks: one nothing else runs as

    def test_a_thread_the_task_limit_refuses_ends_the_start_with_its_cause(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run mailtap as a uid of its own under a task limit")
        import resource

        def few_tasks():
            resource.setrlimit(resource.RLIMIT_NPROC, (3, 3))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.setgroups([])
            os.setgid(self.UNUSED_UID)
            os.setuid(self.UNUSED_UID)

        f = self.fake("good")
        # A home or a test CA that uid cannot read would be an error first: nothing connects.
        nowhere = {"HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"}
        mt = h.Mailtap(f.address, record=False, ready=False,
                       extra_args=["--threads", "8"], env=nowhere, preexec_fn=few_tasks)
        mt.start()
        self.addCleanup(mt.__exit__, None, None, None)
        rc = mt.wait(timeout=10)
        self.assertEqual(rc, 1, mt.output)
        self.assertNotIn(h.Mailtap.READY_PREFIX, mt.output)
        self.assertNotIn("terminate called", mt.output)
        self.assertRegex(mt.stderr, r"cannot start I/O thread \d+ of 8: Resource temporarily "
                                    r"unavailable: lower --threads or raise the task limit")

    def test_print_config_refuses_an_absurd_thread_count(self):
        f = self.fake("good")
        mt = h.Mailtap(f.address, ca_file=self.pki.ca_cert, record=False, ready=False,
                       extra_args=["--threads", "100000", "--print-config"])
        mt.start()
        self.addCleanup(mt.__exit__, None, None, None)
        self.assertEqual(mt.wait(timeout=10), 2, mt.output)
        self.assertIn("--threads 100000: at most 1024", mt.stderr)


class LogDestinationTest(h.IntegrationCase):
    """Under the systemd unit stderr is the journal: every line had priority info, so
    `journalctl -p warning` found no failure. systemd names the stream in $JOURNAL_STREAM
    (DEVICE:INODE) and reads a "<N>" prefix as the line's priority (sd-daemon(3)). A plain file
    (2>>mailtap.log) has nothing that records when a line was written: there each line starts
    with its UTC time. A pipe or a terminal gets the lines as before."""

    def run_to_file(self, extra_args, journal: bool, stop: bool):
        err_path = self.tmp / f"stderr-{h.unique_token()}"
        with open(err_path, "w") as err:
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if journal:
                st = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            proc = subprocess.Popen([str(h.mailtap_bin()), "proxy", "--db", str(self.tmp / "m.db"),
                                     *extra_args], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            if stop:
                wait_for(lambda: "listening on" in err_path.read_text(), 10, "listening line")
                proc.send_signal(signal.SIGTERM)
            self.assertIsNotNone(proc.wait(20))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return err_path.read_text().splitlines()

    def test_journal_lines_carry_their_priority_and_file_lines_their_time(self):
        f = self.fake("good")
        running = ["--upstream", f.address, "--tls", "none", "--listen",
                   f"127.0.0.1:{h.free_port()}"]
        lines = self.run_to_file(running, journal=True, stop=True)
        self.assertTrue(any(l.startswith("<4>mailtap: WARNING: --tls none") for l in lines), lines)
        self.assertTrue(any(l.startswith("<5>mailtap: listening on") for l in lines), lines)
        self.assertTrue(all(re.match(r"<[34567]>mailtap: ", l) for l in lines), lines)
        refused = ["--upstream", f.address, "--listen", f"0.0.0.0:{h.free_port()}"]
        lines = self.run_to_file(refused, journal=True, stop=False)
        self.assertTrue(lines and all(l.startswith("<3>mailtap: ") for l in lines), lines)

        lines = self.run_to_file(running, journal=False, stop=True)
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z mailtap: "
        self.assertTrue(all(re.match(stamp, l) for l in lines), lines)
        self.assertTrue(any(re.match(stamp + "WARNING: --tls none", l) for l in lines), lines)


    def test_usage_errors_are_written_as_the_other_lines(self):
        """docs/proxy.md: to a file each line starts with its time, "the other commands write
        their lines the same way"; CLI11's refusals of an option (and their "Run with --help"
        line) and an unknown command were written without it, and without a journal priority."""
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
        for args in (["show", "--save", ""], ["show", "0x1"], ["sessions", "--limit"],
                     ["proxy", "--threads", "x"], [], ["sesions"]):
            for journal in (False, True):
                with self.subTest(args=args, journal=journal):
                    err_path = self.tmp / f"usage-{h.unique_token()}"
                    with open(err_path, "w") as err:
                        env = dict(os.environ, XDG_CONFIG_HOME=str(self.tmp / "no-config"))
                        env.pop("JOURNAL_STREAM", None)
                        if journal:
                            st = os.fstat(err.fileno())
                            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
                        cp = subprocess.run([str(h.mailtap_bin()), *args],
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=err, env=env, timeout=30)
                    self.assertEqual(cp.returncode, 2)
                    lines = err_path.read_text().splitlines()
                    start = "<3>" if journal else stamp
                    self.assertTrue(lines and re.match(start + "mailtap: ", lines[0]), lines)
                    self.assertTrue(all(re.match(start, l) for l in lines), lines)


class JournalPriorityTest(h.IntegrationCase):
    """Priority 3 (err) is for failures of mailtap's own: a client's failed TLS handshake, a
    server that cannot be reached, the local certificate made at start were all written as
    errors, so `journalctl -p err` showed them among mailtap's own failures. The record holds
    the client's and the server's faults; the log gives them a notice and a warning."""

    def test_only_mailtap_s_own_failures_are_errors_in_the_journal(self):
        import ssl

        err_path = self.tmp / f"journal-{h.unique_token()}"
        port = h.free_port()
        with open(err_path, "w") as err:
            st = os.fstat(err.fileno())
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
                   "XDG_CONFIG_HOME": str(self.tmp / f"config-{h.unique_token()}")}
            proc = subprocess.Popen(
                [str(h.mailtap_bin()), "proxy", "--db", str(self.tmp / "journal.db"),
                 "--upstream", f"127.0.0.1:{h.closed_port()}", "--ca-file",
                 str(self.pki.ca_cert), "--listen", f"127.0.0.1:{port}", "--local-tls",
                 "implicit"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=env)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def line_with(text: str) -> str:
            def found():
                return next((l for l in err_path.read_text().splitlines() if text in l), None)
            return wait_for(found, 15, text)
        line_with("listening on")
        with socket.create_connection(("127.0.0.1", port), timeout=15) as plain:
            plain.sendall(b"EHLO client.test\r\n")  # plain text where TLS is due
            handshake_failed = line_with("TLS handshake failed")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
            with context.wrap_socket(raw) as tls:
                self.assertTrue(tls.recv(500).startswith(b"421 4.4.1 mailtap: cannot connect"))
        refused = line_with(" refused: cannot connect to")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(20), 0)
        lines = err_path.read_text().splitlines()
        self.assertTrue(handshake_failed.startswith("<5>"), handshake_failed)
        self.assertTrue(refused.startswith("<4>"), refused)
        self.assertTrue(line_with("the local TLS certificate").startswith("<5>"), lines)
        self.assertEqual([l for l in lines if l.startswith("<3>")], [])


class StuckUpstream:
    """For the tests of a server that stops reading (mixed into an IntegrationCase)."""

    def stuck_upstream(self, answer: Optional[threading.Event] = None,
                       body_read: int = 0) -> int:
        """A server that answers DATA with 354 and never reads again (after `body_read` octets
        of the body), on a small receive buffer; its port. Once `answer` is set it answers an
        end of data and a QUIT it never read (250, 221), as a server that stopped reading may
        (it cannot know they came)."""
        def upstream(c):
            f = c.makefile("rb")
            c.sendall(b"220 stuck ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                if line[:4].upper() == b"EHLO":
                    c.sendall(b"250-stuck\r\n250 PIPELINING\r\n")
                elif line[:4].upper() == b"DATA":
                    c.sendall(b"354 go\r\n")
                    left = body_read
                    while left > 0:
                        left -= len(f.read1(min(left, 65536)) or b"x" * left)
                    if answer is not None:
                        answer.wait(30)
                        c.sendall(b"250 2.0.0 queued\r\n221 2.0.0 bye\r\n")
                    return  # and never reads again
                else:
                    c.sendall(b"250 ok\r\n")

        return self.one_connection_upstream(upstream, rcvbuf=4096)

    def one_connection_upstream(self, serve, rcvbuf: int) -> int:
        """A listening socket (receive buffer `rcvbuf`) whose one connection `serve(conn)`
        runs in a thread, closed at the test's end; its port."""
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        held = []

        def run():
            c, _ = srv.accept()
            held.append(c)
            serve(c)

        threading.Thread(target=run, daemon=True).start()
        self.addCleanup(lambda: [c.close() for c in held])
        return srv.getsockname()[1]

    @staticmethod
    def unsent_to(port: int) -> int:
        """What the sockets connected to 127.0.0.1:`port` hold unsent (tx_queue, in
        /proc/net/tcp): mailtap's upstream socket, here."""
        total = 0
        with open("/proc/net/tcp") as f:
            for row in f.readlines()[1:]:
                fields = row.split()
                if int(fields[2].split(":")[1], 16) == port and fields[3] == "01":
                    total += int(fields[4].split(":")[0], 16)
        return total

    @staticmethod
    def flood(c, seconds: float = 3):
        """Sends body lines for `seconds`, as far as every buffer on the way to a server that
        does not read takes them."""
        c.sock.setblocking(False)
        line, deadline = b"x" * 998 + b"\r\n", time.monotonic() + seconds
        while time.monotonic() < deadline:  # until every buffer on the way is full
            try:
                c.sock.send(line * 64)
            except BlockingIOError:
                time.sleep(0.05)
        c.sock.setblocking(True)


class SigtermTest(StuckUpstream, h.IntegrationCase):

    def test_idle_exits_zero(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        t0 = time.monotonic()
        rc = mt.stop(timeout=10)
        self.assertEqual(rc, 0, mt.output)
        self.assertLess(time.monotonic() - t0, 5, "idle proxy slow to exit on SIGTERM")

    def test_stop_signals_after_the_stopped_line_still_exit_zero(self):
        """A repeated Ctrl-C, or a supervisor repeating its TERM, may come once the shutdown is
        done ("mailtap: stopped") while mailtap still tears down: it must not turn the clean
        stop into a death by that signal (exit 143/130). Signals are sent until it exits."""
        for trial in range(3):
            proc = subprocess.Popen(
                [str(h.mailtap_bin()), "proxy", "--listen", f"127.0.0.1:{h.free_port()}",
                 "--upstream", "127.0.0.1:1", "--db", str(self.tmp / f"again{trial}.db")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                lines = [proc.stderr.readline()]
                while lines[-1] and b"listening on" not in lines[-1]:
                    lines.append(proc.stderr.readline())
                proc.send_signal(signal.SIGTERM)
                while lines[-1] and b"mailtap: stopped" not in lines[-1]:
                    lines.append(proc.stderr.readline())
                self.assertIn(b"mailtap: stopped", lines[-1], lines)
                stop_signals = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
                sent = 0
                while proc.poll() is None:
                    proc.send_signal(stop_signals[sent % 3])
                    sent += 1
                    time.sleep(0.0005)
                self.assertEqual(proc.returncode, 0,
                                 f"trial {trial}: killed by a stop signal after 'stopped'")
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stderr.close()

    def test_after_completed_sessions_exits_zero(self):
        f = self.fake("good")
        mt = self.mailtap(f.address)
        for _ in range(2):
            with h.SmtpSocket(mt.port) as c:
                c.reply()
                c.cmd("EHLO client.test")
                self.assertEqual(c.cmd("QUIT").code, 221)
        t0 = time.monotonic()
        self.assertEqual(mt.stop(timeout=10), 0, mt.output)
        self.assertLess(time.monotonic() - t0, 5)

    def test_in_progress_session_finishes_within_grace(self):
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--grace", "10s"])
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)

        mt.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(mt.alive(), "exited at once despite a session in progress")
        # the session carries on
        self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        self.assertEqual(c.cmd(b"Subject: grace\r\n\r\nfinished in grace\r\n.").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)
        c.close()
        rc = mt.wait(timeout=8)
        self.assertEqual(rc, 0, mt.output)
        s = f.wait_sessions(1)[0]
        self.assertEqual(s.messages, [b"Subject: grace\r\n\r\nfinished in grace\r\n.\r\n"])

    def test_no_new_sessions_after_sigterm(self):
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--grace", "10s"])
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        c.reply()
        mt.signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertTrue(mt.alive())
        try:
            with h.SmtpSocket(mt.port, timeout=3) as c2:
                r = c2.reply()
                self.assertNotEqual(r.code, 220, "new session accepted after SIGTERM")
        except (OSError, EOFError):
            pass  # listener closed or connection dropped: both fine
        c.cmd("QUIT")
        c.close()
        self.assertEqual(mt.wait(timeout=8), 0, mt.output)

    def test_grace_expiry_ends_stuck_session(self):
        f = self.fake("good")
        mt = self.mailtap(f.address, extra_args=["--grace", "1s"])
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        c.reply()
        c.cmd("EHLO client.test")
        t0 = time.monotonic()
        mt.signal(signal.SIGTERM)
        try:
            mt.wait(timeout=8)
        except Exception:
            self.fail("mailtap still running 8s after SIGTERM with --grace 1s")
        self.assertGreater(time.monotonic() - t0, 0.5, "did not wait for the session at all")
        self.assertTrue(c.is_closed(3), "client connection left open")

    def test_a_client_still_writing_its_body_at_the_stop_reads_the_421(self):
        """A client in the middle of a body when the grace period ends, which goes on writing
        it without looking for a reply (mutt), and reads only after its end of data: mailtap's
        421 is there to read, not a reset for its next write (mutt died of SIGPIPE, its user
        never saw why). What it wrote after the 421 is thrown away, counted in the note after
        the end."""
        f = self.fake("good")
        db = self.tmp / "midbody.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--grace", "1s"])
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        line = b"y" * 76 + b"\r\n"
        c.send(b"Subject: cut off\r\n\r\n")
        mt.signal(signal.SIGTERM)
        # Writes on until the 421 has come (the grace period is over), then 200 lines more.
        after = None
        while after is None or after < 200:
            c.sock.sendall(line)
            time.sleep(0.002)
            if after is not None:
                after += 1
            elif select.select([c.sock], [], [], 0)[0]:
                after = 0
        c.sock.sendall(b".\r\n")
        r = c.reply()
        self.assertEqual(r.code, 421, r)
        self.assertIn("4.3.2 mailtap: shutting down", r.text)
        c.close()
        self.assertEqual(mt.wait(timeout=15), 0, mt.output)
        [(note,)] = query(db, "SELECT note FROM events WHERE note LIKE '%discarded unread%'")
        self.assertRegex(note, r"^\d+ octets the client sent after the end were discarded unread$")

    def test_a_stop_right_after_the_end_keeps_the_note_written_after_it(self):
        """The note the lingering close leaves after a session's end (octets the client sent
        after the 221) is written after the closing record; a stop that comes at that moment
        waits for it (nothing recorded is lost): each of a few runs has it in the database once
        mailtap exited, whichever comes first, the stop or the client's bytes being read."""
        f = self.fake("good")
        for trial in range(5):
            db = self.tmp / f"after-end-{trial}.db"
            mt = self.mailtap(f.address, db=db)
            with h.SmtpSocket(mt.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                self.assertEqual(c.cmd("QUIT").code, 221)
                c.send(b"NOOP\r\n")
                mt.signal(signal.SIGTERM)
                self.assertTrue(c.is_closed(5), "no end after the 221")
            self.assertEqual(mt.wait(timeout=15), 0, mt.output)
            notes = [r["note"] for r in query(db, "SELECT note FROM events WHERE note LIKE "
                                                  "'%after the end%'")]
            self.assertEqual(notes, ["6 octets the client sent after the end were discarded "
                                     "unread"], f"run {trial}: {mt.output}")

    def message_awaiting_its_reply(self, name: str, body_pause: float, extra_args=()):
        """A proxy (recording to NAME.db, --grace 1s) whose server answers the end of data
        BODY_PAUSE s after the 354; a client that has sent the whole message, then SIGTERM."""
        f = self.fake("good", body_pause=body_pause)
        db = self.tmp / f"{name}.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--grace", "1s", *extra_args])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        c.send(b"Subject: slow filter\r\n\r\nthe whole message\r\n.\r\n")
        time.sleep(0.3)
        mt.signal(signal.SIGTERM)
        return f, mt, c, db

    def assert_told_it_may_have_the_message(self, mt, c, db, outcome: str):
        """The client's 421 and the record say the server may have the message, never "try
        again" (a client that obeys would send it twice)."""
        final = c.reply()
        self.assertEqual(final.code, 421, final.text)
        self.assertIn("may have the message", final.text)
        self.assertNotIn("try again", final.text)
        self.assertEqual(mt.wait(timeout=10), 0, mt.output)
        rows = query(db, "SELECT outcome, outcome_reason FROM sessions")
        self.assertEqual(rows[0]["outcome"], outcome)
        self.assertIn("may have the message", rows[0]["outcome_reason"])

    def test_shutdown_waits_for_the_reply_to_an_end_of_data_sent(self):
        """The server has the whole message when the grace period ends: a 421 "try again" then
        would have a client send it twice. The reply comes, relayed and recorded, then the
        session ends."""
        f, mt, c, db = self.message_awaiting_its_reply("eod-shutdown", body_pause=3.0)
        final = c.reply()
        self.assertEqual(final.code, 250, final.text)
        self.assertTrue(c.is_closed(5), "the session ends once the reply is relayed")
        self.assertEqual(mt.wait(timeout=10), 0, mt.output)
        self.assertIn("has answered the end of data", mt.stderr)
        self.assertEqual(len(f.wait_sessions(1)[0].messages), 1)
        rows = query(db, "SELECT final_code, final_reply FROM messages")
        self.assertEqual([r["final_code"] for r in rows], [250])

    def test_shutdown_bound_by_timeout_data_says_the_server_may_have_the_message(self):
        _, mt, c, db = self.message_awaiting_its_reply("eod-timeout", body_pause=6.0,
                                                       extra_args=["--timeout-data", "2s"])
        self.assert_told_it_may_have_the_message(mt, c, db, "timeout")

    def test_a_signal_after_the_grace_period_ends_the_wait_for_the_end_of_data_reply(self):
        """A person pressing Ctrl-C again (or a service manager in a hurry) is not held for
        --timeout-data: the next signal after the grace period ends the wait."""
        _, mt, c, db = self.message_awaiting_its_reply("eod-insist", body_pause=30.0)
        wait_for(lambda: "has answered the end of data" in mt.stderr, 10,
                 f"the wait for the reply said on stderr:\n{mt.stderr}")
        mt.signal(signal.SIGTERM)
        self.assert_told_it_may_have_the_message(mt, c, db, "shutdown")

    def test_shutdown_ends_a_connect_under_way_at_once(self):
        """An upstream that does not answer the connect (its accept queue full): a shutdown
        ends the connect at once instead of waiting out --timeout-connect."""
        ls = socket.socket()
        self.addCleanup(ls.close)
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        for _ in range(3):  # fill the accept queue: later SYNs are dropped
            s = socket.socket()
            self.addCleanup(s.close)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        mt = self.mailtap(f"127.0.0.1:{port}", record=False,
                          extra_args=["--timeout-connect", "20s", "--grace", "1s"])
        c = socket.create_connection(("127.0.0.1", mt.port), timeout=30)
        self.addCleanup(c.close)
        time.sleep(1.0)  # the session is connecting
        started = time.monotonic()
        mt.signal(signal.SIGTERM)
        time.sleep(0.2)
        mt.signal(signal.SIGTERM)
        self.assertTrue(c.recv(4096).startswith(b"421 4.3.2"))
        self.assertEqual(mt.wait(timeout=30), 0, mt.output)
        self.assertLess(time.monotonic() - started, 10, "not held for --timeout-connect")

    def test_shutdown_during_mailtap_s_own_handshake_says_mailtap_stopped(self):
        """The server answers STARTTLS with 220 and never starts its side of the handshake:
        a shutdown then ends mailtap's own handshake. The record says mailtap stopped, not that
        the handshake "failed: Operation aborted." (what the cancelled wait returns)."""
        handshake_due = threading.Event()

        def stalls_after_starttls(c):
            f = c.makefile("rb")
            c.sendall(b"220 slow ESMTP\r\n")
            f.readline()
            c.sendall(b"250-slow\r\n250 STARTTLS\r\n")
            f.readline()
            c.sendall(b"220 2.0.0 go ahead\r\n")
            f.read1(1)  # the ClientHello's first octets: mailtap waits in its handshake
            handshake_due.set()
            f.read()  # the rest, unanswered, until mailtap closes

        db = self.tmp / "uptls.db"
        port = self.one_connection_upstream(stalls_after_starttls, rcvbuf=65536)
        mt = self.mailtap(f"127.0.0.1:{port}", db=db,
                          extra_args=["--timeout-connect", "20s", "--grace", "1s", "-v"])
        c = socket.create_connection(("127.0.0.1", mt.port), timeout=30)
        self.addCleanup(c.close)
        self.assertTrue(handshake_due.wait(10), "mailtap began its handshake")
        mt.signal(signal.SIGTERM)
        self.assertTrue(c.recv(4096).startswith(b"421 4.3.2 mailtap: shutting down"))
        self.assertEqual(mt.wait(timeout=30), 0, mt.output)
        session = query(db, "SELECT outcome, outcome_reason FROM sessions")[0]
        self.assertEqual(session["outcome"], "shutdown")
        # Worded as every shutdown's reason, not as the 421's advice to the client.
        self.assertEqual(session["outcome_reason"],
                         f"mailtap shut down during the set-up with 127.0.0.1:{port}")
        notes = " ".join(r["note"] for r in query(db, "SELECT note FROM events WHERE note "
                                                      "IS NOT NULL ORDER BY seq"))
        self.assertIn(f"TLS handshake with 127.0.0.1:{port} not finished: mailtap shut down "
                      "during it", notes)
        self.assertNotIn("Operation aborted", notes + mt.stderr)

    def test_a_server_that_stopped_reading_does_not_hold_the_shutdown(self):
        """The server answers DATA with 354 and never reads again; the client's body fills
        every buffer. The shutdown's 421 ends the session: the body still queued for that server
        is dropped (recorded as not sent), not written for ever, so mailtap exits."""
        db = self.tmp / "stuck.db"
        mt = self.mailtap(f"127.0.0.1:{self.stuck_upstream()}", tls="none", db=db,
                          extra_args=["--grace", "1s"])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        self.flood(c)
        mt.signal(signal.SIGTERM)
        self.assertEqual(mt.wait(timeout=20), 0, mt.output)
        rows = query(db, "SELECT outcome FROM sessions")
        self.assertEqual(rows[0]["outcome"], "shutdown")
        notes = query(db, "SELECT note FROM events WHERE note LIKE 'not sent upstream%'")
        self.assertTrue(notes, "what the server never got is recorded as not sent")

    def end_with_output_the_server_does_not_read(self, ending: str, timeout_command: str):
        """Relays a message to stuck_upstream, which answers its end and the QUIT after it
        (`ending` "quit"; "close": the client closes after the end of data instead, and mailtap
        sends the QUIT) unread: the dialogue ends with the body's tail still queued for the
        server. Returns mailtap, its --db and the client, whose replies (250, and 221 after
        a QUIT) wait for the session's record, closed once that tail went or was dropped."""
        chunk = (b"x" * 998 + b"\r\n") * 64
        answer = threading.Event()
        port = self.stuck_upstream(answer)
        db = self.tmp / f"drain-{ending}-{timeout_command}.db"
        mt = self.mailtap(f"127.0.0.1:{port}", tls="none", db=db,
                          extra_args=["--grace", "1s", "--timeout-command", timeout_command])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        # Until mailtap's socket to the server is full: the rest waits in mailtap, below the
        # amount that stops it reading the client, which so reads it all.
        unsent = -1
        while unsent != (unsent := self.unsent_to(port)) or unsent == 0:
            c.send(chunk)
            time.sleep(0.05)
        c.send(chunk + b".\r\n" + (b"QUIT\r\n" if ending == "quit" else b""))
        if ending == "close":
            c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        answer.set()
        return mt, db, c

    def assert_replies(self, c, ending: str):
        self.assertEqual(c.reply().code, 250)
        if ending == "quit":
            self.assertEqual(c.reply().code, 221)

    def assert_recorded_as_not_sent(self, db, outcome: str, why: str):
        rows = query(db, "SELECT outcome, bytes_client_to_upstream FROM sessions")
        self.assertEqual(rows[0]["outcome"], outcome)
        notes = query(db, "SELECT note, wire_size FROM events "
                          "WHERE note LIKE 'not sent upstream: %'")
        self.assertEqual(len(notes), 1, "what the server never got is recorded")
        self.assertIn(why, notes[0]["note"])
        relayed = query(db, "SELECT sum(wire_size) AS n FROM events "
                            "WHERE direction = 'client_to_upstream'")[0]["n"]
        self.assertEqual(rows[0]["bytes_client_to_upstream"], relayed - notes[0]["wire_size"],
                         "the count leaves it out")

    def test_output_a_server_does_not_read_after_the_end_is_dropped_in_time(self):
        """The client pipelines a body, its end and QUIT (or closes instead of the QUIT) to a
        server that stopped reading after its 354 but answers them all the same: the dialogue
        ends (quit, client_closed) with the body still queued for that server. That output gets
        --timeout-command: then it is dropped and recorded as not sent, and the session ends
        (before, it was written for ever, and no signal could end mailtap)."""
        for ending, outcome in (("quit", "quit"), ("close", "client_closed")):
            with self.subTest(ending=ending):
                mt, db, c = self.end_with_output_the_server_does_not_read(ending, "2s")
                started = time.monotonic()
                self.assert_replies(c, ending)
                c.close()  # its replies read, the client goes (no lingering close to wait out)
                wait_for(lambda: "session 1 ended" in mt.output, timeout=10,
                         what=f"the session's end\n{mt.output}")
                self.assertLess(time.monotonic() - started, 8, mt.output)
                mt.signal(signal.SIGTERM)
                self.assertEqual(mt.wait(timeout=20), 0, mt.output)
                self.assert_recorded_as_not_sent(db, outcome, "(--timeout-command)")

    def test_a_shutdown_ends_the_wait_for_a_server_to_take_output_after_the_end(self):
        """As above, with a limit far away: the shutdown after the grace period drops that
        output at once, and mailtap exits."""
        mt, db, c = self.end_with_output_the_server_does_not_read("quit", "5m")
        time.sleep(1)  # the server's 221 came: the dialogue is over, its tail still queued
        started = time.monotonic()
        mt.signal(signal.SIGTERM)
        self.assertEqual(mt.wait(timeout=20), 0, mt.output)
        self.assertLess(time.monotonic() - started, 8, "held after the 1s grace period")
        self.assert_replies(c, "quit")
        self.assert_recorded_as_not_sent(db, "quit", "mailtap shut down before the server")


class StuckServerTimeoutTest(StuckUpstream, h.IntegrationCase):

    def test_a_client_held_back_for_a_server_that_does_not_read_is_not_called_idle(self):
        """The server stopped reading after its 354: mailtap stops reading the client once
        1 MiB waits for that server, and the client's line clock runs out. The 421 and the
        record name the server not taking the data, not a client idle (it was not)."""
        db = self.tmp / "held.db"
        mt = self.mailtap(f"127.0.0.1:{self.stuck_upstream()}", tls="none", db=db,
                          extra_args=["--timeout-data", "3s"])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        self.flood(c, seconds=1)  # buffers full, well before the 3s are up
        reply = c.reply()
        self.assertEqual(reply.code, 421, reply)
        self.assertIn("127.0.0.1 did not take the data", str(reply))
        self.assertNotIn("idle", str(reply))
        [row] = wait_for(lambda: query(db, "SELECT outcome, outcome_reason FROM sessions "
                                           "WHERE ended_at IS NOT NULL"),
                         what="the session's end")
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "upstream did not take the data in time"))

    def test_a_server_that_stops_reading_mid_body_is_blamed_while_the_client_keeps_sending(self):
        """The server takes 2 MiB of the body and then no more; the client keeps sending all
        the while, as a client with a large message does. The 421 and the record name the server
        not taking the data, not the client."""
        db = self.tmp / "midbody.db"
        mt = self.mailtap(f"127.0.0.1:{self.stuck_upstream(body_read=2 * 1024 * 1024)}",
                          tls="none", db=db, extra_args=["--timeout-data", "3s"])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        c.sock.setblocking(False)
        chunk, got, deadline = (b"x" * 998 + b"\r\n") * 64, b"", time.monotonic() + 40
        while not re.search(rb"(^|\n)\d{3} [^\n]*\n", got) and time.monotonic() < deadline:
            readable, writable, _ = select.select([c.sock], [c.sock], [], 0.2)
            if writable:
                try:
                    c.sock.send(chunk)
                except (BlockingIOError, ConnectionError):
                    pass
            if readable:
                try:
                    data = c.sock.recv(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                got += data
        reply = got.decode("ascii", "replace")
        self.assertTrue(reply.startswith("421 "), f"{reply!r}\n{mt.output}")
        self.assertIn("127.0.0.1 did not take the data", reply)
        self.assertNotIn("idle", reply)
        self.assertNotIn("the client's", reply)
        [row] = wait_for(lambda: query(db, "SELECT outcome, outcome_reason FROM sessions "
                                           "WHERE ended_at IS NOT NULL"),
                         what="the session's end")
        self.assertEqual((row["outcome"], row["outcome_reason"]),
                         ("timeout", "upstream did not take the data in time"))


    def slow_steady_upstream(self, fast: int, piece: int, every: float) -> int:
        """A server that reads the first `fast` octets of a body at once, then `piece` octets
        every `every` seconds (it never stops taking it), and answers its end with 250; its
        port. Its receive buffer is fixed (256 KiB), not grown: what its kernel acknowledged
        is then near what it read."""
        def upstream(c):
            f = c.makefile("rb")
            c.sendall(b"220 slow ESMTP\r\n")
            while line := f.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    c.sendall(b"250-slow\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    taken, tail = 0, b""
                    while not tail.endswith(b"\r\n.\r\n"):
                        data = f.read1(65536 if taken < fast else piece)
                        if not data:
                            return
                        taken += len(data)
                        tail = (tail + data)[-5:]
                        if taken >= fast:
                            time.sleep(every)
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")

        return self.one_connection_upstream(upstream, rcvbuf=256 << 10)

    def body_under_way_to_a_slow_steady_server(self, db_name: str):
        """mailtap with --timeout-data 2s before slow_steady_upstream (2 MiB at once, then
        128 KiB every 0.3 s) and a client past DATA's 354: the database, mailtap, the client
        and the 1000-octet body line both cases send."""
        db = self.tmp / db_name
        port = self.slow_steady_upstream(fast=2 << 20, piece=128 << 10, every=0.3)
        mt = self.mailtap(f"127.0.0.1:{port}", tls="none", db=db,
                          extra_args=["--timeout-data", "2s"])
        c = h.SmtpSocket(mt.port, timeout=120)
        self.addCleanup(c.close)
        h.start_data(c)
        return db, mt, c, b"x" * 998 + b"\r\n"

    def test_a_slow_server_that_keeps_taking_the_body_gets_it_all(self):
        """The server takes the body slowly but steadily (128 KiB every 0.3s, after its first
        2 MiB), more slowly than the client sends it: mailtap holds the client back, and its
        socket to the server says there is room only each time a third of its queue has gone,
        longer apart than --timeout-data. Each 64 KiB the server takes restarts its clock: the
        message goes through (250), as it would have without mailtap."""
        db, mt, c, line = self.body_under_way_to_a_slow_steady_server("slow-steady.db")
        sender = threading.Thread(target=lambda: c.sock.sendall(line * (8 << 10) + b".\r\n"),
                                  daemon=True)
        sender.start()
        reply = c.reply()
        self.assertEqual(reply.code, 250, f"{reply}\n{mt.output}")
        sender.join(30)
        self.assertEqual(c.cmd(b"QUIT").code, 221)
        [row] = wait_for(lambda: query(db, "SELECT outcome FROM sessions "
                                           "WHERE ended_at IS NOT NULL"),
                         what="the session's end")
        self.assertEqual(row["outcome"], "quit")

    def test_a_client_that_stops_once_a_slow_server_took_what_waited_is_the_one_blamed(self):
        """The same server, and a client that sends 8 MiB of the body and then nothing: while
        mailtap holds the client back the server is on the clock and keeps taking the body;
        once mailtap reads the client again, the client is, and the 421 says the client was
        idle, not that the server did not take the data."""
        db, mt, c, line = self.body_under_way_to_a_slow_steady_server("slow-then-idle.db")
        threading.Thread(target=lambda: c.sock.sendall(line * (8 << 10)), daemon=True).start()
        reply = c.reply()
        self.assertEqual(reply.code, 421, f"{reply}\n{mt.output}")
        self.assertIn("idle for 2s waiting for the client", reply.text)
        self.assertNotIn("did not take", reply.text)
        [row] = wait_for(lambda: query(db, "SELECT outcome, outcome_reason FROM sessions "
                                           "WHERE ended_at IS NOT NULL"),
                         what="the session's end")
        self.assertEqual((row["outcome"], row["outcome_reason"]), ("timeout", "client idle timeout"))

    def test_an_end_of_data_that_never_left_mailtap_has_no_message_row(self):
        """The server stopped reading inside the body: the end of data is still queued in
        mailtap when --timeout-data ends the session, and is dropped unwritten. The server
        cannot have that message, so the record has no row for it (the 421 cannot tell how
        far the server read, and says to check)."""
        db = self.tmp / "unsent-end.db"
        port = self.stuck_upstream()
        mt = self.mailtap(f"127.0.0.1:{port}", tls="none", db=db,
                          extra_args=["--timeout-data", "2s"])
        c = h.SmtpSocket(mt.port, timeout=20)
        self.addCleanup(c.close)
        h.start_data(c)
        chunk = (b"x" * 998 + b"\r\n") * 64
        # Until mailtap's socket to the server is full: the rest waits in mailtap.
        unsent = -1
        while unsent != (unsent := self.unsent_to(port)) or unsent == 0:
            c.send(chunk)
            time.sleep(0.05)
        c.send(chunk + b".\r\n")
        reply = c.reply()
        self.assertEqual(reply.code, 421, reply)
        self.assertIn("127.0.0.1 did not take the data within 2s; it may have the message",
                      reply.text)
        [row] = wait_for(lambda: query(db, "SELECT id, outcome FROM sessions "
                                           "WHERE ended_at IS NOT NULL"),
                         what="the session's end")
        self.assertEqual(row["outcome"], "timeout")
        unsent_notes = query(db, "SELECT note FROM events WHERE note LIKE 'not sent upstream: %'")
        self.assertEqual(len(unsent_notes), 1, "the end of data was not left queued in mailtap")
        self.assertEqual(query(db, "SELECT * FROM messages"), [],
                         "a message whose end never left mailtap has a row")

class SighupTest(h.IntegrationCase):
    """Closing the terminal (or the SSH session) that runs `mailtap proxy` sends SIGHUP: the
    sessions in flight are told and recorded, as on SIGTERM, not cut off."""

    def test_sighup_shuts_down_in_order(self):
        f = self.fake("good")
        db = self.tmp / "sighup.db"
        mt = self.mailtap(f.address, db=db, extra_args=["--grace", "1s"])
        c = h.SmtpSocket(mt.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        mt.signal(signal.SIGHUP)
        r = c.reply(timeout=8)
        self.assertEqual(r.code, 421, r.text)
        self.assertIn("shutting down", r.text)
        self.assertEqual(mt.wait(timeout=8), 0, mt.output)
        self.assertIn("stopped", mt.stderr)
        rows = query(db, "SELECT outcome, ended_at FROM sessions")
        self.assertEqual([(r["outcome"], r["ended_at"] is not None) for r in rows],
                         [("shutdown", True)])

    def test_inherited_sighup_ignore_is_kept(self):
        """`nohup mailtap proxy &` (or `trap '' HUP`) starts mailtap with SIGHUP ignored so that
        it outlives the terminal: the HUP of a closing terminal must not stop it."""
        f = self.fake("good")
        mt = self.mailtap(f.address,
                          preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        mt.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertTrue(mt.alive(), f"stopped on SIGHUP it was started ignoring:\n{mt.output}")
        with h.SmtpSocket(mt.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertEqual(mt.stop(timeout=10), 0, mt.output)


class StopSignalAtStartTest(h.IntegrationCase):
    """A stop signal that comes while mailtap starts, before its handler is in place (a service
    manager's stop right after its start, a Ctrl-C at once): it is held until the handler is
    there, then it is the orderly stop (exit 0, "stopped"), not a death by signal. The start is
    held where it waits for another process's write lock to open the database, so the signal
    deterministically comes before the handler."""

    def start_with_the_database_locked(self, name: str, **popen) -> tuple:
        """mailtap started on a database whose write lock this test holds, once it has the
        database open (it waits for the lock): the process and the lock holder's connection."""
        db = self.tmp / name
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN IMMEDIATE")
        proc = subprocess.Popen(
            [str(h.mailtap_bin()), "proxy", "--listen", f"127.0.0.1:{h.free_port()}",
             "--upstream", "127.0.0.1:1", "--db", str(db)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            **popen)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def opened_the_database():
            try:
                return any(os.readlink(f"/proc/{proc.pid}/fd/{fd}") == str(db)
                           for fd in os.listdir(f"/proc/{proc.pid}/fd"))
            except OSError:  # a descriptor closed while looked at, or the process gone
                return False
        wait_for(opened_the_database, what="mailtap to open the database")
        return proc, holder

    def test_each_stop_signal_during_the_start_is_an_orderly_stop(self):
        for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with self.subTest(signal=signo.name):
                proc, holder = self.start_with_the_database_locked(f"{signo.name}.db")
                proc.send_signal(signo)
                holder.execute("ROLLBACK")
                holder.close()
                _, err = proc.communicate(timeout=30)
                self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
                self.assertIn(b"mailtap: listening on", err)
                self.assertTrue(err.rstrip().endswith(b"mailtap: stopped"), err)

    def test_a_stop_signal_while_the_config_file_is_read_stops_mailtap(self):
        """`--config FIFO` that nobody writes (a mistaken path, a helper that died): a stop signal
        still ends the wait (the stop signals were once held from the start of main, and only
        SIGKILL ended it), and it ends it as it stops mailtap anywhere else: exit status 0 and a
        "stopped" line, not a death by the signal (status 143 for a service manager, no word on
        stderr)."""
        for signo in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=signo.name):
                fifo = self.tmp / f"config-{signo.name}.fifo"
                os.mkfifo(fifo, 0o600)
                proc = subprocess.Popen(
                    [str(h.mailtap_bin()), "proxy", "--listen", f"127.0.0.1:{h.free_port()}",
                     "--upstream", "127.0.0.1:1", "--no-record", "--config", str(fifo)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                self.addCleanup(proc.stderr.close)
                self.addCleanup(lambda p=proc: p.poll() is None and (p.kill(), p.wait()))

                def waiting_for_the_fifo(p=proc):
                    try:
                        with open(f"/proc/{p.pid}/wchan") as f:
                            wchan = f.read().strip()
                    except OSError:
                        return False
                    return wchan in ("wait_for_partner", "fifo_open") or "poll" in wchan
                wait_for(waiting_for_the_fifo, what="mailtap to wait for its config FIFO")
                proc.send_signal(signo)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.fail(f"{signo.name} did not end mailtap waiting for its config file")
                err = proc.stderr.read()
                self.assertEqual(proc.returncode, 0, err)
                self.assertEqual(
                    err, f"mailtap: stopped ({signo.name}) while reading the config file "
                         f"{fifo}\n".encode())

    def test_a_sighup_during_the_start_is_still_ignored_under_nohup(self):
        proc, holder = self.start_with_the_database_locked(
            "nohup.db", preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        proc.send_signal(signal.SIGHUP)
        holder.execute("ROLLBACK")
        holder.close()
        line = proc.stderr.readline()
        while line and b"listening on" not in line:
            line = proc.stderr.readline()
        self.assertIn(b"listening on", line)
        time.sleep(0.5)  # a HUP not discarded would be taken by now
        self.assertIsNone(proc.poll(), "stopped by a SIGHUP it was started ignoring")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))


    def test_ctrl_c_at_the_password_prompt_still_has_its_usual_effect(self):
        """The stop signals held during the start are not held at mailtap's own password prompt:
        Ctrl-C there ends mailtap as it ends any command (docs/auth.md), echo restored first."""
        pid, terminal = pty.fork()
        if pid == 0:  # child
            os.execv(str(h.mailtap_bin()),
                     ["mailtap", "proxy", "--listen", f"127.0.0.1:{h.closed_port()}",
                      "--upstream", "127.0.0.1:1", "--no-record", "--auth-user", "alice"])
        try:
            wait_for(lambda: not termios.tcgetattr(terminal)[3] & termios.ECHO,
                     what="the prompt, echo off")
            os.write(terminal, b"half a passw\x03")
            _, status = os.waitpid(pid, 0)
            modes = termios.tcgetattr(terminal)[3]
        finally:
            os.close(terminal)
        self.assertEqual(os.waitstatus_to_exitcode(status), -signal.SIGINT)
        self.assertTrue(modes & termios.ECHO, "echo restored")


class PasswordCommandStopTest(h.IntegrationCase):
    """A stop (SIGTERM from a script, a supervisor without cgroups) while --password-cmd still
    runs at start: the helper (a `pass`, a `gpg -d` waiting on pinentry) is ended with mailtap,
    not left behind as an orphan, and mailtap says why it stopped."""

    def start_with_helper(self, helper: str, pid_file) -> tuple:
        """mailtap started with --password-cmd `helper`, which writes its shell's pid to
        `pid_file`: the running mailtap and the helper's process group (its shell leads a group
        of its own, so its pid is the group's id), killed at cleanup if still alive."""
        f = self.fake("good")
        mt = h.Mailtap(f.address, ca_file=self.pki.ca_cert, ready=False,
                       extra_args=["--auth-user", "alice", "--password-cmd", helper])
        mt.start()
        self.addCleanup(mt.__exit__, None, None, None)
        pgid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                            what="the password command to write its pid"))

        def kill_helper():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.addCleanup(kill_helper)
        return mt, pgid

    def assertStoppedBySigterm(self, mt: h.Mailtap) -> None:
        mt.signal(signal.SIGTERM)
        self.assertEqual(mt.wait(timeout=10), 0, mt.output)
        self.assertNotIn(h.Mailtap.READY_PREFIX, mt.output)
        self.assertIn("mailtap: --password-cmd was ended: mailtap was stopped (SIGTERM) while it "
                      "ran", mt.stderr)

    def test_a_signal_while_the_password_command_runs_ends_it_and_says_so(self):
        pid_file = self.tmp / "helper.pid"
        mt, pgid = self.start_with_helper(f"echo $$ > {pid_file}; sleep 30; echo pw", pid_file)

        def helper_alive():
            try:
                os.killpg(pgid, 0)
                return True
            except ProcessLookupError:
                return False
        self.assertStoppedBySigterm(mt)
        try:
            wait_for(lambda: not helper_alive(), what="the password command to end")
        except AssertionError:
            self.fail("the --password-cmd outlived mailtap (an orphan)")

    def test_a_signal_after_the_password_was_printed_still_stops_mailtap(self):
        """The helper printed the password and closed its stdout, but has not exited (it tidies
        up, an agent lingers): a stop then is not swallowed, mailtap does not go on to listen
        (it ends before the helper's own end, 30 s on)."""
        pid_file = self.tmp / "done-helper.pid"
        mt, _ = self.start_with_helper(f"echo pw; exec >&-; echo $$ > {pid_file}; sleep 30",
                                       pid_file)
        self.assertStoppedBySigterm(mt)

    def test_ctrl_c_at_the_helpers_prompt_stops_mailtap_in_plain_words(self):
        """The helper holds the terminal while it runs (it may ask there), so the Ctrl-C of a
        person giving up at a `pass` or `secret-tool` prompt reaches only it: mailtap must stop
        as for its own Ctrl-C (exit 0, a plain sentence), not report a crash-like "killed by
        signal 2". The helper here kills itself with SIGINT, as the terminal's Ctrl-C would."""
        code, screen = h.run_in_terminal_session([
            h.mailtap_bin(), "proxy", "--listen", f"127.0.0.1:{h.closed_port()}",
            "--upstream", "127.0.0.1:1", "--no-record", "--auth-user", "alice",
            "--password-cmd", "kill -INT $$"])
        text = screen.decode(errors="replace")
        self.assertEqual(code, 0, text)
        self.assertIn("mailtap: --password-cmd was interrupted (Ctrl-C at its prompt): mailtap "
                      "stops", text)
        self.assertNotIn("signal", text)
        self.assertNotIn(h.Mailtap.READY_PREFIX, text)


if __name__ == "__main__":
    h.main()
