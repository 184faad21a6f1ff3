#include "proxy/smtp/text_normaliser.hpp"

namespace mailtap::smtp {

namespace {
constexpr unsigned char iac = 255;
constexpr unsigned char sb = 250;
constexpr unsigned char se = 240;
constexpr unsigned char brk = 243;  // BRK, IP: what telnet sends for Ctrl-\ and Ctrl-C
constexpr unsigned char ip = 244;
constexpr unsigned char will = 251;  // WILL, WONT, DO, DONT (251..254) carry one option byte
constexpr unsigned char wont = 252;
constexpr unsigned char do_ = 253;
constexpr unsigned char dont = 254;
constexpr unsigned char echo = 1;          // the ECHO option (RFC 857)
constexpr std::size_t named_removals = 8;  // removed sequences named in a note; more are counted

// Telnet's command bytes 240..255 (RFC 854), for the rewrite note.
std::string_view telnet_command_name(unsigned char c) {
  static constexpr std::string_view names[] = {"SE",   "NOP", "DM",   "BRK", "IP", "AO",
                                               "AYT",  "EC",  "EL",   "GA",  "SB", "WILL",
                                               "WONT", "DO",  "DONT", "IAC"};
  return c >= se ? names[c - se] : std::string_view{"?"};
}

// Why a line is refused: a telnet sequence that cannot be removed without guessing where it
// ends (mailtap agrees to no telnet option, so a real telnet client never subnegotiates one).
constexpr std::string_view subnegotiation_fault =
    "a telnet subnegotiation (IAC SB, octets 0xFF 0xFA), but mailtap agrees to no telnet option";
constexpr std::string_view stray_se_fault =
    "a telnet IAC SE (octets 0xFF 0xF0) outside any subnegotiation";
constexpr std::string_view cut_option_fault =
    "a telnet option negotiation (IAC WILL/WONT/DO/DONT) cut short by the line ending";
}  // namespace

std::string_view to_string(LineEnd e) {
  switch (e) {
    case LineEnd::crlf:
      return "CRLF";
    case LineEnd::lf:
      return "bare LF";
    case LineEnd::cr:
      return "bare CR";
    case LineEnd::cr_nul:
      return "CR NUL";
    case LineEnd::cr_crlf:
      return "CR CRLF";
    case LineEnd::none:
      break;
  }
  return "none";
}

std::string_view escaped(LineEnd e) {
  switch (e) {
    case LineEnd::crlf:
      return "\\r\\n";
    case LineEnd::lf:
      return "\\n";
    case LineEnd::cr:
      return "\\r";
    case LineEnd::cr_nul:
      return "\\r\\0";
    case LineEnd::cr_crlf:
      return "\\r\\r\\n";
    case LineEnd::none:
      break;
  }
  return "";
}

RewriteCounts& RewriteCounts::operator+=(const RewriteCounts& o) {
  bare_lf += o.bare_lf;
  bare_cr += o.bare_cr;
  cr_before_crlf += o.cr_before_crlf;
  telnet_iac += o.telnet_iac;
  dots_doubled += o.dots_doubled;
  if (!o.telnet_removed.empty())
    telnet_removed += (telnet_removed.empty() ? "" : ", ") + o.telnet_removed;
  return *this;
}

namespace {
constexpr std::string_view kBareLfRewrite = "bare LF normalised to CRLF";
constexpr std::string_view kBareCrRewrite = "bare CR normalised to CRLF";
constexpr std::string_view kCrBeforeCrlfRewrite = "CR before CRLF removed";
constexpr std::string_view kTelnetRewrite = "telnet IAC sequence removed";
constexpr std::string_view kDotRewrite =
    "leading dot doubled after a line ending that cannot end the message";
}  // namespace

std::string RewriteCounts::describe(bool name_telnet) const {
  std::string s;
  auto add = [&](std::uint64_t n, std::string_view what, std::string_view which = {}) {
    if (n == 0) return;
    if (!s.empty()) s += "; ";
    s += what;
    s += " (" + std::to_string(n) + "x";
    if (!which.empty()) s += ": " + std::string(which);
    s += ")";
  };
  add(bare_lf, kBareLfRewrite);
  add(bare_cr, kBareCrRewrite);
  add(cr_before_crlf, kCrBeforeCrlfRewrite);
  add(telnet_iac, kTelnetRewrite, name_telnet ? std::string_view(telnet_removed) : "");
  add(dots_doubled, kDotRewrite);
  return s;
}

// describe() puts at least one of its phrases first, followed by its count.
bool is_client_text_rewrite_note(std::string_view note) {
  for (const std::string_view phrase :
       {kBareLfRewrite, kBareCrRewrite, kCrBeforeCrlfRewrite, kTelnetRewrite, kDotRewrite})
    if (note.starts_with(phrase) && note.substr(phrase.size()).starts_with(" (")) return true;
  return false;
}

RewriteCounts TextNormaliser::take_rewrites() {
  RewriteCounts r = rewrites_;
  rewrites_ = {};
  return r;
}

// Counts a removed sequence and names the first few (then "...").
void TextNormaliser::note_removed(std::string_view name, int option) {
  const std::uint64_t before = rewrites_.telnet_iac++;
  if (before > named_removals) return;
  std::string& names = rewrites_.telnet_removed;
  if (before > 0) names += ", ";
  if (before == named_removals) {
    names += "...";
    return;
  }
  names += "IAC " + std::string(name);
  if (option >= 0) names += " " + std::to_string(option);
}

// A telnet client that asks mailtap to enable an option (DO) or to let it enable one (WILL) is
// told no (RFC 854: a party that does not support an option refuses it), so that it does not
// wait for an answer that never comes. A refusal (WONT, DONT) is not answered: mailtap is in
// that state already, and answering it would start a loop.
void TextNormaliser::refuse_option(unsigned char option) {
  constexpr std::size_t most_answers = 3 * 256;  // each option once or so: a flood is not echoed
  // The answer to mailtap's own IAC WILL ECHO (offer_echo): DO agrees, DONT refuses; neither
  // is a request of the client's.
  if (option == echo && (option_verb_ == do_ || option_verb_ == dont) && echo_offers_ > 0) {
    --echo_offers_;
    return;
  }
  if ((option_verb_ != will && option_verb_ != do_) || telnet_answers_.size() >= most_answers)
    return;
  telnet_answers_.push_back(static_cast<char>(iac));
  telnet_answers_.push_back(static_cast<char>(option_verb_ == do_ ? wont : dont));
  telnet_answers_.push_back(static_cast<char>(option));
}

// `c` (240..255) follows an IAC inside a command line.
void TextNormaliser::telnet_command(unsigned char c, std::string& out) {
  state_ = State::text;
  if (c == iac) {  // escaped 0xFF is data
    note_removed("IAC");
    out.push_back(static_cast<char>(iac));
  } else if (c == sb || c == se) {
    // Nothing is removed: the line is refused whole (so no octet is lost unseen). The first
    // fault of the line is the one reported.
    if (telnet_fault_.empty()) telnet_fault_ = c == sb ? subnegotiation_fault : stray_se_fault;
  } else if (c >= will) {
    option_verb_ = c;
    state_ = State::iac_option;
  } else {
    note_removed(telnet_command_name(c));  // a two-byte command (NOP, IP, AYT, ...)
    // The person pressed Ctrl-C (or Ctrl-\): the line's reader decides what that means. AO
    // (flush output) and SUSP, ABORT, EOF (RFC 1184 line mode, which mailtap never agrees to;
    // their octets 236..238 are below 240, so data here) are not read as an interrupt.
    if (c == ip || c == brk) interrupted_ = true;
  }
}

// One step of the telnet state machine over `c` (at raw[i]). True: the byte belongs to an IAC
// sequence (consumed, or to be read again as its command byte); false: it is text.
bool TextNormaliser::telnet_step(unsigned char c, std::string& out, std::size_t& i) {
  switch (state_) {
    case State::iac:
      ++i;
      telnet_command(c, out);
      return true;
    case State::iac_option:
      state_ = State::text;
      if (c == '\r' || c == '\n') {
        // A telnet sequence never takes a line ending: the line ends here, and is refused.
        if (telnet_fault_.empty()) telnet_fault_ = cut_option_fault;
        return false;
      }
      ++i;
      negotiated_ = true;
      note_removed(telnet_command_name(option_verb_), c);
      refuse_option(c);
      return true;
    case State::iac_undecided:
      if (c >= se) {  // a telnet command byte: the 0xFF began an IAC sequence
        state_ = State::iac;
        return true;  // read c again as the command byte
      }
      state_ = State::text;
      out.push_back(static_cast<char>(iac));  // 8-bit text that merely contains 0xFF
      return false;
    case State::text:
      return false;
  }
  return false;
}

// The byte after the held CRs ends a line either way: CRLF (the CRs before it removed where
// TextRules::cr_crlf joins them), or a bare CR. Returns how many bytes of `c` that consumed (0:
// `c` is read again: it begins the next line, or follows another held CR).
std::size_t TextNormaliser::end_held_cr(unsigned char c, std::string& out, TextRules rules) {
  out += "\r\n";
  if (c == '\n' && (held_crs_ == 1 || rules.cr_crlf)) {
    rewrites_.cr_before_crlf += held_crs_ - 1;
    last_end_ = held_crs_ == 1 ? LineEnd::crlf : LineEnd::cr_crlf;
    held_crs_ = 0;
    return 1;
  }
  --held_crs_;
  ++rewrites_.bare_cr;
  // A telnet NVT sends a bare CR as "CR NUL"; anyone else's NUL there is data.
  if (held_crs_ == 0 && rules.cr_nul && c == '\0') {
    last_end_ = LineEnd::cr_nul;
    return 1;
  }
  last_end_ = LineEnd::cr;
  return 0;
}

void TextNormaliser::end_at_held_cr(std::string& out, bool count) {
  crs_after_ended_ = held_crs_ - 1;
  held_crs_ = 0;
  out += "\r\n";
  // Not counted: whether it was a bare CR shows only later, maybe after the count is taken.
  last_end_ = LineEnd::cr;
  ended_cr_ = count ? EndedCr::counted_if_bare : EndedCr::uncounted;
}

std::size_t TextNormaliser::settle_ended_cr(std::string_view raw, TextRules rules) {
  if (ended_cr_ == EndedCr::no) return 0;
  std::size_t i = 0;
  while (rules.cr_crlf && i < raw.size() && raw[i] == '\r') {
    ++crs_after_ended_;
    ++i;
  }
  if (i == raw.size()) return i;
  const bool count = ended_cr_ == EndedCr::counted_if_bare;
  ended_cr_ = EndedCr::no;
  const std::uint64_t joined = std::exchange(crs_after_ended_, 0);
  if (raw[i] == '\n') {
    rewrites_.cr_before_crlf += count ? joined : 0;
    last_end_ = joined == 0 ? LineEnd::crlf : LineEnd::cr_crlf;
    return i + 1;
  }
  if (count) ++rewrites_.bare_cr;
  if (joined == 0 && rules.cr_nul && raw[i] == '\0') {
    last_end_ = LineEnd::cr_nul;
    return i + 1;
  }
  last_end_ = LineEnd::cr;
  held_crs_ = joined;  // each ends an empty line when the next byte is read
  return i;
}

void TextNormaliser::uncount_bare_cr() {
  // Only a line ending end_held_cr() counted: end_at_held_cr() counts none.
  if (last_end_ == LineEnd::cr && ended_cr_ == EndedCr::no && rewrites_.bare_cr > 0)
    --rewrites_.bare_cr;
}

namespace {
// The end of the run of ordinary bytes from raw[i]: where a CR, an LF or (in telnet text) an
// IAC comes.
std::size_t ordinary_run_end(std::string_view raw, std::size_t i, bool telnet) {
  while (i < raw.size()) {
    const auto d = static_cast<unsigned char>(raw[i]);
    if (d == '\r' || d == '\n' || (d == iac && telnet)) break;
    ++i;
  }
  return i;
}
}  // namespace

std::size_t TextNormaliser::normalise(std::string_view raw, std::string& out, TextRules rules) {
  const bool telnet = rules.telnet_iac;
  // A line end_at_held_cr() ended: an LF next is the rest of its ending (the caller settles
  // it first where more than that is to be known, see settle_ended_cr).
  std::size_t i = settle_ended_cr(raw, TextRules{.telnet_iac = false, .cr_nul = false});
  if (ended_cr_ != EndedCr::no) return i;
  while (i < raw.size()) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (telnet_step(c, out, i)) continue;
    // A CR is held until the next byte shows what it ends; where CRs before a CRLF join it,
    // so is a run of them.
    if (c == '\r' && (held_crs_ == 0 || rules.cr_crlf)) {
      ++held_crs_;
      ++i;
      if (rules.stop_at_cr) return i;
      continue;
    }
    if (held_crs_ > 0) return i + end_held_cr(c, out, rules);
    if (c == iac && telnet) {
      // Only a telnet command byte (240..255) after 0xFF makes an IAC sequence, so 8-bit text
      // that merely contains 0xFF passes unchanged. The 0xFF is consumed now and the decision
      // made on the next byte, which may come in a later read: leaving it unconsumed would stall
      // a caller whose input ends there (a client EOF right after a 0xFF).
      state_ = State::iac_undecided;
      ++i;
      continue;
    }
    if (c == '\n') {
      last_end_ = LineEnd::lf;
      ++rewrites_.bare_lf;
      out += "\r\n";
      return i + 1;
    }
    const std::size_t j = ordinary_run_end(raw, i + 1, telnet);
    out.append(raw.data() + i, j - i);
    i = j;
  }
  return i;
}

}  // namespace mailtap::smtp
