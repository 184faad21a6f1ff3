// What `mailtap probe` learned about a server, and how it is told: the steps as they went
// (greeting, EHLO before TLS, STARTTLS, TLS and the chain, EHLO after TLS, QUIT), a summary in
// plain language, and the exit status. Sans-IO: tools/probe.cpp does the talking.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/common/terminal_style.hpp"
#include "proxy/net/upstream_connector.hpp"
#include "proxy/smtp/event.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "storage/records.hpp"

namespace mailtap::tools {

// Why a probe stopped; each has its own exit status.
enum class ProbeFailure {
  none,         // 0
  connection,   // 1: resolve, connect, timeout, greeting or EHLO refused, connection closed
  no_tls,       // 3: no STARTTLS, STARTTLS refused or injected into, TLS handshake failed
  certificate,  // 4: the certificate is not trusted for the name (also under --insecure)
};

struct ProbeCertificate {
  storage::Certificate certificate;
  std::vector<std::string> names;  // subjectAltName entries
};

struct ProbeReport {
  // What was asked.
  std::string host;
  std::uint16_t port = 587;
  net::TlsMode mode = net::TlsMode::starttls;
  bool mode_given = false;  // --tls was on the command line
  std::string tls_name;
  bool insecure = false;
  std::string ca_file;  // --ca-file, "" for the system store
  std::string trust_source;
  std::string client_cert;  // --client-cert, "" for none
  std::string client_key;   // --client-key, "" when the key is in client_cert

  // What happened, as far as it got.
  std::string address;                         // resolved "IP:port"
  std::vector<std::string> addresses_failed;   // the others tried, with what each did
  std::vector<std::string> addresses_untried;  // the others not known to be broken
  std::optional<smtp::Reply> greeting;
  std::optional<smtp::Reply> ehlo_plain;  // before STARTTLS (or the only one, --tls none)
  std::optional<smtp::Reply> starttls;    // the reply to STARTTLS
  bool tls = false;                       // the handshake completed
  bool tls_alert = false;                 // it failed on the server's alert: the port speaks TLS
  std::string tls_version, cipher, sni, verify_result;
  std::vector<ProbeCertificate> chain;  // leaf first
  std::vector<net::VerifyProblem> verify_problems;
  // The server asked for a client certificate: what mailtap presented ("" if none) and what
  // mailtap says of a refusal that follows (UpstreamSetup::certificate_request_note).
  std::string client_cert_subject, client_cert_sha256, certificate_request_note;
  std::optional<smtp::Reply> ehlo_tls;  // after TLS
  std::optional<smtp::Reply> quit;

  ProbeFailure failure_kind = ProbeFailure::none;
  std::string failure;                // why it stopped, for a person; "" when it did not
  std::vector<std::string> timeline;  // mailtap's notes on the way ("connected to ...")

  int exit_status() const;
};

// Fills `r` from what establish_upstream() found and the events it appended.
void take_setup(ProbeReport& r, const net::UpstreamSetup& setup,
                const std::vector<smtp::RecordedEvent>& events);

// The plain-language conclusions, most important first.
std::vector<std::string> summarise(const ProbeReport& r, storage::Clock::time_point now);

std::string render_probe_text(const ProbeReport& r, const Style& st,
                              storage::Clock::time_point now);
std::string render_probe_json(const ProbeReport& r, storage::Clock::time_point now);

}  // namespace mailtap::tools
