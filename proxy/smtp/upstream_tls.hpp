// What mailtap learned of the TLS link to the upstream: the connector fills it in, the session
// records it, the tools show it. Plain data of the record's vocabulary, so the network layer
// hands the session no storage type.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proxy/smtp/record_vocabulary.hpp"

namespace mailtap::smtp {

struct Certificate {
  std::string der;  // raw DER bytes
  std::string sha256_hex;
  std::string subject;
  std::string issuer;
  std::string not_before;  // ISO 8601 UTC
  std::string not_after;
};

struct UpstreamTls {
  std::string resolved_address;  // upstream IP:port actually connected
  std::string tls_version;       // "TLSv1.3"
  std::string cipher;
  std::string sni;
  std::string verified_name;  // name the certificate was checked against, empty if not checked
  // nullopt: no certificate was looked at (no TLS, or the link failed before the handshake).
  std::optional<VerifyStatus> verify_status;
  // Why it failed (failed), or what else is worth knowing ("checked, though --insecure would
  // have gone on"); empty if nothing.
  std::string verify_reason;
  std::vector<Certificate> chain;  // leaf first
  bool resumed = false;            // the TLS session was resumed (an earlier session's ticket)
  // The client certificate mailtap presented (--client-cert): its SHA-256 (hex, as a chain's
  // sha256_hex) and subject; empty when it presented none (it has none, or the server asked for
  // none). A resumed session names the one presented in the handshake that made it.
  std::string client_cert_sha256;
  std::string client_cert_subject;
};

// The verification as one line for people: "ok", "not verified (--insecure)", the failure's
// reason, or "ok (checked, ...)"; "" if nothing was verified.
inline std::string verification_text(const std::optional<VerifyStatus>& status,
                                     const std::string& reason) {
  if (!status) return reason;
  switch (*status) {
    case VerifyStatus::ok:
      return reason.empty() ? "ok" : "ok (" + reason + ")";
    case VerifyStatus::not_verified_insecure:
      return reason.empty() ? "not verified (--insecure)" : reason;
    case VerifyStatus::failed:
      return reason.empty() ? "failed" : reason;
  }
  return reason;
}

}  // namespace mailtap::smtp
