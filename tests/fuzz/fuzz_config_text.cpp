// The config file's text (proxy/cli/config_text.hpp): a file a person writes, copies from a
// how-to or is handed. Beyond not crashing: an error names its line; a value the file takes is
// one the environment's check would take too; and what --print-config writes of the entries
// (written_table, toml_quoted) reads back as the same entries.
//
// Input: the file's text.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cli/config_text.hpp"

namespace {

using mailtap::cli::ConfigEntry;

bool bare_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// The entries written as TOML, a table's keys together under its header, the keys before any
// table first.
std::string written(const std::vector<ConfigEntry>& entries) {
  std::vector<std::string> sections{""};
  for (const ConfigEntry& e : entries) {
    if (std::find(sections.begin(), sections.end(), e.section) == sections.end())
      sections.push_back(e.section);
  }
  std::string out;
  for (const std::string& section : sections) {
    if (!section.empty()) out += mailtap::cli::written_table(section) + "\n";
    for (const ConfigEntry& e : entries) {
      if (e.section == section) out += e.key + " = " + mailtap::cli::toml_quoted(e.value) + "\n";
    }
  }
  return out;
}

// A table --print-config can write: an [upstream.NAME] (any NAME) or one of bare names. Other
// tables are refused as unknown before anything is printed, and a quoted part with a dot in
// one ([a."b.c"]) is read as the same section as [a.b.c].
bool printable_section(std::string_view section) {
  if (!mailtap::cli::upstream_table_name(section).empty()) return true;
  for (std::size_t start = 0;;) {
    const std::size_t dot = section.find('.', start);
    if (!bare_key(section.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

void check_read_back(const std::vector<ConfigEntry>& entries) {
  for (const ConfigEntry& e : entries) {
    // A "quoted key" is written as it was given only by hand.
    if (!bare_key(e.key) || (!e.section.empty() && !printable_section(e.section))) return;
  }
  std::string error;
  const auto again = mailtap::cli::parse_config_text(written(entries), error);
  if (!again || again->entries.size() != entries.size()) std::abort();
  for (const ConfigEntry& e : entries) {
    const auto same = std::find_if(again->entries.begin(), again->entries.end(), [&](auto& a) {
      return a.section == e.section && a.key == e.key && a.value == e.value;
    });
    if (same == again->entries.end()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto parsed = mailtap::cli::parse_config_text(text, error);
  if (!parsed) {
    // "line N: what"
    const std::size_t colon = error.find(": ");
    if (error.rfind("line ", 0) != 0 || colon == 5 || colon == std::string::npos) std::abort();
    for (std::size_t i = 5; i < colon; ++i) {
      if (error[i] < '0' || error[i] > '9') std::abort();
    }
    return 0;
  }
  for (const ConfigEntry& e : parsed->entries) {
    if (e.line < 1 || e.key.empty()) std::abort();
    if (!mailtap::cli::unmeant_value_problem(e.value).empty()) std::abort();
  }
  check_read_back(parsed->entries);
  return 0;
}
