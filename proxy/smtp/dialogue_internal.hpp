// Pieces of the Dialogue shared by its implementation files (dialogue.cpp, dialogue_auth.cpp);
// not part of its interface.
#pragma once

#include <openssl/sha.h>

#include <memory>
#include <string>
#include <string_view>

#include "proxy/smtp/dialogue.hpp"

namespace mailtap::smtp {

struct Dialogue::Pending {
  using Kind = Expect;
  Kind kind = Kind::command;
  std::string verb;
  std::string line;   // MAIL/RCPT/EHLO/HELO line without CRLF, or the local reply with CRLF
  bool sync = false;  // reading stopped until this reply arrives
  bool bdat_last = false;
  LineEnd line_end = LineEnd::crlf;  // how the client ended the command line (DATA's decides)
  Clock::time_point since{};
  std::shared_ptr<Transaction> transaction;  // the transaction this command belongs to
};

struct Dialogue::Transaction {
  Message message;
  SHA256_CTX sha{};
  bool settled = false;  // its MAIL was refused, or its Message recorded: no (further) Message
  std::uint64_t recorded = 0;    // body octets recorded in events so far (capped by --max-body)
  std::uint64_t unrecorded = 0;  // octets cut by the cap since the last body event was closed
};

inline std::string_view strip_crlf(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

inline std::string first_line(const Reply& r) {
  return std::to_string(r.code) + (r.lines.front().empty() ? "" : " " + r.lines.front());
}

}  // namespace mailtap::smtp
