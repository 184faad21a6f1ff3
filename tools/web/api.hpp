// What `mailtap web` answers for each route, as Response values: the page and its assets, and
// the JSON API the page itself uses (documented in docs/web.md). Reads the record through
// storage::Reader only; serialises callers on one read-only
// connection. The record holds no secret, and no response adds one.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/reader.hpp"
#include "tools/web/http_response.hpp"
#include "tools/web/routes.hpp"

namespace mailtap::tools::web {

class Api {
 public:
  // nullptr and `error` set if the database cannot be opened for reading.
  static std::unique_ptr<Api> open(const std::string& db_path, std::string& error);

  // Every route but RouteKind::events (a stream, served by the server itself).
  Response respond(const Route& route, const std::map<std::string, std::string>& query);

 private:
  Api() = default;
  Response page() const;
  Response asset(const std::string& name) const;
  Response sessions(const std::map<std::string, std::string>& query);
  Response session(std::int64_t id, bool download);
  Response message(const Route& route);
  Response audit();
  // Loads a session; on failure `failure` is the response to send.
  bool load(std::int64_t id, std::optional<storage::SessionDetail>& out, Response& failure);

  std::mutex mutex_;  // one connection, used by one request at a time
  std::string path_;
  std::unique_ptr<storage::Reader> reader_;
};

// The query string of /api/sessions as a SessionFilter; "" when valid, else what is wrong.
std::string parse_session_filters(const std::map<std::string, std::string>& query,
                                  storage::SessionFilter& out);

}  // namespace mailtap::tools::web
