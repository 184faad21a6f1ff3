#include "storage/default_path.hpp"

#include <unistd.h>

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

}  // namespace mailtap::storage
