#include "proxy/common/home_directory.hpp"

#include <sys/stat.h>

#include <filesystem>

namespace mailtap {

std::optional<std::string> directory_from_env(const Getenv& getenv, const char* variable) {
  const char* value = getenv(variable);
  if (value == nullptr || *value != '/') return std::nullopt;
  std::string dir = value;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  return dir;
}

std::string relative_home_note(const Getenv& getenv) {
  const char* home = getenv("HOME");
  if (home == nullptr || *home == '\0' || *home == '/') return {};
  return " (HOME is set but not an absolute path, so it is not used)";
}

std::string other_users_home_refusal(const std::string& dir, const char* variable, unsigned euid) {
  if (euid != 0) return {};
  std::filesystem::path existing = dir.empty() ? "/" : dir;
  struct stat st {};
  while (::stat(existing.c_str(), &st) != 0) {
    if (existing == existing.parent_path()) return {};
    existing = existing.parent_path();
  }
  if (st.st_uid == 0) return {};
  return std::string(variable) + " is " + (dir.empty() ? "/" : dir) + ", and " + existing.string() +
         " belongs to uid " + std::to_string(st.st_uid) +
         ", not to root, as whom mailtap runs: what it made there would be root's and shut "
         "that user out; run mailtap as that user";
}

}  // namespace mailtap
