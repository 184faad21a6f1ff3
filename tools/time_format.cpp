#include "tools/time_format.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "storage/timestamp.hpp"

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

// An age ("90s", "3d", "1w"), subtracted from `now`; one reaching back before the clock's first
// instant is that instant (any number of digits: older than every record, not an error).
std::optional<Clock::time_point> parse_relative(std::string_view text, Clock::time_point now) {
  if (text.size() < 2) return std::nullopt;
  constexpr std::int64_t kBeyondAnyAge = 1'000'000'000'000;  // times 604800 s still fits
  std::int64_t n = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
    n = std::min(n * 10 + (text[i] - '0'), kBeyondAnyAge);
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
  const Clock::duration one_second = std::chrono::seconds(1);
  Clock::rep back = 0, ticks = 0;
  if (__builtin_mul_overflow(seconds, one_second.count(), &back) ||
      __builtin_sub_overflow(now.time_since_epoch().count(), back, &ticks))
    return Clock::time_point::min();
  return Clock::time_point(Clock::duration(ticks));
}

// A UTC date and time as written: 2026-11-24T20:00:05.123456Z.
struct CivilTime {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  long micros = 0;

  bool in_range() const {
    return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month() && hour <= 23 &&
           minute <= 59 && second <= 60;
  }
  // 2026-02-30 is no date (not 2 March).
  int days_in_month() const {
    constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
  }
};

// YYYY-MM-DD at the start of `s`.
bool parse_date(std::string_view s, CivilTime& t) {
  return digits(s, 0, 4, t.year) && s.size() >= 10 && s[4] == '-' && digits(s, 5, 2, t.month) &&
         s[7] == '-' && digits(s, 8, 2, t.day);
}

// One to six digits of a second at `pos` (after the '.'), as microseconds; `pos` moves past them.
bool parse_fraction(std::string_view s, std::size_t& pos, long& micros) {
  long scale = 100000;
  const std::size_t start = pos;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    micros += (s[pos] - '0') * scale;
    scale /= 10;
    ++pos;
  }
  return pos != start && pos - start <= 6;
}

// HH:MM[:SS[.ffffff]] at `pos` (after the 'T' or ' '); `pos` moves past it.
bool parse_time_of_day(std::string_view s, std::size_t& pos, CivilTime& t) {
  if (!digits(s, pos, 2, t.hour) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
      !digits(s, pos + 3, 2, t.minute))
    return false;
  pos += 5;
  if (pos >= s.size() || s[pos] != ':') return true;
  if (!digits(s, pos + 1, 2, t.second)) return false;
  pos += 3;
  if (pos >= s.size() || s[pos] != '.') return true;
  ++pos;
  return parse_fraction(s, pos, t.micros);
}

// Microseconds from the epoch: years 0000..9999 all fit in 64 bits at this unit.
std::chrono::microseconds since_epoch(const CivilTime& t) {
  using namespace std::chrono;
  const sys_days day{year{t.year} / t.month / t.day};
  return duration_cast<microseconds>(day.time_since_epoch()) + hours(t.hour) + minutes(t.minute) +
         seconds(t.second) + microseconds(t.micros);
}

// A UTC offset at `pos` (after a time of day): +HH:MM, -HH:MM, +HHMM, -HHMM, or at the end
// +HH or -HH, as ISO 8601 writes a local time (2026-11-24T03:00-05:00 and 2026-11-24T03:00-05
// are 08:00 UTC); `pos` moves past it.
bool parse_offset(std::string_view s, std::size_t& pos, std::chrono::minutes& offset) {
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return false;
  const int sign = s[pos] == '-' ? -1 : 1;
  int hours = 0, minutes = 0;
  if (!digits(s, pos + 1, 2, hours) || hours > 23) return false;
  std::size_t at = pos + 3;
  if (at == s.size()) {  // hours alone
    pos = at;
    offset = std::chrono::hours(sign * hours);
    return true;
  }
  if (s[at] == ':') ++at;
  if (!digits(s, at, 2, minutes) || minutes > 59) return false;
  pos = at + 2;
  offset = std::chrono::minutes(sign * (hours * 60 + minutes));
  return true;
}

// YYYY-MM-DD, optionally followed by T or a space and a time of day, optionally ending in Z
// or (after a time of day) a UTC offset.
std::optional<Clock::time_point> parse_absolute(std::string_view s) {
  CivilTime t;
  if (!parse_date(s, t)) return std::nullopt;
  std::size_t pos = 10;
  std::chrono::minutes offset{0};
  bool timed = false;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    ++pos;
    if (!parse_time_of_day(s, pos, t)) return std::nullopt;
    timed = true;
  }
  if (pos < s.size() && s[pos] == 'Z')
    ++pos;
  else if (timed && pos < s.size() && !parse_offset(s, pos, offset))
    return std::nullopt;
  if (pos != s.size() || !t.in_range()) return std::nullopt;
  return storage::clamped_time_point((since_epoch(t) - offset).count(),
                                     std::chrono::microseconds(1));
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
