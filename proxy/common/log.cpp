#include "proxy/common/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap::log {

namespace {
std::atomic<int> level{1};
std::mutex out_mutex;

void write(FILE* f, std::string_view text) {
  std::string line = "mailtap: ";
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
  write(stderr, line);
}
void info(std::string_view line) {
  if (level >= 1) write(stderr, line);
}
void debug(std::string_view line) {
  if (level >= 2) write(stderr, line);
}
void transcript(std::string_view lines) {
  std::lock_guard lock(out_mutex);
  std::fwrite(lines.data(), 1, lines.size(), stdout);
  std::fflush(stdout);
}

}  // namespace mailtap::log
