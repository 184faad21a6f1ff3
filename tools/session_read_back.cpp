#include "tools/session_read_back.hpp"

namespace mailtap::tools {

bool load_for_read_back(storage::Reader& reader, std::int64_t id,
                        std::optional<storage::SessionDetail>& out, std::string& error) {
  return reader.load_session(id, out, error, storage::Reader::BodyOctets::leave_past_inline,
                             storage::Reader::EventRows::none);
}

SessionReadBack::SessionReadBack(storage::Reader& reader, const storage::SessionDetail& detail,
                                 std::mutex* lock)
    : detail_(detail),
      left_(storage::left_in_record(reader, detail, lock)),
      octets_(detail, left_.body_pieces) {}

bool SessionReadBack::for_each_event(const std::function<bool(const storage::EventRow&)>& fn,
                                     std::string& error) const {
  return storage::for_each_session_event(detail_, left_.events, fn, error);
}

bool SessionReadBack::for_each_message(const std::function<bool(const storage::MessageRow&)>& fn,
                                       std::string& error) const {
  return storage::for_each_session_message(detail_, left_.messages, fn, error);
}

EventSource SessionReadBack::events() const {
  return [this](const std::function<bool(const storage::EventRow&)>& fn, std::string& error) {
    return for_each_event(fn, error);
  };
}

MessageSource SessionReadBack::messages() const {
  return [this](const std::function<bool(const storage::MessageRow&)>& fn, std::string& error) {
    return for_each_message(fn, error);
  };
}

}  // namespace mailtap::tools
