#include "proxy/common/installed_docs.hpp"

#include <filesystem>
#include <system_error>
#include <vector>

// Set by CMakeLists.txt from GNUInstallDirs; these are its defaults.
#ifndef MAILTAP_INSTALL_BINDIR
#define MAILTAP_INSTALL_BINDIR "bin"
#endif
#ifndef MAILTAP_INSTALL_DOCDIR
#define MAILTAP_INSTALL_DOCDIR "share/doc/mailtap"
#endif

namespace mailtap {

std::string documentation_path(std::string_view name, const std::string& executable,
                               std::string_view bindir, std::string_view docdir,
                               const std::function<bool(const std::string&)>& exists) {
  const std::string in_source = "docs/" + std::string(name);
  namespace fs = std::filesystem;
  const fs::path directory = fs::path(executable).lexically_normal().parent_path();
  // PREFIX/BINDIR/mailtap: take BINDIR's parts off the end to find PREFIX.
  fs::path prefix = directory;
  const fs::path bin = fs::path(bindir).lexically_normal();
  std::vector<fs::path> parts(bin.begin(), bin.end());
  for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
    if (part->empty()) continue;
    if (prefix.filename() != *part) return in_source;
    prefix = prefix.parent_path();
  }
  const fs::path docs = fs::path(docdir).is_absolute() ? fs::path(docdir) : prefix / docdir;
  const std::string installed = (docs / "docs" / name).lexically_normal().string();
  return exists(installed) ? installed : in_source;
}

std::string documentation_path(std::string_view name) {
  std::error_code ec;
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "docs/" + std::string(name);
  return documentation_path(name, executable.string(), MAILTAP_INSTALL_BINDIR,
                            MAILTAP_INSTALL_DOCDIR, [](const std::string& path) {
                              std::error_code error;
                              return std::filesystem::is_regular_file(path, error);
                            });
}

}  // namespace mailtap
