"""Recording through the real proxy: where the database lives, what a session leaves in it,
and that no AUTH secret reaches the database, its WAL, the transcript or the log.

Every check reads the database the way a user would (sqlite3, read-only, while mailtap runs)
after real sessions against the private Postfix (swaks, smtplib, nc, raw sockets) or a scripted
fake server.  Faults (kill -9, unwritable/locked/full database, byte accounting) are in
test_recording_faults.py, which imports the helpers below.
"""

import base64
import calendar
import hashlib
import os
import re
import secrets
import smtplib
import sqlite3
import json
import subprocess
import ssl
import sys
import time
from pathlib import Path
from typing import Union

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    BodySink, IntegrationCase, Mailtap, NetcatClient, SmtpSocket, auth_plain, closed_port,
    dot_stuff, first_reply_421, free_port, mailtap_bin, main, make_message, smtplib_send, swaks,
    recorded_body, start_data, unique_token)

ISO_UTC_US = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def query(db: Union[str, Path], sql: str, args=()) -> list:
    """Rows of `sql` from a read-only connection (like `sqlite3 -readonly` while mailtap runs)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wait_ended(db, count: int, timeout: float = 15.0) -> list:
    """Wait until `count` sessions have ended_at set; returns those session rows by id."""
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        if Path(db).exists():
            rows = query(db, "SELECT * FROM sessions WHERE ended_at IS NOT NULL ORDER BY id")
            if len(rows) >= count:
                return rows
        time.sleep(0.05)
    raise AssertionError(f"only {len(rows)} of {count} sessions ended in {db}")


def events(db, session_id: int) -> list:
    return query(db, "SELECT * FROM events WHERE session_id = ? ORDER BY seq", (session_id,))


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def secret_forms(secret: bytes) -> list[bytes]:
    """The secret, its base64 encoding, and the part of its base64 encoding that appears
    whatever its offset inside a larger base64 blob (3 alignments)."""
    forms = [secret, b64(secret), b64(secret).rstrip(b"=")]
    for shift in range(3):
        enc = b64(b"\0" * shift + secret)
        # characters fully determined by the secret alone: skip the ones that mix in the
        # prefix, and the last group (mixed with whatever follows)
        core = enc[(shift * 8 + 5) // 6 + 1:len(enc) - 4]
        if len(core) >= 8:
            forms.append(core)
    return forms


def mailtap_files(db: Union[str, Path]) -> dict[str, bytes]:
    """Raw bytes of the database file, its -wal/-shm (those that exist) and the body files of
    its large messages (-bodies/<session id>)."""
    out = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db) + suffix)
        if p.exists():
            out[p.name] = p.read_bytes()
    bodies = Path(str(db) + "-bodies")
    if bodies.is_dir():
        for p in sorted(bodies.iterdir()):
            out[f"{bodies.name}/{p.name}"] = p.read_bytes()
    return out


def find_leaks(blobs: dict[str, bytes], forbidden: dict[str, bytes]) -> list[str]:
    """'what in where' for every forbidden byte string found in a blob."""
    leaks = []
    for where, data in blobs.items():
        for what, needle in forbidden.items():
            if needle and needle in data:
                leaks.append(f"{what} ({needle[:40]!r}) in {where}")
    return leaks


class MailtapDefaultDb(Mailtap):
    """Mailtap without --db, so the path comes from MAILTAP_DB / XDG_DATA_HOME / HOME."""

    def args(self) -> list[str]:
        a = super().args()
        if "--db" in a:
            i = a.index("--db")
            del a[i:i + 2]
        return a


def certificates_of(db, session_id: int) -> list:
    """A session's chain as recorded, in order, each with its DER (stored once in
    certificate_ders since schema version 7, in the row itself before)."""
    return query(db, "SELECT c.position, c.sha256, c.subject, c.issuer, c.not_before, "
                     "c.not_after, CASE WHEN length(c.der) > 0 THEN c.der ELSE d.der END AS der "
                     "FROM certificates c LEFT JOIN certificate_ders d ON d.sha256 = c.sha256 "
                     "WHERE c.session_id = ? ORDER BY c.position", (session_id,))


def file_mode(p: Union[str, Path]) -> int:
    return os.stat(p).st_mode & 0o777


def ehlo_names(db) -> dict:
    """The client's EHLO name in each session, by session id."""
    rows = query(db, "SELECT session_id, CAST(bytes AS TEXT) AS line FROM events "
                     "WHERE verb = 'EHLO' AND direction = 'client_to_upstream'")
    return {r["session_id"]: r["line"].split()[1] for r in rows}


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pem_to_der(pem_path) -> bytes:
    text = Path(pem_path).read_text()
    block = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(block.group(0))


# Distinctive random credentials, so a hit in a scan can only be a leak.
def _user(prefix: str) -> str:
    return prefix + secrets.token_hex(4)


def _password() -> str:
    return "Pw-" + secrets.token_urlsafe(18)


PLAIN_IR_USER, PLAIN_IR_PW = _user("plainir"), _password()      # AUTH PLAIN <initial response>
PLAIN_334_USER, PLAIN_334_PW = _user("plaincont"), _password()  # AUTH PLAIN, 334, response
LOGIN_USER, LOGIN_PW = _user("loginstep"), _password()          # AUTH LOGIN, 334, user, 334, pw
LOGIN_IR_USER, LOGIN_IR_PW = _user("logininl"), _password()     # AUTH LOGIN <b64 user>, 334, pw
XOAUTH2_USER, XOAUTH2_TOKEN = _user("oauth") + "@gmail.test", "ya29." + secrets.token_urlsafe(40)
RANDOM_USERS = {PLAIN_IR_USER: PLAIN_IR_PW, PLAIN_334_USER: PLAIN_334_PW, LOGIN_USER: LOGIN_PW,
                LOGIN_IR_USER: LOGIN_IR_PW}


def forbidden_secrets() -> dict[str, bytes]:
    """Every form of every secret that must never be written anywhere."""
    out = {}
    for user, pw in RANDOM_USERS.items():
        for i, form in enumerate(secret_forms(pw.encode())):
            out[f"password of {user} form {i}"] = form
        for authzid in ("", user):
            blob = f"{authzid}\0{user}\0{pw}".encode()
            out[f"PLAIN blob of {user} authzid={authzid!r}"] = b64(blob)
    for i, form in enumerate(secret_forms(XOAUTH2_TOKEN.encode())):
        out[f"XOAUTH2 token form {i}"] = form
    xoauth = f"user={XOAUTH2_USER}\x01auth=Bearer {XOAUTH2_TOKEN}\x01\x01".encode()
    out["XOAUTH2 blob"] = xoauth
    out["XOAUTH2 blob base64"] = b64(xoauth)
    out["Bearer line"] = f"Bearer {XOAUTH2_TOKEN}".encode()
    return out


class RecordingLocationTest(IntegrationCase):
    """--db, MAILTAP_DB, the XDG default, modes 0600/0700, --no-record."""

    def one_session(self, m: Mailtap) -> None:
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)

    def start(self, fake, env: dict, cls=MailtapDefaultDb, **kw) -> Mailtap:
        m = cls(fake.address, ca_file=self.pki.ca_cert, env=env, **kw)
        old = os.umask(0)  # "whatever the umask": the modes must not come from it
        try:
            m.start()
        finally:
            os.umask(old)
        self.addCleanup(m.__exit__, None, None, None)
        return m

    def test_xdg_default_created_private_on_first_use(self):
        fake = self.fake("good")
        xdg = self.tmp / "xdg-data"  # does not exist yet
        home = self.tmp / "home-xdg"
        home.mkdir()
        m = self.start(fake, {"XDG_DATA_HOME": str(xdg), "HOME": str(home), "MAILTAP_DB": ""})
        db = xdg / "mailtap" / "mailtap.db"
        wait_for(lambda: f"recording to {db}" in m.stderr, 5, "'recording to PATH' on stderr")
        self.assertTrue(db.is_file(), m.stderr)
        self.assertEqual(file_mode(db), 0o600)
        self.assertEqual(file_mode(db.parent), 0o700)
        self.assertEqual(file_mode(xdg), 0o700, "missing parents are created 0700 too")
        self.one_session(m)
        wait_ended(db, 1)
        for suffix in ("-wal", "-shm"):
            p = Path(str(db) + suffix)
            if p.exists():
                self.assertEqual(file_mode(p), 0o600, p.name)
        self.assertEqual(list(home.iterdir()), [], "nothing under $HOME when XDG_DATA_HOME is set")

    def test_first_start_at_the_default_names_the_record_an_older_unit_left(self):
        """The systemd user unit recorded to $XDG_STATE_HOME/mailtap (StateDirectory=); it now
        records to the default, as everything else. Its first start after the upgrade begins a
        new record and says where the old one is (the real XDG_STATE_HOME, not ~/.local/state);
        later starts, with the default there, say nothing."""
        fake = self.fake("good")
        home = self.tmp / "home-older-unit"
        state = self.tmp / "xdg-state-older"
        older = state / "mailtap" / "mailtap.db"
        older.parent.mkdir(parents=True)
        older.write_bytes(b"")
        home.mkdir()
        env = {"HOME": str(home), "XDG_STATE_HOME": str(state), "XDG_DATA_HOME": "",
               "MAILTAP_DB": ""}
        m = self.start(fake, env)
        db = home / ".local" / "share" / "mailtap" / "mailtap.db"
        wait_for(lambda: f"recording to {db}" in m.stderr, 5, "'recording to PATH' on stderr")
        self.assertIn(f"WARNING: the systemd user unit of an older mailtap recorded to {older}; "
                      f"mailtap now records to {db}, the default of every command", m.stderr)
        self.assertEqual(m.stop(), 0, m.stderr)
        m2 = self.start(fake, env)
        wait_for(lambda: f"recording to {db}" in m2.stderr, 5, "'recording to PATH' on stderr")
        self.assertNotIn("older mailtap", m2.stderr)

    def test_mailtap_db_environment_and_db_option(self):
        fake = self.fake("good")
        env_db = self.tmp / "from-env" / "sub" / "env.db"
        m = self.start(fake, {"MAILTAP_DB": str(env_db), "XDG_DATA_HOME": str(self.tmp / "unused")})
        self.one_session(m)
        self.assertEqual(len(wait_ended(env_db, 1)), 1)
        self.assertEqual(file_mode(env_db), 0o600)
        self.assertEqual(file_mode(env_db.parent), 0o700)
        self.assertFalse((self.tmp / "unused").exists())
        m.stop()
        # --db wins over MAILTAP_DB
        opt_db = self.tmp / "opt" / "opt.db"
        m2 = self.start(fake, {"MAILTAP_DB": str(env_db)}, cls=Mailtap, db=opt_db)
        self.one_session(m2)
        self.assertEqual(len(wait_ended(opt_db, 1)), 1)
        self.assertEqual(len(query(env_db, "SELECT id FROM sessions")), 1, "env db untouched")

    def test_no_record_creates_nothing(self):
        fake = self.fake("good")
        xdg, home = self.tmp / "xdg-norec", self.tmp / "home-norec"
        home.mkdir()
        env = {"XDG_DATA_HOME": str(xdg), "HOME": str(home), "MAILTAP_DB": str(self.tmp / "e.db")}
        m = self.start(fake, env, cls=Mailtap, record=False)
        self.assertIn("--no-record", m.args())
        wait_for(lambda: "recording off" in m.stderr, 5, "'recording off' on stderr")
        self.one_session(m)
        fake.wait_sessions(1)[0].closed.wait(5)
        self.assertEqual(m.stop(), 0, m.stderr)
        self.assertFalse(xdg.exists())
        self.assertEqual(list(home.iterdir()), [])
        self.assertFalse((self.tmp / "e.db").exists())
        # and --db with --no-record is a contradiction, not a guess
        bad = Mailtap(fake.address, ca_file=self.pki.ca_cert, record=False, ready=False,
                      extra_args=["--db", str(self.tmp / "x.db")])
        bad.start()
        self.addCleanup(bad.__exit__, None, None, None)
        self.assertNotEqual(bad.wait(10), 0)
        self.assertIn("contradict", bad.stderr)


    def test_no_path_at_all_is_a_clear_error(self):
        fake = self.fake("good")
        env = {k: v for k, v in os.environ.items()
               if k not in ("HOME", "XDG_DATA_HOME", "MAILTAP_DB")}
        cp = subprocess.run([str(mailtap_bin()), "proxy", "--upstream", fake.address,
                             "--listen", f"127.0.0.1:{free_port()}"],
                            env=env, capture_output=True, timeout=20)
        err = cp.stderr.decode()
        self.assertEqual(cp.returncode, 2, err)
        self.assertEqual(err.count("no database path"), 1, err)
        self.assertIn("MAILTAP_DB", err)
        self.assertIn("--no-record", err)

    def test_root_with_another_users_home_makes_nothing_there(self):
        """`sudo -E mailtap proxy`, `su -m`, a root cron job that keeps HOME: the default paths
        are in a home that is not root's. Making ~/.local (or ~/.config) there root-owned 0700
        would shut the user out of their own ~/.local, so mailtap refuses and says why."""
        if os.geteuid() != 0:
            self.skipTest("needs root: a root run with another user's HOME")
        fake = self.fake("good")
        home = self.tmp / "user-home"
        home.mkdir()
        os.chown(home, 65534, 65534)
        env = {k: v for k, v in os.environ.items()
               if k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "MAILTAP_DB")}
        env["HOME"] = str(home)
        for extra in ([], ["--no-record", "--local-tls", "starttls"]):
            cp = subprocess.run([str(mailtap_bin()), "proxy", "--upstream", fake.address,
                                 "--listen", f"127.0.0.1:{free_port()}", *extra],
                                env=env, capture_output=True, timeout=20)
            err = cp.stderr.decode()
            self.assertEqual(cp.returncode, 2, err)
            self.assertIn(f"HOME is {home}", err)
            self.assertIn("belongs to uid 65534", err)
            self.assertIn("run mailtap as that user", err)
            self.assertEqual(list(home.iterdir()), [], "nothing made in the user's home")
        # Named explicitly, a path is taken as asked; root's own home is the default as before.
        cp = subprocess.run([str(mailtap_bin()), "proxy", "--upstream", fake.address,
                             "--listen", f"127.0.0.1:{free_port()}", "--print-config"],
                            env=dict(env, MAILTAP_DB=str(self.tmp / "root.db")),
                            capture_output=True, timeout=20)
        self.assertEqual(cp.returncode, 0, cp.stderr.decode())


class RecordingOutcomeTest(IntegrationCase):
    """Outcomes other than QUIT, and the --insecure flag, as the session row shows them."""

    def test_unreachable_upstream_recorded_with_reason(self):
        port = closed_port()
        m = self.mailtap(f"127.0.0.1:{port}")
        db = Path(m._tmp) / "mailtap.db"
        r = first_reply_421(m.port)
        self.assertEqual(r.code, 421)
        [s] = wait_ended(db, 1)
        self.assertEqual(s["outcome"], "error", "could not reach the upstream")
        self.assertIn("cannot connect", s["outcome_reason"])
        self.assertIn(s["outcome_reason"], r.text, "the row says what the client was told")
        self.assertIsNone(s["resolved_address"])
        self.assertIsNone(s["tls_version"])
        evs = events(db, s["id"])
        self.assertEqual(evs[-1]["direction"], "mailtap_to_client")
        self.assertEqual(evs[-1]["reply_code"], 421)
        self.assertEqual(bytes(evs[-1]["bytes"]), r.raw)

    def test_insecure_and_self_signed_recorded(self):
        fake = self.fake("self_signed")
        m = self.mailtap(fake.address, extra_args=["--insecure"])
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(db, 1)
        self.assertEqual(s["insecure"], 1)
        self.assertEqual(s["verify_status"], "not_verified_insecure")
        # what verification would have said: a certificate swapped on the path leaves a trace
        self.assertTrue(s["verify_reason"].startswith(
            "not verified (--insecure); verification would have failed: certificate for "
            "localhost is self-signed"), s["verify_reason"])
        [cert] = certificates_of(db, s["id"])
        self.assertEqual(bytes(cert["der"]), pem_to_der(self.pki.self_signed_cert))
        self.assertEqual(cert["subject"], cert["issuer"])
        # a verification failure is recorded with its reason, and the session refused
        m2 = self.mailtap(fake.address)
        db2 = Path(m2._tmp) / "mailtap.db"
        self.assertEqual(first_reply_421(m2.port).code, 421)
        [s2] = wait_ended(db2, 1)
        self.assertEqual(s2["insecure"], 0)
        self.assertEqual(s2["outcome"], "refused")
        self.assertEqual(s2["verify_status"], "failed")
        self.assertIn("self-signed", s2["verify_reason"])
        self.assertIn("self-signed", s2["outcome_reason"])
    def test_two_proxies_on_one_database_say_which_id_each_session_got(self):
        """Each proxy numbers its sessions from the database's highest id at start, without
        waiting for the disk; when the other proxy took that id first, the "ended" line says
        the id the session was recorded as, and the next sessions are numbered after it."""
        fake = self.fake("good")
        db = self.tmp / "shared" / "mailtap.db"
        a = self.mailtap(fake.address, db=db)
        b = self.mailtap(fake.address, db=db)
        for m, client in ((b, "b1"), (a, "a1"), (a, "a2")):
            with SmtpSocket(m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd(f"EHLO {client}.test").code, 250)
                self.assertEqual(c.cmd("QUIT").code, 221)
        wait_for(lambda: a.stderr.count(" ended: ") == 2, 10, f"two ended lines:\n{a.stderr}")
        self.assertEqual(len(wait_ended(db, 3)), 3)
        self.assertRegex(a.stderr, r"(?m)^mailtap: session 1 ended: .*, recorded as session 2$")
        self.assertRegex(a.stderr, r"(?m)^mailtap: session 3 ended: ")
        self.assertNotRegex(a.stderr, r"(?m)^mailtap: session 3 ended: .*recorded as")
        self.assertNotIn("recorded as", b.stderr)
        self.assertEqual(ehlo_names(db), {1: "b1.test", 2: "a1.test", 3: "a2.test"})


def documented_query(title: str) -> str:
    """The example query of docs/schema.md under `-- TITLE`, up to the blank line after it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "schema.md").read_text()
    m = re.search(r"(?ms)^-- " + re.escape(title) + r"\n(.*?)\n\n", doc)
    if m is None:
        raise AssertionError(f"docs/schema.md has no example query '-- {title}'")
    return m.group(1).split("```")[0]


class RefusedRecipientsTest(IntegrationCase):
    """The commonest refusal: every RCPT of a transaction refused, so the client sends no DATA
    and quits. The transaction leaves no `messages` row (recording.md, "Messages": only one
    whose end of data reached the server does); its RCPTs and their replies are in the events,
    where schema.md's example query finds them, with those refused in a message."""

    def test_every_refused_recipient_is_found_with_or_without_a_message(self):
        sink = BodySink(rcpt_reply=b"550 5.1.1 <nobody@example.test>: User unknown\r\n")
        self.addCleanup(sink.close)
        db = self.tmp / "refused.db"
        m = self.mailtap(sink.address, tls="none", tls_name=None, ca_file=None, db=db)
        with SmtpSocket(m.port) as c:  # MAIL 250, RCPT 550, QUIT: no DATA
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<nobody@example.test>").code, 550)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_ended(db, 1)
        with SmtpSocket(m.port) as c:  # one recipient accepted, one refused, and a message
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            sink.rcpt_reply = b"250 2.1.5 ok\r\n"
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            sink.rcpt_reply = b"550 5.1.1 <gone@example.test>: User unknown\r\n"
            self.assertEqual(c.cmd("RCPT TO:<gone@example.test>").code, 550)
            self.assertEqual(c.cmd("DATA").code, 354)
            self.assertEqual(c.cmd(b"Subject: t\r\n\r\nhello\r\n.").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        wait_ended(db, 2)
        self.assertEqual([tuple(r) for r in query(
            db, "SELECT session_id, count(*) FROM messages GROUP BY session_id")], [(2, 1)],
            "only the transaction whose end of data reached the server has a message row")
        # "today" as the queries say it, widened by a day: the sessions may have begun before
        # a midnight the queries run after.
        def todays(title: str) -> str:
            sql = documented_query(title)
            self.assertIn("date('now')", sql, title)
            return sql.replace("date('now')", "date('now', '-1 day')")
        refused = [tuple(r) for r in query(db, todays("Every rejected recipient today"))]
        self.assertEqual(refused, [
            (1, "RCPT TO:<nobody@example.test>", "550 5.1.1 <nobody@example.test>: User unknown"),
            (2, "RCPT TO:<gone@example.test>", "550 5.1.1 <gone@example.test>: User unknown")])
        in_messages = [tuple(r) for r in query(
            db, todays("The recipients the server refused in today's messages"))]
        self.assertEqual(in_messages, [
            (2, "RCPT TO:<gone@example.test>", "550 5.1.1 <gone@example.test>: User unknown")])


def dump(evs) -> str:
    return "\n".join(
        f"{e['seq']:3} {e['direction']:20} {e['phase']:7} {e['kind']:11} {e['verb'] or '':8} "
        f"{e['reply_code'] or '':3} {e['enhanced_status'] or '':6} ws={e['wire_size']} "
        f"r={e['redacted']} {bytes(e['bytes'])[:70]!r} {e['note'] or ''}" for e in evs)


class RecordingMalformedOAuthTest(IntegrationCase):
    """OAuth responses whose separators went missing, relayed to a Gmail look-alike."""

    def test_a_bearer_token_in_a_malformed_response_is_recorded_nowhere(self):
        """An XOAUTH2 ^A typed as a space (or another control octet, or one ^A dropped) runs the
        user field on into the token; so does an OAUTHBEARER host or authzid, and a bearer
        response pasted at PLAIN or LOGIN puts it where the user name goes. The server refuses
        each; the record keeps none of the token, in any form, in the database, its WAL, the
        transcript or the log, and no user name is recorded from them."""
        user = _user("mangled") + "@gmail.test"
        cases = {  # name: (AUTH line, response after its 334 or None, the token)
            "xoauth2 space": "user={u} auth=Bearer {t}\x01\x01",
            "xoauth2 tab": "user={u}\tauth=Bearer {t}\x01\x01",
            "xoauth2 control": "user={u}\x02auth=Bearer {t}\x01\x01",
            "xoauth2 no separator at all": "user={u} auth=Bearer {t}",
            "xoauth2 last ^A missing": "user={u}\x01auth=Bearer {t}\x01",
            "oauthbearer host": "n,a={u},\x01host=smtp.gmail.com auth=Bearer {t}\x01\x01",
            "oauthbearer authzid": "n,a={u} auth=3DBearer {t},\x01\x01",
            "plain authcid": "\0{u} auth=Bearer {t}\0pw",
            "login user": "{u} auth=Bearer {t}",
        }
        tokens = {name: "ya29.a0" + secrets.token_urlsafe(40) for name in cases}
        forbidden = {}
        for name, token in tokens.items():
            for i, form in enumerate(secret_forms(token.encode())):
                forbidden[f"{name} token form {i}"] = form
        server = self.oauth_server("gmail")
        m = self.mailtap(server.address, extra_args=["--transcript", "-vv"])
        db = Path(m._tmp) / "mailtap.db"
        for n, (name, shape) in enumerate(cases.items()):
            mech = name.split()[0].upper()
            blob = b64(shape.format(u=user, t=tokens[name]).encode()).decode()
            with self.subTest(case=name), SmtpSocket(m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                if n % 2 == 0 and mech != "LOGIN":  # as an initial response
                    r = c.cmd(f"AUTH {mech} {blob}")
                else:  # after the 334
                    self.assertEqual(c.cmd(f"AUTH {mech}").code, 334)
                    r = c.cmd(blob)
                    if mech == "LOGIN":
                        self.assertEqual(r.code, 334, str(r))
                        r = c.cmd(b64(b"pw").decode())
                self.assertIn(r.code, (501, 535), str(r))
                self.assertEqual(c.cmd("QUIT").code, 221)
        # the server really got every token: the scan below is not vacuous
        sent = b"".join(line for s in server.wait_sessions(len(cases))
                        for a in s.auths for line in a.lines)
        for name, token in tokens.items():
            self.assertTrue(any(form in sent for form in secret_forms(token.encode())), name)
        sessions = wait_ended(db, len(cases))
        m.wait_stdout("S: 221", count=len(cases))

        def scan(when: str):
            blobs = {f"{name}": data for name, data in mailtap_files(db).items()}
            blobs["stdout"], blobs["stderr"] = m.stdout.encode(), m.stderr.encode()
            self.assertEqual(find_leaks(blobs, forbidden), [], f"tokens leaked {when}")

        scan("while mailtap runs")
        self.assertEqual([s["auth_user"] for s in sessions], [None] * len(cases))
        notes = " ".join(e["note"] or "" for e in query(db, "SELECT note FROM events"))
        self.assertNotIn(user, notes, "no user name is taken from a malformed response")
        self.assertEqual(m.stop(), 0, m.stderr)
        scan("after mailtap stopped")


class LiveTranscriptOpenLineTest(IntegrationCase):
    """proxy --transcript prints a message's text a line at a time, once its CRLF has come
    (smtp::BodyTextJoin, as mailtap show): a line the client never ended, because it closed
    in the middle of it, is printed when the session ends, as far as it came, once."""

    def test_a_line_the_client_left_open_is_printed_at_the_end(self):
        fake = self.fake("good")
        m = self.mailtap(fake.address, extra_args=["--transcript"])
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<a@client.test>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.test>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            for piece in (b"Subject: left open\r\n\r\nhalf a li", b"ne and mo", b"re"):
                c.send(piece)
                time.sleep(0.3)  # a read of its own each
        sessions = wait_ended(db, 1)
        out = m.wait_stdout("C: half a line and more")
        tag = "[%d] " % sessions[0]["id"]
        lines = [line[len(tag):] for line in out.splitlines() if line.startswith(tag)]
        start = lines.index("C: Subject: left open")
        self.assertEqual(lines[start:start + 3], ["C: Subject: left open", "C: ",
                                                  "C: half a line and more"], "\n".join(lines))
        self.assertEqual([line for line in lines if "half" in line], ["C: half a line and more"])
        self.assertFalse({"C: ne and mo", "C: re"} & set(lines), "\n".join(lines))


class RecordingPastedCredentialTest(IntegrationCase):
    """A credential a person pastes or mistypes where the server reads a command (a line without
    an SMTP verb) is kept out of the record however it comes (docs/recording.md "Redaction"),
    and `mailtap audit` then finds nothing in the record."""

    def assertLinesNotRecorded(self, lines: list, secret: bytes):
        fake = self.fake("good")
        m = self.mailtap(fake.address, extra_args=["--transcript", "-vv"])
        db = Path(m._tmp) / "mailtap.db"
        for line in lines:
            with self.subTest(line=line), SmtpSocket(m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                c.send(line + b"\r\n")
                c.reply()
                self.assertEqual(c.cmd("QUIT").code, 221)
        sessions = wait_ended(db, len(lines))
        m.wait_stdout("S: 221", count=len(lines))
        forbidden = {f"form {i}": form for i, form in enumerate(secret_forms(secret))}
        for n, line in enumerate(lines):
            with self.subTest(line=line):
                evs = events(db, sessions[n]["id"])
                sent = [e for e in evs if e["wire_size"] == len(line) + 2
                        and e["direction"] == "client_to_upstream"]
                self.assertEqual(len(sent), 1, dump(evs))
                self.assertEqual(bytes(sent[0]["bytes"]),
                                 f"[<redacted {len(line) + 2} bytes>]\r\n".encode(), dump(evs))
        blobs = {name: data for name, data in mailtap_files(db).items()}
        blobs["stdout"], blobs["stderr"] = m.stdout.encode(), m.stderr.encode()
        self.assertEqual(find_leaks(blobs, forbidden), [], "the credential was recorded")
        audit = subprocess.run([str(mailtap_bin()), "audit", "--db", str(db)],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(audit.returncode, 0, audit.stdout + audit.stderr)

    def test_a_blob_with_spaces_around_or_in_it_or_junk_after_it(self):
        """Finding 1: what copy and paste into telnet or nc adds to a PLAIN or XOAUTH2 blob."""
        secret = ("hunter2-" + secrets.token_hex(8)).encode()
        blob = b64(b"\0alice\0" + secret + b">?~")
        xoauth2 = b64(b"user=a@b\x01auth=Bearer " + secret + b"\x01\x01")
        url_safe = blob.replace(b"+", b"-").replace(b"/", b"_")
        self.assertNotEqual(url_safe, blob)
        self.assertLinesNotRecorded([b" " + blob, b"\t" + blob, blob + b" ", b"  " + xoauth2,
                                     b"\t" + xoauth2, blob + b" junk",
                                     blob[:12] + b" " + blob[12:], b"   " + blob + b"   ",
                                     url_safe, url_safe.rstrip(b"=")], secret)

    def test_a_blob_behind_a_mistyped_auth(self):
        """Finding 2: AUHT, AUTHX or AUTH= is no verb; the blob after it is a credential."""
        secret = ("hunter2-" + secrets.token_hex(8)).encode()
        blob = b64(b"\0alice\0" + secret)
        self.assertLinesNotRecorded([b"AUHT PLAIN " + blob, b"AUTHX PLAIN " + blob,
                                     b"AUTH=PLAIN " + blob], secret)

    def test_a_bearer_token_in_clear(self):
        """Finding 3: an XOAUTH2 response typed or pasted without its base64."""
        secret = ("ya29." + secrets.token_urlsafe(24)).encode()
        self.assertLinesNotRecorded([b"auth=Bearer " + secret,
                                     b" user=a@b\x01auth=Bearer " + secret + b"\x01\x01"],
                                    secret)

    def test_a_plain_blob_built_by_hand_and_slightly_wrong(self):
        """Finding 5: the leading NUL forgotten (`printf 'alice\\0PW' | base64`), no user, or
        a third NUL and more after the password: the password is there all the same."""
        secret = ("hunter2-" + secrets.token_hex(8)).encode()
        self.assertLinesNotRecorded([b64(b"alice\0" + secret), b64(b"\0\0" + secret),
                                     b64(b"\0alice\0" + secret + b"\0extra")], secret)

    def test_a_blob_in_a_line_with_a_verb(self):
        """Finding 4: a PLAIN blob or a bearer token after a verb is a secret as well. The
        server gets the line as typed; the record keeps the verb and the rest, the credential
        redacted where it stood, and `mailtap audit` agrees that nothing leaked."""
        secret = ("hunter2-" + secrets.token_hex(8)).encode()
        blob = b64(b"\0alice\0" + secret + b">?~")
        url_safe = blob.replace(b"+", b"-").replace(b"/", b"_")
        token = b"auth=Bearer ya29." + secret
        gone = lambda word: f"[<redacted {len(word)} bytes>]".encode()  # noqa: E731
        cases = [(b"VRFY " + blob, b"VRFY " + gone(blob)),
                 (b"HELP AUTH PLAIN " + blob, b"HELP AUTH PLAIN " + gone(blob)),
                 (b"MAIL FROM:<a@b> AUTH=" + blob, b"MAIL FROM:<a@b> AUTH=" + gone(blob)),
                 (b"NOOP " + url_safe.rstrip(b"="), b"NOOP " + gone(url_safe.rstrip(b"="))),
                 (b"HELP " + token + b" x", b"HELP " + gone(token) + b" x")]
        fake = self.fake("good")
        m = self.mailtap(fake.address, extra_args=["--transcript", "-vv"])
        db = Path(m._tmp) / "mailtap.db"
        for line, _ in cases:
            with self.subTest(line=line), SmtpSocket(m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                c.send(line + b"\r\n")
                c.reply()
                self.assertEqual(c.cmd("QUIT").code, 221)
        sessions = wait_ended(db, len(cases))
        m.wait_stdout("S: 221", count=len(cases))
        received = [raw for sess in fake.wait_sessions(len(cases)) for _, raw in sess.commands]
        for n, (line, recorded) in enumerate(cases):
            with self.subTest(line=line):
                self.assertIn(line + b"\r\n", received)  # byte fidelity on the wire
                evs = events(db, sessions[n]["id"])
                sent = [e for e in evs if e["wire_size"] == len(line) + 2
                        and e["direction"] == "client_to_upstream"]
                self.assertEqual(len(sent), 1, dump(evs))
                self.assertEqual(bytes(sent[0]["bytes"]), recorded + b"\r\n", dump(evs))
                self.assertEqual(sent[0]["redacted"], 1)
                self.assertEqual(sent[0]["verb"], line.split(b" ")[0].decode())
        forbidden = {f"form {i}": form for i, form in enumerate(secret_forms(secret))}
        blobs = {name: data for name, data in mailtap_files(db).items()}
        blobs["stdout"], blobs["stderr"] = m.stdout.encode(), m.stderr.encode()
        self.assertEqual(find_leaks(blobs, forbidden), [], "the credential was recorded")
        audit = subprocess.run([str(mailtap_bin()), "audit", "--db", str(db)],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(audit.returncode, 0, audit.stdout + audit.stderr)


class RecordingPostfixTest(IntegrationCase):
    """Sessions through mailtap to the Gmail-like Postfix, checked with SQL."""

    with_postfix = True
    postfix_kwargs = {"users": RANDOM_USERS}

    def test_a_running_session_shows_its_user_once_auth_succeeded(self):
        """`mailtap sessions --user` and the web page's list filter running sessions too: the
        user is recorded when AUTH succeeds, not only when the session ends."""
        m = self.mailtap(self.postfix.submission)
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("AUTH PLAIN " + auth_plain(PLAIN_IR_USER, PLAIN_IR_PW)).code,
                             235)
            [row] = wait_for(lambda: query(db, "SELECT * FROM sessions WHERE auth_user = ?",
                                           (PLAIN_IR_USER,)), 5, "the user recorded")
            self.assertIsNone(row["ended_at"], "while the session runs")
            self.assertEqual(row["auth_mechanism"], "PLAIN")
            self.assertEqual(row["auth_by"], "client")
            self.assertEqual(c.cmd("QUIT").code, 221)
        [row] = wait_ended(db, 1)
        self.assertEqual(row["auth_user"], PLAIN_IR_USER)

    def test_an_idle_client_timeout_ends_the_upstream_with_quit(self):
        """mailtap's own idle timeout (--timeout-command) ends the server's session as a client
        that closes does: its 421 to the client, then its QUIT upstream, recorded with why, and
        the server counts the QUIT (Postfix: quit=1), not a lost connection."""
        m = self.mailtap(self.postfix.submission, extra_args=["--timeout-command", "2s"])
        db = Path(m._tmp) / "mailtap.db"
        log_before = len(self.postfix.maillog_text())
        with SmtpSocket(m.port, timeout=20) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            reply = c.reply()
            self.assertEqual(reply.code, 421, str(reply))
            self.assertIn("idle for 2s waiting for the client", reply.text)
        [s] = wait_ended(db, 1)
        self.assertEqual((s["outcome"], s["outcome_reason"]), ("timeout", "client idle timeout"))
        evs = events(db, s["id"])
        last_421 = max(i for i, e in enumerate(evs) if e["direction"] == "mailtap_to_client")
        quits = [e for e in evs[last_421:] if e["direction"] == "mailtap_to_upstream"]
        self.assertEqual([bytes(e["bytes"]) for e in quits], [b"QUIT\r\n"], dump(evs))
        self.assertEqual(quits[0]["note"],
                         "the client was idle for 2s; mailtap ends the upstream session "
                         "politely")
        text = wait_for(lambda: (lambda t: t if re.search(r"disconnect from [^\n]* quit=1", t)
                                 else None)(self.postfix.maillog_text()[log_before:]),
                        10, "Postfix's disconnect line with quit=1")
        # Only that connection's lines (its smtpd, from its connect to its disconnect): the
        # harness's own readiness probes log lost connections, through the same smtpd too.
        pid = re.search(r"smtpd\[(\d+)\]: disconnect from [^\n]* quit=1", text).group(1)
        lines = [line for line in text.splitlines() if f"smtpd[{pid}]:" in line]
        end = next(i for i, line in enumerate(lines) if "disconnect from" in line and "quit=1" in line)
        start = max(i for i, line in enumerate(lines[:end]) if ": connect from" in line)
        ours = lines[start:end + 1]
        self.assertFalse([line for line in ours if "lost connection" in line], ours)

    def test_session_row_events_and_message(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--ehlo-name", "mt-rec.test"])
        db = Path(m._tmp) / "mailtap.db"
        token = unique_token("rec")
        message = make_message(token)
        mail_line = "MAIL FROM:<sender@client.test> SIZE=4000 BODY=8BITMIME"
        before = time.time()
        with SmtpSocket(m.port) as c:
            client_port = c.sock.getsockname()[1]
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd(mail_line).code, 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").code, 250)
            unknown = c.cmd("RCPT TO:<nobody@example.test>")
            self.assertEqual(unknown.code, 550, str(unknown))
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(dot_stuff(message) + b".\r\n")
            final = c.reply()
            self.assertEqual(final.code, 250, str(final))
            self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertDelivered(token, message)
        [s] = wait_ended(db, 1)
        after = time.time()

        # -- the session row
        for col in ("started_at", "ended_at"):
            self.assertRegex(s[col], ISO_UTC_US)
        self.assertLessEqual(s["started_at"], s["ended_at"])
        self.assertEqual(s["started_at"][:10], time.strftime("%Y-%m-%d", time.gmtime(before)))
        start_epoch = calendar.timegm(time.strptime(s["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(start_epoch - before), 5, "started_at is UTC")
        self.assertLessEqual(start_epoch, after)
        self.assertEqual(s["client_address"], f"127.0.0.1:{client_port}")
        self.assertEqual(s["listen_address"], f"127.0.0.1:{m.port}")
        self.assertEqual(s["upstream_host"], "127.0.0.1")
        self.assertEqual(s["upstream_port"], self.postfix.submission_port)
        self.assertEqual(s["resolved_address"], self.postfix.submission)
        self.assertEqual(s["tls_mode"], "starttls")
        self.assertEqual(s["ehlo_name"], "mt-rec.test")
        self.assertIn(s["tls_version"], ("TLSv1.2", "TLSv1.3"))
        self.assertTrue(s["cipher"])
        self.assertEqual(s["sni"], "localhost")
        self.assertEqual(s["verified_name"], "localhost")
        self.assertEqual(s["verify_status"], "ok")
        self.assertEqual(s["insecure"], 0)
        self.assertEqual(s["outcome"], "quit")
        self.assertIn("221", s["outcome_reason"] or "")
        self.assertIsNone(s["auth_user"])

        # -- the certificate chain as Postfix presented it
        certs = certificates_of(db, s["id"])
        self.assertGreaterEqual(len(certs), 1)
        leaf = certs[0]
        self.assertEqual(leaf["position"], 0)
        self.assertEqual(bytes(leaf["der"]), pem_to_der(self.pki.valid_cert))
        self.assertEqual(leaf["sha256"], hashlib.sha256(bytes(leaf["der"])).hexdigest())
        self.assertIn("localhost", leaf["subject"])
        self.assertIn("mailtap test CA", leaf["issuer"])
        self.assertRegex(leaf["not_before"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
        self.assertLess(leaf["not_before"], s["started_at"])
        self.assertGreater(leaf["not_after"], s["started_at"])

        # -- events, in order
        evs = events(db, s["id"])
        info = dump(evs)
        self.assertEqual([e["seq"] for e in evs], list(range(1, len(evs) + 1)), info)
        stamps = [e["at"] for e in evs if e["at"] is not None]
        self.assertEqual(stamps, sorted(stamps), "timestamps follow seq")
        for e in evs:
            self.assertRegex(e["at"], ISO_UTC_US)
            self.assertGreaterEqual(e["at"], s["started_at"])
            self.assertLessEqual(e["at"], s["ended_at"])
        # mailtap's own pre-TLS exchange, recorded and marked as mailtap's
        own = [e for e in evs
               if e["direction"] == "mailtap_to_upstream" and e["phase"] == "pre_tls"]
        self.assertEqual([e["verb"] for e in own], ["EHLO", "STARTTLS"], info)
        self.assertEqual(bytes(own[0]["bytes"]), b"EHLO mt-rec.test\r\n")
        self.assertEqual(bytes(own[1]["bytes"]), b"STARTTLS\r\n")
        starttls_reply = [e for e in evs if e["direction"] == "upstream_to_mailtap"
                          and e["phase"] == "pre_tls" and e["reply_code"] == 220]
        self.assertTrue(starttls_reply, info)
        self.assertTrue(any(e["kind"] == "tls" for e in evs), info)
        # the client's dialogue: all inside TLS, in order, byte for byte
        relayed = [e for e in evs if e["direction"] in ("client_to_upstream", "upstream_to_client")
                   and e["kind"] != "greeting"]
        self.assertTrue(all(e["phase"] == "tls" for e in relayed), info)
        sent = [(e["verb"], bytes(e["bytes"])) for e in relayed
                if e["direction"] == "client_to_upstream" and e["kind"] == "command"]
        self.assertEqual(sent, [("EHLO", b"EHLO client.test\r\n"),
                                ("MAIL", mail_line.encode() + b"\r\n"),
                                ("RCPT", b"RCPT TO:<alice@example.test>\r\n"),
                                ("RCPT", b"RCPT TO:<nobody@example.test>\r\n"),
                                ("DATA", b"DATA\r\n"), ("QUIT", b"QUIT\r\n")], info)
        data = b"".join(bytes(e["bytes"]) for e in relayed if e["kind"] == "data")
        self.assertEqual(data, dot_stuff(message) + b".\r\n", "DATA recorded as on the wire")
        replies = [(e["verb"], e["reply_code"], e["enhanced_status"]) for e in relayed
                   if e["kind"] == "reply"]
        self.assertEqual(replies, [("EHLO", 250, None), ("MAIL", 250, "2.1.0"),
                                   ("RCPT", 250, "2.1.5"), ("RCPT", 550, "5.1.1"),
                                   ("DATA", 354, None), ("DATA", 250, "2.0.0"),
                                   ("QUIT", 221, "2.0.0")], info)
        self.assertEqual(bytes(relayed[-1]["bytes"])[:3], b"221", "last relayed event: QUIT reply")
        self.assertEqual(
            sum(e["wire_size"] for e in evs if e["direction"] == "client_to_upstream"),
            s["bytes_client_to_upstream"])
        self.assertEqual(
            sum(e["wire_size"] for e in evs if e["direction"] == "upstream_to_client"),
            s["bytes_upstream_to_client"])

        # -- the message
        [msg] = query(db, "SELECT * FROM messages WHERE session_id = ?", (s["id"],))
        self.assertEqual(msg["seq"], 1)
        self.assertEqual(msg["mail_from"], mail_line)
        self.assertEqual(recorded_body(db, msg["id"]), message, "body byte-exact, un-dot-stuffed")
        self.assertEqual(bytes(msg["body"]), b"", "stored once: in the data events")
        self.assertEqual(msg["size"], len(message))
        self.assertEqual(msg["sha256"], hashlib.sha256(message).hexdigest())
        self.assertEqual(msg["body_truncated"], 0)
        self.assertEqual(msg["via_bdat"], 0)
        self.assertEqual(msg["final_code"], 250)
        self.assertEqual(msg["final_reply"] + "\r\n", final.raw.decode())
        queue_id = re.search(r"queued as (\w+)", msg["final_reply"]).group(1)
        self.assertIn(queue_id, self.postfix.maillog_text())
        rcpts = query(db, "SELECT * FROM recipients WHERE message_id = ? ORDER BY position",
                      (msg["id"],))
        self.assertEqual([(r["position"], r["command"], r["reply_code"]) for r in rcpts],
                         [(0, "RCPT TO:<alice@example.test>", 250),
                          (1, "RCPT TO:<nobody@example.test>", 550)])
        self.assertEqual(rcpts[1]["reply"] + "\r\n", unknown.raw.decode())
        self.assertRegex(msg["started_at"], ISO_UTC_US)
        self.assertLessEqual(msg["started_at"], msg["finished_at"])

    def test_tls_resumption_recorded(self):
        # The first session makes a full handshake; later ones to the same upstream resume the
        # ticket Postfix handed out, and the record says which did.
        m = self.mailtap(self.postfix.submission)
        db = Path(m._tmp) / "mailtap.db"
        for _ in range(3):
            with SmtpSocket(m.port) as c:
                self.assertEqual(c.reply().code, 220)
                self.assertEqual(c.cmd("EHLO client.test").code, 250)
                self.assertEqual(c.cmd("QUIT").code, 221)
        rows = wait_ended(db, 3)
        self.assertEqual(rows[0]["tls_resumed"], 0)
        self.assertIn(1, [r["tls_resumed"] for r in rows[1:]])
        resumed = rows[[r["tls_resumed"] for r in rows].index(1)]["id"]
        notes = [e["note"] for e in events(db, resumed) if e["kind"] == "tls"]
        self.assertTrue(any("(session resumed)" in n for n in notes), notes)
        shown = subprocess.run([str(mailtap_bin()), "show", str(resumed), "--db", str(db)],
                               capture_output=True, text=True, timeout=30).stdout
        self.assertIn("(session resumed)", shown)

    def test_show_marks_client_lines_mailtap_refused_as_answered_by_mailtap(self):
        """A NUL line and an over-long line are refused by mailtap, never relayed: show marks
        them "[answered by mailtap]" as it does a STARTTLS mailtap answered, not with the bare
        C: that its legend says is relayed."""
        fake = self.fake("good")
        m = self.mailtap(fake.address)
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd(b"NOOP \0").code, 500)
            self.assertEqual(c.cmd(b"NOOP " + b"x" * 3000).code, 500)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(db, 1)
        shown = subprocess.run([str(mailtap_bin()), "show", str(s["id"]), "--db", str(db),
                                "--color", "never"],
                               capture_output=True, text=True, timeout=30, check=True).stdout
        self.assertRegex(shown, r"\[answered by mailtap\] C: error: command line with a NUL byte "
                                r"refused", shown)
        self.assertRegex(shown, r"\[answered by mailtap\] C: error: command line of \d+ octets "
                                r"refused", shown)
        # and mailtap's 500 is explained as mailtap's, not as a server's unknown command
        self.assertEqual(shown.count("# 500 5.5.2: mailtap refused this command line itself"), 2,
                         shown)

    def test_tools_read_back_a_starttls_mailtap_answered_and_an_insecure_session(self):
        """The two bugs of issue 9, with the built binary: the client's STARTTLS (answered by
        mailtap, direction client_to_mailtap) read back as a note, and audit listing every
        --insecure session a second time as a verification failure."""
        fake = self.fake("self_signed")
        m = self.mailtap(fake.address, extra_args=["--insecure"])
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            refusal = c.cmd("STARTTLS")
            self.assertEqual(refusal.code, 502)
            self.assertEqual(c.cmd("QUIT").code, 221)
        # A client that insists on TLS (mutt, s-nail, PHPMailer stop here) is told the way to
        # it, not only that mailtap encrypts the link to the server.
        said = refusal.raw.decode()
        self.assertRegex(said, r"^502 5\.5\.1 mailtap: STARTTLS is not offered: mailtap already "
                               r"encrypts the link to 127\.0\.0\.1:\d+ \(TLSv1\.[23], certificate "
                               r"NOT verified: --insecure\); a client that requires TLS needs "
                               r"mailtap run with --local-tls starttls \(or implicit\)\r\n$")
        [s] = wait_ended(db, 1)

        def tool(*args):
            return subprocess.run([str(mailtap_bin()), *args, "--db", str(db)],
                                  capture_output=True, text=True, timeout=30, check=True).stdout

        shown = tool("show", str(s["id"]), "--color", "never")
        self.assertIn("[answered by mailtap] C: STARTTLS", shown)
        self.assertNotIn("~~ command", shown)
        # mailtap's own 502 is explained as mailtap's, not as a server's unknown command.
        self.assertNotIn("does not know this command", shown)
        self.assertIn("# 502 5.5.1: mailtap answered the client's STARTTLS itself", shown)
        explained = subprocess.run([str(mailtap_bin()), "explain", said.strip()],
                                   capture_output=True, text=True, timeout=30, check=True).stdout
        self.assertNotIn("does not know this command", explained)
        self.assertRegex(explained, r"run mailtap with\s+--local-tls\s+starttls")
        exported = json.loads(tool("export", str(s["id"]), "--format", "json"))
        starttls = [e for e in exported["events"] if e["verb"] == "STARTTLS"
                    and e["direction"] == "client_to_mailtap"]
        self.assertEqual(len(starttls), 1, exported["events"])
        self.assertEqual(exported["verify_status"], "not_verified_insecure")
        audit = json.loads(tool("audit", "--json"))
        self.assertEqual(audit["tls"]["insecure_sessions"], [s["id"]])
        self.assertEqual(audit["tls"]["verify_failures"], [])

    def test_a_starttls_refused_under_tls_none_names_local_tls(self):
        """With --tls none (Postfix's submission port relayed in plain text) mailtap refuses a
        client's STARTTLS too: the client that requires TLS is told the way to it, and `show`
        and `explain` read the 502 as mailtap's, not as a server's unknown command."""
        m = self.mailtap(self.postfix.submission, tls="none", tls_name=None, ca_file=None)
        db = Path(m._tmp) / "mailtap.db"
        # smtplib's docmd sends STARTTLS whatever the EHLO reply says, as mutt and s-nail do.
        with smtplib.SMTP("127.0.0.1", m.port, local_hostname="client.test", timeout=30) as c:
            c.ehlo()
            code, text = c.docmd("STARTTLS")
            c.quit()
        said = f"{code} {text.decode()}"
        self.assertEqual(said, "502 5.5.1 mailtap: STARTTLS is not available: this session is "
                               "relayed in plain text (--tls none); a client that requires TLS "
                               "needs mailtap run with --local-tls starttls (or implicit)")
        [s] = wait_ended(db, 1)
        shown = subprocess.run([str(mailtap_bin()), "show", str(s["id"]), "--db", str(db),
                                "--color", "never"], capture_output=True, text=True, timeout=30,
                               check=True).stdout
        self.assertNotIn("does not know this command", shown)
        self.assertIn("# 502 5.5.1: mailtap answered the client's STARTTLS itself", shown)
        explained = subprocess.run([str(mailtap_bin()), "explain", said], capture_output=True,
                                   text=True, timeout=30, check=True).stdout
        self.assertNotIn("does not know this command", explained)
        self.assertRegex(explained, r"run mailtap with\s+--local-tls\s+starttls")

    def test_nc_bare_lf_rewrite_recorded(self):
        m = self.mailtap(self.postfix.submission)
        db = Path(m._tmp) / "mailtap.db"
        token = unique_token("lf")
        message_lf = make_message(token, eol="\n")
        with NetcatClient(m.port) as nc:
            start_data(nc)
            nc.send(dot_stuff(message_lf) + b".\n")
            self.assertEqual(nc.reply().code, 250)
            self.assertEqual(nc.cmd(b"QUIT").code, 221)
        message_crlf = message_lf.replace(b"\n", b"\r\n")
        self.assertDelivered(token, message_crlf)
        [s] = wait_ended(db, 1)
        evs = events(db, s["id"])
        info = dump(evs)
        rewrites = [e for e in evs if e["kind"] == "rewrite"]
        self.assertTrue(rewrites, info)
        self.assertTrue(all(e["direction"] == "mailtap_note" for e in rewrites), info)
        self.assertTrue(all(re.search(r"bare LF|LF", e["note"] or "") for e in rewrites), info)
        self.assertIn("DATA", [e["verb"] for e in rewrites], info)
        self.assertIn("EHLO", [e["verb"] for e in rewrites], info)
        # what went upstream is the normalised form, and that is what the record holds
        cmds = [bytes(e["bytes"]) for e in evs if e["direction"] == "client_to_upstream"
                and e["kind"] == "command"]
        self.assertIn(b"EHLO client.test\r\n", cmds)
        [msg] = query(db, "SELECT id, size, sha256 FROM messages WHERE session_id = ?",
                      (s["id"],))
        self.assertEqual(recorded_body(db, msg["id"]), message_crlf)
        self.assertEqual(msg["sha256"], hashlib.sha256(message_crlf).hexdigest())

    def test_starttls_removed_from_ehlo_recorded(self):
        # --tls none: the upstream's EHLO advertises STARTTLS, which mailtap must not offer
        m = self.mailtap(self.postfix.submission, tls="none")
        db = Path(m._tmp) / "mailtap.db"
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            ehlo = c.cmd("EHLO client.test")
            self.assertEqual(ehlo.code, 250)
            self.assertNotIn("STARTTLS", ehlo.text)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = wait_ended(db, 1)
        self.assertEqual(s["tls_mode"], "none")
        self.assertIsNone(s["tls_version"])
        evs = events(db, s["id"])
        info = dump(evs)
        self.assertTrue(all(e["phase"] == "plain" for e in evs), info)
        [reply] = [e for e in evs if e["direction"] == "upstream_to_client" and e["verb"] == "EHLO"]
        self.assertIn(b"STARTTLS", bytes(reply["bytes"]), "the upstream's reply as received")
        [rw] = [e for e in evs if e["kind"] == "rewrite"]
        self.assertEqual(rw["verb"], "EHLO")
        self.assertGreater(rw["seq"], reply["seq"])
        self.assertIn("STARTTLS", rw["note"])
        self.assertEqual(bytes(rw["bytes"]), ehlo.raw, "the rewritten reply the client got")

    def test_max_body_cap_recorded_as_truncated(self):
        m = self.mailtap(self.postfix.submission, extra_args=["--max-body", "2KiB"])
        db = Path(m._tmp) / "mailtap.db"
        token = unique_token("big")
        body = "".join(f"line {i:05d} {'y' * 60}\n" for i in range(300))
        message = make_message(token, body=body)
        self.assertGreater(len(message), 4 * 2048)
        smtplib_send(m.port, message)
        self.assertDelivered(token, message)
        [s] = wait_ended(db, 1)
        [msg] = query(db, "SELECT * FROM messages WHERE session_id = ?", (s["id"],))
        self.assertEqual(msg["body_truncated"], 1)
        self.assertEqual(msg["size"], len(message), "size is the full size")
        self.assertEqual(msg["sha256"], hashlib.sha256(message).hexdigest(), "of the full body")
        self.assertEqual(recorded_body(db, msg["id"]), message[:2048])
        self.assertEqual(msg["final_code"], 250)
        # what was left out is accounted for: the events add up to every octet relayed
        [cut] = query(db, "SELECT * FROM events WHERE session_id = ? AND kind = 'data' AND "
                          "length(bytes) = 0", (s["id"],))
        self.assertEqual(cut["wire_size"], len(message) + 3 - 2048)  # + ".\r\n"
        self.assertIn("not recorded: --max-body 2048", cut["note"])

    def test_max_body_counts_the_body_not_the_terminator(self):
        # Bodies of cap-2 .. cap+2 octets: at most the cap is complete (not flagged, byte-exact
        # in `show --message`); a longer one is recorded up to exactly the cap.
        def message_of(token: str, size: int) -> bytes:
            def made(pad: int) -> bytes:  # ending in CRLF, as smtplib would send it
                return make_message(token, body="x" * pad).rstrip(b"\r\n") + b"\r\n"
            message = made(20 + size - len(made(20)))
            self.assertEqual(len(message), size)
            return message

        cap = len(message_of(unique_token("cap"), 400))
        m = self.mailtap(self.postfix.submission, extra_args=["--max-body", str(cap)])
        db = Path(m._tmp) / "mailtap.db"
        sent = []
        for size in range(cap - 2, cap + 3):
            token = unique_token("cap")
            message = message_of(token, size)
            smtplib_send(m.port, message)
            self.assertDelivered(token, message)
            sent.append(message)
        for s, message in zip(wait_ended(db, len(sent)), sent):
            [msg] = query(db, "SELECT * FROM messages WHERE session_id = ?", (s["id"],))
            truncated = len(message) > cap
            self.assertEqual(msg["size"], len(message))
            self.assertEqual(msg["body_truncated"], int(truncated), len(message))
            self.assertEqual(msg["sha256"], hashlib.sha256(message).hexdigest())
            shown = subprocess.run([str(mailtap_bin()), "show", str(s["id"]), "--message", "1",
                                    "--db", str(db)], capture_output=True, timeout=30)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertEqual(shown.stdout, message[:cap], len(message))
            if truncated:
                self.assertIn(f"only the first {cap} of {len(message)} bytes".encode(),
                              shown.stderr)
            else:
                self.assertNotIn(b"truncated", shown.stderr)
            cut = query(db, "SELECT * FROM events WHERE session_id = ? AND kind = 'data' AND "
                            "length(bytes) = 0", (s["id"],))
            self.assertEqual([c["wire_size"] for c in cut],
                             [len(message) - cap + 3] if truncated else [])

    def test_large_body_is_stored_once_in_its_body_file_and_exported_exactly(self):
        m = self.mailtap(self.postfix.submission)
        db = Path(m._tmp) / "mailtap.db"
        token = unique_token("large")
        body = "".join(f".{i:07d} {'z' * 70}\n" for i in range(40000))  # ~3 MiB, dot-stuffed
        message = make_message(token, body=body)
        smtplib_send(m.port, message)
        self.assertDelivered(token, message)
        [s] = wait_ended(db, 1)
        [msg] = query(db, "SELECT * FROM messages WHERE session_id = ?", (s["id"],))
        self.assertEqual(msg["sha256"], hashlib.sha256(message).hexdigest())
        self.assertEqual(recorded_body(db, msg["id"]), message)

        body_file = Path(f"{db}-bodies") / str(s["id"])
        self.assertEqual(file_mode(body_file), 0o600)
        self.assertEqual(file_mode(body_file.parent), 0o700)
        # Past the first 64 KiB the body is in its file once; the database and its WAL hold
        # the rest of the record, not a second copy.
        self.assertGreater(body_file.stat().st_size, len(message) - 65536)
        in_db = sum(Path(f"{db}{x}").stat().st_size for x in ("", "-wal")
                    if Path(f"{db}{x}").exists())
        self.assertLess(in_db, len(message) // 4, "database + WAL")

        exported = subprocess.run(
            [str(mailtap_bin()), "export", str(s["id"]), "--format", "eml", "--db", str(db)],
            capture_output=True, timeout=60, check=True).stdout
        self.assertEqual(exported, message, "mailtap export --format eml gives the body relayed")

    def test_no_secret_in_database_wal_transcript_or_log(self):
        wrong_pw = "Wrong-" + secrets.token_urlsafe(18)
        forbidden = forbidden_secrets()
        for i, form in enumerate(secret_forms(wrong_pw.encode())):
            forbidden[f"rejected password form {i}"] = form
        forbidden["rejected PLAIN blob"] = b64(f"\0{PLAIN_334_USER}\0{wrong_pw}".encode())

        m = self.mailtap(self.postfix.submission, extra_args=["--transcript", "-vv"])
        db = Path(m._tmp) / "mailtap.db"
        fake = self.fake("good", auth_mechs="XOAUTH2 PLAIN LOGIN",
                         replies={"AUTH": b"235 2.7.0 Accepted\r\n"})
        m2 = self.mailtap(fake.address, extra_args=["--transcript", "-vv"])
        db2 = Path(m2._tmp) / "mailtap.db"

        # AUTH PLAIN with an initial response (swaks), then a message
        token = unique_token("auth")
        self.assertProcOk(swaks(m.port, auth="PLAIN", user=PLAIN_IR_USER, password=PLAIN_IR_PW,
                                data=make_message(token)), "swaks AUTH PLAIN")
        # AUTH LOGIN, two steps (swaks)
        self.assertProcOk(swaks(m.port, auth="LOGIN", user=LOGIN_USER, password=LOGIN_PW),
                          "swaks AUTH LOGIN")
        # AUTH PLAIN, empty initial response: 334 then the blob; first a wrong password
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            self.assertEqual(c.cmd("AUTH PLAIN").code, 334)
            self.assertEqual(c.cmd(auth_plain(PLAIN_334_USER, wrong_pw)).code, 535)
            self.assertEqual(c.cmd("AUTH PLAIN").code, 334)
            self.assertEqual(c.cmd(auth_plain(PLAIN_334_USER, PLAIN_334_PW)).code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        # AUTH LOGIN with the user name inline
        with SmtpSocket(m.port) as c:
            self.assertEqual(c.reply().code, 220)
            self.assertEqual(c.cmd("EHLO client.test").code, 250)
            r = c.cmd("AUTH LOGIN " + b64(LOGIN_IR_USER.encode()).decode())
            self.assertEqual(r.code, 334, str(r))
            self.assertEqual(c.cmd(b64(LOGIN_IR_PW.encode())).code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        # XOAUTH2 (Gmail's OAuth mechanism) against the scripted server
        xoauth = f"user={XOAUTH2_USER}\x01auth=Bearer {XOAUTH2_TOKEN}\x01\x01".encode()
        with SmtpSocket(m2.port) as c:
            self.assertEqual(c.reply().code, 220)
            ehlo = c.cmd("EHLO client.test")
            self.assertIn("XOAUTH2", ehlo.text)
            self.assertEqual(c.cmd(b"AUTH XOAUTH2 " + b64(xoauth)).code, 235)
            self.assertEqual(c.cmd("QUIT").code, 221)
        # the fake really got the token: the scan below is not vacuous
        got = b"".join(line for _, line in fake.wait_sessions(1)[0].commands)
        self.assertIn(b64(xoauth), got)

        wait_ended(db, 4)
        wait_ended(db2, 1)

        def scan(when: str):
            blobs = {}
            for name, data in mailtap_files(db).items():
                blobs[f"postfix-run {name}"] = data
            for name, data in mailtap_files(db2).items():
                blobs[f"xoauth2-run {name}"] = data
            for label, proc in (("postfix-run", m), ("xoauth2-run", m2)):
                blobs[f"{label} stdout"] = proc.stdout.encode()
                blobs[f"{label} stderr"] = proc.stderr.encode()
            leaks = find_leaks(blobs, forbidden)
            self.assertEqual(leaks, [], f"secrets leaked {when}")
            return blobs

        # What the scan reads of the transcripts: all of both, not what the pipe has delivered.
        m.wait_stdout("S: 221", count=4)
        m2.wait_stdout("S: 221")
        blobs = scan("while mailtap runs")
        self.assertIn("postfix-run mailtap.db-wal", blobs, "WAL present while running")
        self.assertGreater(len(blobs["postfix-run mailtap.db-wal"]), 0)
        self.assertIn("AUTH", m.stdout, "--transcript printed the sessions")
        self.assertIn("XOAUTH2", m2.stdout)
        self.assertIn("connected, opening", m.stderr, "-vv: the most detailed log was scanned")

        # the user names are kept (without --redact-users)
        users = {r["auth_user"] for r in query(db, "SELECT auth_user FROM sessions")}
        self.assertEqual(users - {None}, {PLAIN_IR_USER, LOGIN_USER, PLAIN_334_USER, LOGIN_IR_USER})
        [x] = query(db2, "SELECT auth_user FROM sessions")
        self.assertEqual(x["auth_user"], XOAUTH2_USER)
        # the redacted lines are marked, and they still say how much crossed the wire
        red = query(db, "SELECT * FROM events WHERE redacted = 1")
        self.assertGreaterEqual(len(red), 5)
        for e in red:
            self.assertIn(b"redacted", bytes(e["bytes"]))
            self.assertGreater(e["wire_size"], 0)
        notes = " ".join(e["note"] or "" for e in query(db, "SELECT note FROM events"))
        for user in (PLAIN_IR_USER, LOGIN_USER, LOGIN_IR_USER):
            self.assertIn(user, notes, "the decoded user name is in the record")

        self.assertEqual(m.stop(), 0, m.stderr)
        self.assertEqual(m2.stop(), 0, m2.stderr)
        scan("after mailtap stopped")


    def test_redact_users_and_fingerprints(self):
        m = self.mailtap(self.postfix.submission,
                         extra_args=["--transcript", "-vv", "--redact-users",
                                     "--fingerprint-secrets"])
        db = Path(m._tmp) / "mailtap.db"
        for _ in range(2):
            self.assertProcOk(swaks(m.port, auth="PLAIN", user=PLAIN_IR_USER,
                                    password=PLAIN_IR_PW), "swaks AUTH PLAIN")
        self.assertProcOk(swaks(m.port, auth="LOGIN", user=LOGIN_USER, password=LOGIN_PW),
                          "swaks AUTH LOGIN")
        wait_ended(db, 3)
        forbidden = forbidden_secrets()
        for user in (PLAIN_IR_USER, LOGIN_USER):
            for i, form in enumerate(secret_forms(user.encode())):
                forbidden[f"user name {user} form {i}"] = form
        blobs = dict(mailtap_files(db))
        blobs["stdout"], blobs["stderr"] = m.stdout.encode(), m.stderr.encode()
        self.assertEqual(find_leaks(blobs, forbidden), [])
        self.assertEqual([r[0] for r in query(db, "SELECT auth_user FROM sessions")], [None] * 3)
        # the same password gives the same keyed fingerprint within this database
        lines = [bytes(r[0]).decode() for r in query(
            db, "SELECT bytes FROM events WHERE redacted = 1 ORDER BY id")]
        lines = [line for line in lines if line.startswith("AUTH PLAIN")]
        self.assertEqual(len(lines), 2, dump(query(db, "SELECT * FROM events WHERE kind = 'auth'")))
        fps = [re.search(r"password=<redacted \d+ bytes fp=([0-9a-f]+)>", line).group(1)
               for line in lines]
        self.assertEqual(fps[0], fps[1], lines)
        [key] = query(db, "SELECT value FROM meta WHERE key = 'fingerprint_key'")
        self.assertEqual(len(bytes(key[0])), 32)


if __name__ == "__main__":
    main()
