#include "proxy/smtp/backspace_octet.hpp"

namespace mailtap::smtp {

std::optional<BackspaceOctet> first_backspace(std::string_view text) {
  const std::size_t at = text.find_first_of(std::string_view("\x7f\x08", 2));
  if (at == std::string_view::npos) return std::nullopt;
  return BackspaceOctet{text[at], at + 1};
}

std::string backspace_name(char octet) {
  return octet == '\x08' ? "a Backspace octet (0x08, BS)" : "a Backspace octet (0x7f, DEL)";
}

std::string_view backspace_cause() {
  return "a terminal in raw mode or telnet's mode character sends Backspace as an octet, not as "
         "an edit";
}

}  // namespace mailtap::smtp
