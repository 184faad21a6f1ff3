#include "proxy/smtp/command.hpp"

#include <cctype>
#include <limits>

namespace mailtap::smtp {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

Command parse_command(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  Command cmd;
  std::size_t end = line.find(' ');
  std::string_view verb = line.substr(0, end);
  cmd.verb.reserve(verb.size());
  for (char c : verb) cmd.verb.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (end != std::string_view::npos) cmd.args = line.substr(end + 1);
  return cmd;
}

std::optional<BdatArgs> parse_bdat_args(std::string_view args) {
  // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF ; chunk-size = 1*DIGIT
  std::size_t sp = args.find(' ');
  std::string_view size = args.substr(0, sp);
  if (size.empty() || size.size() > 18) return std::nullopt;
  BdatArgs out;
  for (char c : size) {
    if (c < '0' || c > '9') return std::nullopt;
    out.size = out.size * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (sp != std::string_view::npos) {
    if (!iequals(args.substr(sp + 1), "LAST")) return std::nullopt;
    out.last = true;
  }
  return out;
}

}  // namespace mailtap::smtp
