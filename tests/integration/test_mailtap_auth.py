#!/usr/bin/env python3
"""mailtap authenticates upstream itself, and helps a person who types AUTH (issue 8).

`mailtap proxy --auth-user USER` with a password (--password-env/-file/-cmd, or a prompt) or an
--oauth2-token-cmd authenticates right after the client's EHLO has been answered over TLS, hides
the AUTH capability, and only then answers the EHLO; a client that types no AUTH at all sends
mail. Against the private Gmail-like Postfix (PLAIN and LOGIN after TLS) and the in-test Gmail
and Microsoft 365 look-alikes of harness.OAuthServer (XOAUTH2, OAUTHBEARER, the error challenge,
app passwords). Clients are raw sockets typing CRLF (telnet) and nc typing bare LF, as people do.

Every credential is random per run, so a hit in a scan can only be a leak: each test scans the
database and its WAL, stderr, the --transcript, mailtap's /proc/PID/cmdline and /proc/PID/environ.

An assertion message names the behaviour of issue 8 that is missing."""

import base64
import contextlib
import ctypes
import os
import pty
import re
import resource
import secrets
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_recording import (  # noqa: E402
    dump, events, find_leaks, mailtap_files, secret_forms, wait_ended, wait_for)

ENV = "MAILTAP_TEST_AUTH_PASSWORD"

USER = "mt" + secrets.token_hex(4)  # a Postfix (sasldb) user
PASSWORD = "Pw-" + secrets.token_urlsafe(18)
WRONG_PASSWORD = "Wrong-" + secrets.token_urlsafe(18)
SPACE_USER = "sp" + secrets.token_hex(4)  # a password with spaces, typed in clear
SPACE_PASSWORD = "Pw two " + secrets.token_urlsafe(12) + " words"
SAME_USER = "same" + secrets.token_hex(8)  # a Postfix user whose password is its name
ALICE_PASSWORD = h.USERS["alice"]
GMAIL_USER = secrets.token_hex(4) + "@gmail.test"  # an OAuthServer account
TOKEN = "ya29.a0" + secrets.token_urlsafe(60)
FRESH_TOKEN = "ya29.a0" + secrets.token_urlsafe(60)
EXPIRED_TOKEN = "ya29.a0" + secrets.token_urlsafe(60)
EXPIRED_TOKEN_2 = "ya29.a0" + secrets.token_urlsafe(60)
NOT_A_TOKEN = "ya29.a0" + secrets.token_urlsafe(60)  # printed by a failing token command
# mailtap's answer to a line without a verb it takes for a SASL response of a refused AUTH.
SASL_RESPONSE_REFUSED = ("500 5.5.2 mailtap: line taken for a SASL response after a refused "
                         "AUTH; not forwarded (send a command, or AUTH again)\r\n")
# A client's own token pipelined behind an AUTH that mailtap ends itself
PIPELINED_TOKEN = "ya29.a0" + secrets.token_urlsafe(60)

M2U, U2M = "mailtap_to_upstream", "upstream_to_mailtap"
C2M, M2C = "client_to_mailtap", "mailtap_to_client"
C2U = "client_to_upstream"
RELAY_RCPT = "RCPT TO:<someone@elsewhere.test>"  # Postfix relays only for an authenticated client


def b64(data) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def forbidden() -> dict:
    """Every form of every secret of this file that must never be written anywhere."""
    out = {}
    for name, secret in (("password", PASSWORD), ("wrong password", WRONG_PASSWORD),
                         ("spaced password", SPACE_PASSWORD), ("alice's password", ALICE_PASSWORD),
                         ("token", TOKEN), ("fresh token", FRESH_TOKEN),
                         ("expired token", EXPIRED_TOKEN), ("expired token 2", EXPIRED_TOKEN_2),
                         ("failing command's output", NOT_A_TOKEN),
                         ("pipelined token", PIPELINED_TOKEN)):
        for i, form in enumerate(secret_forms(secret.encode())):
            out[f"{name} form {i}"] = form
    for user, pw in ((USER, PASSWORD), (USER, WRONG_PASSWORD), (SPACE_USER, SPACE_PASSWORD),
                     ("alice", ALICE_PASSWORD)):
        out[f"PLAIN blob {user}:{pw[:6]}..."] = h.auth_plain(user, pw).encode()
    for tok in (TOKEN, FRESH_TOKEN, EXPIRED_TOKEN, EXPIRED_TOKEN_2):
        out[f"XOAUTH2 blob {tok[:10]}..."] = b64(h.xoauth2_bytes(GMAIL_USER, tok)).encode()
        out[f"Bearer {tok[:10]}..."] = f"Bearer {tok}".encode()
    return out


def assist_rewrites(evs) -> list:
    """--assist-auth's rewrite notes (not the line-end normaliser's, which nc also causes)."""
    return [e for e in evs if e["kind"] == "rewrite"
            and (e["verb"] == "AUTH" or "AUTH" in (e["note"] or ""))
            and not re.match(r"(bare LF|bare CR|telnet IAC)", e["note"] or "")]


def lines_of(reply: h.Reply) -> list:
    return [line.upper() for line in reply.lines]


def offers_auth(reply: h.Reply) -> bool:
    return any(re.match(r"AUTH[ =]", line) for line in lines_of(reply))


def not_dumpable(pid: int) -> bool:
    """The kernel gives the files in /proc/PID of a process that is not dumpable to root."""
    return Path(f"/proc/{pid}/status").stat().st_uid == 0


def proc_file(pid: int, name: str) -> bytes:
    """/proc/PID/NAME; empty when a user other than root may not read it because mailtap, which
    holds a secret, is not dumpable (then no other process of the user can read it either)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except PermissionError:
        if os.geteuid() != 0 and not_dumpable(pid):
            return b""
        raise


def kill_if_running(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def gone(pid: int) -> bool:
    """Process `pid` has ended (a zombie its new parent has not reaped yet counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def core_size_limit(pid: int) -> float:
    """The soft limit on core files of process `pid` (inf: unlimited)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft = line.split()[4]
            return float("inf") if soft == "unlimited" else int(soft)
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def exec_with_variable_twice(argv: list, name: bytes, first: bytes, second: bytes) -> None:
    """In a child before its exec (preexec_fn): execs `argv` itself, with this environment and
    `name` in it twice, as execve allows and os.execve cannot do."""
    env = [k + b"=" + v for k, v in os.environb.items() if k != name]
    env += [name + b"=" + first, name + b"=" + second]
    args = [a.encode() for a in argv]
    libc = ctypes.CDLL(None)
    libc.execve(args[0], (ctypes.c_char_p * (len(args) + 1))(*args, None),
                (ctypes.c_char_p * (len(env) + 1))(*env, None))
    os._exit(127)


class AuthCase(h.IntegrationCase):
    """Helpers: start mailtap with credentials, look at what it recorded, scan for secrets."""

    def start(self, upstream: str, *args, password=PASSWORD, **kw) -> h.Mailtap:
        """mailtap proxy --transcript -vv ARGS, with PASSWORD in $ENV (None: no variable)."""
        env = dict(kw.pop("env", {}))
        if password is not None:
            env[ENV] = password
        m = self.mailtap(upstream, extra_args=["--transcript", "-vv", *args], env=env, **kw)
        m.seen_cmdline = proc_file(m.proc.pid, "cmdline")
        m.seen_environ = proc_file(m.proc.pid, "environ")
        return m

    def start_auth(self, upstream: str, *args, **kw) -> h.Mailtap:
        return self.start(upstream, "--auth-user", kw.pop("user", USER), "--password-env", ENV,
                          *args, **kw)

    @staticmethod
    def db(m: h.Mailtap) -> Path:
        return Path(m._tmp) / "mailtap.db"

    def col(self, row, name: str):
        self.assertIn(name, row.keys(), f"the sessions table has no column {name} (issue 8 adds "
                      "auth_mechanism and auth_by next to auth_user)")
        return row[name]

    def assertNoAuthOffered(self, reply: h.Reply, what="the client's EHLO reply"):
        self.assertEqual(reply.code, 250, reply)
        self.assertFalse(offers_auth(reply), f"{what} still offers AUTH although mailtap "
                         f"authenticated the session:\n{reply}")
        self.assertNotIn("STARTTLS", lines_of(reply), f"{what} offers STARTTLS:\n{reply}")

    def assertFailureLogged(self, m: h.Mailtap, *needles: str):
        """A stderr line holds every needle, before the client sends anything more."""
        def found():
            return [line for line in m.stderr.splitlines() if all(n in line for n in needles)]
        try:
            wait_for(found, timeout=10, what="the log line")
        except AssertionError:
            self.fail(f"mailtap's failed AUTH is not logged on stderr right away (a line with "
                      f"{needles}); stderr:\n{m.stderr[-3000:]}")

    def assertAuthenticatedByMailtap(self, m: h.Mailtap, mech: str, user: str = USER,
                                     n_sessions: int = 1, index: int = 0) -> list:
        """The session row, the note and mailtap's own AUTH exchange, between the client's EHLO
        (or HELO) and its MAIL. Returns the session's events."""
        rows = wait_ended(self.db(m), n_sessions)
        s = rows[index]
        evs = events(self.db(m), s["id"])
        info = dump(evs)
        self.assertEqual(s["auth_user"], user, "the session row's auth_user is the user mailtap "
                         "authenticated as")
        self.assertEqual(self.col(s, "auth_by"), "mailtap", "auth_by says mailtap authenticated")
        self.assertEqual(self.col(s, "auth_mechanism"), mech, "auth_mechanism names the "
                         "mechanism mailtap chose")
        note = f"authenticated by mailtap as {user} ({mech})"
        self.assertTrue([e for e in evs if e["direction"] == "mailtap_note"
                         and note in (e["note"] or "")],
                        f"no mailtap_note event saying {note!r}:\n{info}")
        own = [e for e in evs if e["direction"] in (M2U, U2M) and e["phase"] == "tls"
               and (e["verb"] or "") not in ("EHLO", "QUIT")]
        sent = [e for e in own if e["direction"] == M2U]
        self.assertTrue(sent, f"mailtap's own AUTH is not recorded as {M2U} events:\n{info}")
        self.assertTrue(bytes(sent[0]["bytes"]).startswith(f"AUTH {mech}".encode()),
                        f"mailtap's first own line after TLS is not AUTH {mech}:\n{info}")
        self.assertTrue(any(e["reply_code"] == 235 for e in own if e["direction"] == U2M),
                        f"the server's 235 to mailtap's AUTH is not recorded as {U2M}:\n{info}")
        greeting = [e for e in evs if e["direction"] == C2U and e["kind"] == "command"
                    and e["verb"] in ("EHLO", "HELO") and e["phase"] == "tls"]
        mail = [e for e in evs if e["direction"] == C2U and e["verb"] == "MAIL"]
        self.assertTrue(greeting, f"the client's EHLO/HELO is not recorded:\n{info}")
        self.assertTrue(all(greeting[0]["seq"] < e["seq"] for e in own),
                        f"mailtap authenticated before the client's EHLO:\n{info}")
        if mail:
            self.assertTrue(all(e["seq"] < mail[0]["seq"] for e in own),
                            f"the client's MAIL went upstream before mailtap's AUTH ended:\n{info}")
        return evs

    def assertNoSecrets(self, *mailtaps: h.Mailtap, extra: dict = None):
        """No secret in any database, WAL, stderr, transcript, cmdline or environ of mailtap;
        the --password-env variable no longer holds a value in mailtap's environ."""
        blobs = dict(extra or {})
        for i, m in enumerate(mailtaps):
            db = self.db(m)
            if db.exists():
                files = mailtap_files(db)
                self.assertIn("mailtap.db-wal", files, "the WAL is scanned while mailtap runs")
                for name, data in files.items():
                    blobs[f"mailtap {i} {name}"] = data
            blobs[f"mailtap {i} stderr"] = m.stderr.encode()
            blobs[f"mailtap {i} --transcript"] = m.stdout.encode()
            blobs[f"mailtap {i} /proc/PID/cmdline"] = m.seen_cmdline
            blobs[f"mailtap {i} /proc/PID/environ at start"] = m.seen_environ
            if m.alive():
                environ = proc_file(m.proc.pid, "environ")
                blobs[f"mailtap {i} /proc/PID/environ"] = environ
                held = [e for e in environ.split(b"\0")
                        if e.startswith(ENV.encode() + b"=") and len(e) > len(ENV) + 1]
                self.assertEqual(held, [], f"--password-env {ENV} still holds a value in "
                                 "mailtap's /proc/PID/environ after start")
        self.assertEqual(find_leaks(blobs, forbidden()), [], "a secret was written or exposed")

    def show(self, m: h.Mailtap, session_id: int) -> str:
        cp = subprocess.run([str(h.mailtap_bin()), "show", "--db", str(self.db(m)),
                             str(session_id)], capture_output=True, timeout=30)
        self.assertProcOk(cp, "mailtap show")
        return cp.stdout.decode()

    def assertShowSays(self, m: h.Mailtap, session_id: int, user: str, mech: str):
        out = self.show(m, session_id)
        want = f"authenticated by mailtap ({mech})"
        self.assertTrue([line for line in out.splitlines() if user in line and want in line],
                        f"mailtap show does not print {want!r} next to the user:\n{out}")
        self.assertEqual(find_leaks({"mailtap show": out.encode()}, forbidden()), [])

    # -- clients ------------------------------------------------------------------------------
    @staticmethod
    def typist(client):
        """cmd(line) for a raw socket (CRLF, as telnet) or nc (bare LF, as a terminal)."""
        if isinstance(client, h.NetcatClient):
            return lambda line: client.cmd(line.encode() if isinstance(line, str) else line)
        return client.cmd

    def second_session_after_revoking(self, m, server, tag: str):
        """Two sessions that send a message each, TOKEN revoked at the server after the first
        (whose token mailtap caches): returns the second session as the server saw it."""
        for n in (1, 2):
            with h.SmtpSocket(m.port) as c:
                c.reply()
                self.assertNoAuthOffered(c.cmd("EHLO client.test"))
                self.send_message(c, h.unique_token(tag))
            sess = server.wait_sessions(n)[n - 1]
            sess.closed.wait(5)
            server.valid_tokens = {FRESH_TOKEN}  # TOKEN revoked
        return sess

    def send_message(self, client, token: str, rcpts=("RCPT TO:<alice@example.test>",),
                     mail_from="MAIL FROM:<sender@client.test>") -> tuple:
        """MAIL, RCPT..., DATA, the message, QUIT; returns (message, final reply)."""
        cmd = self.typist(client)
        msg = h.make_message(token)
        r = cmd(mail_from)
        self.assertEqual(r.code, 250, f"MAIL refused: {r}")
        for rcpt in rcpts:
            r = cmd(rcpt)
            self.assertEqual(r.code, 250, f"{rcpt} refused (relaying needs AUTH upstream): {r}")
        self.assertEqual(cmd("DATA").code, 354)
        if isinstance(client, h.NetcatClient):
            client.send(h.dot_stuff(msg.replace(b"\r\n", b"\n")))
            final = client.cmd(b".")
        else:
            client.send(h.dot_stuff(msg))
            final = client.cmd(".")
        self.assertEqual(final.code, 250, final)
        self.assertEqual(cmd("QUIT").code, 221)
        return msg, final

    @staticmethod
    def client(kind: str, port: int):
        return h.NetcatClient(port) if kind == "nc" else h.SmtpSocket(port)


class PostfixAuthTest(AuthCase):
    """mailtap's own AUTH PLAIN against Postfix, the failure path, HELO, pipelining, the secret
    sources, and --assist-auth (PLAIN and LOGIN typed in clear)."""

    with_postfix = True
    postfix_kwargs = {"users": {USER: PASSWORD, SPACE_USER: SPACE_PASSWORD,
                                SAME_USER: SAME_USER, "alice": ALICE_PASSWORD},
                      "bare_newline": "reject"}

    def assertPostfixAuthenticated(self, final: h.Reply, method: str, user: str = USER):
        """Postfix logged the message's queue id with the SASL method and user."""
        queue_id = re.search(r"queued as (\w+)", final.text).group(1)
        pattern = (rf"{queue_id}: client=\S+, sasl_method={method}, "
                   rf"sasl_username={re.escape(user)}(@example\.test)?\b")
        wait_for(lambda: re.search(pattern, self.postfix.maillog_text()), timeout=10,
                 what=f"Postfix to log {queue_id} as sent by {user} authenticated with {method}")

    # -- mailtap authenticates ----------------------------------------------------------------
    def test_plain_with_no_auth_typed_from_telnet_and_nc(self):
        m = self.start_auth(self.postfix.submission)
        for n, kind in enumerate(("telnet", "nc"), 1):
            with self.subTest(client=kind), self.client(kind, m.port) as c:
                cmd = self.typist(c)
                self.assertEqual(c.reply().code, 220)
                ehlo = cmd("EHLO client.test")
                self.assertNoAuthOffered(ehlo)
                self.assertIn("PIPELINING", lines_of(ehlo), "the rest of the EHLO reply is kept")
                tok = h.unique_token(kind)
                msg, final = self.send_message(c, tok, rcpts=(RELAY_RCPT,
                                                              "RCPT TO:<alice@example.test>"))
                self.assertDelivered(tok, msg)
                self.assertPostfixAuthenticated(final, "PLAIN")
                evs = self.assertAuthenticatedByMailtap(m, "PLAIN", n_sessions=n, index=n - 1)
                own = [e for e in evs if e["direction"] == M2U and e["phase"] == "tls"
                       and e["verb"] == "AUTH"]
                self.assertTrue(own[0]["redacted"], dump(evs))
        [_, s2] = wait_ended(self.db(m), 2)
        self.assertShowSays(m, s2["id"], USER, "PLAIN")
        self.assertNoSecrets(m)

    def test_a_user_name_that_is_the_password_is_named_nowhere(self):
        """--auth-user X whose password is X (docs/auth.md, "What is recorded"): the name would
        give the password away, so the note, the 503 to a client's AUTH, the log lines and the
        session row withhold it, saying why; mailtap still authenticates and the mail goes."""
        m = self.start_auth(self.postfix.submission, user=SAME_USER, password=SAME_USER)
        withheld = "<withheld: the user name contains the password>"
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertNoAuthOffered(c.cmd("EHLO client.test"))
            refused = c.cmd("AUTH PLAIN")
            self.assertEqual(refused.code, 503, refused)
            self.assertIn(withheld, refused.text)
            tok = h.unique_token("same")
            msg, final = self.send_message(c, tok, rcpts=(RELAY_RCPT,
                                                          "RCPT TO:<alice@example.test>"))
        self.assertDelivered(tok, msg)
        [s] = wait_ended(self.db(m), 1)
        self.assertIsNone(s["auth_user"])
        self.assertEqual(self.col(s, "auth_by"), "mailtap")
        notes = [e["note"] for e in events(self.db(m), s["id"]) if e["note"]]
        self.assertIn(f"authenticated by mailtap as {withheld} (PLAIN)", notes)
        self.assertIn(f"authenticating sessions as {withheld}", m.stderr)
        self.assertIn(f"authenticated as {withheld} (PLAIN)", m.stderr)
        self.assertNoSecrets(m)
        # Not in argv's scan: --auth-user puts it there, as whoever started mailtap typed it.
        blobs = mailtap_files(self.db(m))
        blobs["stderr"] = m.stderr.encode()
        blobs["--transcript"] = m.stdout.encode()
        forms = {f"form {i}": f for i, f in enumerate(secret_forms(SAME_USER.encode()))}
        self.assertEqual(find_leaks(blobs, forms), [], "the user name that is the password")

    def test_client_auth_gets_a_local_503(self):
        m = self.start_auth(self.postfix.submission)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertNoAuthOffered(c.cmd("EHLO client.test"))
            r = c.cmd("AUTH PLAIN " + h.auth_plain("alice", ALICE_PASSWORD))
            want = f"503 5.5.1 mailtap: already authenticated as {USER} (by mailtap)\r\n"
            self.assertEqual(r.raw.decode(), want, "a client AUTH after mailtap's gets the 503")
            self.assertEqual(c.cmd("AUTH LOGIN").raw.decode(), want)
            self.assertEqual(c.cmd("MAIL FROM:<sender@client.test>").code, 250)
            self.assertEqual(c.cmd(RELAY_RCPT).code, 250, "still authenticated as USER")
            c.cmd("QUIT")
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        info = dump(evs)
        self.assertEqual(s["auth_user"], USER, "alice's AUTH was not forwarded")
        self.assertFalse([e for e in evs if e["direction"] == C2U and e["verb"] == "AUTH"],
                         f"the client's AUTH was forwarded upstream:\n{info}")
        typed = [e for e in evs if e["direction"] == C2M and e["verb"] == "AUTH"]
        answered = [e for e in evs if e["direction"] == M2C and e["reply_code"] == 503]
        self.assertEqual(len(typed), 2, f"the client's AUTH lines are recorded as {C2M}:\n{info}")
        self.assertEqual([bytes(e["bytes"]).decode() for e in answered], [want, want], info)
        self.assertNoSecrets(m)  # alice's password, typed and answered locally, is not kept

    def test_client_auth_with_other_spacing_is_recorded_as_authenticated(self):
        """auth-F3: AUTH lines Postfix accepts with other spacing (docs/dialogue.md "Command
        lines") record the session's user, mechanism and auth_by as the one-space line does, the
        password never; `show` names the user and `decode` explains the line."""
        blob = h.auth_plain("alice", ALICE_PASSWORD)
        lines = [f"AUTH  PLAIN {blob}", f"AUTH PLAIN  {blob}", f"AUTH PLAIN {blob} ",
                 f" AUTH PLAIN {blob}", f"AUTH\tPLAIN {blob}", f"auth\tplain\t{blob}\t",
                 f"AUTH\x0bPLAIN\x0c{blob}"]
        m = self.start(self.postfix.submission, password=None)
        for line in lines:
            with h.SmtpSocket(m.port) as c:
                c.reply()
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                self.assertEqual(c.cmd(line).code, 235, f"Postfix takes {line!r}")
                self.assertEqual(c.cmd("QUIT").code, 221)
        sessions = wait_ended(self.db(m), len(lines))
        for line, s in zip(lines, sessions):
            with self.subTest(line=line):
                self.assertEqual(s["auth_user"], "alice", dump(events(self.db(m), s["id"])))
                self.assertEqual(self.col(s, "auth_mechanism"), "PLAIN")
                self.assertEqual(self.col(s, "auth_by"), "client")
                out = self.show(m, s["id"])
                self.assertTrue([x for x in out.splitlines() if "alice" in x and
                                 "authenticated by the client (PLAIN)" in x], out)
        # replay rebuilds these exchanges (the trailing space, the leading space, the tab, VT/FF)
        for s in (sessions[2], sessions[3], sessions[5], sessions[6]):
            cp = subprocess.run(
                [str(h.mailtap_bin()), "replay", str(s["id"]), "--to", self.postfix.submission,
                 "--db", str(self.db(m)), "--ca-file", str(self.postfix.ca_file), "--tls-name",
                 "localhost", "--no-record", "--password-env", ENV],
                env={**os.environ, ENV: ALICE_PASSWORD}, capture_output=True, timeout=60)
            self.assertEqual(cp.returncode, 0, cp.stdout.decode() + cp.stderr.decode())
        cp = subprocess.run([str(h.mailtap_bin()), "decode", f"AUTH\tPLAIN {blob} "],
                            capture_output=True, timeout=30)
        self.assertProcOk(cp, "mailtap decode")
        self.assertIn('authcid="alice"', cp.stdout.decode(), "decode reads the tab as a space")
        self.assertNotIn(ALICE_PASSWORD, cp.stdout.decode())
        self.assertNoSecrets(m)

    def test_a_blob_or_password_typed_as_the_mechanism_is_not_recorded(self):
        """A PLAIN blob pasted without PLAIN, a password typed where the mechanism goes: Postfix
        refuses the mechanism, and the record, `show` and `decode` hold neither word (only
        registered mechanism names are kept after AUTH, docs/recording.md "Redaction")."""
        blob = h.auth_plain("alice", ALICE_PASSWORD)
        lines = ["AUTH AGFsaWNlAHB3", "AUTH hunter2", f"AUTH {blob}", f"AUTH {ALICE_PASSWORD}"]
        m = self.start(self.postfix.submission, password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            for line in lines:
                self.assertEqual(c.cmd(line).code // 100, 5, f"Postfix refuses {line!r}")
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        typed = [bytes(e["bytes"]) for e in evs if e["direction"] == C2U and e["verb"] == "AUTH"]
        self.assertEqual(typed, [b"AUTH [<redacted 12 bytes>]\r\n", b"AUTH [<redacted 7 bytes>]\r\n",
                                 f"AUTH [<redacted {len(blob)} bytes>]\r\n".encode(),
                                 f"AUTH [<redacted {len(ALICE_PASSWORD)} bytes>]\r\n".encode()],
                         dump(evs))
        self.assertIsNone(self.col(s, "auth_mechanism"))
        show = self.show(m, s["id"])
        cp = subprocess.run([str(h.mailtap_bin()), "decode"], input="\n".join(lines).encode(),
                            capture_output=True, timeout=30)
        self.assertProcOk(cp, "mailtap decode")
        self.assertNoSecrets(m, extra={"mailtap show": show.encode(),
                                       "mailtap decode": cp.stdout + cp.stderr})
        words = {"AGFsaWNlAHB3": b"AGFsaWNlAHB3", "hunter2": b"hunter2"}
        blobs = {name: data for name, data in mailtap_files(self.db(m)).items()}
        blobs.update({"show": show.encode(), "decode": cp.stdout, "stderr": m.stderr.encode(),
                      "transcript": m.stdout.encode()})
        self.assertEqual(find_leaks(blobs, words), [])

    def test_wrong_password_explained_at_the_next_mail_and_the_session_stays_usable(self):
        m = self.start_auth(self.postfix.submission, password=WRONG_PASSWORD)
        tok = h.unique_token("byhand")
        with h.SmtpSocket(m.port) as c:
            c.reply()
            ehlo = c.cmd("EHLO client.test")
            self.assertEqual(ehlo.code, 250)
            self.assertTrue(offers_auth(ehlo), "after a failed AUTH the EHLO reply keeps its "
                            f"AUTH line, so the person can type AUTH by hand:\n{ehlo}")
            self.assertNotIn("STARTTLS", lines_of(ehlo))
            self.assertFailureLogged(m, USER, "535")
            r = c.cmd("MAIL FROM:<sender@client.test>")
            self.assertEqual(len(r.lines), 1, f"the explanation is one reply line: {r}")
            self.assertRegex(
                r.raw.decode(),
                rf"^454 4\.7\.0 mailtap: \S+ refused AUTH PLAIN as {USER}: 535 5\.7\.8 Error: "
                r"authentication failed.*; the user name or the password is wrong\r\n$",
                "the next MAIL is answered locally with explain_auth_failure's line: a 4xx "
                "(mailtap's configuration failed, not the message), the server's 535 quoted")
            # usable: the next MAIL goes upstream (Postfix takes local mail without AUTH) ...
            self.assertEqual(c.cmd("MAIL FROM:<sender@client.test>").code, 250)
            self.assertEqual(c.cmd(RELAY_RCPT).code, 554, "not authenticated: relay denied")
            self.assertEqual(c.cmd("RSET").code, 250)
            # ... and AUTH typed by hand goes upstream too
            self.assertEqual(c.cmd("AUTH PLAIN " + h.auth_plain(USER, PASSWORD)).code, 235,
                             "AUTH by hand after mailtap's failed AUTH")
            msg, final = self.send_message(c, tok, rcpts=(RELAY_RCPT,
                                                          "RCPT TO:<alice@example.test>"))
        self.assertDelivered(tok, msg)
        self.assertPostfixAuthenticated(final, "PLAIN")
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        info = dump(evs)
        self.assertTrue([e for e in evs if e["direction"] == U2M and e["reply_code"] == 535],
                        f"the server's 535 to mailtap's AUTH is recorded as {U2M}:\n{info}")
        local = [e for e in evs if e["direction"] == C2M and e["verb"] == "MAIL"]
        explained = [e for e in evs if e["direction"] == M2C and e["reply_code"] == 454]
        self.assertEqual(len(local), 1, f"the first MAIL is recorded as {C2M}:\n{info}")
        self.assertEqual(len(explained), 1, f"the explanation is recorded as {M2C}:\n{info}")
        self.assertEqual(len([e for e in evs if e["direction"] == C2U and e["verb"] == "MAIL"]),
                         2, f"the later MAILs went upstream:\n{info}")
        self.assertEqual(s["auth_user"], USER)
        self.assertEqual(self.col(s, "auth_by"), "client", "the client authenticated by hand")
        self.assertEqual(self.col(s, "auth_mechanism"), "PLAIN")
        self.assertNoSecrets(m)

    def test_redact_users_keeps_the_user_out_of_a_failed_logins_record(self):
        """--redact-users (auth-F2): a failed login's note and the 454 explaining it say
        <redacted>, as the success path's note and 503 do; nothing of the record names USER."""
        m = self.start_auth(self.postfix.submission, "--redact-users", password=WRONG_PASSWORD)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            r = c.cmd("MAIL FROM:<sender@client.test>")
            self.assertRegex(r.raw.decode(),
                             r"^454 4\.7\.0 mailtap: \S+ refused AUTH PLAIN as <redacted>: 535 ",
                             "the explanation names the user <redacted>, as the 503 of the "
                             "success path does")
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        self.assertIsNone(s["auth_user"])
        notes = [e["note"] for e in events(self.db(m), s["id"])
                 if e["note"] and "could not authenticate" in e["note"]]
        self.assertEqual(len(notes), 1, notes)
        self.assertIn("as <redacted>", notes[0])
        files = mailtap_files(self.db(m))
        self.assertEqual(find_leaks(files, {"the user name": USER.encode()}), [],
                         "--redact-users: the user name reached the record")
        self.assertNoSecrets(m)

    def test_a_relaying_postfix_defers_while_mailtaps_password_is_wrong_then_delivers(self):
        """A staging MTA relaying everything through `--auth-user` (a second Postfix with
        relayhost=mailtap): mailtap's own login refused, the MTA's MAIL gets mailtap's 454 with
        the server's 535 quoted, so it keeps the message queued (a 5xx made Postfix bounce every
        queued message, where its own SASL client defers: smtp_sasl_auth_soft_bounce), and
        delivers it on its next try once the proxy runs with the right password. Postfix's
        smtp client runs as user postfix: mailtap serves it with --allow-local-user postfix, as
        docs/proxy.md tells an MTA's owner to."""
        m = self.start_auth(self.postfix.submission, "--allow-local-user", "postfix",
                            password=WRONG_PASSWORD)
        tok = h.unique_token("staged")
        relaying = {"mydestination": "", "virtual_mailbox_domains": "",
                    "virtual_mailbox_maps": "", "default_transport": "smtp",
                    "relay_transport": "smtp", "relayhost": f"[127.0.0.1]:{m.port}",
                    "smtp_tls_security_level": "none", "myhostname": "staging.client.test",
                    # a new connection for the retry, not one cached to the stopped proxy
                    "smtp_connection_cache_on_demand": "no"}
        with h.Postfix(self.pki, extra_main=relaying, users={}, mailboxes=()) as staging:
            h.run(["/usr/sbin/sendmail", "-C", staging.conf_dir, "-f", "sender@client.test",
                   "--", "bob@example.test"], input=h.make_message(tok, to_addr="bob@example.test"))

            def status(word):
                return [line for line in staging.maillog_text().splitlines()
                        if "to=<bob@example.test>" in line and f"status={word}" in line]
            first = wait_for(lambda: status("deferred") or status("bounced"), timeout=30,
                             what="the staging Postfix's first delivery attempt")
            self.assertIn("status=deferred", first[0], "mailtap's failed login must make a "
                          f"relaying MTA defer the message, not bounce it:\n{first[0]}")
            self.assertRegex(first[0], rf"454 4\.7\.0 mailtap: \S+ refused AUTH PLAIN as {USER}: "
                             r"535 5\.7\.8 Error: authentication failed.*; the user name or the "
                             r"password is wrong \(in reply to MAIL FROM command\)",
                             "the MTA's log says why, quoting the server")
            self.assertTrue(self.postfix.no_message(tok, wait=0.5), "nothing delivered yet")
            self.assertNoSecrets(m)

            m.stop()
            fixed = self.start_auth(self.postfix.submission, "--allow-local-user", "postfix",
                                    listen=f"127.0.0.1:{m.port}")
            h.run(["postqueue", "-c", staging.conf_dir, "-f"])  # its next try, now
            self.postfix.wait_for_message(tok, mailbox="bob")
            wait_for(lambda: status("sent"), timeout=30, what="the staging Postfix's status=sent")
            self.assertFalse(status("bounced"), staging.maillog_text()[-3000:])
        self.assertNoSecrets(fixed)

    def test_pipelined_ehlo_mail_rcpt_data_wait_for_mailtaps_auth(self):
        m = self.start_auth(self.postfix.submission)
        tok = h.unique_token("pipe")
        msg = h.make_message(tok)
        with h.SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            c.send(b"EHLO client.test\r\nMAIL FROM:<sender@client.test>\r\n"
                   + RELAY_RCPT.encode() + b"\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
            replies = [c.reply() for _ in range(5)]
            self.assertEqual([r.code for r in replies], [250, 250, 250, 250, 354],
                             "replies to EHLO+MAIL+RCPT+RCPT+DATA sent in one write, in order, "
                             "with mailtap's AUTH in between:\n" + "".join(map(str, replies)))
            self.assertNoAuthOffered(replies[0])
            self.assertTrue(replies[1].text.startswith("2.1.0"), replies[1])
            c.send(h.dot_stuff(msg) + b".\r\nQUIT\r\n")
            final, bye = c.reply(), c.reply()
            self.assertEqual((final.code, bye.code), (250, 221), (final, bye))
        self.assertDelivered(tok, msg)
        self.assertPostfixAuthenticated(final, "PLAIN")
        evs = self.assertAuthenticatedByMailtap(m, "PLAIN")
        sent = [e["verb"] for e in evs if e["direction"] == C2U and e["kind"] == "command"]
        self.assertEqual(sent, ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"],
                         "nothing lost or reordered:\n" + dump(evs))
        self.assertNoSecrets(m)

    def test_helo_client_gets_mailtaps_ehlo_and_auth(self):
        m = self.start_auth(self.postfix.submission)
        with h.NetcatClient(m.port) as nc:
            self.assertEqual(nc.reply().code, 220)
            helo = nc.cmd(b"HELO old-client.test")
            self.assertEqual((helo.code, len(helo.lines)), (250, 1), helo)
            tok = h.unique_token("helo")
            msg, final = self.send_message(nc, tok, rcpts=(RELAY_RCPT,
                                                           "RCPT TO:<alice@example.test>"))
        self.assertDelivered(tok, msg)
        self.assertPostfixAuthenticated(final, "PLAIN")
        evs = self.assertAuthenticatedByMailtap(m, "PLAIN")
        own_ehlo = [bytes(e["bytes"]) for e in evs if e["direction"] == M2U
                    and e["phase"] == "tls" and e["verb"] == "EHLO"]
        self.assertEqual(own_ehlo, [b"EHLO old-client.test\r\n"],
                         "after the HELO's 250 mailtap sends EHLO <the client's HELO name>:\n"
                         + dump(evs))
        self.assertNoSecrets(m)

    def test_tls_none_with_auth_user_refused_at_start(self):
        m = h.Mailtap(self.postfix.submission, tls="none", ready=False, env={ENV: PASSWORD},
                      extra_args=["--auth-user", USER, "--password-env", ENV])
        m.start()
        self.addCleanup(m.__exit__, None, None, None)
        rc = m.wait(timeout=15)
        self.assertNotEqual(rc, 0, "--auth-user with --tls none must be refused at start")
        self.assertNotIn(h.Mailtap.READY_PREFIX, m.output)
        self.assertIn("--tls none", m.stderr, "the refusal names --tls none")
        self.assertEqual(find_leaks({"stderr": m.stderr.encode()}, forbidden()), [])

    def test_tls_none_with_assisted_token_refused_at_start(self):
        """`--assist-auth --oauth2-token-cmd` makes mailtap send a token the client never typed
        (auth-F1): under --tls none it would cross in plain text, so the start is refused as
        --auth-user's is, before the token command ever runs."""
        ran = self.tmp / "token-command-ran"
        m = h.Mailtap(self.postfix.submission, tls="none", ready=False,
                      extra_args=["--assist-auth", "--oauth2-token-cmd",
                                  f"touch {shlex.quote(str(ran))}; echo {TOKEN}"])
        m.start()
        self.addCleanup(m.__exit__, None, None, None)
        rc = m.wait(timeout=15)
        self.assertNotEqual(rc, 0, "--oauth2-token-cmd with --tls none must be refused at start")
        self.assertNotIn(h.Mailtap.READY_PREFIX, m.output)
        self.assertIn("--oauth2-token-cmd with --tls none would send", m.stderr,
                      "the refusal names the token command and --tls none")
        self.assertFalse(ran.exists(), "the token command must not run")
        self.assertEqual(find_leaks({"stderr": m.stderr.encode()}, forbidden()), [])

    def test_insecure_with_held_credentials_refused_at_start(self):
        """--insecure takes any certificate, an attacker's on the path too: a password or a
        token mailtap holds would go to whoever presents one, as surely as in plain text. So
        the start is refused as under --tls none, with the way on (have the certificate
        verified), wherever --insecure comes from: the flag, MAILTAP_INSECURE or the file."""
        ran = self.tmp / "insecure-token-command-ran"
        token_cmd = f"touch {shlex.quote(str(ran))}; echo {TOKEN}"
        config = h.write_config_file(self.tmp / "insecure.toml", "[proxy]\ninsecure = true\n")
        sources = {"flag": ((), {}, "with --insecure would send"),
                   "env": ((), {"MAILTAP_INSECURE": "1"}, "env MAILTAP_INSECURE"),
                   "file": (("--config", str(config)), {}, f"file {config}:2 [proxy]")}
        secrets_held = {
            "password": (["--auth-user", USER, "--password-env", ENV],
                         "--auth-user with --insecure would send credentials to a server whose "
                         "certificate is not verified: anyone on the path can take them; "
                         "refusing"),
            "token": (["--auth-user", USER, "--oauth2-token-cmd", token_cmd],
                      "--oauth2-token-cmd with --insecure would send the token to a server whose "
                      "certificate is not verified: anyone on the path can take it; refusing"),
            "assisted token": (["--assist-auth", "--oauth2-token-cmd", token_cmd],
                               "--oauth2-token-cmd with --insecure would send the token"),
        }
        for source, (args, env, named) in sources.items():
            for held, (auth_args, said) in secrets_held.items():
                with self.subTest(source=source, held=held):
                    flag = ["--insecure"] if source == "flag" else []
                    m = h.Mailtap(self.postfix.submission, ready=False, env={ENV: PASSWORD, **env},
                                  extra_args=[*args, *flag, *auth_args])
                    m.start()
                    self.addCleanup(m.__exit__, None, None, None)
                    rc = m.wait(timeout=15)
                    self.assertEqual(rc, 2, m.stderr)
                    self.assertNotIn(h.Mailtap.READY_PREFIX, m.output)
                    self.assertIn(said, m.stderr)
                    self.assertIn("give the server's certificate, or the CA that issued it, "
                                  "with --ca-file FILE", m.stderr)
                    self.assertIn(named, m.stderr, "where --insecure came from")
                    self.assertFalse(ran.exists(), "the token command must not run")
                    self.assertEqual(find_leaks({"stderr": m.stderr.encode()}, forbidden()), [])

    # -- where the password comes from --------------------------------------------------------
    def authenticated_session(self, m: h.Mailtap):
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertNoAuthOffered(c.cmd("EHLO client.test"))
            self.assertEqual(c.cmd("MAIL FROM:<sender@client.test>").code, 250)
            self.assertEqual(c.cmd(RELAY_RCPT).code, 250, "mailtap authenticated upstream")
            c.cmd("QUIT")

    def test_password_file_and_password_command(self):
        f = self.tmp / "password"
        f.write_text(PASSWORD + "\n")
        f.chmod(0o600)
        m = self.start(self.postfix.submission, "--auth-user", USER, "--password-file", str(f),
                       password=None)
        self.authenticated_session(m)
        m2 = self.start(self.postfix.submission, "--auth-user", USER, "--password-cmd",
                        f"cat {f}", password=None)
        self.authenticated_session(m2)
        wait_ended(self.db(m), 1)
        wait_ended(self.db(m2), 1)
        self.assertNoSecrets(m, m2)

        f.chmod(0o644)
        bad = h.Mailtap(self.postfix.submission, ready=False, ca_file=self.pki.ca_cert,
                        extra_args=["--auth-user", USER, "--password-file", str(f)])
        bad.start()
        self.addCleanup(bad.__exit__, None, None, None)
        self.assertNotEqual(bad.wait(timeout=15), 0, "a password file readable by others is "
                            "refused at start")
        self.assertIn("permissions 0644 are too open", bad.stderr)

    def test_password_env_given_twice_leaves_neither_value_in_proc_environ(self):
        """execve allows a variable twice (a hand-made envp, some supervisors), and
        /proc/PID/environ shows every entry: each is wiped, not only the one getenv finds."""
        m = h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert,
                      extra_args=["--transcript", "-vv", "--auth-user", USER, "--password-env",
                                  ENV])
        m.preexec_fn = lambda: exec_with_variable_twice(
            m.args(), ENV.encode(), PASSWORD.encode(), WRONG_PASSWORD.encode())
        m.start()
        self.addCleanup(self._stop_mailtap, m)
        m.seen_cmdline = proc_file(m.proc.pid, "cmdline")
        m.seen_environ = proc_file(m.proc.pid, "environ")
        entries = [e for e in m.seen_environ.split(b"\0") if e.startswith(ENV.encode() + b"=")]
        self.assertEqual(len(entries), 2, "mailtap was started with the variable twice")
        self.authenticated_session(m)  # with the first value, as getenv gives it
        wait_ended(self.db(m), 1)
        self.assertNoSecrets(m)

    def test_a_token_command_beside_a_password_runs_only_for_a_server_that_offers_oauth(self):
        # The password is for servers that take no token (this Postfix offers PLAIN and LOGIN):
        # the token command, which may open a browser, must not run for them.
        ran = self.tmp / "token-command-ran"
        cmd = self.tmp / "token.sh"
        cmd.write_text(f"#!/bin/sh\ntouch {ran}\necho ya29.unused\n")
        cmd.chmod(0o700)
        m = self.start_auth(self.postfix.submission, "--oauth2-token-cmd", str(cmd))
        # The start line named only the token command, as if the password were not there.
        self.assertIn(f"mailtap: authenticating sessions as {USER} (OAuth token from "
                      "--oauth2-token-cmd where the server offers XOAUTH2 or OAUTHBEARER, else "
                      "the password)\n", m.wait_stderr("authenticating sessions as"))
        self.authenticated_session(m)
        wait_ended(self.db(m), 1)
        self.assertFalse(ran.exists(), "the token command ran for a server that takes passwords")

    def test_prompt_without_echo_when_stdin_is_a_terminal(self):
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        m = h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, stdin=slave,
                      ready=False, extra_args=["--transcript", "--auth-user", USER])
        m.start()
        self.addCleanup(m.__exit__, None, None, None)
        try:
            wait_for(lambda: not termios.tcgetattr(slave)[3] & termios.ECHO, timeout=10,
                     what="echo off")
        except AssertionError:
            self.fail("with no password option and a terminal on stdin, mailtap proxy "
                      f"--auth-user prompts with the echo off; output:\n{m.output}")
        os.write(master, PASSWORD.encode() + b"\n")
        wait_for(lambda: h.Mailtap.READY_PREFIX in m.output, timeout=15,
                 what="mailtap listening after the prompt")
        self.assertTrue(termios.tcgetattr(slave)[3] & termios.ECHO, "echo restored")
        m.seen_cmdline = Path(f"/proc/{m.proc.pid}/cmdline").read_bytes()
        m.seen_environ = b""
        screen = b""
        while True:
            if not select.select([master], [], [], 0.2)[0]:
                break
            screen += os.read(master, 4096)
        self.authenticated_session(m)
        wait_ended(self.db(m), 1)
        self.assertNotIn(PASSWORD.encode(), screen, "the password was not echoed")
        self.assertNoSecrets(m, extra={"terminal": screen})

    # -- --assist-auth: a person types credentials in clear --------------------------------------
    def assertRewritesRecorded(self, m: h.Mailtap, n_sessions: int, index: int, mech: str,
                               user: str):
        s = wait_ended(self.db(m), n_sessions)[index]
        evs = events(self.db(m), s["id"])
        info = dump(evs)
        self.assertTrue(assist_rewrites(evs),
                        f"--assist-auth's rewrite is recorded as a rewrite note:\n{info}")
        self.assertEqual(s["auth_user"], user)
        self.assertEqual(self.col(s, "auth_by"), "client", "the client authenticated (assisted)")
        self.assertEqual(self.col(s, "auth_mechanism"), mech)

    def test_assist_auth_login_typed_in_clear_from_nc(self):
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        with h.NetcatClient(m.port) as nc:
            nc.reply()
            ehlo = nc.cmd(b"EHLO client.test")
            self.assertTrue(offers_auth(ehlo), f"no --auth-user: AUTH stays offered:\n{ehlo}")
            self.assertEqual(nc.cmd(b"AUTH LOGIN").raw, b"334 Username:\r\n",
                             "--assist-auth shows LOGIN's prompts decoded")
            self.assertEqual(nc.cmd(USER.encode()).raw, b"334 Password:\r\n")
            r = nc.cmd(PASSWORD.encode())
            self.assertEqual(r.code, 235, f"user and password typed in clear, sent as base64: {r}")
            tok = h.unique_token("assist-login")
            msg, final = self.send_message(nc, tok, rcpts=(RELAY_RCPT,
                                                           "RCPT TO:<alice@example.test>"))
        self.assertDelivered(tok, msg)
        self.assertPostfixAuthenticated(final, "LOGIN")
        self.assertRewritesRecorded(m, 1, 0, "LOGIN", USER)
        self.assertNoSecrets(m)

    def test_assist_auth_plain_two_words_and_at_the_prompt_from_nc(self):
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        for n, (user, password, at_prompt) in enumerate(
                ((USER, PASSWORD, False), (SPACE_USER, SPACE_PASSWORD, True)), 1):
            with self.subTest(user=user, at_prompt=at_prompt), h.NetcatClient(m.port) as nc:
                nc.reply()
                nc.cmd(b"EHLO client.test")
                if at_prompt:
                    self.assertEqual(nc.cmd(b"AUTH PLAIN").code, 334)
                    r = nc.cmd(f"{user} {password}".encode())
                else:
                    r = nc.cmd(f"AUTH PLAIN {user} {password}".encode())
                self.assertEqual(r.code, 235, "AUTH PLAIN with the user name and the password "
                                 f"typed in clear (the password is the rest of the line): {r}")
                tok = h.unique_token("assist-plain")
                msg, final = self.send_message(nc, tok, rcpts=(RELAY_RCPT,
                                                               "RCPT TO:<alice@example.test>"))
                self.assertDelivered(tok, msg)
                self.assertPostfixAuthenticated(final, "PLAIN", user=user)
                self.assertRewritesRecorded(m, n, n - 1, "PLAIN", user)
        self.assertNoSecrets(m)

    def test_ctrl_c_at_the_password_prompt_cancels_the_exchange(self):
        """telnet's Ctrl-C at `334 Password:` (IAC IP IAC DO TM, glued to what is typed next):
        the person aborting. mailtap answers the DO TM (telnet shows nothing until then), sends
        the SASL cancel `*` in place of the line, and Postfix's 501 reaches the person. Nothing
        of the line (a half-typed password, the QUIT typed after Ctrl-C) goes anywhere."""
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        half = PASSWORD[:12]
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("AUTH LOGIN").raw, b"334 Username:\r\n")
            self.assertEqual(c.cmd(USER).raw, b"334 Password:\r\n")
            c.send(half.encode() + b"\xff\xf4\xff\xfd\x06QUIT\r\n")
            c.sock.settimeout(10)
            answer = b""
            while len(answer) < 3:
                chunk = c.sock.recv(3 - len(answer))
                self.assertTrue(chunk, "mailtap closed")
                answer += chunk
            self.assertEqual(answer, b"\xff\xfc\x06", "IAC WONT TM first")
            r = c.reply()
            self.assertEqual(r.code, 501, f"Postfix's answer to the cancel: {r}")
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        own = [e for e in evs if e["direction"] == M2U and e["kind"] == "auth"]
        self.assertEqual([bytes(e["bytes"]) for e in own], [b"*\r\n"], dump(evs))
        self.assertTrue(own[0]["note"].startswith("telnet interrupt (Ctrl-C) at the SASL prompt: "
                                                  "sent as the cancel *"), own[0]["note"])
        self.assertIsNone(s["auth_user"])
        extra = {f"half password form {i}": f for i, f in enumerate(secret_forms(half.encode()))}
        self.assertEqual(find_leaks({n: d for n, d in mailtap_files(self.db(m)).items()} |
                                    {"transcript": m.stdout.encode()}, extra), [])
        self.assertNoSecrets(m)

    def test_telnet_hides_the_password_typed_at_the_assisted_prompt(self):
        """The real telnet through a pty. Once it has negotiated an option (here `^]` `mode
        line`, which sends IAC WILL LINEMODE), mailtap sends IAC WILL ECHO after `334 Password:`
        and telnet stops echoing: the user name is on the screen, the password is not, and
        Postfix takes it. IAC WONT ECHO follows the password line, so what is typed after it is
        echoed again. Each is recorded as the octets mailtap wrote, and the transcript shows
        them. A telnet that negotiated nothing (Debian's, to a port other than 23) gets no IAC
        octet: its password stays on the screen, as docs/auth.md says."""
        from test_client_faults import telnet_screen
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        keys = [b"ehlo client.test\r", b"auth login\r", USER.encode() + b"\r",
                PASSWORD.encode() + b"\r", b"noop\r", b"quit\r"]
        screen = telnet_screen(m.port, [b"\x1d", b"mode line\r", *keys], settle=1.5)
        text = screen.decode(errors="replace")
        self.assertIn(b"334 Password:", screen, text)
        self.assertIn(USER.encode(), screen, "the user name is echoed:\n" + text)
        self.assertNotIn(PASSWORD.encode(), screen, "the password is not echoed:\n" + text)
        self.assertRegex(text, r"\n235 ", "Postfix took the password")
        self.assertIn(b"noop", screen, "echo is back after the password:\n" + text)
        self.assertIn(b"221", screen, text)
        [s] = wait_ended(self.db(m), 1)
        self.assertEqual(s["auth_user"], USER)
        evs = events(self.db(m), s["id"])
        echo = [(bytes(e["bytes"]), e["note"]) for e in evs
                if e["direction"] == "mailtap_to_client" and e["kind"] == "note"
                and (e["note"] or "").startswith("telnet echo")]
        self.assertEqual([b for b, _ in echo], [b"\xff\xfb\x01", b"\xff\xfc\x01"], dump(evs))
        self.assertIn("M: \\xff\\xfb\\x01   (telnet echo turned off at the password prompt",
                      m.stdout)

        plain = telnet_screen(m.port, keys, settle=1.5)
        self.assertIn(PASSWORD.encode(), plain, "without a negotiation telnet echoes it")
        self.assertRegex(plain.decode(errors="replace"), r"\n235 ")
        [_, s2] = wait_ended(self.db(m), 2)
        self.assertFalse([e for e in events(self.db(m), s2["id"])
                          if (e["note"] or "").startswith("telnet echo")])
        self.assertNoSecrets(m)

    def test_assist_auth_password_ending_in_a_space_is_said_by_show(self):
        """A space after the password typed in clear is sent as part of it (the password is the
        rest of the line): Postfix answers 535 and nothing on the screen says why. `mailtap show`
        does: the rewrite note says the password ended in a space, and nothing more of it."""
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd(f"AUTH PLAIN {USER} {PASSWORD} ").code, 535)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        self.assertIn("the password ends in a space, sent as part of it", self.show(m, s["id"]))
        self.assertNoSecrets(m)
        blobs = {**mailtap_files(self.db(m)), "stderr": m.stderr.encode(),
                 "transcript": m.stdout.encode()}
        self.assertEqual(find_leaks(blobs, {"PLAIN blob with the space":
                                            h.auth_plain(USER, PASSWORD + " ").encode()}), [])

    def test_without_assist_auth_nothing_changes(self):
        m = self.start(self.postfix.submission, password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            self.assertEqual(c.cmd("AUTH LOGIN").raw, b"334 VXNlcm5hbWU6\r\n",
                             "without --assist-auth the prompt is relayed as the server wrote it")
            self.assertEqual(c.cmd("*").code, 501)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        self.assertEqual([e for e in evs if e["kind"] == "rewrite"], [],
                         "no rewrite without --assist-auth:\n" + dump(evs))
        self.assertEqual([bytes(e["bytes"])[:12] for e in evs
                          if e["direction"] == C2U and e["verb"] == "AUTH"],
                         [b"AUTH LOGIN\r\n", b"*\r\n"], dump(evs))
        self.assertIsNone(s["auth_user"])

    def test_without_assist_auth_user_and_password_in_clear_get_mailtaps_help(self):
        """RFC 4954 allows one argument after the mechanism, so Postfix answers a user name
        and a password typed in clear `501 5.5.4 Syntax: AUTH mechanism`, which tells the person
        nothing. mailtap answers it itself, with the way to type them, and the password goes
        neither upstream nor into the record; the password typed again on the next line is kept
        out as after any refused AUTH."""
        m = self.start(self.postfix.submission, password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd(f"AUTH PLAIN {USER} {PASSWORD}")
            self.assertEqual(
                r.raw,
                b"501 5.5.4 mailtap: AUTH takes one argument after the mechanism, in base64 "
                b"(RFC 4954), so no server takes this line; not forwarded. To type the user name "
                b"and password as they are, restart mailtap proxy with --assist-auth; or type "
                b"what mailtap encode plain USER prints\r\n")
            self.assertEqual(c.cmd(PASSWORD).raw, SASL_RESPONSE_REFUSED.encode())
            # The advice works: what `mailtap encode plain USER` prints is taken.
            self.assertEqual(c.cmd(f"AUTH PLAIN {h.auth_plain(USER, PASSWORD)}").code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        self.assertEqual([bytes(e["bytes"])[:12] for e in evs
                          if e["direction"] == C2M and e["verb"] == "AUTH"],
                         [b"AUTH PLAIN ["], "the refused line is recorded, redacted, as "
                         "received by mailtap:\n" + dump(evs))
        self.assertEqual([bytes(e["bytes"])[:12] for e in evs
                          if e["direction"] == C2U and e["verb"] == "AUTH"],
                         [b"AUTH PLAIN ["], "only the encoded AUTH went upstream:\n" + dump(evs))
        self.assertEqual(s["auth_user"], USER)
        self.assertNoSecrets(m)

    def test_assist_auth_plain_with_the_user_name_alone_asks_for_the_password(self):
        """`AUTH PLAIN USER` with the password forgotten went upstream as a base64 initial
        response (Postfix: 535 another step is needed). A word that cannot be base64 is a user
        name: mailtap sends AUTH PLAIN alone and shows its 334 as a password prompt."""
        m = self.start(self.postfix.submission, "--assist-auth", password=None)
        with h.NetcatClient(m.port) as nc:
            nc.reply()
            nc.cmd(b"EHLO client.test")
            self.assertEqual(nc.cmd(f"AUTH PLAIN {USER}".encode()).raw, b"334 Password:\r\n")
            r = nc.cmd(PASSWORD.encode())
            self.assertEqual(r.code, 235, f"the password typed at the prompt: {r}")
            tok = h.unique_token("assist-plain-user")
            msg, final = self.send_message(nc, tok, rcpts=(RELAY_RCPT,
                                                           "RCPT TO:<alice@example.test>"))
        self.assertDelivered(tok, msg)
        self.assertPostfixAuthenticated(final, "PLAIN")
        self.assertRewritesRecorded(m, 1, 0, "PLAIN", USER)
        self.assertNoSecrets(m)
        self.assertNoSecrets(m)


class PostfixLoginOnlyTest(AuthCase):
    """A server that offers only AUTH LOGIN: mailtap answers its two prompts itself."""

    with_postfix = True
    postfix_kwargs = {"users": {USER: PASSWORD}, "bare_newline": "reject",
                      "extra_main": {"smtpd_sasl_mechanism_filter": "login"}}

    def test_login_with_no_auth_typed_from_telnet_and_nc(self):
        m = self.start_auth(self.postfix.submission)
        for n, kind in enumerate(("nc", "telnet"), 1):
            with self.subTest(client=kind), self.client(kind, m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertNoAuthOffered(self.typist(c)("EHLO client.test"))
                tok = h.unique_token(kind)
                msg, final = self.send_message(c, tok, rcpts=(RELAY_RCPT,
                                                              "RCPT TO:<alice@example.test>"))
                self.assertDelivered(tok, msg)
                queue_id = re.search(r"queued as (\w+)", final.text).group(1)
                wait_for(lambda: re.search(rf"{queue_id}: client=\S+, sasl_method=LOGIN",
                                           self.postfix.maillog_text()), timeout=10,
                         what="Postfix to log the message as sent after AUTH LOGIN")
                evs = self.assertAuthenticatedByMailtap(m, "LOGIN", n_sessions=n, index=n - 1)
                prompts = [e["reply_code"] for e in evs if e["direction"] == U2M
                           and e["phase"] == "tls" and e["verb"] == "AUTH"]
                self.assertEqual(prompts, [334, 334, 235], "LOGIN's two prompts and the 235 "
                                 "are recorded as upstream_to_mailtap:\n" + dump(evs))
        self.assertNoSecrets(m)


class OAuthProviderTest(AuthCase):
    """XOAUTH2 and OAUTHBEARER with a token command, Gmail's and Microsoft's failures."""

    def gmail(self, **kw):
        kw.setdefault("valid_tokens", {TOKEN})
        kw.setdefault("account", GMAIL_USER)
        return self.oauth_server("gmail", **kw)

    def start_oauth(self, server, tc: h.TokenCommand, *args, **kw) -> h.Mailtap:
        return self.start(server.address, "--auth-user", GMAIL_USER, "--oauth2-token-cmd",
                          tc.cmd, *args, **kw)

    def assertNoTokenSent(self, server, tokens):
        for s in server.sessions:
            for a in s.auths:
                self.assertNotIn(a.secret, tokens, f"the server was sent a token it must not "
                                 f"get: {a}")

    # -- success ------------------------------------------------------------------------------
    def test_xoauth2_with_a_token_command_and_no_auth_typed(self):
        server = self.gmail(passwords={GMAIL_USER: PASSWORD})
        tc = self.token_command([TOKEN])
        # a password too: with a token command mailtap still prefers XOAUTH2
        m = self.start_oauth(server, tc, "--password-env", ENV)
        for n, kind in enumerate(("telnet", "nc"), 1):
            with self.subTest(client=kind), self.client(kind, m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertNoAuthOffered(self.typist(c)("EHLO client.test"))
                self.send_message(c, h.unique_token(kind))
            sess = server.wait_sessions(n)[n - 1]
            sess.closed.wait(5)
            [attempt] = sess.auths
            self.assertEqual(attempt.lines, [
                b"AUTH XOAUTH2 " + b64(h.xoauth2_bytes(GMAIL_USER, TOKEN)).encode() + b"\r\n"],
                "XOAUTH2 as Google specifies it, as an initial response")
            self.assertEqual(attempt.code, 235)
            self.assertEqual(len(sess.messages), 1, "the message reached the server")
            self.assertAuthenticatedByMailtap(m, "XOAUTH2", user=GMAIL_USER, n_sessions=n,
                                              index=n - 1)
        self.assertEqual(tc.runs, 1, "the token is cached: the second session does not run the "
                         "token command again")
        env = tc.environ()
        self.assertNotIn(ENV, env, "the token command does not inherit --password-env's variable")
        self.assertEqual(find_leaks({"token command's environment": b"\n".join(env.values())},
                                    forbidden()), [])
        [s1, _] = wait_ended(self.db(m), 2)
        self.assertShowSays(m, s1["id"], GMAIL_USER, "XOAUTH2")
        self.assertNoSecrets(m)

    def test_the_token_command_and_the_agent_it_leaves_get_none_of_mailtaps_sockets(self):
        """oama and pizauth start an agent on first use that outlives the command: holding
        copies of mailtap's descriptors, it would keep the port bound after mailtap exits, and
        could read and write the plain-text client side of the sessions open when it started."""
        server = self.gmail()
        d = Path(tempfile.mkdtemp(prefix="agent-", dir=self.tmp))
        (d / "token").write_text(TOKEN + "\n")
        q = {name: shlex.quote(str(d / name)) for name in ("fds", "agent", "token")}
        # A child lists the command's descriptors: a shell redirecting a command of its own
        # (or reading a script file) holds a descriptor for it meanwhile.
        command = (f"sh -c 'ls /proc/$PPID/fd > \"$0\"' {q['fds']}; "
                   f"sleep 60 < /dev/null > /dev/null 2>&1 & echo $! > {q['agent']}; "
                   f"cat {q['token']}")
        m = self.start(server.address, "--auth-user", GMAIL_USER, "--oauth2-token-cmd", command,
                       password=None)
        with h.SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertNoAuthOffered(c.cmd("EHLO client.test"))
            agent = int((d / "agent").read_text())
            self.addCleanup(kill_if_running, agent)
            self.assertEqual(c.cmd("QUIT").code, 221)
            self.assertTrue(c.is_closed(5), "the session mailtap closed is closed for the "
                            "client, while the agent lives")
        self.assertEqual((d / "fds").read_text().split(), ["0", "1", "2"],
                         "the token command inherits stdin, stdout and stderr, nothing else")
        self.assertEqual(m.stop(), 0)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", m.port))  # EADDRINUSE while another process holds the listener
            s.listen()

    def test_oauthbearer_from_nc(self):
        server = self.gmail(mechs="LOGIN PLAIN OAUTHBEARER")
        tc = self.token_command([TOKEN])
        m = self.start_oauth(server, tc, password=None)
        with h.NetcatClient(m.port) as nc:
            nc.reply()
            self.assertNoAuthOffered(nc.cmd(b"EHLO client.test"))
            self.send_message(nc, h.unique_token("bearer"))
        sess = server.wait_sessions(1)[0]
        sess.closed.wait(5)
        [attempt] = sess.auths
        self.assertEqual((attempt.mechanism, attempt.code), ("OAUTHBEARER", 235), attempt)
        self.assertTrue(attempt.initial_response, attempt)
        self.assertEqual((attempt.fields["gs2"], attempt.fields.get("a")), ("n", GMAIL_USER))
        self.assertEqual((attempt.secret, attempt.fields["port"]), (TOKEN, str(server.port)),
                         "RFC 7628: auth=Bearer TOKEN, port= the upstream's port")
        self.assertIn(attempt.fields["host"], ("127.0.0.1", "localhost"),
                      "host= names the upstream")
        self.assertEqual(len(sess.messages), 1)
        self.assertAuthenticatedByMailtap(m, "OAUTHBEARER", user=GMAIL_USER)
        self.assertNoSecrets(m)

    def test_pipelined_commands_wait_for_a_slow_token_command(self):
        server = self.gmail()
        tc = self.token_command([TOKEN], delay=1.5)
        m = self.start_oauth(server, tc, password=None)
        with h.SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            c.send(b"EHLO client.test\r\nMAIL FROM:<sender@client.test>\r\n"
                   b"RCPT TO:<bob@elsewhere.test>\r\nDATA\r\n")
            replies = [c.reply() for _ in range(4)]
            self.assertEqual([r.code for r in replies], [250, 250, 250, 354],
                             "EHLO+MAIL+RCPT+DATA in one write wait for mailtap's AUTH and are "
                             "answered in order:\n" + "".join(map(str, replies)))
            self.assertNoAuthOffered(replies[0])
            c.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nQUIT\r\n")
            self.assertEqual([c.reply().code for _ in range(2)], [250, 221])
        sess = server.wait_sessions(1)[0]
        sess.closed.wait(5)
        verbs = [line.split(b" ")[0].rstrip(b"\r\n").upper() for phase, line in sess.commands
                 if phase == "tls"]
        self.assertEqual(verbs[:5], [b"EHLO", b"AUTH", b"MAIL", b"RCPT", b"DATA"],
                         "what the server received after TLS, in order")
        self.assertEqual(sess.messages, [b"Subject: pipelined\r\n\r\nhello\r\n.\r\n"])
        self.assertAuthenticatedByMailtap(m, "XOAUTH2", user=GMAIL_USER)
        self.assertNoSecrets(m)

    def test_a_slow_token_command_runs_while_the_session_is_set_up(self):
        """The command starts when the client connects, not after its EHLO: here the server
        pauses 4 s before its greeting (as postscreen does) and the command takes 7 s, so a
        client that waits 6 s for each reply (swaks --timeout 6) gets its EHLO reply about 3 s
        after its EHLO. Started after the EHLO, the command held that reply 7 s: swaks gave up,
        fell back to HELO and read every later reply against the wrong command."""
        server = self.gmail(greeting_delay=4)
        tc = self.token_command([TOKEN], delay=7)
        m = self.start_oauth(server, tc, password=None)
        cp = h.swaks(m.port, to="bob@elsewhere.test", extra=["--timeout", "6"])
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        self.assertNotIn("Timeout", out)
        self.assertEqual(cp.returncode, 0, out)
        sess = server.wait_sessions(1)[0]
        sess.closed.wait(5)
        self.assertEqual(len(sess.messages), 1, "the message reached the server")
        self.assertEqual(tc.runs, 1, "the command ran once, for the session")
        self.assertAuthenticatedByMailtap(m, "XOAUTH2", user=GMAIL_USER)
        self.assertNoSecrets(m)

    def test_a_hung_token_command_is_explained_before_swaks_gives_up(self):
        """swaks waits 30 s for each reply. A token command that hangs is killed at 20 s, so
        swaks gets its EHLO reply and then mailtap's 454 as the reply to its MAIL; at 30 s it
        gave up on EHLO, sent HELO and read each later reply against the wrong command."""
        server = self.gmail()
        command, _ = self.hung_token_command()
        m = self.start(server.address, "--auth-user", GMAIL_USER, "--oauth2-token-cmd", command,
                       password=None)
        cp = h.swaks(m.port, to="bob@elsewhere.test", extra=["--timeout", "30"])
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        self.assertNotIn("Timeout", out)
        self.assertNotIn("-> HELO", out)
        lines = out.splitlines()
        mail = next(i for i, line in enumerate(lines) if line.startswith(" -> MAIL FROM"))
        self.assertRegex(lines[mail + 1], r"^<\*\* 454 4\.7\.0 mailtap: cannot AUTH XOAUTH2 .*"
                         r"--oauth2-token-cmd did not finish within 20s and was killed", out)
        self.assertNoSecrets(m)

    def test_timeout_token_cmd_sets_the_token_commands_limit(self):
        """--timeout-token-cmd replaces the 20 s: a hung command is killed at 2 s (and said to
        be), the session going on as with the default; a limit of nothing is refused."""
        server = self.gmail()
        command, d = self.hung_token_command()
        m = self.start(server.address, "--auth-user", GMAIL_USER, "--oauth2-token-cmd", command,
                       "--timeout-token-cmd", "2s", password=None)
        started = time.monotonic()
        cp = h.swaks(m.port, to="bob@elsewhere.test", extra=["--timeout", "30"])
        took = time.monotonic() - started
        out = (cp.stdout + cp.stderr).decode(errors="replace")
        lines = out.splitlines()
        mail = next(i for i, line in enumerate(lines) if line.startswith(" -> MAIL FROM"))
        self.assertRegex(lines[mail + 1], r"^<\*\* 454 4\.7\.0 mailtap: cannot AUTH XOAUTH2 .*"
                         r"--oauth2-token-cmd did not finish within 2s and was killed", out)
        self.assertLess(took, 15, "the command was killed at 2 s, not at the default 20 s")
        self.assertTrue((d / "term").exists(), "the command was asked to end")
        for bad, why in (("0s", "must be more than zero"), ("soon", "expected a duration")):
            refused = h.Mailtap(server.address, ready=False, record=False,
                                extra_args=["--auth-user", GMAIL_USER, "--oauth2-token-cmd",
                                            command, "--timeout-token-cmd", bad]).start()
            self.assertEqual(refused.wait(timeout=15), 2, bad)
            self.assertIn(f"--timeout-token-cmd {bad}: {why}", refused.stderr, bad)

    # -- a rejected token ---------------------------------------------------------------------
    def test_rejected_cached_token_fetched_again_once_and_the_client_sees_nothing(self):
        # The first session's token is cached; the server revokes it before the second session,
        # which is refused it: the command runs again and AUTH goes once more.
        for mech, after_error in (("XOAUTH2", b"\r\n"), ("OAUTHBEARER", b"AQ==\r\n")):
            with self.subTest(mech=mech):
                server = self.gmail(mechs=f"LOGIN PLAIN {mech}")
                tc = self.token_command([TOKEN, FRESH_TOKEN])
                m = self.start_oauth(server, tc, password=None)
                sess = self.second_session_after_revoking(m, server, "retry")
                self.assertEqual([(a.secret, a.code) for a in sess.auths],
                                 [(TOKEN, 535), (FRESH_TOKEN, 235)],
                                 "a rejected cached token: the command runs again, AUTH once more")
                self.assertIsNotNone(sess.auths[0].error_challenge)
                self.assertEqual(sess.auths[0].after_error, after_error,
                                 f"{mech}'s answer to the error challenge")
                self.assertEqual(tc.runs, 2, "the token command ran exactly twice")
                evs = self.assertAuthenticatedByMailtap(m, mech, user=GMAIL_USER, n_sessions=2,
                                                        index=1)
                codes = [e["reply_code"] for e in evs if e["direction"] == U2M
                         and e["phase"] == "tls" and e["verb"] == "AUTH"]
                self.assertEqual(codes, [334, 535, 235], "both exchanges are recorded:\n"
                                 + dump(evs))
                self.assertNoSecrets(m)

    def test_fresh_token_refused_explained_without_a_second_run(self):
        # The token the command made for this session is refused: running the command again
        # would only keep the client waiting for its EHLO reply for the same refusal.
        server = self.gmail()
        tc = self.token_command([EXPIRED_TOKEN, NOT_A_TOKEN])
        m = self.start_oauth(server, tc, password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            ehlo = c.cmd("EHLO client.test")
            self.assertTrue(offers_auth(ehlo), f"the AUTH line is kept after a failure:\n{ehlo}")
            self.assertFailureLogged(m, GMAIL_USER, "XOAUTH2")
            r = c.cmd("MAIL FROM:<sender@client.test>")
            self.assertEqual(len(r.lines), 1, r)
            text = r.raw.decode()
            self.assertTrue(text.startswith("454 4.7.0 mailtap: "),
                            f"mailtap's temporary failure, whatever the server said: {text}")
            self.assertIn(f"refused AUTH XOAUTH2 as {GMAIL_USER}: 535-5.7.8 Username and "
                          "Password not accepted", text)
            self.assertIn("401", text, "the decoded error challenge is in the explanation")
            self.assertIn("authorize it again", text, "a fresh token refused: the command's "
                          "authorization is the thing to renew")
            self.assertEqual(tc.runs, 1, "no second run for a token made for this session")
            self.assertEqual([a.secret for a in server.sessions[0].auths], [EXPIRED_TOKEN],
                             "one AUTH attempt")
            # usable: the next MAIL goes to the server, which wants AUTH ...
            r = c.cmd("MAIL FROM:<sender@client.test>")
            self.assertEqual((r.code, len(r.lines)), (530, 2), f"Gmail's own answer: {r}")
            # ... and the person can authenticate by hand
            server.valid_tokens.add(FRESH_TOKEN)
            r = c.cmd("AUTH XOAUTH2 " + b64(h.xoauth2_bytes(GMAIL_USER, FRESH_TOKEN)))
            self.assertEqual(r.code, 235, r)
            self.send_message(c, h.unique_token("byhand"))
        [s] = wait_ended(self.db(m), 1)
        self.assertEqual(self.col(s, "auth_by"), "client")
        self.assertEqual(self.col(s, "auth_mechanism"), "XOAUTH2")
        self.assertEqual(tc.runs, 1)
        self.assertNoTokenSent(server, {NOT_A_TOKEN})
        self.assertNoSecrets(m)

    def test_failing_or_silent_token_command_explained(self):
        for what, tc, needle in (
                ("exit status", self.token_command([NOT_A_TOKEN], exit_status=3),
                 "exited with status 3"),
                ("no output", self.token_command([]), "printed nothing")):
            with self.subTest(what):
                server = self.gmail()
                m = self.start_oauth(server, tc, password=None)
                with h.SmtpSocket(m.port) as c:
                    c.reply()
                    ehlo = c.cmd("EHLO client.test")
                    self.assertTrue(offers_auth(ehlo), ehlo)
                    self.assertFailureLogged(m, GMAIL_USER, needle)
                    r = c.cmd("MAIL FROM:<sender@client.test>")
                    self.assertRegex(r.raw.decode(),
                                     rf"^454 4\.7\.0 mailtap: cannot AUTH XOAUTH2 as {GMAIL_USER}"
                                     rf" to \S+: .*--oauth2-token-cmd {needle}.*; run the token "
                                     r"command yourself", "the no_token explanation")
                    self.assertEqual(c.cmd("QUIT").code, 221)
                sess = server.wait_sessions(1)[0]
                sess.closed.wait(5)
                self.assertEqual(sess.auths, [], "no AUTH is sent without a token")
                self.assertGreaterEqual(tc.runs, 1)
                self.assertNoSecrets(m)

    def hung_token_command(self) -> tuple:
        """A token command that never prints: it writes its pid, and "term" if it is asked to
        end (SIGTERM) before it is killed. Returns (command, directory)."""
        d = Path(tempfile.mkdtemp(prefix="hung-", dir=self.tmp))
        script = d / "hang"
        script.write_text("#!/bin/sh\n"
                          f"echo $$ > {shlex.quote(str(d / 'pid'))}\n"
                          f"trap 'echo term > {shlex.quote(str(d / 'term'))}; exit 1' TERM\n"
                          "sleep 300 & wait $!\n")
        script.chmod(0o700)
        return str(script), d

    def test_shutdown_kills_a_hung_token_command(self):
        """Ctrl-C while the token command hangs: the session waiting for it is told and recorded
        at the end of --grace (at once on a second signal), the command is asked to end
        (SIGTERM, then SIGKILL), and mailtap exits then, not at the command's own timeout."""
        for how in ("grace ends", "second signal"):
            with self.subTest(how):
                server = self.gmail()
                command, d = self.hung_token_command()
                grace = "1s" if how == "grace ends" else "1h"
                m = self.start(server.address, "--auth-user", GMAIL_USER, "--oauth2-token-cmd",
                               command, "--grace", grace, password=None)
                with h.SmtpSocket(m.port) as c:
                    self.assertEqual(c.reply().code, 220)
                    c.send(b"EHLO client.test\r\n")
                    wait_for(lambda: (d / "pid").exists(), timeout=10, what="the token command")
                    t0 = time.monotonic()
                    m.signal(signal.SIGINT)
                    if how == "second signal":
                        m.wait_stderr("signal again to end them now")
                        m.signal(signal.SIGTERM)
                    r = c.reply(timeout=15)
                    self.assertEqual(r.code, 421, f"the waiting client is told: {r}")
                    # The client goes once told, as clients do: mailtap's lingering close after
                    # the 421 (2 s at most) does not wait for it.
                    c.close()
                    try:
                        rc = m.wait(timeout=15)
                    except Exception:
                        self.fail(f"mailtap still runs 15s after the shutdown began ({how}): it "
                                  f"waits for the hung token command\n{m.stderr[-2000:]}")
                    took = time.monotonic() - t0
                    self.assertEqual(rc, 0, m.stderr)
                # the token command's timeout is 20s: a logical bound, not a race with the clock
                self.assertLess(took, 15, "mailtap waited for the token command's own timeout")
                self.assertTrue((d / "term").exists(), "the token command got SIGTERM first")
                pid = int((d / "pid").read_text())
                self.assertTrue(gone(pid), "the token command is gone")
                [s] = wait_ended(self.db(m), 1)
                self.assertEqual(s["outcome"], "shutdown", dict(s))
                evs = events(self.db(m), s["id"])
                self.assertTrue([e for e in evs if e["direction"] == M2C
                                 and e["reply_code"] == 421], "the 421 is recorded:\n"
                                + dump(evs))
                self.assertNoSecrets(m)

    # -- what providers say -------------------------------------------------------------------
    def test_gmail_app_password_required(self):
        server = self.gmail(app_password_required=True)
        m = self.start_auth(server.address, user=GMAIL_USER)
        with h.NetcatClient(m.port) as nc:
            nc.reply()
            nc.cmd(b"EHLO client.test")
            r = nc.cmd(b"MAIL FROM:<sender@client.test>")
            self.assertEqual(len(r.lines), 1, r)
            self.assertRegex(
                r.raw.decode(),
                rf"^454 4\.7\.0 mailtap: \S+ refused AUTH PLAIN as {re.escape(GMAIL_USER)}: "
                r"534-5\.7\.9 Application-specific password required \(see https://support\."
                r"google\.com/mail/\?p=InvalidSecondFactor\); create an app password",
                "Gmail's 534-5.7.9 explained")
            self.assertEqual(nc.cmd(b"QUIT").code, 221)
        [attempt] = server.wait_sessions(1)[0].auths
        self.assertEqual((attempt.mechanism, attempt.user, attempt.secret),
                         ("PLAIN", GMAIL_USER, PASSWORD), "with a password: PLAIN")
        self.assertNoSecrets(m)

    def test_microsoft365_xoauth2_only(self):
        # a token: XOAUTH2 (a refused cached token is a bare 535 5.7.3: still fetched again once)
        server = self.oauth_server("microsoft365", valid_tokens={TOKEN}, account=GMAIL_USER)
        tc = self.token_command([TOKEN, FRESH_TOKEN])
        m = self.start_oauth(server, tc, password=None)
        sess = self.second_session_after_revoking(m, server, "m365")
        self.assertEqual([(a.mechanism, a.secret, a.code) for a in sess.auths],
                         [("XOAUTH2", TOKEN, 535), ("XOAUTH2", FRESH_TOKEN, 235)])
        self.assertEqual(tc.runs, 2)
        self.assertEqual(len(sess.messages), 1)
        self.assertAuthenticatedByMailtap(m, "XOAUTH2", user=GMAIL_USER, n_sessions=2, index=1)

        # a password: LOGIN, refused because basic authentication is off
        server2 = self.oauth_server("microsoft365")
        m2 = self.start_auth(server2.address, user=GMAIL_USER)
        with h.SmtpSocket(m2.port) as c:
            c.reply()
            c.cmd("EHLO client.test")
            r = c.cmd("MAIL FROM:<sender@client.test>")
            self.assertRegex(r.raw.decode(),
                             rf"^454 4\.7\.0 mailtap: \S+ refused AUTH LOGIN as "
                             rf"{re.escape(GMAIL_USER)}: 535 5\.7\.139 Authentication "
                             r"unsuccessful, basic authentication is disabled.*; Microsoft 365 "
                             r"takes no passwords here: use XOAUTH2 with --oauth2-token-cmd")
            c.cmd("QUIT")
        [attempt] = server2.wait_sessions(1)[0].auths
        self.assertEqual((attempt.mechanism, attempt.user, attempt.secret),
                         ("LOGIN", GMAIL_USER, PASSWORD))
        self.assertNoSecrets(m, m2)

    # -- --assist-auth with a token -----------------------------------------------------------
    def test_assist_auth_xoauth2_and_oauthbearer_user_use_the_token_command(self):
        server = self.gmail()
        tc = self.token_command([TOKEN])
        m = self.start(server.address, "--assist-auth", "--oauth2-token-cmd", tc.cmd,
                       password=None)
        for n, mech in enumerate(("XOAUTH2", "OAUTHBEARER"), 1):
            with self.subTest(mech=mech), h.NetcatClient(m.port) as nc:
                nc.reply()
                self.assertTrue(offers_auth(nc.cmd(b"EHLO client.test")))
                r = nc.cmd(f"AUTH {mech} {GMAIL_USER}".encode())
                self.assertEqual(r.code, 235, f"AUTH {mech} USER with --assist-auth: {r}")
                self.send_message(nc, h.unique_token("assist-" + mech))
                sess = server.wait_sessions(n)[n - 1]
                sess.closed.wait(5)
                [attempt] = sess.auths
                self.assertEqual((attempt.mechanism, attempt.user, attempt.secret, attempt.code),
                                 (mech, GMAIL_USER, TOKEN, 235), attempt)
                s = wait_ended(self.db(m), n)[n - 1]
                evs = events(self.db(m), s["id"])
                self.assertTrue(assist_rewrites(evs),
                                "the rewrite is recorded as a rewrite note:\n" + dump(evs))
                self.assertEqual((self.col(s, "auth_by"), self.col(s, "auth_mechanism")),
                                 ("client", mech))
        self.assertNoSecrets(m)

    def test_sasl_responses_behind_an_auth_mailtap_answered_are_not_forwarded(self):
        """Secrets finding 7: after mailtap answers a client's AUTH itself (503 when it has
        authenticated, 530 before the client's STARTTLS under --local-tls), the client's SASL
        responses, pipelined or typed after the refusal, are answered by mailtap: the server
        never gets them as commands, where it might log them."""
        blob = h.auth_plain("alice", ALICE_PASSWORD)
        b64_password = base64.b64encode(ALICE_PASSWORD.encode()).decode()
        server = self.gmail()
        tc = self.token_command([TOKEN] * 4)
        config_home = Path(tempfile.mkdtemp(prefix="xdg-config-", dir=self.tmp))
        setups = {
            "503 --auth-user": (["--auth-user", GMAIL_USER, "--oauth2-token-cmd", tc.cmd], 503),
            "530 --local-tls": (["--local-tls", "starttls"], 530),
        }
        for name, (args, code) in setups.items():
            with self.subTest(setup=name):
                m = self.start(server.address, *args, password=None,
                               env={"XDG_CONFIG_HOME": str(config_home)})
                with h.SmtpSocket(m.port) as c:
                    c.reply()
                    self.assertEqual(c.cmd("EHLO client.test").code, 250)
                    # pipelined behind the AUTH
                    c.send(f"AUTH PLAIN\r\n{blob}\r\n".encode())
                    self.assertEqual(c.reply().code, code)
                    self.assertEqual(c.reply().raw.decode(), SASL_RESPONSE_REFUSED)
                    # typed after the refusal, up to the first line with a verb
                    self.assertEqual(c.cmd("AUTH LOGIN").code, code)
                    self.assertEqual(c.cmd("YWxpY2U=").raw.decode(), SASL_RESPONSE_REFUSED)
                    self.assertEqual(c.cmd(b64_password).raw.decode(), SASL_RESPONSE_REFUSED)
                    self.assertEqual(c.cmd(ALICE_PASSWORD).raw.decode(), SASL_RESPONSE_REFUSED)
                    self.assertEqual(c.cmd("NOOP").code, 250)
                    self.assertEqual(c.cmd("QUIT").code, 221)
                [s] = wait_ended(self.db(m), 1)
                evs = events(self.db(m), s["id"])
                kept = [e for e in evs if e["direction"] == C2M and e["kind"] == "command"]
                self.assertEqual(len(kept), 4, dump(evs))
                self.assertTrue(all(e["redacted"] for e in kept), dump(evs))
                self.assertFalse([e for e in evs if e["direction"] == C2U and not e["verb"]],
                                 f"a line without a verb was forwarded:\n{dump(evs)}")
                self.assertNoSecrets(m)
                m.stop()
        received = b"".join(bytes(x.pre_tls) + bytes(x.post_tls)
                            for x in server.wait_sessions(len(setups)))
        for secret in (blob, b64_password, ALICE_PASSWORD, "YWxpY2U="):
            self.assertNotIn(secret.encode(), received, "the server got a SASL response")

    def test_assist_auth_lines_behind_an_auth_whose_token_command_failed_stay_out_of_the_record(
            self):
        """A token command that fails ends the AUTH exchange with mailtap's own 454, as the 504
        without --oauth2-token-cmd does: what the client pipelined behind the AUTH (here a token
        of its own) is taken for a SASL response: answered by mailtap, not forwarded, and kept
        out of the record."""
        server = self.gmail()
        tc = self.token_command([NOT_A_TOKEN], exit_status=3)
        m = self.start(server.address, "--assist-auth", "--oauth2-token-cmd", tc.cmd,
                       password=None)
        with h.SmtpSocket(m.port) as c:
            c.reply()
            self.assertTrue(offers_auth(c.cmd("EHLO client.test")))
            c.send(f"AUTH XOAUTH2 {GMAIL_USER}\r\n{PIPELINED_TOKEN}\r\n".encode())
            r = c.reply()
            self.assertRegex(r.raw.decode(), r"^454 4\.7\.0 mailtap: no access token for AUTH: "
                             r".*exited with status 3")
            behind = c.reply()
            self.assertEqual(behind.raw.decode(), SASL_RESPONSE_REFUSED,
                             "mailtap answers the line behind the AUTH itself")
            self.assertEqual(c.cmd("QUIT").code, 221)
        sess = server.wait_sessions(1)[0]
        sess.closed.wait(5)
        self.assertEqual(sess.auths, [], "no AUTH is sent without a token")
        [s] = wait_ended(self.db(m), 1)
        evs = events(self.db(m), s["id"])
        info = dump(evs)
        relayed = [e for e in evs if e["direction"] == C2M and e["kind"] == "command"
                   and e["wire_size"] == len(PIPELINED_TOKEN) + 2]
        self.assertEqual(len(relayed), 1, f"the line behind the AUTH is not recorded as "
                         f"answered by mailtap:\n{info}")
        self.assertNotIn(PIPELINED_TOKEN.encode(), bytes(sess.post_tls),
                         "the line behind the AUTH is not forwarded")
        self.assertTrue(relayed[0]["redacted"], f"the line behind the AUTH is recorded in "
                        f"clear:\n{info}")
        self.assertFalse(relayed[0]["verb"], f"the line behind the AUTH has a verb:\n{info}")
        self.assertEqual(bytes(relayed[0]["bytes"]),
                         f"[<redacted {len(PIPELINED_TOKEN) + 2} bytes>]\r\n".encode(), info)
        # The AUTH line mailtap answered is recorded through the redactor, as the 504's is.
        refused = [e for e in evs if e["direction"] == C2M and e["kind"] == "auth"]
        self.assertEqual([e["wire_size"] for e in refused],
                         [len(f"AUTH XOAUTH2 {GMAIL_USER}\r\n")],
                         f"the AUTH line mailtap answered is not recorded:\n{info}")
        self.assertTrue(bytes(refused[0]["bytes"]).startswith(b"AUTH XOAUTH2 "), info)
        self.assertLess(refused[0]["seq"], relayed[0]["seq"], info)
        self.assertNoSecrets(m)


class CoreDumpTest(AuthCase):
    """A crash (a bug, abort(), a failed assertion) of a proxy that holds a password or a token
    leaves no core file with it in clear, and the user's other processes cannot read its
    memory; a proxy without one stays debuggable."""

    def start_in(self, cwd: Path, *args, **kw) -> h.Mailtap:
        """start(), in `cwd` and with as large a core size limit as the test may give."""
        def unlimited_cores_in_cwd():
            _, hard = resource.getrlimit(resource.RLIMIT_CORE)
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
            os.chdir(cwd)
        return self.start(self.oauth_server("gmail").address, *args,
                          preexec_fn=unlimited_cores_in_cwd, **kw)

    def crash(self, m: h.Mailtap, cwd: Path) -> list:
        """SIGSEGV, as a bug would; the files the crash left in `cwd` (a core_pattern that
        writes elsewhere, or pipes to systemd-coredump or apport, leaves none here)."""
        m.signal(signal.SIGSEGV)
        self.assertLess(m.wait(10), 0, "killed by the signal (or abort() in a sanitizer build)")
        time.sleep(0.5)  # the kernel writes the core as the process ends
        return sorted(p.name for p in cwd.iterdir())

    def test_no_core_file_and_no_memory_access_while_a_secret_is_held(self):
        control = Path(tempfile.mkdtemp(prefix="cwd-", dir=self.tmp))
        m = self.start_in(control, password=None)
        limit = core_size_limit(m.proc.pid)
        if os.geteuid() != 0:
            self.assertFalse(not_dumpable(m.proc.pid), "without a secret, mailtap is dumpable")
        cores_observable = self.crash(m, control) != []
        tc = self.token_command([TOKEN])
        for source, args, password in (
                ("--password-env", ["--auth-user", USER, "--password-env", ENV], PASSWORD),
                ("--oauth2-token-cmd", ["--auth-user", GMAIL_USER, "--oauth2-token-cmd", tc.cmd],
                 None)):
            with self.subTest(source=source):
                cwd = Path(tempfile.mkdtemp(prefix="cwd-", dir=self.tmp))
                m = self.start_in(cwd, *args, password=password)
                self.assertLessEqual(core_size_limit(m.proc.pid), 1,
                                     f"with {source}, mailtap lowers its core size limit (the "
                                     f"limit it was given: {limit})")
                if os.geteuid() != 0:
                    self.assertTrue(not_dumpable(m.proc.pid), f"with {source}, mailtap is not "
                                    "dumpable: its /proc/PID files are root's")
                self.assertEqual(self.crash(m, cwd), [],
                                 f"with {source}, a crash leaves no core file (without a secret "
                                 f"it {'does' if cores_observable else 'does not either here'})")

    def test_the_local_tls_key_is_kept_out_of_core_files(self):
        """--local-tls holds a TLS server key for the whole run, the one that protects the
        clients' AUTH: read from --local-key or made by mailtap, it is a secret of its own."""
        config_home = Path(tempfile.mkdtemp(prefix="xdg-config-", dir=self.tmp))
        for what, args in (
                ("--local-key", ["--local-tls", "starttls", "--local-cert",
                                 str(self.pki.valid_cert), "--local-key",
                                 str(self.pki.valid_key)]),
                ("the key mailtap makes", ["--local-tls", "starttls"])):
            with self.subTest(key=what):
                cwd = Path(tempfile.mkdtemp(prefix="cwd-", dir=self.tmp))
                m = self.start_in(cwd, *args, password=None,
                                  env={"XDG_CONFIG_HOME": str(config_home)})
                self.assertLessEqual(core_size_limit(m.proc.pid), 1,
                                     f"with {what}, mailtap lowers its core size limit")
                if os.geteuid() != 0:
                    self.assertTrue(not_dumpable(m.proc.pid), f"with {what}, mailtap is not "
                                    "dumpable: its /proc/PID files are root's")
                self.assertEqual(self.crash(m, cwd), [],
                                 f"with {what}, a crash leaves no core file")

if __name__ == "__main__":
    h.main()
