#include "proxy/smtp/command.hpp"

#include <array>
#include <cctype>
#include <limits>
#include <utility>

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

namespace {
// The separators a server's tokenizer skips (Postfix smtpd_token uses isspace). Splitting on
// SP alone would let " AUTH PLAIN ..." or "AUTH\tPLAIN ..." reach a server as AUTH while mailtap
// saw another verb: the secret would be recorded unredacted and the 334 exchange not followed.
bool is_separator(char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

std::string_view without_line_ending(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

std::string_view skip_separators(std::string_view s) {
  while (!s.empty() && is_separator(s.front())) s.remove_prefix(1);
  return s;
}
}  // namespace

Verb verb_of(std::string_view upper_verb) {
  static constexpr std::array<std::pair<std::string_view, Verb>, 14> verbs{{
      {"EHLO", Verb::ehlo},
      {"HELO", Verb::helo},
      {"MAIL", Verb::mail},
      {"RCPT", Verb::rcpt},
      {"DATA", Verb::data},
      {"BDAT", Verb::bdat},
      {"RSET", Verb::rset},
      {"NOOP", Verb::noop},
      {"QUIT", Verb::quit},
      {"VRFY", Verb::vrfy},
      {"EXPN", Verb::expn},
      {"HELP", Verb::help},
      {"AUTH", Verb::auth},
      {"STARTTLS", Verb::starttls},
  }};
  for (const auto& [name, verb] : verbs)
    if (name == upper_verb) return verb;
  return Verb::other;
}

Word first_word(std::string_view s) {
  s = skip_separators(s);
  std::size_t end = 0;
  while (end < s.size() && !is_separator(s[end])) ++end;
  return {s.substr(0, end), skip_separators(s.substr(end))};
}

std::string_view trim_trailing_separators(std::string_view s) {
  while (!s.empty() && is_separator(s.back())) s.remove_suffix(1);
  return s;
}

Command parse_command(std::string_view line) {
  const Word verb = first_word(without_line_ending(line));
  Command cmd;
  cmd.verb.reserve(verb.word.size());
  for (char c : verb.word)
    cmd.verb.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  cmd.id = verb_of(cmd.verb);
  cmd.args = verb.rest;
  return cmd;
}

BdatArgs parse_bdat_args(std::string_view args) {
  // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CRLF ; chunk-size = 1*DIGIT. Exactly that:
  // a server that splits words otherwise (Exim: SP only) would not frame the chunk mailtap does.
  const std::size_t end = args.find(' ');
  const std::string_view size = args.substr(0, end);
  const std::string_view marker =
      end == std::string_view::npos ? std::string_view{} : args.substr(end + 1);
  BdatArgs out;
  out.problem = BdatArgs::Problem::malformed;
  if (size.empty() || size.find_first_not_of("0123456789") != std::string_view::npos) return out;
  if (end != std::string_view::npos && !iequals(marker, "LAST")) return out;
  out.last = end != std::string_view::npos;
  out.problem = BdatArgs::Problem::none;
  // Over bdat_size_max a server may frame another chunk than mailtap (Exim's 32-bit count wraps),
  // or answer 501 and read on: either way it reads the chunk as commands (SMTP smuggling).
  constexpr std::uint64_t max = bdat_size_max;
  for (char c : size) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (out.size > (max - digit) / 10) {
      out.problem = BdatArgs::Problem::size_too_large;
      out.size = 0;
      return out;
    }
    out.size = out.size * 10 + digit;
  }
  return out;
}

BdatArgs parse_bdat_line(std::string_view line) {
  line = without_line_ending(line);
  // No white space before the verb and one SP after it: parse_command's tokenizing reading
  // (Postfix's) is not every server's, and here the difference moves where data ends.
  constexpr std::string_view verb = "BDAT ";
  if (line.size() < verb.size() || !iequals(line.substr(0, verb.size()), verb)) {
    BdatArgs out;
    out.problem = BdatArgs::Problem::malformed;
    return out;
  }
  return parse_bdat_args(line.substr(verb.size()));
}

}  // namespace mailtap::smtp
