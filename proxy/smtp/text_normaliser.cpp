#include "proxy/smtp/text_normaliser.hpp"

namespace mailtap::smtp {

namespace {
constexpr unsigned char iac = 255;
constexpr unsigned char sb = 250;
constexpr unsigned char se = 240;
constexpr unsigned char will = 251;  // WILL, WONT, DO, DONT (251..254) carry one option byte
}  // namespace

std::string_view to_string(LineEnd e) {
  switch (e) {
    case LineEnd::crlf:
      return "CRLF";
    case LineEnd::lf:
      return "bare LF";
    case LineEnd::cr:
      return "bare CR";
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
    case LineEnd::none:
      break;
  }
  return "";
}

RewriteCounts& RewriteCounts::operator+=(const RewriteCounts& o) {
  bare_lf += o.bare_lf;
  bare_cr += o.bare_cr;
  telnet_iac += o.telnet_iac;
  dots_doubled += o.dots_doubled;
  return *this;
}

std::string RewriteCounts::describe() const {
  std::string s;
  auto add = [&](std::uint64_t n, const char* what) {
    if (n == 0) return;
    if (!s.empty()) s += "; ";
    s += what;
    s += " (" + std::to_string(n) + "x)";
  };
  add(bare_lf, "bare LF normalised to CRLF");
  add(bare_cr, "bare CR normalised to CRLF");
  add(telnet_iac, "telnet IAC sequence removed");
  add(dots_doubled, "leading dot doubled after a line ending that cannot end the message");
  return s;
}

RewriteCounts TextNormaliser::take_rewrites() {
  RewriteCounts r = rewrites_;
  rewrites_ = {};
  return r;
}

std::size_t TextNormaliser::normalise(std::string_view raw, std::string& out, bool telnet) {
  std::size_t i = 0;
  while (i < raw.size()) {
    const auto c = static_cast<unsigned char>(raw[i]);
    switch (state_) {
      case State::iac:
        ++i;
        if (c == iac) {  // escaped 0xFF is data
          state_ = State::text;
          out.push_back(static_cast<char>(iac));
        } else if (c == sb) {
          state_ = State::subneg;
        } else if (c >= will && c <= 254) {
          state_ = State::iac_option;
        } else {
          state_ = State::text;  // a two-byte command (NOP, IP, AYT, ...)
        }
        continue;
      case State::iac_option:
        ++i;
        state_ = State::text;
        continue;
      case State::subneg:
        ++i;
        if (c == iac) state_ = State::subneg_iac;
        continue;
      case State::subneg_iac:
        ++i;
        state_ = c == se ? State::text : State::subneg;
        continue;
      case State::iac_undecided:
        if (c >= se) {  // a telnet command byte: the 0xFF began an IAC sequence
          ++rewrites_.telnet_iac;
          state_ = State::iac;
          continue;  // read c again as the command byte
        }
        state_ = State::text;
        out.push_back(static_cast<char>(iac));  // 8-bit text that merely contains 0xFF
        break;
      case State::text:
        break;
    }

    if (pending_cr_) {
      pending_cr_ = false;
      out += "\r\n";
      if (c == '\n') {
        last_end_ = LineEnd::crlf;
        ++i;
        return i;
      }
      last_end_ = LineEnd::cr;
      ++rewrites_.bare_cr;
      if (c == '\0') ++i;  // telnet NVT sends a bare CR as "CR NUL"
      return i;
    }
    if (c == iac && telnet) {
      // Only a telnet command byte (240..255) after 0xFF makes an IAC sequence, so 8-bit text
      // that merely contains 0xFF passes unchanged. The 0xFF is consumed now and the decision
      // made on the next byte, which may come in a later read: leaving it unconsumed would stall
      // a caller whose input ends there (a client EOF right after a 0xFF).
      state_ = State::iac_undecided;
      ++i;
      continue;
    }
    if (c == '\r') {
      pending_cr_ = true;
      ++i;
      continue;
    }
    if (c == '\n') {
      last_end_ = LineEnd::lf;
      ++rewrites_.bare_lf;
      out += "\r\n";
      ++i;
      return i;
    }
    // Copy the run of ordinary bytes at once.
    std::size_t j = i + 1;
    while (j < raw.size()) {
      const auto d = static_cast<unsigned char>(raw[j]);
      if (d == '\r' || d == '\n' || (d == iac && telnet)) break;
      ++j;
    }
    out.append(raw.data() + i, j - i);
    i = j;
  }
  return i;
}

}  // namespace mailtap::smtp
