#include "tools/web/host_check.hpp"

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cctype>
#include <optional>
#include <utility>

namespace mailtap::tools::web {

namespace {

bool is_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "host", "host:port", "[v6]" or "[v6]:port"; false when malformed (an empty port included).
bool split_host_header(std::string_view host_header, std::string_view& host, std::string_view& port,
                       bool& bracketed) {
  if (!host_header.empty() && host_header.front() == '[') {
    const auto close = host_header.find(']');
    if (close == std::string_view::npos) return false;
    host = host_header.substr(1, close - 1);
    const auto rest = host_header.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    bracketed = true;
    return true;
  }
  const auto colon = host_header.find(':');
  if (colon != host_header.rfind(':')) return false;  // an IPv6 literal must be bracketed
  host = host_header.substr(0, colon);
  if (colon != std::string_view::npos) {
    port = host_header.substr(colon + 1);
    if (port.empty()) return false;
  }
  return true;
}

// An absent port matches; a given one must be the port mailtap web listens on.
bool port_matches(std::string_view port, unsigned listening_port) {
  if (port.empty()) return true;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || value > 65535) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value == listening_port;
}

}  // namespace

bool host_allowed(std::string_view host_header, const HostPolicy& policy) {
  // No host name or address literal holds a space or a control character, and the address
  // parser reads a C string: "127.0.0.1\0evil.example" would pass as 127.0.0.1.
  if (std::any_of(host_header.begin(), host_header.end(), [](char c) {
        const auto octet = static_cast<unsigned char>(c);
        return octet <= 0x20 || octet == 0x7f;
      }))
    return false;
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!split_host_header(host_header, host, port, bracketed)) return false;
  if (host.empty()) return false;
  if (!port_matches(port, policy.port)) return false;

  std::error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (!ec) {
    if (address.is_v6() != bracketed) return false;
    if (address.is_loopback()) return true;
    const auto listening = asio::ip::make_address(policy.listen_address, ec);
    if (ec) return false;
    return listening.is_unspecified() || listening == address;
  }
  if (bracketed || !is_name(host)) return false;
  std::string name = lower(host);
  if (name.back() == '.') name.pop_back();  // "localhost." is the same name
  // Not "*.localhost": only some resolvers keep those names on loopback.
  return name == "localhost";
}

namespace {

// An absolute-form target ("http://host:port/path"): its authority ("host:port"), and the port
// its scheme means when the authority names none.
struct AbsoluteTarget {
  std::string_view authority;
  unsigned default_port = 0;
};

// nullopt for a target in origin form. CivetWeb serves absolute targets of these schemes only,
// and only with a path.
std::optional<AbsoluteTarget> absolute_target(std::string_view target) {
  for (const auto& [scheme, port] : {std::pair<std::string_view, unsigned>{"http://", 80},
                                     {"https://", 443},
                                     {"ws://", 80},
                                     {"wss://", 443}}) {
    if (target.size() < scheme.size()) continue;
    std::string_view start = target.substr(0, scheme.size());
    if (lower(start) != scheme) continue;
    target.remove_prefix(scheme.size());
    return AbsoluteTarget{target.substr(0, target.find_first_of("/?#")), port};
  }
  return std::nullopt;
}

// As host_allowed, but an authority without a port names its scheme's (RFC 9110 section 4.2):
// "http://127.0.0.1/" is port 80, another server unless mailtap web listens there.
bool target_allowed(const AbsoluteTarget& target, const HostPolicy& policy) {
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!split_host_header(target.authority, host, port, bracketed)) return false;
  if (port.empty() && target.default_port != policy.port) return false;
  return host_allowed(target.authority, policy);
}

}  // namespace

HostVerdict check_request_host(std::string_view request_target,
                               const std::vector<std::string_view>& host_headers,
                               const HostPolicy& policy) {
  if (host_headers.size() > 1) return HostVerdict::bad_request;
  const auto target = absolute_target(request_target);
  if (target && !target_allowed(*target, policy)) return HostVerdict::misdirected;
  if (host_headers.empty())  // HTTP/1.0 may leave it out; only an absolute target names us then
    return target ? HostVerdict::serve : HostVerdict::misdirected;
  return host_allowed(host_headers.front(), policy) ? HostVerdict::serve : HostVerdict::misdirected;
}

}  // namespace mailtap::tools::web
