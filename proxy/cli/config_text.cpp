#include "proxy/cli/config_text.hpp"

#include <openssl/mem.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <utility>

#include "proxy/common/text.hpp"

namespace mailtap::cli {

void wipe(std::string& s) noexcept {
  s.resize(s.capacity());  // no reallocation: the capacity is there
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string_view upstream_table_name(std::string_view section) {
  if (section.size() <= kUpstreamPrefix.size() || !section.starts_with(kUpstreamPrefix)) return {};
  return section.substr(kUpstreamPrefix.size());
}

namespace {

bool bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

void skip_blanks(std::string_view line, std::size_t& i) {
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
}

bool rest_is_comment(std::string_view line, std::size_t i) {
  skip_blanks(line, i);
  return i == line.size() || line[i] == '#';
}

// A hex digit's value, or -1.
int hex_value(char h) {
  return h >= '0' && h <= '9'   ? h - '0'
         : h >= 'a' && h <= 'f' ? h - 'a' + 10
         : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                : -1;
}

// Why the character `cp` cannot be meant in a value, or "". A NUL would cut the value short
// wherever it goes (a path, an argument, an SMTP line: `db = "a\u0000b"` made a database
// named `a`); no option means a control character either, but tab and newline (a command may be
// a short script; the checks of the single-line options refuse a newline with their reason).
// The C1 controls U+0080..U+009F are control characters too (U+009B is a CSI on some terminals).
// `meant` is what the character was to be part of: a "value", or a key or table's "name".
std::string unmeant_control(std::uint32_t cp, std::string_view meant) {
  if ((cp >= 0x20 && cp < 0x7F) || cp >= 0xA0 || cp == '\t' || cp == '\n') return {};
  char code[8];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
  return std::string(cp == 0 ? "a NUL" : "a control character") + " (" + code + "), which no " +
         std::string(meant) + " can mean";
}

// The hex digits of a \x, \u or \U escape (`e`) at line[i], as UTF-8; leaves i after them.
// \xHH (TOML 1.1) is the code point U+00HH, as \u00HH is, not a byte.
bool unicode_escape(char e, std::string_view line, std::size_t& i, std::string& out,
                    std::string_view meant, std::string& error) {
  const std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
  if (line.size() - i < digits) {
    error = "\\" + std::string(1, e) + " needs " + std::to_string(digits) + " hex digits";
    return false;
  }
  std::uint32_t cp = 0;
  for (std::size_t k = 0; k < digits; ++k) {
    const int v = hex_value(line[i++]);
    if (v < 0) {
      error = "\\" + std::string(1, e) + " needs hex digits";
      return false;
    }
    cp = cp * 16 + static_cast<std::uint32_t>(v);
  }
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    error = "\\" + std::string(1, e) + " is not a Unicode scalar value";
    return false;
  }
  if (const std::string why = unmeant_control(cp, meant); !why.empty()) {
    error = "\\" + std::string(1, e) + " gives " + why;
    return false;
  }
  auto put = [&out](char c) { out.push_back(c); };
  put_utf8(cp, put);
  return true;
}

// The escape whose letter `e` came after a backslash; leaves i after it.
bool escape(char e, std::string_view line, std::size_t& i, std::string& out, std::string_view meant,
            std::string& error) {
  switch (e) {
    case 't':
      out.push_back('\t');
      return true;
    case 'n':
      out.push_back('\n');
      return true;
    case 'b':
    case 'e':  // TOML 1.1: ESC
    case 'f':
    case 'r':
      error = "\\" + std::string(1, e) + " gives " +
              unmeant_control(e == 'b'   ? 0x08
                              : e == 'e' ? 0x1B
                              : e == 'f' ? 0x0C
                                         : 0x0D,
                              meant);
      return false;
    case '"':
      out.push_back('"');
      return true;
    case '\\':
      out.push_back('\\');
      return true;
    case 'x':  // TOML 1.1
    case 'u':
    case 'U':
      return unicode_escape(e, line, i, out, meant, error);
    default:
      error = "unknown escape \\" + std::string(1, e) +
              " in a \"string\" (use 'single quotes' "
              "for text with backslashes)";
      return false;
  }
}

// A "basic string" starting at line[i] == '"'; leaves i after the closing quote. `meant`: as
// unmeant_control's.
bool basic_string(std::string_view line, std::size_t& i, std::string& out, std::string_view meant,
                  std::string& error) {
  ++i;
  while (i < line.size()) {
    const char c = line[i++];
    if (c == '"') return true;
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i == line.size()) break;
    const char e = line[i++];
    if (!escape(e, line, i, out, meant, error)) return false;
  }
  error = "a \"string\" is not closed on its line";
  return false;
}

// The value after `=`: a quoted string, or bare text up to a comment.
bool value(std::string_view line, std::size_t& i, std::string& out, std::string& error) {
  skip_blanks(line, i);
  if (i == line.size() || line[i] == '#') {
    error = "no value after '='";
    return false;
  }
  out.reserve(line.size());  // no reallocation leaves a copy of a secret behind
  if (line.compare(i, 3, "\"\"\"") == 0 || line.compare(i, 3, "'''") == 0) {
    error = "multi-line strings are not supported";
    return false;
  }
  if (line[i] == '"') {
    if (!basic_string(line, i, out, "value", error)) return false;
  } else if (line[i] == '\'') {
    const std::size_t close = line.find('\'', i + 1);
    if (close == std::string_view::npos) {
      error = "a 'string' is not closed on its line";
      return false;
    }
    out.append(line.substr(i + 1, close - i - 1));
    i = close + 1;
  } else if (line[i] == '[' || line[i] == '{') {
    error = "arrays and inline tables are not supported";
    return false;
  } else {
    std::size_t end = line.find('#', i);
    if (end == std::string_view::npos) end = line.size();
    std::size_t last = end;
    while (last > i && (line[last - 1] == ' ' || line[last - 1] == '\t')) --last;
    out.append(line.substr(i, last - i));
    i = end;
  }
  if (!rest_is_comment(line, i)) {
    error = "unexpected text after the value (quote a value that holds '#' or quotes)";
    return false;
  }
  return true;
}

// A dotted name: bare parts or "quoted" parts, each in `parts`. Stops at a character that is
// neither, after blanks.
bool dotted_name(std::string_view line, std::size_t& i, std::vector<std::string>& parts,
                 std::string& error) {
  for (;;) {
    skip_blanks(line, i);
    std::string part;
    if (i < line.size() && line[i] == '"') {
      if (!basic_string(line, i, part, "name", error)) return false;
    } else if (i < line.size() && line[i] == '\'') {
      const std::size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos) {
        error = "a 'name' is not closed";
        return false;
      }
      part = std::string(line.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      while (i < line.size() && bare_key_char(line[i])) part.push_back(line[i++]);
    }
    if (part.empty()) {
      error = "expected a name (letters, digits, '-' and '_', or a \"quoted\" name)";
      return false;
    }
    // A "quoted" name may hold a raw C1 control, which the errors naming it would put on the
    // terminal.
    if (const std::string why = unmeant_value_problem(part, "name"); !why.empty()) {
      error = "a key or table name holds " + why;
      return false;
    }
    parts.push_back(std::move(part));
    skip_blanks(line, i);
    if (i < line.size() && line[i] == '.') {
      ++i;
      continue;
    }
    return true;
  }
}

std::string normalised_key(std::string key) {
  for (char& c : key)
    if (c == '_') c = '-';
  return key;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ".") + part;
  return out;
}

// Why the table `parts` cannot be one of mailtap's, or "". TOML reads [upstream.a.b] as a
// table b inside [upstream.a], not as the name "a.b": a name with a dot is quoted, as
// --print-config writes it, so that mailtap never reads a file otherwise than TOML does.
std::string nested_upstream_table(const std::vector<std::string>& parts) {
  if (parts.size() <= 2 || parts.front() != "upstream") return {};
  std::vector<std::string> name(parts.begin() + 1, parts.end());
  return "[" + joined(parts) + "] is a table inside [upstream." + parts[1] +
         "], which mailtap has no use for; a name with a dot is quoted: [upstream.\"" +
         joined(name) + "\"]";
}

// "[name]" at line[i] == '['; the parts of the table's name go in `table`.
bool table_header(std::string_view line, std::size_t i, std::vector<std::string>& table,
                  std::string& error) {
  if (i + 1 < line.size() && line[i + 1] == '[') {
    error = "arrays of tables ([[...]]) are not supported";
    return false;
  }
  ++i;
  std::vector<std::string> name;
  if (!dotted_name(line, i, name, error)) return false;
  if (i == line.size() || line[i] != ']') {
    error = "expected ']' after the table name";
    return false;
  }
  if (!rest_is_comment(line, i + 1)) {
    error = "unexpected text after ']'";
    return false;
  }
  if (error = nested_upstream_table(name); !error.empty()) return false;
  table = std::move(name);
  return true;
}

// "key = value" at line[i], in the table `table`: `e`'s key (normalised), value and table.
bool key_value(std::string_view line, std::size_t i, const std::vector<std::string>& table,
               ConfigEntry& e, std::string& error) {
  std::vector<std::string> key;
  if (!dotted_name(line, i, key, error)) return false;
  if (i == line.size() || line[i] != '=') {
    error = "expected '=' after the key " + joined(key);
    return false;
  }
  // A dotted key (upstream.gmail.host = ...) belongs to the table its prefix names.
  std::vector<std::string> section = table;
  section.insert(section.end(), key.begin(), key.end() - 1);
  if (error = nested_upstream_table(section); !error.empty()) return false;
  ++i;
  if (!value(line, i, e.value, error)) {
    wipe(e.value);
    return false;
  }
  e.section = joined(section);
  e.key = normalised_key(std::move(key.back()));
  // TOML allows a C1 control typed raw in a string, where an editor shows nothing: refused as
  // its escape and a MAILTAP_ variable are, for the same reason (the C0 ones never get here,
  // raw_text_problem refuses them in any text).
  if (const std::string why = unmeant_value_problem(e.value); !why.empty()) {
    wipe(e.value);
    error = "the value of " + e.key +
            (e.section.empty() ? std::string() : " in " + written_table(e.section)) + " holds " +
            why;
    return false;
  }
  return true;
}

// What TOML forbids in the text of a line itself, or "": bytes that are not UTF-8 (a Latin-1
// "caf\xe9" would reach --print-config and the record as it is), and control characters
// other than tab (TOML wants them escaped; a raw one is invisible in an editor).
std::string raw_text_problem(std::string_view line) {
  if (!is_valid_utf8(line)) return "not valid UTF-8 (the file must be UTF-8, as TOML requires)";
  for (const char c : line) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\t' || (byte >= 0x20 && byte != 0x7F)) continue;
    char code[8];
    std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(byte));
    return std::string("a control character (") + code +
           ") in the text, which TOML does not allow there (write \\t or \\n in a \"string\" "
           "if one is meant)";
  }
  return {};
}

// `name` among the tables named so far, at `line` if it is new ("", the keys before any
// table, is no table).
void note_table(std::vector<ConfigTable>& tables, std::string name, int line) {
  const bool known = name.empty() || std::any_of(tables.begin(), tables.end(),
                                                 [&](const auto& t) { return t.name == name; });
  if (!known) tables.push_back({std::move(name), line});
}

}  // namespace

std::optional<ConfigText> parse_config_text(std::string_view text, std::string& error) {
  ConfigText out;
  // One entry per line at most: the vector never grows, so no entry is copied along.
  out.entries.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  std::set<std::pair<std::string, std::string>> seen;
  std::vector<std::string> table;
  int number = 0;
  // A UTF-8 byte order mark (Notepad's "UTF-8 with BOM") is no part of the first line.
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  std::size_t pos = text.substr(0, bom.size()) == bom ? bom.size() : 0;
  auto fail = [&](const std::string& what) {
    error = "line " + std::to_string(number) + ": " + what;
    for (ConfigEntry& e : out.entries) wipe(e.value);
    return std::nullopt;
  };
  while (pos < text.size()) {
    ++number;
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (std::string what = raw_text_problem(line); !what.empty()) return fail(what);
    std::size_t i = 0;
    skip_blanks(line, i);
    if (rest_is_comment(line, i)) continue;
    std::string what;
    if (line[i] == '[') {
      if (!table_header(line, i, table, what)) return fail(what);
      note_table(out.tables, joined(table), number);
      continue;
    }
    ConfigEntry e;
    e.line = number;
    if (!key_value(line, i, table, e, what)) return fail(what);
    if (!seen.emplace(e.section, e.key).second) {
      wipe(e.value);
      return fail("the key " + e.key + " is given twice" +
                  (e.section.empty() ? std::string() : " in " + written_table(e.section)));
    }
    note_table(out.tables, e.section, number);
    out.entries.push_back(std::move(e));
  }
  return out;
}

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

std::string written_table(std::string_view section) {
  const auto key = [](std::string_view part) {
    return !part.empty() && std::all_of(part.begin(), part.end(), bare_key_char)
               ? std::string(part)
               : toml_quoted(part);
  };
  if (const std::string_view name = upstream_table_name(section); !name.empty())
    return "[upstream." + key(name) + "]";
  std::string out;
  for (std::size_t start = 0;;) {
    const std::size_t dot = section.find('.', start);
    out += (out.empty() ? "" : ".") + key(section.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return "[" + out + "]";
}

std::string unmeant_value_problem(std::string_view value, std::string_view meant) {
  if (!is_valid_utf8(value))
    return "not valid UTF-8 (a value must be UTF-8, as in the config file, which TOML requires "
           "to be)";
  // By character, not by byte: the UTF-8 of U+0105 (ą) is C4 85, and U+0085 is a C1 control.
  // Those of three or four octets are U+0800 and up: no control among them.
  while (!value.empty()) {
    const std::size_t n = utf8_char_length(value);  // 1 to 4: the value is well-formed
    std::uint32_t cp = static_cast<unsigned char>(value[0]);
    if (n == 2) cp = ((cp & 0x1Fu) << 6) | (static_cast<unsigned char>(value[1]) & 0x3Fu);
    if (n <= 2)
      if (std::string why = unmeant_control(cp, meant); !why.empty()) return why;
    value.remove_prefix(n);
  }
  return {};
}

ConfigEntry::ConfigEntry(ConfigEntry&& other) noexcept
    : section(std::move(other.section)),
      key(std::move(other.key)),
      value(std::move(other.value)),
      line(other.line) {
  wipe(other.value);
}

ConfigEntry& ConfigEntry::operator=(ConfigEntry&& other) noexcept {
  if (this != &other) {
    section = std::move(other.section);
    key = std::move(other.key);
    wipe(value);
    value = std::move(other.value);
    line = other.line;
    wipe(other.value);
  }
  return *this;
}

ConfigEntry::~ConfigEntry() {
  wipe(value);
}

}  // namespace mailtap::cli
