#include "storage/records.hpp"

#include <array>

namespace mailtap::storage {

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::quit:
      return "quit";
    case Outcome::client_closed:
      return "client_closed";
    case Outcome::upstream_closed:
      return "upstream_closed";
    case Outcome::timeout:
      return "timeout";
    case Outcome::refused:
      return "refused";
    case Outcome::error:
      return "error";
    case Outcome::shutdown:
      return "shutdown";
  }
  return "unknown";
}

namespace {

// Inverts to_string by trying every enumerator: the lists are short and this keeps the text
// forms defined in exactly one place (the to_string functions).
template <typename Enum, std::size_t N>
bool parse_enum(std::string_view text, const std::array<Enum, N>& all, Enum& out) {
  using smtp::to_string;
  using storage::to_string;
  for (Enum e : all) {
    if (to_string(e) == text) {
      out = e;
      return true;
    }
  }
  return false;
}

}  // namespace

bool parse(std::string_view text, Outcome& out) {
  static constexpr std::array all{
      Outcome::quit,    Outcome::client_closed, Outcome::upstream_closed, Outcome::timeout,
      Outcome::refused, Outcome::error,         Outcome::shutdown};
  return parse_enum(text, all, out);
}

bool parse(std::string_view text, smtp::Direction& out) {
  using smtp::Direction;
  static constexpr std::array all{Direction::client_to_upstream,  Direction::upstream_to_client,
                                  Direction::client_to_mailtap,   Direction::mailtap_to_upstream,
                                  Direction::upstream_to_mailtap, Direction::mailtap_to_client,
                                  Direction::mailtap_note};
  return parse_enum(text, all, out);
}

bool parse(std::string_view text, smtp::Phase& out) {
  using smtp::Phase;
  static constexpr std::array all{Phase::plain, Phase::pre_tls, Phase::tls};
  return parse_enum(text, all, out);
}

bool parse(std::string_view text, smtp::EventKind& out) {
  using smtp::EventKind;
  static constexpr std::array all{EventKind::greeting, EventKind::command,     EventKind::reply,
                                  EventKind::data,     EventKind::bdat_chunk,  EventKind::auth,
                                  EventKind::rewrite,  EventKind::local_reply, EventKind::tls,
                                  EventKind::error,    EventKind::note};
  return parse_enum(text, all, out);
}

}  // namespace mailtap::storage
