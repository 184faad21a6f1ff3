#!/usr/bin/env python3
"""`mailtap web` in headless Chromium (Debian's chromium + chromium-driver, driven by Debian's
python3-selenium): the list shows a session recorded a moment before, a new session appears
without reloading, the transcript shows the decoded AUTH LOGIN prompts, the redaction and an
explanation of the 535, a message's HTML part cannot run script nor make the browser contact a
host it names, the raw source says an error in words and shows octets that are not UTF-8 as
\\xHH, and a foreign Host header is refused.  Skips (exit 77) only when Chromium cannot be
started at all.

With MAILTAP_SCREENSHOTS=DIR (e.g. docs/web) it saves the list, session and message views
there as PNG files, for docs/web.md."""

import base64
import os
import select
import shutil
import socket
import sqlite3
import sys
import threading
import time
import unittest
import urllib.parse
from pathlib import Path

try:
    import selenium  # noqa: F401
except ImportError:
    # CMake may have found another Python than Debian's, which has python3-selenium.
    if os.path.exists("/usr/bin/python3") and not os.environ.get("MAILTAP_WEB_REEXEC") \
            and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        os.environ["MAILTAP_WEB_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import web_support as w  # noqa: E402

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = os.environ.get("MAILTAP_SCREENSHOTS")


def start_browser():
    """A headless Chromium, or a reason why none can start."""
    if webdriver is None:
        return None, "python3-selenium is not installed"
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return None, "chromium / chromium-driver are not installed"
    options = Options()
    options.binary_location = CHROMIUM
    # attacker.test resolves to loopback: the DNS rebinding attack, as the browser makes it.
    for arg in ["--headless=new", "--disable-gpu", "--window-size=1400,1000",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                "--host-resolver-rules=MAP attacker.test 127.0.0.1"]:
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    try:
        return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options), None
    except WebDriverException as e:
        return None, f"chromium could not start: {e.msg}"


class BrowserCase(h.IntegrationCase):
    """A test class with a headless Chromium (`cls.driver`), skipped when Chromium cannot start,
    quit when the class is done."""

    @classmethod
    def setUpClass(cls):
        driver, why = start_browser()
        if driver is None:
            raise unittest.SkipTest(why)
        cls.driver = driver
        super().setUpClass()
        cls._stack.callback(driver.quit)


class WebBrowserTest(BrowserCase):
    with_postfix = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.sent = w.record_web_database(cls.db, cls.pki, cls.postfix)
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))
        cls.base = f"http://localhost:{cls.web.port}/"

    def wait(self, condition, timeout=20, message=""):
        # The page replaces its view as it renders: an element found a moment ago may be gone
        # when it is read, which is "not yet", not a failure.
        return WebDriverWait(self.driver, timeout,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: condition(d), message)

    def rows(self):
        return self.driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")

    def row_ids(self) -> list[str]:
        """The session ids the list shows, top to bottom, read in one go."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#sessions tbody tr')].map((r) => r.dataset.id)")

    def shot(self, name):
        if SCREENSHOTS:
            os.makedirs(SCREENSHOTS, exist_ok=True)
            self.driver.save_screenshot(os.path.join(SCREENSHOTS, name))

    def session_id_with(self, predicate) -> int:
        """The oldest session matching `predicate`."""
        rows = w.request(self.web.port, "/api/sessions").json()["sessions"]
        return [r["id"] for r in rows if predicate(r)][-1]

    def test_transcript_shows_line_endings_and_control_octets_as_show_does(self):
        """intl18-F2: a bare LF in a BDAT chunk (kept as sent, RFC 3030) was drawn as a line
        break, like a CRLF, a bare CR vanished, and ESC, NUL and BEL went into the page raw.
        They are shown as `mailtap show` prints them (\\n, \\r, \\xHH), marked."""
        db = self.tmp / "endings.db"
        chunk = (b"Subject: endings\r\n\r\nbare1\nbare2\r\nlf\rcr\r\n"
                 b"esc \x1b[31mred nul a\x00b bel \x07\r\n")
        with h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, db=db) as mt:
            with h.SmtpSocket(mt.port) as c:
                c.cmd(b"EHLO h\x1b[2Jx")
                c.cmd(b"MAIL FROM:<sender@client.test>")
                c.cmd(b"RCPT TO:<bob@example.test>")
                c.cmd(b"BDAT %d LAST\r\n" % len(chunk) + chunk, eol=b"")
                c.cmd(b"QUIT")
        show = h.run([str(h.mailtap_bin()), "show", "1", "--db", str(db)]).stdout.decode()
        self.assertIn("bare1\\nbare2", show)
        with w.WebServer(db) as web:
            d = self.driver
            d.get(f"http://localhost:{web.port}/#/session/1")
            self.wait(lambda d: "bare1" in d.find_element(By.ID, "transcript").text)
            text = d.find_element(By.ID, "transcript").get_attribute("textContent")
            lines = d.find_element(By.ID, "transcript").text.splitlines()
            marked = d.execute_script("return [...document.querySelectorAll('#transcript .esc')]"
                                      ".map((e) => e.textContent)")
        for shown in ["EHLO h\\x1b[2Jx", "bare1\\nbare2", "lf\\rcr", "\\x1b[31mred",
                      "a\\x00b", "bel \\x07"]:
            self.assertIn(shown, text)
        self.assertEqual([c for c in text if ord(c) < 0x20 and c not in "\n\t"], [])
        self.assertNotIn("bare1", lines, "a bare LF drawn as a line break")
        self.assertTrue({"\\n", "\\r", "\\x1b", "\\x00", "\\x07"} <= set(marked), marked)

    def test_1_list_shows_recorded_sessions_and_a_new_one_without_reload(self):
        d = self.driver
        d.get(self.base)
        self.wait(lambda d: len(self.rows()) == 2, message="two sessions listed")
        failed = d.find_elements(By.CSS_SELECTOR, "#sessions tr.failed")
        self.assertEqual(len(failed), 1, "the 535 session stands out")
        self.assertIn("bob", self.rows()[1].text)
        self.wait(lambda d: d.find_element(By.ID, "live").text == "live")
        d.execute_script("window.__not_reloaded = true")

        w.record_one_more(self.db, self.pki, self.postfix, h.unique_token("browser"))
        self.wait(lambda d: len(self.rows()) == 3, message="the new session appears")
        self.assertTrue(d.execute_script("return window.__not_reloaded === true"))
        self.shot("list.png")

    def test_2_transcript_shows_decoded_prompts_redaction_and_535(self):
        d = self.driver
        bad = self.session_id_with(lambda r: r["failure_replies"] > 0)
        d.get(f"{self.base}#/session/{bad}")
        transcript = self.wait(lambda d: d.find_element(By.ID, "transcript"))
        text = transcript.text
        self.assertIn("Username:", text)
        self.assertIn("Password:", text)
        self.assertIn("redacted", text)
        self.assertNotIn(w.WRONG_PASSWORD, d.page_source)
        explanations = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".explain.bad")]
        self.assertTrue([e for e in explanations if e.startswith("535")], explanations)
        self.assertTrue(d.find_elements(By.CSS_SELECTOR, "details.pretls"),
                        "mailtap's pre-TLS exchange is folded")
        self.shot("session.png")

    def test_3_html_part_cannot_run_script(self):
        d = self.driver
        ok = self.session_id_with(lambda r: r["messages"] == 1)
        d.get(f"{self.base}#/session/{ok}/message/1")
        shown = self.wait(lambda d: d.find_element(By.CSS_SELECTOR, ".part .html-part"))
        self.assertIn(self.sent["login"], d.find_element(By.CSS_SELECTOR, "pre.text-part").text)
        self.shot("message.png")
        # Its text, copied from an inert parse: the script is neither run nor on the page.
        self.assertIn("script did not run", shown.text)
        self.assertNotIn("SCRIPT RAN", shown.text)
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, "#view script, #view iframe"), [])
        self.assertNotEqual(d.title, "SCRIPT RAN")

    def test_4_foreign_host_is_refused(self):
        # The browser resolves attacker.test to 127.0.0.1, as after a DNS rebinding: it sends
        # "Host: attacker.test:PORT" and must get the refusal, not the page or the record.
        d = self.driver
        d.get(f"http://attacker.test:{self.web.port}/")
        self.assertIn("Host header refused", d.page_source)
        self.assertFalse(d.find_elements(By.ID, "view"))
        d.get(f"http://attacker.test:{self.web.port}/api/sessions")
        self.assertIn("Host header refused", d.page_source)
        self.assertNotIn("bob", d.page_source)
        # Through its own address the page works.
        d.get(f"http://127.0.0.1:{self.web.port}/#/audit")
        self.wait(lambda d: "Audit" in d.find_element(By.TAG_NAME, "h1").text)

    def test_5_a_page_refused_its_live_feed_tries_again(self):
        # Eight other pages hold every live stream: this one's EventSource gets 503, which
        # EventSource itself never retries. Once they close, the page is live again and a
        # new session appears on it without a reload.
        d = self.driver
        d.get("about:blank")  # the earlier tests' page closes its stream
        held = w.hold_event_streams(self.web.port, 8)
        try:
            d.get(self.base)
            self.wait(lambda d: len(self.rows()) >= 2, message="sessions listed")
            self.wait(lambda d: d.find_element(By.ID, "live").text == "reconnecting",
                      message="the stream was refused")
        finally:
            for sock in held:
                sock.close()
        self.wait(lambda d: d.find_element(By.ID, "live").text == "live", timeout=40,
                  message="the page connected again")
        before = len(self.rows())
        d.execute_script("window.__not_reloaded = true")
        w.record_one_more(self.db, self.pki, self.postfix, h.unique_token("retry"))
        self.wait(lambda d: len(self.rows()) == before + 1, message="the new session appears")
        self.assertTrue(d.execute_script("return window.__not_reloaded === true"))

    def test_6_leaving_a_view_that_is_still_loading_shows_the_new_one(self):
        # A big session takes a while to load; the reader clicks on to the audit meanwhile.
        # The session arriving afterwards must not replace the audit under its address.
        d = self.driver
        d.get(self.base + "#/audit")
        self.wait(lambda d: "Audit" in d.find_element(By.TAG_NAME, "h1").text)
        ok = self.session_id_with(lambda r: r["messages"] == 1)
        for slow, then, shows in [(f"#/session/{ok}", "#/audit", "Audit"),
                                  (f"#/session/{ok}/message/1", f"#/session/{ok}",
                                   f"Session {ok}")]:
            d.execute_script(SLOW_FETCH, slow[1:])  # this view's data comes 1.5 s late
            d.execute_script("location.hash = arguments[0]", slow)
            self.wait(lambda d: d.execute_script("return window.__slowAsked === true"),
                      message="the slow view asked for its data")
            d.execute_script("location.hash = arguments[0]", then)
            self.wait(lambda d: d.execute_script("return window.__slowServed === true"),
                      message="the slow response came")
            self.wait(lambda d: shows in d.find_element(By.TAG_NAME, "h1").text)
            time.sleep(1)  # the late render, if any, has run by now
            self.assertEqual(d.execute_script("return location.hash"), then)
            self.assertIn(shows, d.find_element(By.TAG_NAME, "h1").text, f"{slow} then {then}")

    def test_7_older_pages_stay_open_while_new_sessions_arrive(self):
        # 500 more sessions (copies of the first one's row) make the list longer than a page.
        first = self.session_id_with(lambda r: True)
        with sqlite3.connect(self.db) as db:
            columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(sessions)")
                                if row[1] != "id")
            db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       f"WHERE i < 500) INSERT INTO sessions ({columns}) SELECT {columns} "
                       "FROM n, sessions WHERE sessions.id = ?", (first,))
        d = self.driver
        d.get(self.base)
        self.wait(lambda d: len(self.rows()) == 200, message="the newest page")
        self.wait(lambda d: d.find_element(By.ID, "live").text == "live")
        d.find_element(By.XPATH, "//button[text()='Older sessions']").click()
        self.wait(lambda d: len(self.rows()) == 400, message="an older page opened")
        oldest = self.row_ids()[-1]

        w.record_one_more(self.db, self.pki, self.postfix, h.unique_token("paging"))
        newest = str(w.request(self.web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"])
        self.wait(lambda d: self.row_ids()[0] == newest, message="the new session appears on top")
        ids = self.row_ids()
        self.assertEqual(len(ids), 401, "the older page the reader opened is still there")
        self.assertEqual(ids[-1], oldest)
        self.assertEqual(len(set(ids)), len(ids))

    def test_8_a_session_whose_proxy_died_says_cut(self):
        # A copy of the first session's row, the newest, without an end, recorded by a process
        # that is gone (this one, but started a tick earlier: another process).
        first = self.session_id_with(lambda r: True)
        stat = Path("/proc/self/stat").read_text()
        start = int(stat[stat.rindex(")") + 2:].split()[19])
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        gone = f"{boot} {os.getpid()} {start - 1} {os.readlink('/proc/self/ns/pid')}"
        with sqlite3.connect(self.db) as db:
            columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(sessions)")
                                if row[1] not in ("id", "started_at", "ended_at", "outcome",
                                                  "writer"))
            cut = db.execute(f"INSERT INTO sessions ({columns}, started_at, writer) SELECT "
                             f"{columns}, (SELECT max(started_at) FROM sessions), ? "
                             "FROM sessions WHERE id = ?", (gone, first)).lastrowid
        d = self.driver
        d.get(self.base)
        # Read in one go: the list is re-rendered as it loads.
        row = self.wait(lambda d: d.execute_script(
            "const r = document.querySelector(`tr[data-id='${arguments[0]}']`);"
            "return r && {outcome: r.querySelector('td.outcome').textContent,"
            " title: r.querySelector('td.outcome').title, classes: r.className};", str(cut)),
            message="the cut session listed")
        self.assertEqual(row["outcome"], "cut")
        self.assertIn("the process recording it is gone", row["title"])
        self.assertIn("failed", row["classes"].split())
        d.get(f"{self.base}#/session/{cut}")
        self.wait(lambda d: f"Session {cut}" in d.find_element(By.CSS_SELECTOR, "h1").text,
                  message="the cut session shown")
        heading = d.find_element(By.CSS_SELECTOR, "h1")
        self.assertIn("cut", [b.text for b in heading.find_elements(By.CSS_SELECTOR, ".badge")])
        self.assertNotIn("running", heading.text)
        self.assertIn("cut: the process recording it is gone (killed?)",
                      d.find_element(By.TAG_NAME, "body").text)

    def test_9_a_session_across_a_backward_clock_step_shows_no_negative_time(self):
        # What a wall-clock step back of two hours during a session (NTP stepping a machine
        # without an RTC at boot, date -s) leaves in the record: an end, and the events after
        # the step, before the start. `mailtap sessions` prints "?"; the page printed
        # "-7199.655s".
        with sqlite3.connect(self.db) as db:
            # The first session recorded: a whole dialogue (later tests add many short ones).
            first = db.execute("SELECT min(id) FROM sessions").fetchone()[0]
            # Recorded before mailtap measured a session's length (duration_us NULL): the page
            # has only the wall clock's span.
            columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(sessions)")
                                if row[1] not in ("id", "ended_at", "duration_us"))
            stepped = db.execute(
                f"INSERT INTO sessions ({columns}, ended_at) SELECT {columns}, "
                "strftime('%Y-%m-%dT%H:%M:%S', started_at, '-2 hours') || substr(started_at, 20) "
                "FROM sessions "
                "WHERE id = ?", (first,)).lastrowid
            event_columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(events)")
                                      if row[1] not in ("id", "session_id", "at"))
            db.execute(f"INSERT INTO events (session_id, at, {event_columns}) SELECT ?, "
                       "CASE WHEN seq = (SELECT min(seq) FROM events WHERE session_id = ?) THEN at "
                       "ELSE strftime('%Y-%m-%dT%H:%M:%S', at, '-2 hours') || substr(at, 20) "
                       f"END, {event_columns} FROM events WHERE session_id = ?",
                       (stepped, first, first))
        d = self.driver

        def shown() -> str:
            d.get("about:blank")  # a fresh load, whatever view was open before
            d.get(f"{self.base}#/session/{stepped}")
            self.wait(lambda d: f"Session {stepped}" in d.find_element(By.CSS_SELECTOR, "h1").text
                      and d.find_elements(By.CSS_SELECTOR, "span.at"),
                      message="the session across the clock step shown")
            return d.find_element(By.TAG_NAME, "body").text

        body = shown()
        self.assertIn("? (the wall clock was set back during the session)", body)
        times = d.execute_script("return [...document.querySelectorAll('span.at, span.delta')]"
                                 ".map((e) => e.textContent)")
        self.assertTrue(any(t == "?" for t in times), times)
        self.assertFalse([t for t in times if "-" in t], times)
        self.assertNotRegex(body, r"-\d+\.\d{3}s")
        # Measured by the proxy's steady clock, the same session has its length.
        with sqlite3.connect(self.db) as db:
            db.execute("UPDATE sessions SET duration_us = 1500000 WHERE id = ?", (stepped,))
        body = shown()
        self.assertIn("1.500s", body)
        self.assertNotIn("wall clock was set back", body)
        # A duration_us that holds no length (a damaged file, here one longer than the clock
        # holds): unreadable, said what it holds; the page showed the wall clock's span, as
        # for a length never measured.
        with sqlite3.connect(self.db) as db:
            db.execute("UPDATE sessions SET duration_us = 9223372036854775807 WHERE id = ?",
                       (stepped,))
        body = shown()
        self.assertRegex(body, r"duration\s+unreadable")
        self.assertIn("duration_us holds 9223372036854775807, out of range", body)
        self.assertNotIn("wall clock was set back", body)


# The live refreshes of the list take 0.7 s each (as on a record of many thousand sessions),
# so that one is nearly always under way while the proxy records; counts the session rows the
# page was sent, and the requests for them.
SLOW_REFRESH = """
window.__rowsFetched = 0;
window.__listRequests = 0;
const original = window.fetch;
window.fetch = async (url, options) => {
  const u = String(url);
  if (!u.startsWith("/api/sessions?")) return original(url, options);
  window.__listRequests += 1;
  if (!u.includes("before=")) await new Promise((r) => setTimeout(r, 700));
  const response = await original(url, options);
  response.clone().json().then((body) => { window.__rowsFetched += (body.sessions || []).length; });
  return response;
};
"""


class OlderPagesWhileRecordingBrowserTest(BrowserCase):
    """"Older sessions" while a proxy records steadily: every click opens the next page, and
    each live refresh fetches what is new and what may have changed, not every row shown."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.sink = h.BodySink()
        cls._stack.callback(cls.sink.close)
        cls.proxy = cls._stack.enter_context(h.Mailtap(cls.sink.address, tls="none", db=cls.db))
        h.smtplib_send(cls.proxy.port, h.make_message(h.unique_token("first")))
        # 1500 more sessions: copies of the first one's row.
        with sqlite3.connect(cls.db) as db:
            columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(sessions)")
                                if row[1] != "id")
            db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       f"WHERE i < 1500) INSERT INTO sessions ({columns}) SELECT {columns} "
                       "FROM n, sessions WHERE sessions.id = 1")
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))

    def record_steadily(self, stop: threading.Event):
        while not stop.is_set():
            h.smtplib_send(self.proxy.port, h.make_message(h.unique_token("steady")))
            time.sleep(0.05)

    def shown(self) -> list:
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#sessions tbody tr')].map((r) => "
            "[Number(r.dataset.id), r.querySelector('td.outcome').firstChild.textContent]);")

    def test_every_click_opens_a_page_and_refreshes_fetch_what_is_new(self):
        d = self.driver
        d.get(f"http://localhost:{self.web.port}/")
        WebDriverWait(d, 20).until(lambda d: len(self.shown()) == 200)
        WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "live").text == "live")
        d.execute_script(SLOW_REFRESH)
        stop = threading.Event()
        recorder = threading.Thread(target=self.record_steadily, args=(stop,), daemon=True)
        recorder.start()
        try:
            for click in range(4):
                oldest = self.shown()[-1][0]
                button = d.find_element(By.XPATH, "//button[text()='Older sessions']")
                # Through script: rows arriving on top move the button under a real pointer.
                d.execute_script("arguments[0].click()", button)
                WebDriverWait(d, 15).until(lambda d: self.shown()[-1][0] < oldest,
                                           f"click {click + 1} on Older sessions opened no page")
            # 1000 rows shown: a refresh fetches the new sessions and the running ones.
            d.execute_script("window.__rowsFetched = 0; window.__listRequests = 0;")
            time.sleep(4)
            fetched = d.execute_script("return window.__rowsFetched")
            requests = d.execute_script("return window.__listRequests")
            self.assertGreater(requests, 0)
            self.assertLess(fetched, 300, f"{requests} list requests fetched {fetched} rows")
        finally:
            stop.set()
            recorder.join()
        # Once the last commit is shown: the rows are the API's, down to the oldest shown,
        # each with its outcome now (no session left "in progress").
        newest = w.request(self.web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"]
        WebDriverWait(d, 20).until(lambda d: self.shown()[0][0] == newest)
        time.sleep(2)
        shown = self.shown()
        expected = []
        before = None
        while not expected or expected[-1][0] > shown[-1][0]:
            page = w.request(self.web.port, "/api/sessions?limit=1000" +
                             (f"&before={before}" if before else "")).json()["sessions"]
            expected += [[s["id"], s["outcome"] if s["ended_at"] else "in progress"] for s in page]
            before = page[-1]["id"]
        expected = [row for row in expected if row[0] >= shown[-1][0]]
        self.assertEqual(shown, expected)

    def test_a_running_session_that_comes_to_match_the_filters_appears(self):
        # 400 failed sessions (timeouts), then a running one, not failed (yet): with older
        # pages open, its end is what a refresh must fetch again although it was not shown.
        with sqlite3.connect(self.db) as db:
            columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(sessions)")
                                if row[1] not in ("id", "started_at", "ended_at", "outcome",
                                                  "writer"))
            db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       f"WHERE i < 400) INSERT INTO sessions ({columns}, started_at, ended_at, "
                       f"outcome) SELECT {columns}, started_at, ended_at, 'timeout' "
                       "FROM n, sessions WHERE sessions.id = 1")
            running = db.execute(f"INSERT INTO sessions ({columns}, started_at) SELECT "
                                 f"{columns}, (SELECT max(started_at) FROM sessions) "
                                 "FROM sessions WHERE id = 1").lastrowid
        d = self.driver
        d.get(f"http://localhost:{self.web.port}/#/?outcome=failed")
        WebDriverWait(d, 20).until(lambda d: len(self.shown()) == 200)
        WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "live").text == "live")
        d.execute_script("arguments[0].click()",
                         d.find_element(By.XPATH, "//button[text()='Older sessions']"))
        WebDriverWait(d, 20).until(lambda d: len(self.shown()) == 400)
        self.assertNotIn(running, [row[0] for row in self.shown()])
        with sqlite3.connect(self.db) as db:
            db.execute("UPDATE sessions SET ended_at = started_at, outcome = 'timeout' "
                       "WHERE id = ?", (running,))
        WebDriverWait(d, 20).until(lambda d: self.shown()[0] == [running, "timeout"],
                                   "the session that ended as a timeout is listed")
        self.assertEqual(len(self.shown()), 401)


# Delays the page's fetch of one API path (arguments[0], as in the address after "#") by 1.5 s:
# a large session or message on a slow disk.
SLOW_FETCH = """
const path = "/api/" + arguments[0].replace(/^\\//, "").replace("session/", "sessions/")
  .replace("/message/", "/messages/");
window.__slowAsked = false;
window.__slowServed = false;
const original = window.__originalFetch || window.fetch;
window.__originalFetch = original;
window.fetch = (url, options) => {
  if (String(url) !== path) return original(url, options);
  window.__slowAsked = true;
  return new Promise((done) => setTimeout(done, 1500)).then(() => {
    window.__slowServed = true;
    return original(url, options);
  });
};
"""


class LargeSessionBrowserTest(BrowserCase):
    """A session with a message larger than the 64 KiB the database holds of a body: the page
    gets only that part (the API says how many octets it left out) and shows one line for the
    rest, however many reads of the client it took."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "large.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                h.smtplib_send(mt.port, h.large_message(2 << 20))
        finally:
            sink.close()
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))

    def test_the_body_left_out_is_one_line(self):
        sid = w.request(self.web.port, "/api/sessions").json()["sessions"][0]["id"]
        events = w.request(self.web.port, f"/api/sessions/{sid}").json()["session"]["events"]
        omitted = [e["bytes_omitted"] for e in events if "bytes_omitted" in e]
        self.assertGreater(len(omitted), 1, "the body went on in several reads")
        d = self.driver
        d.get(f"http://localhost:{self.web.port}/#/session/{sid}")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#transcript"))
        lines = d.find_elements(By.CSS_SELECTOR, "#transcript .omitted")
        self.assertEqual(len(lines), 1)
        self.assertIn(f"{sum(omitted)} more octets of the message body", lines[0].text)

    def test_the_message_view_shows_the_start_of_a_large_text_and_links_the_whole(self):
        # The view used to put the whole text on the page (the tab hung on one of 256 MiB).
        sid = w.request(self.web.port, "/api/sessions").json()["sessions"][0]["id"]
        d = self.driver
        d.get(f"http://localhost:{self.web.port}/#/session/{sid}/message/1")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".text-part"))
        shown = d.execute_script("return document.querySelector('.text-part').textContent.length")
        self.assertLessEqual(shown, 1 << 20)
        self.assertGreater(shown, 1 << 19)
        (note,) = d.find_elements(By.CSS_SELECTOR, ".part .text-truncated")
        self.assertIn("only the start of this part is shown", note.text)
        links = [a.get_attribute("href") for a in note.find_elements(By.TAG_NAME, "a")]
        part_url = f"http://localhost:{self.web.port}/api/sessions/{sid}/messages/1/parts/0"
        self.assertEqual(links, [part_url, part_url])
        # The raw source, opened, is its first MiB too, with the download for the rest.
        d.find_element(By.CSS_SELECTOR, "details summary").click()
        WebDriverWait(d, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#raw-source + .text-truncated"))
        raw = d.execute_script("return document.getElementById('raw-source').textContent.length")
        self.assertLessEqual(raw, 1 << 20)
        self.assertGreater(raw, 1 << 19)



class BodyInPiecesBrowserTest(BrowserCase):
    """A message body the client sent in pieces that end inside its lines (a slow writer, a
    person at telnet in character mode, one key per read), through the real proxy to the private
    Postfix, as test_tools_readonly's BodyInPiecesTranscriptTest records it for `mailtap show`:
    the page shows the body line by line as show does, each line once, where its CRLF is (it
    used to start a line at every read: `C: Q`, `C: U`, ..., and a `.` that did not end the
    message alone on a line), and mailtap's notes on a line after it."""

    with_postfix = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "pieces.db"
        cls.sessions = h.record_bodies_in_pieces(cls.db, cls.postfix, cls.pki)
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))

    def page_lines(self, sid: int, web=None) -> list:
        """The transcript's lines as the page shows them: (time, who, text), a shown line that
        holds several (a read that ended more than one) split into its own, without a time.
        `web`: another server than the class's."""
        d = self.driver
        d.get(f"http://localhost:{(web or self.web).port}/#/session/{sid}")
        d.refresh()  # another session's view may be in place: load this one afresh
        WebDriverWait(d, 20).until(
            lambda d: "221" in d.find_element(By.ID, "transcript").get_attribute("textContent"))
        shown = d.execute_script(
            "return [...document.querySelectorAll('#transcript .line')].map((l) => ["
            "l.querySelector('.at').textContent, l.querySelector('.who').textContent,"
            "l.querySelector('.text').textContent])")
        lines = []
        for at, who, text in shown:
            for i, line in enumerate(text.split("\n")):
                lines.append((at if i == 0 else "", who, line))
        return lines

    def body_lines(self, lines: list, subject: str) -> list:
        """From the C: line of `subject` to the reply to the end of data: "C: text", "~~ note"."""
        start = lines.index(next(x for x in lines if x[1:] == ("C:", "Subject: " + subject)))
        end = next(i for i in range(start, len(lines)) if lines[i][2].startswith("250 2.0.0"))
        return [f"{who} {text}" for _, who, text in lines[start:end]]

    def show_body_lines(self, sid: int, subject: str, db=None) -> list:
        out = h.run([str(h.mailtap_bin()), "show", str(sid), "--db", str(db or self.db)]).stdout.decode()
        lines = out.split("\n")
        start = next(i for i, line in enumerate(lines) if line.endswith(" C: Subject: " + subject))
        end = next(i for i in range(start, len(lines)) if " S: 250 2.0.0" in lines[i])
        return [line[8:].lstrip(" ") for line in lines[start:end]]

    def test_a_line_that_came_in_pieces_is_one_line(self):
        lines = self.page_lines(self.sessions[0])
        self.assertEqual(self.body_lines(lines, "split"),
                         ["C: Subject: split", "C: ", "C: hello world", "C: x.", "C: ."])
        self.assertEqual(self.body_lines(lines, "split"),
                         self.show_body_lines(self.sessions[0], "split"))

    def test_keys_sent_one_by_one_are_one_line(self):
        lines = self.page_lines(self.sessions[0])
        self.assertEqual(self.body_lines(lines, "keys"),
                         ["C: Subject: keys", "C: ", "C: QUIT", "C: ."])

    def test_a_dot_that_did_not_end_the_message_stays_in_its_line(self):
        lines = self.page_lines(self.sessions[0])
        body = self.body_lines(lines, "ctrlc")
        self.assertEqual([x for x in body if x.startswith("C: ")],
                         ["C: Subject: ctrlc", "C: ", "C: I changed my mind",
                          "C: \\xff\\xf4\\xff\\xfd\\x06.", "C: ."])
        # mailtap's IAC WONT TM, recorded after the read that held the DO TM, follows the line.
        self.assertTrue(body[4].startswith("M: \\xff\\xfc\\x06telnet timing mark"), body)
        self.assertEqual([x for x in body if x.startswith("C: ")],
                         [x for x in self.show_body_lines(self.sessions[0], "ctrlc")
                          if x.startswith("C: ")])

    def test_each_line_has_the_time_its_end_came(self):
        lines = self.page_lines(self.sessions[0])
        seconds = {text: float(at[1:-1]) for at, who, text in lines if who == "C:" and at}
        self.assertGreaterEqual(seconds["hello world"] - seconds["Subject: split"], 0.15)
        self.assertGreaterEqual(seconds["x."] - seconds["hello world"], 0.15)

    def test_a_note_on_the_text_follows_the_line_it_came_inside(self):
        body = self.body_lines(self.page_lines(self.sessions[1]), "lf")
        self.assertEqual([x for x in body if x.startswith("C: ")],
                         ["C: Subject: lf", "C: ", "C: abc", "C: def", "C: ."])
        notes = [i for i, x in enumerate(body) if x.startswith("~~ rewrite: bare LF")]
        self.assertEqual(len(notes), 4, body)
        self.assertEqual(body[notes[0] - 1], "C: abc")
        self.assertEqual(body[notes[1] - 1], "C: def")

    def test_notes_are_placed_by_their_message_as_show_places_them(self):
        # show joins the text and places a note on it by the event's mail transaction
        # (smtp::BodyTextJoin); the page had no such field and held every mailtap note that came
        # while a line was open as the text's. A note of no message inside "hello world" (put
        # into a copy of the record: the proxy writes none there) ends the line in both now.
        db = self.tmp / "pieces-note.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        sid = self.sessions[0]
        con = sqlite3.connect(db)
        with con:
            seq, at, phase, transaction = next(
                (seq, at, phase, transaction) for seq, at, phase, transaction, data in con.execute(
                    "SELECT seq, at, phase, mail_transaction, bytes FROM events WHERE session_id = ?"
                    " AND kind = 'data' ORDER BY seq", (sid,)) if bytes(data).endswith(b"\r\nhel"))
            self.assertIsNotNone(transaction)
            for shift in ("-seq", "1 - seq"):  # seq + 1 for those after, unique at each step
                con.execute(f"UPDATE events SET seq = {shift} WHERE session_id = ? AND "
                            f"seq {'>' if shift == '-seq' else '<'} ?",
                            (sid, seq if shift == "-seq" else 0))
            con.execute("INSERT INTO events (session_id, seq, at, direction, phase, kind, bytes, "
                        "wire_size, redacted, note) VALUES (?, ?, ?, 'mailtap_note', ?, 'note', "
                        "X'', 0, 0, 'a note of no message')", (sid, seq + 1, at, phase))
        con.close()
        shown = self.show_body_lines(sid, "split", db)
        self.assertEqual([x for x in shown if x.startswith(("C: ", "~~"))],
                         ["C: Subject: split", "C: ", "C: hel", "~~ note: a note of no message",
                          "C: lo world", "C: x.", "C: ."])
        with w.WebServer(db) as web:
            self.assertEqual(self.body_lines(self.page_lines(sid, web), "split"), shown)

    def test_a_refusal_kept_only_by_its_size_shows_its_note_and_redaction(self):
        # recreader finding 6: the page showed `M: redacted: 3 bytes on the wire` alone.
        lines = self.page_lines(self.sessions[2])
        line = next(text for _, who, text in lines if who == "M:")
        self.assertTrue(line.startswith("note: telnet options refused (1x): "), line)
        self.assertTrue(line.endswith("redacted: 3 bytes on the wire"), line)


def message_with(body: bytes, headers: bytes) -> bytes:
    return b"Subject: " + h.unique_token("view").encode() + b"\r\nMIME-Version: 1.0\r\n" + headers + \
        b"\r\n\r\n" + body + b"\r\n"


class MessageViewBrowserTest(BrowserCase):
    """What the message page makes of a mail's HTML and raw source: nothing the mail names is
    contacted, an error is said in words, octets that are not UTF-8 stay visible."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sink = h.BodySink()
        cls._stack.callback(cls.sink.close)

    def record(self, name: str, message: bytes):
        """A database holding one session that delivered `message`, and the page on it."""
        db = self.tmp / f"{name}.db"
        with h.Mailtap(self.sink.address, tls="none", db=db) as mt:
            h.smtplib_send(mt.port, message)
        web = w.WebServer(db).start()
        self.addCleanup(web.stop)
        sid = w.request(web.port, "/api/sessions").json()["sessions"][0]["id"]
        return db, f"http://localhost:{web.port}/#/session/{sid}/message/1"

    def open_raw_source(self):
        d = self.driver
        d.find_elements(By.CSS_SELECTOR, "details")[-1].find_element(By.TAG_NAME, "summary").click()
        WebDriverWait(d, 20).until(lambda d: d.find_element(By.ID, "raw-source").text
                                   or d.find_elements(By.CSS_SELECTOR, ".raw-note"))
        return d.execute_script("return document.getElementById('raw-source').textContent")

    def test_an_html_part_makes_the_browser_contact_no_host_it_names(self):
        """Chromium connected to the hosts of <iframe src> and <link rel=preconnect> although
        the part was in a sandboxed frame under a policy that forbids both: the connection told
        the sender that the mail was read. A connection can only come from a URL of the mail's
        in the live page (app.js parses the markup in an inert document and copies elements
        with no attribute), so once the part is shown the page itself is searched for one:
        that is decisive whenever a connection would come. The listeners, one per vector, are
        looked at too, without waiting: a connection made while the page rendered is in their
        accept queues, whether or not a thread took it yet."""
        listeners = {}
        for vector in ("iframe", "preconnect", "dns-prefetch", "img", "stylesheet", "prefetch"):
            sock = socket.create_server(("127.0.0.1", 0))
            sock.setblocking(False)
            self.addCleanup(sock.close)
            listeners[vector] = sock
        url = {v: f"http://127.0.0.1:{sock.getsockname()[1]}" for v, sock in listeners.items()}
        html = (f'<html><head><link rel="preconnect" href="{url["preconnect"]}">'
                f'<link rel="dns-prefetch" href="{url["dns-prefetch"]}">'
                f'<link rel="stylesheet" href="{url["stylesheet"]}/s.css">'
                f'<link rel="prefetch" href="{url["prefetch"]}/p"></head><body>'
                f'<h1>Newsletter</h1><p>Hello <b>reader</b>, '
                f'<a href="https://example.test/offer">see the offer</a>.</p>'
                f'<img src="{url["img"]}/pixel.gif" alt="logo">'
                f'<iframe src="{url["iframe"]}/track?id=42"></iframe></body></html>')
        _, page = self.record("html", message_with(
            html.encode(), b"Content-Type: text/html; charset=utf-8"))
        d = self.driver
        d.get(page)
        # The part is appended whole, once copied: its box is the page's signal that it is done.
        shown = WebDriverWait(d, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".part .html-part"))[0]
        # Every attribute of every element of the page (and of any frame in it): none may
        # name a host of the mail's, or the browser could fetch it now or later.
        attributes = d.execute_script("""
            const seen = [];
            const search = (doc) => {
              for (const e of doc.querySelectorAll("*")) {
                for (const a of e.attributes) seen.push(e.localName + " " + a.name + "=" + a.value);
                if (e.contentDocument) search(e.contentDocument);
              }
            };
            search(document);
            return seen;""")
        for vector, address in url.items():
            with self.subTest(vector):
                self.assertEqual([a for a in attributes if address in a], [])
        self.assertEqual(d.execute_script("return window.frames.length"), 0)
        self.assertEqual(d.execute_script(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
            ".filter((n) => n.startsWith('http://127.0.0.1:'))"), [])
        contacted = [v for v, sock in listeners.items() if select.select([sock], [], [], 0)[0]]
        self.assertEqual(contacted, [], "hosts named in the mail contacted")
        self.assertIn("Hello reader, see the offer <https://example.test/offer>.", shown.text)
        self.assertIn("[image: logo]", shown.text)
        self.assertEqual(shown.find_element(By.TAG_NAME, "b").text, "reader")
        # Nothing of the mail's markup that could fetch is on the page (or framed in it).
        self.assertEqual(d.find_elements(By.CSS_SELECTOR, "#view iframe, #view img, #view link, "
                                         "#view a[href^='http']"), [])

    def test_the_raw_source_of_a_message_pruned_meanwhile_says_so_in_words(self):
        db, page = self.record("pruned", message_with(b"body", b"Content-Type: text/plain"))
        d = self.driver
        d.get(page)
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
        h.run([str(h.mailtap_bin()), "prune", "--db", str(db), "--before", "2099-01-01"])
        raw = self.open_raw_source()
        self.assertEqual(raw, "", "an error's JSON was shown as the message's source")
        note = d.find_element(By.CSS_SELECTOR, ".raw-note.error").text
        self.assertIn("no longer in the record", note)

    def test_the_raw_source_shows_octets_that_are_not_utf8_escaped(self):
        _, page = self.record("latin1", b"Subject: caf\xe9\r\nContent-Type: text/plain; "
                              b"charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                              b"na\xefve caf\xe9 \xe2\x9c\x93\r\n")
        d = self.driver
        d.get(page)
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
        raw = self.open_raw_source()
        self.assertNotIn("\ufffd", raw)
        self.assertIn("Subject: caf\\xe9\r\n", raw)
        # UTF-8 (the check mark) is shown as the character; only the other octets are escaped.
        self.assertIn("na\\xefve caf\\xe9 \u2713", raw)
        note = d.find_element(By.CSS_SELECTOR, ".raw-note.escaped-octets").text
        self.assertIn("3 octets that are not UTF-8", note)

    def test_utf8_stays_utf8_beside_an_octet_that_is_not(self):
        """intl18-F1: one Latin-1 octet in a transcript line or a charset-less text part made
        the page read all of it as Latin-1 ("GrÃ¼Ãe"). The UTF-8 is shown as its characters
        and only the other octets as \\xHH, as the raw source and `mailtap show` do."""
        _, page = self.record("mixed", "Subject: Grüße\r\nContent-Type: text/plain\r\n\r\n"
                              "Hällo \u202e\r\n".encode() + b"latin1: caf\xe9\r\n")
        d = self.driver
        d.get(page)
        (part,) = WebDriverWait(d, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
        text = part.get_attribute("textContent")
        self.assertIn("Hällo \u202e", text)
        self.assertIn("latin1: caf\\xe9", text)
        d.get(page.rsplit("/message/", 1)[0])
        WebDriverWait(d, 20).until(lambda d: "latin1" in d.find_element(By.ID, "transcript").text)
        transcript = d.find_element(By.ID, "transcript").get_attribute("textContent")
        self.assertIn("Subject: Grüße", transcript)
        self.assertIn("latin1: caf\\xe9", transcript)
        self.assertNotIn("Ã", transcript)

    def test_an_escaped_octet_is_marked_and_a_typed_escape_is_not(self):
        """web19: an octet that is not UTF-8 was shown as plain `\\xe9`, as the four characters
        `\\xe9` a client typed are: the two looked alike. The octet is marked as a control
        escape is, the typed text is not: in the transcript, a reply, a text part and the raw
        source."""
        self.sink.rcpt_reply = b"250 2.1.5 caf\xe9 ok \\xe9\r\n"
        self.addCleanup(setattr, self.sink, "rcpt_reply", b"250 ok\r\n")
        db = self.tmp / "marked.db"
        with h.Mailtap(self.sink.address, tls="none", db=db) as mt:
            with h.SmtpSocket(mt.port) as c:
                c.cmd(b"EHLO caf\xe9.\\xe9")
                c.cmd(b"MAIL FROM:<sender@client.test>")
                c.cmd(b"RCPT TO:<bob@example.test>")
                c.cmd(b"DATA")
                c.cmd(b"Subject: marked\r\n\r\nbody \xe9 \\xe9\r\n.")
                c.cmd(b"QUIT")
        web = w.WebServer(db).start()
        self.addCleanup(web.stop)
        d = self.driver
        pieces = """return [...arguments[0].childNodes].map((n) => [n.nodeType === 1 ? n.className : "",
                                                                 n.textContent]);"""
        d.get(f"http://localhost:{web.port}/#/session/1")
        WebDriverWait(d, 20).until(lambda d: "EHLO" in d.find_element(By.ID, "transcript").text)
        ehlo = next(line for line in d.find_elements(By.CSS_SELECTOR, "#transcript .line .text")
                    if line.text.startswith("EHLO"))
        self.assertEqual(d.execute_script(pieces, ehlo), [["", "EHLO caf"], ["esc", "\\xe9"],
                                                          ["", ".\\xe9"]])
        reply = d.find_element(By.CSS_SELECTOR, "p .accepted")
        self.assertEqual(d.execute_script(pieces, reply), [["", "(250 2.1.5 caf"], ["esc", "\\xe9"],
                                                           ["", " ok \\xe9)"]])
        d.get(f"http://localhost:{web.port}/#/session/1/message/1")
        (part,) = WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
        self.assertEqual(d.execute_script(pieces, part), [["", "body "], ["esc", "\\xe9"],
                                                          ["", " \\xe9\r\n"]])
        self.open_raw_source()
        raw = d.find_element(By.ID, "raw-source")
        self.assertEqual(d.execute_script(pieces, raw), [
            ["", "Subject: marked\r\n\r\nbody "],
            ["esc", "\\xe9"], ["", " \\xe9\r\n"]])

    def test_control_octets_in_a_message_are_marked_as_its_8bit_octets_are(self):
        """recreader 12: a NUL in a text part was put in the page raw (nothing to see) while
        the same part's 8-bit octets showed as marked \\xHH, and `mailtap show` writes the NUL
        \\x00. Control octets (but tab and the line ends) are marked \\xHH too, in the text part
        and the raw source, whether the part is all UTF-8 or not."""
        pieces = """return [...arguments[0].childNodes].map((n) => [n.nodeType === 1 ? n.className : "",
                                                                 n.textContent]);"""
        d = self.driver
        for name, body, shown in (
                ("nul-utf8", b"nul:\x00here esc \x1b[31m\tx\r\n",
                 [["", "nul:"], ["esc", "\\x00"], ["", "here esc "], ["esc", "\\x1b"],
                  ["", "[31m\tx\r\n"]]),
                ("nul-8bit", b"nul:\x00here caf\xe9\r\n",
                 [["", "nul:"], ["esc", "\\x00"], ["", "here caf"], ["esc", "\\xe9"], ["", "\r\n"]])):
            _, page = self.record(name, b"Subject: nul\r\n\r\n" + body)
            d.get(page)
            (part,) = WebDriverWait(d, 20).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
            self.assertEqual(d.execute_script(pieces, part), shown, name)
            self.open_raw_source()
            raw = d.execute_script(pieces, d.find_element(By.ID, "raw-source"))
            self.assertEqual(raw[0], ["", "Subject: nul\r\n\r\nnul:"], name)
            self.assertEqual(raw[1], ["esc", "\\x00"], name)
            self.assertNotIn("\x00", d.find_element(By.ID, "view").get_attribute("textContent"))

    def test_header_octets_in_no_declared_charset_are_marked_as_a_body_s_are(self):
        """web8bit: a header field's octets that are not UTF-8 (no charset declared for them)
        were read as windows-1252 and shown as plain characters, "café", where a text part that
        names no charset shows the octet as a marked \\xe9: the reader could not tell which
        characters the page had guessed. They are marked as a body's are, in the field, the
        subject above the message and a part's file name, and `\\xe9` typed is not."""
        _, page = self.record("header8bit", (
            b"Subject: caf\xe9 =?UTF-8?B?w6k=?= \\xe9\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"caf\xe9.bin\"\r\n\r\nxyz\r\n--b--\r\n"))
        d = self.driver
        d.get(page)
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "pre.text-part"))
        pieces = """return [...arguments[0].childNodes].map((n) => [n.nodeType === 1 ? n.className : "",
                                                                 n.textContent]);"""
        subject = [["", "caf"], ["esc", "\\xe9"], ["", " \u00e9 \\xe9"]]
        self.assertEqual(d.execute_script(pieces, d.find_element(By.TAG_NAME, "h1")), subject)
        field = d.execute_script("""return [...document.querySelectorAll("dl.facts dt")]
            .find((dt) => dt.textContent === "Subject").nextElementSibling.firstChild;""")
        shown = d.execute_script(pieces, field)
        self.assertEqual(shown[:3], subject)
        # Said beside the field, as the page says the raw source's escapes are octets.
        self.assertEqual(shown[3][0], "muted undeclared-octets")
        self.assertIn("no declared charset", shown[3][1])
        attachment = next(h3 for h3 in d.find_elements(By.CSS_SELECTOR, ".part h3")
                          if "octet-stream" in h3.text)
        self.assertEqual(d.execute_script(pieces, attachment)[:3], [
            ["", "application/octet-stream \u2014 caf"], ["esc", "\\xe9"], ["", ".bin (3 bytes)"]])
        self.assertNotIn("caf\u00e9", d.find_element(By.ID, "view").text,
                         "an octet read in a charset the message did not declare")

    def test_the_search_box_says_it_matches_the_octets_as_recorded(self):
        # A subject the message page shows decoded ("Bericht für März") is not found by those
        # words (the record holds =?UTF-8?B?...?=): a documented limit, which the page must say.
        subject = "=?UTF-8?B?" + base64.b64encode("Bericht für März".encode()).decode() + "?="
        _, page = self.record("encoded", b"Subject: " + subject.encode() + b"\r\n\r\nbody\r\n")
        d = self.driver
        d.get(page.split("#")[0] + "#/?q=" + urllib.parse.quote("März"))
        (box,) = WebDriverWait(d, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=q]"))
        self.assertEqual(box.get_attribute("value"), "März")
        self.assertEqual(box.get_attribute("placeholder"), "as recorded, not decoded")
        self.assertIn("not found by its decoded words", box.get_attribute("title"))


if __name__ == "__main__":
    h.main()
