// storage's reading of its own timestamp columns (storage/timestamp.hpp), which a damaged or
// hand-edited database hands it as any text: a clear refusal or a time, never undefined
// behaviour. What it accepts is exactly what format_timestamp writes, and written back it is the
// same text; a date the clock cannot hold (before 1677-09-21, after 2262-04-11) is its first or
// last instant. Text order is time order (the columns sort as strings), so the reading keeps it.
//
// Input: two texts separated by the first LF, each read as a column; the input's first 8 octets
// are also taken as a time to write and read back.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "storage/timestamp.hpp"

namespace {

using mailtap::storage::Clock;
using mailtap::storage::format_timestamp;
using mailtap::storage::parse_timestamp;

std::optional<Clock::time_point> read_column(std::string_view text) {
  const auto t = parse_timestamp(text);
  if (!t) return t;
  if (text.size() != 27) std::abort();  // only the one format is read
  if (*t == Clock::time_point::min() || *t == Clock::time_point::max()) {
    const std::string_view year = text.substr(0, 4);
    if (year > "1677" && year < "2262") std::abort();  // clamped only beyond the clock's years
    return t;
  }
  if (format_timestamp(*t) != text) std::abort();  // no other spelling of a time is read
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t lf = input.find('\n');
  const std::string_view a = input.substr(0, lf);
  const auto ta = read_column(a);
  if (lf != std::string_view::npos) {
    const std::string_view b = input.substr(lf + 1);
    const auto tb = read_column(b);
    if (ta && tb && (a < b) && !(*ta <= *tb)) std::abort();  // text order is time order
  }
  if (size >= 8) {
    std::int64_t ticks = 0;
    std::memcpy(&ticks, data, sizeof ticks);
    const Clock::time_point t{Clock::duration(ticks)};
    const std::string text = format_timestamp(t);
    const auto back = parse_timestamp(text);
    // Microseconds are kept (toward zero, as time_point_cast rounds); the rest is dropped.
    using std::chrono::microseconds;
    if (!back || *back != std::chrono::time_point_cast<microseconds>(t)) std::abort();
  }
  return 0;
}
