// What each URL of `mailtap web` names. Pure: no I/O, so the table is unit-tested.
//
//   /                                         the page (index.html); its views are #fragments
//   /assets/NAME                              the page's script and style
//   /api/sessions?FILTERS                     the sessions list (JSON)
//   /api/sessions/ID                          one session: transcript, TLS, messages (JSON)
//   /api/sessions/ID/download                 the same as `mailtap show ID --json`, as a file
//   /api/sessions/ID/messages/N               message N: envelope, headers, parts (JSON)
//   /api/sessions/ID/messages/N/raw           its source as the server got it (.eml download)
//   /api/sessions/ID/messages/N/parts/K       one MIME part, decoded (HTML as an attachment)
//   /api/audit                                the findings of `mailtap audit` (JSON)
//   /api/events                               server-sent events: the record changed
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace mailtap::tools::web {

enum class RouteKind {
  not_found,
  page,
  asset,
  sessions,
  session,
  session_download,
  message,
  message_raw,
  message_part,
  audit,
  events,
};

struct Route {
  RouteKind kind = RouteKind::not_found;
  std::int64_t session = 0;
  std::size_t message = 0;  // 1-based, as `mailtap show --message`
  std::size_t part = 0;     // 0-based index into the message's parts
  std::string asset;        // for RouteKind::asset
};

// `path` is the request path without the query string, already percent-decoded.
Route match_route(std::string_view path);

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; '+' is a space; the last of repeated keys wins.
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace mailtap::tools::web
