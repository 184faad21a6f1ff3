#include "tools/web/routes.hpp"

#include <limits>
#include <vector>

#include "proxy/common/decimal_number.hpp"
#include "proxy/common/hex.hpp"

namespace mailtap::tools::web {

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t pos = 1;  // after the leading '/'
  while (pos <= path.size()) {
    const auto slash = path.find('/', pos);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// A positive number in a path segment, as the command line takes one (parse_decimal).
template <typename T>
bool number(std::string_view s, T& out) {
  const auto v = parse_decimal(s, 1, static_cast<std::uint64_t>(std::numeric_limits<T>::max()));
  if (v) out = static_cast<T>(*v);
  return v.has_value();
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_hex_unescaped(s, '%', out, '+');
  return out;
}

// /api/sessions/ID[/download|/messages/N[/raw|/parts/K]]: `p` has at least three segments.
void match_session_route(const std::vector<std::string_view>& p, Route& r) {
  if (!number(p[2], r.session)) return;
  if (p.size() == 3) {
    r.kind = RouteKind::session;
    return;
  }
  if (p.size() == 4 && p[3] == "download") {
    r.kind = RouteKind::session_download;
    return;
  }
  if (p[3] != "messages" || p.size() < 5 || !number(p[4], r.message)) return;
  if (p.size() == 5) {
    r.kind = RouteKind::message;
  } else if (p.size() == 6 && p[5] == "raw") {
    r.kind = RouteKind::message_raw;
  } else if (p.size() == 7 && p[5] == "parts" && (p[6] == "0" || number(p[6], r.part))) {
    r.kind = RouteKind::message_part;
  }
}

}  // namespace

Route match_route(std::string_view path) {
  Route r;
  if (path == "/" || path == "/index.html") {
    r.kind = RouteKind::page;
    return r;
  }
  if (path.empty() || path.front() != '/') return r;
  const auto p = split_path(path);
  if (p.size() == 2 && p[0] == "assets" && !p[1].empty()) {
    r.kind = RouteKind::asset;
    r.asset = std::string(p[1]);
    return r;
  }
  if (p.empty() || p[0] != "api") return r;
  if (p.size() == 2 && p[1] == "audit") {
    r.kind = RouteKind::audit;
    return r;
  }
  if (p.size() == 2 && p[1] == "events") {
    r.kind = RouteKind::events;
    return r;
  }
  if (p.size() < 2 || p[1] != "sessions") return r;
  if (p.size() == 2) {
    r.kind = RouteKind::sessions;
    return r;
  }
  match_session_route(p, r);
  return r;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= query.size()) {
    auto amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const auto pair = query.substr(pos, amp - pos);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos)
        out[percent_decode(pair)] = "";
      else
        out[percent_decode(pair.substr(0, eq))] = percent_decode(pair.substr(eq + 1));
    }
    pos = amp + 1;
  }
  return out;
}

}  // namespace mailtap::tools::web
