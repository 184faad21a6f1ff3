// Opens the upstream link and makes it ready to relay: resolve, connect, (implicit TLS,)
// read the greeting, and for STARTTLS: EHLO, require STARTTLS, upgrade, verify. Each failure
// comes back as a specific SMTP reason for the client's 421.
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "proxy/net/upstream_link.hpp"
#include "proxy/smtp/event.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "storage/records.hpp"

namespace mailtap::net {

enum class TlsMode { starttls, implicit, none };
std::string_view to_string(TlsMode m);

struct UpstreamTarget {
  std::string host;
  std::uint16_t port = 587;
  TlsMode mode = TlsMode::starttls;
  std::string tls_name;   // SNI and the name the certificate must match
  std::string ehlo_name;  // mailtap's own EHLO before STARTTLS
  bool insecure = false;
  std::string trust_source;  // for messages
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(30);
};

struct UpstreamSetup {
  bool ok = false;
  std::string failure;  // "4.7.0 mailtap: ..." (text after "421 "), when !ok
  storage::Outcome outcome = storage::Outcome::error;
  std::optional<smtp::Reply> greeting;
  smtp::Phase greeting_phase = smtp::Phase::plain;
  storage::SessionTls tls;  // filled as far as the setup got
};

// Appends mailtap's own exchange with the upstream (and TLS notes) to `events`.
asio::awaitable<UpstreamSetup> establish_upstream(UpstreamLink& link, const UpstreamTarget& target,
                                                  std::vector<smtp::Event>& events);

}  // namespace mailtap::net
