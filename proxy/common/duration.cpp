#include "proxy/common/duration.hpp"

#include <cstdint>
#include <cstdio>

namespace mailtap {

std::string format_setting_duration(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  constexpr std::int64_t kMinute = 60'000;
  constexpr std::int64_t kHour = 60 * kMinute;
  if (ms != 0 && ms % kHour == 0) return std::to_string(ms / kHour) + "h";
  if (ms != 0 && ms % kMinute == 0) return std::to_string(ms / kMinute) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string format_short_duration(std::chrono::nanoseconds d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string format_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  const double secs = duration<double>(d).count();
  char buf[32];
  if (secs < 0) return "?";
  if (secs < 10) {
    std::snprintf(buf, sizeof buf, "%.3fs", secs);
  } else if (secs < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", secs);
  } else {
    const long s = static_cast<long>(secs);
    if (s < 3600)
      std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
      std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
      std::snprintf(buf, sizeof buf, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
  }
  return buf;
}

}  // namespace mailtap
