#include "tools/time_format.hpp"

#include <cstdio>
#include <ctime>

namespace mailtap::tools {

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

std::optional<Clock::time_point> parse_relative(std::string_view text, Clock::time_point now) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t n = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    n = n * 10 + (text[i] - '0');
    if (n > 100000000) return std::nullopt;
  }
  if (i == 0 || i + 1 != text.size()) return std::nullopt;
  std::int64_t seconds = 0;
  switch (text[i]) {
    case 's':
      seconds = n;
      break;
    case 'm':
      seconds = n * 60;
      break;
    case 'h':
      seconds = n * 3600;
      break;
    case 'd':
      seconds = n * 86400;
      break;
    case 'w':
      seconds = n * 7 * 86400;
      break;
    default:
      return std::nullopt;
  }
  return now - std::chrono::seconds(seconds);
}

std::optional<Clock::time_point> parse_absolute(std::string_view s) {
  std::tm tm{};
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return std::nullopt;
  std::size_t pos = 10;
  long micros = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    if (!digits(s, pos + 1, 2, h) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, mi))
      return std::nullopt;
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, sec)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        ++pos;
        long scale = 100000;
        std::size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          micros += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
        }
        if (pos == start || pos - start > 6) return std::nullopt;
      }
    }
  }
  if (pos < s.size() && s[pos] == 'Z') ++pos;
  if (pos != s.size()) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return Clock::from_time_t(t) + std::chrono::microseconds(micros);
}

}  // namespace

std::optional<Clock::time_point> parse_time_spec(std::string_view text, Clock::time_point now) {
  if (auto rel = parse_relative(text, now)) return rel;
  return parse_absolute(text);
}

std::string format_utc(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string format_offset(Clock::duration d) {
  const double secs = std::chrono::duration<double>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "+%.3fs", secs < 0 ? 0.0 : secs);
  return buf;
}

}  // namespace mailtap::tools
