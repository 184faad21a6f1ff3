#include "storage/other_connections.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace mailtap::storage {

namespace {

// The whitespace-separated fields of `line`.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <typename Int>
bool parse_int(std::string_view text, Int& out) {
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && at == end;
}

// One line of /proc/locks: "1: POSIX  ADVISORY  READ 1689 fe:00:5488795 128 128", or with "->"
// after the number for a lock a process waits for. False for a line not so made.
bool parse_lock_line(std::string_view line, pid_t& pid, ino_t& inode) {
  std::vector<std::string_view> f = fields_of(line);
  if (f.size() > 1 && f[1] == "->") f.erase(f.begin() + 1);
  if (f.size() < 6) return false;
  const std::string_view device_inode = f[5];  // MAJOR:MINOR:INODE
  const std::size_t colon = device_inode.rfind(':');
  if (colon == std::string_view::npos) return false;
  return parse_int(f[4], pid) && parse_int(device_inode.substr(colon + 1), inode);
}

}  // namespace

std::optional<bool> other_lock_holders(std::string_view proc_locks, ino_t inode, pid_t self) {
  bool own = false;
  bool other = false;
  while (!proc_locks.empty()) {
    const std::size_t eol = proc_locks.find('\n');
    const std::string_view line = proc_locks.substr(0, eol);
    proc_locks.remove_prefix(eol == std::string_view::npos ? proc_locks.size() : eol + 1);
    pid_t pid = 0;
    ino_t ino = 0;
    if (!parse_lock_line(line, pid, ino) || ino != inode) continue;
    // An open file description's lock shows pid -1: whose it is is not known, so another's.
    (pid == self ? own : other) = true;
  }
  if (!own) return std::nullopt;
  return other;
}

std::optional<bool> opened_by_another_process(const std::string& path) {
  // SQLite names the -shm file after the database's path with every link followed.
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  struct stat st {};
  if (::stat((std::string(resolved) + "-shm").c_str(), &st) != 0) return std::nullopt;
  std::ifstream in("/proc/locks");
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return other_lock_holders(text.str(), st.st_ino, ::getpid());
}

}  // namespace mailtap::storage
