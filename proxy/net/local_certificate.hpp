// mailtap's own certificate for the client's side (--local-tls): the user's (--local-cert,
// --local-key), or by default a P-256 key and a self-signed certificate for localhost,
// 127.0.0.1 and ::1 that mailtap creates once under the user's config directory and reuses
// until it is about to expire. Clients are told to trust that certificate (msmtp's
// tls_trust_file), or the CA that issued a --local-cert that is not self-signed.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mailtap::net {

struct LocalCertificate {
  std::string cert_path;  // absolute: told to clients, which run elsewhere
  std::string key_path;
  std::string sha256_fingerprint;      // "AB:CD:...", as `openssl x509 -fingerprint -sha256` prints
  std::string not_after;               // ISO 8601 UTC
  bool created = false;                // made by this start (first use, or the old one expired)
  std::vector<std::string> dns_names;  // its subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // its subjectAltName IP entries ("127.0.0.1", "::1")
  bool self_signed = true;                // else clients trust the CA that issued it, not the file
  std::string issuer;  // its issuer's subject (RFC 2253), "CN=Example CA,O=Example"
  // The pair in the config directory, made by mailtap (by an older one, it may lack ::1).
  bool made_by_mailtap = false;
};

// $XDG_CONFIG_HOME/mailtap, else ~/.config/mailtap; empty with `error` set if neither is known.
std::string default_config_dir(const std::function<const char*(const char*)>& getenv,
                               std::string& error);

// The certificate in `dir` (created 0700 if missing; chmod go-w if group or others may write
// it): reused if it is valid for at least another day and matches its key, otherwise made anew.
// A key that group or others may access, that another user owns, or that is there but cannot be
// read or is no regular file, is refused (nullopt, with what to do in `error`), never used nor
// replaced. Reuse writes nothing (a read-only `dir` is
// fine); starts that make a pair serialise on a lock file in `dir`, so they never see (or
// make) a key and certificate that do not belong together.
// `io_failure`, when given, is set when the system failed to make a pair (a device or a
// resource failing: ENOSPC, EDQUOT, EIO, EFBIG, no memory or descriptors): starting again may
// work, unlike after a refusal the user must mend (permissions, owner, a file that is not a key,
// a read-only or missing directory, a config directory whose parent cannot be made).
// `need_ipv6_loopback` (--listen is [::1] or [::]): a pair made by an older mailtap, whose
// certificate names localhost and 127.0.0.1 only, is made anew, as on expiry, so that clients
// connecting to ::1 accept it; where the directory cannot be written, the old pair is used
// (and the start-up warning says what to do).
std::optional<LocalCertificate> ensure_local_certificate(const std::string& dir, std::string& error,
                                                         bool* io_failure = nullptr,
                                                         bool need_ipv6_loopback = false);

// Reads the user's certificate (chain) and key, and checks they belong together.
std::optional<LocalCertificate> load_local_certificate(const std::string& cert_path,
                                                       const std::string& key_path,
                                                       std::string& error);

}  // namespace mailtap::net
