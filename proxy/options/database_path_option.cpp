#include "proxy/options/database_path_option.hpp"

#include <string>

namespace mailtap::options {

CLI::Validator path_validator(std::string_view option, std::string_view what,
                              std::string_view empty_fix) {
  return CLI::Validator(
      [option = std::string(option), what = std::string(what),
       empty_fix = std::string(empty_fix)](std::string& path) -> std::string {
        if (path.empty()) return "an empty path names no " + what + ": " + empty_fix;
        if (path.front() == '-')
          return path + " looks like an option, not a " + what + ": " + option +
                 " needs a path (a path starting with '-' must be written ./" + path + ")";
        if (path.front() == '~')
          return path +
                 " starts with ~, which nothing expanded (the shell expands ~/ of a flag, "
                 "mailtap that of the config file and MAILTAP_ variables, and only with "
                 "an absolute HOME): write the full path, or ./" +
                 path + " for a directory really named ~";
        return "";
      },
      "");
}

CLI::Validator output_path_validator(std::string_view option) {
  CLI::Validator path_check = path_validator(
      option, "file",
      "give a path, or leave " + std::string(option) + " out (or give -) for stdout");
  return CLI::Validator(
      [path_check](std::string& path) -> std::string {
        return path == "-" ? std::string() : path_check(path);
      },
      "");
}

CLI::Validator database_path_validator(std::string_view instead) {
  const std::string or_instead = instead.empty() ? "" : ", or " + std::string(instead);
  return path_validator("--db", "database",
                        "give a path, or leave --db (and db in the config file) out for the "
                        "default" +
                            or_instead);
}

}  // namespace mailtap::options
