#include "tools/web/mime_parameters.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"
#include "tools/web/charset.hpp"

namespace mailtap::tools::web {

namespace {

bool equals_ignoring_case(std::string_view s, std::string_view lower_case) {
  return s.size() == lower_case.size() &&
         std::equal(s.begin(), s.end(), lower_case.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

// Where the parameter starting at `from` ends: at the next ';' outside a quoted-string. Inside
// one, a backslash makes the octet after it text: `\"` does not end the string.
std::size_t parameter_end(std::string_view field, std::size_t from) {
  bool quoted = false;
  for (std::size_t i = from; i < field.size(); ++i) {
    const char c = field[i];
    if (quoted && c == '\\') {
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ';' && !quoted) {
      return i;
    }
  }
  return field.size();
}

// Calls visit(attribute, value as written) for each "attribute=value" after the field's first
// ';' (the field's own value, "text/plain", comes before it). Items without '=' are skipped.
template <typename Visit>
void for_each_parameter(std::string_view field, Visit&& visit) {
  std::size_t pos = field.find(';');
  while (pos < field.size()) {
    const std::size_t end = parameter_end(field, pos + 1);
    const std::string_view item = field.substr(pos + 1, end - pos - 1);
    if (const auto eq = item.find('='); eq != std::string_view::npos)
      visit(trim_blanks(item.substr(0, eq)), trim_blanks(item.substr(eq + 1)));
    pos = end;
  }
}

// A value as written without its quotes, each quoted-pair the octet it stands for. Lenient as
// mail programs are: a token and quoted-strings side by side are joined, an unclosed string
// runs to the end.
std::string unquoted(std::string_view value) {
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == '"') {
      quoted = !quoted;
    } else if (quoted && c == '\\' && i + 1 < value.size()) {
      out += value[++i];
    } else {
      out += c;
    }
  }
  return out;
}

// Which form of the parameter `name` an attribute is: `name`, `name*`, or a section `name*K`
// (`name*K*`: percent-encoded). K is decimal, without leading zeros (RFC 2231 section 3).
struct AttributeForm {
  enum Kind { other, plain, extended, section } kind = other;
  std::size_t number = 0;
  bool encoded = false;
};

AttributeForm attribute_form(std::string_view attribute, std::string_view name) {
  if (attribute.size() < name.size() ||
      !equals_ignoring_case(attribute.substr(0, name.size()), name))
    return {};
  std::string_view rest = attribute.substr(name.size());
  if (rest.empty()) return {AttributeForm::plain};
  if (rest.front() != '*') return {};
  rest.remove_prefix(1);
  if (rest.empty()) return {AttributeForm::extended, 0, true};
  const bool encoded = rest.back() == '*';
  if (encoded) rest.remove_suffix(1);
  constexpr std::size_t kMaxDigits = 6;
  if (rest.empty() || rest.size() > kMaxDigits || (rest.size() > 1 && rest.front() == '0') ||
      rest.find_first_not_of("0123456789") != std::string_view::npos)
    return {};
  return {AttributeForm::section, std::stoul(std::string(rest)), encoded};
}

struct Section {
  std::size_t number;
  bool encoded;
  std::string_view value;  // as written
};

// Sections 0, 1, ... up to the first one missing, in order. Linear: a section numbered past the
// count of sections cannot be reached, and the first of two with one number wins.
std::vector<const Section*> in_order(const std::vector<Section>& sections) {
  std::vector<const Section*> slots(sections.size(), nullptr);
  for (const Section& s : sections)
    if (s.number < slots.size() && slots[s.number] == nullptr) slots[s.number] = &s;
  slots.erase(std::find(slots.begin(), slots.end(), nullptr), slots.end());
  return slots;
}

// RFC 2231's value: the octets of its parts, and the charset the first part names before them
// (`charset'language'`; without both apostrophes, none).
struct ExtendedValue {
  std::string charset;
  std::string octets;
};

void append_part(std::string_view written, bool encoded, bool first, ExtendedValue& out) {
  const std::string text = unquoted(written);
  std::string_view octets = text;
  if (first && encoded) {
    const auto language = octets.find('\'');
    const auto value =
        language == std::string_view::npos ? language : octets.find('\'', language + 1);
    if (value != std::string_view::npos) {
      out.charset.assign(octets.substr(0, language));
      octets.remove_prefix(value + 1);
    }
  }
  if (encoded)
    append_hex_unescaped(octets, '%', out.octets);
  else
    out.octets.append(octets);
}

// The parameter's RFC 2231 value: `name*` when given, else its sections; nullopt when neither.
std::optional<ExtendedValue> extended_value(std::optional<std::string_view> whole,
                                            const std::vector<Section>& sections) {
  ExtendedValue out;
  if (whole) {
    append_part(*whole, true, true, out);
    return out;
  }
  const auto ordered = in_order(sections);
  if (ordered.empty()) return std::nullopt;
  for (const Section* s : ordered) append_part(s->value, s->encoded, s == ordered.front(), out);
  return out;
}

}  // namespace

std::string mime_parameter(std::string_view field_value, std::string_view name) {
  std::optional<std::string_view> found;
  for_each_parameter(field_value, [&](std::string_view attribute, std::string_view value) {
    if (!found && equals_ignoring_case(attribute, name)) found = value;
  });
  return found ? unquoted(*found) : std::string();
}

MimeParameterText mime_text_parameter(std::string_view field_value, std::string_view name) {
  std::optional<std::string_view> plain, whole;
  std::vector<Section> sections;
  for_each_parameter(field_value, [&](std::string_view attribute, std::string_view value) {
    const AttributeForm form = attribute_form(attribute, name);
    if (form.kind == AttributeForm::plain && !plain) plain = value;
    if (form.kind == AttributeForm::extended && !whole) whole = value;
    if (form.kind == AttributeForm::section) sections.push_back({form.number, form.encoded, value});
  });
  MimeParameterText fallback{plain ? unquoted(*plain) : std::string(), false};
  const auto extended = extended_value(whole, sections);
  if (!extended || extended->octets.empty()) return fallback;
  if (extended->charset.empty()) {
    if (is_valid_utf8(extended->octets)) return {extended->octets, true};
  } else if (auto text = convert_to_utf8(extended->octets, extended->charset)) {
    return {*text, true};
  }
  // Octets without a charset that are not UTF-8, or in one iconv does not know: the plain name
  // says what it can, else the octets, text only if they are UTF-8 (other octets are read as a
  // plain name's are: the page shows them decoded from windows-1252 beside the octets).
  if (!fallback.value.empty()) return fallback;
  return {extended->octets, is_valid_utf8(extended->octets)};
}

}  // namespace mailtap::tools::web
