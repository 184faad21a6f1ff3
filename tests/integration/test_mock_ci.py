#!/usr/bin/env python3
"""`mailtap mock` as a CI fixture: started, pointed at by a test suite, stopped, its exit status
checked. A session is recorded through `mailtap proxy --tls none` to a small in-process server;
the mock's status and words must tell a CI log what happened: no client came, a client was cut
off by the stop, a second client came while one was served."""

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MESSAGE = "Subject: t\r\n\r\nhello\r\n"


def small_server() -> int:
    """A plain-text SMTP server on loopback (threads, one per connection); returns its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve(c):
        with c, c.makefile("rb") as f:
            c.sendall(b"220 small.test ESMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250-small.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    c.sendall(b"250 2.0.0 queued\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 2.0.0 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]


def send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=15) as s:
        s.sendmail("a@client.test", ["b@example.test"], MESSAGE)


class MockCiTest(h.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "mailtap.db"
        cls.upstream = small_server()
        with h.Mailtap(f"127.0.0.1:{cls.upstream}", tls="none", tls_name=None,
                       db=cls.db) as proxy:
            send(proxy.port)
        cls.sid = 1

    def start_mock(self, *extra, sid=None):
        port = h.free_port()
        p = subprocess.Popen([str(h.mailtap_bin()), "mock", str(sid or self.sid), "--db",
                              str(self.db), "--listen", f"127.0.0.1:{port}", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        ready = p.stderr.readline()
        self.assertIn("listening on 127.0.0.1:%d" % port, ready)
        return p, port

    def stop_mock(self, p, sig=signal.SIGTERM):
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        return p.returncode, out, err

    # stopped ---------------------------------------------------------------------------
    def test_loop_stopped_before_any_client_fails_and_says_why(self):
        p, _ = self.start_mock("--loop")
        code, out, err = self.stop_mock(p)
        self.assertEqual(code, 1, out + err)
        self.assertIn("mock: stopped (SIGTERM) before any client connected", err)

    def test_once_stopped_before_any_client_says_why(self):
        p, _ = self.start_mock()
        code, out, err = self.stop_mock(p, signal.SIGINT)
        self.assertEqual(code, 1, out + err)
        self.assertIn("mock: stopped (SIGINT) before any client connected", err)

    def test_loop_stopped_with_a_client_mid_dialogue_fails_and_tells_the_client(self):
        p, port = self.start_mock("--loop")
        send(port)  # one client completes
        with h.SmtpSocket(port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            p.send_signal(signal.SIGTERM)
            r = c.reply()
            self.assertEqual(r.code, 421, r)
            self.assertIn("4.3.2 mailtap mock: stopped (SIGTERM)", r.text)
            self.assertTrue(c.is_closed(5))
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("completed the recorded dialogue", out)
        self.assertRegex(out, r"did not complete session 1: the mock was stopped \(SIGTERM\) "
                              r"after 1 commands; the recording continues with `mail FROM:<a@client\.test>`")

    def test_loop_stopped_after_clients_completed_succeeds(self):
        p, port = self.start_mock("--loop")
        send(port)
        send(port)
        out = ""
        while out.count("completed the recorded dialogue") < 2:
            out += p.stdout.readline()
        code, rest, err = self.stop_mock(p)
        self.assertEqual(code, 0, out + rest + err)


    def test_no_client_within_the_wait_gives_up(self):
        p, _ = self.start_mock("--wait-for-client", "1s")
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertIn("mock: no client connected within 1s (--wait-for-client)", err)


    # one client at a time --------------------------------------------------------------
    def test_a_second_client_is_told_the_mock_is_busy(self):
        for mode in ((), ("--loop",)):
            with self.subTest(mode=mode):
                p, port = self.start_mock(*mode)
                with h.SmtpSocket(port) as first:
                    self.assertEqual(first.reply().code, 220)
                    with h.SmtpSocket(port) as second:
                        r = second.reply()
                        self.assertEqual(r.code, 421, r)
                        self.assertIn("4.3.2 mailtap mock: busy with another client", r.text)
                        self.assertTrue(second.is_closed(5))
                    first.cmd("QUIT")
                code, out, err = self.stop_mock(p)
                self.assertRegex(err, r"mock: turned away client 127\.0\.0\.1:\d+ with a 421: "
                                      r"busy with client 127\.0\.0\.1:\d+")
                # The first client went on after the second was turned away.
                self.assertIn("command 1: the client sent `QUIT` where the recording has "
                              "`ehlo client.test`", out)


if __name__ == "__main__":
    h.main()
