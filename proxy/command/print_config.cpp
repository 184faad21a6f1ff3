#include "proxy/command/print_config.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "proxy/common/terminal_escape.hpp"
#include "proxy/common/text.hpp"

namespace mailtap::cli {

namespace {

// Where the settings came from: the command, the config file (or why there is none) and the
// upstream table.
std::string config_header(std::string_view command, const ConfigFile& file,
                          const std::string& default_file_path, std::string_view upstream_name) {
  std::string out = "# mailtap " + std::string(command) +
                    ": effective configuration (flag > environment > config file > default)\n";
  if (!file.path.empty())
    out += "# config file: " + escape_text(file.path) +
           (file.private_to_owner ? " (private to you)\n" : " (readable by others)\n");
  else if (!default_file_path.empty())
    out += "# config file: none (" + escape_text(default_file_path) + " does not exist)\n";
  else
    out += "# config file: none (neither XDG_CONFIG_HOME nor HOME is set)\n";
  if (!upstream_name.empty())
    out += "# upstream name: " + escape_text(upstream_name) + ", the " +
           written_table("upstream." + std::string(upstream_name)) + " table\n";
  return out;
}

struct Line {
  std::string text, comment;
};

// A yes/no flag's value as TOML writes it: `insecure = yes` is no TOML, `insecure = true` is.
std::string yes_no(const std::string& v) {
  if (v.empty()) return "false";
  try {
    return CLI::detail::to_flag_value(v) > 0 ? "true" : "false";
  } catch (const std::exception&) {
    return toml_quoted(v);  // refused by the option already; shown as it was given
  }
}

// `v` as the setting's TOML value: a flag's count or yes/no, a quoted string, or a mask.
std::string value_text(const Setting& s, const std::string& v) {
  const bool flag = s.option != nullptr && s.option->get_items_expected_max() == 0;
  if (s.secret) return std::string("\"********\"");
  // A counting flag (-vv) takes every occurrence; a yes/no flag the last one.
  const bool counts =
      flag && s.option->get_multi_option_policy() == CLI::MultiOptionPolicy::TakeAll;
  if (flag && counts) return v.empty() ? std::string("0") : v;
  if (flag) return yes_no(v);
  // A number stays a number, as the file writes it (max-sessions = 512, not "512").
  const std::string type = s.option != nullptr ? s.option->get_type_name() : std::string();
  if ((type == "UINT" || type == "INT" || s.number) && !v.empty() &&
      std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return v;
  return toml_quoted(v);
}

// The line for a setting not set by any layer: its derived or declared default.
Line default_line(const Setting& s, const std::map<std::string, DerivedDefault>& derived) {
  if (auto d = derived.find(s.key); d != derived.end()) {
    if (d->second.value.empty()) return {"# " + s.key + " (not set: " + d->second.why + ")", ""};
    return {s.key + " = " + value_text(s, d->second.value), "default (" + d->second.why + ")"};
  }
  const bool flag = s.option->get_items_expected_max() == 0;
  const std::string fallback = s.option->get_default_str();
  if (flag || !fallback.empty()) return {s.key + " = " + value_text(s, fallback), "default"};
  return {"# " + s.key + " (not set)", ""};
}

// The line for a setting some layer gave.
Line given_line(const Setting& s) {
  if (!s.folded_into.empty())  // its value is on another line: pasted back, both would clash
    return {"# " + s.key + " = " + value_text(s, s.value),
            s.source.describe() + ", given above as " + s.folded_into};
  if (!is_valid_utf8(s.value))
    // No TOML string holds these bytes (a flag's: the file and the environment refuse them),
    // and raw they would make the output no TOML: a comment, the bytes escaped.
    return {"# " + s.key + " = \"" + escape_text(s.value) + "\"",
            s.source.describe() + "; not UTF-8, which TOML cannot hold"};
  if (s.secret)  // pasted back, the mask would become the password: the line stays a comment
    return {"# " + s.key + " = " + value_text(s, s.value),
            s.source.describe() + "; not shown (give the real value, or leave it out)"};
  return {s.key + " = " + value_text(s, s.value), s.source.describe()};
}

// The lines, their comments aligned in one column (up to 44 characters in). A comment may
// quote a path as given (--config): escaped, as a comment is TOML text too, where a newline
// would end it and bytes that are not UTF-8 make the file unreadable.
std::string aligned(const std::vector<Line>& lines) {
  std::string out;
  std::size_t width = 0;
  for (const Line& l : lines)
    if (!l.comment.empty()) width = std::max(width, l.text.size());
  width = std::min<std::size_t>(width, 44);
  for (const Line& l : lines) {
    out += l.text;
    if (!l.comment.empty()) {
      out += std::string(l.text.size() < width ? width - l.text.size() : 0, ' ');
      out += "  # " + escape_text(l.comment);
    }
    out += '\n';
  }
  return out;
}

}  // namespace

std::string format_effective_config(std::string_view command, const ConfigFile& file,
                                    const std::string& default_file_path,
                                    std::string_view upstream_name, const OptionLayers& layers,
                                    const std::map<std::string, DerivedDefault>& derived) {
  std::vector<Line> lines;
  std::vector<const Setting*> shown;  // the settings with a key line so far
  // The setting given, or shown above, that makes the choice `s` is part of, or nullptr.
  auto choice_of = [&](const Setting& s) -> const Setting* {
    for (const Setting& o : layers.settings())
      if (&o != &s && layers.excludes(s, o) &&
          (o.is_set() || std::find(shown.begin(), shown.end(), &o) != shown.end()))
        return &o;
    return nullptr;
  };
  for (const Setting& s : layers.settings()) {
    Line line;
    if (s.is_set()) {
      line = given_line(s);
      // A 0 that stands for something else says what, or it reads as none (threads = 0).
      if (const auto d = derived.find(s.key);
          d != derived.end() && !d->second.zero_means.empty() && s.value == "0")
        line.comment += "; 0: " + d->second.zero_means;
    } else if (s.overridden) {
      // Given, and overridden by another option of its choice: shown, or the reader would take
      // the key for missing (a password-cmd "not set" under --password-env). A comment, as
      // pasted back it would be a second answer to that choice.
      line = {"# " + s.key + " = " + value_text(s, s.overridden->value),
              s.overridden->source.describe() + "; overridden by " + s.overridden->by};
    } else if (s.option != nullptr) {
      line = default_line(s, derived);
      // A default beside the choice another line makes (no-record = false beside db = ...)
      // would be a second choice in the file.
      if (const Setting* other = line.text.front() != '#' ? choice_of(s) : nullptr)
        line = {"# " + line.text, line.comment + "; " + other->key + " makes the choice"};
    } else {
      continue;  // a file-only key the file does not give
    }
    if (line.text.front() != '#') shown.push_back(&s);
    lines.push_back(std::move(line));
  }
  return config_header(command, file, default_file_path, upstream_name) + aligned(lines);
}

}  // namespace mailtap::cli
