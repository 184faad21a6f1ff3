"""Shared by test_web.py (the JSON API over HTTP) and test_web_browser.py (headless Chromium):
a database recorded through the real proxy and Postfix, `mailtap web` run on it, and a raw
HTTP client that can send any Host header."""

import base64
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BOB = ("bob", h.USERS["bob"])
WRONG_PASSWORD = "not-bobs-password-7"

# An HTML part whose script would change the title and the text if it ran.
HTML_PART = (
    "<html><head><title>mail title</title></head><body>"
    "<p id=\"marker\">script did not run</p>"
    "<script>document.title = 'SCRIPT RAN'; "
    "document.getElementById('marker').textContent = 'SCRIPT RAN'; "
    "try { parent.document.title = 'SCRIPT RAN'; } catch (e) {}</script>"
    "<img src=\"x\" onerror=\"document.title = 'SCRIPT RAN'\">"
    "<img src=\"http://203.0.113.9/track.png\">"
    "</body></html>")


def html_message(token: str) -> bytes:
    text = (
        "From: Sender <sender@client.test>\r\n"
        "To: Bob <bob@example.test>\r\n"
        f"Subject: web test {token}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"web-boundary\"\r\n"
        "\r\n"
        "--web-boundary\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Plain part with token {token}.\r\n"
        "--web-boundary\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        f"{HTML_PART}\r\n"
        "--web-boundary--\r\n")
    return text.encode()


def record_web_database(db: Path, pki, postfix) -> dict:
    """An AUTH LOGIN session delivering an HTML message, and an AUTH LOGIN refused with 535."""
    sent = {}
    with h.Mailtap(postfix.submission, ca_file=pki.ca_cert, db=db) as mt:
        tok = h.unique_token("web")
        cp = h.swaks(mt.port, auth="LOGIN", user=BOB[0], password=BOB[1],
                     data=html_message(tok), to="bob@example.test")
        if cp.returncode != 0:
            raise RuntimeError(f"swaks LOGIN failed: {cp.stdout!r} {cp.stderr!r}")
        postfix.wait_for_message(tok, mailbox="bob")
        sent["login"] = tok
        cp = h.swaks(mt.port, auth="LOGIN", user=BOB[0], password=WRONG_PASSWORD,
                     to="bob@example.test")
        if cp.returncode == 0:
            raise RuntimeError("swaks with a wrong password succeeded")
    return sent


# Text in the charsets mail really uses, and header fields with RFC 2047 encoded words and a
# byte that is not UTF-8: what the message view must show as the sender wrote it.
CHARSET_SUBJECT = "Prix: 5 € — élève"
CHARSET_FROM = "Привет <ivan@client.test>"
CHARSET_TEXTS = [("windows-1252", "price € 5 “quoted”"), ("koi8-r", "Привет, мир"),
                 ("iso-8859-2", "ąćęłń"), ("shift_jis", "日本語"), ("utf-16le", "hi")]


def charset_message(token: str) -> bytes:
    subject = base64.b64encode(CHARSET_SUBJECT.encode()).decode()
    name, address = CHARSET_FROM.split(" ", 1)
    sender = base64.b64encode(name.encode("koi8-r")).decode()
    head = (f"From: =?koi8-r?B?{sender}?= {address}\r\n"
            "To: Bob <bob@example.test>\r\n"
            f"Subject: =?UTF-8?B?{subject}?= {token}\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"cs\"\r\n").encode()
    head += b"X-Raw: \xff not UTF-8\r\n"
    head += b"X-Mixed: =?UTF-8?B?w6k=?= caf\xe9\r\n\r\n"  # an encoded word, a raw Latin-1 byte
    body = b""
    for charset, text in CHARSET_TEXTS:
        encoded = base64.encodebytes(text.encode(charset)).replace(b"\n", b"\r\n")
        body += (f"--cs\r\nContent-Type: text/plain; charset={charset}\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n").encode() + encoded
    return head + body + b"--cs--\r\n"


def record_one_more(db: Path, pki, postfix, token: str, data: Optional[bytes] = None) -> None:
    """A session recorded while the web page is open (its message: make_message or `data`)."""
    with h.Mailtap(postfix.submission, ca_file=pki.ca_cert, db=db) as mt:
        cp = h.swaks(mt.port, auth="LOGIN", user=BOB[0], password=BOB[1],
                     data=data or h.make_message(token, to_addr="bob@example.test"),
                     to="bob@example.test")
        if cp.returncode != 0:
            raise RuntimeError(f"swaks failed: {cp.stdout!r} {cp.stderr!r}")


class WebServer:
    """Runs `mailtap web --db DB` on a free loopback port; waits for its "web page at" line."""

    READY = re.compile(r"mailtap: web page at (http://\S+/)")

    def __init__(self, db: Path, extra_args=(), env: Optional[dict] = None, run_as=()):
        self.db = db
        self.extra_args = list(extra_args)
        self.run_as = list(run_as)  # a command that runs it (setpriv as another user)
        self.env = env  # added to the test's environment
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.port = 0
        self._err: list[str] = []
        self._ready = threading.Event()

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def _read(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            self._err.append(line)
            m = self.READY.search(line)
            if m and not self._ready.is_set():
                self.url = m.group(1)
                self._ready.set()
        self.proc.stderr.close()

    def start(self) -> "WebServer":
        for _ in range(3):
            self.port = h.free_port()
            self._err.clear()
            self.proc = subprocess.Popen(
                [*self.run_as, str(h.mailtap_bin()), "web", "--db", str(self.db), "--listen",
                 f"127.0.0.1:{self.port}", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env={**os.environ, **(self.env or {})})
            threading.Thread(target=self._read, daemon=True).start()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ready.wait(0.05):
                    return self
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError(f"mailtap web not ready: {self.stderr}")
            if "in use" not in self.stderr.lower():
                raise RuntimeError(f"mailtap web exited {self.proc.returncode}: {self.stderr}")
        raise RuntimeError("no free port for mailtap web")

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        import json
        return json.loads(self.body)


def request(port: int, path: str, *, method: str = "GET", host: Optional[str] = None,
            headers: Optional[dict] = None, host_addr: str = "127.0.0.1") -> Response:
    """One HTTP request with exactly the Host header given (default: 127.0.0.1:PORT)."""
    conn = http.client.HTTPConnection(host_addr, port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
    finally:
        conn.close()


def open_event_stream(port: int) -> tuple[socket.socket, bytes]:
    """GET /api/events on a raw socket, as a page does; the socket and the status line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head and (chunk := sock.recv(4096)):
        head += chunk
    return sock, head.split(b"\r\n", 1)[0]


def hold_event_streams(port: int, count: int, timeout: float = 10) -> list[socket.socket]:
    """`count` open event streams, retrying while closed ones still hold their places."""
    held = []
    deadline = time.monotonic() + timeout
    while len(held) < count:
        sock, status = open_event_stream(port)
        if b" 200 " in status:
            held.append(sock)
            continue
        sock.close()
        if b" 503 " not in status or time.monotonic() > deadline:
            for s in held:
                s.close()
            raise AssertionError(f"no free event stream after {timeout}s: {status!r}")
        time.sleep(0.25)
    return held


def maps_of(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


OPENSSL_LIBRARIES = re.compile(r"libssl\.so\.3|libcrypto\.so\.3|/libssl\.so(\s|$)|/libcrypto\.so(\s|$)")


def openssl_mappings(pid: int) -> list[str]:
    """Lines of /proc/PID/maps that map OpenSSL (BoringSSL lives under .../android/)."""
    return [line for line in maps_of(pid).splitlines()
            if OPENSSL_LIBRARIES.search(line) and "/android/" not in line]
