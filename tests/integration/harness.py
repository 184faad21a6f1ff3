"""Integration-test harness for mailtap.

Stdlib only.  Provides:

* make_pki(dir)          -- test CA + server certificates made with the openssl CLI
* Postfix                -- a private, Gmail-like Postfix instance (context manager)
* FakeServer             -- in-process SMTP servers that misbehave on purpose
* OAuthServer            -- in-process Gmail / Microsoft 365 look-alikes for AUTH (tokens, app
                            passwords, the OAuth error challenge); TokenCommand for them
* Mailtap                -- runs `mailtap proxy` (context manager)
* client helpers         -- swaks, curl, smtplib, netcat and a raw-socket client

Environment:
  MAILTAP_BIN       path of the mailtap binary (default <repo>/build/mailtap)
  MAILTAP_KEEP_TMP  if set, temp dirs (Postfix config, queue, maillog, PKI) are kept
  MAILTAP_TEST_DEBUG if set, Postfix maillog and mailtap output are echoed on teardown
  MAILTAP_TEST_RECORD=0  start mailtap with --no-record instead of a temp --db
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import json
import os
import pwd
import pty
import re
import secrets
import select
import shlex
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

# The harness's own MAILTAP_… variables are taken out of the environment the tests pass on:
# mailtap warns about every MAILTAP_ variable it does not read (docs/config.md), and these are
# the harness's, not mailtap's.
HARNESS_ENV = {name: os.environ.pop(name) for name in
               ("MAILTAP_BIN", "MAILTAP_KEEP_TMP", "MAILTAP_TEST_DEBUG", "MAILTAP_TEST_RECORD",
                "MAILTAP_SHORT_SEND_LIB", "MAILTAP_SOCKET_EMFILE_LIB")
               if name in os.environ}
DEBUG = bool(HARNESS_ENV.get("MAILTAP_TEST_DEBUG"))
KEEP_TMP = bool(HARNESS_ENV.get("MAILTAP_KEEP_TMP"))

# Test users (Cyrus sasldb, realm example.test) and mailboxes (virtual delivery).
USERS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}
MAILBOXES = ("alice", "bob", "carol")
DOMAIN = "example.test"


def log(*args):
    if DEBUG:
        print("[harness]", *args, file=sys.stderr, flush=True)


def unique_token(prefix: str = "mt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel does not hand it out again soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on which nothing listens (connection refused)."""
    return free_port(host)


def wait_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s ({last})")


def run(cmd, *, check=True, timeout=60, input=None, env=None, cwd=None) -> subprocess.CompletedProcess:
    log("run:", " ".join(map(str, cmd)))
    cp = subprocess.run(
        [str(c) for c in cmd], input=input, capture_output=True, timeout=timeout, env=env, cwd=cwd
    )
    if check and cp.returncode != 0:
        raise RuntimeError(
            f"command failed ({cp.returncode}): {' '.join(map(str, cmd))}\n"
            f"stdout:\n{cp.stdout.decode(errors='replace')}\nstderr:\n{cp.stderr.decode(errors='replace')}"
        )
    return cp


def write_config_file(path: Union[str, Path], text: str, mode: int = 0o600) -> Path:
    """Writes a config file with exactly `mode`, whatever the umask: mailtap refuses a config
    that group or others may write (docs/config.md), which a plain write_text makes under
    umask 002 (0664), so a test would fail for a reason it is not about."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


def require_tools(*names: str) -> list[str]:
    """Names of missing executables (tests skip or fail on them)."""
    return [n for n in names if shutil.which(n) is None]


# --------------------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Pki:
    dir: Path
    ca_cert: Path  # CA certificate (use as --ca-file)
    ca_key: Path
    valid_cert: Path  # CA-signed, SAN DNS:localhost, DNS:mx.example.test, IP:127.0.0.1
    valid_key: Path
    valid_chain: Path  # key + cert in one file (Postfix smtpd_tls_chain_files)
    self_signed_cert: Path  # self-signed, CN/SAN localhost + 127.0.0.1
    self_signed_key: Path
    wrong_name_cert: Path  # CA-signed, only other.example.test
    wrong_name_key: Path
    expired_cert: Path  # CA-signed, right names, validity 2020-01-01..2020-02-01
    expired_key: Path
    other_ca_cert: Path  # an unrelated CA (for "unknown CA" tests)


_OPENSSL_CA_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied

[ server_valid ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, DNS:mx.example.test, IP:127.0.0.1

[ server_wrong ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:other.example.test

[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def _openssl(*args, cwd=None):
    return run(["openssl", *args], cwd=cwd)


def make_pki(directory: Union[str, Path]) -> Pki:
    """Create a test CA and server certificates in `directory` with the openssl CLI.

    EC P-256 keys keep this fast (well under a second).  Everything is idempotent only in the
    sense that it overwrites; call it once per temp dir.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "newcerts").mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    cnf = d / "ca.cnf"
    cnf.write_text(_OPENSSL_CA_CNF.format(dir=d))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    # CA (self-signed, 10 years, starting yesterday so clock skew does not matter)
    _openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "3650",
             "-subj", "/O=mailtap tests/CN=mailtap test CA", "-config", cnf, "-extensions", "ca_ext")
    # Unrelated CA
    _openssl("req", "-x509", *ec, "-keyout", d / "other-ca.key", "-out", d / "other-ca.pem",
             "-days", "3650", "-subj", "/O=elsewhere/CN=unrelated test CA", "-config", cnf,
             "-extensions", "ca_ext")

    def signed(name: str, cn: str, ext: str, start: str, end: str):
        key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
        _openssl("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        _openssl("ca", "-batch", "-notext", "-config", cnf, "-extensions", ext, "-in", csr,
                 "-out", crt, "-startdate", start, "-enddate", end)
        return crt, key

    now = time.gmtime(time.time() - 86400)
    start = time.strftime("%Y%m%d%H%M%SZ", now)
    far = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 2 * 365 * 86400))
    valid_cert, valid_key = signed("server", "localhost", "server_valid", start, far)
    wrong_cert, wrong_key = signed("wrong-name", "other.example.test", "server_wrong", start, far)
    expired_cert, expired_key = signed("expired", "localhost", "server_valid",
                                       "20200101000000Z", "20200201000000Z")

    ss_cert, ss_key = d / "self-signed.pem", d / "self-signed.key"
    _openssl("req", "-x509", *ec, "-keyout", ss_key, "-out", ss_cert, "-days", "825",
             "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,DNS:mx.example.test,IP:127.0.0.1",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "extendedKeyUsage=serverAuth")

    chain = d / "server-chain.pem"
    chain.write_bytes(valid_key.read_bytes() + valid_cert.read_bytes())
    for p in d.glob("*.key"):
        p.chmod(0o600)
    chain.chmod(0o600)
    return Pki(dir=d, ca_cert=d / "ca.pem", ca_key=d / "ca.key", valid_cert=valid_cert,
               valid_key=valid_key, valid_chain=chain, self_signed_cert=ss_cert,
               self_signed_key=ss_key, wrong_name_cert=wrong_cert, wrong_name_key=wrong_key,
               expired_cert=expired_cert, expired_key=expired_key,
               other_ca_cert=d / "other-ca.pem")


EC_P256 = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def issue_certificate(pki: Pki, name: str, *, san: Optional[str], cn: str = "localhost",
                      key: Iterable[str] = EC_P256, digest: str = "sha256",
                      usage: str = "keyUsage = critical, digitalSignature, keyEncipherment\n"
                                   "extendedKeyUsage = serverAuth\n") -> Pki:
    """A copy of `pki` whose valid_cert/valid_key are a new server certificate signed by its
    CA, with the subjectAltName `san` ("DNS:127.0.0.1"), or none at all for None; for
    FakeServer("good", ...) to present a certificate the standard set lacks. `key`: the
    `openssl req` options that make its key (("-newkey", "rsa:1024") for a weak one);
    `digest`: the CA's signature hash ("sha1" for a weak one); `usage`: its keyUsage and
    extendedKeyUsage lines (a misissued certificate's)."""
    d = pki.dir
    key_file, csr, crt, ext = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem",
                               d / f"{name}.ext")
    ext.write_text("basicConstraints = critical, CA:FALSE\n" + usage +
                   (f"subjectAltName = {san}\n" if san is not None else ""))
    _openssl("req", "-new", *key, "-nodes", "-keyout", key_file, "-out", csr, "-subj", f"/CN={cn}")
    _openssl("ca", "-batch", "-notext", "-config", d / "ca.cnf", "-extfile", ext, "-in", csr,
             "-out", crt, "-days", "30", "-md", digest)
    key_file.chmod(0o600)
    return dataclasses.replace(pki, valid_cert=crt, valid_key=key_file)


@dataclasses.dataclass
class ClientCertificate:
    """A client certificate for mailtap's --client-cert (extendedKeyUsage clientAuth)."""
    cert: Path  # the leaf, then `chain`'s certificates (what --client-cert takes)
    key: Path  # its key, mode 0600
    leaf: Path  # the leaf alone
    subject: str  # as mailtap records it (RFC 2253: "CN=relay client,O=mailtap tests")
    sha256: str  # the leaf's SHA-256, lower-case hex, as mailtap records it
    fingerprint: str  # as `openssl x509 -fingerprint -sha256` prints it (Postfix's map keys)


def issue_client_certificate(pki: Pki, name: str, *, issuer: str = "ca",
                             intermediate: bool = False, start: Optional[str] = None,
                             end: Optional[str] = None) -> ClientCertificate:
    """A client certificate CN=`name`, O=mailtap tests, signed by the test CA (`issuer` "ca")
    or the unrelated one ("other-ca"); with `intermediate`, by an intermediate CA of that CA,
    whose certificate follows the leaf in `.cert`. `start`/`end` (YYYYMMDDHHMMSSZ) set its
    validity (test CA only; default: from now, for 30 days)."""
    d = pki.dir
    ca_cert, ca_key = d / f"{issuer}.pem", d / f"{issuer}.key"
    chain = b""
    if intermediate:
        inter_key, inter_csr, inter = d / f"{name}-ica.key", d / f"{name}-ica.csr", d / f"{name}-ica.pem"
        ext = d / f"{name}-ica.ext"
        ext.write_text("basicConstraints = critical, CA:TRUE, pathlen:0\n"
                       "keyUsage = critical, keyCertSign, cRLSign\n")
        _openssl("req", "-new", *EC_P256, "-nodes", "-keyout", inter_key, "-out", inter_csr,
                 "-subj", f"/O=mailtap tests/CN={name} intermediate CA")
        _openssl("x509", "-req", "-in", inter_csr, "-CA", ca_cert, "-CAkey", ca_key,
                 "-set_serial", str(secrets.randbits(63)), "-days", "30",
                 "-extfile", ext, "-out", inter)
        ca_cert, ca_key, chain = inter, inter_key, inter.read_bytes()
    key, csr, leaf, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.leaf.pem", d / f"{name}.pem"
    ext = d / f"{name}.ext"
    ext.write_text("basicConstraints = critical, CA:FALSE\n"
                   "keyUsage = critical, digitalSignature\n"
                   "extendedKeyUsage = clientAuth\n")
    _openssl("req", "-new", *EC_P256, "-nodes", "-keyout", key, "-out", csr,
             "-subj", f"/O=mailtap tests/CN={name}")
    if start or end:  # openssl x509 (3.0) takes no dates: the CA's own `openssl ca` does
        if intermediate or issuer != "ca":
            raise ValueError("dates are for certificates the test CA signs itself")
        _openssl("ca", "-batch", "-notext", "-config", d / "ca.cnf", "-extfile", ext, "-in", csr,
                 "-out", leaf, "-startdate", start, "-enddate", end)
    else:
        _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
                 "-set_serial", str(secrets.randbits(63)), "-extfile", ext, "-days", "30",
                 "-out", leaf)
    key.chmod(0o600)
    cert.write_bytes(leaf.read_bytes() + chain)
    fingerprint = run(["openssl", "x509", "-in", leaf, "-noout", "-fingerprint", "-sha256"]
                      ).stdout.decode().strip().split("=", 1)[1]
    return ClientCertificate(cert=cert, key=key, leaf=leaf, subject=f"CN={name},O=mailtap tests",
                             sha256=fingerprint.replace(":", "").lower(), fingerprint=fingerprint)


def client_certificate_postfix(pki: Pki, *known: ClientCertificate) -> dict:
    """Postfix main.cf settings (Postfix(extra_main=...)) that require a client certificate
    issued by the test CA on both ports (smtpd_tls_req_ccert: a client without one, or with one
    from another CA, gets a 421 after the handshake), and let the certificates `known` relay
    by their fingerprint (relay_clientcerts, permit_tls_clientcerts), as a smarthost that
    authenticates its clients by certificate does."""
    fingerprints = ", ".join(f"{c.fingerprint}=known" for c in known)
    return {
        "smtpd_tls_ask_ccert": "yes",
        "smtpd_tls_req_ccert": "yes",
        "smtpd_tls_CAfile": pki.ca_cert,
        "smtpd_tls_fingerprint_digest": "sha256",
        "relay_clientcerts": "inline:{ " + fingerprints + " }",
        "smtpd_relay_restrictions":
            "permit_tls_clientcerts, permit_sasl_authenticated, reject_unauth_destination",
        "smtpd_recipient_restrictions":
            "permit_tls_clientcerts, permit_sasl_authenticated, reject_unauth_destination",
    }


def private_hosts_file(hosts: Union[str, Path]) -> Callable[[], None]:
    """A `preexec_fn` (Mailtap(preexec_fn=...)): the child sees `hosts` as its /etc/hosts, in a
    mount namespace of its own, so a test can give a name the addresses it needs (one name
    resolving to ::1 and 127.0.0.1) without touching the machine's file. Needs root."""
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_private, ms_bind = 0x00020000, 0x4000, 0x40000, 0x1000
    source = str(hosts).encode()

    def enter() -> None:
        # Private first: a bind mount must not propagate back to the machine's namespace.
        if (libc.unshare(clone_newns) != 0
                or libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0
                or libc.mount(source, b"/etc/hosts", None, ms_bind, None) != 0):
            err = ctypes.get_errno()
            raise OSError(err, "private /etc/hosts: " + os.strerror(err))

    return enter


# --------------------------------------------------------------------------------------
# Private Postfix
# --------------------------------------------------------------------------------------

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
{sub_port} inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
{smtps_port} inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Gmail-like Postfix instance in a temp dir.

    Services (both on 127.0.0.1, ports picked at start):
      .submission_port  -- plain SMTP requiring STARTTLS (smtpd_tls_security_level=encrypt)
      .smtps_port       -- implicit TLS (smtpd_tls_wrappermode=yes)
    AUTH PLAIN/LOGIN only after TLS, users in USERS (realm example.test; log in as
    "alice" or "alice@example.test").  Mail for alice/bob/carol@example.test is delivered to
    Maildirs under .mail_dir; other example.test recipients are unknown (550), and relaying
    elsewhere needs AUTH (and such mail is discarded: nothing leaves the machine).

    `bare_newline` is smtpd_forbid_bare_newline: "yes" (= "normalize" in 3.7.11: bare-LF
    lines are accepted as CRLF but only <CR><LF>.<CR><LF> ends DATA) or "reject"
    (any bare LF gets a 550).
    """

    def __init__(self, pki: Optional[Pki] = None, *, bare_newline: str = "yes",
                 extra_main: Optional[dict] = None, users: Optional[dict] = None,
                 mailboxes: Iterable[str] = MAILBOXES, keep: bool = KEEP_TMP):
        self.pki = pki
        self.bare_newline = bare_newline
        self.extra_main = dict(extra_main or {})
        self.users = dict(USERS if users is None else users)
        self.mailboxes = tuple(mailboxes)
        self.keep = keep
        self.host = "127.0.0.1"
        self.dir: Optional[Path] = None
        self.submission_port = 0
        self.smtps_port = 0
        self._started = False
        self._seen: set[str] = set()

    # paths ------------------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    @property
    def mail_dir(self) -> Path:
        return self.dir / "mail"

    @property
    def maillog(self) -> Path:
        return self.dir / "maillog"

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def submission(self) -> str:
        return f"{self.host}:{self.submission_port}"

    @property
    def smtps(self) -> str:
        return f"{self.host}:{self.smtps_port}"

    def maillog_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    # lifecycle --------------------------------------------------------------------
    def __enter__(self) -> "Postfix":
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root (postfix start)")
        self.dir = Path(tempfile.mkdtemp(prefix="mailtap-postfix-"))
        try:
            self._setup()
            self._start()
        except BaseException:
            self._stop()
            self._cleanup(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._stop()
        self._cleanup(failed=exc_type is not None)
        return False

    def _setup(self) -> None:
        d = self.dir
        os.chmod(d, 0o755)  # postfix/nobody must traverse it
        if self.pki is None:
            self.pki = make_pki(d / "pki")
        pf = pwd.getpwnam("postfix")
        nobody = pwd.getpwnam("nobody")
        for sub in ("conf", "conf/sasl", "queue", "data", "mail"):
            (d / sub).mkdir()
        os.chown(d / "data", pf.pw_uid, pf.pw_gid)
        os.chmod(d / "data", 0o700)
        os.chown(d / "mail", nobody.pw_uid, nobody.pw_gid)
        # smtpd reads the TLS key as root before dropping privileges: a root-only copy is fine.
        tls_chain = d / "conf" / "server-chain.pem"
        shutil.copyfile(self.pki.valid_chain, tls_chain)
        tls_chain.chmod(0o600)

        # Cyrus SASL: sasldb readable by group postfix.  Debian's smtpd ignores
        # cyrus_sasl_config_path and reads $config_directory/sasl/smtpd.conf (then
        # /usr/lib/sasl/smtpd.conf), so smtpd.conf lives in conf/sasl and we set both.
        sasl_dir = d / "conf" / "sasl"
        sasldb = sasl_dir / "sasldb2"
        for user, password in self.users.items():
            run(["saslpasswd2", "-p", "-c", "-f", sasldb, "-u", DOMAIN, user],
                input=password.encode() + b"\n")
        if self.users:
            os.chown(sasldb, 0, pf.pw_gid)
            os.chmod(sasldb, 0o640)
        (sasl_dir / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            f"sasldb_path: {sasldb}\n"
            "mech_list: PLAIN LOGIN\n"
        )
        os.chmod(sasl_dir, 0o755)

        mailbox_map = ", ".join(f"{m}@{DOMAIN}={m}/" for m in self.mailboxes)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": d / "queue",
            "data_directory": d / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": d,  # default allows only /var and /dev/stdout
            "myhostname": "mx.example.test",
            "mydomain": DOMAIN,
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "",
            # Never send anything anywhere: relayed mail (only after AUTH) is accepted and
            # discarded.  (An error: transport would make smtpd reject the RCPT outright.)
            "default_transport": "discard:outbound delivery disabled in mailtap tests",
            "relay_transport": "discard:outbound delivery disabled in mailtap tests",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtputf8_enable": "no",
            "delay_warning_time": "0",
            "smtpd_banner": "$myhostname ESMTP Postfix (mailtap test instance)",
            # Delivery to Maildirs
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": self.mail_dir,
            "virtual_mailbox_maps": "inline:{ " + mailbox_map + " }",
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            # TLS like Gmail's submission port
            "smtpd_tls_chain_files": tls_chain,
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_loglevel": "1",
            "smtpd_tls_received_header": "yes",
            # SASL
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "cyrus_sasl_config_path": sasl_dir,
            "smtpd_sasl_local_domain": DOMAIN,
            "smtpd_sasl_security_options": "noanonymous",
            "broken_sasl_auth_clients": "no",
            # Relay only for authenticated users; example.test is local
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
            # Modern strictness
            "smtpd_forbid_bare_newline": self.bare_newline,
            "smtpd_forbid_bare_newline_exclusions": "",
            "smtpd_junk_command_limit": "100",
            # Fast tests: no tarpitting after errors
            "smtpd_error_sleep_time": "0",
        }
        main.update(self.extra_main)
        (d / "conf" / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))

    def _write_master_cf(self) -> None:
        self.submission_port = free_port()
        self.smtps_port = free_port()
        while self.smtps_port == self.submission_port:
            self.smtps_port = free_port()
        (self.conf_dir / "master.cf").write_text(
            _MASTER_CF.format(sub_port=f"{self.host}:{self.submission_port}",
                              smtps_port=f"{self.host}:{self.smtps_port}"))

    def _postfix(self, *args, check=True, timeout=60):
        return run(["postfix", "-c", self.conf_dir, *args], check=check, timeout=timeout)

    def _start(self) -> None:
        for attempt in range(3):
            self._write_master_cf()
            self._postfix("check")
            try:
                self._postfix("start")
                break
            except RuntimeError:
                # lost a race for a port (postfix start fails when master cannot bind)
                if attempt < 2 and "Address already in use" in self.maillog_text():
                    log("postfix: port taken, retrying with other ports")
                    continue
                raise
        self._started = True
        wait_port(self.host, self.submission_port)
        wait_port(self.host, self.smtps_port)
        log("postfix started in", self.dir, "submission", self.submission_port,
            "smtps", self.smtps_port)

    def _master_pid(self) -> Optional[int]:
        try:
            return int((self.dir / "queue" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _stop(self) -> None:
        if not self._started:
            # start may have half-worked: still try to stop whatever runs
            if self.dir is None or self._master_pid() is None:
                return
        pid = self._master_pid()
        try:
            self._postfix("stop", check=False, timeout=30)
        except Exception as e:  # noqa: BLE001 -- teardown must continue
            log("postfix stop failed:", e)
        if pid:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _pid_alive(pid):
                time.sleep(0.05)
            if _pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self._started = False

    def _cleanup(self, failed: bool) -> None:
        if self.dir is None:
            return
        if DEBUG or failed:
            text = self.maillog_text()
            if text:
                print(f"--- postfix maillog ({self.maillog}) ---\n{text[-8000:]}",
                      file=sys.stderr)
        if self.keep:
            print(f"[harness] keeping Postfix dir {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # delivered mail ---------------------------------------------------------------
    def delivered_files(self, mailbox: Optional[str] = None) -> list[Path]:
        pattern = f"{mailbox or '*'}/*/*"
        out = []
        for p in sorted(self.mail_dir.glob(pattern)):
            if p.parent.name in ("new", "cur") and p.is_file():
                out.append(p)
        return out

    def wait_for_message(self, match: Union[str, bytes, Callable[[bytes], bool]],
                         timeout: float = 30.0, mailbox: Optional[str] = None) -> bytes:
        """Bytes of the first delivered message (as stored: LF line ends) matching `match`
        (substring or predicate).  Each file is returned at most once per instance."""
        if isinstance(match, str):
            match = match.encode()
        if isinstance(match, bytes):
            needle = match
            pred = lambda b: needle in b  # noqa: E731
        else:
            pred = match
        deadline = time.monotonic() + timeout
        while True:
            for p in self.delivered_files(mailbox):
                key = str(p)
                if key in self._seen:
                    continue
                try:
                    data = p.read_bytes()
                except OSError:
                    continue
                if pred(data):
                    self._seen.add(key)
                    return data
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise TimeoutError(
            f"no delivered message matched within {timeout}s; maillog tail:\n"
            + self.maillog_text()[-4000:])

    def no_message(self, match: Union[str, bytes], wait: float = 2.0,
                   mailbox: Optional[str] = None) -> bool:
        """True if no message containing `match` is delivered within `wait` seconds."""
        try:
            self.wait_for_message(match, timeout=wait, mailbox=mailbox)
        except TimeoutError:
            return True
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------
# Fake SMTP servers
# --------------------------------------------------------------------------------------


class _Reader:
    """Buffered reader over a (TLS) socket that records every byte received."""

    def __init__(self, sock, record: bytearray):
        self.sock = sock
        self.buf = b""
        self.record = record
        self.pace = 0.0  # octets per second to read at (0: as fast as they come)
        self._paced = (0.0, 0)  # since when, and how many octets, read at that pace

    def _fill(self) -> bool:
        chunk = self.sock.recv(16384 if self.pace else 65536)
        if not chunk:
            return False
        if self.pace:  # on a schedule, so that the reader's own work does not slow it
            since, octets = self._paced if self._paced[0] else (time.monotonic(), 0)
            self._paced = (since, octets + len(chunk))
            time.sleep(max(0.0, since + self._paced[1] / self.pace - time.monotonic()))
        self.record += chunk
        self.buf += chunk
        return True

    def readline(self) -> Optional[bytes]:
        while b"\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_until(self, marker: bytes, initial: bytes = b"") -> Optional[bytes]:
        """Bytes up to and including `marker`; the search also spans the bytes of
        `initial` that precede the buffer (for \r\n.\r\n right after the 354)."""
        searched = 0  # of hay, what cannot hold the start of the marker (a long body)
        while True:
            hay = initial + self.buf
            i = hay.find(marker, searched)
            if i >= 0:
                end = i + len(marker) - len(initial)
                out, self.buf = self.buf[:end], self.buf[end:]
                return out
            searched = max(0, len(hay) - len(marker) + 1)
            if not self._fill():
                return None


@dataclasses.dataclass
class FakeSession:
    peer: tuple
    pre_tls: bytearray = dataclasses.field(default_factory=bytearray)  # bytes received in clear
    post_tls: bytearray = dataclasses.field(default_factory=bytearray)  # bytes received in TLS
    commands: list = dataclasses.field(default_factory=list)  # (phase, raw line)
    messages: list = dataclasses.field(default_factory=list)  # raw DATA bytes incl. ".\r\n"
    tls_established: bool = False
    tls_error: Optional[str] = None
    sni: Optional[str] = None
    closed: threading.Event = dataclasses.field(default_factory=threading.Event)
    auths: list = dataclasses.field(default_factory=list)  # OAuthServer: SaslAttempt per AUTH
    authenticated: Optional[str] = None  # OAuthServer: the user AUTH succeeded for
    # FakeServer: the socket the dialogue speaks on now (TLS once it is up), for a handler
    # that paces its own reply (and returns b"").
    sock: Optional[socket.socket] = None


def paced(sess: FakeSession, pieces, interval: float) -> bytes:
    """A FakeServer reply sent a piece every `interval` s, as a tarpit does (b"": nothing
    more for the fake to send). Stops once the peer is gone."""
    for piece in pieces:
        time.sleep(interval)
        try:
            sess.sock.sendall(piece)
        except OSError:
            break
    return b""


def trickled(data: bytes) -> list:
    """`data` a byte at a time, for paced() or a client's trickle."""
    return [bytes([b]) for b in data]


class FakeServer:
    """In-process SMTP server with selectable faults (one thread per connection).

    modes:
      "no_starttls"     (a) EHLO reply lacks STARTTLS
      "inject"          (b) "220 ready" to STARTTLS plus `inject` bytes in the same write
      "self_signed"     (c) STARTTLS with a self-signed certificate
      "wrong_name"      (d) STARTTLS with a CA-signed cert for other.example.test
      "stall"           (e) accepts and never sends a greeting
      "refuse_starttls" (f) STARTTLS answered with "454 4.7.0 TLS not available"
      "good"            (g) STARTTLS with the valid CA-signed cert; after TLS records all
                            bytes and answers like a permissive server (or `replies`)
      "expired"         STARTTLS with an expired CA-signed cert
    implicit=True: TLS right after accept (port-465 style) instead of STARTTLS.

    `tls_setup(ctx)`: adjusts the server's ssl.SSLContext before its certificate is loaded
    (require a client certificate, cap the TLS version, choose the suites).

    `replies`: dict VERB -> reply bytes/str (full reply incl. CRLF, may be multi-line) or a
    callable(session, line) -> reply|None, used after TLS (and before TLS for non-STARTTLS
    verbs).  `handler(session, phase, line)` may override everything: return bytes to send,
    None to fall back to defaults.
    """

    CERT_FOR_MODE = {
        "self_signed": ("self_signed_cert", "self_signed_key"),
        "wrong_name": ("wrong_name_cert", "wrong_name_key"),
        "expired": ("expired_cert", "expired_key"),
    }
    MODES = ("no_starttls", "inject", "self_signed", "wrong_name", "stall", "refuse_starttls",
             "good", "expired")

    def __init__(self, mode: str, pki: Pki, *, implicit: bool = False,
                 inject: bytes = b"250 injected\r\n",
                 banner: bytes = b"220 fake.example.test ESMTP mailtap-fake\r\n",
                 replies: Optional[dict] = None,
                 handler: Optional[Callable] = None,
                 auth_mechs: str = "PLAIN LOGIN",
                 host: str = "127.0.0.1",
                 port: int = 0,
                 body_pause: float = 0,
                 body_rate: float = 0,
                 end_of_data_reply: Optional[bytes] = None,
                 close_after_data: bool = False,
                 tls_setup: Optional[Callable[[ssl.SSLContext], None]] = None):
        if mode not in self.MODES:
            raise ValueError(f"unknown fake mode {mode!r}")
        self.mode = mode
        self.pki = pki
        self.implicit = implicit
        self.inject = inject
        self.banner = banner
        self.replies = dict(replies or {})
        self.handler = handler
        self.auth_mechs = auth_mechs
        self.host = host
        # Seconds to leave a message body unread after the 354 (with a small receive buffer):
        # a server that stops reading, so that mailtap's writes towards it block.
        self.body_pause = body_pause
        # Octets per second to read a message body at, steadily (with a small receive buffer):
        # a slow server that never stops reading.
        self.body_rate = body_rate
        # What the server says once it has a whole message (None: "250 2.0.0 Ok: queued as
        # FAKEn"; b"": nothing at all, a server that takes the message and never answers).
        self.end_of_data_reply = end_of_data_reply
        # Close the connection (TCP, no TLS close_notify) as soon as a whole message is in,
        # without a reply: a server that crashed or dropped the client after taking it.
        self.close_after_data = close_after_data
        # Called with the server's SSLContext before its certificate is loaded: to require a
        # client certificate, cap the TLS version, or lower OpenSSL's security level.
        self.tls_setup = tls_setup
        self.port = port  # 0: any free one (a name's second address needs the first's port)
        self.sessions: list[FakeSession] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lsock: Optional[socket.socket] = None
        self.errors: list[str] = []
        cert_attr, key_attr = self.CERT_FOR_MODE.get(mode, ("valid_cert", "valid_key"))
        self.cert, self.key = getattr(pki, cert_attr), getattr(pki, key_attr)
        self.session_event = threading.Condition(self._lock)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __enter__(self) -> "FakeServer":
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.tls_setup is not None:
            self.tls_setup(self._ctx)
        self._ctx.load_cert_chain(str(self.cert), str(self.key))

        wanted = self._ctx.sni_callback  # tls_setup's own, if it set one

        def sni_cb(sslsock, name, ctx):
            sslsock._mailtap_sni = name  # noqa: SLF001
            return wanted(sslsock, name, ctx) if wanted is not None else None

        self._ctx.sni_callback = sni_cb
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._lsock = socket.socket(family, socket.SOCK_STREAM)
        if self.body_pause or self.body_rate:  # before listen(): accepted sockets inherit it
            self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((self.host, self.port))
        self._lsock.listen(128)  # tests open tens of sessions at once: no SYN dropped under load
        self.port = self._lsock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name=f"fake-{self.mode}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        self._stop.set()
        if self._lsock:
            with contextlib.suppress(OSError):
                self._lsock.shutdown(socket.SHUT_RDWR)
            self._lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(timeout=5)

    def wait_sessions(self, n: int = 1, timeout: float = 10.0) -> list[FakeSession]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.sessions) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake {self.mode}: {len(self.sessions)} sessions < {n}")
                self.session_event.wait(left)
            return list(self.sessions)

    # ------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._lsock.accept()
            except OSError:
                return
            sess = FakeSession(peer=peer)
            with self._lock:
                self._socks.append(conn)
                self.sessions.append(sess)
                self.session_event.notify_all()
            t = threading.Thread(target=self._serve, args=(conn, sess), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket, sess: FakeSession) -> None:
        try:
            conn.settimeout(60)
            self._dialogue(conn, sess)
        except Exception as e:  # noqa: BLE001
            if not self._stop.is_set():
                self.errors.append(f"{type(e).__name__}: {e}")
                log(f"fake {self.mode}: {type(e).__name__}: {e}")
        finally:
            # wrap_socket() moves the descriptor to the SSLSocket: close that one too
            for s in (getattr(sess, "_tls_sock", None), conn):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
            sess.closed.set()

    def _wrap(self, conn, sess):
        try:
            tls = self._ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError, ValueError) as e:
            sess.tls_error = f"{type(e).__name__}: {e}"
            return None
        sess.tls_established = True
        sess._tls_sock = tls  # noqa: SLF001
        sess.sni = getattr(tls, "_mailtap_sni", None)
        with self._lock:
            self._socks.append(tls)
        return tls

    def _ehlo_reply(self, tls: bool) -> bytes:
        lines = ["fake.example.test greets you", "PIPELINING", "SIZE 35882577", "8BITMIME",
                 "ENHANCEDSTATUSCODES"]
        if not tls and self.mode != "no_starttls":
            lines.append("STARTTLS")
        if tls and self.auth_mechs:
            lines.append("AUTH " + self.auth_mechs)
        return b"".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{l}\r\n".encode() for i, l in enumerate(lines))

    def _dialogue(self, conn, sess: FakeSession) -> None:
        if self.mode == "stall":
            # Never greet; hold the connection until the peer or the test closes it.
            while not self._stop.is_set():
                r, _, _ = select.select([conn], [], [], 0.2)
                if r:
                    data = conn.recv(65536)
                    if not data:
                        return
                    sess.pre_tls += data
            return
        sock = conn
        tls = False
        if self.implicit:
            sock = self._wrap(conn, sess)
            if sock is None:
                return
            tls = True
        sess.sock = sock
        sock.sendall(self.banner)
        reader = _Reader(sock, sess.post_tls if tls else sess.pre_tls)
        while True:
            line = reader.readline()
            if line is None:
                return
            sess.commands.append(("tls" if tls else "plain", bytes(line)))
            verb = line.strip().split(b" ", 1)[0].upper().decode(errors="replace")
            out = None
            if self.handler is not None:
                out = self.handler(sess, "tls" if tls else "plain", bytes(line))
            if out is None and verb in self.replies and not (verb == "STARTTLS" and not tls):
                r = self.replies[verb]
                out = r(sess, bytes(line)) if callable(r) else r
            if out is not None:
                sock.sendall(out.encode() if isinstance(out, str) else out)
                if verb == "QUIT":
                    return
                continue
            if verb in ("EHLO", "HELO"):
                sock.sendall(self._ehlo_reply(tls) if verb == "EHLO" else
                             b"250 fake.example.test\r\n")
            elif verb == "STARTTLS" and not tls:
                if self.mode in ("no_starttls",):
                    sock.sendall(b"502 5.5.1 STARTTLS not supported\r\n")
                elif self.mode == "refuse_starttls":
                    sock.sendall(b"454 4.7.0 TLS not available\r\n")
                else:
                    if self.mode == "inject":
                        sock.sendall(b"220 2.0.0 Ready to start TLS\r\n" + self.inject)
                    else:
                        sock.sendall(b"220 2.0.0 Ready to start TLS\r\n")
                    if reader.buf:
                        # client pipelined after STARTTLS: that is its own injection; record
                        sess.commands.append(("plain-after-starttls", reader.buf))
                        reader.buf = b""
                    tsock = self._wrap(conn, sess)
                    if tsock is None:
                        return
                    sock, tls = tsock, True
                    sess.sock = sock
                    reader = _Reader(sock, sess.post_tls)
            elif verb == "QUIT":
                sock.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif not tls and self.mode != "no_starttls":
                sock.sendall(b"530 5.7.0 Must issue a STARTTLS command first\r\n")
            elif verb == "AUTH":
                self._auth(sock, reader, line, sess)
            elif verb == "MAIL":
                sock.sendall(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                sock.sendall(b"250 2.1.5 Ok\r\n")
            elif verb == "DATA":
                sock.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                if self.body_pause:
                    # Cut short by close(), which would otherwise wait for the pause to end
                    # (up to 5 s a thread) with the test over.
                    if self._stop.wait(self.body_pause):
                        return
                reader.pace = self.body_rate
                data = reader.read_until(b"\r\n.\r\n", initial=b"\r\n")
                reader.pace, reader._paced = 0.0, (0.0, 0)  # noqa: SLF001
                if data is None:
                    return
                sess.messages.append(data)
                if self.close_after_data:
                    return  # _serve closes the connection
                if self.end_of_data_reply is None:
                    sock.sendall(f"250 2.0.0 Ok: queued as FAKE{len(sess.messages)}\r\n".encode())
                elif self.end_of_data_reply:
                    sock.sendall(self.end_of_data_reply)
            elif verb in ("RSET", "NOOP"):
                sock.sendall(b"250 2.0.0 Ok\r\n")
            else:
                sock.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def _auth(self, sock, reader, line, sess) -> None:
        parts = line.strip().split()
        mech = parts[1].upper() if len(parts) > 1 else b""
        if mech == b"PLAIN":
            if len(parts) < 3:
                sock.sendall(b"334 \r\n")
                resp = reader.readline()
                if resp is None:
                    return
                sess.commands.append(("tls", bytes(resp)))
        elif mech == b"LOGIN":
            if len(parts) < 3:
                sock.sendall(b"334 VXNlcm5hbWU6\r\n")
                resp = reader.readline()
                if resp is None:
                    return
                sess.commands.append(("tls", bytes(resp)))
            sock.sendall(b"334 UGFzc3dvcmQ6\r\n")
            resp = reader.readline()
            if resp is None:
                return
            sess.commands.append(("tls", bytes(resp)))
        else:
            sock.sendall(b"504 5.5.4 Unrecognized authentication type\r\n")
            return
        sock.sendall(b"235 2.7.0 Authentication successful\r\n")


# --------------------------------------------------------------------------------------
# Provider-like submission servers for AUTH (Gmail, Microsoft 365)
# --------------------------------------------------------------------------------------

GMAIL_SCOPE = "https://mail.google.com/"
# What Google's documentation shows for an expired token (Gmail itself often says "400").
GMAIL_TOKEN_ERROR = {"status": "401", "schemes": "Bearer", "scope": GMAIL_SCOPE}


def xoauth2_bytes(user: str, token: str) -> bytes:
    """Google's XOAUTH2 initial client response, before base64."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer_bytes(user: str, token: str, host: str, port: int) -> bytes:
    """RFC 7628 OAUTHBEARER initial client response, before base64."""
    user = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


@dataclasses.dataclass
class SaslAttempt:
    """One AUTH exchange as a provider server saw it."""
    mechanism: str  # as named on the AUTH line, upper case
    lines: list  # every line received in the exchange, raw (CRLF kept), the AUTH line first
    initial_response: bool = False  # the credentials came on the AUTH line
    user: Optional[str] = None  # decoded: PLAIN authcid, LOGIN user, user= / a=
    secret: Optional[str] = None  # decoded: the password or the bearer token
    fields: dict = dataclasses.field(default_factory=dict)  # OAUTHBEARER: gs2, a, host, port
    error_challenge: Optional[bytes] = None  # the "334 <base64 JSON>" sent for a bad token
    after_error: Optional[bytes] = None  # the client's line after that challenge, raw
    problem: Optional[str] = None  # what was malformed in what the client sent
    reply: bytes = b""  # the final reply of the exchange

    @property
    def code(self) -> int:
        return int(self.reply[:3]) if self.reply[:3].isdigit() else 0


class _Gone(Exception):
    """The client closed the connection in the middle of an exchange."""


class OAuthServer(FakeServer):
    """A submission server that authenticates like Gmail or Microsoft 365 (thread per client).

    flavour "gmail" (smtp.gmail.com:587):
      banner, EHLO and reply texts as Gmail writes them; STARTTLS required (530 5.7.0 Must issue
      a STARTTLS command first); AUTH offered only after TLS (`mechs`, default
      "LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH", the last two unimplemented:
      504); MAIL before AUTH gets the two-line 530-5.7.0 Authentication Required.
      A token not in `valid_tokens` (or for another user than `account`) gets
      `334 base64(error_json)`; the client must answer an empty line (XOAUTH2) or "AQ=="
      (OAUTHBEARER), then comes Gmail's two-line 535-5.7.8 ... BadCredentials ... - gsmtp.
      Anything else after the error challenge gets a 501 naming what was expected.
      PLAIN/LOGIN are checked against `passwords`; app_password_required=True answers every
      password with 534-5.7.9 Application-specific password required (as Gmail does for an
      account password when 2-Step Verification is on).
    flavour "microsoft365" (smtp.office365.com:587):
      after TLS only "AUTH LOGIN XOAUTH2"; a refused token is a plain
      `535 5.7.3 Authentication unsuccessful [...]` (no error challenge); LOGIN gets
      `535 5.7.139 Authentication unsuccessful, basic authentication is disabled.` unless
      basic_auth=True (then `passwords` are checked); MAIL before AUTH gets 530 5.7.57.

    Everything received is kept per session (FakeSession.pre_tls / post_tls / commands), every
    AUTH exchange as a SaslAttempt in FakeSession.auths, accepted messages (DATA as received,
    terminator included; BDAT chunks concatenated) in FakeSession.messages. `valid_tokens` and
    `passwords` may be changed while the server runs.
    """

    FLAVOURS = ("gmail", "microsoft365")
    MS_HOST = "SN4PR0501CA0044.outlook.office365.com"

    def __init__(self, pki: Pki, *, flavour: str = "gmail", mechs: Optional[str] = None,
                 valid_tokens: Iterable[str] = (), account: Optional[str] = None,
                 passwords: Optional[dict] = None, app_password_required: bool = False,
                 basic_auth: bool = False, error_json: Optional[dict] = None,
                 host: str = "127.0.0.1", greeting_delay: float = 0.0):
        if flavour not in self.FLAVOURS:
            raise ValueError(f"unknown provider flavour {flavour!r}")
        super().__init__("good", pki, host=host)
        self.flavour = flavour
        default_mechs = ("LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH"
                         if flavour == "gmail" else "LOGIN XOAUTH2")
        self.auth_mechs = default_mechs if mechs is None else mechs
        self.valid_tokens = set(valid_tokens)
        self.account = account
        self.passwords = dict(passwords or {})
        self.app_password_required = app_password_required
        self.basic_auth = basic_auth
        self.error_json = dict(GMAIL_TOKEN_ERROR if error_json is None else error_json)
        # Seconds of silence before the banner, as Postfix's postscreen greet pause keeps.
        self.greeting_delay = greeting_delay

    # -- what the server says -------------------------------------------------------------
    def _texts(self, sid: str) -> dict:
        if self.flavour == "gmail":
            tail = f"{sid} - gsmtp"
            more = "For more information, go to"
            return {
                "banner": f"220 smtp.gmail.com ESMTP {tail}",
                "name": "smtp.gmail.com at your service, [127.0.0.1]",
                "helo": "250 smtp.gmail.com at your service",
                "ehlo": ["SIZE 35882577", "8BITMIME", "@", "ENHANCEDSTATUSCODES", "PIPELINING",
                         "CHUNKING", "SMTPUTF8"],
                "need_tls": f"530 5.7.0 Must issue a STARTTLS command first. {tail}",
                "need_auth": f"530-5.7.0 Authentication Required. {more}\r\n"
                             f"530 5.7.0  https://support.google.com/mail/?p=WantAuthError {tail}",
                "auth_ok": "235 2.7.0 Accepted",
                "bad_credentials": f"535-5.7.8 Username and Password not accepted. {more}\r\n"
                                   "535 5.7.8  https://support.google.com/mail/?p=BadCredentials"
                                   f" {tail}",
                "app_password": f"534-5.7.9 Application-specific password required. {more}\r\n"
                                "534 5.7.9  https://support.google.com/mail/?p="
                                f"InvalidSecondFactor {tail}",
                "token_refused": None,  # = bad_credentials, after the error challenge
                "basic_disabled": None,
                "undecodable": f"501 5.5.2 Cannot Decode response {tail}",
                "cancelled": f"501 5.7.0 Client initiated Authentication Exchange cancelled. "
                             f"{tail}",
                "no_mech": f"504 5.7.4 Unrecognized Authentication Type. {tail}",
                "already": f"503 5.5.1 Already authenticated. {tail}",
                "bad_sequence": f"503 5.5.1 Bad sequence of commands. {tail}",
                "unknown": f"502 5.5.1 Unrecognized command. {tail}",
                "mail_ok": f"250 2.1.0 OK {tail}",
                "rcpt_ok": f"250 2.1.5 OK {tail}",
                "data_go": f"354  Go ahead {tail}",
                "queued": f"250 2.0.0 OK  {int(time.time())} {tail}",
                "ok": f"250 2.0.0 OK  {tail}",
                "reset": f"250 2.1.5 Flushed {tail}",
                "quit": f"221 2.0.0 closing connection {tail}",
            }
        internal = "SN4PR0501MB3711.namprd05.prod.outlook.com"
        tail = (f"[{internal} {time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime())} "
                f"08DD{sid.upper()}]")
        return {
            "banner": f"220 {self.MS_HOST} Microsoft ESMTP MAIL Service ready at "
                      f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}",
            "name": f"{self.MS_HOST} Hello [127.0.0.1]",
            "helo": f"250 {self.MS_HOST} Hello [127.0.0.1]",
            "ehlo": ["SIZE 157286400", "PIPELINING", "DSN", "ENHANCEDSTATUSCODES", "@",
                     "8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"],
            "need_tls": f"451 5.7.3 STARTTLS is required to send mail {tail}",
            "need_auth": f"530 5.7.57 Client not authenticated to send mail. {tail}",
            "auth_ok": "235 2.7.0 Authentication successful",
            "bad_credentials": "535 5.7.139 Authentication unsuccessful, the user credentials "
                               f"were incorrect. {tail}",
            "app_password": None,
            "token_refused": f"535 5.7.3 Authentication unsuccessful {tail}",
            "basic_disabled": "535 5.7.139 Authentication unsuccessful, basic authentication "
                              f"is disabled. {tail}",
            "undecodable": "501 5.5.2 Cannot decode response",
            "cancelled": "501 5.7.0 Authentication cancelled",
            "no_mech": "504 5.7.4 Unrecognized authentication type",
            "already": "503 5.5.1 Already authenticated",
            "bad_sequence": "503 5.5.1 Bad sequence of commands",
            "unknown": "500 5.3.3 Unrecognized command",
            "mail_ok": "250 2.1.0 Sender OK",
            "rcpt_ok": "250 2.1.5 Recipient OK",
            "data_go": "354 Start mail input; end with <CRLF>.<CRLF>",
            "queued": f"250 2.0.0 OK <{sid}@{internal}> [Hostname={internal}]",
            "ok": "250 2.0.0 OK",
            "reset": "250 2.0.0 Resetting",
            "quit": "221 2.0.0 Service closing transmission channel",
        }

    def _ehlo_reply(self, tls: bool, t: Optional[dict] = None) -> bytes:
        lines = [t["name"]]
        for cap in t["ehlo"]:
            if cap != "@":
                lines.append(cap)
            elif not tls:
                lines.append("STARTTLS")
            elif self.auth_mechs:
                lines.append("AUTH " + self.auth_mechs)
        return b"".join(f"250{'-' if i < len(lines) - 1 else ' '}{l}\r\n".encode()
                        for i, l in enumerate(lines))

    # -- the dialogue -----------------------------------------------------------------------
    def _dialogue(self, conn, sess: FakeSession) -> None:
        sid = uuid.uuid4().hex[:12]
        t = self._texts(sid)
        sock, tls = conn, False

        def say(text: str) -> None:
            sock.sendall(text.encode() + b"\r\n")

        if self.greeting_delay:
            time.sleep(self.greeting_delay)
        say(t["banner"])
        reader = _Reader(sock, sess.pre_tls)
        greeted = False
        mail = False
        rcpts = 0
        while True:
            line = reader.readline()
            if line is None:
                return
            sess.commands.append(("tls" if tls else "plain", bytes(line)))
            words = line.rstrip(b"\r\n").split(b" ")
            verb = words[0].upper().decode(errors="replace")
            if verb == "EHLO":
                greeted, mail, rcpts = True, False, 0
                sock.sendall(self._ehlo_reply(tls, t))
            elif verb == "HELO":
                greeted, mail, rcpts = True, False, 0
                say(t["helo"])
            elif verb == "QUIT":
                say(t["quit"])
                return
            elif verb == "NOOP":
                say(t["ok"])
            elif verb == "RSET":
                mail, rcpts = False, 0
                say(t["reset"])
            elif verb == "STARTTLS" and not tls:
                say("220 2.0.0 Ready to start TLS")
                if reader.buf:  # bytes pipelined behind STARTTLS: recorded, never obeyed
                    sess.commands.append(("plain-after-starttls", reader.buf))
                    reader.buf = b""
                tsock = self._wrap(conn, sess)
                if tsock is None:
                    return
                sock, tls = tsock, True
                reader = _Reader(sock, sess.post_tls)
                greeted, mail, rcpts = False, False, 0
            elif not tls:
                say(t["need_tls"])
            elif verb == "STARTTLS":
                say(t["bad_sequence"])
            elif not greeted:
                say(t["bad_sequence"])
            elif verb == "AUTH":
                if sess.authenticated is not None or mail:
                    say(t["already"] if sess.authenticated else t["bad_sequence"])
                    continue
                try:
                    self._sasl(sock, reader, bytes(line), sess, t)
                except _Gone:
                    return
            elif verb == "MAIL":
                if sess.authenticated is None:
                    say(t["need_auth"])
                elif mail:
                    say(t["bad_sequence"])
                else:
                    mail = True
                    say(t["mail_ok"])
            elif verb == "RCPT":
                if not mail:
                    say(t["bad_sequence"])
                else:
                    rcpts += 1
                    say(t["rcpt_ok"])
            elif verb == "DATA":
                if not rcpts:
                    say(t["bad_sequence"])
                    continue
                say(t["data_go"])
                data = reader.read_until(b"\r\n.\r\n", initial=b"\r\n")
                if data is None:
                    return
                sess.messages.append(data)
                mail, rcpts = False, 0
                say(t["queued"])
            elif verb == "BDAT":
                size = int(words[1]) if len(words) > 1 and words[1].isdigit() else -1
                if size < 0 or not rcpts:
                    say(t["bad_sequence"])
                    return
                chunk = b""
                while len(reader.buf) < size:
                    if not reader._fill():  # noqa: SLF001
                        return
                chunk, reader.buf = reader.buf[:size], reader.buf[size:]
                sess.bdat = getattr(sess, "bdat", b"") + chunk
                if len(words) > 2 and words[2].upper() == b"LAST":
                    sess.messages.append(sess.bdat)
                    sess.bdat = b""
                    mail, rcpts = False, 0
                    say(t["queued"])
                else:
                    say(f"250 2.0.0 {size} bytes received")
            else:
                say(t["unknown"])

    def _sasl(self, sock, reader, line: bytes, sess: FakeSession, t: dict) -> None:
        words = line.rstrip(b"\r\n").split(b" ")
        mech = words[1].upper().decode(errors="replace") if len(words) > 1 else ""
        attempt = SaslAttempt(mechanism=mech, lines=[line])
        sess.auths.append(attempt)

        def finish(text: str) -> None:
            attempt.reply = text.encode() + b"\r\n"
            sock.sendall(attempt.reply)

        def receive() -> bytes:
            got = reader.readline()
            if got is None:
                raise _Gone()
            got = bytes(got)
            sess.commands.append(("tls", got))
            attempt.lines.append(got)
            return got

        def response(prompt: str) -> Optional[bytes]:
            """The client's next response (after `prompt`), decoded; None if it was cancelled
            or undecodable (the reply has been sent)."""
            sock.sendall(prompt.encode() + b"\r\n")
            return decoded(receive().rstrip(b"\r\n"))

        def decoded(text: bytes) -> Optional[bytes]:
            if text == b"*":
                finish(t["cancelled"])
                return None
            if text == b"=":
                return b""
            try:
                return base64.b64decode(text, validate=True)
            except ValueError:
                attempt.problem = f"not base64: {text[:60]!r}"
                finish(t["undecodable"])
                return None

        if mech not in self.auth_mechs.split() or mech not in (
                "PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"):
            finish(t["no_mech"])
            return
        initial = words[2] if len(words) > 2 else None
        attempt.initial_response = initial is not None
        if mech == "LOGIN":
            user = decoded(initial) if initial is not None else response("334 VXNlcm5hbWU6")
            if user is None:
                return
            password = response("334 UGFzc3dvcmQ6")
            if password is None:
                return
            attempt.user = user.decode(errors="replace")
            attempt.secret = password.decode(errors="replace")
            self._check_password(attempt, sess, t, finish)
            return
        blob = decoded(initial) if initial is not None else response("334 ")
        if blob is None:
            return
        if mech == "PLAIN":
            parts = blob.split(b"\0")
            if len(parts) != 3:
                attempt.problem = f"PLAIN wants authzid NUL user NUL password, got {len(parts)}"
                finish(t["undecodable"])
                return
            attempt.fields["authzid"] = parts[0].decode(errors="replace")
            attempt.user = parts[1].decode(errors="replace")
            attempt.secret = parts[2].decode(errors="replace")
            self._check_password(attempt, sess, t, finish)
            return
        if mech == "XOAUTH2":
            m = re.fullmatch(rb"user=([^\x01]+)\x01auth=Bearer ([^\x01 ]+)\x01\x01", blob)
            if m is None:
                attempt.problem = f"not user=U^Aauth=Bearer T^A^A: {blob[:60]!r}"
                finish(t["undecodable"])
                return
            attempt.user, attempt.secret = (g.decode(errors="replace") for g in m.groups())
        else:  # OAUTHBEARER, RFC 7628 section 3.1
            m = re.fullmatch(rb"([ny]|p=[^,]*),(a=[^,]*)?,\x01((?:[a-z]+=[^\x01]*\x01)+)\x01",
                             blob)
            if m is None:
                attempt.problem = f"not an RFC 7628 client response: {blob[:60]!r}"
                finish(t["undecodable"])
                return
            attempt.fields["gs2"] = m.group(1).decode()
            if m.group(2):
                attempt.fields["a"] = (m.group(2)[2:].decode(errors="replace")
                                       .replace("=2C", ",").replace("=3D", "="))
            for kv in m.group(3).split(b"\x01")[:-1]:
                k, _, v = kv.decode(errors="replace").partition("=")
                attempt.fields[k] = v
            auth = attempt.fields.get("auth", "")
            if not auth.startswith("Bearer "):
                attempt.problem = f"auth= is not 'Bearer <token>': {auth[:20]!r}"
                finish(t["undecodable"])
                return
            attempt.user, attempt.secret = attempt.fields.get("a"), auth[len("Bearer "):]
        if attempt.secret in self.valid_tokens and self.account in (None, attempt.user):
            sess.authenticated = attempt.user
            finish(t["auth_ok"])
            return
        if t["token_refused"] is not None:  # Microsoft: no error challenge
            finish(t["token_refused"])
            return
        challenge = base64.b64encode(json.dumps(self.error_json, separators=(",", ":")).encode())
        attempt.error_challenge = b"334 " + challenge + b"\r\n"
        sock.sendall(attempt.error_challenge)
        attempt.after_error = receive()
        want = b"\r\n" if mech == "XOAUTH2" else b"AQ==\r\n"
        if attempt.after_error != want:
            attempt.problem = (f"after the error challenge {mech} wants {want!r}, got "
                               f"{attempt.after_error[:60]!r}")
            finish(f"501 5.5.2 test server: {attempt.problem}")
            return
        finish(t["bad_credentials"])

    def _check_password(self, attempt: SaslAttempt, sess: FakeSession, t: dict, finish) -> None:
        if self.flavour == "microsoft365" and not self.basic_auth:
            finish(t["basic_disabled"])
        elif self.flavour == "gmail" and self.app_password_required:
            finish(t["app_password"])
        elif self.passwords.get(attempt.user) == attempt.secret:
            sess.authenticated = attempt.user
            finish(t["auth_ok"])
        else:
            finish(t["bad_credentials"])


class TokenCommand:
    """A --oauth2-token-cmd for tests: a shell script that prints line N of its tokens file on
    its Nth run (the last line on later runs), counts its runs and saves its environment.

    `exit_status` != 0 makes it print the token anyway and fail (as oama does with an error on
    stdout); `delay` makes it slow."""

    def __init__(self, directory: Union[str, Path], tokens: Iterable[str], *,
                 exit_status: int = 0, delay: float = 0.0):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tokens_file = self.dir / "tokens"
        self.runs_file = self.dir / "runs"
        self.env_file = self.dir / "environ"
        self.set_tokens(tokens)
        self.runs_file.write_text("")
        q = shlex.quote
        script = self.dir / "token-command"
        script.write_text(
            "#!/bin/sh\n"
            f"echo run >> {q(str(self.runs_file))}\n"
            f"env -0 > {q(str(self.env_file))}\n"
            f"n=$(wc -l < {q(str(self.runs_file))})\n"
            f"last=$(wc -l < {q(str(self.tokens_file))})\n"
            '[ "$n" -gt "$last" ] && n=$last\n'
            + (f"sleep {delay}\n" if delay else "")
            + f'[ "$n" -gt 0 ] && sed -n "${{n}}p" {q(str(self.tokens_file))}\n'
            f"exit {exit_status}\n")
        script.chmod(0o700)
        self.cmd = str(script)

    def set_tokens(self, tokens: Iterable[str]) -> None:
        self.tokens_file.write_text("".join(f"{tok}\n" for tok in tokens))

    @property
    def runs(self) -> int:
        return len(self.runs_file.read_text().splitlines())

    def environ(self) -> dict:
        """The environment of its last run."""
        out = {}
        for entry in self.env_file.read_bytes().split(b"\0"):
            if entry:
                k, _, v = entry.partition(b"=")
                out[k.decode(errors="replace")] = v
        return out


# --------------------------------------------------------------------------------------
# mailtap
# --------------------------------------------------------------------------------------


def small_asan_quarantine() -> dict[str, str]:
    """ASAN_OPTIONS for a mailtap whose memory a test measures: under AddressSanitizer freed
    memory waits in a quarantine (256 MiB by default) before it is reused, so the measure would
    be of what ASan keeps; a small one keeps it about what mailtap holds. Elsewhere harmless."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=4" if asan else "quarantine_size_mb=4"}


def mailtap_bin() -> Path:
    p = HARNESS_ENV.get("MAILTAP_BIN")
    return Path(p) if p else REPO_ROOT / "build" / "mailtap"


def require_mailtap(testcase=None) -> Path:
    """The binary path, or raise a clear error if it is missing."""
    p = mailtap_bin()
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise RuntimeError(f"mailtap binary not found at {p}; build it or set MAILTAP_BIN")
    return p


class Mailtap:
    """Runs `mailtap proxy` and waits for "mailtap: listening on".

    Arguments map to the CLI (upstream=None, ca_file=None, tls_name=None leave the option
    out, for a config file or the environment to give it); `extra_args` are appended verbatim.
    Recording: by default a fresh `--db <tmp>/mailtap.db`; record=False passes --no-record;
    db=PATH passes that path.
    `ready=False` does not wait for the listening line (for start-up failure tests: use
    .wait() then .stderr).  `env` is added to the test's environment; `stdin` (default
    /dev/null) may be a terminal's file descriptor, for the password prompt; `preexec_fn`
    runs in the child before mailtap starts (to set a signal disposition it inherits).
    """

    READY_PREFIX = "mailtap: listening on"

    def __init__(self, upstream: Optional[str], *, ca_file=None, tls_name: Optional[str] = "localhost",
                 tls: Optional[str] = None, listen: Optional[str] = None,
                 extra_args: Iterable[str] = (), record: bool = True, db=None,
                 ready: bool = True, ready_timeout: float = 10.0, stop_timeout: float = 5.0,
                 env: Optional[dict] = None, stdin=None, preexec_fn=None):
        self.binary = require_mailtap()
        self.upstream = upstream
        self.ca_file = ca_file
        self.tls_name = tls_name
        self.tls = tls
        self.listen = listen
        self.extra_args = list(extra_args)
        if HARNESS_ENV.get("MAILTAP_TEST_RECORD", "1") == "0":
            record = False  # run the whole suite with --no-record
        self.record = record
        self.db = db
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.env = env
        self.stdin = subprocess.DEVNULL if stdin is None else stdin  # a pty for prompts
        self.preexec_fn = preexec_fn  # runs in the child before exec (signal dispositions)
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.host = "127.0.0.1"
        self._out: list[str] = []
        self._err: list[str] = []
        self._ready = threading.Event()
        self._tmp: Optional[str] = None
        self.returncode: Optional[int] = None
        self.ready_line: Optional[str] = None

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    @property
    def output(self) -> str:
        return self.stderr + self.stdout

    def wait_stdout(self, text: str, count: int = 1, timeout: float = 10,
                    required: bool = True) -> str:
        """stdout once it holds `text` `count` times: a line mailtap has printed may still be
        on its way through the pipe to the reader thread. Fails the test when the time runs
        out, unless `required` is False (a caller that polls)."""
        return self._wait_output("stdout", text, count, timeout, required)

    def wait_stderr(self, text: str, count: int = 1, timeout: float = 10,
                    required: bool = True) -> str:
        """stderr once it holds `text` `count` times (mailtap's log lines, as wait_stdout)."""
        return self._wait_output("stderr", text, count, timeout, required)

    def _wait_output(self, stream: str, text: str, count: int, timeout: float,
                     required: bool) -> str:
        deadline = time.monotonic() + timeout
        while getattr(self, stream).count(text) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        got = getattr(self, stream)
        if required and got.count(text) < count:
            # A silent timeout only delays the assertion after it, which then names the wrong
            # thing; say what was awaited and what came.
            raise AssertionError(f"{timeout} s without {count} x {text!r} on mailtap's {stream}; "
                                 f"it holds:\n{got}")
        return got

    def args(self) -> list[str]:
        a = [str(self.binary), "proxy", "--listen", self.listen]
        if self.upstream is not None:  # None: from the config file or the environment
            a += ["--upstream", self.upstream]
        if self.tls is not None:
            a += ["--tls", self.tls]
        # Without TLS there is nothing to verify: mailtap refuses --ca-file and --tls-name with
        # --tls none, so the defaults every test gets stay out (extra_args may still give them).
        if self.ca_file is not None and self.tls != "none":
            a += ["--ca-file", str(self.ca_file)]
        if self.tls_name is not None and self.tls != "none":
            a += ["--tls-name", self.tls_name]
        if self.db is not None:
            a += ["--db", str(self.db)]
        elif not self.record:
            a += ["--no-record"]
        else:
            a += ["--db", os.path.join(self._tmp, "mailtap.db")]
        return a + [str(x) for x in self.extra_args]

    def _reader(self, stream, sink: list):
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            sink.append(line)
            if DEBUG:
                sys.stderr.write("[mailtap] " + line)
            if line.startswith(self.READY_PREFIX) and not self._ready.is_set():
                self.ready_line = line.strip()
                self._ready.set()
        stream.close()

    def start(self) -> "Mailtap":
        self._tmp = tempfile.mkdtemp(prefix="mailtap-run-")
        fixed_listen = self.listen is not None
        for attempt in range(3):
            if not fixed_listen:
                self.port = free_port()
                self.listen = f"127.0.0.1:{self.port}"
            else:
                host, _, port = self.listen.rpartition(":")
                self.host, self.port = host.strip("[]"), int(port)
            self._out.clear()
            self._err.clear()
            self._ready.clear()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            log("start:", " ".join(self.args()))
            self.proc = subprocess.Popen(self.args(), stdin=self.stdin,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                         preexec_fn=self.preexec_fn)
            self._threads = [
                threading.Thread(target=self._reader, args=(self.proc.stdout, self._out),
                                 daemon=True),
                threading.Thread(target=self._reader, args=(self.proc.stderr, self._err),
                                 daemon=True),
            ]
            for t in self._threads:
                t.start()
            if not self.ready:
                return self
            deadline = time.monotonic() + self.ready_timeout
            while time.monotonic() < deadline:
                if self._ready.wait(0.05):
                    return self
                if self.proc.poll() is not None:
                    break
            if self.proc.poll() is None:
                self._kill()
                raise RuntimeError(f"mailtap not ready within {self.ready_timeout}s; "
                                   f"output:\n{self.output}")
            for t in self._threads:
                t.join(timeout=2)
            out = self.output
            if not fixed_listen and re.search(r"in use|EADDRINUSE", out, re.I) and attempt < 2:
                continue  # lost a port race; try another port
            raise RuntimeError(f"mailtap exited with {self.proc.returncode} before it was ready;"
                               f" output:\n{out}")
        raise AssertionError("unreachable")

    def __enter__(self) -> "Mailtap":
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._tmp and not KEEP_TMP:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for exit (without signalling); returns the exit code."""
        self.returncode = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=2)
        return self.returncode

    def stop(self, timeout: Optional[float] = None) -> Optional[int]:
        """SIGTERM and wait; SIGKILL if it does not exit in time.  Returns the exit code
        (negative for a signal, as subprocess reports it)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            limit = timeout or self.stop_timeout
            try:
                self.proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                print(f"[harness] mailtap (pid {self.proc.pid}) still running {limit}s after "
                      "SIGTERM: killed", file=sys.stderr, flush=True)
                self._kill()
        self.returncode = self.proc.returncode
        for t in self._threads:
            t.join(timeout=2)
        return self.returncode

    def _kill(self):
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)


def run_on_terminal(args, env=None, timeout: float = 30) -> tuple[int, bytes]:
    """Runs `mailtap ARGS` with stdout on a pseudo-terminal (as a person at a terminal would
    see it); returns the exit code and everything it printed there."""
    rc, out, _ = run_on_terminal_with_stderr(args, env, timeout)
    return rc, out


def run_on_terminal_with_stderr(args, env=None,
                                timeout: float = 30) -> tuple[int, bytes, bytes]:
    """run_on_terminal, and what mailtap wrote to stderr (a pipe) besides."""
    main, sub = pty.openpty()
    try:
        cp = subprocess.run([str(mailtap_bin()), *args], stdout=sub, stderr=subprocess.PIPE,
                            timeout=timeout, env=env)
        os.close(sub)
        sub = -1
        out = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO once the terminal's other end is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(main)
        if sub >= 0:
            os.close(sub)
    return cp.returncode, out, cp.stderr


def run_in_terminal_session(argv: list, typed: bytes = b"",
                            timeout: float = 20) -> tuple[int, bytes]:
    """Runs `argv` as the leader of a new session whose controlling terminal is a
    pseudo-terminal (stdin, stdout and stderr), in its foreground as a shell runs a command;
    `typed` is typed on it first. Returns the exit code and everything shown on the terminal."""
    pid, terminal = pty.fork()
    if pid == 0:  # child
        os.execv(argv[0], [str(a) for a in argv])
    screen = b""
    try:
        if typed:
            os.write(terminal, typed)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([terminal], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the terminal's last holder has ended
                break
            if not chunk:
                break
            screen += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(terminal)
    return os.waitstatus_to_exitcode(status), screen


# --------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------


def make_message(token: str, *, subject: Optional[str] = None, body: Optional[str] = None,
                 from_addr: str = "sender@client.test", to_addr: str = "alice@example.test",
                 eol: str = "\r\n") -> bytes:
    """An RFC 5322 message whose body contains awkward lines (leading dots, lone dot-like
    lines, trailing spaces, tabs, long line).  Returned with `eol` line ends."""
    if body is None:
        body = "\n".join([
            f"Hello from the mailtap integration tests, token {token}.",
            ".a line starting with one dot",
            "..a line starting with two dots",
            ". ",
            "..",
            "line with trailing spaces   ",
            "\ttab-indented line",
            "From this line on a mbox would need escaping",
            "x" * 900,
            "",
            "last line",
        ]) + "\n"
    headers = [
        f"From: Sender <{from_addr}>",
        f"To: <{to_addr}>",
        f"Subject: {subject or 'mailtap test ' + token}",
        f"Message-ID: <{token}@client.test>",
        "Date: Thu, 01 Jan 2026 00:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]
    text = "\n".join(headers) + "\n\n" + body
    return text.replace("\n", eol).encode()


def dot_stuff(message: bytes) -> bytes:
    """Dot-stuff a message for the wire (RFC 5321 4.5.2), keeping its line ends."""
    return re.sub(rb"(?m)^\.", b"..", message)


class BodySink:
    """A plain SMTP server that takes messages of any size, with 250 to all but DATA: the test
    Postfix refuses more than 10 MB and the FakeServer keeps what it reads. `rcpt_reply`
    (bytes, CRLFs included) answers every RCPT instead, and may be changed between a recording
    and its replay (`proxy --tls none`, then `replay --tls none`). One connection at a time.
    `chunking`: CHUNKING advertised, and BDAT chunks taken (RFC 3030). `end_of_data_replies`:
    the replies to the ends of data in turn, over every connection (a `552` refusal, ...), then
    `250`; `None` among them closes the connection instead, the message taken and never
    answered."""

    def __init__(self, rcpt_reply: bytes = b"250 ok\r\n", chunking: bool = False,
                 end_of_data_replies=()):
        self.rcpt_reply = rcpt_reply
        self.chunking = chunking
        self.end_of_data_replies = list(end_of_data_replies)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                conn.sendall(b"220 sink ESMTP\r\n")
                while line := f.readline():
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-sink\r\n250-CHUNKING\r\n250 PIPELINING\r\n"
                                     if self.chunking else b"250-sink\r\n250 PIPELINING\r\n")
                    elif verb == b"BDAT" and self.chunking:
                        f.read(int(line.split()[1]))
                        conn.sendall(b"250 2.0.0 chunk taken\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go on\r\n")
                        while f.readline() not in (b".\r\n", b""):
                            pass
                        reply = (self.end_of_data_replies.pop(0) if self.end_of_data_replies
                                 else b"250 2.0.0 queued\r\n")
                        if reply is None:
                            break
                        conn.sendall(reply)
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        break
                    elif verb == b"RCPT":
                        conn.sendall(self.rcpt_reply)
                    else:
                        conn.sendall(b"250 ok\r\n")

    def close(self):
        self.sock.close()


def large_message(size: int, eight_bit: bool = False) -> bytes:
    """A message of about `size` octets, larger than the 64 KiB the database holds of a body so
    the rest goes to the session's body file: CRLF lines, some starting with a dot (stuffed on
    the wire) or "From " (quoted in an mbox); with `eight_bit`, Latin-1 octets (not UTF-8: JSON
    gives it as base64)."""
    word = b"caf\xe9" if eight_bit else "caf\u00e9 \u20ac".encode()
    lines = []
    for i in range(size // 80):
        lead = b"." if i % 5 == 0 else b"From " if i % 7 == 0 else b""
        lines.append(lead + b"%07d " % i + word + b" " + b"x" * 50 + b"\r\n")
    return b"Subject: a large message\r\n\r\n" + b"".join(lines)


def mboxrd_quoted(body: bytes) -> bytes:
    """`body` as an mboxrd entry holds it: LF line ends, a '>' more on lines matching ^>*From ."""
    out = []
    for line in body.split(b"\n")[:-1 if body.endswith(b"\n") else None] if body else []:
        if line.endswith(b"\r"):
            line = line[:-1]
        out.append((b">" if line.lstrip(b">").startswith(b"From ") else b"") + line + b"\n")
    return b"".join(out)


def wait_recorded_reply(db, session_id: int, verb: str, code: int, timeout: float = 15.0) -> None:
    """Waits (bounded) until the recorder has committed the reply `code` to the client's `verb`
    in session `session_id`: what a test reads from a session still recorded is there."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                if con.execute("SELECT 1 FROM events WHERE session_id = ? AND verb = ? AND "
                               "reply_code = ?", (session_id, verb, code)).fetchone():
                    return
        except sqlite3.OperationalError:
            pass  # not created yet, or busy: asked again
        if time.monotonic() > deadline:
            raise AssertionError(f"session {session_id}: no {code} reply to {verb} recorded "
                                 f"in {db} within {timeout}s")
        time.sleep(0.05)


def body_files_into_rows(db) -> None:
    """Gives a record the layout mailtap wrote before schema version 6, when a body was stored
    wholly in its events' rows: the octets of every event in its session's body file go back
    into its row, and the body files are removed. (The migration to 6 moves nothing: such rows
    stay in a database migrated since.)"""
    bodies = Path(f"{db}-bodies")
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        for row, session, offset, length in con.execute(
                "SELECT id, session_id, file_offset, file_length FROM events "
                "WHERE file_offset IS NOT NULL").fetchall():
            with open(bodies / str(session), "rb") as f:
                f.seek(offset)
                stored = f.read(length)
            con.execute("UPDATE events SET bytes = ?, file_offset = NULL, file_length = NULL "
                        "WHERE id = ?", (stored, row))
    shutil.rmtree(bodies, ignore_errors=True)


def close_notice_after_closing_reply(db, session_id: int, upstream: str) -> None:
    """Gives a session that the server ended with a 221 or 421 to a command (Postfix's "221
    2.7.0 Error: I can break rules, too. Goodbye." to a lone ".") the record a mailtap older than
    the one that ends the session on such a reply made of it: it went on until the server closed
    and then told the client so with its own 421, recorded right after that reply. `upstream`
    is HOST:PORT as mailtap named the server."""
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        seq, at, phase = con.execute(
            "SELECT seq, at, phase FROM events WHERE session_id = ? AND direction = "
            "'upstream_to_client' AND reply_code IN (221, 421) ORDER BY seq DESC LIMIT 1",
            (session_id,)).fetchone()
        # Make room after it (in two steps: (session_id, seq) is unique).
        con.execute("UPDATE events SET seq = -seq - 1 WHERE session_id = ? AND seq > ?",
                    (session_id, seq))
        con.execute("UPDATE events SET seq = -seq WHERE session_id = ? AND seq < 0", (session_id,))
        notice = f"421 4.4.2 mailtap: {upstream} closed the connection\r\n".encode()
        con.execute("INSERT INTO events (session_id, seq, at, direction, phase, kind, verb, "
                    "reply_code, enhanced_status, bytes, wire_size, redacted) VALUES "
                    "(?, ?, ?, 'mailtap_to_client', ?, 'local_reply', NULL, 421, '4.4.2', ?, ?, 0)",
                    (session_id, seq + 1, at, phase, notice, len(notice)))


def bodies_into_message_rows(db) -> None:
    """Gives a record the layout mailtap wrote before schema version 4 (and so before 6): a
    message's body (un-dot-stuffed) in its `messages` row, the events that relayed it holding
    their octets too, and no mail transaction numbers. (The migration to 4 moves nothing.)"""
    body_files_into_rows(db)
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        for (message,) in con.execute("SELECT id FROM messages").fetchall():
            con.execute("UPDATE messages SET body = ?, mail_transaction = NULL WHERE id = ?",
                        (recorded_body(con, message), message))
        con.execute("UPDATE events SET mail_transaction = NULL")


def recorded_body(db, message_id: int) -> bytes:
    """A recorded message's body, rebuilt as mailtap's reader does: since schema version 4 a
    body is stored once, as the data / bdat_chunk events of its mail transaction (DATA text as
    sent: dot-stuffed, terminator included); since version 6 the events past a message's first
    64 KiB hold their bytes in the session's body file (<db>-bodies/<session id>, at
    file_offset, file_length long). `db` is a path or an open sqlite3 connection."""
    con = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(
        f"file:{db}?mode=ro", uri=True)
    try:
        db_path = next(r[2] for r in con.execute("PRAGMA database_list") if r[1] == "main")
        session_id, txn, via_bdat, body = con.execute(
            "SELECT session_id, mail_transaction, via_bdat, body FROM messages WHERE id = ?",
            (message_id,)).fetchone()
        if txn is None:
            return bytes(body)
        pieces = []
        for stored, offset, length in con.execute(
                "SELECT bytes, file_offset, file_length FROM events WHERE session_id = ? AND "
                "mail_transaction = ? AND kind IN ('data', 'bdat_chunk') ORDER BY seq",
                (session_id, txn)):
            if offset is None:
                pieces.append(bytes(stored))
                continue
            with open(f"{db_path}-bodies/{session_id}", "rb") as f:
                f.seek(offset)
                piece = f.read(length)
            assert len(piece) == length, f"body file of session {session_id} is short"
            pieces.append(piece)
        wire = b"".join(pieces)
    finally:
        if con is not db:
            con.close()
    if via_bdat:
        return wire
    out, pos = [], 0
    while pos < len(wire):
        end = wire.find(b"\r\n", pos)
        end = len(wire) if end < 0 else end + 2
        line = wire[pos:end]
        if line.startswith(b"."):
            if line == b".\r\n" and end == len(wire):
                break  # the terminator
            line = line[1:]
        out.append(line)
        pos = end
    return b"".join(out)


def body_of(message: bytes) -> bytes:
    """The body (after the first empty line) with LF line ends."""
    m = message.replace(b"\r\n", b"\n")
    i = m.find(b"\n\n")
    return m[i + 2:] if i >= 0 else b""


def swaks(port: int, *, to: str = "alice@example.test", from_: str = "sender@client.test",
          auth: Optional[str] = None, user: Optional[str] = None,
          password: Optional[str] = None, data: Optional[bytes] = None,
          server: str = "127.0.0.1", tls: Optional[str] = None, ca_file=None,
          extra: Iterable[str] = (), timeout: float = 60) -> subprocess.CompletedProcess:
    """Run swaks.  `tls`: None (plain), "starttls" (-tls) or "implicit" (--tlsc).
    `data`: full message bytes (given to swaks with --data -, swaks dot-stuffs it)."""
    cmd = ["swaks", "--server", f"{server}:{port}", "--to", to, "--from", from_,
           "--helo", "client.test", "--timeout", "30"]
    if tls == "starttls":
        cmd.append("-tls")
    elif tls == "implicit":
        cmd.append("--tlsc")
    if ca_file is not None:
        cmd += ["--tls-verify", "--tls-ca-path", str(ca_file)]
    if auth:
        cmd += ["--auth", auth, "--auth-user", user, "--auth-password", password]
    inp = None
    if data is not None:
        # swaks appends CRLF before its "." (an extra empty line if data already ends in a
        # newline), turns the two characters backslash-n into CRLF, and drops a leading
        # "From " line: give it the message without its last line end.
        if b"\\n" in data:
            raise ValueError("swaks would turn a literal backslash-n into CRLF")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        cmd += ["--data", "-"]
        inp = data
    cmd += list(extra)
    log("run:", " ".join(cmd))
    return subprocess.run(cmd, input=inp, capture_output=True, timeout=timeout)


def curl_send(port: int, message_file, *, mail_from: str = "sender@client.test",
              rcpt: str = "alice@example.test", user: Optional[str] = None,
              password: Optional[str] = None, url: Optional[str] = None,
              extra: Iterable[str] = (), timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = ["curl", "-sS", "-v", "--max-time", "30", url or f"smtp://127.0.0.1:{port}",
           "--mail-from", mail_from, "--mail-rcpt", rcpt, "--upload-file", str(message_file)]
    if user is not None:
        cmd += ["--user", f"{user}:{password}"]
    cmd += list(extra)
    log("run:", " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def smtplib_send(port: int, message: bytes, *, mail_from: str = "sender@client.test",
                 rcpts=("alice@example.test",), user: Optional[str] = None,
                 password: Optional[str] = None, host: str = "127.0.0.1",
                 timeout: float = 30) -> dict:
    with smtplib.SMTP(host, port, local_hostname="client.test", timeout=timeout) as s:
        s.ehlo()
        if user is not None:
            s.login(user, password)
        refused = s.sendmail(mail_from, list(rcpts), message)
        s.quit()
        return refused


def auth_plain(user: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


@dataclasses.dataclass
class Reply:
    code: int
    lines: list  # text after "NNN-" / "NNN "
    raw: bytes

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return self.raw.decode(errors="replace")


class SmtpSocket:
    """Raw line-level SMTP client (plain or TLS) for precise timing and byte control."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 15.0,
                 connect: bool = True):
        self.host, self.port, self.timeout = host, port, timeout
        self.buf = b""
        self.received = bytearray()
        self.sock: Optional[socket.socket] = None
        if connect:
            self.sock = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        if self.sock:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data: Union[bytes, str]) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line: Union[bytes, str], eol: bytes = b"\r\n") -> "Reply":
        if isinstance(line, str):
            line = line.encode()
        self.send(line + eol)
        return self.reply()

    def _fill(self, timeout: Optional[float]) -> bool:
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.received += chunk
        self.buf += chunk
        return True

    def readline(self, timeout: Optional[float] = None) -> Optional[bytes]:
        while b"\n" not in self.buf:
            if not self._fill(timeout):
                line, self.buf = self.buf, b""
                return line or None
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def reply(self, timeout: Optional[float] = None) -> Reply:
        """One complete (possibly multi-line) reply.  Raises EOFError on close before a
        reply, ValueError on garbage."""
        raw = b""
        lines = []
        while True:
            line = self.readline(timeout)
            if line is None:
                if raw:
                    raise EOFError(f"connection closed inside a reply: {raw!r}")
                raise EOFError("connection closed before a reply")
            raw += line
            m = re.match(rb"^(\d{3})([ -]?)(.*?)\r?\n?$", line, re.S)
            if not m:
                raise ValueError(f"not an SMTP reply line: {line!r}")
            lines.append(m.group(3).decode(errors="replace"))
            if m.group(2) != b"-":
                return Reply(int(m.group(1)), lines, raw)

    def read_until_closed(self, timeout: float = 10.0) -> bytes:
        """All remaining bytes until EOF (or timeout)."""
        deadline = time.monotonic() + timeout
        out = self.buf
        self.buf = b""
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            self.received += chunk
            out += chunk
        return out

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the peer closes within `timeout` (any pending data is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True
        return False

    def starttls(self, ca_file=None, server_hostname: str = "localhost",
                 verify: bool = True) -> None:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)


class NetcatClient:
    """`nc` (netcat-openbsd) as a subprocess: write lines to its stdin, read replies from
    its stdout, like a person at a terminal (lock-step)."""

    def __init__(self, port: int, host: str = "127.0.0.1", extra: Iterable[str] = ()):
        self.proc = subprocess.Popen(["nc", *extra, host, str(port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.buf = b""
        self.received = bytearray()

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _fill(self, timeout: float) -> bool:
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("nc: no data from server")
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self.received += chunk
        self.buf += chunk
        return True

    def reply(self, timeout: float = 15.0) -> Reply:
        raw = b""
        lines = []
        while True:
            while b"\n" not in self.buf:
                if not self._fill(timeout):
                    raise EOFError(f"nc: connection closed; got {raw + self.buf!r}")
            i = self.buf.index(b"\n") + 1
            line, self.buf = self.buf[:i], self.buf[i:]
            raw += line
            m = re.match(rb"^(\d{3})([ -]?)(.*?)\r?\n?$", line, re.S)
            if not m:
                raise ValueError(f"not an SMTP reply line: {line!r}")
            lines.append(m.group(3).decode(errors="replace"))
            if m.group(2) != b"-":
                return Reply(int(m.group(1)), lines, raw)

    def cmd(self, line: bytes, eol: bytes = b"\n", timeout: float = 15.0) -> Reply:
        self.send(line + eol)
        return self.reply(timeout)

    def close(self, timeout: float = 10.0) -> int:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                f.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def start_data(client, *, mail_from: str = "sender@client.test",
               rcpts: Iterable[str] = ("alice@example.test",), ehlo: str = "client.test",
               auth: Optional[tuple[str, str]] = None) -> None:
    """The opening most message tests share, on an SmtpSocket or a NetcatClient: the greeting,
    EHLO, AUTH PLAIN as `auth` = (user, password) if given, MAIL, one RCPT per recipient, and
    DATA up to its 354. Each step must get its usual reply, else AssertionError names it."""
    def expect(code: int, line: Optional[str], what: str) -> None:
        r = client.reply() if line is None else client.cmd(line.encode())
        if r.code != code:
            raise AssertionError(f"{what}: expected {code}, got {str(r).strip()!r}")

    expect(220, None, "greeting")
    expect(250, f"EHLO {ehlo}", "EHLO")
    if auth is not None:
        expect(235, "AUTH PLAIN " + auth_plain(*auth), "AUTH PLAIN")
    expect(250, f"MAIL FROM:<{mail_from}>", "MAIL")
    for rcpt in rcpts:
        expect(250, f"RCPT TO:<{rcpt}>", f"RCPT {rcpt}")
    expect(354, "DATA", "DATA")


def record_bodies_in_pieces(db: Path, postfix, pki, pause: float = 0.3,
                            extra_args: Iterable[str] = (), stdout: Optional[list] = None) -> list:
    """Message bodies a client sent in pieces that end inside their lines, through mailtap to
    `postfix` (as alice), recorded in `db`: one event per read. Session 1: `split` (a line in
    three reads, "x" and ".\r\n" in reads of their own), `keys` (telnet in character mode, a key
    a read), `ctrlc` (telnet's Ctrl-C octets glued to a "." line); session 2: `lf` (bare LF line
    ends, normalised by mailtap, noted); session 3: a telnet refusal mailtap recorded redacted.
    `pause`: long enough for mailtap to read each piece on
    its own. `extra_args` go to the proxy; its stdout, once it stopped, is appended to `stdout`
    (a list) if given. The session ids, in order."""
    alice = ("alice", USERS["alice"])

    def expect(reply: Reply, code: int) -> None:
        if reply.code != code:
            raise AssertionError(f"expected {code}, got {str(reply).strip()!r}")

    def send_body(c: SmtpSocket, pieces: list) -> None:
        for piece in pieces:
            c.send(piece)
            time.sleep(pause)
        if any(b"\xff\xfd\x06" in piece for piece in pieces):
            # mailtap answers telnet's DO TIMING-MARK in a body at once: IAC WONT TM.
            while len(c.buf) < 3 and c._fill(None):
                pass
            if not c.buf.startswith(b"\xff\xfc\x06"):
                raise AssertionError(f"expected IAC WONT TM, got {c.buf[:3]!r}")
            c.buf = c.buf[3:]
        expect(c.reply(), 250)

    mt = Mailtap(postfix.submission, ca_file=pki.ca_cert, db=db, extra_args=extra_args)
    with mt:
        with SmtpSocket(mt.port) as c:
            start_data(c, auth=alice)
            send_body(c, [b"Subject: split\r\n\r\nhel", b"lo world\r\n", b"x", b".\r\n.\r\n"])
            expect(c.cmd("MAIL FROM:<sender@client.test>"), 250)
            expect(c.cmd("RCPT TO:<alice@example.test>"), 250)
            expect(c.cmd("DATA"), 354)
            # telnet in character mode: every key is sent as it is typed.
            send_body(c, [b"Subject: keys\r\n\r\n", *(bytes([k]) for k in b"QUIT\r\n.\r\n")])
            expect(c.cmd("MAIL FROM:<sender@client.test>"), 250)
            expect(c.cmd("RCPT TO:<alice@example.test>"), 250)
            expect(c.cmd("DATA"), 354)
            # telnet's Ctrl-C (IAC IP, IAC DO TIMING-MARK) glued to the next line, a ".":
            # that line is body text, only the next "." ends the message.
            send_body(c, [b"Subject: ctrlc\r\n\r\nI changed my mind\r\n", b"\xff\xf4\xff\xfd\x06",
                          b".\r\n", b".\r\n"])
            expect(c.cmd("QUIT"), 221)
        # nc without -C: bare LF line ends, normalised by mailtap, each read's noted.
        with SmtpSocket(mt.port) as c:
            expect(c.reply(), 220)
            for line, code in ((b"EHLO person.test", 250),
                               (b"AUTH PLAIN " + auth_plain(*alice).encode(), 235),
                               (b"MAIL FROM:<sender@client.test>", 250),
                               (b"RCPT TO:<alice@example.test>", 250), (b"DATA", 354)):
                expect(c.cmd(line, eol=b"\n"), code)
            send_body(c, [b"Subject: lf\n\nab", b"c\nde", b"f\n", b".\n"])
            expect(c.cmd(b"QUIT", eol=b"\n"), 221)
        # telnet's Ctrl-C before a command: IAC IP, then IAC DO "Q" (the command's first key),
        # refused by mailtap (IAC WONT "Q"); the line left ("UIT") may be a secret's octets, so
        # the record keeps only the refusal's size.
        with SmtpSocket(mt.port) as c:
            expect(c.reply(), 220)
            c.send(b"\xff\xf4\xff\xfdQUIT\r\n")
            while len(c.buf) < 3 and c._fill(None):
                pass
            if not c.buf.startswith(b"\xff\xfcQ"):
                raise AssertionError(f"expected IAC WONT Q, got {c.buf[:3]!r}")
            c.buf = c.buf[3:]
            c.reply()
            expect(c.cmd("QUIT"), 221)
    if stdout is not None:
        stdout.append(mt.stdout)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sessions = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
    con.close()
    return sessions


def first_reply_421(port: int, timeout: float = 15.0) -> Reply:
    """Connect to mailtap and return the reply that carries the upstream failure.

    The spec has mailtap set up the upstream before it greets, so the first reply is the 421.
    If a design greets first (220), send EHLO and take the next reply instead; tests that
    care about the greeting check it separately."""
    with SmtpSocket(port, timeout=timeout) as c:
        r = c.reply()
        if r.code == 220:
            r = c.cmd("EHLO client.test")
        return r


# --------------------------------------------------------------------------------------
# unittest glue
# --------------------------------------------------------------------------------------

import unittest  # noqa: E402


class IntegrationCase(unittest.TestCase):
    """Base class: a fresh PKI per class; a private Postfix if `with_postfix`; mailtap is
    required unless `needs_mailtap = False`."""

    with_postfix = False
    postfix_kwargs: dict = {}
    needs_mailtap = True
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.needs_mailtap:
            require_mailtap()
        cls._stack = contextlib.ExitStack()
        cls.addClassCleanup(cls._stack.close)
        tmp = tempfile.mkdtemp(prefix="mailtap-test-")
        if not KEEP_TMP:
            cls._stack.callback(shutil.rmtree, tmp, True)
        cls.tmp = Path(tmp)
        cls.pki = make_pki(cls.tmp / "pki")
        cls.prepare_pki()
        cls.postfix = None
        if cls.with_postfix:
            if os.geteuid() != 0:
                raise unittest.SkipTest("a private Postfix instance needs root")
            missing = require_tools("postfix", "saslpasswd2")
            if missing:
                raise unittest.SkipTest(f"missing tools: {', '.join(missing)}")
            cls.postfix = cls._stack.enter_context(Postfix(cls.pki, **cls.postfix_kwargs))

    @classmethod
    def prepare_pki(cls) -> None:
        """Called once the class's PKI is made, before its Postfix starts: a class issues
        what it needs there, and may set postfix_kwargs from it."""

    # helpers -------------------------------------------------------------------------
    def mailtap(self, upstream: str, **kw) -> Mailtap:
        """Start mailtap for this test (stopped at test cleanup).  Default CA: the test CA."""
        kw.setdefault("ca_file", self.pki.ca_cert)
        m = Mailtap(upstream, **kw)
        m.start()
        self.addCleanup(self._stop_mailtap, m)
        return m

    @staticmethod
    def _stop_mailtap(m: Mailtap):
        m.__exit__(None, None, None)

    def fake(self, mode: str, **kw) -> FakeServer:
        f = FakeServer(mode, self.pki, **kw)
        f.__enter__()
        self.addCleanup(f.close)
        return f

    def oauth_server(self, flavour: str = "gmail", **kw) -> OAuthServer:
        """A Gmail- or Microsoft-365-like submission server (stopped at test cleanup)."""
        f = OAuthServer(self.pki, flavour=flavour, **kw)
        f.__enter__()
        self.addCleanup(f.close)
        return f

    def token_command(self, tokens: Iterable[str], **kw) -> TokenCommand:
        """A token command printing `tokens` one run after the other (see TokenCommand)."""
        return TokenCommand(tempfile.mkdtemp(prefix="token-cmd-", dir=self.tmp), tokens, **kw)

    def assertDelivered(self, token: str, sent_message: bytes, mailbox: str = "alice",
                        timeout: float = 30.0) -> bytes:
        """Wait for the message with `token` and assert its body arrived byte for byte
        (Postfix stores LF line ends; the sent message is compared with CRLF -> LF)."""
        got = self.postfix.wait_for_message(token, timeout=timeout, mailbox=mailbox)
        want = body_of(sent_message)
        got_body = body_of(got)
        self.assertEqual(got_body, want, "delivered body differs from the body sent")
        # and the headers we sent arrive unchanged after Postfix's trace headers
        sent_lf = sent_message.replace(b"\r\n", b"\n")
        self.assertTrue(got.endswith(sent_lf),
                        f"delivered message does not end with the message sent:\n{got!r}")
        return got

    def assertProcOk(self, cp: subprocess.CompletedProcess, what: str = "client"):
        self.assertEqual(cp.returncode, 0,
                         f"{what} failed ({cp.returncode})\nstdout:\n"
                         f"{cp.stdout.decode(errors='replace')}\nstderr:\n"
                         f"{cp.stderr.decode(errors='replace')}")


SKIP_EXIT_CODE = 77  # ctest SKIP_RETURN_CODE


def main() -> None:
    """unittest.main() that exits 77 when every test was skipped (ctest shows "skipped")."""
    prog = unittest.main(verbosity=2, exit=False)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)
