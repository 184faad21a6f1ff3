#include "storage/default_path.hpp"

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

std::string default_database_path(std::string& error) {
  return default_database_path([](const char* name) { return std::getenv(name); }, error);
}

}  // namespace mailtap::storage
