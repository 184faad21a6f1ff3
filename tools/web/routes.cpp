#include "tools/web/routes.hpp"

#include <charconv>
#include <vector>

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

// A positive decimal number without sign, leading zeros or trailing bytes.
template <typename T>
bool number(std::string_view s, T& out, T minimum) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < minimum) return false;
  out = v;
  return true;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit_value(s[i + 1]) >= 0 &&
               hex_digit_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// /api/sessions/ID[/download|/messages/N[/raw|/parts/K]]: `p` has at least three segments.
void match_session_route(const std::vector<std::string_view>& p, Route& r) {
  if (!number<std::int64_t>(p[2], r.session, 1)) return;
  if (p.size() == 3) {
    r.kind = RouteKind::session;
    return;
  }
  if (p.size() == 4 && p[3] == "download") {
    r.kind = RouteKind::session_download;
    return;
  }
  if (p[3] != "messages" || p.size() < 5 || !number<std::size_t>(p[4], r.message, 1)) return;
  if (p.size() == 5) {
    r.kind = RouteKind::message;
  } else if (p.size() == 6 && p[5] == "raw") {
    r.kind = RouteKind::message_raw;
  } else if (p.size() == 7 && p[5] == "parts" &&
             (p[6] == "0" || number<std::size_t>(p[6], r.part, 1))) {
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
