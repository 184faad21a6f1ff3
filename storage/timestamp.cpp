#include "storage/timestamp.hpp"

#include <cstdio>
#include <ctime>

namespace mailtap::storage {

// Every event is stamped, so this runs several times per message: civil-date arithmetic and
// digits written in place, not gmtime_r and snprintf (a noticeable share of the recorder's CPU
// in tests/bench/profile.sh).
std::string format_timestamp(Clock::time_point t) {
  using namespace std::chrono;
  const auto us = time_point_cast<microseconds>(t);
  const auto day = floor<days>(us);
  const year_month_day ymd{day};
  const hh_mm_ss<microseconds> tod{us - day};
  std::string out(27, '0');  // "YYYY-MM-DDTHH:MM:SS.ffffffZ"
  auto put = [&out](std::size_t pos, std::size_t width, long long value) {
    for (std::size_t i = 0; i < width; ++i, value /= 10)
      out[pos + width - 1 - i] = static_cast<char>('0' + value % 10);
  };
  put(0, 4, static_cast<int>(ymd.year()));
  out[4] = '-';
  put(5, 2, static_cast<unsigned>(ymd.month()));
  out[7] = '-';
  put(8, 2, static_cast<unsigned>(ymd.day()));
  out[10] = 'T';
  put(11, 2, tod.hours().count());
  out[13] = ':';
  put(14, 2, tod.minutes().count());
  out[16] = ':';
  put(17, 2, tod.seconds().count());
  out[19] = '.';
  put(20, 6, tod.subseconds().count());
  out[26] = 'Z';
  return out;
}

std::optional<Clock::time_point> parse_timestamp(std::string_view text) {
  // "YYYY-MM-DDTHH:MM:SS.ffffffZ"
  if (text.size() != 27) return std::nullopt;
  auto digits = [&](std::size_t pos, std::size_t n, int& out) {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    out = v;
    return true;
  };
  int year, mon, day, hour, min, sec, frac;
  if (!digits(0, 4, year) || text[4] != '-' || !digits(5, 2, mon) || text[7] != '-' ||
      !digits(8, 2, day) || text[10] != 'T' || !digits(11, 2, hour) || text[13] != ':' ||
      !digits(14, 2, min) || text[16] != ':' || !digits(17, 2, sec) || text[19] != '.' ||
      !digits(20, 6, frac) || text[26] != 'Z') {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::time_t secs = timegm(&tm);
  using namespace std::chrono;
  return Clock::time_point(duration_cast<Clock::duration>(seconds(secs) + microseconds(frac)));
}

}  // namespace mailtap::storage
