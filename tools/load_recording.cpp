#include "tools/load_recording.hpp"

#include <optional>

#include "storage/reader.hpp"

namespace mailtap::tools {

bool load_recorded_dialogue(const std::string& db_path, std::int64_t id, std::string_view acted,
                            RecordedDialogue& out, std::string& error, RefusedLines refused,
                            PartialBodies partial) {
  std::string why;
  auto reader = storage::Reader::open(db_path, why, storage::Reader::Use::one_shot);
  if (!reader) {
    error = "cannot read " + db_path + ": " + why;
    return false;
  }
  std::optional<storage::SessionDetail> detail;
  if (!reader->load_session(id, detail, why)) {
    error = "cannot read session " + std::to_string(id) + ": " + why;
    return false;
  }
  if (!detail) {
    error = "no session " + std::to_string(id) + " in " + db_path;
    return false;
  }
  if (!build_recorded_dialogue(detail->events, out, why, refused, partial)) {
    error = "session " + std::to_string(id) + " cannot be " + std::string(acted) + ": " + why;
    return false;
  }
  // The user mailtap authenticated as is in the session row (not in the rendering of every
  // mechanism's lines).
  if (out.mailtap_login && detail->session.auth_by_mailtap)
    out.mailtap_login->user = detail->session.auth_user;
  return true;
}

}  // namespace mailtap::tools
