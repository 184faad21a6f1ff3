#include "tools/load_recording.hpp"

#include <memory>
#include <optional>

#include "storage/reader.hpp"
#include "storage/stored_body.hpp"

namespace mailtap::tools {

namespace {

// Reads the octets of the steps left in the body file from the file the session's rows were
// read with (pinned: SessionDetail::body_file), whatever prune does meanwhile, and those left in
// their rows (recorded before schema v6) a piece at a time through its reader of rows
// (SessionDetail::row_bodies): both as SessionOctets reads them for show and export.
StoredOctetsReader stored_octets_reader(const storage::SessionDetail& detail) {
  auto where = std::make_shared<storage::SessionDetail>();  // none of the rows: where they are
  where->session.id = detail.session.id;
  where->body_file = detail.body_file;
  where->row_bodies = detail.row_bodies;
  return [where](const ClientStep& step, std::size_t at, std::size_t length, std::string& out,
                 std::string& error) {
    storage::EventRow event;
    event.seq = step.seq;
    event.file_offset = step.file_offset;
    event.file_length = static_cast<std::int64_t>(step.file_length);
    event.row_id = step.row_id;
    const storage::Status s = storage::SessionOctets(*where).read_stored(
        event, static_cast<std::int64_t>(at), static_cast<std::int64_t>(length), out);
    if (!s.ok()) error = s.message;
    return s.ok();
  };
}

// Every octet the steps refer to can be read: the body file's last (it is appended to, never
// rewritten: a file removed or cut short fails here, before anything is sent, as it did when
// the octets were read with the rows), and the last of those left in rows (a session pruned
// since fails here too).
bool stored_octets_readable(const RecordedDialogue& d, std::string& error) {
  const ClientStep* last_in_file = nullptr;
  const ClientStep* last_in_row = nullptr;
  const auto end = [](const ClientStep& s) {
    return *s.file_offset + static_cast<std::int64_t>(s.file_length);
  };
  for (const ClientStep& s : d.client) {
    if (!s.file_offset || s.file_length == 0) continue;
    if (s.row_id)
      last_in_row = &s;
    else if (!last_in_file || end(s) > end(*last_in_file))
      last_in_file = &s;
  }
  std::string last;
  for (const ClientStep* s : {last_in_file, last_in_row})
    if (s && !d.read_stored(*s, s->file_length - 1, 1, last, error)) return false;
  return true;
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
  // Body octets stay in the body file, and those a row holds past its message's first 64 KiB
  // (recorded before schema v6) in their rows: memory bounded whatever the body's size and
  // whenever it was recorded. The mock only counts a body, and replay reads them a piece at a
  // time as it sends them.
  if (!reader->load_session(id, detail, why, storage::Reader::BodyOctets::leave_past_inline)) {
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
  note_session_outcome(out, detail->session.outcome);
  const storage::SessionRow& row = detail->session;
  if (!row.ended) out.unfinished = row.writer_gone() ? "cut" : "in_progress";
  // --local-tls starttls and implicit leave their mark in the events; the row's TLS version,
  // written when the session ends, covers an implicit session recorded before its note was.
  out.client_implicit_tls =
      out.client_implicit_tls || (!row.client_tls_version.empty() && !out.client_starttls);
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
