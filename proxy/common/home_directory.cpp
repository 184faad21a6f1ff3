#include "proxy/common/home_directory.hpp"

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

}  // namespace mailtap
