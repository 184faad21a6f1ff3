#include "storage/default_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "proxy/common/home_directory.hpp"

namespace mailtap::storage {

std::string default_database_path(const std::function<const char*(const char*)>& getenv,
                                  std::string& error) {
  error.clear();
  auto value = [&](const char* name) {
    const char* v = getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  if (std::string db = value("MAILTAP_DB"); !db.empty()) return db;
  if (const auto xdg = directory_from_env(getenv, "XDG_DATA_HOME"))
    return *xdg + "/mailtap/mailtap.db";
  if (const auto home = directory_from_env(getenv, "HOME"))
    return *home + "/.local/share/mailtap/mailtap.db";
  error =
      "no database path: set --db, MAILTAP_DB, XDG_DATA_HOME or HOME" + relative_home_note(getenv);
  return {};
}

std::string default_database_path_to_write(const std::function<const char*(const char*)>& getenv,
                                           unsigned euid, std::string& error) {
  std::string path = default_database_path(getenv, error);
  if (path.empty()) return path;
  const char* value = getenv("MAILTAP_DB");
  if (value != nullptr && *value != '\0') return path;
  const char* variable = directory_from_env(getenv, "XDG_DATA_HOME") ? "XDG_DATA_HOME" : "HOME";
  error = other_users_home_refusal(*directory_from_env(getenv, variable), variable, euid);
  if (!error.empty()) return {};
  return path;
}

std::string default_database_path_to_write(std::string& error) {
  return default_database_path_to_write([](const char* name) { return std::getenv(name); },
                                        ::geteuid(), error);
}

std::string default_database_path(std::string& error) {
  return default_database_path([](const char* name) { return std::getenv(name); }, error);
}

std::string older_unit_database_path(const std::function<const char*(const char*)>& getenv) {
  if (const auto xdg = directory_from_env(getenv, "XDG_STATE_HOME"))
    return *xdg + "/mailtap/mailtap.db";
  if (const auto home = directory_from_env(getenv, "HOME"))
    return *home + "/.local/state/mailtap/mailtap.db";
  return {};
}

std::string older_unit_database_left(const std::string& default_path,
                                     const std::function<const char*(const char*)>& getenv) {
  struct stat st {};
  // Any entry at the default (even one that cannot be read) is what is meant: its own error.
  if (default_path.empty() || ::lstat(default_path.c_str(), &st) == 0 || errno != ENOENT) return {};
  std::string older = older_unit_database_path(getenv);
  if (older.empty() || older == default_path || ::stat(older.c_str(), &st) != 0 ||
      !S_ISREG(st.st_mode))
    return {};
  return older;
}

std::string older_unit_database_left(const std::string& default_path) {
  return older_unit_database_left(default_path, [](const char* name) { return std::getenv(name); });
}

}  // namespace mailtap::storage
