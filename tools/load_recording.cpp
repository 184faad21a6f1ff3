#include "tools/load_recording.hpp"

#include <algorithm>
#include <memory>
#include <optional>

#include "storage/body_files.hpp"
#include "storage/reader.hpp"

namespace mailtap::tools {

namespace {

// Reads the octets of the steps left in the body file from the file the session's rows were
// read with (pinned: SessionDetail::body_file), whatever prune does meanwhile.
StoredOctetsReader stored_octets_reader(const storage::SessionDetail& detail) {
  return [file = detail.body_file, id = detail.session.id](std::int64_t offset, std::size_t length,
                                                           std::string& out, std::string& error) {
    const storage::Status s =
        file ? file->read(id, offset, static_cast<std::int64_t>(length), out)
             : storage::Status::error(storage::kSqliteCantOpen,
                                      "no body file was opened for session " + std::to_string(id));
    if (!s.ok()) error = s.message;
    return s.ok();
  };
}

// The body file holds every octet the steps refer to: its last one can be read. (It is
// appended to, never rewritten: a file removed or cut short fails here, before anything is
// sent, as it did when the octets were read with the rows.)
bool stored_octets_readable(const RecordedDialogue& d, std::string& error) {
  std::int64_t end = 0;
  for (const ClientStep& s : d.client)
    if (s.file_offset && s.file_length > 0)
      end = std::max(end, *s.file_offset + static_cast<std::int64_t>(s.file_length));
  std::string last;
  return end == 0 || d.read_stored(end - 1, 1, last, error);
}

}  // namespace

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
  // Body octets stay in the body file (memory bounded whatever the body's size): the mock only
  // counts a body, and replay reads them a piece at a time as it sends them.
  if (!reader->load_session(id, detail, why, storage::Reader::BodyOctets::leave_in_file)) {
    error = "cannot read session " + std::to_string(id) + ": " + why;
    return false;
  }
  if (!detail) {
    error = "no session " + std::to_string(id) + " in " + db_path +
            " (list them with: mailtap sessions)";
    return false;
  }
  if (!build_recorded_dialogue(detail->events, out, why, refused, partial)) {
    error = "session " + std::to_string(id) + " cannot be " + std::string(acted) + ": " + why;
    return false;
  }
  // The user mailtap authenticated as is in the session row (not in the rendering of every
  // mechanism's lines).
  if (out.mailtap_login && detail->session.auth_by == storage::AuthBy::mailtap)
    out.mailtap_login->user = detail->session.auth_user;
  out.read_stored = stored_octets_reader(*detail);
  if (!stored_octets_readable(out, why)) {
    error = "cannot read session " + std::to_string(id) + ": " + why;
    return false;
  }
  return true;
}

}  // namespace mailtap::tools
