#!/usr/bin/env python3
"""`mailtap mock` as a CI fixture: started, pointed at by a test suite, stopped, its exit status
checked. A session is recorded through `mailtap proxy --tls none` to a small in-process server;
the mock's status and words must tell a CI log what happened: no client came, a client was cut
off by the stop, a second client came while one was served."""

import os
import signal
import smtplib
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MESSAGE = "Subject: t\r\n\r\nhello\r\n"


def send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=15) as s:
        s.sendmail("a@client.test", ["b@example.test"], MESSAGE)


class MockCiTest(h.IntegrationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "mailtap.db"
        cls.upstream = h.BodySink()
        cls.addClassCleanup(cls.upstream.close)
        with h.Mailtap(f"127.0.0.1:{cls.upstream.port}", tls="none", tls_name=None,
                       db=cls.db) as proxy:
            send(proxy.port)
        cls.sid = 1

    def proxy(self, db, *extra, **kw) -> h.Mailtap:
        return self.mailtap(f"127.0.0.1:{self.upstream.port}", tls="none", tls_name=None,
                            ca_file=None, db=db, extra_args=list(extra), **kw)

    def mock_cp(self, db, *extra):
        return subprocess.run([str(h.mailtap_bin()), "mock", "1", "--db", str(db), "--listen",
                               f"127.0.0.1:{h.free_port()}", *extra], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    def start_mock(self, *extra, sid=None, db=None):
        port = h.free_port()
        p = subprocess.Popen([str(h.mailtap_bin()), "mock", str(sid or self.sid), "--db",
                              str(db or self.db), "--listen", f"127.0.0.1:{port}", *extra],
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

    def test_a_second_stop_reports_the_client_it_cuts_off(self):
        p, port = self.start_mock()
        with h.SmtpSocket(port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(c.reply().code, 421)
            # The client has not closed: the mock still waits for it when told again.
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 1, out + err)
        self.assertNotIn("before any client connected", err)
        self.assertRegex(out, r"did not complete session 1: the mock was stopped \(SIGTERM\) "
                              r"after 1 commands")

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


    # sessions the mock cannot serve to their client ---------------------------------------
    def test_a_session_without_an_end_is_refused_unless_asked_for(self):
        db = self.tmp / "unfinished.db"
        proxy = self.proxy(db)
        with h.SmtpSocket(proxy.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@client.test>")
            h.wait_recorded_reply(db, 1, "MAIL", 250)
            cp = self.mock_cp(db)  # the proxy still records it
            self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
            self.assertIn("mock: session 1 cannot be served: it has no end yet (in_progress: "
                          "the proxy recording it still runs)", cp.stderr)
            proxy.proc.kill()  # now it never will (cut)
            proxy.proc.wait(10)
        cp = self.mock_cp(db)
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("mock: session 1 cannot be served: it has no end (cut: the process "
                      "recording it stopped without ending it), so what the server said after "
                      "its last recorded event is unknown", cp.stderr)
        self.assertIn("--unfinished", cp.stderr)
        p, port = self.start_mock("--unfinished", sid=1, db=db)
        self.assertIn("session 1 has no end (cut", p.stderr.readline())
        with h.SmtpSocket(port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out + err)

    def test_an_implicit_tls_session_is_refused(self):
        db = self.tmp / "implicit.db"
        config_home = self.tmp / "xdg-implicit"
        proxy = self.proxy(db, "--local-tls", "implicit", env={"XDG_CONFIG_HOME": str(config_home)})
        ctx = ssl.create_default_context(
            cafile=str(config_home / "mailtap" / "local-tls-cert.pem"))
        with smtplib.SMTP_SSL("127.0.0.1", proxy.port, local_hostname="client.test", timeout=15,
                              context=ctx) as s:
            s.sendmail("a@client.test", ["b@example.test"], MESSAGE)
        self._stop_mailtap(proxy)
        cp = self.mock_cp(db)
        self.assertEqual(cp.returncode, 2, cp.stdout + cp.stderr)
        self.assertIn("mock: session 1 cannot be served: its client spoke TLS from the first byte "
                      "(proxy --local-tls implicit), and the mock speaks only plain text", cp.stderr)
        self.assertNotIn("listening on", cp.stderr)

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
