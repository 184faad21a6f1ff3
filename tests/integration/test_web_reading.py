#!/usr/bin/env python3
"""`mailtap web` in headless Chromium, as a reader uses it beside a recording proxy: each test
says in its name what the reader can count on.  Skips (exit 77) only when Chromium cannot be
started at all (see test_web_browser.py)."""

import datetime
import os
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Its import runs this file again under Debian's Python when this one lacks python3-selenium;
# its browser and selenium's names are used from there.
import test_web_browser as browser  # noqa: E402
import harness as h  # noqa: E402
import web_support as w  # noqa: E402

# Which session's link has the focus (the id of its row), and the text selected.
FOCUS = """
const a = document.activeElement;
const row = a && a.closest('#sessions tbody tr');
return {tag: a ? a.tagName : null, row: row ? row.dataset.id : null,
        text: a ? a.textContent : null, selected: String(window.getSelection())};
"""


class ReadingBrowserTest(browser.BrowserCase):
    """One proxy (plain upstream: a sink) recording into a database the page reads; the tests
    run in order, the first on the record still empty."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.sink = h.BodySink()
        cls._stack.callback(cls.sink.close)
        cls.proxy = cls._stack.enter_context(h.Mailtap(cls.sink.address, tls="none", db=cls.db))
        deadline = time.monotonic() + 10
        while not cls.db.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))
        cls.base = f"http://localhost:{cls.web.port}/"

    wait = browser.WebBrowserTest.wait
    row_ids = browser.WebBrowserTest.row_ids

    def send(self, n=1):
        for _ in range(n):
            h.smtplib_send(self.proxy.port, h.make_message(h.unique_token("reading")))

    def status(self) -> str:
        return self.driver.execute_script(
            "const p = document.querySelector('#view > p'); return p && p.textContent")

    def open_list(self, fragment="#/"):
        self.driver.get(self.base + fragment)
        self.wait(lambda d: self.status() not in (None, "Loading…"), message="the list loaded")
        self.wait(lambda d: d.find_element(browser.By.ID, "live").text == "live")

    def running_session_page(self, client, noops=0):
        """The page of the session `client` runs (after `noops` NOOPs), once it is live."""
        d = self.driver
        client.ehlo()
        for _ in range(noops):
            client.noop()
        sid = self.wait(lambda d: next((s["id"] for s in w.request(
            self.web.port, "/api/sessions?outcome=in_progress").json()["sessions"]), None),
            message="the running session recorded")
        d.get(f"{self.base}#/session/{sid}")
        self.wait(lambda d: d.find_elements(browser.By.CSS_SELECTOR, "h1 .badge.warn"),
                  message="the running session shown")
        self.wait(lambda d: d.find_element(browser.By.ID, "live").text == "live")
        self.wait(lambda d: len(d.find_elements(browser.By.CSS_SELECTOR, "#transcript .line"))
                  >= 2 * noops, message="its lines shown")
        return sid

    def test_1_an_empty_record_says_nothing_is_recorded_yet(self):
        self.open_list()
        status = self.status()
        self.assertNotIn("match", status, "no filter is set: none hid a session")
        self.assertIn("No session recorded yet", status)
        self.assertIn("as the proxy records", status)
        # With a filter set, it is the filter that finds none.
        self.open_list("#/?user=nobody")
        self.assertIn("No sessions match these filters", self.status())

    def test_2_focus_and_selection_stay_while_sessions_arrive(self):
        self.send(3)
        d = self.driver
        self.open_list()
        self.wait(lambda d: len(self.row_ids()) >= 3, message="three sessions listed")
        ids = self.row_ids()
        # The reader tabbed to the second session's link and selected the first one's client.
        d.execute_script("document.querySelector(`tr[data-id='${arguments[0]}'] a`).focus();"
                         "window.getSelection().selectAllChildren("
                         "document.querySelector(`tr[data-id='${arguments[1]}'] "
                         "td:nth-child(3)`));",
                         ids[1], ids[0])
        before = d.execute_script(FOCUS)
        self.assertEqual((before["tag"], before["row"]), ("A", ids[1]))
        self.assertTrue(before["selected"].startswith("127.0.0.1:"), before)  # the client
        self.send()
        self.wait(lambda d: len(self.row_ids()) == len(ids) + 1, message="the new session listed")
        after = d.execute_script(FOCUS)
        self.assertEqual((after["tag"], after["row"]), ("A", ids[1]),
                         "the focus stays on the session link it was on")
        self.assertEqual(after["selected"], before["selected"], "the selection stays")

        # A session still running, focused, ends: its row is updated, the focus stays on it.
        client = smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.test",
                              timeout=30)
        try:
            client.ehlo()
            self.wait(lambda d: d.find_elements(browser.By.CSS_SELECTOR, "#sessions tr.running"),
                      message="the running session listed")
            running = d.execute_script("const r = document.querySelector('#sessions tr.running');"
                                       "r.querySelector('a').focus(); return r.dataset.id;")
            client.quit()
        finally:
            client.close()
        self.wait(lambda d: d.execute_script(
            "const r = document.querySelector(`tr[data-id='${arguments[0]}']`);"
            "return r && !r.classList.contains('running');", running),
            message="the session's end shown")
        after = d.execute_script(FOCUS)
        self.assertEqual((after["tag"], after["row"]), ("A", running))

    def test_3_a_running_sessions_page_keeps_the_focus_as_it_grows(self):
        d = self.driver
        client = smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.test",
                              timeout=30)
        try:
            self.running_session_page(client)
            lines = len(d.find_elements(browser.By.CSS_SELECTOR, "#transcript .line"))
            d.find_element(browser.By.LINK_TEXT, "Download as JSON")  # there
            d.execute_script("[...document.querySelectorAll('a')].find("
                             "(a) => a.textContent === 'Download as JSON').focus()")
            client.noop()
            self.wait(lambda d: len(d.find_elements(browser.By.CSS_SELECTOR,
                                                    "#transcript .line")) > lines,
                      message="the page grew")
            self.assertEqual(d.execute_script(FOCUS)["text"], "Download as JSON")
        finally:
            client.quit()
            client.close()

    def test_4_times_say_utc_and_since_takes_an_offset(self):
        self.send()
        d = self.driver
        self.open_list()
        headers = [th.text for th in d.find_elements(browser.By.CSS_SELECTOR, "#sessions th")]
        self.assertIn("Started (UTC)", headers)
        labels = {label.text.strip(): label for label in
                  d.find_elements(browser.By.CSS_SELECTOR, ".filters label")}
        self.assertIn("Since (UTC)", labels)
        self.assertIn("Until (UTC)", labels)
        # The newest session's start, written in New York time (-05:00) a minute before and
        # a minute after: read as UTC, both would select it (they are 5 hours earlier).
        newest = w.request(self.web.port, "/api/sessions?limit=1").json()["sessions"][0]
        started = datetime.datetime.fromisoformat(newest["started_at"].replace("Z", "+00:00"))
        new_york = datetime.timezone(datetime.timedelta(hours=-5))

        def since(minutes):
            at = (started + datetime.timedelta(minutes=minutes)).astimezone(new_york)
            return at.strftime("%Y-%m-%dT%H:%M%z")[:-2] + ":00"

        box = d.find_element(browser.By.CSS_SELECTOR, ".filters input[name=since]")
        box.send_keys(since(-1))
        self.wait(lambda d: str(newest["id"]) in self.row_ids(), message="since a minute before")
        box.clear()
        box.send_keys(since(1))
        self.wait(lambda d: "No sessions match" in (self.status() or ""),
                  message="since a minute after: none")
        self.assertNotIn("Could not load", self.status())

    def test_5_an_unknown_address_says_so_and_each_view_has_its_title(self):
        self.send()
        d = self.driver
        sid = w.request(self.web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"]
        for fragment in (f"#/sesion/{sid}", "#/session/abc", "#/bogus"):
            d.get(self.base + fragment)
            self.wait(lambda d: d.find_elements(browser.By.CSS_SELECTOR, "#view .error"),
                      message=f"{fragment} said not found")
            error = d.find_element(browser.By.CSS_SELECTOR, "#view .error").text
            self.assertIn(f"No page at {fragment}", error)
            self.assertFalse(d.find_elements(browser.By.ID, "sessions"), "not the list instead")
            self.assertEqual(d.title, "Not found — mailtap")
        for fragment, title in (("#/", "Sessions — mailtap"),
                                (f"#/session/{sid}", f"Session {sid} — mailtap"),
                                (f"#/session/{sid}/message/1",
                                 f"Message 1 of session {sid} — mailtap"),
                                ("#/audit", "Audit — mailtap")):
            d.get(self.base + fragment)
            self.wait(lambda d: d.title == title, message=f"{fragment} titled {title}")

    def test_6_a_running_sessions_page_keeps_the_selection_and_scroll_as_it_grows(self):
        # A reader copying a reply line from a live session, scrolled down to it: the lines
        # arriving meanwhile take neither the selection nor the place on the page away.
        d = self.driver
        client = smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.test",
                              timeout=30)
        try:
            self.running_session_page(client, noops=40)  # taller than the window
            before = d.execute_script("""
                const replies = document.querySelectorAll('#transcript > .line.server .text');
                const line = replies[Math.floor(replies.length / 2)];
                line.scrollIntoView({block: 'center'});
                window.getSelection().selectAllChildren(line);
                return {selected: String(window.getSelection()), y: window.scrollY,
                        seq: line.closest('.line').dataset.seq,
                        lines: document.querySelectorAll('#transcript .line').length};""")
            self.assertTrue(before["selected"].startswith("250 "), before)
            self.assertGreater(before["y"], 0, "the page is scrolled")
            client.noop()
            self.wait(lambda d: len(d.find_elements(browser.By.CSS_SELECTOR, "#transcript .line"))
                      > before["lines"], message="the page grew")
            after = d.execute_script("""
                const selection = window.getSelection();
                const line = selection.anchorNode && selection.anchorNode.isConnected &&
                    selection.anchorNode.parentElement.closest('.line');
                return {selected: String(selection), y: window.scrollY,
                        seq: line ? line.dataset.seq : null};""")
            self.assertEqual(after["selected"], before["selected"], "the selection stays")
            self.assertEqual(after["seq"], before["seq"], "on the line it was made in")
            self.assertEqual(after["y"], before["y"], "the page stays where it was scrolled to")
        finally:
            client.quit()
            client.close()

    def test_7_what_changes_by_itself_is_announced_politely(self):
        # A screen reader hears what arrives (aria-live="polite"), not the whole list or
        # transcript again: the live regions are the small parts docs/web.md names.
        d = self.driver
        live_of = "return document.querySelector(arguments[0])?.getAttribute('aria-live') ?? null"
        self.open_list()
        self.assertEqual(d.execute_script(live_of, "#live"), "polite")
        self.assertEqual(d.execute_script(live_of, "#view > p"), "polite", "the status line")
        for large in ("#view", "#sessions", "#sessions tbody"):
            self.assertIsNone(d.execute_script(live_of, large), large)
        ids = self.row_ids()
        self.send()
        self.wait(lambda d: len(self.row_ids()) == len(ids) + 1, message="the new session listed")
        new = self.row_ids()[0]
        self.wait(lambda d: f"New session {new} from 127.0.0.1:" in self.status(),
                  message="the status line names the session that arrived")

        client = smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.test",
                              timeout=30)
        try:
            self.running_session_page(client)
            self.assertEqual(d.execute_script(live_of, "#transcript"), "polite")
            self.assertEqual(d.execute_script(
                "return document.getElementById('transcript').getAttribute('aria-relevant')"),
                "additions", "only the lines that arrive are read, not the transcript again")
            self.assertEqual(d.execute_script(live_of, "#session-outcome"), "polite")
            self.assertIsNone(d.execute_script(live_of, "#view"))
        finally:
            client.quit()
            client.close()
        self.wait(lambda d: d.find_element(browser.By.ID, "session-outcome").text.startswith("quit"),
                  message="the session's end said where the outcome is")


if __name__ == "__main__":
    h.main()
