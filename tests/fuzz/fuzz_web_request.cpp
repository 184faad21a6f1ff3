// What `mailtap web` reads of a request before anything touches the record: the Host check
// (tools/web/host_check.hpp, the DNS rebinding defence), the URL table and the query string
// (tools/web/routes.hpp), and the list's time filters (since=, until=: parse_time_spec). Any
// local process, and any page the browser opens, can send these. Beyond not crashing (nor
// overflowing: UBSan): a request is served only for a Host that is localhost or an IP literal
// with the listening port or none, and the numbers a route carries are positive.
//
// Input: byte 0 picks the listening address and port; the rest is lines: the request target,
// then the Host headers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tools/time_format.hpp"
#include "tools/web/host_check.hpp"
#include "tools/web/routes.hpp"

namespace {

using mailtap::tools::web::HostPolicy;
using mailtap::tools::web::HostVerdict;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// What a served Host (or absolute target's authority) may be: "localhost" (with or without its
// final dot) or an IP literal, bracketed if IPv6, and no port or the listening one.
void check_served_host(std::string_view authority, const HostPolicy& policy) {
  std::string_view host = authority;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) std::abort();
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    // An IPv6 literal, never a name that resolves; a zone may follow it (what the parser does
    // with a zone's name is its own business: no DNS answer makes one).
    for (char c : host.substr(0, host.find('%'))) {
      const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') std::abort();
    }
  } else {
    const auto colon = host.find(':');
    if (colon != std::string_view::npos) port = host.substr(colon);
    host = host.substr(0, colon);
    const std::string name = lower(host);
    if (name != "localhost" && name != "localhost.") {
      for (char c : host) {
        if ((c < '0' || c > '9') && c != '.') std::abort();  // a name: rebinding
      }
    }
  }
  if (port.empty()) return;
  if (port.front() != ':') std::abort();
  unsigned value = 0;
  for (char c : port.substr(1)) {
    if (c < '0' || c > '9') std::abort();
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) std::abort();
  }
  if (value != policy.port) std::abort();
}

void check_host(std::string_view target, const std::vector<std::string_view>& hosts,
                const HostPolicy& policy) {
  if (mailtap::tools::web::check_request_host(target, hosts, policy) != HostVerdict::serve) return;
  if (hosts.size() > 1) std::abort();
  if (!hosts.empty()) check_served_host(hosts.front(), policy);
  if (hosts.empty() && target.find("://") == std::string_view::npos) std::abort();
}

void check_route(std::string_view path) {
  using mailtap::tools::web::RouteKind;
  const auto r = mailtap::tools::web::match_route(path);
  if (r.kind == RouteKind::not_found) return;
  if (r.kind == RouteKind::asset && (r.asset.empty() || r.asset.find('/') != std::string::npos))
    std::abort();
  const bool has_session = r.kind == RouteKind::session || r.kind == RouteKind::session_download ||
                           r.kind == RouteKind::message || r.kind == RouteKind::message_raw ||
                           r.kind == RouteKind::message_part;
  if (has_session && r.session <= 0) std::abort();
  if ((r.kind == RouteKind::message || r.kind == RouteKind::message_raw ||
       r.kind == RouteKind::message_part) &&
      r.message == 0)
    std::abort();
}

void check_query(std::string_view query) {
  const auto q = mailtap::tools::web::parse_query(query);
  for (const auto& [key, value] : q) {
    if (key.size() > query.size() || value.size() > query.size()) std::abort();  // never grows
  }
  // The list's time filters (the web API passes since= and until= through parse_time_spec).
  // A fixed "now" (2026-01-01 00:00:00Z), so that a crash reproduces from its input alone.
  const mailtap::tools::Clock::time_point now{std::chrono::seconds(1'767'225'600)};
  for (const auto& [key, value] : q) (void)mailtap::tools::parse_time_spec(value, now);
  (void)mailtap::tools::parse_time_spec(query, now);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const kListen[] = {"127.0.0.1", "::1", "0.0.0.0", "::"};
  HostPolicy policy;
  policy.listen_address = kListen[data[0] & 3];
  policy.port = (data[0] & 4) != 0 ? 80 : 8025;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> lines;
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  if (lines.empty()) return 0;
  const std::string_view target = lines.front();
  check_host(target, {lines.begin() + 1, lines.end()}, policy);

  const std::size_t question = target.find('?');
  check_route(target.substr(0, question));
  if (question != std::string_view::npos) check_query(target.substr(question + 1));
  return 0;
}
