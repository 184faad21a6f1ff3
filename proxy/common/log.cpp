#include "proxy/common/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap::log {

namespace {
std::atomic<int> level{1};
std::atomic<Destination> destination{Destination::plain};
std::mutex out_mutex;

void write(FILE* f, Priority priority, std::string_view text) {
  std::string line = line_start(destination.load(), priority, std::chrono::system_clock::now());
  line += "mailtap: ";
  // Lines quote what servers and clients sent (a refused greeting, the last reply, a user
  // name): escaped here, once for every caller, so none of it can drive the terminal of
  // whoever runs mailtap, and a line stays one line.
  line += escape_text(text);
  line.push_back('\n');
  std::lock_guard lock(out_mutex);
  std::fwrite(line.data(), 1, line.size(), f);
  std::fflush(f);
}
}  // namespace

void set_verbosity(int v) {
  level = v;
}
int verbosity() {
  return level;
}
void error(std::string_view line) {
  write(stderr, Priority::error, line);
}
void warning(std::string_view line) {
  write(stderr, Priority::warning, line);
}
void notice(std::string_view line) {
  write(stderr, Priority::notice, line);
}
void info(std::string_view line) {
  if (level >= 1) write(stderr, Priority::info, line);
}
void debug(std::string_view line) {
  if (level >= 2) write(stderr, Priority::debug, line);
}
void error_lines(std::string_view lines) {
  const std::string start =
      line_start(destination.load(), Priority::error, std::chrono::system_clock::now());
  std::string out;
  while (!lines.empty()) {
    const std::size_t end = lines.find('\n');
    out += start;
    out += lines.substr(0, end);
    out.push_back('\n');
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
  }
  std::lock_guard lock(out_mutex);
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}
void transcript(std::string_view lines) {
  std::lock_guard lock(out_mutex);
  std::fwrite(lines.data(), 1, lines.size(), stdout);
  std::fflush(stdout);
}

Destination destination_of(const char* journal_stream, const struct stat& stderr_stat) {
  unsigned long long device = 0;
  unsigned long long inode = 0;
  char end = 0;
  // systemd prints both in decimal; stdout and stderr may be different streams, so the
  // device and inode must be stderr's own (a redirected stderr under a unit is not the journal).
  if (journal_stream != nullptr &&
      std::sscanf(journal_stream, "%llu:%llu%c", &device, &inode, &end) == 2 &&
      device == static_cast<unsigned long long>(stderr_stat.st_dev) &&
      inode == static_cast<unsigned long long>(stderr_stat.st_ino))
    return Destination::journal;
  return S_ISREG(stderr_stat.st_mode) ? Destination::file : Destination::plain;
}

void detect_destination() {
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return;
  destination = destination_of(std::getenv("JOURNAL_STREAM"), st);
}

std::string line_start(Destination where, Priority priority,
                       std::chrono::system_clock::time_point now) {
  if (where == Destination::journal) return "<" + std::to_string(static_cast<int>(priority)) + ">";
  if (where == Destination::plain) return {};
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                          now - std::chrono::system_clock::from_time_t(seconds))
                          .count();
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ ", static_cast<int>(millis));
  return text;
}

}  // namespace mailtap::log
