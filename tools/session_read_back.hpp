// A session as the tools that write it out whole read it (show, export): loaded without its
// events and messages (Reader::EventRows::none), which are read back from the record a batch at
// a time as they are written (storage::left_in_record), and a body a piece at a time
// (SessionOctets): a session of any number of messages, or of any size, costs a batch and a
// piece, as the web page's download.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "storage/reader.hpp"
#include "storage/session_events.hpp"
#include "storage/stored_body.hpp"
#include "tools/session_json.hpp"

namespace mailtap::tools {

// Session `id` loaded for a SessionReadBack (octets left past what the rows hold inline, events
// and messages left in the record); as Reader::load_session.
bool load_for_read_back(storage::Reader& reader, std::int64_t id,
                        std::optional<storage::SessionDetail>& out, std::string& error);

// What reads back, on `reader`, what `detail` (from load_for_read_back) left in the record;
// each read under `lock` when the reader is shared (the web page's). All must outlive it.
class SessionReadBack {
 public:
  SessionReadBack(storage::Reader& reader, const storage::SessionDetail& detail,
                  std::mutex* lock = nullptr);
  SessionReadBack(const SessionReadBack&) = delete;
  SessionReadBack& operator=(const SessionReadBack&) = delete;

  const storage::SessionDetail& detail() const { return detail_; }
  storage::SessionOctets& octets() { return octets_; }

  // Every event / message in seq order (storage::for_each_session_event, _message): `fn`
  // returns false to stop. False with `error` set if the record could not supply them all.
  bool for_each_event(const std::function<bool(const storage::EventRow&)>& fn,
                      std::string& error) const;
  bool for_each_message(const std::function<bool(const storage::MessageRow&)>& fn,
                        std::string& error) const;
  // The same, as write_session_detail takes them.
  EventSource events() const;
  MessageSource messages() const;

 private:
  const storage::SessionDetail& detail_;
  storage::LeftInRecord left_;
  storage::SessionOctets octets_;
};

}  // namespace mailtap::tools
