#include "proxy/smtp/event.hpp"

namespace mailtap::smtp {

std::string_view to_string(Direction d) {
  switch (d) {
    case Direction::client_to_upstream:
      return "client_to_upstream";
    case Direction::upstream_to_client:
      return "upstream_to_client";
    case Direction::client_to_mailtap:
      return "client_to_mailtap";
    case Direction::mailtap_to_upstream:
      return "mailtap_to_upstream";
    case Direction::upstream_to_mailtap:
      return "upstream_to_mailtap";
    case Direction::mailtap_to_client:
      return "mailtap_to_client";
    case Direction::mailtap_note:
      return "mailtap_note";
  }
  return "unknown";
}

std::string_view to_string(Phase p) {
  switch (p) {
    case Phase::plain:
      return "plain";
    case Phase::pre_tls:
      return "pre_tls";
    case Phase::tls:
      return "tls";
  }
  return "unknown";
}

std::string_view to_string(EventKind k) {
  switch (k) {
    case EventKind::greeting:
      return "greeting";
    case EventKind::command:
      return "command";
    case EventKind::reply:
      return "reply";
    case EventKind::data:
      return "data";
    case EventKind::bdat_chunk:
      return "bdat_chunk";
    case EventKind::auth:
      return "auth";
    case EventKind::rewrite:
      return "rewrite";
    case EventKind::local_reply:
      return "local_reply";
    case EventKind::tls:
      return "tls";
    case EventKind::error:
      return "error";
    case EventKind::note:
      return "note";
  }
  return "unknown";
}

}  // namespace mailtap::smtp
