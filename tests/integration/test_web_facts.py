#!/usr/bin/env python3
"""What `mailtap web` says about a session, in headless Chromium, checked against what the
record holds and what `mailtap show` prints of it: a refused recipient is shown refused, a reply
is explained as show explains it, the client's TLS is in the facts, a `--tls none` rewrite note
does not claim a TLS link, a running session's byte counts are not stated as 0, the server's
greeting stays outside the folded pre-TLS exchange, and `outcome=open` selects as `mailtap
sessions --outcome open` does.  Skips (exit 77) when Chromium cannot start or without root."""

import json
import os
import sqlite3
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Imported first: it runs this file again under Debian's Python when CMake found one without
# selenium, before the harness takes MAILTAP_BIN out of the environment.
import test_web_browser as browser  # noqa: E402
import harness as h  # noqa: E402
import web_support as w  # noqa: E402

# What Gmail answers a wrong password with: a reply whose text names the server.
GMAIL_535 = (b"535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
             b"535 5.7.8  https://support.google.com/mail/?p=BadCredentials x1-20020a gsmtp\r\n")
# A server in plain text that offers STARTTLS (which mailtap removes under --tls none) and AUTH.
PLAIN_EHLO = b"250-fake.example.test\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"


class WebFactsTest(browser.BrowserCase):
    with_postfix = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.refused_session = cls.record_refused_recipient()
        cls.plain_session = cls.record_plain_upstream_tls_client()
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))
        cls.base = f"http://localhost:{cls.web.port}/"

    @classmethod
    def last_session(cls) -> int:
        return max(s["id"] for s in cls.sessions())

    @classmethod
    def sessions(cls, query: str = "") -> list:
        out = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", str(cls.db), "--json",
                              "--limit", "0", *query.split()], capture_output=True, text=True,
                             check=True).stdout
        return json.loads(out)

    @classmethod
    def record_refused_recipient(cls) -> int:
        """Through Postfix (STARTTLS upstream): one recipient refused with 550, one accepted."""
        with h.Mailtap(cls.postfix.submission, ca_file=cls.pki.ca_cert, db=cls.db) as mt:
            tok = h.unique_token("facts")
            refused = h.smtplib_send(mt.port, h.make_message(tok, to_addr="bob@example.test"),
                                     rcpts=("nobody@example.test", "bob@example.test"),
                                     user=w.BOB[0], password=w.BOB[1])
            if "nobody@example.test" not in refused:
                raise RuntimeError(f"Postfix did not refuse nobody@: {refused!r}")
        return cls.last_session()

    @classmethod
    def record_plain_upstream_tls_client(cls) -> int:
        """`--tls none` to a server offering STARTTLS and answering AUTH as Gmail does to a
        wrong password; the client reaches mailtap over TLS (`--local-tls implicit`)."""
        fake = cls._stack.enter_context(h.FakeServer(
            "good", cls.pki, replies={"EHLO": PLAIN_EHLO, "AUTH": GMAIL_535}))
        config_home = Path(tempfile.mkdtemp(prefix="xdg-config-", dir=cls.tmp))
        with h.Mailtap(fake.address, tls="none", db=cls.db, tls_name=None,
                       extra_args=["--local-tls", "implicit"],
                       env={"XDG_CONFIG_HOME": str(config_home)}) as mt:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = h.SmtpSocket(mt.port, connect=False)
            c.sock = ctx.wrap_socket(h.socket.create_connection(("127.0.0.1", mt.port), 15),
                                     server_hostname="localhost")
            with c:
                assert c.reply().code == 220
                assert c.cmd("EHLO client.test").code == 250
                assert c.cmd("AUTH PLAIN " + h.auth_plain("alice", "wrong")).code == 535
                assert c.cmd("QUIT").code == 221
        return cls.last_session()

    def wait(self, condition, timeout=20, message=""):
        return browser.WebDriverWait(
            self.driver, timeout,
            ignored_exceptions=(browser.StaleElementReferenceException,)).until(
            lambda d: condition(d), message)

    def open_session(self, sid: int):
        self.driver.get(f"{self.base}#/session/{sid}")
        self.wait(lambda d: d.find_elements(browser.By.ID, "transcript") and
                  f"Session {sid}" in d.find_element(browser.By.TAG_NAME, "h1").text,
                  message=f"session {sid} shown")

    def facts(self) -> dict:
        """Every fact of the session's page (name -> text), the TLS section's prefixed."""
        return self.driver.execute_script("""
            const out = {};
            document.querySelectorAll('dl.facts').forEach((dl, i) => {
              dl.querySelectorAll('dt').forEach((dt) => {
                out[(i ? 'tls ' : '') + dt.textContent] = dt.nextElementSibling.textContent;
              });
            });
            return out;""")

    def show(self, sid: int) -> str:
        return subprocess.run([str(h.mailtap_bin()), "show", "--db", str(self.db), str(sid),
                               "--color", "never"], capture_output=True, text=True,
                              check=True).stdout

    def start_running_session(self, c) -> int:
        """EHLO through `c` (a client of a proxy on Postfix); the id of its session once the
        record has it."""
        self.assertEqual(c.reply().code, 220)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd("NOOP").code, 250)
        return self.wait(lambda d: [s["id"] for s in self.sessions("--outcome in_progress")],
                         message="the running session recorded")[0]

    def test_refused_recipient_is_shown_refused(self):
        self.open_session(self.refused_session)
        summary = self.driver.execute_script(
            "return [...document.querySelectorAll('main p')].map((p) => p.textContent)"
            ".find((t) => t.startsWith('Message 1'))")
        self.assertIn("nobody@example.test", summary)
        refused = summary.split("nobody@example.test", 1)[1].split(",")[0]
        self.assertIn("550", refused, summary)
        accepted = summary.split("bob@example.test", 1)[1]
        self.assertIn("250", accepted, summary)

    def test_a_reply_is_explained_as_show_explains_it(self):
        sid = self.plain_session
        shown = [l.strip() for l in self.show(sid).splitlines() if l.strip().startswith("# 535")]
        self.assertEqual(len(shown), 1, self.show(sid))
        self.open_session(sid)
        page = self.driver.execute_script(
            "const box = [...document.querySelectorAll('.explain')]"
            ".find((b) => b.textContent.startsWith('535'));"
            "return box && box.firstChild.textContent;")
        self.assertIn("Gmail", page)
        self.assertEqual("# " + page, shown[0])

    def test_the_client_legs_tls_is_in_the_facts_and_the_list(self):
        sid = self.plain_session
        version = [s for s in self.sessions() if s["id"] == sid][0]["client_tls_version"]
        self.assertTrue(version.startswith("TLSv1"), version)
        self.assertIn(f"({version})", self.show(sid).splitlines()[1])
        self.open_session(sid)
        facts = self.facts()
        self.assertIn(version, facts["client"], facts)
        self.driver.get(self.base)
        cell = self.wait(lambda d: d.execute_script(
            "const r = document.querySelector(`tr[data-id='${arguments[0]}']`);"
            "return r && r.children[4].textContent;", str(sid)), message="the session listed")
        self.assertIn(version, cell)

    def test_a_tls_none_rewrite_note_does_not_claim_a_tls_link(self):
        sid = self.plain_session
        self.open_session(sid)
        rewrite = self.driver.execute_script(
            "return [...document.querySelectorAll('.line[data-kind=rewrite]')]"
            ".map((l) => l.textContent).join('\\n')")
        self.assertIn("STARTTLS removed", rewrite)
        self.assertNotIn("TLS link", rewrite)
        self.assertIn("--tls none", rewrite)
        show = [l for l in self.show(sid).splitlines() if "STARTTLS removed" in l]
        self.assertTrue(show)
        self.assertNotIn("TLS link", show[0])

    def test_verified_as_only_for_a_certificate_that_was(self):
        """"verified as" names the name a certificate was verified for; one refused was only
        checked against it, and says so."""
        self.open_session(self.refused_session)  # through Postfix, its certificate verified
        facts = self.facts()
        self.assertEqual(facts.get("tls verified as"), "localhost", facts)
        self.assertNotIn("tls checked against", facts)
        fake = self._stack.enter_context(h.FakeServer("self_signed", self.pki))
        with h.Mailtap(fake.address, ca_file=self.pki.ca_cert, db=self.db) as mt:
            with h.SmtpSocket(mt.port) as c:
                self.assertEqual(c.reply().code, 421)
        self.open_session(self.last_session())
        facts = self.facts()
        self.assertNotIn("tls verified as", facts)
        self.assertEqual(facts.get("tls checked against"), "localhost", facts)
        self.assertIn("self-signed", facts.get("tls verification", ""), facts)

    def test_the_greeting_is_not_folded_with_mailtaps_own_exchange(self):
        self.open_session(self.refused_session)
        folded = self.driver.execute_script(
            "return [...document.querySelectorAll('details.pretls .line')]"
            ".map((l) => l.querySelector('.who').textContent + ' ' +"
            " l.querySelector('.text').firstChild.textContent)")
        self.assertTrue(folded, "mailtap's pre-TLS exchange is folded")
        self.assertTrue(all(f.split(" ")[0] in ("M>", "S>", "~~") for f in folded), folded)
        first = self.driver.execute_script(
            "const l = document.querySelector('#transcript > .line:not(.note)');"
            "return l.querySelector('.who').textContent + ' ' + l.querySelector('.text').textContent")
        self.assertTrue(first.startswith("S: 220 "), first)

    def test_a_note_written_after_the_end_is_marked_as_show_marks_it(self):
        # A note of what the client sent after its last reply is written once the record is
        # closed, its time past ended_at: the page marks it [after the end], as `mailtap show`
        # does, and nothing before the end. In a copy of the record, the note added by hand.
        copy = self.tmp / "after-end.db"
        src, dst = sqlite3.connect(self.db), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        sid = self.refused_session
        with dst:
            ended = dst.execute("SELECT ended_at FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
            seq = dst.execute("SELECT max(seq) FROM events WHERE session_id = ?",
                              (sid,)).fetchone()[0]
            dst.execute("INSERT INTO events (session_id, seq, at, direction, phase, kind, bytes, "
                        "wire_size, redacted, note) SELECT session_id, ?, "
                        "strftime('%Y-%m-%dT%H:%M:%f', ?, '+2 seconds') || '000Z', "
                        "'mailtap_note', phase, 'note', x'', 0, 0, "
                        "'6 octets the client sent after the end were discarded unread' "
                        "FROM events WHERE session_id = ? AND seq = ?", (seq + 1, ended, sid, seq))
        dst.close()
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(sid), "--db", str(copy)],
                               capture_output=True, text=True, check=True).stdout
        [show_line] = [ln for ln in shown.splitlines() if "after the end were discarded" in ln]
        self.assertIn("[after the end] ", show_line)
        with w.WebServer(copy) as web:
            self.driver.get(f"http://localhost:{web.port}/#/session/{sid}")
            self.wait(lambda d: "after the end were discarded" in
                      d.find_element(browser.By.ID, "transcript").text, message="the note shown")
            lines = self.driver.execute_script(
                "return [...document.querySelectorAll('#transcript .line')].map((l) => "
                "[l.querySelector('.text').textContent, "
                "[...l.querySelectorAll('.tag')].map((t) => t.textContent)])")
        marked = [text for text, tags in lines if "[after the end]" in tags]
        self.assertEqual(len(marked), 1, lines)
        self.assertIn("after the end were discarded", marked[0])

    def test_a_running_or_cut_session_states_no_byte_count(self):
        with h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, db=self.db) as mt, \
                h.SmtpSocket(mt.port) as c:
            running = self.start_running_session(c)
            self.open_session(running)
            self.assertIn("running", self.driver.find_element(browser.By.TAG_NAME, "h1").text)
            self.assertEqual(self.facts()["bytes"], "counted when the session ends")
            mt.proc.kill()  # its writer gone, the session is cut: it will never be counted
            mt.proc.wait()
        self.driver.refresh()
        self.wait(lambda d: "cut" in d.find_element(browser.By.TAG_NAME, "h1").text, message="cut shown")
        self.assertIn("not counted", self.facts()["bytes"])
        self.assertNotIn("0 to the server", self.facts()["bytes"])

    def test_outcome_open_selects_the_sessions_without_an_end(self):
        with h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, db=self.db) as mt, \
                h.SmtpSocket(mt.port) as c:
            running = self.start_running_session(c)
            # As `mailtap sessions --outcome open`: every session without an end.
            cli = [s["id"] for s in self.sessions("--outcome open")]
            self.assertIn(running, cli)
            api = w.request(self.web.port, "/api/sessions?outcome=open")
            self.assertEqual(api.status, 200, api.body)
            self.assertEqual([s["id"] for s in api.json()["sessions"]], cli)
            self.driver.get(f"{self.base}#/?outcome=open")
            self.wait(lambda d: d.execute_script(
                "return [...document.querySelectorAll('#sessions tbody tr')].map((r) => r.dataset.id)")
                == [str(i) for i in cli], message="the sessions without an end listed")
            self.assertEqual(self.driver.find_element(browser.By.NAME, "outcome").get_attribute("value"), "open")


if __name__ == "__main__":
    h.main()
