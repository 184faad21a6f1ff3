#include "proxy/options/database_path_option.hpp"

#include <string>

namespace mailtap::options {

CLI::Validator database_path_validator(std::string_view instead) {
  const std::string or_instead = instead.empty() ? "" : ", or " + std::string(instead);
  return CLI::Validator(
      [or_instead](std::string& path) -> std::string {
        if (path.empty())
          return "an empty path names no database: give a path, or leave --db (and db in the "
                 "config file) out for the default" +
                 or_instead;
        if (path.front() == '-')
          return path +
                 " looks like an option, not a database: --db needs a path (a path "
                 "starting with '-' must be written ./" +
                 path + ")";
        return "";
      },
      "");
}

}  // namespace mailtap::options
