// Man pages and bash completion generated from the CLI11 definitions that also print --help,
// so neither can drift from the options the binary really has. Run at build time through the
// hidden `mailtap generate-docs`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools {

struct ManPage {
  std::string file_name;  // "mailtap.1", "mailtap-proxy.1"
  std::string roff;
};

// mailtap(1) and one mailtap-SUBCOMMAND(1) for each visible subcommand of `root`. A non-empty
// doc_dir (the installed /usr/share/doc/mailtap) replaces the docs/ of the texts' references.
std::vector<ManPage> man_pages(const CLI::App& root, std::string_view version,
                               std::string_view doc_dir = {});

// A bash completion script: every visible subcommand, each one's options, the choices of
// options that have them, and file names for options that take a path.
std::string bash_completion(const CLI::App& root);

}  // namespace mailtap::tools
