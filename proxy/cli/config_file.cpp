#include "proxy/cli/config_file.hpp"

#include <fcntl.h>
#include <openssl/mem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include "proxy/common/home_directory.hpp"
#include "proxy/common/private_file.hpp"
#include "proxy/common/stop_signal_deferral.hpp"

namespace mailtap::cli {

namespace {

// Why a config file that others could have written is refused, or "". It chooses the commands
// mailtap runs (password-cmd, oauth2-token-cmd) and where the credentials go (upstream,
// insecure, ca-file), so whoever can change it can run code as this user and take the
// password: refused as ssh refuses its config ("Bad owner or permissions"), from the fstat of
// the descriptor that is read. Only the file, not its directories, as ssh's client does: a
// group-writable home or ~/.config is common with per-user groups, and would be refused for
// no gain. /dev/null (no config) is a character device and passes.
std::string untrusted_file_refusal(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) return {};
  const PrivacyProblem problem = write_access_problem(st, "it");
  if (problem.kind == PrivacyProblem::none) return {};
  const std::string file = path_to_chmod(path);
  if (file.empty())
    return "config file " + path + ": " + problem.reason +
           ", and it chooses the commands mailtap runs and where your credentials go: refused, "
           "as ssh refuses such a config (fix the file given on it, or give that file's path)";
  return "config file " + path + ": " + problem.reason +
         ", and it chooses the commands mailtap runs and where your credentials go: refused, "
         "as ssh refuses such a config (" +
         (problem.kind == PrivacyProblem::too_open
              ? "chmod go-w " + file
              : "chown $(id -un) " + file +
                    " if it is meant for you, or copy it to a file of "
                    "your own") +
         ")";
}

}  // namespace

const ConfigEntry* ConfigFile::find(std::string_view section_name, std::string_view key) const {
  for (const ConfigEntry& e : entries)
    if (e.section == section_name && e.key == key) return &e;
  return nullptr;
}

std::vector<const ConfigEntry*> ConfigFile::section(std::string_view section_name) const {
  std::vector<const ConfigEntry*> out;
  for (const ConfigEntry& e : entries)
    if (e.section == section_name) out.push_back(&e);
  return out;
}

std::vector<std::string> ConfigFile::upstream_names() const {
  std::vector<std::string> out;
  for (const ConfigEntry& e : entries) {
    if (!std::string_view(e.section).starts_with(kUpstreamPrefix)) continue;
    std::string name = e.section.substr(kUpstreamPrefix.size());
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

const ConfigTable* ConfigFile::first_unknown_table(const std::vector<std::string>& known) const {
  for (const ConfigTable& t : tables) {
    const bool named_upstream = !upstream_table_name(t.name).empty();
    const bool upstream_parent = t.name == "upstream" && section("upstream").empty();
    if (!named_upstream && !upstream_parent &&
        std::find(known.begin(), known.end(), t.name) == known.end())
      return &t;
  }
  return nullptr;
}

std::string ConfigFile::where(const ConfigEntry& e) const {
  return path + ":" + std::to_string(e.line);
}

std::string ConfigFile::where(const ConfigTable& t) const {
  return path + ":" + std::to_string(t.line);
}

std::string default_config_path(const std::function<const char*(const char*)>& getenv) {
  if (const auto xdg = directory_from_env(getenv, "XDG_CONFIG_HOME"))
    return *xdg + "/mailtap/config.toml";
  if (const auto home = directory_from_env(getenv, "HOME"))
    return *home + "/.config/mailtap/config.toml";
  return {};
}

std::string default_config_path() {
  return default_config_path([](const char* name) { return std::getenv(name); });
}

namespace {

std::string stopped_reading(const std::string& path) {
  const char* name = sigabbrev_np(stop_signals::WaitWatch::caught());
  return std::string("stopped (SIG") + (name != nullptr ? name : "?") +
         ") while reading the config file " + path;
}

// The whole of `fd` (a file `st` describes) into `text`, reserved beforehand so that no
// reallocation leaves a copy of a password; "" when read, else why not. Under a `watch`, `fd`
// does not block (the wait for a FIFO's writer, or its next line, is the watch's).
std::string read_all(int fd, const struct stat& st, std::string& text,
                     stop_signals::WaitWatch* watch) {
  constexpr std::size_t largest_stream = 1 << 20;
  text.reserve(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) + 4096 : largest_stream);
  char chunk[4096];
  std::string problem;
  for (;;) {
    if (watch != nullptr && !watch->wait_readable(fd)) break;
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || (watch != nullptr && errno == EAGAIN))) continue;
    if (n < 0) {
      problem = std::strerror(errno);
      break;
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > text.capacity()) {
      problem = S_ISREG(st.st_mode) ? "changed while being read" : "larger than 1 MiB";
      break;
    }
    text.append(chunk, static_cast<std::size_t>(n));
  }
  OPENSSL_cleanse(chunk, sizeof chunk);
  return problem;
}

}  // namespace

std::optional<ConfigFile> load_config_file(const std::string& path, bool explicit_path,
                                           std::string& error, stop_signals::WaitWatch* watch) {
  ConfigFile file;
  if (path.empty()) return file;
  // Under a watch, opening a FIFO does not wait for its writer: the read waits, and yields to a
  // stop signal.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (watch != nullptr ? O_NONBLOCK : 0));
  if (fd < 0) {
    if (errno == ENOENT && !explicit_path) return file;
    error = "config file " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  // A pipe (--config <(...)) and /dev/null (no config at all) are fine too.
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    error = "config file " + path + ": a directory, not a file";
    ::close(fd);
    return std::nullopt;
  }
  if (error = untrusted_file_refusal(path, st); !error.empty()) {
    ::close(fd);
    return std::nullopt;
  }
  file.path = path;
  file.owner = st.st_uid;
  if (S_ISREG(st.st_mode))
    file.directory = std::filesystem::absolute(path).lexically_normal().parent_path().string();
  file.private_to_owner = st.st_uid == ::getuid() && (st.st_mode & 077) == 0;
  file.mode = st.st_mode & 07777;
  std::string text;
  const std::string problem = read_all(fd, st, text, watch);
  ::close(fd);
  if (watch != nullptr && watch->stopped()) {
    wipe(text);
    error = stopped_reading(path);
    return std::nullopt;
  }
  if (!problem.empty()) {
    wipe(text);
    error = "config file " + path + ": " + problem;
    return std::nullopt;
  }
  auto parsed = parse_config_text(text, error);
  wipe(text);
  if (!parsed) {
    error = "config file " + path + ", " + error;
    return std::nullopt;
  }
  file.entries = std::move(parsed->entries);
  file.tables = std::move(parsed->tables);
  return file;
}

}  // namespace mailtap::cli
