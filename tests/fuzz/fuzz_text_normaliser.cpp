// Feeds arbitrary bytes to TextNormaliser in reads of arbitrary sizes, the way the dialogue
// does (unconsumed bytes stay buffered for the next read). Checks that the canonical text has
// no bare CR or LF, that a CRLF only ever ends a call's output, that every line ending the
// client sent ends a line (a telnet sequence never takes one: SMTP smuggling), and that the
// result, the lines refused for telnet included, does not depend on the read boundaries.
//
// Byte 0 also picks the rules (its top two bits): command text; a message body where CRs before
// a CRLF join it (a CRLF or bare-LF client's, or with bit 5 a telnet NVT's); or a bare-CR
// client's body, whose line is ended at a held CR as soon as a read ends there (an LF after it
// skipped), which must change nothing but when the line ends. In command text, bit 5 makes
// mailtap offer IAC WILL ECHO first (as at --assist-auth's password prompt to a telnet client):
// the telnet answers owed to the client must not depend on the read boundaries either.
//
// Input: byte 0 seeds the read sizes and picks the rules; the rest is the client's byte stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/smtp/text_normaliser.hpp"

namespace {

using mailtap::smtp::TextNormaliser;
using mailtap::smtp::TextRules;

struct Mode {
  TextRules rules = mailtap::smtp::command_text;
  bool end_at_held_cr = false;  // a bare-CR client's body
};

Mode mode_of(std::uint8_t seed) {
  switch (seed >> 6) {
    case 2:
      return {TextRules{.telnet_iac = false, .cr_nul = (seed & 0x20) != 0, .cr_crlf = true}};
    case 3:
      return {TextRules{.telnet_iac = false, .cr_nul = false, .cr_crlf = false}, true};
    default:
      return {};
  }
}

struct Output {
  std::string text;
  std::uint64_t rewrites = 0;
  std::string faults;   // per line ended: 'F' refused for telnet, '.' not
  std::string answers;  // telnet refusals owed to the client
  bool negotiated = false;
};

// Read sizes from a tiny LCG: 1..16 octets, reproducible from the seed.
Output normalise(std::string_view input, std::uint8_t seed, bool split) {
  const Mode mode = mode_of(seed);
  TextNormaliser n;
  if (seed >> 6 < 2 && (seed & 0x20) != 0) n.offer_echo();
  Output out;
  std::string backlog;
  std::uint32_t state = seed;
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t take = input.size() - pos;
    if (split) {
      state = state * 1103515245u + 12345u;
      take = std::min<std::size_t>(take, 1 + ((state >> 16) & 15));
    }
    backlog.append(input.substr(pos, take));
    pos += take;
    std::size_t used_total = 0;
    while (used_total < backlog.size()) {
      const std::size_t before = out.text.size();
      const std::size_t used =
          n.normalise(std::string_view(backlog).substr(used_total), out.text, mode.rules);
      if (used > backlog.size() - used_total) std::abort();
      used_total += used;
      // The normaliser stops right after a CRLF: none may appear earlier in this call's output.
      const std::size_t crlf = out.text.find("\r\n", before == 0 ? 0 : before - 1);
      if (crlf != std::string::npos && crlf + 2 != out.text.size()) std::abort();
      if (crlf != std::string::npos) out.faults += n.take_telnet_fault().empty() ? '.' : 'F';
      if (used == 0 && out.text.size() == before) break;  // wants more input
    }
    if (mode.end_at_held_cr && used_total == backlog.size() && n.cr_held()) {
      n.end_at_held_cr(out.text);
      out.faults += '.';
    }
    backlog.erase(0, used_total);
    out.answers += n.take_telnet_answers();
  }
  out.negotiated = n.telnet_negotiated();
  const auto rw = n.take_rewrites();
  // A line ended at a held CR does not count it (the dialogue does so only at a bare-CR
  // client's end of data, after which the body ends): there the bare CRs depend on the reads.
  out.rewrites = rw.bare_lf + (mode.end_at_held_cr ? 0 : rw.bare_cr) + rw.telnet_iac;
  return out;
}

// The line endings of the client's bytes as a strict reading frames them: CRLF, a bare LF, and
// a bare CR (with the NUL of a CR NUL), except a CR still waiting for its next byte (unless the
// mode ends a line there); where the rules join them, CRs right before a CRLF are part of it.
std::size_t client_line_ends(std::string_view input, const Mode& mode) {
  std::size_t ends = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    if (input[i] == '\n') ++ends;
    if (input[i] != '\r') continue;
    std::size_t run = 1;
    if (mode.rules.cr_crlf)
      while (i + run < input.size() && input[i + run] == '\r') ++run;
    if (i + run == input.size()) {  // held for the next byte
      if (mode.end_at_held_cr) ++ends;
      break;
    }
    if (input[i + run] == '\n') {
      ++ends;
      i += run;
      continue;
    }
    ends += run;
    i += run - 1;
  }
  return ends;
}

std::size_t crlf_count(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t at = text.find("\r\n"); at != std::string_view::npos;
       at = text.find("\r\n", at + 2))
    ++n;
  return n;
}

void check_canonical(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) std::abort();
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Output whole = normalise(input, data[0], false);
  const Output pieces = normalise(input, data[0], true);
  check_canonical(whole.text);
  if (whole.text != pieces.text || whole.rewrites != pieces.rewrites) std::abort();
  if (whole.faults != pieces.faults) std::abort();
  // Answers held untaken are capped (a flood is not echoed): read whole, all are held at once,
  // so below the cap the reads cannot have reached it either.
  constexpr std::size_t answer_cap = 3 * 256;
  if (whole.answers.size() < answer_cap && whole.answers != pieces.answers) std::abort();
  if (whole.negotiated != pieces.negotiated) std::abort();
  // Every answer is a whole IAC WONT x or IAC DONT x, and only a telnet client is answered.
  if (whole.answers.size() % 3 != 0 || (!whole.answers.empty() && !whole.negotiated)) std::abort();
  if (crlf_count(whole.text) != client_line_ends(input, mode_of(data[0]))) std::abort();
  // Each input byte yields at most two output bytes (a bare CR or LF becomes CRLF).
  if (whole.text.size() > 2 * input.size()) std::abort();
  return 0;
}
