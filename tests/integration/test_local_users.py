#!/usr/bin/env python3
"""Loopback is no boundary between the users of one machine: every local user reaches
127.0.0.1:2525. With --auth-user mailtap signs in upstream with its owner's credentials, and the
web page shows its owner's mail, so by default mailtap serves only processes of its own user
(docs/proxy.md, "Who may connect"). Real clients (swaks, nc, curl) run as user nobody with
setpriv: they are told why, with a 421 or a 403, nothing reaches the server, the refusal is
recorded; --allow-local-user (or the config key) lets them in."""

import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import web_support as w  # noqa: E402
from test_recording import events, wait_ended  # noqa: E402

ALICE = ("alice", h.USERS["alice"])
ENV = "MAILTAP_TEST_LOCAL_USERS_PASSWORD"
NOBODY = 65534


def as_nobody(*command: str) -> list:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


def swaks_as_nobody(port: int, token: str) -> subprocess.CompletedProcess:
    """swaks run as nobody, sending a message with `token` in its subject to alice."""
    return subprocess.run(as_nobody("swaks", "--server", f"127.0.0.1:{port}", "--to",
                                    "alice@example.test", "--from", "sender@client.test",
                                    "--helo", "client.test", "--timeout", "30",
                                    "--header", f"Subject: {token}"),
                          capture_output=True, timeout=60)


def nc_greeting(port: int, host: str = "127.0.0.1", *, user=as_nobody) -> str:
    """What nc run as `user` reads from mailtap after sending QUIT."""
    cp = subprocess.run(user("nc", "-w", "10", host, str(port)), input=b"QUIT\r\n",
                        capture_output=True, timeout=30)
    return cp.stdout.decode(errors="replace")


class LocalUserCase(h.IntegrationCase):
    with_postfix = True

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("running a client as another user (setpriv) needs root")
        missing = [t for t in ("setpriv", "swaks", "nc", "curl") if shutil.which(t) is None]
        if missing:
            raise unittest.SkipTest(f"missing tools: {', '.join(missing)}")
        super().setUpClass()

    def start(self, *args, **kw) -> h.Mailtap:
        """mailtap signing in as alice itself (--auth-user): the owner's credentials."""
        return self.mailtap(self.postfix.submission,
                            extra_args=["--auth-user", ALICE[0], "--password-env", ENV, *args],
                            env={ENV: ALICE[1]}, **kw)

    @staticmethod
    def db(m: h.Mailtap):
        return m.db or os.path.join(m._tmp, "mailtap.db")


class ProxyLocalUserTest(LocalUserCase):

    def test_another_local_user_gets_a_421_before_any_upstream_connection(self):
        m = self.start()
        tok = h.unique_token("other-user")
        cp = swaks_as_nobody(m.port, tok)
        out = cp.stdout.decode(errors="replace")
        self.assertNotEqual(cp.returncode, 0, out)
        self.assertRegex(out, r"<\*\* 421 4\.7\.0 mailtap: local user nobody \(uid 65534\) is "
                              r"not mailtap's user root \(uid 0\)")
        self.assertIn("--allow-local-user nobody", out)
        self.assertTrue(self.postfix.no_message(tok, wait=1.0), "the message reached Postfix")
        [s] = wait_ended(self.db(m), 1)
        self.assertEqual(s["outcome"], "refused")
        self.assertIn("local user nobody (uid 65534)", s["outcome_reason"])
        evs = events(self.db(m), s["id"])
        self.assertFalse([e for e in evs if "upstream" in e["direction"]],
                         "mailtap spoke to the server for a refused user: "
                         + repr([dict(e) for e in evs]))
        self.assertEqual([e["reply_code"] for e in evs if e["kind"] == "local_reply"], [421])
        self.assertRegex(m.wait_stderr("refused: local user nobody"),
                         r"session \d+: 127\.0\.0\.1:\d+ refused: local user nobody \(uid 65534\)")
        # mailtap's own user is served as before.
        msg = h.make_message(tok)
        cp = h.swaks(m.port, data=msg)
        self.assertProcOk(cp, "swaks as root")
        self.assertDelivered(tok, msg)

    def test_allow_local_user_lets_that_user_relay(self):
        m = self.start("--allow-local-user", "nobody")
        self.assertIn("local users who may relay through mailtap besides root (uid 0): nobody "
                      "(uid 65534) (--allow-local-user)", m.stderr)
        tok = h.unique_token("allowed")
        cp = swaks_as_nobody(m.port, tok)
        self.assertProcOk(cp, "swaks as nobody")
        self.postfix.wait_for_message(tok)

    def test_an_ipv6_loopback_client_of_another_user_is_refused(self):
        m = self.start(listen=f"[::1]:{h.free_port()}")
        out = nc_greeting(m.port, "::1")
        self.assertTrue(out.startswith("421 4.7.0 mailtap: local user nobody (uid 65534)"), out)
        self.assertTrue(nc_greeting(m.port, "::1", user=lambda *c: list(c)).startswith("220 "))

    def test_a_client_that_closes_at_once_is_not_taken_for_root(self):
        """A client that sends its commands and closes at once is looked up once its socket is
        an orphan (FIN_WAIT2) or in TIME_WAIT, which the kernel shows as uid 0: mailtap, run as
        root, must not take it for its own user and connect upstream for it. mailtap is stopped
        (SIGSTOP) while the clients connect, send and close: the kernel completes each
        handshake and queues the connection for accept, and mailtap, continued, looks each one
        up after its client's close() returned (which orphans the socket) every time, not when
        a race goes that way."""
        m = self.start()
        clients = 3
        script = ("import socket\n"
                  f"for _ in range({clients}):\n"
                  f"    s = socket.create_connection(('127.0.0.1', {m.port}))\n"
                  "    s.sendall(b'EHLO client.test\\r\\nMAIL FROM:<a@client.test>\\r\\n')\n"
                  "    s.close()\n")
        os.kill(m.proc.pid, signal.SIGSTOP)
        try:
            cp = subprocess.run(as_nobody(sys.executable, "-c", script), capture_output=True,
                                timeout=60)
        finally:
            os.kill(m.proc.pid, signal.SIGCONT)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        sessions = wait_ended(self.db(m), clients)
        self.assertEqual(len(sessions), clients)
        for s in sessions:
            evs = events(self.db(m), s["id"])
            self.assertFalse([e for e in evs if "upstream" in e["direction"]],
                             "mailtap spoke to the server for a client that had closed: "
                             + repr(dict(s)) + m.stderr)
            self.assertEqual(s["outcome"], "refused", dict(s))
            self.assertIn("the client closed its connection before mailtap could tell which "
                          "local user it was", s["outcome_reason"], dict(s))
        self.assertNotIn("--allow-local-user any", m.stderr)

    def test_a_dual_stack_client_is_found_by_netlink(self):
        """An IPv6 socket connecting to ::ffff:127.0.0.1 (Java's default; Python with
        AF_INET6): the kernel answers the IPv4 lookup with the IPv6 socket, v4-mapped. That
        answer is the client's: no netlink timeout, no fallback to /proc."""
        m = self.start()
        script = ("import socket\n"
                  "s = socket.socket(socket.AF_INET6)\n"
                  f"s.connect(('::ffff:127.0.0.1', {m.port}))\n"
                  "print(s.recv(1000).decode())\n")
        for user, expected in ((as_nobody, "421 4.7.0 mailtap: local user nobody (uid 65534)"),
                               (lambda *c: list(c), "220 ")):
            cp = subprocess.run(user(sys.executable, "-c", script), capture_output=True,
                                text=True, timeout=30)
            self.assertTrue(cp.stdout.startswith(expected), cp.stdout + cp.stderr + m.stderr)
        self.assertNotIn("netlink sock_diag", m.stderr)

    def test_a_remote_client_is_left_to_allow_remote_a_local_user_on_that_address_is_not(self):
        """A client in another network namespace (over a veth pair, as from another machine)
        is remote: --allow-remote let it in, as before, whoever it runs as. A local user
        connecting to the same non-loopback address is still a local user, and refused."""
        if shutil.which("ip") is None:
            self.skipTest("no ip(8) to make a network namespace")
        tag = f"mtlu{os.getpid() % 10000}"
        net = 4 * (os.getpid() % 60) + 8  # a /30 of TEST-NET-2 of this run's own
        here, there = f"198.51.100.{net + 1}", f"198.51.100.{net + 2}"
        setup = [["ip", "netns", "add", tag],
                 ["ip", "link", "add", f"{tag}h", "type", "veth", "peer", "name", f"{tag}n"],
                 ["ip", "link", "set", f"{tag}n", "netns", tag],
                 ["ip", "addr", "add", f"{here}/30", "dev", f"{tag}h"],
                 ["ip", "link", "set", f"{tag}h", "up"],
                 ["ip", "netns", "exec", tag, "ip", "addr", "add", f"{there}/30", "dev", f"{tag}n"],
                 ["ip", "netns", "exec", tag, "ip", "link", "set", f"{tag}n", "up"]]
        self.addCleanup(subprocess.run, ["ip", "netns", "del", tag], capture_output=True)
        self.addCleanup(subprocess.run, ["ip", "link", "del", f"{tag}h"], capture_output=True)
        for command in setup:
            if subprocess.run(command, capture_output=True).returncode != 0:
                self.skipTest(f"cannot make a network namespace here: {' '.join(command)}")
        m = self.start("--allow-remote", listen=f"{here}:{h.free_port()}")
        remote = nc_greeting(m.port, here, user=lambda *c: ["ip", "netns", "exec", tag,
                                                            *as_nobody(*c)])
        self.assertTrue(remote.startswith("220 "), remote + m.stderr)
        local = nc_greeting(m.port, here)
        self.assertTrue(local.startswith("421 4.7.0 mailtap: local user nobody (uid 65534)"),
                        local)

    def test_without_netlink_the_proc_tables_tell_who_connected(self):
        """No NETLINK_SOCK_DIAG (a seccomp filter, no inet_diag module; the preloaded socket()
        of socket_emfile.cpp refuses it): /proc/net/tcp and tcp6 tell the users apart, over
        IPv4 and IPv6."""
        lib = h.HARNESS_ENV.get("MAILTAP_SOCKET_EMFILE_LIB")
        if not lib:
            self.skipTest("MAILTAP_SOCKET_EMFILE_LIB not set (run through ctest)")
        env = {ENV: ALICE[1], "LD_PRELOAD": lib, "MAILTAP_SOCKET_NO_SOCK_DIAG": "1",
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        for host, listen in (("127.0.0.1", None), ("::1", f"[::1]:{h.free_port()}")):
            m = self.mailtap(self.postfix.submission, listen=listen, env=env,
                             extra_args=["--auth-user", ALICE[0], "--password-env", ENV])
            other = nc_greeting(m.port, host)
            self.assertTrue(other.startswith("421 4.7.0 mailtap: local user nobody (uid 65534)"),
                            other + m.stderr)
            own = nc_greeting(m.port, host, user=lambda *c: list(c))
            self.assertTrue(own.startswith("220 "), own + m.stderr)
            m.stop()

    def test_any_turns_the_check_off_and_says_so(self):
        m = self.start("--allow-local-user", "any")
        self.assertIn("WARNING: --allow-local-user any: every user of this machine may relay "
                      "through mailtap", m.stderr)
        self.assertTrue(nc_greeting(m.port).startswith("220 "), m.stderr)

    def test_an_unknown_user_name_is_refused_at_start(self):
        m = self.mailtap(self.postfix.submission, ready=False,
                         extra_args=["--allow-local-user", "no-such-user-here"])
        self.assertEqual(m.wait(timeout=10), 2, m.stderr)
        self.assertIn("--allow-local-user no-such-user-here: no such user on this system",
                      m.stderr)
        self.assertNotIn(h.Mailtap.READY_PREFIX, m.stderr)

    def test_the_config_file_key_and_the_environment_allow_users_too(self):
        config = self.tmp / "local-users.toml"
        config.write_text('[proxy]\nallow-local-user = "nobody,postfix"\n')
        os.chmod(config, 0o600)
        m = self.mailtap(self.postfix.submission, extra_args=["--config", str(config)])
        self.assertTrue(nc_greeting(m.port).startswith("220 "), m.stderr)
        printed = subprocess.run([str(h.mailtap_bin()), "proxy", "--config", str(config),
                                  "--upstream", self.postfix.submission, "--print-config"],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        self.assertRegex(printed.stdout, r'allow-local-user = "nobody,postfix" +# file ')
        m.stop()
        # The variable beats the file: nobody is no longer named.
        m = self.mailtap(self.postfix.submission, extra_args=["--config", str(config)],
                         env={"MAILTAP_ALLOW_LOCAL_USER": "postfix"})
        self.assertTrue(nc_greeting(m.port).startswith("421 4.7.0 "), m.stderr)


class WebLocalUserTest(LocalUserCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.record = cls.tmp / "record.db"
        w.record_web_database(cls.record, cls.pki, cls.postfix)

    def curl(self, url: str, *, user=as_nobody) -> tuple:
        cp = subprocess.run(user("curl", "-sS", "-o", "-", "-w", "\n%{http_code}", url),
                            capture_output=True, text=True, timeout=30)
        body, _, status = cp.stdout.rpartition("\n")
        return int(status or 0), body

    def test_the_web_page_answers_another_user_403(self):
        with w.WebServer(self.record) as web:
            status, body = self.curl(web.url + "api/sessions")
            self.assertEqual(status, 403, body)
            self.assertIn("local user nobody (uid 65534) is not mailtap's user root (uid 0)", body)
            self.assertIn("--allow-local-user nobody", body)
            self.assertNotIn("alice", body)
            status, body = self.curl(web.url + "api/sessions", user=lambda *c: list(c))
            self.assertEqual(status, 200, body)
        self.assertRegex(web.stderr, r"mailtap web: /api/sessions: answered 403: local user "
                                     r"nobody \(uid 65534\)")
        with w.WebServer(self.record, extra_args=["--allow-local-user", "nobody"]) as web:
            self.assertEqual(self.curl(web.url + "api/sessions")[0], 200)
        # The config file's [web] table, as the proxy's [proxy].
        config = self.tmp / "web-users.toml"
        config.write_text('[web]\nallow-local-user = "nobody"\n')
        os.chmod(config, 0o600)
        with w.WebServer(self.record, extra_args=["--config", str(config)]) as web:
            self.assertEqual(self.curl(web.url + "api/sessions")[0], 200)

    def test_proxy_web_page_follows_the_proxys_allow_local_user(self):
        m = self.start("--web", "127.0.0.1:0", db=self.tmp / "proxy-web.db")
        url = re.search(r"web page at (http://127\.0\.0\.1:\d+/)", m.stderr).group(1)
        self.assertEqual(self.curl(url)[0], 403)
        self.assertEqual(self.curl(url, user=lambda *c: list(c))[0], 200)
        m.stop()
        m = self.start("--web", "127.0.0.1:0", "--allow-local-user", "65534",
                       db=self.tmp / "proxy-web.db")
        url = re.search(r"web page at (http://127\.0\.0\.1:\d+/)", m.stderr).group(1)
        self.assertEqual(self.curl(url)[0], 200)


if __name__ == "__main__":
    h.main()
