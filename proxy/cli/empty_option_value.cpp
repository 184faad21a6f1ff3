#include "proxy/cli/empty_option_value.hpp"

namespace mailtap::cli {

namespace {

// Whether `--NAME` of `app` takes a value (not a flag, whose `--NAME=` CLI11 reads itself).
bool takes_value(const CLI::App& app, const std::string& name) {
  const CLI::Option* option = app.get_option_no_throw(name);
  return option != nullptr && option->get_type_size_max() > 0;
}

}  // namespace

std::vector<std::string> spell_out_empty_values(const CLI::App& root,
                                                std::vector<std::string> arguments) {
  std::vector<std::string> out;
  out.reserve(arguments.size() + 1);
  const CLI::App* command = &root;
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    std::string& word = arguments[i];
    if (word == "--") {
      out.insert(out.end(), arguments.begin() + static_cast<std::ptrdiff_t>(i), arguments.end());
      break;
    }
    if (command == &root) {
      for (const CLI::App* sub : root.get_subcommands({}))
        if (sub->check_name(word)) command = sub;
    }
    if (word.size() > 3 && word.starts_with("--") && word.ends_with("=")) {
      std::string name = word.substr(0, word.size() - 1);
      if (takes_value(*command, name)) {
        out.push_back(std::move(name));
        out.emplace_back();
        continue;
      }
    }
    out.push_back(std::move(word));
  }
  return out;
}

}  // namespace mailtap::cli
