#include "proxy/command/print_config.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace mailtap::cli {

std::string toml_quoted(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string format_effective_config(std::string_view command, const ConfigFile& file,
                                    const std::string& default_file_path,
                                    std::string_view upstream_name, const OptionLayers& layers,
                                    const std::map<std::string, DerivedDefault>& derived) {
  std::string out = "# mailtap " + std::string(command) +
                    ": effective configuration (flag > environment > config file > default)\n";
  if (!file.path.empty())
    out += "# config file: " + file.path +
           (file.private_to_owner ? " (private to you)\n" : " (readable by others)\n");
  else if (!default_file_path.empty())
    out += "# config file: none (" + default_file_path + " does not exist)\n";
  else
    out += "# config file: none (neither XDG_CONFIG_HOME nor HOME is set)\n";
  if (!upstream_name.empty())
    out += "# upstream name: " + std::string(upstream_name) + ", the [upstream." +
           std::string(upstream_name) + "] table\n";

  struct Line {
    std::string text, comment;
  };
  std::vector<Line> lines;
  for (const Setting& s : layers.settings()) {
    const bool flag = s.option != nullptr && s.option->get_items_expected_max() == 0;
    auto value_text = [&](const std::string& v) {
      if (s.secret) return std::string("\"********\"");
      // A counting flag (-vv) takes every occurrence; a yes/no flag the last one.
      const bool counts =
          flag && s.option->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
      if (flag) return v.empty() ? std::string(counts ? "0" : "false") : v;
      return toml_quoted(v);
    };
    if (s.is_set()) {
      lines.push_back({s.key + " = " + value_text(s.value), s.source.describe()});
      continue;
    }
    if (s.option == nullptr) continue;  // a file-only key the file does not give
    if (auto d = derived.find(s.key); d != derived.end()) {
      if (d->second.value.empty())
        lines.push_back({"# " + s.key + " (not set: " + d->second.why + ")", ""});
      else
        lines.push_back(
            {s.key + " = " + value_text(d->second.value), "default (" + d->second.why + ")"});
      continue;
    }
    const std::string fallback = s.option->get_default_str();
    if (flag)
      lines.push_back({s.key + " = " + value_text(fallback), "default"});
    else if (!fallback.empty())
      lines.push_back({s.key + " = " + value_text(fallback), "default"});
    else
      lines.push_back({"# " + s.key + " (not set)", ""});
  }
  std::size_t width = 0;
  for (const Line& l : lines)
    if (!l.comment.empty()) width = std::max(width, l.text.size());
  width = std::min<std::size_t>(width, 44);
  for (const Line& l : lines) {
    out += l.text;
    if (!l.comment.empty()) {
      out += std::string(l.text.size() < width ? width - l.text.size() : 0, ' ');
      out += "  # " + l.comment;
    }
    out += '\n';
  }
  return out;
}

}  // namespace mailtap::cli
