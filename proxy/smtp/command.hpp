// Reads the verb and arguments of one client command line, as a server would (RFC 5321 §4.1):
// leading SP/HTAB/VT/FF are skipped and any run of them separates words, like Postfix.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace mailtap::smtp {

// The commands mailtap tells apart; every other word (and an empty line) is `other`.
enum class Verb : std::uint8_t {
  other,
  ehlo,
  helo,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  auth,
  starttls
};

// `upper_verb` as parse_command gives it ("MAIL").
Verb verb_of(std::string_view upper_verb);

struct Command {
  std::string verb;       // upper-cased first word ("MAIL"), empty for an empty line
  Verb id = Verb::other;  // `verb`, read once
  std::string_view args;  // the rest after the separators, line ending removed (views the line)
};

// `line` includes its CRLF.
Command parse_command(std::string_view line);

// The tokenizer parse_command reads with, for every other reader of a command line that must
// split it as the dialogue (and the server) does: the AUTH redactor, `decode`, `replay`.
struct Word {
  std::string_view word;  // empty when nothing but separators is left
  std::string_view rest;  // what follows the word, its separators skipped
};
// The first word of `s`, leading separators skipped.
Word first_word(std::string_view s);
// `s` without the separators at its end: what a tokenizing server makes of an argument typed
// with a trailing space.
std::string_view trim_trailing_separators(std::string_view s);

// The largest BDAT size mailtap forwards, 2^31-1: every server reads it as this number. Exim
// keeps it in a 32-bit unsigned int (sscanf "%u": 2^32 + 22 is 22 there), and a server keeping
// it in a signed 32-bit int reads 2^31 as negative; counting in 64 bits is not what servers do.
inline constexpr std::uint64_t bdat_size_max = std::numeric_limits<std::int32_t>::max();

struct BdatArgs {
  enum class Problem : std::uint8_t {
    none,
    malformed,       // not what RFC 3030 allows
    size_too_large,  // digits, but more than bdat_size_max: not a size every server counts
  };
  Problem problem = Problem::none;
  std::uint64_t size = 0;
  bool last = false;
  explicit operator bool() const { return problem == Problem::none; }
};
// What follows "BDAT ": "1000 LAST". The size may have any number of digits (RFC 3030:
// 1*DIGIT), leading zeros included, as a server reads it; one SP before LAST, nothing else.
BdatArgs parse_bdat_args(std::string_view args);
// A whole BDAT line (its line ending included or not), in RFC 3030's strict form only:
// "BDAT" SP size [SP "LAST"], case-insensitive, no other white space anywhere. Servers split
// other spellings differently (Postfix tokenizes them, Exim answers 500), and BDAT's line
// decides where the data ends before any reply says how the server read it.
BdatArgs parse_bdat_line(std::string_view line);

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace mailtap::smtp
