#include "proxy/cli/unknown_variables.hpp"

#include <unistd.h>

#include <algorithm>
#include <set>
#include <string_view>

#include "proxy/cli/option_layers.hpp"
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

// Levenshtein distance, enough for names of a few dozen letters.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known name closest to `name`, if it is close enough to be the one meant ("" if none).
std::string closest(const std::string& name, const std::set<std::string>& known) {
  std::string best;
  std::size_t best_distance = 3;  // two slips at most: MAILTAP_UPSTREM, MAILTAP_LISTN
  for (const std::string& k : known) {
    const std::size_t d = edit_distance(name, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  return best;
}

}  // namespace

std::vector<std::string> unknown_variable_warnings(const CLI::App& root,
                                                   const std::vector<std::string>& also_read,
                                                   const char* const* environment) {
  const std::set<std::string> known = known_names(root);
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
    else if (const std::string near = closest(name, known); !near.empty())
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
