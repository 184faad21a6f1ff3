"""Whose the record's files are (docs/recording.md, "Whose the files are"), through the real
proxy: in a directory everybody may write (mode 1777, like /tmp), a database, -wal, -shm or body
directory that another user (nobody) made first is refused at start-up, before mailtap listens,
and nothing is written into it or through links in it; the user's own files that others could
read or write are made private, whatever the umask.

mailtap runs as root here and the other user is nobody: the checks compare owners with the
effective uid, so root is held to them like anyone. Needs root (to give files to nobody).

And what the record keeps of a login (docs/recording.md, "Redaction"): a PLAIN user name that is
the password is no user name, it is the password; it reaches no file, transcript or log line.
"""

import os
import secrets
import stat
import sys
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import IntegrationCase, Mailtap, SmtpSocket, dot_stuff, main, make_message, start_data  # noqa: E402,E501
import test_recording as rec  # noqa: E402  (module import: its test classes do not run here)

NOBODY = 65534


def mode(p) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def planted(path: Path, content: bytes = b"", mode_bits: int = 0o666) -> Path:
    """A file nobody made, readable and writable by everyone."""
    path.write_bytes(content)
    os.chown(path, NOBODY, NOBODY)
    os.chmod(path, mode_bits)
    return path


@unittest.skipUnless(os.geteuid() == 0, "needs root, to make files another user owns")
class RecordingPrivacyTest(IntegrationCase):

    def shared_dir(self, name: str) -> Path:
        d = self.tmp / name
        d.mkdir()
        os.chmod(d, 0o1777)
        return d

    def start_refused(self, db: Path) -> Mailtap:
        fake = self.fake("good")
        m = Mailtap(fake.address, ca_file=self.pki.ca_cert, db=db, ready=False)
        m.start()
        self.addCleanup(m.__exit__, None, None, None)
        # Exit status 2: another user's file stays theirs, so the systemd unit does not
        # restart (RestartPreventExitStatus=2) what no restart mends.
        self.assertEqual(m.wait(20), 2, m.stderr)
        self.assertNotIn("listening on", m.stderr, "refuses before it listens")
        self.assertIn(f"cannot record to {db}", m.stderr)
        self.assertIn("--no-record", m.stderr, "says what to do")
        return m

    def test_a_database_wal_or_shm_another_user_made_is_refused(self):
        for names in (("mt.db", "mt.db-wal", "mt.db-shm"), ("mt.db-wal",), ("mt.db-shm",)):
            with self.subTest(planted=names):
                d = self.shared_dir("shared-" + "-".join(n.replace(".", "") for n in names))
                for n in names:
                    planted(d / n)
                m = self.start_refused(d / "mt.db")
                self.assertIn(f"'{d / names[0]}' is owned by uid {NOBODY}, not by the user "
                              "running mailtap", m.stderr)
                for n in names:
                    self.assertEqual((d / n).stat().st_size, 0, f"nothing written into {n}")
                    self.assertEqual(mode(d / n), 0o666, f"{n} is not mailtap's to change")
                self.assertFalse((d / "mt.db-bodies").exists())

    def test_a_body_directory_another_user_made_is_refused_and_its_links_not_followed(self):
        d = self.shared_dir("shared-bodies")
        victim = self.tmp / "important.txt"
        victim.write_bytes(b"victim's data\n")
        bodies = d / "mt.db-bodies"
        bodies.mkdir()
        for i in (1, 2, 3):
            (bodies / str(i)).symlink_to(victim)
            os.lchown(bodies / str(i), NOBODY, NOBODY)
        os.chown(bodies, NOBODY, NOBODY)
        os.chmod(bodies, 0o777)
        m = self.start_refused(d / "mt.db")
        self.assertIn(f"the body directory '{bodies}' is owned by uid {NOBODY}", m.stderr)
        self.assertEqual(victim.read_bytes(), b"victim's data\n")

    def test_links_another_user_made_at_the_database_path_are_refused(self):
        d = self.shared_dir("shared-link")
        elsewhere = self.tmp / "attacker"
        elsewhere.mkdir()
        os.chown(elsewhere, NOBODY, NOBODY)
        db = d / "mt.db"
        db.symlink_to(elsewhere / "loot.db")  # dangling: mailtap would make the file
        os.lchown(db, NOBODY, NOBODY)
        m = self.start_refused(db)
        self.assertIn(f"is a symbolic link made by uid {NOBODY}", m.stderr)
        self.assertEqual(list(elsewhere.iterdir()), [])

    def test_the_users_own_files_are_made_private_whatever_the_umask(self):
        """An existing database of the user's, 0644 (sqlite3, an older mailtap), and a run
        under umask 000 that records a large body: everything ends 0600, the directory 0700."""
        fake = self.fake("good")
        d = self.tmp / "own"
        d.mkdir()
        db = d / "mt.db"
        first = self.mailtap(fake.address, db=db)
        self.assertEqual(first.stop(), 0, first.stderr)
        os.chmod(db, 0o644)
        m = self.mailtap(fake.address, db=db, preexec_fn=lambda: os.umask(0))
        self.assertEqual(mode(db), 0o600)
        # A reader in another process before the first session: making the files private must
        # not have cost mailtap its SQLite locks (the reader would then truncate the -shm file
        # mailtap has mapped: SIGBUS).
        self.assertEqual(rec.query(db, "SELECT count(*) AS n FROM sessions")[0]["n"], 0)
        with SmtpSocket(m.port) as c:
            start_data(c)
            body = "".join(f"{i:06d} {'z' * 70}\r\n" for i in range(4000))  # past 64 KiB
            c.send(dot_stuff(make_message("private", body=body)) + b".\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        [s] = rec.wait_ended(db, 1)
        body_file = Path(f"{db}-bodies") / str(s["id"])
        self.assertEqual(mode(body_file), 0o600)
        self.assertEqual(mode(body_file.parent), 0o700)
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{db}{suffix}")
            if p.exists():
                self.assertEqual(mode(p), 0o600, p.name)


class UserNameHoldingThePasswordTest(IntegrationCase):

    def test_a_plain_user_name_that_is_the_password_is_not_recorded(self):
        """A client logs in with AUTH PLAIN whose user name and password are one word (an
        account set up so, or both fields filled with the password): the response is recorded
        redacted whole, the session has no user, and no form of the word is in the database,
        its WAL, the transcript or stderr."""
        fake = self.fake("good")
        word = "same-" + secrets.token_hex(8)
        m = self.mailtap(fake.address, extra_args=["--transcript"])
        with SmtpSocket(m.port) as c:
            start_data(c, auth=(word, word))
            c.send(dot_stuff(make_message("password-as-user")) + b".\r\n")
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        db = Path(m._tmp) / "mailtap.db"
        [s] = rec.wait_ended(db, 1)
        self.assertIsNone(s["auth_user"])
        blobs = rec.mailtap_files(db)
        self.assertIn("mailtap.db-wal", blobs, "the WAL is scanned while mailtap runs")
        blobs["transcript"] = m.stdout.encode()
        blobs["stderr"] = m.stderr.encode()
        forms = {f"form {i}": f for i, f in enumerate(rec.secret_forms(word.encode()))}
        self.assertEqual(rec.find_leaks(blobs, forms), [])
        self.assertIn("AUTH PLAIN [<redacted ", m.stdout, "the AUTH line is in the transcript")


if __name__ == "__main__":
    main()
