#!/usr/bin/env python3
"""The record tools (`mailtap sessions`, `show`, `export`, `audit`, `prune`) on a database
recorded through the real proxy: swaks with AUTH PLAIN and AUTH LOGIN to the private Postfix, a
failing RCPT, a person at nc typing bare LF line ends, and a session a FakeServer with a
self-signed certificate got refused.  Assertions are on what a user reads and on exit codes."""

import base64
import contextlib
import datetime
import fcntl
import json
import mailbox
import os
import random
import re
import resource
import select
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_mailtap_auth import core_size_limit, not_dumpable, proc_file  # noqa: E402

ALICE = ("alice", h.USERS["alice"])
BOB = ("bob", h.USERS["bob"])


def escape_line(text: bytes) -> bytes:
    """Wire text as the transcript shows it (escape_line in proxy/common/terminal_escape.cpp)."""
    named = {0x0D: b"\\r", 0x0A: b"\\n"}
    return b"".join(bytes([c]) if c == 0x09 or 0x20 <= c < 0x7F
                    else named.get(c, b"\\x%02x" % c) for c in text)


def record_database(db: Path, pki, postfix) -> dict:
    """Records the sessions the tests look at into `db`; returns what was sent, by name."""
    sent = {}
    with h.Mailtap(postfix.submission, ca_file=pki.ca_cert, db=db) as mt:
        tok = h.unique_token("plain")
        msg = h.make_message(tok)
        cp = h.swaks(mt.port, auth="PLAIN", user=ALICE[0], password=ALICE[1], data=msg)
        if cp.returncode != 0:
            raise RuntimeError(f"swaks PLAIN failed: {cp.stdout!r} {cp.stderr!r}")
        sent["plain"] = (tok, msg)
        postfix.wait_for_message(tok, mailbox="alice")

        tok = h.unique_token("login")
        msg = h.make_message(tok, to_addr="bob@example.test")
        cp = h.swaks(mt.port, auth="LOGIN", user=BOB[0], password=BOB[1], data=msg,
                     to="bob@example.test")
        if cp.returncode != 0:
            raise RuntimeError(f"swaks LOGIN failed: {cp.stdout!r} {cp.stderr!r}")
        sent["login"] = (tok, msg)
        postfix.wait_for_message(tok, mailbox="bob")

        # A recipient Postfix does not know: 550 5.1.1 at RCPT, swaks gives up.
        h.swaks(mt.port, auth="PLAIN", user=ALICE[0], password=ALICE[1],
                to="nobody@example.test")

        tok = h.unique_token("nc")
        msg = h.make_message(tok, eol="\n")
        with h.NetcatClient(mt.port) as nc:
            h.start_data(nc, ehlo="person.test", auth=ALICE)
            nc.send(h.dot_stuff(msg))
            nc.cmd(b".")
            nc.cmd(b"QUIT")
        sent["nc"] = (tok, msg)
        postfix.wait_for_message(tok, mailbox="alice")

    fake = h.FakeServer("self_signed", pki)
    fake.__enter__()
    try:
        with h.Mailtap(fake.address, ca_file=pki.ca_cert, db=db) as mt:
            with h.SmtpSocket(mt.port) as c:
                c.reply()
                c.read_until_closed()
    finally:
        fake.close()
    return sent


# A sanitizer build (the test command runs every test under ASan too) cannot run under a
# memory limit: the RelWithDebInfo run measures memory.
UNDER_ASAN = bool(os.environ.get("ASAN_OPTIONS"))


def copy_recorded_db(db: Path, dst: Path, bodies: bool = True) -> Path:
    """A consistent copy of a recorded database (SQLite's backup), with its body files unless
    `bodies` is false (a record of small messages only, which has none)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = sqlite3.connect(dst)
    with out:
        con.backup(out)
    con.close()
    out.close()
    if bodies:
        shutil.copytree(f"{db}-bodies", f"{dst}-bodies")
    return dst


class ToolsReadOnlyTest(h.IntegrationCase):
    with_postfix = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.sent = record_database(cls.db, cls.pki, cls.postfix)

    # helpers ----------------------------------------------------------------------------
    def tool(self, *args, db=None, env=None, expect=0) -> subprocess.CompletedProcess:
        cmd = [str(h.mailtap_bin()), *args, "--db", str(db or self.db)]
        full_env = dict(os.environ)
        full_env.pop("MAILTAP_DB", None)
        full_env.update(env or {})
        cp = subprocess.run(cmd, capture_output=True, timeout=60, env=full_env)
        if expect is not None:
            self.assertEqual(cp.returncode, expect,
                             f"{' '.join(cmd)} exited {cp.returncode}\nstdout:\n"
                             f"{cp.stdout.decode(errors='replace')}\nstderr:\n"
                             f"{cp.stderr.decode(errors='replace')}")
        return cp

    def sql(self, query, *params, db=None):
        con = sqlite3.connect(f"file:{db or self.db}?mode=ro", uri=True)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def make_version_eight_copy(self, path: Path) -> None:
        """The record as yesterday's release (schema 8) wrote it, with its body files."""
        con = sqlite3.connect(str(self.db))
        con.execute(f"VACUUM INTO '{path}'")
        con.close()
        con = sqlite3.connect(str(path), isolation_level=None)
        con.executescript("ALTER TABLE sessions DROP COLUMN duration_us; "
                          "ALTER TABLE messages DROP COLUMN recipients_left_out; "
                          "ALTER TABLE messages DROP COLUMN accepted_recipients_left_out; "
                          "ALTER TABLE sessions DROP COLUMN client_cert_subject; "
                          "ALTER TABLE sessions DROP COLUMN client_cert_sha256; "
                          "PRAGMA user_version=8;")
        con.close()
        if Path(str(self.db) + "-bodies").exists():
            shutil.copytree(str(self.db) + "-bodies", str(path) + "-bodies")

    def listing_without_measured_durations(self) -> bytes:
        """`mailtap sessions` of the record as a copy made by make_version_eight_copy reads once
        upgraded: schema 8 had no duration_us, so each length is ended_at - started_at, which
        the wall clock gave, not the steady clock's measure (they part in the millisecond the
        listing shows now and then, and often under a sanitizer)."""
        scratch = self.tmp / f"durations-{uuid.uuid4().hex}.db"
        with contextlib.closing(sqlite3.connect(str(self.db))) as con:
            con.execute(f"VACUUM INTO '{scratch}'")
        with contextlib.closing(sqlite3.connect(str(scratch), isolation_level=None)) as con:
            con.execute("UPDATE sessions SET duration_us = NULL")
        return self.tool("sessions", db=scratch).stdout

    def test_the_proxy_says_it_upgraded_an_older_database(self):
        # Irreversible, and older mailtaps refuse the file after it: never silent. A process
        # holding the file open (here a reader, as an older proxy or web would) is named too.
        (self.tmp / "v8-open").mkdir()
        old = self.tmp / "v8-open" / "mailtap.db"
        self.make_version_eight_copy(old)
        holder = sqlite3.connect(str(old), isolation_level=None)
        self.addCleanup(holder.close)
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("SELECT count(*) FROM sessions").fetchall()
        m = h.Mailtap("127.0.0.1:1", db=old, tls="none")
        m.start()
        self.assertEqual(m.stop(), 0, m.stderr)
        self.assertIn(f"upgraded '{old}' from schema version 8 to 11", m.stderr)
        self.assertIn("older mailtaps cannot use it any more", m.stderr)
        self.assertIn("another process has", m.stderr)
        self.assertIn("must be stopped and started again with this version", m.stderr)
        again = h.Mailtap("127.0.0.1:1", db=old, tls="none")
        again.start()
        self.assertEqual(again.stop(), 0, again.stderr)
        self.assertNotIn("upgraded", again.stderr, "said once, when it happens")
        # Schema 10 counts from the events what the messages' recipients leave out: none here,
        # every RCPT relayed having its row (known, not NULL).
        self.assertEqual(self.sql("SELECT count(*), count(recipients_left_out), "
                                  "sum(recipients_left_out) FROM messages", db=old),
                         self.sql("SELECT count(*), count(*), 0 FROM messages"))
        self.assertGreater(self.sql("SELECT count(*) FROM messages")[0][0], 0)

    def test_the_upgrade_is_said_under_quiet_too(self):
        # --quiet keeps errors and warnings: that the file changed format for good (older
        # mailtaps refuse it from now on) is one, not start-up chatter.
        (self.tmp / "v8-quiet").mkdir()
        old = self.tmp / "v8-quiet" / "mailtap.db"
        self.make_version_eight_copy(old)
        m = h.Mailtap("127.0.0.1:1", db=old, tls="none", extra_args=["--quiet"])
        m.start()
        self.assertEqual(m.stop(), 0, m.stderr)
        self.assertIn(f"upgraded '{old}' from schema version 8 to 11", m.stderr)
        self.assertIn("older mailtaps cannot use it any more", m.stderr)

    def test_older_schema_where_it_cannot_be_upgraded_says_to_copy_it(self):
        # An archive or read-only mount: the advice to run the proxy on it could only fail.
        src, ro, home = self.tmp / "v8-src", self.tmp / "v8 o'ro", self.tmp / "v8-home"
        for d in (src, ro, home):
            d.mkdir()
        self.make_version_eight_copy(src / "mailtap.db")
        for cmd in (["mount", "--bind", str(src), str(ro)],
                    ["mount", "-o", "remount,ro,bind", str(ro)]):
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                raise unittest.SkipTest("cannot make a read-only bind mount here")
            self.addCleanup(subprocess.run, ["umount", "-l", str(ro)], capture_output=True)
        old = ro / "mailtap.db"
        err = self.tool("sessions", db=old, expect=1).stderr.decode()
        self.assertIn("cannot be upgraded where it is", err)
        self.assertNotIn("restart mailtap@NAME", err, "no advice that fails here")
        commands = re.findall(r"`([^`]*)`", err)
        self.assertEqual(len(commands), 2, err)
        copy, upgrade = commands
        env = dict(os.environ, HOME=str(home))
        subprocess.run(["bash", "-c", copy], check=True, env=env, timeout=60)
        self.assertTrue(upgrade.startswith("mailtap proxy --db "), upgrade)
        copied = subprocess.run(["bash", "-c", "echo " + upgrade[len("mailtap proxy --db "):]],
                                capture_output=True, env=env, check=True).stdout.decode().strip()
        self.assertEqual(Path(copied).name, "mailtap.db")
        self.assertEqual(Path(copied).parent.parent, home)
        m = h.Mailtap("127.0.0.1:1", db=copied, tls="none")
        m.start()
        self.assertEqual(m.stop(), 0, m.stderr)
        listing = self.tool("sessions", db=copied).stdout
        self.assertEqual(listing, self.listing_without_measured_durations())
        # Followed again, the same advice or a later one's: the upgraded copy (perhaps recorded
        # to since) is not overwritten by the old file.
        again = self.tool("sessions", db=old, expect=1).stderr.decode()
        for command in (copy, re.findall(r"`([^`]*)`", again)[0]):
            subprocess.run(["bash", "-c", command], env=env, timeout=60, capture_output=True)
        self.assertEqual(self.sql("PRAGMA user_version", db=copied), [(11,)])
        self.assertEqual(self.tool("sessions", db=copied).stdout, listing)

    def session_with(self, token: str) -> int:
        rows = [(sid,) for sid, mid in self.sql("SELECT session_id, id FROM messages")
                if token.encode() in h.recorded_body(self.db, mid)]
        self.assertEqual(len(rows), 1, f"no single session carries {token}")
        return rows[0][0]

    def session_with_login(self) -> int:
        return self.session_with(self.sent["login"][0])

    def failing_rcpt_session(self) -> int:
        rows = self.sql("SELECT DISTINCT session_id FROM events WHERE reply_code = 550")
        self.assertEqual(len(rows), 1)
        return rows[0][0]

    def refused_session(self) -> int:
        # recorded last, through the FakeServer with the self-signed certificate
        return self.sql("SELECT max(id) FROM sessions")[0][0]

    def copy_db(self, name: str) -> Path:
        return copy_recorded_db(self.db, self.tmp / name, bodies=False)

    # every tool -------------------------------------------------------------------------
    def test_an_empty_db_path_is_refused_not_taken_for_the_default(self):
        # A database at the default path: falling back to it would quietly read (or replay,
        # serve) the wrong record, and exit as if all was well.
        home = self.tmp / "empty-db-home"
        default = home / ".local" / "share" / "mailtap" / "mailtap.db"
        default.parent.mkdir(parents=True)
        shutil.copyfile(self.copy_db("empty-db-default.db"), default)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env["HOME"] = str(home)

        def run(*args, extra_env=None):
            return subprocess.run([str(h.mailtap_bin()), *args], capture_output=True,
                                  timeout=20, env={**env, **(extra_env or {})})

        port = f"127.0.0.1:{h.free_port()}"
        for args in (["sessions"], ["show", "1"], ["export", "1"], ["audit"],
                     ["prune", "--keep", "1", "--dry-run"],
                     ["replay", "1", "--to", f"127.0.0.1:{h.closed_port()}", "--no-record"],
                     ["mock", "1", "--listen", port], ["web", "--listen", port]):
            with self.subTest(args=args):
                cp = run(*args, "--db", "")
                self.assertEqual(cp.returncode, 2, cp.stderr.decode(errors="replace"))
                self.assertEqual(cp.stdout, b"")
                self.assertIn(b"--db: an empty path names no database: give a path, or leave "
                              b"--db (and db in the config file) out for the default", cp.stderr)

        # The same in a config file, at the top level or in the tool's table.
        for text in ('db = ""\n', '[show]\ndb = ""\n'):
            with self.subTest(config=text):
                config = self.tmp / "empty-db.toml"
                h.write_config_file(config, text)
                cp = run("show", "1", "--config", str(config))
                self.assertEqual(cp.returncode, 2, cp.stderr.decode(errors="replace"))
                self.assertEqual(cp.stdout, b"")
                self.assertIn(f"{config}:{text.count(chr(10))}".encode(), cp.stderr)
                self.assertIn(b"an empty path names no database", cp.stderr)

        # An empty variable counts as unset, for every MAILTAP_ variable (docs/config.md), and
        # the proxy reads MAILTAP_DB the same way: the default database it records to.
        cp = run("sessions", "--json", extra_env={"MAILTAP_DB": ""})
        self.assertEqual(cp.returncode, 0, cp.stderr.decode(errors="replace"))
        self.assertEqual(len(json.loads(cp.stdout)), 5)

    def test_no_database_path_at_all_is_bad_usage_as_for_the_proxy(self):
        # No --db, MAILTAP_DB, XDG_DATA_HOME or HOME: a configuration to mend (exit status 2,
        # as `mailtap proxy` has it), not a database that failed to open (1).
        env = {k: v for k, v in os.environ.items()
               if k != "HOME" and not k.startswith(("MAILTAP_", "XDG_"))}
        port = f"127.0.0.1:{h.free_port()}"
        for args in (["sessions"], ["show", "1"], ["export", "1"], ["audit"],
                     ["prune", "--keep", "1", "--dry-run"],
                     ["replay", "1", "--to", f"127.0.0.1:{h.closed_port()}", "--no-record"],
                     ["mock", "1", "--listen", port], ["web", "--listen", port]):
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args, "--config", "/dev/null"],
                                    capture_output=True, timeout=20, env=env)
                self.assertEqual(cp.returncode, 2, cp.stderr.decode(errors="replace"))
                self.assertEqual(cp.stdout, b"")
                self.assertIn(b"no database path: set --db, MAILTAP_DB, XDG_DATA_HOME or HOME",
                              cp.stderr)

    def test_session_ids_and_counts_are_plain_decimal_numbers(self):
        # strtoll would take 0x1 for session 1, 010 for 8 and -1 for the largest count, and
        # clamp the huge id: each is refused, saying what an id or a count is (exit status 2).
        port = f"127.0.0.1:{h.free_port()}"
        for bad in ("0x1", "010", "-1", "+1", " 1", "1.0", "1e1", "0", "",
                    "99999999999999999999", "9223372036854775808"):
            for args in (["show", bad], ["export", "1", bad], ["replay", bad, "--to",
                         f"127.0.0.1:{h.closed_port()}", "--no-record"],
                         ["mock", bad, "--listen", port]):
                with self.subTest(args=args):
                    cp = self.tool(*args, expect=2)
                    self.assertEqual(cp.stdout, b"")
                    self.assertIn(f"not a session id: {bad} (a session id is a number such as "
                                  "12, see `mailtap sessions`)".encode(), cp.stderr)
        cp = self.tool("show", "9223372036854775807", expect=1)  # the largest id there can be
        self.assertIn(b"no session 9223372036854775807", cp.stderr)

        sid = str(self.session_with(self.sent["plain"][0]))
        for args, says in (
                (["sessions", "--limit", "-1"], "--limit: not a number of sessions: -1 ("),
                (["sessions", "--limit", "0x2"], "--limit: not a number of sessions: 0x2 ("),
                (["prune", "--keep", "-1"], "--keep: not a number of sessions: -1 ("),
                (["prune", "--keep", "99999999999999999999"],
                 "--keep: not a number of sessions: 99999999999999999999 ("),
                (["show", sid, "--message", "0x1"], "--message: not a message number: 0x1 ("),
                (["show", sid, "--message", "0"], "messages are numbered from 1"),
                (["audit", "--expiry-days", "-1"], "--expiry-days: not a number of days: -1 (")):
            with self.subTest(args=args):
                cp = self.tool(*args, expect=2)
                self.assertEqual(cp.stdout, b"")
                self.assertIn(says.encode(), cp.stderr)
        self.assertEqual(len(json.loads(self.tool("sessions", "--json", "--limit", "0").stdout)),
                         5)

    # sessions ---------------------------------------------------------------------------
    def test_sessions_lists_every_session_with_outcome_and_user(self):
        out = self.tool("sessions").stdout.decode()
        lines = out.strip().splitlines()
        self.assertTrue(lines[0].startswith("ID"), out)
        self.assertEqual(len(lines), 1 + 5, out)
        self.assertNotIn("\x1b[", out, "colour escapes on a pipe")
        plain = self.session_with(self.sent["plain"][0])
        line = next(l for l in lines if l.split()[0] == str(plain))
        self.assertIn("alice", line)
        self.assertIn("quit", line)
        self.assertIn("TLSv1.3", line)
        self.assertIn("221", line)  # last reply the client saw
        bob = next(l for l in lines if l.split()[0] == str(self.session_with_login()))
        self.assertIn("bob", bob)
        refused = next(l for l in lines if l.split()[0] == str(self.refused_session()))
        self.assertRegex(refused, r"refused|error|upstream_closed")
        self.assertIn("421", refused)

    def test_sessions_escapes_recorded_text_as_show_does(self):
        # The columns come from the network. They are shown as show's transcript shows them
        # (\xHH), not as "?", so the two tools agree and an escape can be read for what it is.
        copy = self.copy_db("sessions-escapes.db")
        sid = self.session_with(self.sent["plain"][0])
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE sessions SET auth_user = ?, client_address = ? WHERE id = ?",
                        ("al\x1b[2Jice", "192.0.2.1\x9b", sid))
        con.close()
        out = self.tool("sessions", db=copy).stdout
        self.assertNotIn(b"\x1b", out)
        line = next(l for l in out.splitlines() if l.split()[0] == str(sid).encode())
        self.assertIn(b"al\\x1b[2Jice", line)
        self.assertIn(b"192.0.2.1\\xc2\\x9b", line)
        shown = self.tool("show", str(sid), db=copy).stdout
        self.assertIn(b"user     al\\x1b[2Jice", shown)
        self.assertIn(b"client   192.0.2.1\\xc2\\x9b", shown)

    def test_sessions_reads_a_database_in_a_directory_it_may_not_write(self):
        """An archived database (WAL mode, nothing beside it) in a read-only directory, read by
        a user who may not write there: SQLite cannot create the -shm file it reads a WAL
        database through, so the one-shot tools open it as immutable; mailtap web, whose readers
        stay open, does not. With a -wal file beside it (of any size), whose commits that would
        miss, they say why they cannot read it."""
        archive = Path(tempfile.mkdtemp(prefix="mailtap-archive-"))
        self.addCleanup(shutil.rmtree, archive, True)
        self.addCleanup(os.chmod, archive, 0o755)
        db = archive / "archived.db"
        shutil.copyfile(self.copy_db("to-archive.db"), db)
        self.assertEqual(db.read_bytes()[18:20], b"\x02\x02", "in WAL mode")
        os.chmod(db, 0o444)
        os.chmod(archive, 0o555)

        def as_nobody():
            os.setgid(65534)
            os.setuid(65534)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env["HOME"] = str(archive)  # nobody may not read root's config file

        def run():
            return subprocess.run([str(h.mailtap_bin()), "sessions", "--db", str(db)],
                                  capture_output=True, timeout=60, preexec_fn=as_nobody, env=env)

        cp = run()
        self.assertEqual(cp.returncode, 0, cp.stderr.decode())
        self.assertEqual(len(cp.stdout.decode().strip().splitlines()), 1 + 5, cp.stdout)
        self.assertEqual(sorted(p.name for p in archive.iterdir()), ["archived.db"])

        # prune --dry-run changes nothing and reads once: it reads the archive as sessions does.
        dry = subprocess.run([str(h.mailtap_bin()), "prune", "--keep", "0", "--dry-run", "--db",
                              str(db)], capture_output=True, timeout=60, preexec_fn=as_nobody,
                             env=env)
        self.assertEqual(dry.returncode, 0, dry.stderr.decode())
        self.assertIn(b"would remove 5 sessions", dry.stdout)
        self.assertEqual(sorted(p.name for p in archive.iterdir()), ["archived.db"])

        # mailtap web keeps its readers open: an immutable one would never see later commits
        # (and holds no lock against a checkpoint), so it says why it cannot read the file.
        web = subprocess.run([str(h.mailtap_bin()), "web", "--db", str(db), "--listen",
                              f"127.0.0.1:{h.free_port()}"],
                             capture_output=True, timeout=60, preexec_fn=as_nobody, env=env)
        self.assertEqual(web.returncode, 1, web.stdout)
        err = web.stderr.decode()
        self.assertIn("not writable", err)
        self.assertIn("copy the database to a directory you may write", err)
        self.assertEqual(sorted(p.name for p in archive.iterdir()), ["archived.db"])

        # A -wal file of any size: a writer may be at work (a live writer's -wal is empty just
        # after a wal_checkpoint(TRUNCATE)), and an immutable read would miss its commits.
        for size in (4096, 0):
            with self.subTest(wal_size=size):
                os.chmod(archive, 0o755)
                (archive / "archived.db-wal").write_bytes(b"\0" * size)
                os.chmod(archive, 0o555)
                cp = run()
                self.assertEqual(cp.returncode, 1, cp.stdout)
                err = cp.stderr.decode()
                self.assertIn("archived.db-wal", err)
                self.assertIn("not writable", err)
                self.assertIn("copy the database with its -wal file", err)

    def test_web_reads_a_database_on_a_read_only_file_system(self):
        """On a file system mounted read-only no writer can commit, so mailtap web, whose
        readers stay open, may read the archive there as the one-shot tools do (it cannot make
        the -shm file SQLite reads a WAL database through)."""
        if os.geteuid() != 0 or shutil.which("unshare") is None or subprocess.run(
                ["unshare", "--mount", "sh", "-c", "mount --bind -o ro / /"],
                capture_output=True).returncode != 0:
            self.skipTest("needs root and unshare to mount a directory read-only")
        archive = Path(tempfile.mkdtemp(prefix="mailtap-ro-archive-"))
        self.addCleanup(shutil.rmtree, archive, True)
        db = archive / "archived.db"
        shutil.copyfile(self.copy_db("to-ro-archive.db"), db)
        port = h.free_port()
        web = subprocess.Popen(
            ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
             str(archive), str(h.mailtap_bin()), "web", "--db", str(db), "--listen",
             f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(web.wait)
        self.addCleanup(web.terminate)
        body = None
        while body is None and web.poll() is None:
            cp = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/api/sessions"],
                                capture_output=True, timeout=20)
            body = cp.stdout if cp.returncode == 0 else None
            time.sleep(0.1)
        self.assertIsNotNone(body, web.stderr.read().decode() if web.poll() is not None else "")
        self.assertEqual(len(json.loads(body)["sessions"]), 5)
        self.assertEqual(sorted(p.name for p in archive.iterdir()), ["archived.db"])

    def test_sessions_colour_only_on_a_terminal(self):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        rc, out = h.run_on_terminal(["sessions", "--db", str(self.db)], env=env)
        self.assertEqual(rc, 0)
        self.assertIn(b"\x1b[1m", out)
        self.assertIn(b"\x1b[32mquit", out)

    def test_sessions_json_and_filters(self):
        rows = json.loads(self.tool("sessions", "--json").stdout)
        self.assertEqual(len(rows), 5)
        self.assertEqual([r["id"] for r in rows], sorted((r["id"] for r in rows), reverse=True))
        self.assertEqual({r["auth_user"] for r in rows}, {"alice", "bob", None})
        msgs = {r["id"]: r["messages"] for r in rows}
        self.assertEqual(msgs[self.session_with(self.sent["plain"][0])], 1)

        alice = json.loads(self.tool("sessions", "--json", "--user", "alice").stdout)
        self.assertEqual(len(alice), 3)
        self.assertTrue(all(r["auth_user"] == "alice" for r in alice))
        quit_ = json.loads(self.tool("sessions", "--json", "--outcome", "quit").stdout)
        self.assertTrue(quit_ and all(r["outcome"] == "quit" for r in quit_))
        self.assertEqual(len(json.loads(self.tool("sessions", "--json", "--limit", "2").stdout)),
                         2)
        self.assertEqual(len(json.loads(self.tool("sessions", "--json", "--since", "2h").stdout)),
                         5)
        self.assertEqual(
            json.loads(self.tool("sessions", "--json", "--until", "2000-01-01").stdout), [])
        self.assertEqual(
            json.loads(self.tool("sessions", "--json", "--since", "2000-01-01T00:00Z").stdout)
            .__len__(), 5)
        self.assertEqual(json.loads(self.tool("sessions", "--json", "--upstream",
                                              "no.such.host").stdout), [])
        # HOST:PORT, as given to `proxy --upstream` and shown in the UPSTREAM column.
        r = next(r for r in rows if r["id"] == self.session_with_login())
        same = [x["id"] for x in rows
                if (x["upstream_host"], x["upstream_port"]) == (r["upstream_host"],
                                                                r["upstream_port"])]
        host_port = f"{r['upstream_host']}:{r['upstream_port']}"
        self.assertIn(host_port, self.tool("sessions").stdout.decode())
        self.assertEqual([x["id"] for x in json.loads(
            self.tool("sessions", "--json", "--upstream", host_port).stdout)], same)
        self.assertEqual(json.loads(self.tool(
            "sessions", "--json", "--upstream", f"{r['upstream_host']}:1").stdout), [])

    def test_sessions_rejects_bad_filters_clearly(self):
        cp = self.tool("sessions", "--since", "yesterday-ish", expect=2)
        self.assertIn(b"--since", cp.stderr)
        cp = self.tool("sessions", "--outcome", "exploded", expect=2)
        self.assertIn(b"unknown outcome", cp.stderr)
        cp = self.tool("sessions", db=self.tmp / "missing.db", expect=1)
        self.assertIn(b"missing.db", cp.stderr)
        self.assertFalse((self.tmp / "missing.db").exists(), "a read-only tool created the file")

    # show -------------------------------------------------------------------------------
    def test_show_plain_transcript(self):
        sid = self.session_with(self.sent["plain"][0])
        out = self.tool("show", str(sid)).stdout.decode()
        self.assertIn("C: EHLO client.test", out)
        self.assertRegex(out, r"\+\d+\.\d{3}s  ")  # relative timestamps
        self.assertIn("[pre-TLS] M> EHLO", out)      # mailtap's own pre-TLS exchange, marked
        self.assertIn("[pre-TLS] M> STARTTLS", out)
        # the greeting is pre-TLS on the server's side, and the one such line the client gets:
        # the legend must not say it was discarded
        self.assertRegex(out, r"\[pre-TLS\] S: 220 ")
        legend = next(line for line in out.splitlines() if line.startswith("# [pre-TLS]"))
        self.assertIn("greeting", legend)
        self.assertIn("C: AUTH PLAIN", out)
        self.assertIn("<redacted", out)
        self.assertNotIn(ALICE[1], out)
        self.assertNotIn(h.auth_plain(*ALICE), out)
        self.assertIn("# 235 2.7.0: authentication succeeded", out)
        self.assertRegex(out, r"# 250 2\.1\.5: recipient accepted")
        self.assertRegex(out, r"# 221 2\.0\.0: closing connection")
        self.assertIn("message 1", out)

    def test_the_show_samples_are_what_show_prints(self):
        """show.md's examples are sessions recorded as here: `show 2` swaks's AUTH LOGIN session
        as bob through Postfix, the second to it (its TLS session resumed), and `show 5` one
        refused for a self-signed certificate. The same lines, once times, ports, digests,
        tokens and Postfix's queue id (which differ from run to run) are masked."""
        text = (h.REPO_ROOT / "docs/tools/show.md").read_text()

        def masked(out: str) -> list:
            out = re.sub(r"\b[0-9a-f]{16,}\b", "HEX", out)
            out = re.sub(r"queued as [0-9A-Z]+", "queued as ID", out)
            return re.sub(r"\d", "0", out).splitlines()
        for shown, sid in ((2, self.session_with_login()), (5, self.refused_session())):
            with self.subTest(sample=f"show {shown}"):
                sample = re.search(rf"\n```console\n\$ mailtap show {shown}\n(.*?)```", text,
                                   re.S).group(1)
                real = self.tool("show", str(sid)).stdout.decode()
                real = real.replace(f"M> EHLO {socket.gethostname()}\n", "M> EHLO vm\n")
                real = real.replace(str(self.pki.ca_cert), "pki/ca.pem")  # the --ca-file
                self.assertEqual(masked(sample), masked(real))

    def test_show_login_decodes_prompts(self):
        out = self.tool("show", str(self.session_with_login())).stdout.decode()
        self.assertIn("S: 334 VXNlcm5hbWU6   (Username:)", out)
        self.assertIn("S: 334 UGFzc3dvcmQ6   (Password:)", out)
        self.assertIn("<redacted", out)
        self.assertNotIn(base64.b64encode(BOB[1].encode()).decode(), out)
        self.assertNotIn(BOB[1], out)

    def test_show_explains_failures(self):
        out = self.tool("show", str(self.failing_rcpt_session())).stdout.decode()
        self.assertIn("S: 550 5.1.1", out)
        self.assertIn("# 550 5.1.1: recipient mailbox does not exist", out)
        out = self.tool("show", str(self.refused_session())).stdout.decode()
        self.assertIn("M: 421", out)
        # mailtap's own refusal, explained from its wording as the web page and `mailtap
        # explain` explain it: what was wrong with the certificate, not only the codes.
        self.assertIn("# 421 4.7.0: the server's certificate is self-signed, so mailtap could not "
                      "verify it", out)

    def test_show_raw_is_the_recorded_bytes(self):
        sid = self.session_with(self.sent["plain"][0])
        raw = self.tool("show", str(sid), "--raw").stdout
        want = b"".join(bytes(r[0]) for r in self.sql(
            "SELECT bytes FROM events WHERE session_id = ? AND direction != 'mailtap_note' "
            "ORDER BY seq", sid))
        self.assertEqual(raw, want)
        self.assertIn(b"EHLO client.test\r\n", raw)

    def test_show_message_print_and_save(self):
        tok, msg = self.sent["plain"]
        sid = self.session_with(tok)
        body = self.tool("show", str(sid), "--message", "1").stdout
        self.assertEqual(body, msg)
        saved = self.tmp / "saved.eml"
        self.tool("show", str(sid), "--save", str(saved))
        self.assertEqual(saved.read_bytes(), msg)
        self.assertEqual(saved.stat().st_mode & 0o777, 0o600)
        cp = self.tool("show", str(sid), "--message", "9", expect=1)
        self.assertIn(b"no message 9", cp.stderr)
        cp = self.tool("show", "99999", expect=1)
        self.assertIn(b"no session 99999", cp.stderr)

    def test_an_empty_save_or_output_path_is_refused(self):
        """`--save "$OUT"` with OUT unset printed the whole transcript on stdout and saved
        nothing, exit 0: an empty path names no file, as `--db ""` is refused. `-` is still
        standard output."""
        sid = str(self.session_with(self.sent["plain"][0]))
        for args, option in ((["show", sid, "--save", ""], b"--save"),
                             (["export", sid, "--format", "eml", "-o", ""], b"--output")):
            with self.subTest(args=args):
                cp = self.tool(*args, expect=2)
                self.assertEqual(cp.stdout, b"")
                self.assertIn(option + b": an empty path names no file: give a path", cp.stderr)
        cp = self.tool("export", sid, "--format", "eml", "-o", "-")
        self.assertEqual(cp.stdout, self.sent["plain"][1])

    def test_show_refuses_options_that_would_drop_one_another(self):
        sid = self.session_with(self.sent["plain"][0])
        out = self.tmp / "combo.out"
        for args in (("--message", "0"), ("--raw", "--save", str(out)),
                     ("--json", "--save", str(out)), ("--json", "--message", "1"),
                     ("--raw", "--json")):
            cp = self.tool("show", str(sid), *args, expect=2)
            self.assertTrue(cp.stderr, args)
            self.assertEqual(cp.stdout, b"", args)
            self.assertFalse(out.exists(), args)
        cp = self.tool("show", str(sid), "--message", "0", expect=2)
        self.assertIn(b"numbered from 1", cp.stderr)
        # No message to save is not a usage mistake, and says so.
        cp = self.tool("show", str(self.failing_rcpt_session()), "--save", str(out), expect=1)
        self.assertIn(b"has no message to save", cp.stderr)
        self.assertFalse(out.exists())

    def test_saved_mail_is_0600_even_over_an_existing_file_and_never_through_a_link(self):
        tok, msg = self.sent["plain"]
        sid = self.session_with(tok)
        outdir = self.tmp / "existing-out"
        outdir.mkdir()
        for name, args in (("show.eml", ("show", str(sid), "--save")),
                           ("export.mbox", ("export", str(sid), "--format", "mbox", "-o"))):
            # An existing world-readable file: the mail must not land in it readable by others.
            old = outdir / name
            old.write_bytes(b"old contents that are longer than nothing\n" * 100)
            old.chmod(0o666)
            self.tool(*args, str(old))
            self.assertEqual(old.stat().st_mode & 0o777, 0o600, name)
            self.assertIn(tok.encode(), old.read_bytes())
            self.assertNotIn(b"old contents", old.read_bytes())
            # A symbolic link is refused, and its target left alone.
            target = outdir / (name + ".target")
            target.write_bytes(b"target\n")
            target.chmod(0o644)
            link = outdir / (name + ".link")
            link.symlink_to(target)
            cp = self.tool(*args, str(link), expect=1)
            self.assertIn(b"symbolic link; not followed", cp.stderr)
            self.assertEqual(target.read_bytes(), b"target\n")
            self.assertEqual(target.stat().st_mode & 0o777, 0o644)

    def test_show_prints_mailtaps_notes_as_utf8_but_escapes_controls(self):
        # mailtap's own notes are UTF-8 (the long-line note cites RFC 5321 §4.5.3.1.6) and
        # print as such; a note quoting a client (user="...") still cannot drive the terminal.
        copy = self.copy_db("notes.db")
        sid = self.session_with(self.sent["plain"][0])
        con = sqlite3.connect(copy)
        with con:
            seq = con.execute("SELECT min(seq) FROM events WHERE session_id = ? AND direction ="
                              " 'mailtap_note'", (sid,)).fetchone()[0]
            con.execute("UPDATE events SET note = ? WHERE session_id = ? AND seq = ?",
                        ("line longer than 1000 octets (RFC 5321 \u00a74.5.3.1.6)", sid, seq))
            con.execute("UPDATE events SET note = ? WHERE session_id = ? AND seq = "
                        "(SELECT min(seq) FROM events WHERE session_id = ? AND redacted = 1)",
                        ("user=\"a\x1b]0;TITLE\x07\x1b[2J\" password=<redacted>", sid, sid))
        con.close()
        out = self.tool("show", str(sid), db=copy).stdout
        self.assertIn("(RFC 5321 \u00a74.5.3.1.6)".encode(), out)
        self.assertNotIn(b"\\xc2\\xa7", out)
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        self.assertIn(b"user=\"a\\x1b]0;TITLE\\x07\\x1b[2J\"", out)

    def test_show_marks_a_note_written_after_the_session_ended(self):
        # A note of what the client sent after its last reply is written once the record is
        # closed: its time lies past ended_at, and show says so rather than put a +1.8s event
        # in a 0.001s session unmarked. The events before the end are not marked.
        copy = self.copy_db("after-end.db")
        sid = self.session_with(self.sent["plain"][0])
        con = sqlite3.connect(copy)
        with con:
            ended = con.execute("SELECT ended_at FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
            seq = con.execute("SELECT max(seq) FROM events WHERE session_id = ?",
                              (sid,)).fetchone()[0]
            con.execute("INSERT INTO events (session_id, seq, at, direction, phase, kind, bytes, "
                        "wire_size, redacted, note) SELECT session_id, ? , "
                        "strftime('%Y-%m-%dT%H:%M:%f', ?, '+2 seconds') || '000Z', "
                        "'mailtap_note', phase, 'note', x'', 0, 0, "
                        "'6 octets the client sent after the end were discarded unread' "
                        "FROM events WHERE session_id = ? AND seq = ?", (seq + 1, ended, sid, seq))
        con.close()
        out = self.tool("show", str(sid), db=copy).stdout.decode()
        [line] = [ln for ln in out.splitlines() if "after the end were discarded" in ln]
        self.assertIn("[after the end] ", line)
        self.assertEqual(out.count("[after the end]"), 1, out)

    def test_show_escapes_the_recorded_status_and_digest(self):
        # Beside the wire text, the "# 550 5.1.1: ..." line quotes a reply's enhanced status
        # and the message summary its sha256, both read back from the record: escaped too.
        copy = self.copy_db("show-status.db")
        sid = self.session_with(self.sent["plain"][0])
        osc = "\x1b]0;TITLE\x07"
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE events SET enhanced_status = ? WHERE session_id = ? AND "
                        "reply_code = 221", ("2.0.0" + osc, sid))
            con.execute("UPDATE messages SET sha256 = ? WHERE session_id = ?", ("ab" + osc, sid))
        con.close()
        out = self.tool("show", str(sid), db=copy).stdout
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        self.assertIn(b"# 221 2.0.0\\x1b]0;TITLE\\x07: ", out)
        self.assertIn(b"sha256 ab\\x1b]0;TITLE\\x07\n", out)

    def with_planted_body(self, name: str, data: bytes):
        """A copy of the record whose first message's DATA (as sent, terminator included) is
        `data`, in one event; returns the copy and the message's session."""
        copy = self.copy_db(name)
        con = sqlite3.connect(copy)
        with con:
            sid, txn = con.execute("SELECT session_id, mail_transaction FROM messages WHERE "
                                   "seq = 1 ORDER BY session_id LIMIT 1").fetchone()
            con.execute("DELETE FROM events WHERE session_id = ? AND mail_transaction = ? AND "
                        "kind = 'data' AND seq > (SELECT min(seq) FROM events WHERE session_id = ?"
                        " AND mail_transaction = ? AND kind = 'data')", (sid, txn, sid, txn))
            con.execute("UPDATE events SET bytes = ? WHERE session_id = ? AND mail_transaction = ?"
                        " AND kind = 'data'", (data, sid, txn))
        con.close()
        return copy, str(sid)

    def test_show_raw_and_message_escape_control_octets_on_a_terminal_only(self):
        # A server's reply and a message that would write the clipboard (OSC 52) and clear the
        # screen: on a terminal they are shown escaped, as in the transcript, with a note on
        # stderr; into a pipe or a file they stay the exact recorded bytes.
        osc52 = b"\x1b]52;c;cHduZWQ=\x07\x1b[2J"
        copy, sid = self.with_planted_body("escape.db", b"Subject: t\r\n\r\n" + osc52 +
                                           b"caf\xc3\xa9\xff\r\n.\r\n")
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE events SET bytes = ? WHERE session_id = ? AND direction = "
                        "'upstream_to_client' AND CAST(bytes AS TEXT) LIKE '250 2.1.0%'",
                        (b"250 2.1.0 Ok" + osc52 + b"\r\n", sid))
        con.close()
        escaped = b"\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J"
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        for args in (["--raw"], ["--message", "1"]):
            with self.subTest(args=args):
                rc, out, err = h.run_on_terminal_with_stderr(
                    ["show", sid, *args, "--db", str(copy)], env=env)
                self.assertEqual(rc, 0, err)
                self.assertNotIn(b"\x1b", out)
                self.assertNotIn(b"\x07", out)
                self.assertIn(escaped + b"caf\\xc3\\xa9\\xff\r\n", out)  # CRLF: the pty's
                self.assertEqual(err.count(b"escaped for the terminal"), 1, err)
                self.assertIn(b"--save FILE" if args[0] == "--message" else b"a pipe", err)
                piped = self.tool("show", sid, *args, db=copy)
                self.assertIn(osc52 + b"caf\xc3\xa9\xff\r\n", piped.stdout)
                self.assertEqual(piped.stderr, b"")
        rc, out, err = h.run_on_terminal_with_stderr(["show", sid, "--raw", "--db", str(copy)],
                                                     env=env)
        self.assertIn(b"\r\n250 2.1.0 Ok" + escaped + b"\r\n", out)  # the reply, a line of its own
        saved = self.tmp / "escape.eml"
        self.tool("show", sid, "--save", str(saved), db=copy)
        self.assertEqual(saved.read_bytes(),
                         b"Subject: t\r\n\r\n" + osc52 + b"caf\xc3\xa9\xff\r\n")

        # UTF-8 text, tabs and CRLF cannot drive a terminal: written as they are, no note.
        copy, sid = self.with_planted_body("utf8.db", b"Subject: t\r\n\r\ncaf\xc3\xa9\tok"
                                           b"\r\n.\r\n")
        rc, out, err = h.run_on_terminal_with_stderr(
            ["show", sid, "--message", "1", "--db", str(copy)], env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn(b"caf\xc3\xa9\tok", out)
        self.assertEqual(err, b"")

    def test_show_raw_and_message_escape_a_bare_cr_on_a_terminal(self):
        # A CR of its own returns the cursor: the text after it would overwrite "harmless
        # text" on screen. Escaped as \r, as in the transcript; a pipe gets the exact bytes.
        body = b"Subject: t\r\n\r\nharmless text\rX-Evil: 1\r\n"
        copy, sid = self.with_planted_body("bare-cr.db", body + b".\r\n")
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        for args in (["--raw"], ["--message", "1"]):
            with self.subTest(args=args):
                rc, out, err = h.run_on_terminal_with_stderr(
                    ["show", sid, *args, "--db", str(copy)], env=env)
                self.assertEqual(rc, 0, err)
                self.assertIn(b"harmless text\\rX-Evil: 1\r\n", out)
                self.assertNotIn(b"text\rX-Evil", out)
                self.assertEqual(err.count(b"escaped for the terminal"), 1, err)
                piped = self.tool("show", sid, *args, db=copy)
                self.assertIn(b"harmless text\rX-Evil: 1\r\n", piped.stdout)

    def test_export_messages_escape_control_octets_on_a_terminal_only(self):
        # export's default output is stdout: a message that would write the clipboard (OSC 52)
        # and clear the screen is escaped line by line there, as show --message does, with a
        # note; a pipe gets the exact bytes. Lines that cannot drive a terminal stay as they are.
        osc52 = b"\x1b]52;c;cHduZWQ=\x07\x1b[2J"
        copy, sid = self.with_planted_body("export-escape.db", b"Subject: caf\xc3\xa9\r\n\r\n" +
                                           osc52 + b"x\r\nbye\r\n.\r\n")
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        for fmt in ("eml", "mbox"):
            with self.subTest(format=fmt):
                rc, out, err = h.run_on_terminal_with_stderr(
                    ["export", sid, "--format", fmt, "--db", str(copy)], env=env)
                self.assertEqual(rc, 0, err)
                self.assertNotIn(b"\x1b", out)
                self.assertNotIn(b"\x07", out)
                self.assertIn(b"\\x1b]52;c;cHduZWQ=\\x07\\x1b[2Jx\r\n", out)
                self.assertIn(b"Subject: caf\xc3\xa9\r", out)  # safe: as it is
                self.assertEqual(err.count(b"escaped for the terminal"), 1, err)
                piped = self.tool("export", sid, "--format", fmt, db=copy)
                eol = b"\r\n" if fmt == "eml" else b"\n"  # mboxrd lines end in LF
                self.assertIn(osc52 + b"x" + eol + b"bye" + eol, piped.stdout)
                self.assertEqual(piped.stderr, b"")
        # JSON escapes C0 controls already; a C1 control (U+009B, CSI) is escaped as well.
        copy, sid = self.with_planted_body("export-c1.db", b"Subject: t\r\n\r\n\xc2\x9b2J\r\n.\r\n")
        out = self.tool("export", sid, "--format", "json", db=copy).stdout
        self.assertNotIn(b"\xc2\x9b", out)
        self.assertEqual(json.loads(out)["messages"][0]["body"], "Subject: t\r\n\r\n\u009b2J\r\n")

    def test_show_json(self):
        sid = self.session_with(self.sent["plain"][0])
        d = json.loads(self.tool("show", str(sid), "--json").stdout)
        self.assertEqual(d["id"], sid)
        self.assertEqual(d["auth_user"], "alice")
        self.assertTrue(any(e["redacted"] for e in d["events"]))

    def test_show_prints_the_server_certificates_sha256_as_json_gives_it(self):
        """A certificate changed between sessions with the same names and dates shows in
        `show` too, not only in --json and on the web page."""
        sid = self.session_with(self.sent["plain"][0])
        d = json.loads(self.tool("show", str(sid), "--json").stdout)
        out = self.tool("show", str(sid)).stdout.decode()
        leaf = next(line for line in out.splitlines() if line.startswith("cert[0]"))
        self.assertTrue(leaf.endswith(f", sha256 {d['certificates'][0]['sha256']})"), leaf)

    # export -----------------------------------------------------------------------------
    def test_export_json_has_every_event_certificate_and_message(self):
        sid = self.session_with(self.sent["plain"][0])
        d = json.loads(self.tool("export", str(sid), "--format", "json").stdout)
        n_events = self.sql("SELECT count(*) FROM events WHERE session_id = ?", sid)[0][0]
        self.assertEqual(len(d["events"]), n_events)
        self.assertEqual([e["seq"] for e in d["events"]], list(range(1, n_events + 1)))
        self.assertTrue(d["certificates"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----\n"))
        self.assertEqual(d["messages"][0]["body"].encode(), self.sent["plain"][1])
        for col in ("started_at", "ended_at", "client_address", "tls_version", "cipher",
                    "verify_result", "bytes_client_to_upstream", "replay_of"):
            self.assertIn(col, d)
        # jsonl: one session per line, all of them
        lines = self.tool("export", "--all", "--format", "jsonl").stdout.splitlines()
        self.assertEqual(len(lines), 5)
        self.assertEqual(json.loads(lines[0])["id"], min(r[0] for r in self.sql(
            "SELECT id FROM sessions")))

    def test_json_has_every_sessions_column_with_null_for_a_null_one(self):
        # export.md: every column of the sessions table but `writer`, absent values null; a
        # script reading s["auth_by"] or s["tls_resumed"] must not fail on the session nobody
        # authenticated (the refused one has no AUTH and no TLS).
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            rows = {r["id"]: r for r in con.execute("SELECT * FROM sessions")}
        finally:
            con.close()
        columns = [c for c in next(iter(rows.values())).keys() if c != "writer"]
        refused = rows[self.refused_session()]
        self.assertIsNone(refused["auth_by"], "the refused session has no AUTH")
        self.assertIsNone(refused["tls_resumed"], "the refused session has no TLS")
        exported = [json.loads(line) for line in
                    self.tool("export", "--all", "--format", "jsonl").stdout.splitlines()]
        listed = json.loads(self.tool("sessions", "--json").stdout)
        for what, objects in (("export", exported), ("sessions --json", listed)):
            self.assertEqual(sorted(o["id"] for o in objects), sorted(rows), what)
            for o in objects:
                for col in columns:
                    with self.subTest(tool=what, session=o["id"], column=col):
                        self.assertTrue(col in o, f"{what} leaves the column out")
                        if rows[o["id"]][col] is None:
                            self.assertIsNone(o[col], f"{what}: the column is NULL")
        by_id = {o["id"]: o for o in exported}
        self.assertEqual(by_id[self.session_with_login()]["auth_by"], "client")
        self.assertIs(by_id[self.session_with_login()]["tls_resumed"],
                      bool(rows[self.session_with_login()]["tls_resumed"]))

    def documented_output(self, doc: str, command: str):
        """The JSON line docs/tools/DOC shows after `$ COMMAND`."""
        text = (h.REPO_ROOT / "docs/tools" / doc).read_text()
        return json.loads(re.search(r"\n\$ " + re.escape(command) + r"\n([^\n]*)\n", text)
                          .group(1))

    def assertSameShape(self, documented: dict, real: dict, what: str):
        """The same keys in the same order, and null where the real one is null."""
        self.assertEqual(list(documented), list(real), what)
        self.assertEqual([k for k, v in documented.items() if v is None],
                         [k for k, v in real.items() if v is None], what)

    def test_the_json_samples_of_sessions_prune_and_export_are_what_they_print(self):
        """sessions.md's `sessions --json` sample and prune.md's `prune --json` one show a
        session refused for a self-signed certificate, as the last one recorded here is, and
        export.md's a delivered one: the same keys in the same order, null where the binary
        writes null (ids, times and addresses differ)."""
        [sample] = self.documented_output("sessions.md", "mailtap sessions --json --limit 1")
        [real] = json.loads(self.tool("sessions", "--json", "--limit", "1").stdout)
        self.assertEqual(real["id"], self.refused_session())
        self.assertSameShape(sample, real, "sessions.md")

        sample = self.documented_output("prune.md", "mailtap prune --keep 0 --json")
        copy = self.copy_db("prune-sample.db")
        real = json.loads(self.tool("prune", "--keep", "0", "--json", db=copy).stdout)
        self.assertEqual(list(sample), list(real), "prune.md")
        [refused] = [r for r in real["removed"] if r["id"] == self.refused_session()]
        self.assertSameShape(sample["removed"][0], refused, "prune.md's session")

        # export.md's `export 1 | python3 -m json.tool` shows alice's PLAIN session up to its
        # certificates, as the first one recorded here is.
        text = (h.REPO_ROOT / "docs/tools/export.md").read_text()
        shown = text[text.index("$ mailtap export 1 | python3 -m json.tool"):]
        shown = shown[:shown.index('    "certificates": [')]
        sample = json.loads("{" + ",".join(re.findall(r"\n    (\"\w+\": [^\n]*?),?(?=\n)",
                                                      shown)) + "}")
        real = json.loads(self.tool("export", str(self.session_with(self.sent["plain"][0])))
                          .stdout)
        real = dict(list(real.items())[:list(real).index("certificates")])
        self.assertSameShape(sample, real, "export.md")

    def test_export_json_base64_for_non_utf8_bytes(self):
        copy = self.copy_db("nonutf8.db")
        con = sqlite3.connect(copy)
        with con:
            # The body lives in the message's data events (schema v3): make it one event.
            sid, txn = con.execute("SELECT session_id, mail_transaction FROM messages WHERE "
                                   "seq = 1 ORDER BY session_id LIMIT 1").fetchone()
            con.execute("DELETE FROM events WHERE session_id = ? AND mail_transaction = ? AND "
                        "kind = 'data' AND seq > (SELECT min(seq) FROM events WHERE session_id = ?"
                        " AND mail_transaction = ? AND kind = 'data')", (sid, txn, sid, txn))
            con.execute("UPDATE events SET bytes = ? WHERE session_id = ? AND mail_transaction = ?"
                        " AND kind = 'data'", (b"\xff\xfe\x00bin\r\n.\r\n", sid, txn))
        con.close()
        sid = self.sql("SELECT min(session_id) FROM messages", db=copy)[0][0]
        d = json.loads(self.tool("export", str(sid), db=copy).stdout)
        m = d["messages"][0]
        self.assertEqual(m["body_encoding"], "base64")
        self.assertEqual(base64.b64decode(m["body"]), b"\xff\xfe\x00bin\r\n")

    def test_json_is_strict_utf8_and_keeps_non_utf8_text(self):
        # What a client types reaches the text columns as sent: a Latin-1 user name, a UTF-16
        # surrogate and an overlong form in MAIL FROM. Every --json output must still parse as
        # strict UTF-8 JSON, and the octets come back from base64 beside a *_encoding member.
        copy = self.copy_db("nonutf8-text.db")
        user = b"caf\xe9\xff"
        mail_from = b"MAIL FROM:<ov\xe0\x80\xafer\xed\xb0\x80@b.test>"
        con = sqlite3.connect(copy)
        with con:
            sid = con.execute("SELECT min(session_id) FROM messages").fetchone()[0]
            con.execute("UPDATE sessions SET auth_user = CAST(? AS TEXT) WHERE id = ?",
                        (user, sid))
            con.execute("UPDATE messages SET mail_from = CAST(? AS TEXT) WHERE session_id = ?",
                        (mail_from, sid))
        con.close()

        def strict(out: bytes):
            return json.loads(out.decode("utf-8"))  # strict: no surrogates, no stray bytes

        def octets(obj, name):
            self.assertEqual(obj[name + "_encoding"], "base64")
            return base64.b64decode(obj[name])

        for args in (("export", str(sid)), ("show", str(sid), "--json")):
            d = strict(self.tool(*args, db=copy).stdout)
            self.assertEqual(octets(d, "auth_user"), user)
            self.assertEqual(octets(d["messages"][0], "mail_from"), mail_from)
            ehlo = self.sql("SELECT ehlo_name FROM sessions WHERE id = ?", sid, db=copy)[0][0]
            self.assertEqual(d["ehlo_name"], ehlo)  # UTF-8 text stays a plain string
            self.assertNotIn("ehlo_name_encoding", d)
        row = next(r for r in strict(self.tool("sessions", "--json", db=copy).stdout)
                   if r["id"] == sid)
        self.assertEqual(octets(row, "auth_user"), user)
        for line in self.tool("export", "--all", "--format", "jsonl", db=copy).stdout.splitlines():
            strict(line)

    def test_export_names_each_session_once(self):
        login = self.session_with_login()
        plain = self.session_with(self.sent["plain"][0])
        ids = [str(login), str(plain), str(login)]
        lines = self.tool("export", *ids, "--format", "jsonl").stdout.splitlines()
        self.assertEqual([json.loads(l)["id"] for l in lines], [login, plain])
        self.assertEqual([d["id"] for d in json.loads(self.tool("export", *ids).stdout)],
                         [login, plain])
        mbox = self.tmp / "twice.mbox"
        self.tool("export", *ids, "--format", "mbox", "-o", str(mbox))
        self.assertEqual(len(mailbox.mbox(str(mbox))), 2)
        out = self.tool("export", *ids, "--format", "eml", "-o",
                        str(self.tmp / "twice-emls")).stdout.decode()
        self.assertEqual(len(out.splitlines()), 2, out)
        # No message: one rule for eml and mbox: exit status 1, nothing written, an -o FILE
        # left as it was (the messages asked for are not there).
        none = str(self.failing_rcpt_session())
        kept = self.tmp / "kept.mbox"
        kept.write_bytes(b"earlier\n")
        for fmt, out in (("mbox", []), ("eml", []), ("mbox", ["-o", str(kept)]),
                         ("eml", ["-o", str(kept)])):
            cp = self.tool("export", none, "--format", fmt, *out, expect=1)
            self.assertEqual(cp.stdout, b"", fmt)
            self.assertIn(b"export: no messages in the selected sessions", cp.stderr, fmt)
            self.assertEqual(kept.read_bytes(), b"earlier\n", fmt)

    def test_a_database_the_user_cannot_read_is_named_with_owner_and_mode(self):
        # SQLite says only "unable to open database file": the tools say the permissions.
        if os.geteuid() != 0:
            self.skipTest("needs root, to run the tool as nobody")
        import pwd
        nobody = pwd.getpwnam("nobody")
        room = Path(tempfile.mkdtemp(prefix="mailtap-perm-"))
        self.addCleanup(shutil.rmtree, room, True)
        os.chmod(room, 0o755)
        inner = room / "closed"
        inner.mkdir(mode=0o700)
        db = room / "m.db"
        shutil.copyfile(self.copy_db("perm.db"), db)
        os.chmod(db, 0o600)
        shutil.copyfile(db, inner / "m.db")

        def as_nobody(path):
            return subprocess.run(
                ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                 "--clear-groups", str(h.mailtap_bin()), "sessions", "--db", str(path)],
                capture_output=True, text=True, timeout=60, env=env)

        # root's home (and its config file) is closed to nobody too: a home of its own
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env["HOME"] = str(room)

        cp = as_nobody(db)
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(f"(permission denied: '{db}' is owned by root (uid 0), mode 0600, and "
                      f"mailtap runs as nobody (uid {nobody.pw_uid}))", cp.stderr)
        cp = as_nobody(inner / "m.db")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(f"(permission denied: cannot enter '{inner}' (owned by root (uid 0), "
                      "mode 0700)", cp.stderr)

    def test_export_of_a_missing_session_writes_nothing(self):
        # Every id is looked up before anything is written: a missing one, even after ids that
        # exist, is exit status 1 with nothing on stdout and an -o FILE left as it was.
        plain = str(self.session_with(self.sent["plain"][0]))
        for fmt in ("json", "jsonl", "mbox", "eml"):
            cp = self.tool("export", plain, "999999", plain, "--format", fmt, expect=1)
            self.assertEqual(cp.stdout, b"", fmt)
            self.assertIn(b"export: no session 999999 in ", cp.stderr)
        kept = self.tmp / "kept.json"
        kept.write_bytes(b"before\n")
        self.tool("export", plain, "999999", "-o", str(kept), expect=1)
        self.assertEqual(kept.read_bytes(), b"before\n")

    def test_every_tool_says_the_missing_default_is_where_the_proxy_and_unit_record(self):
        """A retention timer beside the shipped unit without MAILTAP_DB runs `mailtap prune`
        on the XDG default, where there is no database: prune said only "No such file or
        directory" and mock "no database at", where sessions, show, audit and web name the
        unit's path. Every tool gives the same explanation (one function)."""
        home = Path(tempfile.mkdtemp(prefix="mt-nodb-home-"))
        self.addCleanup(shutil.rmtree, home, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env["HOME"] = str(home)
        port = f"127.0.0.1:{h.free_port()}"
        for args in (["sessions"], ["show", "1"], ["export", "1"], ["audit"],
                     ["prune", "--before", "90d"], ["prune", "--keep", "1", "--dry-run"],
                     ["replay", "1", "--to", f"127.0.0.1:{h.closed_port()}", "--no-record"],
                     ["mock", "1", "--listen", port], ["web", "--listen", port]):
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args, "--config", "/dev/null"],
                                    capture_output=True, timeout=20, env=env)
                err = cp.stderr.decode(errors="replace")
                self.assertNotEqual(cp.returncode, 0, err)
                self.assertIn(f"{home}/.local/share/mailtap/mailtap.db", err)
                self.assertIn("(the default database, where mailtap proxy and its systemd user "
                              "unit record: give --db PATH or set MAILTAP_DB to read another)", err)
                self.assertEqual(list(home.iterdir()), [], "nothing made by a reading tool")

    def test_every_tool_names_the_record_an_older_unit_left_in_its_state_directory(self):
        """The unit recorded to its state directory, %S/mailtap (~/.local/state, or
        $XDG_STATE_HOME), while the tools read ~/.local/share: `mailtap sessions` after
        `systemctl --user start` found nothing, and the hint named a hard-coded ~/.local/state
        even with XDG_STATE_HOME set and whether or not a record was there. The unit now
        records to the default; a record an older unit left is named by its real path."""
        home = Path(tempfile.mkdtemp(prefix="mt-olderunit-home-"))
        self.addCleanup(shutil.rmtree, home, True)
        state = home / "xdg-state"
        (state / "mailtap").mkdir(parents=True)
        older = state / "mailtap" / "mailtap.db"
        shutil.copy(self.db, older)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILTAP_", "XDG_"))}
        env.update(HOME=str(home), XDG_STATE_HOME=str(state))
        for args in (["sessions"], ["show", "1"], ["audit"], ["prune", "--before", "90d"]):
            with self.subTest(args=args):
                cp = subprocess.run([str(h.mailtap_bin()), *args, "--config", "/dev/null"],
                                    capture_output=True, timeout=20, env=env)
                err = cp.stderr.decode(errors="replace")
                self.assertEqual(cp.returncode, 1, err)
                self.assertIn(f"{home}/.local/share/mailtap/mailtap.db", err)
                self.assertIn(f"the systemd user unit of an older mailtap recorded to {older}, "
                              f"which is there: give --db {older} to read it", err)
                self.assertNotIn("~/.local/state", err)
        cp = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", str(older),
                             "--config", "/dev/null"], capture_output=True, timeout=20, env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_every_tool_names_itself_when_it_refuses(self):
        """`mailtap mock 99` said "mailtap: no session 99 in ..." without the "mock:" that show
        and export give, and `export 1 --all` said CLI11's "id excludes --all"."""
        for tool in (["show"], ["mock"], ["replay", "--to", "127.0.0.1:1"]):
            with self.subTest(tool=tool[0]):
                cp = self.tool(tool[0], "999999", *tool[1:], expect=None)
                self.assertNotEqual(cp.returncode, 0)
                self.assertRegex(cp.stderr.decode(), rf"^mailtap: {tool[0]}: no session 999999 in "
                                 r".* \(list them with: mailtap sessions\)\n")
        cp = self.tool("export", "1", "--all", expect=2)
        self.assertEqual(cp.stderr, b"mailtap: export: give session numbers or --all (not both)\n")
        # Neither: "(not both)" pointed the wrong way; it says what to give.
        cp = self.tool("export", expect=2)
        self.assertEqual(cp.stderr, b"mailtap: export: give the session numbers to export "
                         b"(mailtap sessions lists them), or --all for every session\n")

    def test_a_refused_date_is_told_the_forms_with_an_offset(self):
        """The hint listed no offset form, to someone who had written one (+01, not taken)."""
        forms = ("(use 2026-11-24, 2026-11-24T20:00 (UTC), 2026-11-24T21:00+01:00 (a local time "
                 "and its offset: +01:00, +0100 or +01), or an age 90s/30m/2h/3d/1w)")
        for args in (["sessions", "--since"], ["sessions", "--until"], ["prune", "--before"]):
            with self.subTest(args=args):
                cp = self.tool(*args, "2026-12-07T08:00+1", expect=2)
                self.assertEqual(cp.stderr.decode(), f"mailtap: {args[0]}: {args[1]}: not a date "
                                 f"or age: \"2026-12-07T08:00+1\" {forms}\n")
        # ISO 8601's +hh is taken, as +hh:mm is.
        self.assertEqual(self.tool("sessions", "--since", "2026-12-07T08:00+01", "--json").stdout,
                         self.tool("sessions", "--since", "2026-12-07T07:00Z", "--json").stdout)

    def test_mock_on_a_port_in_use_says_what_to_do(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            cp = self.tool("mock", str(self.session_with_login()), "--listen",
                           f"127.0.0.1:{port}", expect=2)
        self.assertIn(f"mailtap: mock: cannot listen on 127.0.0.1:{port}: Address already in use "
                      "(choose another ADDR:PORT)\n", cp.stderr.decode())

    def test_export_eml_equals_delivered_body(self):
        tok, msg = self.sent["plain"]
        sid = self.session_with(tok)
        eml = self.tool("export", str(sid), "--format", "eml").stdout
        delivered = next(p.read_bytes() for p in self.postfix.delivered_files("alice")
                         if tok.encode() in p.read_bytes())
        self.assertEqual(h.body_of(eml), h.body_of(delivered))
        self.assertEqual(eml, msg)
        outdir = self.tmp / "emls"
        out = self.tool("export", "--all", "--format", "eml", "-o", str(outdir)).stdout.decode()
        files = sorted(p.name for p in outdir.iterdir())
        self.assertEqual(len(files), 3, out)
        self.assertIn(f"session-{sid}-message-1.eml", files)
        self.assertEqual((outdir / f"session-{sid}-message-1.eml").read_bytes(), msg)

    def test_export_eml_o_names_a_directory_for_a_selection_of_sessions(self):
        """`export --all --format eml -o emls` (export.md's example) wrote a file emls when the
        database held one message, a directory emls/ when it held several: what -o named hung
        on the count. With --all or several session numbers it is a directory whatever the
        count; the one message of one session number still goes to -o FILE."""
        db = self.copy_db("one-message.db")
        counts = self.sql("SELECT s.id, (SELECT count(*) FROM messages m WHERE m.session_id = "
                          "s.id) FROM sessions s ORDER BY s.id DESC", db=db)
        keep = next(k for k in range(1, len(counts) + 1)
                    if sum(n for _, n in counts[:k]) == 1)
        self.tool("prune", "--keep", str(keep), db=db)
        sid = next(i for i, n in counts[:keep] if n == 1)
        message = self.tool("export", str(sid), "--format", "eml", db=db).stdout
        # --all of that database; and two sessions of the shared one, one without a message.
        for args, in_db in ((["--all"], db), ([str(sid), str(self.failing_rcpt_session())],
                                               self.db)):
            with self.subTest(args=args):
                out = self.tmp / f"emls-{len(args)}"
                cp = self.tool("export", *args, "--format", "eml", "-o", str(out), db=in_db)
                self.assertTrue(out.is_dir(), f"{out} is no directory")
                path = out / f"session-{sid}-message-1.eml"
                self.assertEqual(cp.stdout.decode(), f"{path}\n")
                self.assertEqual(path.read_bytes(), message)
        one = self.tmp / "one.eml"
        self.tool("export", str(sid), "--format", "eml", "-o", str(one), db=db)
        self.assertEqual(one.read_bytes(), message)
        # A file where a directory is meant is not overwritten: said, and left as it was.
        cp = self.tool("export", "--all", "--format", "eml", "-o", str(one), db=db, expect=1)
        self.assertEqual(cp.stderr.decode(), f"mailtap: export: {one}: not a directory: with "
                         "--all, several sessions or several messages, eml writes one file each "
                         "into -o DIR\n")
        self.assertEqual(one.read_bytes(), message)

    def test_export_mbox(self):
        path = self.tmp / "all.mbox"
        self.tool("export", "--all", "--format", "mbox", "-o", str(path))
        data = path.read_bytes()
        self.assertTrue(data.startswith(b"From sender@client.test "), data[:80])
        self.assertEqual(data.count(b"\nFrom sender@client.test ") + 1, 3)
        # mboxrd: the body's "From this line..." is quoted, and the quoting is undone on read
        self.assertIn(b"\n>From this line on a mbox would need escaping\n", data)
        box = mailbox.mbox(str(path))
        tokens = [m["Message-ID"] for m in box]
        box.close()
        self.assertEqual(len(tokens), 3)
        self.assertIn(f"<{self.sent['login'][0]}@client.test>", tokens)

    # audit ------------------------------------------------------------------------------
    def test_audit_clean_database(self):
        cp = self.tool("audit", env={"ALICE_PW": ALICE[1]}, expect=None)
        out = cp.stdout.decode()
        self.assertEqual(cp.returncode, 0, out + cp.stderr.decode())
        self.assertIn("Integrity (PRAGMA integrity_check)\n  ok", out)
        self.assertIn("none found", out)
        self.assertIn("clean", out)
        self.assertRegex(out, r"1x  550 5\.1\.1  127\.0\.0\.1")
        self.assertIn("TLSv1.3", out)
        self.assertIn("certificate not verified", out)  # the self-signed upstream
        cp = self.tool("audit", "--password-env", "ALICE_PW", env={"ALICE_PW": ALICE[1]})
        self.assertIn(b"none found", cp.stdout)
        rep = json.loads(self.tool("audit", "--json").stdout)
        self.assertTrue(rep["ok"])
        self.assertEqual(rep["integrity"], ["ok"])
        self.assertEqual(rep["credential_leaks"], [])

    def test_a_time_that_is_no_timestamp_is_shown_unreadable_never_1970(self):
        # A hand edit, or a damaged page SQLite cannot tell from a good one: every tool names
        # the column and what it holds, audit fails on it, and prune keeps the session.
        db = self.copy_db("bad-times.db")
        sid = self.refused_session()
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET started_at = 'last tuesday' WHERE id = ?", (sid,))
        con.close()
        said = 'started_at holds "last tuesday", not a timestamp'
        listing = self.tool("sessions", db=db)
        row = next(line for line in listing.stdout.decode().splitlines()
                   if line.split()[0] == str(sid))
        self.assertEqual(row.split()[1], "unreadable", row)
        self.assertIn(f"sessions: session {sid}: {said}", listing.stderr.decode())
        shown = self.tool("show", str(sid), db=db).stdout.decode()
        self.assertIn("start unreadable", shown)
        self.assertIn(f"damaged  {said}", shown)
        for out in (listing.stdout, self.tool("sessions", "--json", db=db).stdout, shown.encode(),
                    self.tool("export", str(sid), db=db).stdout):
            # The epoch's date, not any "1970": microseconds or a duration may hold that.
            self.assertNotRegex(out, rb"1970-01-01|Jan(uary)? +1,? +1970")
        exported = json.loads(self.tool("show", str(sid), "--json", db=db).stdout)
        self.assertIsNone(exported["started_at"])
        self.assertEqual(exported["unreadable"], said)
        self.assertIsNotNone(exported["ended_at"])
        good = json.loads(self.tool("show", str(sid), "--json").stdout)
        self.assertIsNone(good["unreadable"])
        audit = self.tool("audit", db=db, expect=3).stdout.decode()
        self.assertIn(f"session {sid}: {said}", audit)
        pruned = self.tool("prune", "--keep", "0", "--dry-run", db=db).stdout.decode()
        self.assertIn(f"kept session {sid}: its started_at, ended_at or last record's time is not "
                      "a timestamp", pruned)
        self.assertNotIn(f"would remove session {sid} ", pruned)

    def test_audit_reports_a_duration_that_is_no_integer(self):
        # The column's CHECK (duration_us >= 0) lets text and reals through (in SQLite text
        # sorts after every number); the readers take such a value for unknown, and audit
        # says so, as it says a started_at that is no timestamp.
        db = self.copy_db("bad-duration.db")
        sid = self.refused_session()
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET duration_us = 'abc' WHERE id = ?", (sid,))
            con.execute("UPDATE sessions SET duration_us = 2.5 WHERE id = 1")
        con.close()
        audit = self.tool("audit", db=db, expect=3).stdout.decode()
        self.assertIn(f"session {sid}: duration_us holds text 'abc', not a count of "
                      "microseconds", audit)
        self.assertIn("session 1: duration_us holds real 2.5, not a count of microseconds", audit)

    def test_a_duration_out_of_the_clocks_range_is_reported_and_shown_unreadable(self):
        # An integer longer than the clock holds (292 years of nanoseconds), or a negative one
        # (a write with the CHECK off): the readers dropped it without a word, and the tools
        # showed the wall-clock span as if the length had never been measured.
        db = self.copy_db("duration-out-of-range.db")
        sid = self.refused_session()
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET duration_us = 9223372036854775807 WHERE id = ?",
                        (sid,))
            con.execute("PRAGMA ignore_check_constraints = ON")
            con.execute("UPDATE sessions SET duration_us = -5 WHERE id = 1")
        con.close()
        too_long = ("duration_us holds 9223372036854775807, out of range (longer than the 292 "
                    "years mailtap's clock holds)")
        negative = "duration_us holds -5, out of range (a length is never negative)"
        audit = self.tool("audit", db=db, expect=3).stdout.decode()
        self.assertIn(f"session {sid}: {too_long}", audit)
        self.assertIn(f"session 1: {negative}", audit)
        listing = self.tool("sessions", db=db)
        rows = {line.split()[0]: line.split() for line in listing.stdout.decode().splitlines()}
        self.assertEqual(rows[str(sid)][3], "unreadable", rows[str(sid)])
        self.assertEqual(rows["1"][3], "unreadable", rows["1"])
        self.assertIn(f"sessions: session {sid}: {too_long}", listing.stderr.decode())
        shown = self.tool("show", str(sid), db=db).stdout.decode()
        self.assertIn("(duration unreadable)", shown.splitlines()[0])
        self.assertIn(f"damaged  {too_long}", shown)
        exported = json.loads(self.tool("show", "1", "--json", db=db).stdout)
        self.assertIsNone(exported["duration_us"], exported)
        self.assertIsNone(exported["duration_ms"], exported)
        self.assertEqual(exported["unreadable"], negative)
        self.assertIsNotNone(exported["started_at"])

    def test_a_date_out_of_the_clocks_range_is_unreadable_and_prune_keeps_it(self):
        # A year typed 1026: a timestamp in form, outside what the clock holds. The readers
        # call it unreadable ("out of range"); prune took it for the clock's first instant,
        # older than every --before, and deleted it.
        db = self.copy_db("out-of-range.db")
        sid = self.refused_session()
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET started_at = '1026-05-01T10:00:00.000000Z' "
                        "WHERE id = ?", (sid,))
        con.close()
        said = 'started_at holds "1026-05-01T10:00:00.000000Z", out of range'
        self.assertIn(f"damaged  {said}", self.tool("show", str(sid), db=db).stdout.decode())
        exported = json.loads(self.tool("export", str(sid), db=db).stdout)
        self.assertEqual(exported["unreadable"], said)
        for keep in (("--before", "2000-01-01"), ("--keep", "0")):
            pruned = self.tool("prune", *keep, db=db).stdout.decode()
            self.assertIn(f"kept session {sid}: its started_at, ended_at or last record's time "
                          "is not a timestamp or is out of range", pruned)
            self.assertNotIn(f"removed session {sid} ", pruned)
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("SELECT count(*) FROM sessions WHERE id = ?",
                                     (sid,)).fetchone(), (1,))
        con.close()

    def test_times_centuries_apart_give_no_length_and_no_offset_never_a_wrapped_one(self):
        # Two readable dates 550 years apart: their difference does not fit the clock's 64-bit
        # nanoseconds. Subtracted anyway, show printed a wrapped offset (+1090452873.710s) and
        # the tools a wrapped length; neither is known.
        db = self.copy_db("centuries.db")
        sid = self.refused_session()
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET started_at = '2250-01-01T00:00:00.000000Z', "
                        "ended_at = '1700-01-01T00:00:00.000000Z', duration_us = NULL "
                        "WHERE id = ?", (sid,))
            con.execute("UPDATE events SET at = '1700-01-01T00:00:00.000000Z' "
                        "WHERE session_id = ?", (sid,))
        con.close()
        shown = self.tool("show", str(sid), db=db).stdout.decode()
        self.assertNotRegex(shown, r"\+\d{4,}\.\d{3}s", shown)
        exported = json.loads(self.tool("show", str(sid), "--json", db=db).stdout)
        self.assertIsNone(exported["duration_us"], exported)

    def test_mbox_from_line_of_unreadable_times_is_the_documented_marker_never_1970(self):
        # mboxrd readers need a date on the From line: with neither the message's nor the
        # session's start readable it is the marker docs/tools/export.md names.
        db = self.copy_db("bad-mbox-times.db")
        sid = self.session_with(self.sent["plain"][0])
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE sessions SET started_at = 'last tuesday' WHERE id = ?", (sid,))
            con.execute("UPDATE messages SET started_at = 'soon' WHERE session_id = ?", (sid,))
        con.close()
        data = self.tool("export", str(sid), "--format", "mbox", db=db).stdout
        self.assertTrue(data.startswith(b"From sender@client.test Mon Jan  1 00:00:00 0001\n"),
                        data[:80])
        self.assertNotIn(b"1970", data)

    def test_mbox_from_line_of_an_smtputf8_sender_is_ascii_and_lossless(self):
        # intl18-F3: an SMTPUTF8 sender went raw into the "From " line, where Python's mailbox
        # (which reads that line as ASCII) failed on every access, and the spaces of a quoted
        # local part silently became '_'. The line's sender is ASCII, its other octets \xHH.
        db = self.copy_db("smtputf8-sender.db")
        sid = self.session_with(self.sent["plain"][0])
        con = sqlite3.connect(db)
        with con:
            con.execute("UPDATE messages SET mail_from = ? WHERE session_id = ?",
                        ('MAIL FROM:<"j ö\\rg"@exämple.org> SMTPUTF8', sid))
        con.close()
        path = self.tmp / "smtputf8.mbox"
        self.tool("export", str(sid), "--format", "mbox", "-o", str(path), db=db)
        self.assertTrue(path.read_bytes().startswith(
            b'From "j\\x20\\xc3\\xb6\\x5crg"@ex\\xc3\\xa4mple.org '), path.read_bytes()[:80])
        (message,) = mailbox.mbox(str(path))
        self.assertTrue(message.get_from().startswith('"j\\x20\\xc3\\xb6\\x5crg"@ex\\xc3\\xa4mple.org '))
        self.assertIn(self.sent["plain"][0], message.as_string())

    def test_audit_json_keeps_non_utf8_text_as_base64(self):
        # As export does: text from the record that is not UTF-8 is base64, with
        # "<name>_encoding": "base64" beside it, never U+FFFD; UTF-8 text stays a string.
        copy = self.copy_db("audit-nonutf8.db")
        reason = b"certificate for caf\xe9\xff is self-signed"
        host = b"mx\xff.example.test"
        note = b"bare LF normalised to CRLF (1x) \xff"
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE sessions SET verify_reason = CAST(? AS TEXT) WHERE id = ?",
                        (reason, self.refused_session()))
            con.execute("UPDATE sessions SET upstream_host = CAST(? AS TEXT) WHERE id = ?",
                        (host, self.failing_rcpt_session()))
            con.execute("UPDATE events SET note = CAST(? AS TEXT) WHERE id = (SELECT min(id) FROM "
                        "events WHERE kind = 'rewrite' AND note LIKE 'bare LF normalised%' AND "
                        "session_id = ?)",
                        (note, self.session_with(self.sent["nc"][0])))
        con.close()
        out = self.tool("audit", "--json", db=copy).stdout
        self.assertNotIn("\ufffd".encode(), out)
        self.assertNotIn(b"\\ufffd", out)
        rep = json.loads(out.decode("utf-8"))

        def octets(obj, name):
            self.assertEqual(obj.get(name + "_encoding"), "base64", obj)
            return base64.b64decode(obj[name])

        failure = next(v for v in rep["tls"]["verify_failures"]
                       if v["session"] == self.refused_session())
        self.assertIn(reason, octets(failure, "verify_result"))
        self.assertIn(host, [octets(f, "upstream") for f in rep["failures"]
                             if "upstream_encoding" in f])
        rewrite = next(r for r in rep["rewrites"]
                       if r["session"] == self.session_with(self.sent["nc"][0]))
        self.assertEqual(octets(rewrite, "sample"), note)
        self.assertEqual(rep["integrity"], ["ok"])
        self.assertNotIn("integrity_encoding", rep)
        self.assertTrue(all("version_encoding" not in t for t in rep["tls"]["versions"]))

    def test_audit_text_escapes_what_the_record_holds(self):
        # A hostile server or client chooses the verification reason (its certificate's
        # names), the certificate's subject and dates, the enhanced status it sends, and what
        # mailtap's notes quote; the host name comes from a configuration. In the text report
        # none of it may drive the terminal: it is escaped as the transcript escapes it.
        copy = self.copy_db("audit-escapes.db")
        osc = "\x1b]0;TITLE\x07\x1b[2J"
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE sessions SET verify_reason = ? WHERE id = ?",
                        ("reason" + osc, self.refused_session()))
            con.execute("UPDATE sessions SET upstream_host = ?, tls_version = ?, cipher = ? "
                        "WHERE id = ?", ("mx" + osc, "TLSv1.3" + osc, "AES" + osc,
                                         self.failing_rcpt_session()))
            con.execute("UPDATE events SET enhanced_status = ? WHERE reply_code = 550",
                        ("5.1.1" + osc,))
            con.execute("UPDATE events SET note = ? WHERE id = (SELECT min(id) FROM events WHERE"
                        " kind = 'rewrite' AND note LIKE 'bare LF normalised%' AND session_id = ?)",
                        ("bare LF normalised to CRLF (1x)" + osc,
                         self.session_with(self.sent["nc"][0])))
            con.execute("UPDATE certificates SET subject = ?, not_after = ?",
                        ("CN=cert" + osc, "never" + osc))
        con.close()
        out = self.tool("audit", db=copy).stdout
        self.assertNotIn(b"\x1b", out)
        self.assertNotIn(b"\x07", out)
        escaped = b"\\x1b]0;TITLE\\x07\\x1b[2J"
        for text in (b"reason", b"mx", b"TLSv1.3", b"AES", b"5.1.1", b"(1x)", b"CN=cert",
                     b"never"):
            self.assertIn(text + escaped, out)

    def test_audit_finds_a_planted_plain_blob(self):
        copy = self.copy_db("leaky.db")
        blob = h.auth_plain(*ALICE)
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE events SET bytes = ? WHERE id = (SELECT max(id) FROM events "
                        "WHERE kind = 'auth' AND direction = 'client_to_upstream')",
                        (f"AUTH PLAIN {blob}\r\n".encode(),))
        con.close()
        cp = self.tool("audit", db=copy, expect=3)
        out = cp.stdout.decode()
        self.assertIn("base64 SASL PLAIN blob (user \"alice\")", out)
        self.assertNotIn(ALICE[1], out)
        self.assertNotIn(blob, out)
        self.assertIn("PROBLEMS FOUND", out)
        rep = json.loads(self.tool("audit", "--json", db=copy, expect=3).stdout)
        self.assertFalse(rep["ok"])
        self.assertEqual(len(rep["credential_leaks"]), 1)

    def test_audit_finds_a_known_password_and_a_login_answer(self):
        copy = self.copy_db("leaky2.db")
        sid = self.session_with_login()
        con = sqlite3.connect(copy)
        pw64 = base64.b64encode(BOB[1].encode())
        with con:
            # the answer to "334 UGFzc3dvcmQ6" stored as sent, unredacted
            con.execute("UPDATE events SET bytes = ?, redacted = 0 WHERE id = (SELECT max(id) "
                        "FROM events WHERE kind = 'auth' AND direction = 'client_to_upstream' AND "
                        "session_id = ?)", (pw64 + b"\r\n", sid))
        con.close()
        cp = self.tool("audit", "--password-env", "BOB_PW", db=copy, env={"BOB_PW": BOB[1]},
                       expect=3)
        out = cp.stdout.decode()
        self.assertIn("AUTH LOGIN password response recorded without redaction", out)
        self.assertIn("the --password-env password, base64-encoded", out)
        self.assertNotIn(BOB[1], out)

    def test_audit_uses_the_redactors_rules(self):
        """auth-F4: audit finds what the proxy's redactor would have removed: a LOGIN answer
        after any prompt that holds "pass" (in any case), and a bearer token whatever the case
        of its scheme (RFC 7235 §2.1)."""
        sid = self.session_with_login()
        pw64 = base64.b64encode(b"Planted-pw-9")
        for n, prompt in enumerate(("Password: ", "PASSWORD:", "Password", "Enter password:")):
            with self.subTest(prompt=prompt):
                copy = self.copy_db(f"prompt{n}.db")
                con = sqlite3.connect(copy)
                with con:
                    con.execute("UPDATE events SET bytes = ? WHERE id = (SELECT max(id) FROM "
                                "events WHERE reply_code = 334 AND session_id = ?)",
                                (b"334 " + base64.b64encode(prompt.encode()) + b"\r\n", sid))
                    con.execute("UPDATE events SET bytes = ?, redacted = 0 WHERE id = (SELECT "
                                "max(id) FROM events WHERE kind = 'auth' AND direction = "
                                "'client_to_upstream' AND session_id = ?)", (pw64 + b"\r\n", sid))
                con.close()
                out = self.tool("audit", db=copy, expect=3).stdout.decode()
                self.assertIn("AUTH LOGIN password response recorded without redaction", out)
        for scheme in ("bearer", "BEARER"):
            with self.subTest(scheme=scheme):
                copy = self.copy_db(f"bearer-{scheme}.db")
                blob = base64.b64encode(f"user=alice@example.test\x01auth={scheme} "
                                        "ya29.PLANTED-token\x01\x01".encode())
                con = sqlite3.connect(copy)
                with con:
                    con.execute("UPDATE events SET bytes = ? WHERE id = (SELECT max(id) FROM "
                                "events WHERE kind = 'auth' AND direction = "
                                "'client_to_upstream')", (b"AUTH XOAUTH2 " + blob + b"\r\n",))
                con.close()
                out = self.tool("audit", db=copy, expect=3).stdout.decode()
                self.assertIn("base64 XOAUTH2/OAUTHBEARER blob with a bearer token", out)
                self.assertNotIn("PLANTED", out)

    def test_audit_holds_the_password_env_as_the_proxy_does(self):
        """`audit --password-env VAR` reads the variable as `proxy --password-env` does: its
        value wiped where it lies and VAR removed, so the running audit's /proc/PID/environ no
        longer shows it, and no core file while it holds the password. The audit is caught
        running: its report, longer than the pipe it writes to holds, waits for the test to
        read it."""
        password = "audit-" + h.unique_token("pw")
        copy = self.copy_db("leaky-env.db")
        con = sqlite3.connect(copy)
        with con:
            sid = self.session_with_login()
            for i in range(100):  # a finding each: a report of some 9 KB
                con.execute("INSERT INTO events (session_id, seq, direction, phase, kind, verb, "
                            "bytes, wire_size, redacted) VALUES (?, ?, 'client_to_upstream', "
                            "'tls', 'command', 'NOOP', ?, 20, 0)",
                            (sid, 100000 + i, f"NOOP {password}\r\n".encode()))
        con.close()
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
        env = dict(os.environ, AUDIT_PW=password)
        env.pop("MAILTAP_DB", None)
        p = subprocess.Popen([str(h.mailtap_bin()), "audit", "--password-env", "AUDIT_PW", "--db",
                              str(copy)], stdout=write_end, stderr=subprocess.PIPE, env=env,
                             stdin=subprocess.DEVNULL)
        os.close(write_end)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        with os.fdopen(read_end, "rb") as report:
            self.assertTrue(select.select([report], [], [], 60)[0], "audit wrote no report")
            environ = proc_file(p.pid, "environ")
            cmdline = proc_file(p.pid, "cmdline")
            limit = core_size_limit(p.pid)
            if os.geteuid() != 0:
                self.assertTrue(not_dumpable(p.pid), "audit holding a password is not "
                                "dumpable: its /proc/PID files are root's")
            out = report.read()
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 3, out + err)
        self.assertGreater(len(out), 4096, "the report fitted in the pipe: audit was not caught "
                           "running")
        self.assertEqual(out.count(b"the --password-env password, in clear"), 100)
        held = [e for e in environ.split(b"\0") if e.startswith(b"AUDIT_PW=") and len(e) > 9]
        self.assertFalse(held or password.encode() in environ,
                         "audit left the --password-env value in its /proc/PID/environ")
        for what, seen in (("cmdline", cmdline), ("report", out), ("stderr", err)):
            self.assertNotIn(password.encode(), seen, what)
        self.assertLessEqual(limit, 1, "audit holding a password lowers its core size limit")

    def test_audit_reports_damage(self):
        copy = self.copy_db("damaged.db")
        con = sqlite3.connect(copy)
        with con:
            # an index that no longer matches its table is what integrity_check reports
            con.execute("PRAGMA writable_schema = ON")
            con.execute("UPDATE sqlite_schema SET sql = replace(sql, 'started_at)', "
                        "'client_address)') WHERE type = 'index' AND name = "
                        "(SELECT name FROM sqlite_schema WHERE type = 'index' AND "
                        "tbl_name = 'sessions' AND sql LIKE '%(started_at)' LIMIT 1)")
        con.close()
        cp = self.tool("audit", db=copy, expect=None)
        self.assertEqual(cp.returncode, 3, cp.stdout.decode() + cp.stderr.decode())
        self.assertIn(b"PROBLEMS FOUND", cp.stdout)

    def test_audit_says_what_damage_kept_it_from_reading(self):
        # Garbage over the root pages of the events and sessions tables: the sections made of
        # them say they were not read, not "none", and the header counts no sessions.
        copy = self.copy_db("spoilt.db")
        con = sqlite3.connect(copy)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        roots = [r[0] for r in con.execute(
            "SELECT rootpage FROM sqlite_schema WHERE name IN ('events', 'sessions')")]
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
        with open(copy, "r+b") as f:
            for root in roots:
                f.seek((root - 1) * page_size)
                f.write(b"\xa5" * page_size)
        cp = self.tool("audit", db=copy, expect=None)
        out = cp.stdout.decode()
        self.assertEqual(cp.returncode, 3, out + cp.stderr.decode())
        self.assertIn("sessions not counted: the sessions could not be read", out)
        self.assertNotIn("0 sessions", out)
        for reassurance in ("none found", "\n  none\n", "no --insecure sessions"):
            self.assertNotIn(reassurance, out)
        self.assertIn("not checked to the end: events, sessions could not be read", out)
        self.assertNotIn("\\n", out, "integrity lines joined with a literal \\n")

    def test_audit_sees_bare_lf_rewrites(self):
        sid = self.session_with(self.sent["nc"][0])
        out = self.tool("audit").stdout.decode()
        self.assertRegex(out, rf"session {sid}: \d+ rewrite\(s\) by mailtap")

    # prune ------------------------------------------------------------------------------
    def test_prune_keep_one(self):
        copy = self.copy_db("prune.db")
        newest = max(r[0] for r in self.sql("SELECT id FROM sessions", db=copy))
        dry = self.tool("prune", "--keep", "1", "--dry-run", db=copy).stdout.decode()
        self.assertIn("would remove 4 sessions", dry)
        self.assertEqual(self.sql("SELECT count(*) FROM sessions", db=copy)[0][0], 5)
        out = self.tool("prune", "--keep", "1", db=copy).stdout.decode()
        self.assertIn("removed 4 sessions", out)
        self.assertIn("vacuumed", out)
        rows = json.loads(self.tool("sessions", "--json", db=copy).stdout)
        self.assertEqual([r["id"] for r in rows], [newest])
        # cascades: nothing of the removed sessions is left
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE session_id != ?", newest,
                                  db=copy)[0][0], 0)
        self.assertEqual(self.sql("SELECT count(*) FROM recipients", db=copy)[0][0], 0)
        self.tool("audit", db=copy)

    def test_prune_says_when_a_reader_keeps_the_deleted_mail_in_the_file(self):
        # A reader holding a snapshot (mailtap web, a long export) lets VACUUM run into the
        # -wal file but blocks the checkpoint that writes it back: the deleted message is
        # still in the database file, and prune must say so instead of "vacuumed", exit 0.
        copy = self.copy_db("prune-reader.db")
        con = sqlite3.connect(copy)
        self.assertEqual(con.execute("PRAGMA journal_mode=WAL").fetchone()[0], "wal")
        con.close()
        tok = self.sent["plain"][0].encode()
        self.assertIn(tok, copy.read_bytes())
        reader = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sessions").fetchone()
        try:
            cp = self.tool("prune", "--keep", "1", db=copy, expect=3)
        finally:
            reader.close()
        self.assertIn(b"removed 4 sessions", cp.stdout)
        self.assertNotIn(b"vacuumed", cp.stdout)
        self.assertIn(b"prune: warning: VACUUM ran, but the WAL checkpoint", cp.stderr)
        self.assertIn(b"still in that file", cp.stderr)
        self.assertIn(tok, copy.read_bytes())  # what the warning says is true
        # Once the reader is gone, the checkpoint the warning names takes the bytes out.
        con = sqlite3.connect(copy)
        self.assertEqual(con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0], 0)
        con.close()
        self.assertNotIn(tok, copy.read_bytes())

    def test_prune_no_vacuum_still_takes_the_deleted_mail_out_of_the_file(self):
        # Without VACUUM (which holds a recording proxy's commits while it rewrites the file)
        # the file keeps its size, but secure_delete zeroed the freed pages and the checkpoint
        # leaves no old copy of them in the file or its -wal.
        copy = self.copy_db("prune-no-vacuum.db")
        con = sqlite3.connect(copy)
        self.assertEqual(con.execute("PRAGMA journal_mode=WAL").fetchone()[0], "wal")
        con.close()
        tok = self.sent["plain"][0].encode()
        self.assertIn(tok, copy.read_bytes())
        size = copy.stat().st_size
        cp = self.tool("prune", "--keep", "1", "--no-vacuum", db=copy)
        self.assertIn(b"removed 4 sessions", cp.stdout)
        self.assertNotIn(b"vacuumed", cp.stdout)
        self.assertEqual(cp.stderr, b"")
        self.assertNotIn(tok, copy.read_bytes())
        wal = Path(f"{copy}-wal")
        self.assertFalse(wal.exists() and tok in wal.read_bytes())
        self.assertGreaterEqual(copy.stat().st_size, size, "the file was not rewritten")
        report = json.loads(self.tool("prune", "--keep", "0", "--no-vacuum", "--json",
                                      db=copy).stdout)
        self.assertEqual(len(report["removed"]), 1)
        self.assertFalse(report["vacuumed"])

    def test_prune_removes_body_files_no_session_has(self):
        # A prune killed between a commit and the removal of the deleted sessions' body files
        # left them for good: nothing refers to them, and no later prune looked. Every prune
        # now removes them, even one with nothing to delete; a session's own file stays.
        copy = self.copy_db("prune-strays.db")
        newest = max(r[0] for r in self.sql("SELECT id FROM sessions", db=copy))
        bodies = Path(f"{copy}-bodies")
        bodies.mkdir(mode=0o700, exist_ok=True)
        # one a killed prune left, one it had moved aside to remove, and a session's own
        for name in (str(newest + 1000), f".pruned-{newest + 1001}", str(newest)):
            (bodies / name).write_bytes(b"x" * 70000)
        (bodies / "notes.txt").write_text("not a body file")
        out = self.tool("prune", "--before", "2000-01-01", db=copy).stdout.decode()
        self.assertIn("removed 0 sessions, 0 events, 0 messages; removed 2 stray body files\n",
                      out)
        self.assertEqual(sorted(p.name for p in bodies.iterdir()),
                         sorted([str(newest), "notes.txt"]))
        report = json.loads(self.tool("prune", "--before", "2000-01-01", "--json", db=copy).stdout)
        self.assertEqual(report["stray_body_files"], 0)

    def test_prune_text_escapes_the_recorded_addresses(self):
        # The client address and upstream host come from the record: a line of prune's report
        # must not carry what would drive the terminal, as the transcript never does.
        copy = self.copy_db("prune-escapes.db")
        osc = "\x1b]0;TITLE\x07\x1b[2J"
        con = sqlite3.connect(copy)
        with con:
            con.execute("UPDATE sessions SET client_address = ?, upstream_host = ?",
                        ("192.0.2.1" + osc, "mx" + osc))
        con.close()
        for args in (["--dry-run"], []):
            with self.subTest(args=args):
                out = self.tool("prune", "--keep", "0", *args, db=copy).stdout
                self.assertNotIn(b"\x1b", out)
                self.assertNotIn(b"\x07", out)
                escaped = b"\\x1b]0;TITLE\\x07\\x1b[2J"
                self.assertIn(b"192.0.2.1" + escaped + b" -> mx" + escaped + b":", out)

    def test_prune_before_and_in_progress(self):
        copy = self.copy_db("prune2.db")
        con = sqlite3.connect(copy)
        with con:  # a session that looks still running, started just now
            con.execute("UPDATE sessions SET ended_at = NULL, outcome = NULL WHERE id = "
                        "(SELECT max(id) FROM sessions)")
        con.close()
        out = self.tool("prune", "--before", "2000-01-01", db=copy).stdout.decode()
        self.assertIn("removed 0 sessions", out)
        out = self.tool("prune", "--keep", "0", db=copy).stdout.decode()
        self.assertIn("removed 4 sessions", out)
        rows = json.loads(self.tool("sessions", "--json", db=copy).stdout)
        self.assertEqual(len(rows), 1)
        self.assertIsNone(rows[0]["outcome"])  # in progress: kept
        cp = self.tool("prune", db=copy, expect=2)
        self.assertIn(b"--before", cp.stderr)

    def test_prune_before_a_date_the_clock_cannot_hold_removes_nothing(self):
        # 1600 (or a year typed 1026 for 2026) is before 1677-09-21, where the record's
        # nanosecond clock starts: it wrapped round to 2200 and every session went.
        copy = self.copy_db("prune_past.db")
        count = self.sql("SELECT count(*) FROM sessions", db=copy)[0][0]
        for when in ("1600-01-01", "1026-12-01", "0000-01-01T00:00Z", "99999999999d", "300000d"):
            out = self.tool("prune", "--before", when, db=copy).stdout.decode()
            self.assertIn("removed 0 sessions", out, when)
            self.assertIn("no finished session started before " + when, out)
        self.assertEqual(self.sql("SELECT count(*) FROM sessions", db=copy)[0][0], count)
        # and a date past 2262 still means "before then": everything finished goes
        out = self.tool("prune", "--before", "3000-01-01", "--dry-run", db=copy).stdout.decode()
        self.assertRegex(out, r"would remove [1-9]\d* sessions")

    def test_sessions_since_and_until_past_the_clock_keep_their_meaning(self):
        count = len(json.loads(self.tool("sessions", "--json").stdout))
        for args, want in ((("--since", "3000-01-01"), 0), (("--until", "3000-01-01"), count),
                           (("--since", "1600-01-01"), count), (("--until", "1600-01-01"), 0)):
            rows = json.loads(self.tool("sessions", "--json", *args).stdout)
            self.assertEqual(len(rows), want, args)

    def test_prune_before_keeps_a_live_session_a_person_left_idle(self):
        # A person pauses at the telnet prompt: prune --before with a short age must not delete
        # the session under the proxy (its later message would be relayed but never recorded).
        db = self.tmp / "live-prune.db"
        tok = h.unique_token("idle")
        msg = h.make_message(tok)
        with h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, db=db) as mt:
            with h.NetcatClient(mt.port) as nc:
                self.assertEqual(nc.reply().code, 220)
                self.assertEqual(nc.cmd(b"EHLO person.test").code, 250)
                time.sleep(2.5)  # idle, and older than --before below
                out = self.tool("prune", "--before", "1s", db=db).stdout.decode()
                self.assertIn("removed 0 sessions", out)
                nc.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0" + ALICE[0].encode() + b"\0" +
                                                         ALICE[1].encode()))
                self.assertEqual(nc.cmd(b"MAIL FROM:<sender@client.test>").code, 250)
                self.assertEqual(nc.cmd(b"RCPT TO:<alice@example.test>").code, 250)
                self.assertEqual(nc.cmd(b"DATA").code, 354)
                nc.send(h.dot_stuff(msg))
                self.assertEqual(nc.cmd(b".").code, 250)
                self.assertEqual(nc.cmd(b"QUIT").code, 221)
        self.postfix.wait_for_message(tok, mailbox="alice")
        rows = self.sql("SELECT count(*) FROM messages", db=db)
        self.assertEqual(rows[0][0], 1)

    def test_prune_before_removes_a_session_whose_writer_died(self):
        # No ended_at and nothing recorded for longer than any wait of a live session (a week):
        # its proxy was killed. Silent for less, it may be a live one and is kept.
        copy = self.copy_db("prune3.db")
        con = sqlite3.connect(copy)
        with con:
            ids = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id LIMIT 2")]
            con.execute("UPDATE sessions SET ended_at = NULL, outcome = NULL WHERE id IN (?, ?)",
                        ids)
            con.execute("UPDATE sessions SET started_at = '2020-01-01T00:00:00.000000Z' "
                        "WHERE id IN (?, ?)", ids)
            con.execute("UPDATE events SET at = '2020-01-01T00:00:01.000000Z' WHERE session_id = ?",
                        (ids[0],))
            con.execute("UPDATE events SET at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 days') "
                        "WHERE session_id = ?", (ids[1],))
        con.close()
        out = self.tool("prune", "--before", "1d", db=copy).stdout.decode()
        self.assertIn(f"removed session {ids[0]} ", out)
        self.assertNotIn(f"removed session {ids[1]} ", out)


class BodyInPiecesTranscriptTest(h.IntegrationCase):
    """A message body the client sent in pieces that end inside its lines (a slow writer, a
    person at telnet in character mode, one key per read), through the real proxy to the
    private Postfix: the record keeps one event per read, and `mailtap show` prints the body
    line by line all the same, each line once, where its CRLF is; a `.` that did not end the
    message stays inside its line."""

    with_postfix = True
    PAUSE = 0.3  # long enough for mailtap to read each piece on its own

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "pieces.db"
        stdout = []
        cls.sessions = h.record_bodies_in_pieces(cls.db, cls.postfix, cls.pki, cls.PAUSE,
                                                 extra_args=["--transcript"], stdout=stdout)
        cls.live = stdout[0].encode()  # the proxy's --transcript, printed as it relayed them

    def show(self, sid: int, *args) -> bytes:
        cp = subprocess.run([str(h.mailtap_bin()), "show", str(sid), *args, "--db", str(self.db)],
                            capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr.decode(errors="replace"))
        return cp.stdout

    def body_lines(self, out: bytes, subject: bytes) -> list:
        """The transcript's lines from the C: line of `subject` to the reply to the end of data,
        each with the part after its time (the C: line's text, or a note)."""
        lines = out.split(b"\n")
        start = next(i for i, line in enumerate(lines)
                     if line.endswith(b" C: Subject: " + subject))
        end = next(i for i in range(start, len(lines)) if b" S: 250 2.0.0" in lines[i])
        return [line[8:].lstrip(b" ") for line in lines[start:end]]

    def test_the_record_holds_a_data_event_per_read(self):
        # What the transcript joins: were the pieces one read, there would be nothing to show.
        # (4 + 9 + 4 pieces sent; a CR may wait in mailtap for the LF after it, and a very slow
        # run may take two pieces in a read.)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        count = con.execute("SELECT count(*) FROM events WHERE kind = 'data' AND session_id = ?",
                            (self.sessions[0],)).fetchone()[0]
        con.close()
        self.assertGreaterEqual(count, 10)

    def test_a_line_that_came_in_pieces_is_one_line(self):
        out = self.show(self.sessions[0])
        self.assertEqual(self.body_lines(out, b"split"),
                         [b"C: Subject: split", b"C: ", b"C: hello world", b"C: x.", b"C: ."])
        self.assertEqual(self.show(self.sessions[0], "--message", "1"),
                         b"Subject: split\r\n\r\nhello world\r\nx.\r\n")

    def test_keys_sent_one_by_one_are_one_line(self):
        out = self.show(self.sessions[0])
        self.assertEqual(self.body_lines(out, b"keys"), [b"C: Subject: keys", b"C: ", b"C: QUIT",
                                                         b"C: ."])

    def test_a_dot_that_did_not_end_the_message_stays_in_its_line(self):
        out = self.show(self.sessions[0])
        lines = self.body_lines(out, b"ctrlc")
        self.assertEqual([line for line in lines if line.startswith(b"C: ")],
                         [b"C: Subject: ctrlc", b"C: ", b"C: I changed my mind",
                          b"C: \\xff\\xf4\\xff\\xfd\\x06.", b"C: ."])
        # mailtap's IAC WONT TM, recorded after the read that held the DO TM (inside the line),
        # follows the line rather than cut it.
        self.assertEqual(len(lines), 6, lines)
        self.assertTrue(lines[4].startswith(b"M: \\xff\\xfc\\x06   (telnet timing mark"), lines)
        self.assertTrue(self.show(self.sessions[0], "--message", "3").endswith(
            b"I changed my mind\r\n\xff\xf4\xff\xfd\x06.\r\n"))

    def test_each_line_has_the_time_its_end_came(self):
        # "hello world" ended in the second read, 0.3 s after the first: its own time, not the
        # first read's; a line that ends in the read after another's has its time too.
        seconds = {m.group(2): float(m.group(1)) for m in re.finditer(
            rb"^\+(\d+\.\d{3})s  C: (.*)$", self.show(self.sessions[0]), re.M)}
        self.assertIn(b"hello world", seconds)
        self.assertIn(b"x.", seconds)
        self.assertGreaterEqual(seconds[b"hello world"] - seconds[b"Subject: split"],
                                self.PAUSE / 2)
        self.assertGreaterEqual(seconds[b"x."] - seconds[b"hello world"], self.PAUSE / 2)

    def test_a_note_on_the_text_follows_the_line_it_came_inside(self):
        out = self.show(self.sessions[1])
        lines = self.body_lines(out, b"lf")
        texts = [line for line in lines if line.startswith(b"C: ")]
        self.assertEqual(texts, [b"C: Subject: lf", b"C: ", b"C: abc", b"C: def", b"C: ."])
        notes = [i for i, line in enumerate(lines) if line.startswith(b"~~ rewrite: bare LF")]
        self.assertEqual(len(notes), 4, lines)
        # Each note follows the line that was open when it came: none splits a line.
        self.assertEqual(lines[notes[0] - 1], b"C: abc")
        self.assertEqual(lines[notes[1] - 1], b"C: def")

    def live_lines(self, sid: int, subject: bytes) -> list:
        """The live transcript's lines of session `sid` (its "[sid] " tag taken off) from the C:
        line of `subject` to the reply to the end of data."""
        tag = b"[%d] " % sid
        lines = [line[len(tag):] for line in self.live.split(b"\n") if line.startswith(tag)]
        start = lines.index(b"C: Subject: " + subject)
        end = next(i for i in range(start, len(lines)) if lines[i].startswith(b"S: 250 2.0.0"))
        return lines[start:end]

    def test_the_live_transcript_prints_the_lines_show_prints(self):
        # proxy --transcript joins the reads of a body as show does (smtp::BodyTextJoin): the
        # same C: lines, each once, and mailtap's notes on the text after the same lines. (The
        # two write a note differently: "~~" in show, "~ " live.)
        def shape(lines: list) -> list:
            return [line if line.startswith(b"C: ") else line[:2].replace(b"~~", b"~ ")
                    for line in lines]

        for sid, subject in ((self.sessions[0], b"split"), (self.sessions[0], b"keys"),
                             (self.sessions[0], b"ctrlc"), (self.sessions[1], b"lf")):
            with self.subTest(subject=subject):
                live = self.live_lines(sid, subject)
                shown = self.body_lines(self.show(sid), subject)
                self.assertEqual(shape(live), shape(shown), b"\n".join(live))
        self.assertEqual([line for line in self.live_lines(self.sessions[0], b"keys")],
                         [b"C: Subject: keys", b"C: ", b"C: QUIT", b"C: ."])

    def test_json_says_which_message_a_body_event_and_its_notes_belong_to(self):
        # The web page joins the text and places notes by it, as show does (mail_transaction).
        events = json.loads(self.show(self.sessions[1], "--json"))["events"]
        data = [e for e in events if e["kind"] == "data"]
        notes = [e for e in events if (e["note"] or "").startswith("bare LF")]
        on_body = range(data[0]["seq"], data[-1]["seq"] + 2)  # not those on commands
        body_notes = [e for e in notes if e["seq"] in on_body]
        self.assertEqual(len(body_notes), 4)
        self.assertEqual({e["mail_transaction"] for e in data + body_notes}, {1})
        self.assertEqual({e["mail_transaction"] for e in notes if e["seq"] not in on_body}, {None})
        self.assertIsNone(next(e for e in events if e["kind"] == "greeting")["mail_transaction"])

    def test_the_live_transcript_keeps_the_password_out(self):
        # AUTH PLAIN went by with alice's password: redacted live as in the record.
        self.assertIn(b"AUTH PLAIN", self.live)
        self.assertNotIn(h.USERS["alice"].encode(), self.live)
        self.assertNotIn(h.auth_plain("alice", h.USERS["alice"]).encode(), self.live)

    def test_a_refusal_kept_only_by_its_size_is_shown_with_its_note_and_redaction(self):
        # recreader finding 6: mailtap's IAC WONT "Q" on a line that may hold a secret's octets
        # is recorded as its note, its size and `redacted`, without its octets. show gives the
        # note and the mark every redacted line has; --raw has no octets of it to give.
        out = self.show(self.sessions[2]).decode()
        line = next(line for line in out.splitlines() if "telnet options refused (1x)" in line)
        self.assertIn("M: note: telnet options refused (1x): ", line)
        self.assertTrue(line.endswith("   [redacted: 3 bytes on the wire]"), line)
        self.assertNotIn(b"\xff\xfcQ", self.show(self.sessions[2], "--raw"))


class LargeMessageToolsTest(h.IntegrationCase):
    """Messages larger than the 64 KiB the database holds of a body (the rest is in the
    session's body file), which show and export write as they read them from the record, a piece
    at a time: byte for byte what was sent, and JSON the same whatever writes it. One message is
    UTF-8 (a JSON string), one has Latin-1 octets (JSON base64)."""

    SIZE = 1 << 20

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "large.db"
        cls.messages = [h.large_message(cls.SIZE), h.large_message(cls.SIZE, eight_bit=True)]
        sink = h.BodySink()
        try:
            mt = h.Mailtap(sink.address, tls="none", db=cls.db, extra_args=["--transcript"])
            with mt:
                for message in cls.messages:
                    h.smtplib_send(mt.port, message)
        finally:
            sink.close()
        cls.live = mt.stdout.encode()  # the proxy's --transcript
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True)
        cls.sessions = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
        in_file = con.execute("SELECT count(*) FROM events WHERE file_offset IS NOT NULL")
        cls.events_in_body_files = in_file.fetchone()[0]
        con.close()

    def tool(self, *args, expect=0) -> bytes:
        cp = subprocess.run([str(h.mailtap_bin()), *args, "--db", str(self.db)],
                            capture_output=True, timeout=60)
        self.assertEqual(cp.returncode, expect, cp.stderr.decode(errors="replace"))
        return cp.stdout

    def test_the_bodies_go_on_in_the_body_files(self):
        self.assertEqual(len(self.sessions), 2)
        self.assertGreater(self.events_in_body_files, 0)

    def test_show_save_message_and_raw_are_the_recorded_bytes(self):
        for sid, message in zip(self.sessions, self.messages):
            saved = self.tmp / f"saved-{sid}.eml"
            self.tool("show", str(sid), "--save", str(saved))
            self.assertTrue(saved.read_bytes() == message, "--save")
            self.assertTrue(self.tool("show", str(sid), "--message", "1") == message, "--message")
            raw = self.tool("show", str(sid), "--raw")
            self.assertIn(h.dot_stuff(message) + b".\r\n", raw)

    def test_the_transcript_shows_every_line_of_the_body_file_in_order(self):
        # Written as it is read from the body file, in pieces that cut lines (and CRLFs)
        # anywhere: the body's lines whole, each on its own C: line, escaped as any wire text,
        # as if the octets of its events (one per read of the client, each of which may end
        # inside a line) were joined and split at CRLF in memory.
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        for sid in self.sessions:
            out = self.tool("show", str(sid))
            shown = [line.split(b" C: ", 1)[1] for line in out.split(b"\n") if b" C: " in line]
            wire = Path(f"{self.db}-bodies", str(sid)).read_bytes()
            octets = b"".join(
                stored if offset is None else wire[offset:offset + length]
                for stored, offset, length in con.execute(
                    "SELECT bytes, file_offset, file_length FROM events WHERE session_id = ? AND "
                    "kind = 'data' ORDER BY seq", (sid,)))
            lines = octets.split(b"\r\n")
            expected = list(map(escape_line, lines[:-1] if lines[-1] == b"" else lines))
            start = shown.index(expected[0])
            self.assertGreater(len(expected), self.SIZE // 80)
            self.assertTrue(shown[start:start + len(expected)] == expected)
        con.close()

    def test_the_live_transcript_prints_the_body_line_by_line_as_show(self):
        # The proxy's reads (of up to 256 KiB) cut the body's lines anywhere: --transcript
        # prints each line whole, once, as show does. Its text is escaped as the live
        # transcript escapes any line (UTF-8 kept as characters, other octets \xHH), so the
        # Latin-1 message's lines are show's to the octet.
        for sid, message in zip(self.sessions, self.messages):
            tag = b"[%d] C: " % sid
            live = [line[len(tag):] for line in self.live.split(b"\n") if line.startswith(tag)]
            lines = message.split(b"\r\n")[:-1]
            lines = [b"." + line if line.startswith(b".") else line for line in lines]  # stuffed
            if b"\xe9 " in message:
                lines = list(map(escape_line, lines))
                out = self.tool("show", str(sid))
                shown = [line.split(b" C: ", 1)[1] for line in out.split(b"\n")
                         if b" C: " in line and not line.startswith(b"#")]  # not the legend
                self.assertTrue(live == shown, "the Latin-1 message's lines differ from show's")
            start = live.index(lines[0])
            self.assertTrue(live[start:start + len(lines) + 1] == lines + [b"."])

    def test_json_holds_every_octet_and_is_the_same_from_show_and_export(self):
        for sid, message in zip(self.sessions, self.messages):
            shown = self.tool("show", str(sid), "--json")
            d = json.loads(shown)
            (m,) = d["messages"]
            body = m["body"].encode() if "body_encoding" not in m else base64.b64decode(m["body"])
            self.assertTrue(body == message)
            self.assertEqual(m.get("body_encoding"), "base64" if b"\xe9" in message else None)
            wire = b"".join(e["bytes"].encode() if "bytes_encoding" not in e
                            else base64.b64decode(e["bytes"])
                            for e in d["events"] if e["kind"] == "data")
            self.assertTrue(wire == h.dot_stuff(message) + b".\r\n")
            self.assertTrue(self.tool("export", str(sid), "--format", "json") == shown)
            out = self.tmp / f"export-{sid}.json"
            self.tool("export", str(sid), "--format", "json", "-o", str(out))
            self.assertTrue(out.read_bytes() == shown)
        lines = self.tool("export", "--all", "--format", "jsonl").splitlines(keepends=True)
        self.assertEqual(len(lines), 2)
        for sid, line in zip(self.sessions, lines):
            self.assertTrue(line == self.tool("show", str(sid), "--json"))
        everything = json.loads(self.tool("export", *map(str, self.sessions), "--format", "json"))
        self.assertEqual([s["id"] for s in everything], self.sessions)

    def test_eml_and_mbox_are_the_messages(self):
        for sid, message in zip(self.sessions, self.messages):
            self.assertTrue(self.tool("export", str(sid), "--format", "eml") == message)
        outdir = self.tmp / "emls"
        self.tool("export", "--all", "--format", "eml", "-o", str(outdir))
        for sid, message in zip(self.sessions, self.messages):
            self.assertTrue((outdir / f"session-{sid}-message-1.eml").read_bytes() == message)
        mbox = self.tool("export", "--all", "--format", "mbox")
        entries = mbox.split(b"\n\nFrom sender@client.test ")
        self.assertEqual(len(entries), 2)
        for entry, message in zip(entries, self.messages):
            _, quoted = entry.split(b"\n", 1)
            self.assertTrue(quoted.rstrip(b"\n") == h.mboxrd_quoted(message).rstrip(b"\n"))
        self.assertIn(b"\n>From ", mbox)

    def test_a_session_removed_during_the_export_leaves_the_one_before_it_whole(self):
        # `export NEWER OLDER` while prune removes OLDER: export stops there (exit 1, naming
        # it), and NEWER, read whole before, must come out whole, not cut where the writer's
        # buffer had not yet been handed to stdout. Deterministic: stdout is a pipe of one page
        # that nobody reads, so export is held writing NEWER (its first piece already out: it
        # has looked up both sessions) until prune has run.
        newer, older = self.sessions[1], self.sessions[0]
        for fmt in ("jsonl", "json", "mbox"):
            with self.subTest(format=fmt):
                db = copy_recorded_db(self.db, self.tmp / f"removed-{fmt}.db")
                whole = self.tool("export", str(newer), "--format", fmt)
                read_end, write_end = os.pipe()
                fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 4096)
                export = subprocess.Popen(
                    [str(h.mailtap_bin()), "export", str(newer), str(older), "--format", fmt,
                     "--db", str(db)], stdout=write_end, stderr=subprocess.PIPE)
                os.close(write_end)
                with open(read_end, "rb") as out:
                    first = out.read(1)
                    subprocess.run([str(h.mailtap_bin()), "prune", "--keep", "1", "--no-vacuum",
                                    "--db", str(db)], check=True, capture_output=True, timeout=60)
                    written = first + out.read()
                _, err = export.communicate(timeout=60)
                self.assertEqual(export.returncode, 1, err)
                self.assertIn(f"session {older} was removed from".encode(), err)
                # jsonl: its line; json: the array, closed (a valid document of the sessions
                # before it; the exit status and stderr say why it ends there); mbox: its
                # messages.
                expected = b"[" + whole.rstrip(b"\n") + b"]\n" if fmt == "json" else whole
                self.assertEqual(len(written), len(expected))
                self.assertTrue(written == expected)
                if fmt == "json":
                    self.assertEqual([s["id"] for s in json.loads(written)], [newer])


class LargeTranscriptTest(h.IntegrationCase):
    """`mailtap show ID`, the plain transcript, of a message larger than the memory it may take
    (--max-body): written as it is read from the record, in a few MiB whatever the body's size;
    and a reader that stops (`| head`) ends it at once."""

    SIZE = 32 << 20
    DATA_LIMIT = 24 << 20  # RLIMIT_DATA: less than the body (before: about four times the body)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "huge.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db,
                           extra_args=["--max-body", "64MiB"]) as mt:
                h.smtplib_send(mt.port, h.large_message(cls.SIZE))
        finally:
            sink.close()

    def show(self, *args, sigpipe=signal.SIG_DFL, stdout=subprocess.DEVNULL) -> subprocess.Popen:
        """`show 1 ARGS` started with its memory limited, stderr to a pipe."""
        def limited():
            if not UNDER_ASAN:  # its shadow memory and quarantine do not fit a data limit
                resource.setrlimit(resource.RLIMIT_DATA, (self.DATA_LIMIT, self.DATA_LIMIT))
            signal.signal(signal.SIGPIPE, sigpipe)
        return subprocess.Popen([str(h.mailtap_bin()), "show", "1", "--db", str(self.db), *args],
                                stdout=stdout, stderr=subprocess.PIPE, preexec_fn=limited)

    def test_the_transcript_of_a_large_message_takes_a_few_mib(self):
        for args in ((), ("--color", "always"), ("--raw",)):
            with self.show(*args) as p:
                err = p.communicate(timeout=120)[1]
            self.assertEqual(p.returncode, 0, (args, err))

    def test_a_reader_that_stops_ends_the_transcript_at_once(self):
        for sigpipe in (signal.SIG_DFL, signal.SIG_IGN):
            started = time.monotonic()
            r, w = os.pipe()
            with self.show(sigpipe=sigpipe, stdout=w) as p:
                os.close(w)
                with os.fdopen(r, "rb") as reader:
                    self.assertTrue(reader.read(100).startswith(b"session 1 "))
                err = p.communicate(timeout=60)[1]
            # Killed by SIGPIPE or, when it is ignored, ended by the failed write, said once, as
            # every tool's is.
            ignored = sigpipe == signal.SIG_IGN
            self.assertEqual(p.returncode, 1 if ignored else -signal.SIGPIPE)
            self.assertEqual(err, b"mailtap: show: stdout: Broken pipe\n" if ignored else b"")
            self.assertLess(time.monotonic() - started, 5)


class ManySessionsListTest(h.IntegrationCase):
    """`mailtap sessions` (--json and the table) of more sessions than the memory it may take
    holds: the rows are written as they are read, so memory stays flat however many there are.
    The sessions are copies of one recorded through the proxy, made in SQL (fast)."""

    SESSIONS = 20000
    DATA_LIMIT = 16 << 20  # RLIMIT_DATA (before: 40 MB for --json, 30 MB for the table)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "many.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                h.smtplib_send(mt.port, b"Subject: one\r\n\r\nhello\r\n")
        finally:
            sink.close()
        con = sqlite3.connect(cls.db)
        columns = ", ".join(r[1] for r in con.execute("PRAGMA table_info(sessions)")
                            if r[1] != "id")
        with con:
            con.execute(f"WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE "
                        f"i < {cls.SESSIONS}) INSERT INTO sessions ({columns}) "
                        f"SELECT {columns} FROM sessions, n")
        con.close()

    def sessions(self, *args) -> bytes:
        def limited():
            if not UNDER_ASAN:  # its shadow memory and quarantine do not fit a data limit
                resource.setrlimit(resource.RLIMIT_DATA, (self.DATA_LIMIT, self.DATA_LIMIT))
        cp = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", str(self.db), *args],
                            capture_output=True, preexec_fn=limited, timeout=120)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        return cp.stdout

    def test_json_is_written_as_it_is_read(self):
        rows = json.loads(self.sessions("--json"))
        self.assertEqual(len(rows), self.SESSIONS)
        self.assertEqual([r["id"] for r in rows], list(range(self.SESSIONS, 0, -1)))

    def test_the_table_is_written_as_it_is_read_its_columns_sized_by_every_row(self):
        lines = self.sessions().decode().splitlines()
        self.assertEqual(len(lines), self.SESSIONS + 1)
        # The widest id is the first row's: every row's START is where the header's is.
        start = lines[0].index("START (UTC)")
        self.assertEqual({line[start - 2:start] for line in lines}, {"  "})
        self.assertEqual({line[start:start + 2] for line in lines[1:]}, {"20"})
        self.assertEqual(lines[-1].split()[0], "1")

    def test_a_list_nobody_reads_holds_no_read_on_the_file(self):
        # `mailtap sessions | less` left open: the list waits on a full pipe. It held one read
        # snapshot all that time, so a recording proxy's WAL checkpoint could not finish and the
        # -wal file grew; now it reads in batches and holds no read between them.
        for args in ([], ["--json"]):
            with self.subTest(args=args):
                con = sqlite3.connect(self.db, timeout=5)
                touch = "UPDATE sessions SET ehlo_name = ehlo_name || '.' WHERE id = 1"
                try:
                    with con:  # a commit the list's snapshot has in the -wal file
                        con.execute(touch)
                    p = subprocess.Popen([str(h.mailtap_bin()), "sessions", "--db", str(self.db),
                                          *args], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL)
                    try:
                        # The pipe (64 KiB) is full long before the list ends.
                        waits_on_a_full_pipe(p.pid)
                        self.assertIsNone(p.poll(), "the list was written before it was read")
                        with con:
                            con.execute(touch)
                        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                        self.assertEqual(busy, 0, "the blocked list holds a read on the file")
                        self.assertEqual(os.path.getsize(f"{self.db}-wal"), 0)
                    finally:
                        p.kill()
                        p.communicate()
                finally:
                    con.close()


def waits_on_a_full_pipe(pid: int, timeout: float = 20) -> None:
    """Returns once process `pid` sleeps in a write to a full pipe (its /proc wchan), or after
    `timeout`; where the kernel does not show wchan, after 2 s, time enough to fill one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            wchan, state = "0", "S"
        if wchan.endswith("pipe_write") or state == "Z":  # blocked, or it has ended
            return
        if state == "S" and wchan in ("", "0"):  # asleep, and the kernel does not say where
            time.sleep(2)
            return
        time.sleep(0.02)


class ManyLargeSessionsExportTest(h.IntegrationCase):
    """An export of more sessions with messages in their body files than the process may hold
    files open, written one session at a time; and an -o or --save file that a failing export
    leaves as it was."""

    SESSIONS = 40
    OPEN_FILES = 24  # stdio, the database and its WAL and shm, and some room: not 40 body files

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "many.db"
        cls.messages = [h.large_message(80 * 1024) + b"session %d\r\n" % i
                        for i in range(cls.SESSIONS)]
        sink = h.BodySink()
        try:
            mt = h.Mailtap(sink.address, tls="none", db=cls.db, extra_args=["--transcript"])
            with mt:
                for message in cls.messages:
                    h.smtplib_send(mt.port, message)
        finally:
            sink.close()
        cls.live = mt.stdout.encode()  # the proxy's --transcript
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True)
        cls.sessions = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
        con.close()

    def tool(self, *args, db=None, expect=0, few_files=True) -> subprocess.CompletedProcess:
        limit = ["prlimit", f"--nofile={self.OPEN_FILES}"] if few_files else []
        cmd = [*limit, str(h.mailtap_bin()), *args, "--db", str(db or self.db)]
        cp = subprocess.run(cmd, capture_output=True, timeout=120)
        self.assertEqual(cp.returncode, expect, cp.stderr.decode(errors="replace"))
        return cp

    def copy_db(self, name: str) -> Path:
        return copy_recorded_db(self.db, self.tmp / name)

    def test_every_session_is_exported_with_few_open_files(self):
        self.assertEqual(len(self.sessions), self.SESSIONS)
        lines = self.tool("export", "--all", "--format", "jsonl").stdout.splitlines()
        self.assertEqual([json.loads(line)["id"] for line in lines], self.sessions)
        mbox = self.tool("export", *map(str, self.sessions), "--format", "mbox").stdout
        self.assertEqual(mbox.count(b"\nFrom sender@client.test "), self.SESSIONS - 1)
        outdir = self.tmp / "many-emls"
        self.tool("export", "--all", "--format", "eml", "-o", str(outdir))
        for sid, message in zip(self.sessions, self.messages):
            self.assertTrue((outdir / f"session-{sid}-message-1.eml").read_bytes() == message)

    def test_a_missing_session_is_reported_before_anything_is_written(self):
        out = self.tmp / "missing.mbox"
        cp = self.tool("export", str(self.sessions[0]), "999999", "--format", "mbox", "-o",
                       str(out), expect=1)
        self.assertIn(b"no session 999999", cp.stderr)
        self.assertFalse(out.exists())

    def test_an_unopenable_body_file_is_named_with_its_error(self):
        db = self.copy_db("unreadable.db")
        body = Path(f"{db}-bodies") / str(self.sessions[0])
        body.unlink()
        body.symlink_to(f"{self.db}-bodies/{self.sessions[0]}")  # there, but not opened (ELOOP)
        cp = self.tool("export", str(self.sessions[0]), expect=1, db=db)
        self.assertIn(b"cannot open body file", cp.stderr)
        self.assertNotIn(b"kept changing", cp.stderr)

    def test_a_failing_export_leaves_an_existing_output_file_as_it_was(self):
        db = self.copy_db("broken.db")
        Path(f"{db}-bodies", str(self.sessions[-1])).unlink()
        outdir = self.tmp / "kept-out"
        outdir.mkdir()
        old = b"the export before\n"
        for name, args in (("all.jsonl", ("export", "--all", "--format", "jsonl", "-o")),
                           ("all.mbox", ("export", "--all", "--format", "mbox", "-o")),
                           ("one.eml", ("show", str(self.sessions[-1]), "--save"))):
            target = outdir / name
            target.write_bytes(old)
            cp = self.tool(*args, str(target), db=db, expect=1, few_files=False)
            self.assertIn(b"cannot open body file", cp.stderr)
            self.assertEqual(target.read_bytes(), old, name)
            self.assertEqual([p.name for p in outdir.iterdir() if ".partial-" in p.name], [])
            # A complete export replaces it.
            self.tool(*args, str(target), few_files=False)
            self.assertNotEqual(target.read_bytes(), old, name)
            self.assertEqual(target.stat().st_mode & 0o777, 0o600, name)
        self.assertEqual(sorted(p.name for p in outdir.iterdir()),
                         ["all.jsonl", "all.mbox", "one.eml"])


class ExportAcceptedOnlyTest(h.IntegrationCase):
    """`export --format mbox|eml --accepted-only`: the messages the server accepted (a 2xx to the
    end of data), for a tool that takes the export as what was delivered; each one left out is
    named on stderr. Without it every message is exported, and the warning for one the server
    did not accept names the flag. JSON, the sessions' whole record, refuses it (exit 2). (There
    was no such flag: an mbox held the refused messages too, only stderr telling them apart.)"""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "accepted.db"
        # In the order they are sent: session A 250, 552, 250; B 554; C taken, never answered
        # (the connection closed); D 550, 250.
        sink = h.BodySink(end_of_data_replies=[
            b"250 2.0.0 queued\r\n", b"552 5.3.4 Message too big for system\r\n",
            b"250 2.0.0 queued\r\n", b"554 5.7.1 Spam rejected\r\n", None,
            b"550 5.7.1 Content refused\r\n", b"250 2.0.0 queued\r\n"])
        cls.sent = {}  # (session letter, message seq) -> bytes
        cls.subjects = {}  # Subject -> (session letter, message seq)
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                for letter, count in (("A", 3), ("B", 1), ("C", 1), ("D", 2)):
                    with smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test",
                                      timeout=30) as s:
                        for seq in range(1, count + 1):
                            tok = h.unique_token(f"{letter}{seq}")
                            msg = h.make_message(tok)
                            cls.sent[letter, seq] = msg
                            cls.subjects["mailtap test " + tok] = (letter, seq)
                            try:
                                s.sendmail("sender@client.test", ["alice@example.test"], msg)
                            except smtplib.SMTPDataError:
                                pass  # refused: the session goes on
                            except smtplib.SMTPServerDisconnected:
                                break  # C: never answered
                        with contextlib.suppress(smtplib.SMTPServerDisconnected):
                            s.quit()
        finally:
            sink.close()
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True)
        ids = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
        cls.finals = con.execute("SELECT session_id, seq, final_code FROM messages "
                                 "ORDER BY session_id, seq").fetchall()
        con.close()
        cls.sid = dict(zip("ABCD", ids))

    def tool(self, *args, expect=0) -> subprocess.CompletedProcess:
        cp = subprocess.run([str(h.mailtap_bin()), "export", *map(str, args), "--db",
                             str(self.db)], capture_output=True, timeout=60, text=True)
        self.assertEqual(cp.returncode, expect, cp.stderr)
        return cp

    def tokens(self, mbox_text: str) -> list:
        """The messages of an mbox, as the (letter, seq) each was sent as."""
        path = self.tmp / f"read-{random.getrandbits(32)}.mbox"
        path.write_text(mbox_text)
        box = mailbox.mbox(str(path))
        try:
            return [self.subjects[m["Subject"]] for m in box]
        finally:
            box.close()

    def test_the_recording_has_each_kind_of_final_reply(self):
        s = self.sid
        self.assertEqual(self.finals, [(s["A"], 1, 250), (s["A"], 2, 552), (s["A"], 3, 250),
                                       (s["B"], 1, 554), (s["C"], 1, None), (s["D"], 1, 550),
                                       (s["D"], 2, 250)])

    def test_the_warning_for_a_refused_message_names_the_flag(self):
        cp = self.tool(self.sid["A"], "--format", "mbox")
        self.assertEqual(self.tokens(cp.stdout), [("A", 1), ("A", 2), ("A", 3)])
        self.assertIn(f"warning: session {self.sid['A']} message 2 was not accepted by the "
                      "server: 552 5.3.4 Message too big for system; exported as recorded "
                      "(--accepted-only leaves it out)", cp.stderr)

    def test_mbox_of_all_holds_only_the_accepted_messages_and_names_the_others(self):
        s = self.sid
        cp = self.tool("--all", "--format", "mbox", "--accepted-only")
        self.assertEqual(self.tokens(cp.stdout), [("A", 1), ("A", 3), ("D", 2)])
        self.assertNotIn("warning", cp.stderr)
        for line in (f"session {s['A']} message 2 was not accepted by the server: 552 5.3.4 "
                     "Message too big for system; left out (--accepted-only)",
                     f"session {s['B']} message 1 was not accepted by the server: 554 5.7.1",
                     f"session {s['C']} message 1 had no reply to its end of data (the session "
                     "ended first; the server may have it); left out (--accepted-only)",
                     f"session {s['D']} message 1 was not accepted by the server: 550 5.7.1"):
            self.assertIn(line, cp.stderr)
        self.assertEqual(cp.stderr.count("left out"), 4, cp.stderr)
        # What is written of each is what an export without the flag writes of it.
        every = self.tool("--all", "--format", "mbox").stdout
        entries = ["From " + e for e in every.split("\nFrom ")]
        entries[0] = entries[0][len("From "):]
        kept = [entries[i] for i in (0, 2, 6)]
        self.assertEqual(cp.stdout, "\n".join(kept))

    def test_several_ids_in_the_order_named(self):
        s = self.sid
        cp = self.tool(s["D"], s["B"], s["A"], s["D"], "--format", "mbox", "--accepted-only",
                       "-o", self.tmp / "named.mbox")
        self.assertEqual(self.tokens((self.tmp / "named.mbox").read_text()),
                         [("D", 2), ("A", 1), ("A", 3)])
        self.assertEqual(cp.stderr.count("left out"), 3, cp.stderr)

    def test_eml_directory_has_a_file_for_each_accepted_message(self):
        out = self.tmp / "accepted-emls"
        cp = self.tool("--all", "--format", "eml", "--accepted-only", "-o", out)
        s = self.sid
        expected = {f"session-{s[k]}-message-{n}.eml": self.sent[k, n]
                    for k, n in (("A", 1), ("A", 3), ("D", 2))}
        self.assertEqual(cp.stdout.splitlines(), [str(out / name) for name in expected])
        self.assertEqual({p.name: p.read_bytes() for p in out.iterdir()}, expected)
        self.assertEqual(cp.stderr.count("left out"), 4, cp.stderr)
        self.assertNotIn("warning", cp.stderr)

    def test_eml_of_one_accepted_message_goes_to_stdout(self):
        s = self.sid
        cp = subprocess.run([str(h.mailtap_bin()), "export", str(s["D"]), "--format", "eml",
                             "--accepted-only", "--db", str(self.db)], capture_output=True,
                            timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, self.sent["D", 2])
        self.assertIn(b"message 1 was not accepted by the server: 550", cp.stderr)
        # Two accepted messages need a directory, as two messages do.
        cp = self.tool(s["A"], s["B"], "--format", "eml", "--accepted-only", expect=2)
        self.assertIn("export: 2 accepted messages: give -o DIR", cp.stderr)
        self.assertEqual(cp.stdout, "")

    def test_sessions_without_an_accepted_message(self):
        s = self.sid
        cp = self.tool(s["B"], s["C"], "--format", "mbox", "--accepted-only", expect=1)
        self.assertEqual(cp.stdout, "")  # nothing, as of sessions without messages
        self.assertIn("no message the server accepted in the selected sessions", cp.stderr)
        cp = self.tool(s["B"], s["C"], "--format", "eml", "--accepted-only", expect=1)
        self.assertIn("no message the server accepted in the selected sessions", cp.stderr)
        self.assertEqual(cp.stderr.count("left out"), 2, cp.stderr)

    def test_json_refuses_the_flag(self):
        for fmt in ([], ["--format", "json"], ["--format", "jsonl"]):
            cp = self.tool(self.sid["A"], *fmt, "--accepted-only", expect=2)
            self.assertEqual(cp.stdout, "")
            self.assertIn("--accepted-only is for --format eml or mbox", cp.stderr)
            self.assertIn("final_code", cp.stderr)


class ExportPrunedMidSessionTest(h.IntegrationCase):
    """`mailtap prune` removing the session `export --format jsonl` is writing to stdout (read a
    batch of its messages at a time, its JSON handed out 256 KiB at a time): the export stops
    with status 1 and says the session was removed during the export, and the line it had begun
    is ended, so that a reader of lines gets every line whole and can drop the last, which is
    not JSON (docs/tools/export.md)."""

    MESSAGES = 120  # of 20 KiB: 2.4 MiB of JSON, in batches of 16 messages

    def test_a_session_pruned_while_it_is_written_leaves_an_ended_line(self):
        db = self.tmp / "midsession.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db) as mt:
                with smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test",
                                  timeout=30) as s:
                    for i in range(self.MESSAGES):
                        s.sendmail("sender@client.test", ["alice@example.test"],
                                   h.make_message(f"m{i}") + b"x" * (20 * 1024) + b"\r\n")
                    s.quit()
                h.smtplib_send(mt.port, h.make_message("the second session"))
        finally:
            sink.close()
        export = subprocess.Popen([str(h.mailtap_bin()), "export", "--all", "--format", "jsonl",
                                   "--db", str(db)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            # Its first 256 KiB: session 1 is being written; the pipe full, export waits.
            first = export.stdout.read(1)
            self.assertEqual(first, b"{")
            pruned = subprocess.run([str(h.mailtap_bin()), "prune", "--keep", "1", "--db",
                                     str(db)], capture_output=True, timeout=60)
            self.assertEqual(pruned.returncode, 0, pruned.stderr)
            out = first + export.stdout.read()
            err = export.stderr.read().decode(errors="replace")
            self.assertEqual(export.wait(timeout=60), 1, err)
        finally:
            if export.poll() is None:
                export.kill()
                export.wait()
            export.stdout.close()
            export.stderr.close()
        self.assertIn("session 1 was removed from", err)
        self.assertIn("during the export (prune?)", err)
        self.assertIn("cut short", err)
        self.assertTrue(out.endswith(b"\n"), out[-200:])
        lines = out.split(b"\n")[:-1]
        self.assertEqual(len(lines), 1, [line[:60] for line in lines])
        self.assertGreater(len(lines[0]), 256 * 1024)
        with self.assertRaises(json.JSONDecodeError):
            json.loads(lines[0])


class AuditAttachmentsTest(h.IntegrationCase):
    """`mailtap audit` on mail with attachments recorded through the proxy. Every line of a
    base64 attachment decodes to 57 octets of the file; some fall into the shape of a SASL PLAIN
    message (two NULs between printable text): random octets about once in 70,000 lines, a
    program's or a catalogue's strings between NULs on every other line. None is a leaked
    credential. A PLAIN blob a person pasted into the text of a message is one."""

    def record(self, messages: list) -> Path:
        db = self.tmp / f"{self.id().rsplit('.', 1)[-1]}.db"
        f = self.fake("good")
        with h.Mailtap(f.address, ca_file=self.pki.ca_cert, db=db) as mt:
            for m in messages:
                h.smtplib_send(mt.port, m)
        return db

    def audit(self, db: Path, expect: int) -> str:
        cp = subprocess.run([str(h.mailtap_bin()), "audit", "--db", str(db)], capture_output=True,
                            timeout=120)
        out = cp.stdout.decode()
        self.assertEqual(cp.returncode, expect, out + cp.stderr.decode())
        return out

    @staticmethod
    def message(subject: str, text: str, attachment: bytes = b"", subtype: str = "") -> bytes:
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "alice@example.test", "carol@example.test", subject
        m.set_content(text)
        if attachment:
            maintype, sub = subtype.split("/")
            m.add_attachment(attachment, maintype=maintype, subtype=sub, filename="file")
        return m.as_bytes()

    def test_attachments_are_no_leaked_credentials(self):
        rng = random.Random(1)
        strings = b"".join(b"_ZN7mailtap5tools%dscan_for_credentialsEv\0" % (i * 7919)
                           for i in range(30000))  # about 1.3 MB of symbol names
        db = self.record([
            self.message("photo", "Photo attached.\n", rng.randbytes(2_000_000), "image/jpeg"),
            self.message("program", "The build.\n", strings, "application/octet-stream"),
        ])
        out = self.audit(db, 0)
        self.assertIn("Credentials in the record\n  none found", out)
        self.assertNotIn("LEAK", out)

    def test_a_plain_blob_pasted_into_a_message_is_found(self):
        blob = h.auth_plain("jörg", "pässwörd-1")
        db = self.record([self.message("login", f"My login, in case:\n{blob}\nThanks\n")])
        out = self.audit(db, 3)
        self.assertIn('base64 SASL PLAIN blob (user "jörg")', out)
        self.assertNotIn("pässwörd", out)


class UnwritableStdoutTest(h.IntegrationCase):
    """Standard output that cannot be written: a full disk (`> /dev/full`), or a pipe whose
    reader has gone while SIGPIPE is ignored. Every tool says so once on stderr, as
    `mailtap: TOOL: stdout: <why>`, stops there, and exits with its documented status; a prune
    whose report is lost after its deletion committed says so apart (status 4)."""

    SESSIONS = 30  # of 80 KiB each: an mbox of them is far more than a pipe holds

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "out.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                for i in range(cls.SESSIONS):
                    h.smtplib_send(mt.port, h.large_message(80 * 1024) + b"session %d\r\n" % i)
        finally:
            sink.close()
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True)
        cls.sessions = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
        con.close()

    def copy_db(self, name: str) -> Path:
        return copy_recorded_db(self.db, self.tmp / name)

    def to_dev_full(self, *args, db=None, expect=1, stdin=b"") -> str:
        """Runs `mailtap ARGS` (with --db unless db is False) writing to /dev/full; its stderr,
        after checking the status and that the failure is said exactly once."""
        cmd = [str(h.mailtap_bin()), *args]
        if db is not False:
            cmd += ["--db", str(db or self.db)]
        env = dict(os.environ)
        env.pop("MAILTAP_DB", None)
        with open("/dev/full", "wb") as full:
            cp = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, input=stdin,
                                timeout=60, env=env)
        err = cp.stderr.decode(errors="replace")
        self.assertEqual(cp.returncode, expect, f"{' '.join(cmd)}: {err}")
        tool = args[0]
        said = f"mailtap: {tool}: stdout: No space left on device\n"
        self.assertEqual(err.count(said), 1, f"{' '.join(cmd)}: {err!r}")
        self.assertEqual(err.count("stdout:"), 1, f"said once: {err!r}")
        return err

    def test_every_tool_says_why_its_output_failed(self):
        sid = str(self.sessions[0])
        for args in (("sessions",), ("sessions", "--json"), ("show", sid),
                     ("show", sid, "--json"), ("show", sid, "--raw"),
                     ("show", sid, "--message", "1"), ("audit",), ("audit", "--json"),
                     ("prune", "--keep", "1", "--dry-run"), ("export", sid),
                     ("export", "--all", "--format", "mbox")):
            with self.subTest(args=args):
                self.to_dev_full(*args)
        self.to_dev_full("explain", "550", db=False)
        self.to_dev_full("decode", "AUTH LOGIN", db=False)
        self.to_dev_full("encode", "plain", "alice", "--password-cmd", "echo s3cret", db=False)
        # The .eml files are written; the list of their paths on stdout is what fails.
        self.to_dev_full("export", "--all", "--format", "eml", "-o", str(self.tmp / "emls"))
        self.assertEqual(len(list((self.tmp / "emls").iterdir())), 1, "stopped at the first")
        # Nothing to reach on port 1: the report of that is what cannot be written.
        self.to_dev_full("probe", "127.0.0.1:1", "--tls", "none", db=False)

    def test_print_config_help_and_version_say_why_their_output_failed(self):
        """`--print-config > saved.toml` on a full disk left a cut file and exit status 0."""
        for args in (["proxy", "--print-config", "--no-record", "--config", "/dev/null"],
                     ["--version"], ["--help"], ["proxy", "--help"]):
            with self.subTest(args=args):
                with open("/dev/full", "wb") as full:
                    cp = subprocess.run([str(h.mailtap_bin()), *args], stdout=full,
                                        stderr=subprocess.PIPE, timeout=60)
                err = cp.stderr.decode(errors="replace")
                self.assertEqual(cp.returncode, 1, err)
                self.assertEqual(err.count("stdout: No space left on device\n"), 1, err)

    def test_a_prune_whose_report_is_lost_still_deleted_and_says_so(self):
        db = self.copy_db("pruned.db")
        err = self.to_dev_full("prune", "--keep", "10", db=db, expect=4)
        removed = self.SESSIONS - 10
        self.assertIn(f"mailtap: prune: removed {removed} sessions all the same; only this list "
                      "of them is lost", err)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        self.assertEqual(con.execute("SELECT count(*) FROM sessions").fetchone()[0], 10)
        con.close()
        # --json alike.
        err = self.to_dev_full("prune", "--keep", "4", "--json", db=db, expect=4)
        self.assertIn("removed 6 sessions all the same", err)

    def test_an_export_whose_reader_has_gone_stops_there(self):
        """SIGPIPE ignored (as a parent may leave it): the write after the reader closed the
        pipe fails with EPIPE, and the export stops there instead of reading every remaining
        session for nobody. The last session's body file is gone: reading on would say so."""
        db = self.copy_db("reader-gone.db")
        Path(f"{db}-bodies", str(self.sessions[-1])).unlink()
        for fmt in ("mbox", "jsonl", "json"):
            with self.subTest(format=fmt):
                proc = subprocess.Popen(
                    [str(h.mailtap_bin()), "export", "--all", "--format", fmt, "--db", str(db)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, restore_signals=False)
                self.assertEqual(len(proc.stdout.read(100)), 100)
                proc.stdout.close()
                started = time.monotonic()
                err = proc.stderr.read().decode(errors="replace")
                proc.stderr.close()
                self.assertEqual(proc.wait(timeout=60), 1, err)
                self.assertLess(time.monotonic() - started, 5, "ended promptly")
                self.assertEqual(err, "mailtap: export: stdout: Broken pipe\n")


class SessionsDatesTest(h.IntegrationCase):
    """`sessions --since`: a local time with its offset from UTC names the instant it means, and
    sessions.md's sample of a refused date is what `sessions` prints (the refusal came to name
    the offset forms, +01:00, +0100 and +01, and the sample kept the old list of forms)."""

    def test_the_sample_is_what_sessions_prints(self):
        text = (h.REPO_ROOT / "docs/tools/sessions.md").read_text()
        sample = re.search(r"\n\$ mailtap sessions --since yesterday\n(mailtap: [^\n]*\n)"
                           r"\$ echo \$\?\n(\d)\n", text)
        cp = subprocess.run([str(h.mailtap_bin()), "sessions", "--since", "yesterday", "--db",
                             str(self.tmp / "none.db")], capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual((cp.stderr, cp.returncode), (sample.group(1), int(sample.group(2))))

    def test_a_local_time_with_an_hours_offset_is_the_instant_it_names(self):
        """ToolsReadOnlyTest's +01 check compares two instants before every session it holds,
        which lists them all however +01 is read. Here the listing turns on the microsecond
        the session started, written as the local time at +01 and at -05."""
        db = self.tmp / "offset.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db) as mt:
                h.smtplib_send(mt.port, b"Subject: offset\r\n\r\nhello\r\n")
        finally:
            sink.close()
        with contextlib.closing(sqlite3.connect(str(db))) as con:
            [(sid, started)] = con.execute("SELECT id, started_at FROM sessions").fetchall()
        at = datetime.datetime.strptime(started, "%Y-%m-%dT%H:%M:%S.%fZ")

        def listed(when: datetime.datetime, hours: int) -> list:
            local = (when + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%f")
            cp = subprocess.run([str(h.mailtap_bin()), "sessions", "--json", "--since",
                                 f"{local}{hours:+03d}", "--db", str(db)], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            return [s["id"] for s in json.loads(cp.stdout)]
        later = at + datetime.timedelta(microseconds=1)
        for hours in (1, -5):
            with self.subTest(offset=f"{hours:+03d}"):
                self.assertEqual(listed(at, hours), [sid])
                self.assertEqual(listed(later, hours), [])


class AuditJsonSampleTest(h.IntegrationCase):
    """audit.md's `audit --json` sample (its first 20 lines) lists the keys audit writes, in their
    order: it lacked removed_while_auditing, which audit writes after integrity, empty or not."""

    def test_the_sample_s_keys_are_the_first_audit_writes(self):
        db = self.tmp / "audit-sample.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db) as mt:
                h.smtplib_send(mt.port, b"Subject: audit\r\n\r\nhello\r\n")
        finally:
            sink.close()
        text = (h.REPO_ROOT / "docs/tools/audit.md").read_text()
        sample = re.search(r"\n\$ mailtap audit --db leaky\.db --json \| python3 -m json\.tool "
                           r"\| head -20\n(.*?)```", text, re.S).group(1)
        self.assertEqual(len(sample.splitlines()), 20)
        keys = re.findall(r'(?m)^    "(\w+)":', sample)
        cp = subprocess.run([str(h.mailtap_bin()), "audit", "--json", "--db", str(db)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(keys, list(json.loads(cp.stdout))[:len(keys)])


class ExportTruncatedTest(h.IntegrationCase):
    """A message longer than --max-body is recorded cut short: every export that writes it says
    so on stderr (export.md), exit status 0. `eml` to one file or to stdout wrote the cut body
    silently, a file that passed for the whole message; mbox warned, a directory's listing too."""

    def test_every_export_of_a_truncated_message_says_so(self):
        db = self.tmp / "truncated.db"
        body = b"Subject: cut\r\n\r\n" + b"x" * 300 + b"\r\n"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db,
                           extra_args=["--max-body", "64"]) as mt:
                h.smtplib_send(mt.port, body)
        finally:
            sink.close()
        warning = "mailtap: export: warning: session 1 message 1 is truncated in the record"
        out = self.tmp / "truncated-out"
        out.mkdir()
        for name, args in (("eml to a file", ["--format", "eml", "-o", str(out / "one.eml")]),
                           ("eml to stdout", ["--format", "eml"]),
                           ("mbox", ["--format", "mbox", "-o", str(out / "one.mbox")])):
            with self.subTest(name):
                cp = subprocess.run([str(h.mailtap_bin()), "export", "1", *args, "--db", str(db)],
                                    capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertIn(warning, cp.stderr.decode().splitlines())
        self.assertEqual((out / "one.eml").read_bytes(), body[:64], "written as recorded")
        cp = subprocess.run([str(h.mailtap_bin()), "export", "1", "--format", "eml", "-o",
                             str(out / "dir") + "/", "--db", str(db)],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout,
                         f"{out}/dir/session-1-message-1.eml  (truncated in the record)\n")


if __name__ == "__main__":
    h.main()
