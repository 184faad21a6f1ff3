#!/usr/bin/env python3
"""`mailtap web` and `mailtap proxy --web` over HTTP, on a database recorded through the real
proxy and Postfix: an AUTH LOGIN session that delivered an HTML message, and an AUTH LOGIN
refused with 535.  The JSON API the page uses, the live feed, and the security promises: the
Host check, the headers, read-only, no secret in any response, no OpenSSL in the process."""

import base64
import contextlib
import ctypes
import email.message
import email.policy
import hashlib
import http.client
import json
import os
import quopri
import re
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import web_support as w  # noqa: E402


class WebApiTest(h.IntegrationCase):
    with_postfix = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "record.db"
        cls.sent = w.record_web_database(cls.db, cls.pki, cls.postfix)
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))

    def get(self, path, **kw) -> w.Response:
        return w.request(self.web.port, path, **kw)

    def sessions(self, query="") -> list:
        r = self.get("/api/sessions" + query)
        self.assertEqual(r.status, 200, r.body)
        return r.json()["sessions"]

    def login_session(self) -> dict:
        rows = [s for s in self.sessions() if s["messages"] == 1]
        self.assertEqual(len(rows), 1)
        return rows[0]

    def refused_session(self) -> dict:
        rows = [s for s in self.sessions() if s["last_reply_code"] == 535 or s["failure_replies"]]
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    # the sessions list --------------------------------------------------------------------
    def test_sessions_newest_first_with_what_the_list_shows(self):
        rows = self.sessions()
        self.assertEqual(len(rows), 2)
        self.assertGreater(rows[0]["id"], rows[1]["id"])
        ok = self.login_session()
        self.assertEqual(ok["auth_user"], "bob")
        self.assertEqual(ok["outcome"], "quit")
        self.assertFalse(ok["failed"])
        self.assertEqual(ok["tls_version"][:4], "TLSv")
        self.assertEqual(ok["verify_result"], "ok")
        self.assertTrue(ok["last_reply"].startswith("221"), ok["last_reply"])
        self.assertGreaterEqual(ok["duration_ms"], 0)
        bad = self.refused_session()
        self.assertTrue(bad["failed"])
        self.assertGreaterEqual(bad["failure_replies"], 1)

    def test_filters(self):
        bad = self.refused_session()["id"]
        ok = self.login_session()["id"]
        self.assertEqual([s["id"] for s in self.sessions("?outcome=failed")], [bad])
        self.assertEqual([s["id"] for s in self.sessions("?reply_class=5xx")], [bad])
        self.assertEqual([s["id"] for s in self.sessions("?user=bob")], [ok])
        self.assertEqual([s["id"] for s in self.sessions("?q=" + self.sent["login"])], [ok])
        self.assertEqual(len(self.sessions("?since=1h")), 2)
        self.assertEqual(self.sessions("?until=2000-01-01"), [])
        self.assertEqual(self.sessions("?upstream=nowhere.example"), [])
        r = self.get("/api/sessions?reply_class=7xx")
        self.assertEqual(r.status, 400)
        self.assertIn("reply_class", r.json()["error"])

    def test_paging(self):
        first = self.get("/api/sessions?limit=1").json()
        self.assertEqual(len(first["sessions"]), 1)
        self.assertTrue(first["more"])
        rest = self.get(f"/api/sessions?limit=1&before={first['sessions'][0]['id']}").json()
        self.assertEqual(len(rest["sessions"]), 1)
        self.assertLess(rest["sessions"][0]["id"], first["sessions"][0]["id"])
        self.assertFalse(rest["more"])

    # one session ---------------------------------------------------------------------------
    def test_session_tls_facts_and_certificate_chain(self):
        # The first session's handshake is a full one (later ones may resume it).
        first = min(s["id"] for s in self.sessions())
        s = self.get(f"/api/sessions/{first}").json()["session"]
        self.assertEqual(s["verify_result"], "ok")
        self.assertTrue(s["certificates"], "the chain is recorded")
        self.assertTrue(s["certificates"][0]["pem"].startswith("-----BEGIN CERTIFICATE-----"))

    def test_session_transcript_decodes_auth_login_and_explains_535(self):
        bad = self.refused_session()["id"]
        r = self.get(f"/api/sessions/{bad}")
        self.assertEqual(r.status, 200)
        data = r.json()
        events = data["session"]["events"]
        notes = [e.get("note") or "" for e in events]
        self.assertIn("Username:", notes)
        self.assertIn("Password:", notes)
        redacted = [e for e in events if e["redacted"]]
        self.assertTrue(redacted, "the password line is marked redacted")
        (reply,) = [e for e in events if e["reply_code"] == 535]
        explanation = data["explanations"][str(reply["seq"])]
        self.assertIn("authentication", explanation["meaning"].lower())
        self.assertTrue(explanation["fix"])

    def test_session_download_is_show_json(self):
        ok = self.login_session()["id"]
        r = self.get(f"/api/sessions/{ok}/download")
        self.assertEqual(r.status, 200)
        self.assertIn("attachment", r.headers["content-disposition"])
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(ok), "--json", "--db",
                                str(self.db)], capture_output=True, check=True).stdout
        self.assertEqual(json.loads(r.body), json.loads(shown))

    def test_no_secret_in_any_response(self):
        secrets = [h.USERS["bob"], w.WRONG_PASSWORD]
        secrets += [base64.b64encode(s.encode()).decode() for s in secrets]
        paths = ["/api/sessions", "/api/audit"]
        for s in self.sessions():
            paths += [f"/api/sessions/{s['id']}", f"/api/sessions/{s['id']}/download"]
        for path in paths:
            body = self.get(path).body.decode(errors="replace")
            for secret in secrets:
                self.assertNotIn(secret, body, path)

    def test_unknown_session_and_message(self):
        self.assertEqual(self.get("/api/sessions/999999").status, 404)
        ok = self.login_session()["id"]
        self.assertEqual(self.get(f"/api/sessions/{ok}/messages/2").status, 404)

    # messages -------------------------------------------------------------------------------
    def test_message_parts_raw_and_eml(self):
        ok = self.login_session()["id"]
        m = self.get(f"/api/sessions/{ok}/messages/1").json()
        self.assertIn("bob@example.test", " ".join(r["command"] for r in m["recipients"]))
        subject = [x["value"] for x in m["headers"] if x["name"].lower() == "subject"]
        self.assertEqual(subject, [f"web test {self.sent['login']}"])
        kinds = [p["content_type"] for p in m["parts"]]
        self.assertEqual(kinds, ["text/plain", "text/html"])
        self.assertIn(self.sent["login"], m["parts"][0]["text"])

        html = self.get(m["parts"][1]["url"])
        self.assertEqual(html.status, 200)
        self.assertTrue(html.headers["content-type"].startswith("text/html"))
        csp = html.headers["content-security-policy"]
        self.assertTrue(csp.startswith("sandbox"), csp)
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("script-src", csp)
        self.assertIn(b"<script>", html.body)  # served as is: the sandbox and CSP disarm it
        # Opened in a browser it is saved, not rendered: a rendered HTML mail makes the browser
        # connect to hosts it names (preconnect, frames) whatever the policy says.
        self.assertTrue(html.headers["content-disposition"].startswith("attachment"))
        # Nothing frames a part (the page reads it with fetch): no frame may show it either.
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertEqual(html.headers["x-frame-options"], "DENY")

        raw = self.get(f"/api/sessions/{ok}/messages/1/raw")
        self.assertEqual(raw.status, 200)
        self.assertEqual(raw.headers["content-type"], "message/rfc822")
        self.assertIn(".eml", raw.headers["content-disposition"])
        self.assertIn(self.sent["login"].encode(), raw.body)

    def test_message_text_in_its_charset_and_encoded_words_as_utf8(self):
        # On a copy: the other tests count the sessions of the shared database.
        db = self.tmp / "charsets.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        tok = h.unique_token("charset")
        w.record_one_more(db, self.pki, self.postfix, tok, data=w.charset_message(tok))
        with w.WebServer(db) as web:
            newest = w.request(web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"]
            m = w.request(web.port, f"/api/sessions/{newest}/messages/1").json()
        headers = {x["name"]: x for x in m["headers"]}
        self.assertEqual(headers["Subject"]["value"], f"{w.CHARSET_SUBJECT} {tok}")
        self.assertEqual(headers["From"]["value"], w.CHARSET_FROM)
        # A byte that is not UTF-8 comes as base64, marked, as docs/web.md says, with the text
        # beside it: encoded words decoded, the other octets as they are (base64 too), never
        # read in a charset the message does not declare for them (windows-1252 gave "ÿ", which
        # the page showed as if the mail had said so): the page shows them as \xHH, marked, as
        # it shows those of a text part that names no charset.
        self.assertEqual(headers["X-Raw"].get("value_encoding"), "base64")
        self.assertEqual(base64.b64decode(headers["X-Raw"]["value"]), b"\xff not UTF-8")
        self.assertEqual(headers["X-Raw"].get("value_decoded_encoding"), "base64")
        self.assertEqual(base64.b64decode(headers["X-Raw"]["value_decoded"]), b"\xff not UTF-8")
        # The encoded word's UTF-8 beside the raw byte: read as UTF-8 where it is (the page's
        # escapedText, Python's backslashreplace), "é caf\xe9", never "Ã© café".
        self.assertEqual(headers["X-Mixed"].get("value_encoding"), "base64")
        self.assertEqual(base64.b64decode(headers["X-Mixed"]["value"]),
                         b"=?UTF-8?B?w6k=?= caf\xe9")
        self.assertEqual(headers["X-Mixed"].get("value_decoded_encoding"), "base64")
        mixed = base64.b64decode(headers["X-Mixed"]["value_decoded"])
        self.assertEqual(mixed, "é caf".encode() + b"\xe9")
        self.assertEqual(mixed.decode("utf-8", "backslashreplace"), "é caf\\xe9")
        self.assertNotIn("value_decoded", headers["Subject"], "only beside octets not UTF-8")
        texts = [(p["charset"], p["text"]) for p in m["parts"]]
        self.assertEqual(texts, w.CHARSET_TEXTS)
        self.assertFalse([p for p in m["parts"] if "text_encoding" in p])

    def test_a_part_downloads_under_its_own_name_made_safe(self):
        # The page's link says download="report.pdf", but the part's own Content-Disposition
        # wins in a browser: it said filename="part-1", and every attachment was saved so.
        db = self.tmp / "names.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        tok = h.unique_token("names")
        umlaut = base64.b64encode("Rechnung März.pdf".encode()).decode()
        parts = [('application/pdf; name="report.pdf"', 'attachment; filename="report.pdf"'),
                 ("application/octet-stream", f'attachment; filename="=?UTF-8?B?{umlaut}?="'),
                 # Quoted-pairs: the name is ../..\a\b"c.exe (RFC 5322 section 3.2.4).
                 ("application/octet-stream", r'attachment; filename="../..\\a\\b\"c.exe"'),
                 ("application/octet-stream", 'attachment; filename="' + "x" * 400 + '.zip"'),
                 ('text/html; name="page.html"', "attachment"),
                 ("application/octet-stream", "attachment")]
        body = "".join(f"--b\r\nContent-Type: {t}\r\nContent-Disposition: {d}\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\neHl6\r\n" for t, d in parts)
        data = (f"From: a@example.test\r\nTo: bob@example.test\r\nSubject: {tok}\r\n"
                "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                f"{body}--b--\r\n").encode()
        w.record_one_more(db, self.pki, self.postfix, tok, data=data)
        with w.WebServer(db) as web:
            newest = w.request(web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"]
            base = f"/api/sessions/{newest}/messages/1/parts"
            got = [w.request(web.port, f"{base}/{k}") for k in range(len(parts))]
        self.assertEqual([r.status for r in got], [200] * len(parts))
        names = [r.headers["content-disposition"] for r in got]
        self.assertEqual(names[0], 'attachment; filename="report.pdf"')
        self.assertEqual(names[1], "attachment; filename=\"Rechnung M_rz.pdf\"; "
                         "filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf")
        self.assertEqual(names[2], 'attachment; filename="_.._a_b_c.exe"')  # no path, one quote
        self.assertEqual(names[3], 'attachment; filename="' + "x" * 146 + '.zip"')
        self.assertEqual(names[4], 'attachment; filename="page.html"')
        self.assertEqual(names[5], 'attachment; filename="part-5"')  # no name of its own
        self.assertEqual([r.body for r in got], [b"xyz"] * len(parts))

    def test_a_name_python_email_gives_is_read_from_its_rfc2231_form(self):
        # Python's email package, as Thunderbird, Outlook and Apple Mail, sends a name that is
        # not ASCII as filename*=utf-8''%E2%82%AC..., and a long one cut into filename*0*=...;
        # filename*1*=...: the page showed no name, or the name's first section.
        db = self.tmp / "rfc2231.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        tok = h.unique_token("rfc2231")
        long_name = ("Résumé de la réunion trimestrielle du comité de direction — "
                     "version finale révisée.pdf")
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.test", "bob@example.test", tok
        msg.set_content(f"names {tok}")
        msg.add_attachment(b"%PDF-1.4 euro", maintype="application", subtype="pdf",
                           filename="€ report.pdf")
        msg.add_attachment(b"%PDF-1.4 long", maintype="application", subtype="pdf",
                           filename=long_name)
        data = msg.as_bytes(policy=email.policy.SMTP)
        self.assertIn(b"filename*=utf-8''%E2%82%AC%20report.pdf", data)
        self.assertIn(b"filename*1*=", data)
        w.record_one_more(db, self.pki, self.postfix, tok, data=data)
        with w.WebServer(db) as web:
            newest = w.request(web.port, "/api/sessions?limit=1").json()["sessions"][0]["id"]
            m = w.request(web.port, f"/api/sessions/{newest}/messages/1").json()
            euro = w.request(web.port, m["parts"][1]["url"])
        self.assertEqual([p.get("filename") for p in m["parts"]], ["", "€ report.pdf", long_name])
        self.assertEqual(euro.body, b"%PDF-1.4 euro")
        self.assertEqual(euro.headers["content-disposition"],
                         "attachment; filename=\"_ report.pdf\"; "
                         "filename*=UTF-8''%E2%82%AC%20report.pdf")

    def test_audit(self):
        a = self.get("/api/audit").json()
        self.assertTrue(a["ok"])
        self.assertEqual(a["sessions"], 2)
        self.assertEqual(a["credential_leaks"], [])
        self.assertIn(535, [f["reply_code"] for f in a["failures"]])

    def test_a_session_whose_writer_is_gone_is_cut_and_one_whose_writer_runs_is_not(self):
        """sessions.writer names the process recording a session: the API says writer_gone
        for a session without an end whose process is gone, and audit counts it as cut."""
        copy = self.tmp / "cut-web.db"
        src, dst = sqlite3.connect(self.db), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        stat = Path("/proc/self/stat").read_text()
        start = int(stat[stat.rindex(")") + 2:].split()[19])
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        here = f"{boot} {os.getpid()} {{}} {os.readlink('/proc/self/ns/pid')}"
        cut, live = self.login_session()["id"], self.refused_session()["id"]
        with dst:
            dst.execute("UPDATE sessions SET ended_at = NULL, outcome = NULL")
            # This process, but started one tick before it: another process, gone.
            dst.execute("UPDATE sessions SET writer = ? WHERE id = ?", (here.format(start - 1), cut))
            dst.execute("UPDATE sessions SET writer = ? WHERE id = ?", (here.format(start), live))
        dst.close()
        with w.WebServer(copy) as web:
            rows = {s["id"]: s for s in w.request(web.port, "/api/sessions").json()["sessions"]}
            self.assertIs(rows[cut]["writer_gone"], True)
            self.assertIs(rows[live]["writer_gone"], False)
            one = w.request(web.port, f"/api/sessions/{cut}").json()["session"]
            self.assertIs(one["writer_gone"], True)
            audit = w.request(web.port, "/api/audit").json()
            self.assertEqual(audit["outcomes"], {"cut": 1, "in_progress": 1})
            # The outcome filter as `mailtap sessions --outcome`: cut and in_progress apart.
            for outcome, want in (("cut", [cut]), ("in_progress", [live])):
                got = w.request(web.port, f"/api/sessions?outcome={outcome}").json()["sessions"]
                self.assertEqual([s["id"] for s in got], want, outcome)

    # the page -------------------------------------------------------------------------------
    def test_page_and_assets_are_served_from_the_binary(self):
        page = self.get("/")
        self.assertEqual(page.status, 200)
        self.assertTrue(page.headers["content-type"].startswith("text/html"))
        self.assertIn(b"/assets/app.js", page.body)
        self.assertNotIn(b"http://", page.body.replace(b"http://www.w3.org", b""))
        js = self.get("/assets/app.js")
        self.assertEqual(js.status, 200)
        self.assertTrue(js.headers["content-type"].startswith("text/javascript"))
        self.assertNotIn(b"innerHTML", js.body)
        self.assertEqual(self.get("/assets/nothing.js").status, 404)

    # security -------------------------------------------------------------------------------
    def test_every_response_has_the_security_headers_and_no_cors(self):
        for path in ["/", "/assets/app.css", "/api/sessions", "/api/nothing", "/api/audit"]:
            r = self.get(path, headers={"Origin": "http://evil.example"})
            csp = r.headers.get("content-security-policy", "")
            self.assertIn("default-src 'none'", csp, path)
            if path == "/":
                for directive in ["script-src 'self'", "style-src 'self'", "img-src 'self' data:",
                                  "connect-src 'self'", "frame-src 'none'", "base-uri 'none'",
                                  "form-action 'none'"]:
                    self.assertIn(directive, csp)
            self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", path)
            self.assertEqual(r.headers.get("referrer-policy"), "no-referrer", path)
            self.assertEqual(r.headers.get("x-frame-options"), "DENY", path)
            self.assertFalse([k for k in r.headers if k.startswith("access-control")], path)

    def test_a_foreign_host_header_is_refused(self):
        for host in ["evil.example", f"evil.example:{self.web.port}",
                     f"localhost.evil.example:{self.web.port}", f"localhost:{self.web.port + 1}"]:
            r = self.get("/api/sessions", host=host)
            self.assertEqual(r.status, 421, host)
            self.assertNotIn(b"bob", r.body)
        self.assertEqual(self.get("/api/sessions", host=f"localhost:{self.web.port}").status, 200)
        # No Host header at all (HTTP/1.0 style) is refused too.
        with socket.create_connection(("127.0.0.1", self.web.port), timeout=10) as s:
            s.sendall(b"GET /api/sessions HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 421"), reply[:80])

    def raw_exchange(self, request: bytes) -> tuple[bytes, dict, bytes]:
        """`request` sent as is; the status line, the headers (lower-case names), the body."""
        with socket.create_connection(("127.0.0.1", self.web.port), timeout=30) as s:
            s.sendall(request)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode(errors="replace")] = value.strip().decode()
        return status, headers, body

    def test_a_malformed_request_gets_a_fixed_reply_with_the_security_headers(self):
        host = f"Host: 127.0.0.1:{self.web.port}\r\n".encode()
        for request, status in [
                (b"get /a b HTTP/1.1\r\n" + host + b"X-Injected: yes\r\n\r\n", 400),
                (b"GET /a b\r\n" + host + b"X-Injected: yes\r\n\r\n", 400),
                (b"GET /\x00 HTTP/1.1\r\n" + host + b"\r\n", 400),
                (b"GET / HTTP/9.9\r\n" + host + b"X-Injected: yes\r\n\r\n", 505),
                (b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n", 400)]:
            line, headers, body = self.raw_exchange(request)
            # Nothing of the request in the reply's head: no echoed version, no extra header.
            self.assertTrue(line.startswith(f"HTTP/1.1 {status} ".encode()), (request[:20], line))
            self.assertNotIn("x-injected", headers)
            self.assertNotIn("x-big", headers)
            self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))
            self.assertEqual(headers.get("x-content-type-options"), "nosniff")
            self.assertEqual(headers.get("x-frame-options"), "DENY")
            self.assertEqual(headers.get("referrer-policy"), "no-referrer")
            self.assertEqual(headers.get("cache-control"), "no-store")
            self.assertEqual(json.loads(body)["status"], status)
        # And the server goes on serving.
        self.assertEqual(self.get("/api/sessions").status, 200)

    def test_two_host_headers_are_a_bad_request(self):
        # RFC 9112 section 3.2; the first one used to be the only one read, so a foreign
        # second Host was served.
        mine = f"Host: 127.0.0.1:{self.web.port}\r\n".encode()
        for hosts in [mine + b"Host: evil.example\r\n", b"Host: evil.example\r\n" + mine,
                      mine + mine]:
            line, headers, body = self.raw_exchange(
                b"GET /api/sessions HTTP/1.1\r\n" + hosts + b"Connection: close\r\n\r\n")
            self.assertTrue(line.startswith(b"HTTP/1.1 400 "), (hosts, line))
            self.assertEqual(json.loads(body)["status"], 400)
            self.assertNotIn(b"bob", body)
            self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))

    def test_an_absolute_form_target_is_checked_as_a_host(self):
        # RFC 9112 section 3.2.2: a server accepts an absolute-form target. CivetWeb used to
        # close the connection unanswered; its authority now names the server as a Host does.
        port = self.web.port
        line, _, body = self.raw_exchange(
            f"GET http://127.0.0.1:{port}/api/sessions?limit=1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        self.assertTrue(line.startswith(b"HTTP/1.1 200 "), line)
        self.assertEqual(len(json.loads(body)["sessions"]), 1)
        line, _, _ = self.raw_exchange(
            f"GET http://localhost:{port}/api/audit HTTP/1.0\r\n\r\n".encode())
        self.assertTrue(line.startswith(b"HTTP/1.1 200 "), line)
        for target, host in [(f"http://evil.example:{port}/api/sessions", f"127.0.0.1:{port}"),
                             (f"http://127.0.0.1:{port}/api/sessions", "evil.example")]:
            line, _, body = self.raw_exchange(
                f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            self.assertTrue(line.startswith(b"HTTP/1.1 421 "), (target, host, line))
            self.assertNotIn(b"bob", body)

    def curl_status(self, *args: str) -> tuple[int, str]:
        """curl's exit status and the status line it got (empty if none)."""
        cp = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", "30",
                             *args], capture_output=True, text=True, timeout=60)
        return cp.returncode, cp.stdout.split("\r\n", 1)[0]

    def test_a_proxy_request_for_another_port_and_options_star_are_answered(self):
        # CivetWeb reads these requests and hands them to no callback (an absolute target
        # naming another port is a proxy request to it, "*" it does not handle): the client
        # saw the connection closed without a reply (curl: "Empty reply from server").
        port, other = self.web.port, h.closed_port()
        # The page's address given as a proxy: curl asks it for another server's URL.
        rc, line = self.curl_status("-x", f"http://127.0.0.1:{port}",
                                    f"http://127.0.0.1:{other}/api/sessions")
        self.assertEqual((rc, line.split(" ")[1:2]), (0, ["421"]), line)
        rc, line = self.curl_status("-X", "OPTIONS", "--request-target", "*",
                                    f"http://127.0.0.1:{port}/")
        self.assertEqual((rc, line.split(" ")[1:2]), (0, ["405"]), line)
        for request, status in [
                # No port in the target: port 80, not this server.
                (f"GET http://127.0.0.1/api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 421),
                (f"GET https://localhost/ HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n", 421),
                (f"GET http://127.0.0.1:{other}/ HTTP/1.0\r\n\r\n", 421),
                (f"OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", 405),
                ("OPTIONS * HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421),
                (f"GET * HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", 400)]:
            line, headers, body = self.raw_exchange(request.encode())
            self.assertTrue(line.startswith(f"HTTP/1.1 {status} ".encode()), (request, line))
            self.assertEqual(json.loads(body)["status"], status)
            self.assertNotIn(b"bob", body)
            self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))
            self.assertEqual(headers.get("x-frame-options"), "DENY")
            if status == 405:
                self.assertEqual(headers.get("allow"), "GET, HEAD")
        # And the server goes on serving.
        self.assertEqual(self.get("/api/sessions").status, 200)

    def test_head_is_answered_as_get_without_a_body(self):
        # RFC 9110 section 9.1: a general-purpose server MUST support HEAD (it got 405). The
        # head is GET's, Content-Length the length GET's body has; a download's too, whose body
        # is streamed from the record.
        ok = self.login_session()["id"]
        port = self.web.port
        for path, status in [("/api/sessions", 200), (f"/api/sessions/{ok}/download", 200),
                             (f"/api/sessions/{ok}/messages/1/raw", 200), ("/", 200),
                             ("/api/no-such-thing", 404)]:
            got = self.get(path)
            self.assertEqual(got.status, status, path)
            line, headers, body = self.raw_exchange(
                f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            self.assertTrue(line.startswith(f"HTTP/1.1 {status} ".encode()), (path, line))
            self.assertEqual(headers.get("content-length"), str(len(got.body)), path)
            self.assertEqual(headers.get("content-type"), got.headers.get("content-type"), path)
            self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))
            self.assertEqual(body, b"", path)
        # The live page's event stream: its head, then the connection ends.
        line, headers, body = self.raw_exchange(
            f"HEAD /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.assertTrue(line.startswith(b"HTTP/1.1 200 "), line)
        self.assertTrue(headers.get("content-type", "").startswith("text/event-stream"), headers)
        self.assertEqual(body, b"")
        # The Host check still comes first.
        line, _, body = self.raw_exchange(
            b"HEAD /api/sessions HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        self.assertTrue(line.startswith(b"HTTP/1.1 421 "), line)
        self.assertEqual(body, b"")

    def test_read_only(self):
        for method in ["POST", "PUT", "DELETE", "PATCH"]:
            r = self.get("/api/sessions", method=method)
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.headers.get("allow"), "GET, HEAD")
        # RFC 9110 section 9.1: 405 for a method HTTP defines, 501 for one the server does not
        # know (it got 405). CivetWeb refuses those it does not know (TRACE it leaves out on
        # purpose, FOO, LINK, M-SEARCH) before reading the headers; PROPFIND it knows, so that
        # request passes the Host check first.
        port = self.web.port
        for method, status in [("TRACE", 405), ("FOO", 501), ("LINK", 501), ("M-SEARCH", 501),
                               ("PROPFIND", 501), ("get", 501)]:
            line, headers, body = self.raw_exchange(
                f"{method} /api/sessions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            self.assertTrue(line.startswith(f"HTTP/1.1 {status} ".encode()), (method, line))
            self.assertEqual(headers.get("allow"), "GET, HEAD", method)
            self.assertEqual(json.loads(body)["status"], status)
            self.assertIn("default-src 'none'", headers.get("content-security-policy", ""))
        # A request for another name is refused as such whatever its method, where the headers
        # are read; where they are not, the reply is the same for any name, nothing of the record.
        for method, status in [("POST", 421), ("PROPFIND", 421), ("FOO", 501)]:
            line, _, body = self.raw_exchange(
                f"{method} /api/sessions HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode())
            self.assertTrue(line.startswith(f"HTTP/1.1 {status} ".encode()), (method, line))
            self.assertNotIn(b"bob", body)
        # What is not a request line stays a bad request.
        for request in [b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"TR@CE / HTTP/1.1\r\n\r\n",
                        b"TRACE / FTP/1.1\r\n\r\n"]:
            line, headers, body = self.raw_exchange(request)
            self.assertTrue(line.startswith(b"HTTP/1.1 400 "), (request, line))
            self.assertNotIn("allow", headers)

    def test_no_openssl_in_the_process(self):
        self.assertEqual(w.openssl_mappings(self.web.proc.pid), [])
        self.assertIn("libcivetweb", w.maps_of(self.web.proc.pid))

    def test_refuses_a_remote_listen_address_without_allow_remote(self):
        cp = subprocess.run([str(h.mailtap_bin()), "web", "--db", str(self.db), "--listen",
                             "0.0.0.0:8025"], capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 2)
        self.assertIn(b"refusing to listen on 0.0.0.0:8025", cp.stderr)
        self.assertIn(b"--allow-remote", cp.stderr)

    def test_a_missing_database_is_explained(self):
        """In the words every tool reading the record uses (web had its own)."""
        none = str(self.tmp / "none.db")
        cp = subprocess.run([str(h.mailtap_bin()), "web", "--db", none,
                             "--listen", f"127.0.0.1:{h.free_port()}"],
                            capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 1)
        sessions = subprocess.run([str(h.mailtap_bin()), "sessions", "--db", none],
                                  capture_output=True, timeout=30)
        self.assertEqual(sessions.returncode, 1)
        self.assertEqual(cp.stderr.decode(), f"mailtap: web: no database at '{none}'\n")
        self.assertEqual(cp.stderr.replace(b"web:", b"sessions:"), sessions.stderr)
        self.assertFalse((self.tmp / "none.db").exists())

    # live ---------------------------------------------------------------------------------
    def test_events_stream_announces_a_new_session(self):
        # On a copy: the other tests count the sessions of the shared database.
        db = self.tmp / "events.db"
        with sqlite3.connect(self.db) as src, sqlite3.connect(db) as dst:
            src.backup(dst)
        web = w.WebServer(db).start()
        self.addCleanup(web.stop)
        sock = socket.create_connection(("127.0.0.1", web.port), timeout=30)
        self.addCleanup(sock.close)
        sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: localhost:{web.port}\r\n\r\n"
                     .encode())
        stream = sock.makefile("rb")
        self.addCleanup(stream.close)

        def next_event() -> str:
            data = None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data is not None:
                    return data
            raise AssertionError("stream ended")

        status = stream.readline()
        self.assertIn(b" 200 ", status)
        headers = b""
        while (line := stream.readline()) not in (b"\r\n", b""):
            headers += line
        self.assertIn(b"text/event-stream", headers)
        first = json.loads(next_event())
        w.record_one_more(db, self.pki, self.postfix, h.unique_token("live"))
        while True:  # the proxy commits several times; wait for the new session's id
            later = json.loads(next_event())
            if later["max_session_id"] > first["max_session_id"]:
                break
        rows = w.request(web.port, "/api/sessions").json()["sessions"]
        self.assertEqual(rows[0]["id"], later["max_session_id"])

    def test_a_closed_stream_frees_its_slot_promptly(self):
        # Reloading a page ten times in a row: each reload closes its stream and opens one.
        web = w.WebServer(self.db).start()
        self.addCleanup(web.stop)
        for _ in range(10):
            sock, _status = w.open_event_stream(web.port)
            sock.close()
        # The closed streams' slots come free within a few seconds (not at the next change,
        # which on an idle record could be never), so a new page gets its live feed; and all
        # eight of them do.
        held = w.hold_event_streams(web.port, 8, timeout=10)
        self.addCleanup(lambda: [sock.close() for sock in held])
        # Open streams keep theirs: the ninth gets 503.
        sock, status = w.open_event_stream(web.port)
        sock.close()
        self.assertIn(b" 503 ", status)

    def test_slow_connections_do_not_hold_the_page_up(self):
        # Forty connections that send a request head a line at a time and never finish it
        # (any local process could): a normal request still gets its answer, in seconds.
        web = w.WebServer(self.db).start()
        self.addCleanup(web.stop)
        slow = []
        self.addCleanup(lambda: [s.close() for s in slow])
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", web.port), timeout=30)
            s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n".encode())
            slow.append(s)
        stop = threading.Event()

        def trickle():
            while not stop.wait(1):
                for s in slow:
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass  # mailtap gave up on it

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(stop.set)
        started = time.monotonic()
        r = w.request(web.port, "/api/sessions")
        self.assertEqual(r.status, 200)
        self.assertLess(time.monotonic() - started, 20)

    def test_proxy_serves_the_page_with_web(self):
        db = self.tmp / "proxy-web.db"
        port = h.free_port()
        with h.Mailtap(self.postfix.submission, ca_file=self.pki.ca_cert, db=db,
                       extra_args=["--web", f"127.0.0.1:{port}"]) as mt:
            self.assertIn(f"web page at http://127.0.0.1:{port}/", mt.stderr)
            self.assertEqual(w.openssl_mappings(mt.proc.pid), [])
            self.assertEqual(w.request(port, "/api/sessions").json()["sessions"], [])
            cp = h.swaks(mt.port, auth="LOGIN", user=w.BOB[0], password=w.BOB[1],
                         to="bob@example.test")
            self.assertEqual(cp.returncode, 0, cp.stdout)
            rows = w.request(port, "/api/sessions").json()["sessions"]
            self.assertEqual([r["auth_user"] for r in rows], ["bob"])
            self.assertEqual(w.request(port, "/", host="evil.example").status, 421)


def civetweb_has_ipv6() -> bool:
    """What mailtap asks its CivetWeb: built with USE_IPV6 (mg_check_feature bit 8)?"""
    return bool(ctypes.CDLL("libcivetweb.so.1").mg_check_feature(8))


class WebListenTest(h.IntegrationCase):
    """Where the page can listen, and a failure to listen told as it is. No Postfix: an empty
    record will do."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "empty.db"
        with h.Mailtap(f"127.0.0.1:{h.closed_port()}", ca_file=cls.pki.ca_cert, db=cls.db):
            pass

    def web(self, listen: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([str(h.mailtap_bin()), "web", "--db", str(self.db), "--listen",
                               listen], capture_output=True, text=True, timeout=timeout)

    def test_ipv6_loopback_is_served_or_refused_up_front_with_the_true_reason(self):
        port = h.free_port()
        if civetweb_has_ipv6():
            web = w.WebServer(self.db, extra_args=["--listen", f"[::1]:{port}"]).start()
            self.addCleanup(web.stop)
            self.assertIn(f"http://[::1]:{port}/", web.url)
            with socket.create_connection(("::1", port), timeout=10) as sock:
                sock.sendall(f"GET /api/sessions HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n"
                             .encode())
                self.assertTrue(sock.recv(64).startswith(b"HTTP/1.1 200 "))
            return
        for argv in (["web", "--db", str(self.db), "--listen", f"[::1]:{port}"],
                     ["proxy", "--upstream", f"127.0.0.1:{h.closed_port()}", "--db",
                      str(self.tmp / "proxy.db"), "--listen", f"127.0.0.1:{h.free_port()}",
                      "--web", f"[::1]:{port}"]):
            with self.subTest(argv[0]):
                cp = subprocess.run([str(h.mailtap_bin()), *argv], capture_output=True,
                                    text=True, timeout=30)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertIn(f"cannot serve the web page on [::1]:{port}", cp.stderr)
                self.assertIn("built without IPv6", cp.stderr)
                self.assertIn(f"127.0.0.1:{port}", cp.stderr)  # what will do instead
                self.assertNotIn("in use", cp.stderr)
                self.assertNotIn("listening on", cp.stderr)

    def test_a_port_in_use_is_named_as_such(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            cp = self.web(f"127.0.0.1:{port}")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(f"cannot serve the web page on 127.0.0.1:{port}: Address already in use",
                      cp.stderr)
        self.assertIn("choose another ADDR:PORT", cp.stderr)


NOBODY = 65534


def as_nobody(*command: str) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


class WebNoThreadTest(h.IntegrationCase):
    """Each answer that reads the record runs on a thread of its own (a full-size stack). When
    the system starts no more threads for `mailtap web` (its user's limit on processes, ulimit
    -u, reached), such a request gets a 503 that says why, and a line on stderr, and the server
    answers again once threads can be started: std::thread's failure used to reach CivetWeb's
    thread and end the process (and with `proxy --web` the relay). Provoked for real: the
    server runs as nobody (the limit does not bind root here) and its limit is lowered under it."""

    def test_a_request_no_thread_can_be_started_for_gets_a_503_and_the_server_lives_on(self):
        home = Path(tempfile.mkdtemp(prefix="mailtap-nothread-"))
        self.addCleanup(shutil.rmtree, home, ignore_errors=True)
        db = home / "record.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db) as mt:
                h.smtplib_send(mt.port, b"Subject: threads\r\n\r\nhello\r\n")
        finally:
            sink.close()
        for path in [home, *home.iterdir()]:
            os.chown(path, NOBODY, NOBODY)
        # Its own HOME: root's config directory is not nobody's to read. The requests come
        # from root, another local user than the server's: let in by name.
        with w.WebServer(db, run_as=as_nobody(), env={"HOME": str(home)},
                         extra_args=["--allow-local-user", "root"]) as web:
            (session,) = [s["id"] for s in w.request(web.port, "/api/sessions").json()["sessions"]]
            paths = ["/api/sessions", f"/api/sessions/{session}",
                     f"/api/sessions/{session}/download", f"/api/sessions/{session}/messages/1/raw"]
            limit = subprocess.run(as_nobody("prlimit", "--pid", str(web.proc.pid), "--nproc",
                                             "--raw", "--noheadings", "--output=SOFT"),
                                   capture_output=True, text=True, check=True).stdout.strip()
            # A soft limit of one process: nobody's are more, so no thread can start.
            subprocess.run(as_nobody("prlimit", "--pid", str(web.proc.pid), "--nproc=1:"),
                           check=True)
            for path in paths:
                r = w.request(web.port, path)
                self.assertEqual(r.status, 503, (path, r.body))
                self.assertEqual(r.headers["content-length"], str(len(r.body)))
                self.assertIn("no thread could be started", r.json()["error"])
            self.assertEqual(w.request(web.port, paths[2], method="HEAD").status, 503)
            # The path CivetWeb decoded is quoted on stderr escaped: %1b is an ESC there, and
            # must not reach the operator's terminal.
            self.assertEqual(w.request(web.port, "/api/sessions/%1b]0;owned%07").status, 503)
            self.assertIsNone(web.proc.poll(), web.stderr)
            subprocess.run(as_nobody("prlimit", "--pid", str(web.proc.pid), f"--nproc={limit}:"),
                           check=True)
            for path in paths:
                self.assertEqual(w.request(web.port, path).status, 200, path)
            self.assertIsNone(web.proc.poll(), web.stderr)
        self.assertIn(f"mailtap web: /api/sessions/{session}/download: answered 503: "
                      "no thread could be started", web.stderr)
        self.assertIn("mailtap web: /api/sessions/\\x1b]0;owned\\x07: answered 503: ", web.stderr)
        self.assertNotIn("\x1b", web.stderr)


MIB = 1 << 20


def vm_hwm(pid: int) -> int:
    """The process's peak resident set (VmHWM), in octets."""
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kib * 1024


def octets(obj: dict, name: str) -> bytes:
    """A byte member of the API's JSON: base64 beside `<name>_encoding`, else UTF-8 text."""
    if obj.get(name + "_encoding") == "base64":
        return base64.b64decode(obj[name])
    return obj[name].encode()


class WebLargeSessionTest(h.IntegrationCase):
    """A session whose message is larger than the 64 KiB the database holds of a body (the rest
    is in the session's body file). Its download is written as it is read from the record, and
    is byte for byte `mailtap show ID --json`; the page's view of it reads no body file and says
    what it left out."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "large.db"
        cls.message = h.large_message(1 << 20, eight_bit=True)
        cls.attachment = bytes(i * 131 % 251 for i in range(700 * 1024))
        # Quoted-printable lines end in CRLF on the wire, and so in the decoded text.
        cls.text = "caf\u00e9 \u20ac, line after line\r\n".encode() * 20000
        cls.multipart = (
            b"Subject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
            quopri.encodestring(cls.text.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n") +
            b"\r\n"
            b"--BB\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(cls.attachment).replace(b"\n", b"\r\n") + b"--BB--\r\n")
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                h.smtplib_send(mt.port, cls.multipart)
                h.smtplib_send(mt.port, cls.message)
        finally:
            sink.close()
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))
        rows = w.request(cls.web.port, "/api/sessions").json()["sessions"]
        cls.session, cls.parts_session = rows[0]["id"], rows[1]["id"]

    def test_parts_are_decoded_from_the_record(self):
        base = f"/api/sessions/{self.parts_session}/messages/1"
        m = w.request(self.web.port, base).json()
        self.assertEqual([p["size"] for p in m["parts"]], [len(self.text), len(self.attachment)])
        self.assertTrue(m["parts"][0]["text"].encode() == self.text)
        for k, want in enumerate([self.text, self.attachment]):
            r = w.request(self.web.port, f"{base}/parts/{k}")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["content-length"], str(len(want)))
            self.assertTrue(r.body == want, f"part {k}")
        self.assertEqual(w.request(self.web.port, f"{base}/parts/2").status, 404)

    def test_download_is_show_json_byte_for_byte(self):
        r = w.request(self.web.port, f"/api/sessions/{self.session}/download")
        self.assertEqual(r.status, 200)
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(self.session), "--json",
                                "--db", str(self.db)], capture_output=True, check=True).stdout
        self.assertEqual(r.headers["content-length"], str(len(shown)))
        self.assertTrue(r.body == shown, "the download differs from show --json")
        (m,) = json.loads(r.body)["messages"]
        self.assertTrue(base64.b64decode(m["body"]) == self.message)

    def test_the_page_gets_what_the_database_holds_and_how_much_is_left_out(self):
        r = w.request(self.web.port, f"/api/sessions/{self.session}")
        self.assertEqual(r.status, 200)
        self.assertLess(len(r.body), 512 * 1024)
        s = r.json()["session"]
        data = [e for e in s["events"] if e["kind"] == "data"]
        shown = b"".join(octets(e, "bytes") for e in data)
        omitted = sum(e.get("bytes_omitted", 0) for e in data)
        self.assertGreater(omitted, 0)
        self.assertEqual(len(shown) + omitted, len(h.dot_stuff(self.message)) + 3)
        self.assertTrue((h.dot_stuff(self.message) + b".\r\n").startswith(shown))
        for e in data:
            if "bytes_omitted" in e:
                self.assertEqual(e["bytes"], "")
        (m,) = s["messages"]
        self.assertTrue(m["body_preview"])
        self.assertTrue(self.message.startswith(octets(m, "body")))
        self.assertLessEqual(len(octets(m, "body")), 64 * 1024)


class WebManyCommandsMemoryTest(h.IntegrationCase):
    """A session of many commands (a client chooses how many RCPTs it sends) is written by the
    page's view and the download as it is read from the record, a batch of events at a time:
    complete JSON, the download byte for byte `mailtap show --json`, and the server's peak
    memory grows by a small part of the JSON's size. (Both used to hold the whole session: for
    50,000 RCPTs the view took 464 MiB.)"""

    RCPTS = 20000
    ADDRESS = b"r" * 900 + b"@example.test"  # under the 2048-octet command limit

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "rcpts.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                cls.send_many_rcpts(mt.port)
        finally:
            sink.close()
        with sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True) as con:
            (cls.session,) = con.execute("SELECT max(id) FROM sessions").fetchone()
            (cls.events,) = con.execute("SELECT count(*) FROM events WHERE session_id = ?",
                                        (cls.session,)).fetchone()

    @classmethod
    def send_many_rcpts(cls, port: int):
        """EHLO, MAIL, RCPTS pipelined RCPTs (a batch at a time, every reply read), DATA, QUIT."""
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s, \
                s.makefile("rb") as f:
            def reply():
                while (line := f.readline())[3:4] == b"-":
                    pass
                return line
            reply()
            for command in (b"EHLO client.test", b"MAIL FROM:<a@example.test>"):
                s.sendall(command + b"\r\n")
                reply()
            batch = 250
            for _ in range(cls.RCPTS // batch):
                s.sendall((b"RCPT TO:<" + cls.ADDRESS + b">\r\n") * batch)
                for _ in range(batch):
                    assert reply().startswith(b"250")
            s.sendall(b"DATA\r\n")
            reply()
            s.sendall(b"Subject: many\r\n\r\nhello\r\n.\r\nQUIT\r\n")
            reply()
            reply()

    def test_the_view_and_the_download_are_whole_and_do_not_hold_the_session(self):
        # As WebDownloadMemoryTest: a small ASan quarantine keeps the measure about what
        # mailtap holds.
        env = h.small_asan_quarantine()
        with w.WebServer(self.db, env=env) as web:
            self.assertEqual(w.request(web.port, "/api/sessions").status, 200)
            base = vm_hwm(web.proc.pid)
            view = w.request(web.port, f"/api/sessions/{self.session}")
            download = w.request(web.port, f"/api/sessions/{self.session}/download")
            grew = vm_hwm(web.proc.pid) - base
        self.assertEqual(view.status, 200)
        self.assertEqual(view.headers["content-length"], str(len(view.body)))
        data = view.json()
        events = data["session"]["events"]
        self.assertEqual(len(events), self.events)
        self.assertEqual([e["seq"] for e in events], sorted(e["seq"] for e in events))
        rcpts = [e for e in events if e["kind"] == "command" and e["verb"] == "RCPT"]
        self.assertEqual(len(rcpts), self.RCPTS)
        # Every RCPT's reply explained, by its seq.
        self.assertGreaterEqual(len(data["explanations"]), self.RCPTS)
        self.assertTrue(view.body.endswith(b"}\n"))

        self.assertEqual(download.status, 200)
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(self.session), "--json",
                                "--db", str(self.db)], capture_output=True, check=True).stdout
        self.assertEqual(download.headers["content-length"], str(len(shown)))
        self.assertTrue(download.body == shown, "the download differs from show --json")
        (m,) = json.loads(download.body)["messages"]
        self.assertEqual(m["body"], "Subject: many\r\n\r\nhello\r\n")

        # A batch of events and a piece of JSON each; the whole view is tens of MiB, and
        # holding it cost a multiple of that.
        self.assertGreater(len(view.body), 24 * MIB)
        self.assertLess(grew, 16 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB to send a view "
                        f"of {len(view.body) / MIB:.0f} MiB and a download of "
                        f"{len(download.body) / MIB:.0f} MiB")


class WebManyMessagesMemoryTest(h.IntegrationCase):
    """A session of many messages (a client chooses how many it sends in one session), each
    with its RCPTs and a body the database holds whole: the page's view and the download read
    its messages and their bodies' events a batch at a time, as its commands and replies:
    complete JSON, the download byte for byte `mailtap show --json`, and the server's peak
    memory grows by a small part of what the session holds. (They used to load every message
    and every body event at once: this session's bodies alone are 24 MiB.)"""

    MESSAGES = 400
    RCPTS = 5
    BASELINE_MESSAGES = 40

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "messages.db"
        # 60 KiB, under the 64 KiB of a body the database holds.
        cls.body = b"Subject: one of many\r\n\r\n" + b"x" * 78 + b"\r\n"
        cls.body = cls.body * (60 * 1024 // len(cls.body))
        cls.record_session(cls.db, cls.MESSAGES)
        with sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True) as con:
            (cls.session,) = con.execute("SELECT max(id) FROM sessions").fetchone()

    @classmethod
    def record_session(cls, db: Path, messages: int) -> None:
        """A session of `messages` messages of cls.body, each to cls.RCPTS recipients, into `db`."""
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=db) as mt, \
                    smtplib.SMTP("127.0.0.1", mt.port, local_hostname="client.test",
                                 timeout=60) as s:
                s.ehlo()
                rcpts = [f"r{k}@example.test" for k in range(cls.RCPTS)]
                for _ in range(messages):
                    s.sendmail("a@example.test", rcpts, cls.body)
                s.quit()
        finally:
            sink.close()

    @classmethod
    def small_session_db(cls) -> Path:
        """A record of one session (id 1) of BASELINE_MESSAGES messages like the large
        session's (its body, its RCPTs), made once: what a tool's peak memory on the large
        session is measured against, so that the difference is what the other messages add.
        (Against one message of a few octets it also counted what handling many 60 KiB bodies
        costs once: SQLite's page cache filling and, under AddressSanitizer, its quarantine and
        a region per size of block.)"""
        small = cls.tmp / "small.db"
        if not small.exists():
            cls.record_session(small, cls.BASELINE_MESSAGES)
        return small

    def peak(self, *args: str) -> tuple[bytes, int]:
        """`mailtap ARGS`' stdout and its peak memory (it must exit 0). As WebDownloadMemoryTest:
        a small ASan quarantine keeps the measure about what mailtap holds, not what
        AddressSanitizer keeps of what it freed (256 MiB by default)."""
        env = {**os.environ, **h.small_asan_quarantine()}
        # GNU time's own wait4: the peak of a child this (large) process forks would count
        # the pages the fork shared with it before exec.
        cp = subprocess.run(["/usr/bin/time", "-f", "%M", str(h.mailtap_bin()), *args],
                            capture_output=True, env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr[-2000:])
        return cp.stdout, int(cp.stderr.split()[-1]) * 1024

    def test_show_json_reads_it_back_as_the_download_does(self):
        """`mailtap show ID --json` writes the same JSON the same way: its peak memory exceeds
        that of showing a session of 40 such messages by a small part of what this session
        holds (it used to load every event and message: 37 MB here, against 12)."""
        small = self.small_session_db()

        def peak(db: Path, session: int) -> tuple[bytes, int]:
            return self.peak("show", str(session), "--json", "--db", str(db))
        shown, shown_peak = peak(self.db, self.session)
        _, small_peak = peak(small, 1)
        (m, *_) = json.loads(shown)["messages"]
        self.assertTrue(octets(m, "body") == self.body)
        self.assertGreater(len(shown), 40 * MIB)
        self.assertLess(shown_peak - small_peak, 12 * MIB,
                        f"show --json peaked at {shown_peak / MIB:.1f} MiB, "
                        f"{small_peak / MIB:.1f} for 40 such messages")

    def test_show_and_export_read_it_back_a_batch_at_a_time(self):
        """The transcript, `--raw`, `--message N` and every export format read the session's
        events and messages back a batch at a time, as `show --json` does: each peaks within
        12 MiB of the same on a session of 40 such messages (they used to load every event and
        message: this session's bodies alone are 24 MiB), and each output is whole."""
        small = self.small_session_db()
        peak = self.peak

        big = str(self.session)
        last = str(self.MESSAGES)
        mbox_from = re.compile(rb"^From ", re.M)
        cases = {
            "show": (["show", big], ["show", "1"],
                     lambda out: out.count(b"(print it with: mailtap show") == self.MESSAGES),
            "show --raw": (["show", big, "--raw"], ["show", "1", "--raw"],
                           lambda out: out.count(b"\r\nquit\r\n") == 1
                           and out.count(self.body) == self.MESSAGES),
            "show --message N": (["show", big, "--message", last],
                                 ["show", "1", "--message", "1"], lambda out: out == self.body),
            "export": (["export", big], ["export", "1"],
                       lambda out: len(json.loads(out)["messages"]) == self.MESSAGES),
            "export --format jsonl": (["export", big, "--format", "jsonl"],
                                      ["export", "1", "--format", "jsonl"],
                                      lambda out: len(json.loads(out)["events"]) > 6 * 400),
            "export --format mbox": (["export", big, "--format", "mbox"],
                                     ["export", "1", "--format", "mbox"],
                                     lambda out: len(mbox_from.findall(out)) == self.MESSAGES),
        }
        for name, (args, small_args, whole) in cases.items():
            with self.subTest(name):
                out, big_peak = peak(*args, "--db", str(self.db))
                _, small_peak = peak(*small_args, "--db", str(small))
                self.assertTrue(whole(out), f"{name}: {len(out)} octets, not the whole session")
                self.assertLess(big_peak - small_peak, 12 * MIB,
                                f"{name} peaked at {big_peak / MIB:.1f} MiB, "
                                f"{small_peak / MIB:.1f} for 40 such messages")
        with self.subTest("export --format eml -o DIR"):
            out_dir = self.tmp / "eml"
            listed, big_peak = peak("export", big, "--format", "eml", "-o", str(out_dir),
                                    "--db", str(self.db))
            _, small_peak = peak("export", "1", "--format", "eml", "-o", str(self.tmp / "1.eml"),
                                 "--db", str(small))
            self.assertEqual(len(listed.splitlines()), self.MESSAGES)
            self.assertEqual((out_dir / f"session-{big}-message-{last}.eml").read_bytes(),
                             self.body)
            self.assertLess(big_peak - small_peak, 12 * MIB,
                            f"export eml peaked at {big_peak / MIB:.1f} MiB, "
                            f"{small_peak / MIB:.1f} for 40 such messages")
            shutil.rmtree(out_dir)

    def test_the_view_and_the_download_are_whole_and_do_not_hold_the_session(self):
        env = h.small_asan_quarantine()
        with w.WebServer(self.db, env=env) as web:
            self.assertEqual(w.request(web.port, "/api/sessions").status, 200)
            base = vm_hwm(web.proc.pid)
            view = w.request(web.port, f"/api/sessions/{self.session}")
            download = w.request(web.port, f"/api/sessions/{self.session}/download")
            grew = vm_hwm(web.proc.pid) - base
        self.assertEqual(view.status, 200)
        self.assertEqual(view.headers["content-length"], str(len(view.body)))
        s = view.json()["session"]
        self.assertEqual(len(s["messages"]), self.MESSAGES)
        self.assertEqual([m["seq"] for m in s["messages"]], list(range(1, self.MESSAGES + 1)))
        for m in s["messages"]:
            self.assertEqual(len(m["recipients"]), self.RCPTS)
            self.assertTrue(octets(m, "body") == self.body)
            self.assertNotIn("body_preview", m)
        data = [e for e in s["events"] if e["kind"] == "data"]
        self.assertTrue(b"".join(octets(e, "bytes") for e in data) ==
                        (h.dot_stuff(self.body) + b".\r\n") * self.MESSAGES)
        self.assertEqual([e["seq"] for e in s["events"]], sorted(e["seq"] for e in s["events"]))

        self.assertEqual(download.status, 200)
        shown = subprocess.run([str(h.mailtap_bin()), "show", str(self.session), "--json",
                                "--db", str(self.db)], capture_output=True, check=True).stdout
        self.assertEqual(download.headers["content-length"], str(len(shown)))
        self.assertTrue(download.body == shown, "the download differs from show --json")

        self.assertGreater(len(view.body), 40 * MIB)
        self.assertLess(grew, 16 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB to send a view "
                        f"of {len(view.body) / MIB:.0f} MiB and a download of "
                        f"{len(download.body) / MIB:.0f} MiB")


def multiply_event(db, session: int, seq: int, copies: int, stored_at: int) -> None:
    """`copies` more of event `seq` of `session` right after it, the events after moved on, each
    its one octet in the body file at `stored_at`: a message of a million BDAT chunks without
    a million round trips to record it."""
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        columns = ", ".join(row[1] for row in con.execute("PRAGMA table_info(events)")
                            if row[1] not in ("id", "seq"))
        # Through negative seqs: UNIQUE (session_id, seq) holds after each row's update.
        con.execute("UPDATE events SET seq = -(seq + ?) WHERE session_id = ? AND seq > ?",
                    (copies, session, seq))
        con.execute("UPDATE events SET seq = -seq WHERE session_id = ? AND seq < 0", (session,))
        con.execute("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
                    f"INSERT INTO events (seq, {columns}) SELECT ? + i, {columns} FROM events, k "
                    "WHERE session_id = ? AND seq = ?", (copies, seq, session, seq))
        con.execute("UPDATE events SET bytes = X'', file_offset = ?, file_length = 1 "
                    "WHERE session_id = ? AND seq > ? AND seq <= ?",
                    (stored_at, session, seq, seq + copies))


class WebManyBodyPiecesMemoryTest(h.IntegrationCase):
    """A message of many BDAT chunks (its client chooses their size: `BDAT 1` each): the page's
    view and the download, and the message's own routes (its view, /raw, a part), read its
    body's pieces from the record a batch at a time, in the pass that counts the answer's
    length and in the one that sends it. (They gathered every piece of the message in one
    vector in each: about 100 octets a piece, 100 MB for a million chunks.)"""

    CHUNKS = 300_000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "chunks.db"
        sink = h.BodySink(chunking=True)
        try:
            # More than the database holds of a body: the rest of it is in the body file.
            first = b"Subject: many chunks\r\n\r\n" + b"x" * 100_000
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt, \
                    h.SmtpSocket(mt.port) as c:
                c.cmd(b"EHLO client.test")
                c.cmd(b"MAIL FROM:<a@example.test>")
                c.cmd(b"RCPT TO:<b@example.test>")
                assert c.cmd(b"BDAT %d\r\n%s" % (len(first), first), eol=b"").code == 250
                assert c.cmd(b"BDAT 1\r\nx", eol=b"").code == 250
                assert c.cmd(b"BDAT 1 LAST\r\ny", eol=b"").code == 250
                c.cmd(b"QUIT")
                # A one-chunk message of its own session: what the same requests cost anyway.
                with h.SmtpSocket(mt.port) as small:
                    small.cmd(b"EHLO client.test")
                    small.cmd(b"MAIL FROM:<a@example.test>")
                    small.cmd(b"RCPT TO:<b@example.test>")
                    assert small.cmd(b"BDAT %d LAST\r\n%s" % (len(first), first),
                                     eol=b"").code == 250
                    small.cmd(b"QUIT")
        finally:
            sink.close()
        with contextlib.closing(sqlite3.connect(cls.db)) as con:
            # The chunk of "x" (in the body file too, after the first), and the last octet of
            # the first chunk's in the body file (an x).
            (cls.session, x) = con.execute(
                "SELECT session_id, seq FROM events WHERE kind = 'bdat_chunk' AND "
                "(length(bytes) = 1 OR file_length = 1) ORDER BY seq").fetchone()
            (last_x,) = con.execute("SELECT file_offset + file_length - 1 FROM events WHERE "
                                    "kind = 'bdat_chunk' AND file_length > 1 AND session_id = ?",
                                    (cls.session,)).fetchone()
            (cls.small_session,) = con.execute("SELECT max(id) FROM sessions").fetchone()
        assert cls.small_session != cls.session
        multiply_event(cls.db, cls.session, x, cls.CHUNKS, last_x)
        cls.body = first + b"x" * (cls.CHUNKS + 1) + b"y"

    def requests_growth(self, *paths) -> tuple:
        """The answers to `paths`, in turn, and how much mailtap web's peak grew for them
        beyond what the same requests for the one-chunk message took before them (what any
        request costs once, the sanitizers' share of it most of all)."""
        with w.WebServer(self.db, env=h.small_asan_quarantine()) as web:
            self.assertEqual(w.request(web.port, "/api/sessions").status, 200)
            small = str(self.small_session)
            for path in paths:
                warm = w.request(web.port, path.replace(str(self.session), small, 1))
                self.assertEqual(warm.status, 200, path)
            base = vm_hwm(web.proc.pid)
            answers = [w.request(web.port, path) for path in paths]
            return answers, vm_hwm(web.proc.pid) - base

    def test_the_view_and_the_download_do_not_hold_the_body_pieces(self):
        session = self.session
        (view, download), grew = self.requests_growth(f"/api/sessions/{session}",
                                                      f"/api/sessions/{session}/download")
        self.assertEqual(view.status, 200)
        (m,) = view.json()["session"]["messages"]
        self.assertTrue(m["body_preview"])
        self.assertTrue(self.body.startswith(octets(m, "body")))
        self.assertEqual(download.status, 200)
        (m,) = json.loads(download.body)["messages"]
        self.assertTrue(octets(m, "body") == self.body, "the download's body is not the message's")
        self.assertLess(grew, 16 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for the view "
                        f"and the download of a message of {self.CHUNKS} chunks")

    def test_the_message_its_source_and_its_part_do_not_hold_the_body_pieces(self):
        base = f"/api/sessions/{self.session}/messages/1"
        (message, raw, part), grew = self.requests_growth(base, f"{base}/raw", f"{base}/parts/0")
        self.assertEqual(message.status, 200)
        self.assertEqual(len(message.json()["parts"]), 1)
        self.assertEqual(raw.status, 200)
        self.assertTrue(raw.body == self.body, "the source is not the message's")
        self.assertEqual(part.status, 200)
        self.assertTrue(part.body == self.body.split(b"\r\n\r\n", 1)[1],
                        "the part is not the message's text")
        self.assertLess(grew, 16 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for the message, "
                        f"its source and its part, of {self.CHUNKS} chunks")


class WebDownloadMemoryTest(h.IntegrationCase):
    """A message's source downloaded through the web API comes from the record as it is sent:
    byte for byte what the server got, and the server's peak memory grows by a small part of
    the message's size, however many download it at once. (It used to hold the body twice per
    request: 32 downloads of a 64 MiB message needed 4 GiB, in the relay's own process with
    `proxy --web`.)"""

    SIZE = 64 * MIB

    @staticmethod
    def big_message(size: int) -> bytes:
        # CRLF lines, some starting with a dot (stuffed on the wire, unstuffed in the download).
        line = b"%07d " + b"x" * 66 + b"\r\n"
        lines = [(b"." if i % 5 == 0 else b"") + line % i for i in range(size // len(line))]
        return b"Subject: a large message\r\n\r\n" + b"".join(lines)

    @staticmethod
    def download(port: int, path: str) -> tuple:
        """Status, headers, SHA-256 and length of the body, read 1 MiB at a time."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
            r = conn.getresponse()
            digest, length = hashlib.sha256(), 0
            while chunk := r.read(MIB):
                digest.update(chunk)
                length += len(chunk)
            return r.status, {k.lower(): v for k, v in r.getheaders()}, digest.hexdigest(), length
        finally:
            conn.close()

    def test_large_downloads_are_exact_and_do_not_hold_the_message(self):
        message = self.big_message(self.SIZE)
        db = self.tmp / "large.db"
        sink = h.BodySink()
        self.addCleanup(sink.close)
        with h.Mailtap(sink.address, tls="none", db=db, extra_args=["--max-body", "100MiB"]) as mt:
            h.smtplib_send(mt.port, message)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            session, size, sha256, truncated = con.execute(
                "SELECT session_id, size, sha256, body_truncated FROM messages").fetchone()
        self.assertEqual((size, truncated), (len(message), 0))
        self.assertEqual(sha256, hashlib.sha256(message).hexdigest())

        # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by default) before
        # it is reused; a small one keeps the measure about what mailtap holds.
        env = h.small_asan_quarantine()
        with w.WebServer(db, env=env) as web:
            path = f"/api/sessions/{session}/messages/1/raw"
            self.assertEqual(w.request(web.port, "/api/sessions").status, 200)
            base = vm_hwm(web.proc.pid)
            status, headers, digest, length = self.download(web.port, path)
            self.assertEqual(status, 200)
            self.assertEqual((length, digest), (len(message), sha256))
            self.assertEqual(headers["content-length"], str(len(message)))
            self.assertEqual(headers["content-type"], "message/rfc822")
            self.assertEqual(headers["content-disposition"],
                             f'attachment; filename="mailtap-session-{session}-message-1.eml"')
            self.assertEqual(headers["cache-control"], "no-store")
            self.assertTrue(headers["content-security-policy"].startswith("default-src 'none'"))
            with ThreadPoolExecutor(4) as pool:  # a few tabs or a script at once
                for got in pool.map(lambda _: self.download(web.port, path), range(4)):
                    self.assertEqual(got[0], 200)
                    self.assertEqual(got[2:], (sha256, len(message)))
            grew = vm_hwm(web.proc.pid) - base
            # A chunk or two per download (256 KiB each); a copy of the message would be 64 MiB.
            self.assertLess(grew, 16 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for five "
                            f"downloads of a {self.SIZE // MIB} MiB message")

    def test_a_body_recorded_before_schema_6_is_not_held_either(self):
        """Before schema 6 a body was stored wholly in its events' rows, and stays there after
        the migration: the session view gets its first 64 KiB, and the downloads read the rows
        a chunk at a time, as they read a body file. (They used to hold it whole, several times:
        the session view sent it twice.)"""
        self.check_an_old_layout_is_not_held("schema 6", h.body_files_into_rows)

    def test_a_body_recorded_before_schema_4_is_not_held_either(self):
        """Before schema 4 a message's body was stored in its `messages` row (and in its events'
        rows): the same. (The session view loaded that row's body whole.)"""
        self.check_an_old_layout_is_not_held("schema 4", h.bodies_into_message_rows)

    def check_an_old_layout_is_not_held(self, before: str, to_old_layout):
        size = 64 * MIB
        message = self.big_message(size)
        db = self.tmp / f"before {before}.db"
        sink = h.BodySink()
        self.addCleanup(sink.close)
        with h.Mailtap(sink.address, tls="none", db=db, extra_args=["--max-body", "100MiB"]) as mt:
            h.smtplib_send(mt.port, message)
        to_old_layout(db)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            session, sha256 = con.execute("SELECT session_id, sha256 FROM messages").fetchone()
        env = h.small_asan_quarantine()
        with w.WebServer(db, env=env) as web:
            self.assertEqual(w.request(web.port, "/api/sessions").status, 200)
            base = vm_hwm(web.proc.pid)
            r = w.request(web.port, f"/api/sessions/{session}")
            self.assertEqual(r.status, 200)
            self.assertLess(len(r.body), MIB)
            (m,) = json.loads(r.body)["session"]["messages"]
            self.assertTrue(m["body_preview"])
            self.assertTrue(message.startswith(octets(m, "body")))
            self.assertLessEqual(len(octets(m, "body")), 64 * 1024)
            status, _, digest, length = self.download(
                web.port, f"/api/sessions/{session}/messages/1/raw")
            self.assertEqual((status, digest, length), (200, sha256, len(message)))
            status, _, _, length = self.download(web.port, f"/api/sessions/{session}/download")
            self.assertEqual(status, 200)
            self.assertGreater(length, len(message))
            self.assertEqual(w.request(web.port, f"/api/sessions/{session}/messages/1").status,
                             200)
            grew = vm_hwm(web.proc.pid) - base
            # A chunk or two per request, SQLite's caches, the allocator's own (about 12 MiB
            # here, 25 under ASan, whatever the size); a copy of the message would be 64 MiB.
            self.assertLess(grew, 32 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for a "
                            f"{size // MIB} MiB message recorded before {before}")

    def test_the_message_view_gets_the_start_of_a_large_text(self):
        """`messages/N` gives the first MiB of a text part with `text_truncated`, the whole being
        at the part's URL, and reads the message from the record a chunk at a time. (It used to
        give the whole text in the JSON and peak at five times the message: 1.3 GB for 256 MiB;
        then at one copy of it, 2.3 GB for a view of a 2.15 GiB message.)"""
        size = 32 * MIB
        message = self.big_message(size)
        db = self.tmp / "text.db"
        sink = h.BodySink()
        self.addCleanup(sink.close)
        with h.Mailtap(sink.address, tls="none", db=db, extra_args=["--max-body", "100MiB"]) as mt:
            h.smtplib_send(mt.port, message)
        env = h.small_asan_quarantine()
        with w.WebServer(db, env=env) as web:
            session = w.request(web.port, "/api/sessions").json()["sessions"][0]["id"]
            base = vm_hwm(web.proc.pid)
            r = w.request(web.port, f"/api/sessions/{session}/messages/1")
            grew = vm_hwm(web.proc.pid) - base
            self.assertEqual(r.status, 200)
            # The MiB of text a few times over and a chunk or two; not the message.
            self.assertLess(grew, 16 * MIB,
                            f"mailtap web grew {grew / MIB:.1f} MiB for the view of a "
                            f"{size // MIB} MiB message")
            self.assertLess(len(r.body), 2 * MIB)
            (part,) = r.json()["parts"]
            body = message.split(b"\r\n\r\n", 1)[1]
            self.assertEqual(part["size"], len(body))
            self.assertTrue(part["text_truncated"])
            self.assertEqual(len(part["text"]), MIB)
            self.assertTrue(body.startswith(part["text"].encode()))
            whole = w.request(web.port, part["url"])
            self.assertEqual(whole.status, 200)
            self.assertTrue(whole.body == body)

    def test_a_message_of_only_delimiter_lines_costs_a_bounded_view(self):
        """A multipart of nothing but delimiter lines makes a part every 5 octets: 8 MiB of them
        cost half a GiB when every part was kept (under `proxy --web`, anyone who could send
        mail through the proxy could exhaust it by having the message viewed). The view lists
        the first 10,000 parts and counts the rest."""
        lines = 8 * MIB // 5
        message = (b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
                   b"--b\r\n" * lines)
        db = self.tmp / "delimiters.db"
        sink = h.BodySink()
        self.addCleanup(sink.close)
        with h.Mailtap(sink.address, tls="none", db=db, extra_args=["--max-body", "100MiB"]) as mt:
            h.smtplib_send(mt.port, message)
        with w.WebServer(db) as web:
            session = w.request(web.port, "/api/sessions").json()["sessions"][0]["id"]
            base = vm_hwm(web.proc.pid)
            r = w.request(web.port, f"/api/sessions/{session}/messages/1")
            grew = vm_hwm(web.proc.pid) - base
            self.assertEqual(r.status, 200)
            m = r.json()
            self.assertEqual(len(m["parts"]), 10000)
            self.assertEqual(m["parts_left_out"], lines - 1 - 10000)
            self.assertLess(len(r.body), 4 * MIB)
            self.assertLess(grew, 32 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for the "
                            "view of 8 MiB of delimiter lines")
            self.assertEqual(w.request(web.port, m["parts"][-1]["url"]).status, 200)
            self.assertEqual(
                w.request(web.port, f"/api/sessions/{session}/messages/1/parts/10000").status, 404)

    def test_views_of_a_large_multipart_message_do_not_hold_it(self):
        """The message view and its parts, several at once, of a 64 MiB message with a text part
        and a base64 attachment: the right sizes and octets, and the server's peak grows by a
        few MiB, not by the message (it used to hold a copy per request)."""
        text = self.big_message(8 * MIB).split(b"\r\n\r\n", 1)[1]
        attachment = bytes(i * 131 % 251 for i in range(40 * MIB))
        message = (
            b"Subject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n"
            b"--BB\r\nContent-Type: text/plain\r\n\r\n" + text + b"\r\n"
            b"--BB\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(attachment).replace(b"\n", b"\r\n") + b"--BB--\r\n")
        self.assertGreater(len(message), 60 * MIB)
        db = self.tmp / "parts.db"
        sink = h.BodySink()
        self.addCleanup(sink.close)
        with h.Mailtap(sink.address, tls="none", db=db, extra_args=["--max-body", "100MiB"]) as mt:
            h.smtplib_send(mt.port, message)
        env = h.small_asan_quarantine()
        with w.WebServer(db, env=env) as web:
            session = w.request(web.port, "/api/sessions").json()["sessions"][0]["id"]
            base_path = f"/api/sessions/{session}/messages/1"
            base = vm_hwm(web.proc.pid)

            def view(_):
                r = w.request(web.port, base_path)
                self.assertEqual(r.status, 200)
                return r.json()

            with ThreadPoolExecutor(4) as pool:
                views = list(pool.map(view, range(4)))
                parts = list(pool.map(lambda k: self.download(web.port, f"{base_path}/parts/{k}"),
                                      [0, 1, 0, 1]))
            grew = vm_hwm(web.proc.pid) - base
            for m in views:
                self.assertEqual([p["size"] for p in m["parts"]], [len(text), len(attachment)])
                self.assertTrue(m["parts"][0]["text_truncated"])
                self.assertTrue(text.startswith(m["parts"][0]["text"].encode()))
            for k, (status, headers, digest, length) in zip([0, 1, 0, 1], parts):
                want = [text, attachment][k]
                self.assertEqual((status, length), (200, len(want)))
                self.assertEqual(digest, hashlib.sha256(want).hexdigest())
            self.assertLess(grew, 24 * MIB, f"mailtap web grew {grew / MIB:.1f} MiB for 8 views "
                            f"of a {len(message) // MIB} MiB message")


class WebSearchTest(h.IntegrationCase):
    """Text searches on a record large enough that one takes over a second: the list and the
    sessions are answered meanwhile (a search has its own connection), and a search whose
    client has gone stops, rather than hold up the searches behind it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = cls.tmp / "search.db"
        sink = h.BodySink()
        try:
            with h.Mailtap(sink.address, tls="none", db=cls.db) as mt:
                # 60 KB: all of it in the database (its first 64 KiB), none in a body file.
                h.smtplib_send(mt.port, h.make_message(h.unique_token("big"),
                                                       body="searchable text\n" * 3700))
        finally:
            sink.close()
        cls.web = cls._stack.enter_context(w.WebServer(cls.db))
        # Copies of that session and its events, in SQL: thousands through the proxy would
        # take minutes. As many as make a search take over a second here.
        copies = 1000
        while True:
            cls.copy_first_session(copies)
            cls.search_seconds = cls.timed_search()
            if cls.search_seconds > 1.2 or copies > 30000:
                break
            copies *= 2

    @classmethod
    def copy_first_session(cls, n: int):
        with sqlite3.connect(cls.db) as db:
            def columns(table, leave_out):
                return ", ".join(row[1] for row in db.execute(f"PRAGMA table_info({table})")
                                 if row[1] not in leave_out)
            top = db.execute("SELECT max(id) FROM sessions").fetchone()[0]
            sessions = columns("sessions", ("id",))
            db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                       f"WHERE i < ?) INSERT INTO sessions ({sessions}) SELECT {sessions} "
                       "FROM n, sessions WHERE sessions.id = 1", (n,))
            events = columns("events", ("id", "session_id"))
            db.execute(f"INSERT INTO events (session_id, {events}) SELECT s.id, {events} "
                       "FROM sessions s, events e WHERE s.id > ? AND e.session_id = 1", (top,))

    @classmethod
    def timed_search(cls) -> float:
        start = time.monotonic()
        r = w.request(cls.web.port, "/api/sessions?q=no%20such%20text&limit=5")
        assert r.status == 200, r.body
        return time.monotonic() - start

    def start_search(self, text: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.web.port), timeout=60)
        sock.sendall(f"GET /api/sessions?q={text}&limit=5 HTTP/1.1\r\n"
                     f"Host: 127.0.0.1:{self.web.port}\r\n\r\n".encode())
        return sock

    @staticmethod
    def read_all(sock: socket.socket) -> bytes:
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        return data

    def test_the_list_and_a_session_are_answered_while_searches_run(self):
        self.assertGreater(self.search_seconds, 1.0, "the record is too small for this test")
        searches = [self.start_search(f"nothing{i}") for i in range(2)]
        try:
            time.sleep(0.2)  # the first search is running, the second waits for it
            for path in ["/api/sessions?limit=50", "/api/sessions/1"]:
                start = time.monotonic()
                r = w.request(self.web.port, path)
                took = time.monotonic() - start
                self.assertEqual(r.status, 200, r.body)
                # Behind the searches it would wait for one and a half of them at least.
                self.assertLess(took, self.search_seconds / 2,
                                f"{path} waited {took:.2f}s behind the searches "
                                f"(one takes {self.search_seconds:.2f}s)")
            for sock in searches:
                self.assertIn(b" 200 ", self.read_all(sock).split(b"\r\n", 1)[0])
        finally:
            for sock in searches:
                sock.close()

    def cpu_seconds(self) -> float:
        """The web server's CPU time so far (user + system): what searches cost it, which the
        machine's load does not stretch as it does their wall-clock time."""
        fields = Path(f"/proc/{self.web.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_for_cpu(self, since: float, seconds: float):
        """Until the server has spent `seconds` of CPU time since `since`: a search is under way."""
        deadline = time.monotonic() + 60
        while self.cpu_seconds() - since < seconds:
            self.assertLess(time.monotonic(), deadline, "the search never got under way")
            time.sleep(0.01)

    # Every search here looks for text starting "no such text": what a search costs depends on
    # how often the text's first character occurs in what it reads, and these must cost alike.
    def test_a_running_search_whose_client_has_gone_stops(self):
        # A page that typed on while its search ran: the running search stops, and the next one
        # has its turn at once. Measured in the server's CPU time, from the first search to the
        # end of the second, against a search alone: run to its end, the first would cost a
        # whole search more (2x); stopped, the twentieth of one it had done and a few events.
        before = self.cpu_seconds()
        self.timed_search()
        alone = self.cpu_seconds() - before
        before = self.cpu_seconds()
        first = self.start_search("no%20such%20text%20first")
        try:
            self.wait_for_cpu(before, alone / 20)
            second = self.start_search("no%20such%20text%20second")
        finally:
            first.close()
        reply = self.read_all(second)
        self.assertIn(b" 200 ", reply.split(b"\r\n", 1)[0])
        spent = self.cpu_seconds() - before
        self.assertLess(spent, 1.5 * alone, f"the two searches took {spent:.2f}s of CPU, one "
                        f"alone {alone:.2f}s: the abandoned one ran on")

    def test_searches_whose_client_has_gone_are_not_run(self):
        # A page that typed on: its earlier searches are abandoned, the last one is awaited.
        # Measured in the server's CPU time, against a search alone just before: run on, the
        # four abandoned that are taken (a fifth gets 503) would cost four searches more; the
        # one running when its client went stops, those still waiting then are not run.
        before = self.cpu_seconds()
        self.timed_search()
        alone = self.cpu_seconds() - before
        before = self.cpu_seconds()
        for i in range(5):
            sock = self.start_search(f"no%20such%20text%20typed{i}")
            time.sleep(0.1)
            sock.close()
        time.sleep(0.3)
        last = self.read_all(self.start_search("no%20such%20text%20last"))
        self.assertIn(b" 200 ", last.split(b"\r\n", 1)[0])
        time.sleep(0.5)  # anything still running on would show in the CPU time by now
        spent = self.cpu_seconds() - before
        self.assertLess(spent, 3 * alone, f"the searches took {spent:.2f}s of CPU, one alone "
                        f"{alone:.2f}s: the abandoned ones ran on")

    def test_a_client_that_half_closes_after_its_request_gets_its_answer(self):
        # nc -N, nc -q and some scripts shut down their sending side once the request is sent
        # and read on (RFC 9112 section 9.6): that end of the request is no going away. It got
        # 503 "search abandoned: the client has gone".
        sock = self.start_search("no%20such%20text%20halfclosed")
        sock.shutdown(socket.SHUT_WR)
        reply = self.read_all(sock)
        head, body = reply.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200])
        self.assertEqual(json.loads(body), {"sessions": [], "more": False})
        # as nc -N sends it
        request = (f"GET /api/sessions?q=no%20such%20text%20nc&limit=5 HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{self.web.port}\r\n\r\n").encode()
        cp = subprocess.run(["nc", "-N", "127.0.0.1", str(self.web.port)], input=request,
                            capture_output=True, timeout=120)
        self.assertTrue(cp.stdout.startswith(b"HTTP/1.1 200 OK\r\n"), cp.stdout[:200])

    def test_searches_beyond_a_few_at_once_are_refused(self):
        searches = [self.start_search(f"many{i}") for i in range(8)]
        statuses = [self.read_all(s).split(b"\r\n", 1)[0] for s in searches]
        self.assertTrue(any(b" 503 " in s for s in statuses), statuses)
        self.assertTrue(any(b" 200 " in s for s in statuses), statuses)


if __name__ == "__main__":
    h.main()
