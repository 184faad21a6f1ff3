// What `mailtap web` answers for each route, as Response values: the page and its assets, and
// the JSON API the page itself uses (documented in docs/web.md). Reads the record through
// storage::Reader only: one read-only connection for the list and the sessions, serialising
// its callers, and another for text searches, which read the whole record and must not hold
// the list up. The record holds no secret, and no response adds one.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/reader.hpp"
#include "storage/session_events.hpp"
#include "storage/stored_body.hpp"
#include "tools/web/http_response.hpp"
#include "tools/web/routes.hpp"

namespace mailtap::tools::web {

class Api {
 public:
  // nullptr and `error` set if the database cannot be opened for reading.
  static std::unique_ptr<Api> open(const std::string& db_path, std::string& error);

  // True once the client that asked has gone: a search it started stops.
  using ClientGone = std::function<bool()>;

  // Every route but RouteKind::events (a stream, served by the server itself).
  Response respond(const Route& route, const std::map<std::string, std::string>& query,
                   ClientGone client_gone = {});

 private:
  Api() = default;
  Response page() const;
  Response asset(const std::string& name) const;
  Response sessions(const std::map<std::string, std::string>& query, const ClientGone& gone);
  Response search(const storage::SessionFilter& filter, std::vector<storage::SessionSummary>& rows,
                  const ClientGone& gone);
  Response session(std::int64_t id, bool download);
  Response message(const Route& route);
  Response audit();
  // Loads a session without its events and messages (Reader::EventRows::none); on failure
  // `failure` is the response to send.
  bool load(std::int64_t id, std::optional<storage::SessionDetail>& out, Response& failure);

  std::mutex mutex_;  // one connection, used by one request at a time
  std::string path_;
  std::unique_ptr<storage::Reader> reader_;
  // Text searches: one at a time on their own connection, a few more waiting (each holds one of
  // the server's threads), and any more refused.
  std::mutex search_mutex_;
  std::unique_ptr<storage::Reader> search_reader_;
  std::atomic<int> searches_{0};
};

// The query string of /api/sessions as a SessionFilter; "" when valid, else what is wrong.
std::string parse_session_filters(const std::map<std::string, std::string>& query,
                                  storage::SessionFilter& out);

}  // namespace mailtap::tools::web
