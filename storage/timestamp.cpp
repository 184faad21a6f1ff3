#include "storage/timestamp.hpp"

#include <chrono>

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
  int y, mon, d, hour, min, sec, frac;
  if (!digits(0, 4, y) || text[4] != '-' || !digits(5, 2, mon) || text[7] != '-' ||
      !digits(8, 2, d) || text[10] != 'T' || !digits(11, 2, hour) || text[13] != ':' ||
      !digits(14, 2, min) || text[16] != ':' || !digits(17, 2, sec) || text[19] != '.' ||
      !digits(20, 6, frac) || text[26] != 'Z') {
    return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mon)},
                            day{static_cast<unsigned>(d)}};
  if (!date.ok() || hour > 23 || min > 59 || sec > 59) return std::nullopt;
  // Years 0000 to 9999 in microseconds fit 64 bits; in the clock's nanoseconds they may not.
  const microseconds since_epoch = sys_days(date).time_since_epoch() + hours(hour) + minutes(min) +
                                   seconds(sec) + microseconds(frac);
  return clamped_time_point(since_epoch.count(), microseconds(1));
}

Clock::time_point clamped_time_point(std::int64_t count, Clock::duration unit) {
  Clock::rep ticks = 0;
  if (__builtin_mul_overflow(count, unit.count(), &ticks))
    return count < 0 ? Clock::time_point::min() : Clock::time_point::max();
  return Clock::time_point(Clock::duration(ticks));
}

bool out_of_clock_range(Clock::time_point t) {
  return t == Clock::time_point::min() || t == Clock::time_point::max();
}

std::optional<Clock::duration> time_between(Clock::time_point from, Clock::time_point to) {
  Clock::rep ticks = 0;
  if (__builtin_sub_overflow(to.time_since_epoch().count(), from.time_since_epoch().count(),
                             &ticks))
    return std::nullopt;
  return Clock::duration(ticks);
}

}  // namespace mailtap::storage
