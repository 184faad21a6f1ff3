#include "proxy/smtp/client_framer.hpp"

#include <algorithm>
#include <utility>

#include "proxy/smtp/command.hpp"
#include "proxy/smtp/plain_lines.hpp"

namespace mailtap::smtp {

namespace {
constexpr std::size_t command_slice = 4096;
constexpr std::size_t body_slice = std::size_t{64} * 1024;
constexpr std::size_t compact_after = std::size_t{64} * 1024;

// The commands a person types first (or Enter alone: `empty`), none of which carries a
// program's untrusted text (an address): a bare CR (or CR NUL) that ends one of them as the
// client's first line is how that client ends its lines. A first MAIL or RCPT line with a bare
// CR in it is text, not that.
bool opens_a_session(bool empty, Verb v) {
  if (empty) return true;
  switch (v) {
    case Verb::ehlo:
    case Verb::helo:
    case Verb::noop:
    case Verb::rset:
    case Verb::help:
    case Verb::quit:
    case Verb::starttls:
    case Verb::auth:
      return true;
    default:
      return false;
  }
}
}  // namespace

void ClientFramer::feed(std::string_view bytes) {
  keep_unread();
  backlog_.append(bytes);
  input_ = backlog_;
}

void ClientFramer::lend(std::string_view bytes) {
  if (unread() > 0) {
    feed(bytes);
    return;
  }
  // Most reads are used up before the next one arrives: read them in place.
  backlog_.clear();
  input_ = bytes;
  pos_ = 0;
  borrowed_ = true;
}

void ClientFramer::keep_unread() {
  if (borrowed_) {
    backlog_.assign(avail());
    pos_ = 0;
    borrowed_ = false;
  }
  input_ = backlog_;
}

void ClientFramer::compact() {
  keep_unread();
  if (pos_ > 0 && (pos_ == backlog_.size() || pos_ > compact_after)) {
    backlog_.erase(0, pos_);
    pos_ = 0;
  }
  input_ = backlog_;
}

Verb ClientFramer::line_verb() const {
  // An over-long line keeps only its tail: its verb was read from its start.
  return discarded_ > 0 ? verb_of(discarded_verb_) : parse_command(line_).id;
}

void ClientFramer::advance(std::size_t n) {
  pos_ += n;
  if (distrusted_octets_ > 0 && n > 0) {
    line_distrusted_ = true;
    distrusted_octets_ -= std::min(n, distrusted_octets_);
  }
}

bool ClientFramer::settle_line_end() {
  if (!normaliser_.ended_cr_pending()) return true;
  // The client's first line, ended at its CR before its ending was known: the next octets say
  // what it was, as they would have had they come with it. A bare-CR client's: an LF is the
  // rest of a CRLF, and anything else (a NUL, a CR) begins the next line.
  const bool first = own_end_ == LineEnd::none;
  advance(normaliser_.settle_ended_cr(
      avail(), TextRules{.telnet_iac = false, .cr_nul = first, .cr_crlf = first}));
  if (normaliser_.ended_cr_pending()) return false;
  settled_rewrites_ += normaliser_.take_rewrites();
  if (first) {
    const LineEnd end = normaliser_.last_line_end();
    own_end_ = end == LineEnd::cr_crlf ? LineEnd::crlf : end;
  }
  return true;
}

std::optional<FramedLine> ClientFramer::next_line(bool commands) {
  for (;;) {
    if (!settle_line_end()) return std::nullopt;
    const std::string_view avail = this->avail();
    if (avail.empty()) return std::nullopt;
    // CRs before a CRLF join it (a CRLF through a text-mode stream: "EHLO x\r\r\n" is one
    // line, as Postfix reads it), except for a client whose lines end in a bare CR; for that
    // client a NUL after its CR is the next line's (as in its bodies), not telnet's CR NUL.
    TextRules rules = command_text;
    rules.cr_crlf = own_end_ != LineEnd::cr;
    rules.cr_nul = own_end_ != LineEnd::cr;
    rules.stop_at_cr = own_end_ == LineEnd::cr || own_end_ == LineEnd::none;
    const std::size_t n = normaliser_.normalise(avail.substr(0, command_slice), line_, rules);
    advance(n);
    // The normaliser writes CRLF only as a line ending and stops right after it.
    const bool ended = line_.size() >= 2 && line_.ends_with("\r\n");
    if (ended && line_ends_here(commands)) return take_line();
    if (!ended && ends_at_held_cr(commands)) {
      normaliser_.end_at_held_cr(line_, /*count=*/true);
      return take_line();
    }
    discard_if_over_long();
    // A held CR ended the line without consuming the byte after it: read on from that byte.
    if (n == 0 && !ended) return std::nullopt;
  }
}

// A CR read: for a client whose own line ending the bare CR is (or may be: its first line, one
// a person types first), the line ends there whatever comes next, and is acted on before the
// next octet is read, however the octets came (a person at a raw-mode terminal waits for the
// reply before typing on). Not a BDAT line, whose chunk may begin with the LF, nor STARTTLS,
// after which the client's next octets are TLS: there the CR waits for the next octet.
bool ClientFramer::ends_at_held_cr(bool commands) const {
  if (normaliser_.crs_held() == 0) return false;
  const Verb verb = line_verb();
  if (commands && (verb == Verb::bdat || verb == Verb::starttls)) return false;
  if (own_end_ == LineEnd::cr) return true;
  return own_end_ == LineEnd::none && line_foreign_end_ == LineEnd::none &&
         opens_a_session(discarded_ == 0 && line_.empty(), verb);
}

bool ClientFramer::line_ends_here(bool commands) {
  if (ends_own_line(normaliser_.last_line_end())) return true;
  if (line_foreign_end_ != LineEnd::none) return false;
  // Text of the line, which goes on to the client's own ending (see FramedLine). A BDAT line
  // ends here all the same: what follows is its chunk or not, and the session ends at it either
  // way, answered now rather than when some later line ending comes.
  line_foreign_end_ = normaliser_.last_line_end();
  line_foreign_octet_ = discarded_ + line_.size() - 1;  // the CRLF written for it: its CR
  return commands && line_verb() == Verb::bdat;
}

void ClientFramer::discard_if_over_long() {
  if (line_.size() <= max_kept_line_) return;
  // Keep framing, but do not keep the bytes: the line is refused whatever it says. Its verb is
  // remembered from its start (the tail could be anything, a secret included).
  if (discarded_ == 0) discarded_verb_ = parse_command(line_).verb;
  if (line_.find('\0') != std::string::npos) line_has_nul_ = true;
  discarded_ += line_.size();
  line_.clear();
}

FramedLine ClientFramer::take_line() {
  FramedLine out;
  out.text = std::exchange(line_, {});
  out.end = normaliser_.last_line_end();
  out.foreign_end = std::exchange(line_foreign_end_, LineEnd::none);
  out.discarded = std::exchange(discarded_, 0);
  out.discarded_verb = std::exchange(discarded_verb_, {});
  out.has_nul = std::exchange(line_has_nul_, false);
  out.distrusted = std::exchange(line_distrusted_, false);
  out.telnet_fault = normaliser_.take_telnet_fault();
  out.telnet_interrupt = normaliser_.take_telnet_interrupt();
  return out;
}

bool ClientFramer::ends_own_line(LineEnd end) {
  // Every server ends a command line at LF (Postfix, Sendmail and Exim alike), and so does
  // mailtap, whoever the client: nc's bare LFs, or a CRLF client's text with an LF in it, which
  // the server would split there too.
  if (end == LineEnd::crlf || end == LineEnd::lf || end == LineEnd::cr_crlf) {
    if (own_end_ == LineEnd::none) own_end_ = end == LineEnd::lf ? end : LineEnd::crlf;
    return true;
  }
  // A bare CR (or telnet's CR NUL), which a strict server keeps inside the line.
  // An over-long line is judged by its verb alone: its kept tail may be anything, "" included.
  if (own_end_ == LineEnd::none && line_foreign_end_ == LineEnd::none &&
      opens_a_session(discarded_ == 0 && line_ == "\r\n", line_verb()))
    own_end_ = end;
  return end == own_end_;
}

ClientFramer::ForeignEnd ClientFramer::foreign_end_in_partial_line() const {
  if (line_foreign_end_ != LineEnd::none) return {line_foreign_end_, line_foreign_octet_};
  if (normaliser_.crs_held() > 0 && own_end_ != LineEnd::cr)
    return {LineEnd::cr, discarded_ + line_.size() + 1};
  return {};
}

void ClientFramer::drop_partial_line() {
  line_.clear();
  discarded_ = 0;
  line_foreign_end_ = LineEnd::none;
  normaliser_.take_telnet_fault();
  normaliser_.take_telnet_interrupt();
}

void ClientFramer::distrust_unread() {
  distrusted_octets_ = unread();
  if (!line_.empty() || discarded_ > 0) line_distrusted_ = true;
}

std::string_view ClientFramer::take_plain_lines(bool long_lines_ok) {
  if (!normaliser_.idle()) return {};
  const std::string_view avail = this->avail();
  const std::size_t run = plain_lines_length(avail, long_lines_ok);
  pos_ += run;
  return avail.substr(0, run);
}

std::size_t ClientFramer::normalise_body(std::string& segment, LineEnd own_end) {
  const std::size_t before = pos_;
  if (!settle_line_end()) return pos_ - before;
  const std::string_view avail = this->avail();
  // A body is data: 0xFF is an ordinary byte there (8-bit text), not telnet.
  const TextRules rules{
      .telnet_iac = false, .cr_nul = own_end == LineEnd::cr_nul, .cr_crlf = own_end != LineEnd::cr};
  const std::size_t n = normaliser_.normalise(avail.substr(0, body_slice), segment, rules);
  pos_ += n;
  return pos_ - before;
}

std::string_view ClientFramer::take_chunk(std::uint64_t most) {
  const std::string_view avail = this->avail();
  const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(most, avail.size()));
  pos_ += take;
  return avail.substr(0, take);
}

}  // namespace mailtap::smtp
