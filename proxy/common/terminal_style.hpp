// ANSI colour for what mailtap prints for a person: `show`, `sessions`, `audit` and the proxy's
// --transcript. Decided once per run from --color (auto|always|never), NO_COLOR
// (https://no-color.org: any non-empty value disables) and whether the stream is a terminal,
// so pipes and files get plain text unless the user asked for colour by name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailtap {

enum class ColorChoice { auto_detect, always, never };

// "auto", "always", "never"; nullopt for anything else.
std::optional<ColorChoice> parse_color_choice(std::string_view text);

class Style {
 public:
  // always: colour; never: none; auto: only if `fd` is a terminal, NO_COLOR is unset or empty,
  // and TERM is not "dumb". An explicit --color always wins over NO_COLOR, as no-color.org asks.
  static Style for_fd(int fd, ColorChoice choice);
  static Style for_stdout(ColorChoice choice = ColorChoice::auto_detect);
  static Style plain() { return Style(false); }
  static Style coloured() { return Style(true); }

  bool enabled() const { return on_; }
  std::string bold(std::string_view s) const { return wrap("1", s); }
  std::string dim(std::string_view s) const { return wrap("2", s); }
  std::string red(std::string_view s) const { return wrap("31", s); }
  std::string green(std::string_view s) const { return wrap("32", s); }
  std::string yellow(std::string_view s) const { return wrap("33", s); }
  std::string cyan(std::string_view s) const { return wrap("36", s); }
  std::string magenta(std::string_view s) const { return wrap("35", s); }

 private:
  explicit Style(bool on) : on_(on) {}
  std::string wrap(std::string_view code, std::string_view s) const;
  bool on_;
};

}  // namespace mailtap
