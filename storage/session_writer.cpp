#include "storage/session_writer.hpp"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

namespace mailtap::storage {

namespace {

std::optional<std::string> first_line_of(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) return std::nullopt;
  return line;
}

std::optional<std::string> link_target(const char* path) {
  char buf[256];
  const ssize_t n = ::readlink(path, buf, sizeof buf);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

template <typename Int>
std::optional<Int> number(std::string_view text) {
  Int v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// A word with no space in it: what the identity's four fields are, so the text splits back.
bool is_word(std::string_view s) {
  return !s.empty() && s.find_first_of(" \t\r\n") == std::string_view::npos;
}

std::optional<WriterIdentity> read_this_process() {
  WriterIdentity w;
  const std::optional<std::string> boot = first_line_of("/proc/sys/kernel/random/boot_id");
  const std::optional<std::string> ns = link_target("/proc/self/ns/pid");
  const std::optional<std::string> stat = first_line_of("/proc/self/stat");
  if (!boot || !ns || !stat || !is_word(*boot) || !is_word(*ns)) return std::nullopt;
  const std::optional<std::uint64_t> start = start_time_of_stat(*stat);
  if (!start) return std::nullopt;
  w.boot_id = *boot;
  w.pid = ::getpid();
  w.start_time = *start;
  w.pid_namespace = *ns;
  return w;
}

}  // namespace

std::string format_writer(const WriterIdentity& w) {
  return w.boot_id + " " + std::to_string(w.pid) + " " + std::to_string(w.start_time) + " " +
         w.pid_namespace;
}

std::optional<WriterIdentity> parse_writer(std::string_view text) {
  std::vector<std::string_view> words;  // split at every space: a stray one makes an empty word
  for (;;) {
    const std::size_t space = text.find(' ');
    words.push_back(text.substr(0, space));
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  if (words.size() != 4 || !is_word(words[0]) || !is_word(words[3])) return std::nullopt;
  const std::optional<std::int64_t> pid = number<std::int64_t>(words[1]);
  const std::optional<std::uint64_t> start = number<std::uint64_t>(words[2]);
  if (!pid || *pid <= 0 || !start) return std::nullopt;
  return WriterIdentity{std::string(words[0]), *pid, *start, std::string(words[3])};
}

const std::optional<WriterIdentity>& this_process() {
  static const std::optional<WriterIdentity> identity = read_this_process();
  return identity;
}

std::optional<std::uint64_t> start_time_of_stat(std::string_view stat_line) {
  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so the fields are
  // counted from the last ')'. STATE is field 3, the start time field 22.
  const std::size_t close = stat_line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::istringstream fields{std::string(stat_line.substr(close + 1))};
  const std::vector<std::string> after{std::istream_iterator<std::string>(fields),
                                       std::istream_iterator<std::string>()};
  constexpr std::size_t kState = 0;       // field 3
  constexpr std::size_t kStartTime = 19;  // field 22
  if (after.size() <= kStartTime) return std::nullopt;
  // A zombie (Z) or dead (X) process has exited: it records nothing any more.
  if (after[kState] == "Z" || after[kState] == "X") return std::nullopt;
  return number<std::uint64_t>(after[kStartTime]);
}

std::optional<std::uint64_t> process_start_time(std::int64_t pid) {
  const std::optional<std::string> stat = first_line_of("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  return start_time_of_stat(*stat);
}

RecordState judge_record(
    bool ended, const std::optional<std::string>& writer, const std::optional<WriterIdentity>& here,
    const std::function<std::optional<std::uint64_t>(std::int64_t)>& start_time_of) {
  if (ended) return RecordState::ended;
  if (!writer) return RecordState::unknown;  // recorded before schema v8
  const std::optional<WriterIdentity> w = parse_writer(*writer);
  if (!w || !here) return RecordState::unknown;
  // A reboot ends every process: the writer of an earlier boot is gone.
  if (w->boot_id != here->boot_id) return RecordState::cut;
  // Its pid names another process here (or none): nothing can be said (a container).
  if (w->pid_namespace != here->pid_namespace) return RecordState::unknown;
  return start_time_of(w->pid) == w->start_time ? RecordState::recording : RecordState::cut;
}

RecordState record_state(bool ended, const std::optional<std::string>& writer) {
  return judge_record(ended, writer, this_process(), process_start_time);
}

}  // namespace mailtap::storage
