// How a dialogue ended, and the outcome the record stores for it. One mapping for every
// owner of a Dialogue that records it (the proxy's sessions, replay).
#pragma once

#include <string>
#include <string_view>

#include "proxy/smtp/record_vocabulary.hpp"

namespace mailtap::smtp {

struct Ending {
  enum class Kind { quit, client_closed, upstream_closed, timeout, shutdown, error };
  Kind kind = Kind::error;
  std::string reason;
};

// The record's words for a client that closed while replies were still due to it: the opening
// of the note that says where it closed (or, once its last replies were written, that it did
// not take them), and the reason of the `client_closed` session whose QUIT it did not wait to
// see answered (`reply`: the first line of that reply).
inline constexpr std::string_view client_closed_with_replies_due =
    "client closed the connection while replies were still due to it: ";
inline std::string client_closed_before_quit_reply(std::string_view reply) {
  return "client closed the connection before the reply to its QUIT (" + std::string(reply) + ")";
}

// The record's name for an ending (`refused` is no ending: the dialogue never started).
constexpr Outcome outcome_of(Ending::Kind kind) {
  switch (kind) {
    case Ending::Kind::quit:
      return Outcome::quit;
    case Ending::Kind::client_closed:
      return Outcome::client_closed;
    case Ending::Kind::upstream_closed:
      return Outcome::upstream_closed;
    case Ending::Kind::timeout:
      return Outcome::timeout;
    case Ending::Kind::shutdown:
      return Outcome::shutdown;
    case Ending::Kind::error:
      return Outcome::error;
  }
  return Outcome::error;
}

}  // namespace mailtap::smtp
