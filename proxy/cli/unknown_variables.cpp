#include "proxy/cli/unknown_variables.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>
#include <string_view>

#include "proxy/cli/option_layers.hpp"
#include "proxy/common/closest_name.hpp"
#include "proxy/common/log.hpp"

namespace mailtap::cli {

namespace {

constexpr std::string_view prefix = "MAILTAP_";

// The variables mailtap reads: one per option of `mailtap proxy` (every one is layered, but
// the command line's own), and those the tools take (layer_common_options).
std::set<std::string> known_names(const CLI::App& root) {
  std::set<std::string> names = {"MAILTAP_CONFIG", "MAILTAP_DB", "MAILTAP_COLOR"};
  for (const CLI::App* sub : root.get_subcommands({})) {
    if (sub->get_name() != "proxy") continue;
    for (const CLI::Option* o : sub->get_options()) {
      const auto& long_names = o->get_lnames();
      if (long_names.empty() || !o->nonpositional()) continue;
      const std::string& name = long_names.front();
      if (name != "help" && name != "print-config") names.insert(OptionLayers::env_name(name));
    }
  }
  return names;
}

}  // namespace

std::vector<std::string> unknown_variable_warnings(const CLI::App& root,
                                                   const std::vector<std::string>& also_read,
                                                   const char* const* environment) {
  const std::set<std::string> known = known_names(root);
  const std::vector<std::string> candidates(known.begin(), known.end());
  std::vector<std::string> out;
  for (const char* const* entry = environment; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text = *entry;
    const std::size_t equals = text.find('=');
    if (text.compare(0, prefix.size(), prefix) != 0 || equals == std::string_view::npos ||
        equals + 1 == text.size())  // empty: unset, as every empty MAILTAP_ variable
      continue;
    const std::string name(text.substr(0, equals));
    if (known.count(name) != 0 ||
        std::find(also_read.begin(), also_read.end(), name) != also_read.end())
      continue;
    std::string line = "warning: " + name + " is set, but mailtap reads no such variable";
    if (name == "MAILTAP_PASSWORD")
      line += " (no password is read from the environment unasked: --password-env " + name +
              " reads it)";
    else if (const std::string near = closest_name(name, candidates); !near.empty())
      line += " (did you mean " + near + "?)";
    out.push_back(line + "; ignored");
  }
  return out;
}

void warn_about_unknown_variables(const CLI::App& app, const std::vector<std::string>& also_read) {
  const CLI::App* root = &app;
  while (root->get_parent() != nullptr) root = root->get_parent();
  for (const std::string& line : unknown_variable_warnings(*root, also_read, environ))
    log::error(line);
}

}  // namespace mailtap::cli
