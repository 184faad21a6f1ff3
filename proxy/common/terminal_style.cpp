#include "proxy/common/terminal_style.hpp"

#include <unistd.h>

#include <cstdlib>

namespace mailtap {

std::optional<ColorChoice> parse_color_choice(std::string_view text) {
  if (text == "auto") return ColorChoice::auto_detect;
  if (text == "always") return ColorChoice::always;
  if (text == "never") return ColorChoice::never;
  return std::nullopt;
}

Style Style::for_fd(int fd, ColorChoice choice) {
  switch (choice) {
    case ColorChoice::always:
      return Style(true);
    case ColorChoice::never:
      return Style(false);
    case ColorChoice::auto_detect:
      break;
  }
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') return Style(false);
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::string_view(term) == "dumb") return Style(false);
  return Style(::isatty(fd) == 1);
}

Style Style::for_stdout(ColorChoice choice) {
  return for_fd(STDOUT_FILENO, choice);
}

std::string Style::wrap(std::string_view code, std::string_view s) const {
  if (!on_) return std::string(s);
  std::string out = "\x1b[";
  out += code;
  out += 'm';
  out += s;
  out += "\x1b[0m";
  return out;
}

}  // namespace mailtap
