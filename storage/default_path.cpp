#include "storage/default_path.hpp"

#include <cstdlib>

namespace mailtap::storage {

std::string default_database_path(const std::function<const char*(const char*)>& getenv,
                                  std::string& error) {
  error.clear();
  auto value = [&](const char* name) {
    const char* v = getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  if (std::string db = value("MAILTAP_DB"); !db.empty()) return db;
  if (std::string xdg = value("XDG_DATA_HOME"); !xdg.empty() && xdg.front() == '/') {
    while (xdg.size() > 1 && xdg.back() == '/') xdg.pop_back();
    return xdg + "/mailtap/mailtap.db";
  }
  if (std::string home = value("HOME"); !home.empty()) {
    while (home.size() > 1 && home.back() == '/') home.pop_back();
    if (home == "/") home.clear();
    return home + "/.local/share/mailtap/mailtap.db";
  }
  error = "no database path: set --db, MAILTAP_DB, XDG_DATA_HOME or HOME";
  return {};
}

std::string default_database_path(std::string& error) {
  return default_database_path([](const char* name) { return std::getenv(name); }, error);
}

}  // namespace mailtap::storage
