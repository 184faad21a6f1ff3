// Reader::stored_message: one message and where its body is, without reading the body file.
#include <algorithm>

#include "storage/reader.hpp"
#include "storage/reader_impl.hpp"

namespace mailtap::storage {

namespace {

// The message's row; `found` false if there is none.
Status load_message_row(Reader::Impl& impl, std::int64_t session_id, std::uint64_t seq,
                        MessageRow& row, bool& found) {
  Statement st;
  if (Status s =
          impl.db.prepare("SELECT id, seq, mail_from, size, sha256, body, body_truncated, "
                          "via_bdat, final_code, final_reply, started_at, finished_at, "
                          "mail_transaction FROM messages WHERE session_id = ?1 AND seq = ?2",
                          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, session_id).bind_int(2, static_cast<std::int64_t>(seq));
  return impl.each_row(st, [&](const Statement& r) {
    message_from(r, 0, row);
    found = true;
  });
}

Status load_message_recipients(Reader::Impl& impl, MessageRow& row) {
  return impl.rows_for(
      "SELECT command, reply_code, reply FROM recipients WHERE message_id = ?1 ORDER BY position",
      row.id, [&](const Statement& r) {
        smtp::Recipient rc;
        rc.command = r.column_text(0);
        rc.reply_code = static_cast<int>(r.column_int(1));
        rc.reply = r.column_text(2);
        row.message.recipients.push_back(std::move(rc));
      });
}

// Since schema v4 a body is the body events of its transaction (reader.cpp's attach_bodies).
Status load_body_pieces(Reader::Impl& impl, StoredMessage& m) {
  Statement st;
  if (Status s = impl.db.prepare(
          "SELECT bytes, file_offset, file_length FROM events WHERE session_id = ?1 AND "
          "mail_transaction = ?2 AND kind IN ('" +
              std::string(to_string(smtp::EventKind::data)) + "', '" +
              std::string(to_string(smtp::EventKind::bdat_chunk)) + "') ORDER BY seq",
          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, m.session_id).bind_int(2, static_cast<std::int64_t>(m.row.message.transaction));
  return impl.each_row(st, [&](const Statement& r) {
    StoredBodyPiece p;
    p.bytes = r.column_blob(0);
    p.file_offset = r.column_optional_int(1);
    p.file_length = r.column_int(2);
    m.pieces.push_back(std::move(p));
  });
}

Status load_stored_message(Reader::Impl& impl, std::int64_t session_id, std::uint64_t seq,
                           std::optional<StoredMessage>& out) {
  StoredMessage m;
  m.session_id = session_id;
  bool found = false;
  if (Status s = load_message_row(impl, session_id, seq, m.row, found); !s.ok() || !found) return s;
  if (Status s = load_message_recipients(impl, m.row); !s.ok()) return s;
  if (m.row.message.transaction != 0) {
    if (Status s = load_body_pieces(impl, m); !s.ok()) return s;
  }
  out = std::move(m);
  return {};
}

// Whether some of the message's body is in the body file.
bool in_body_file(const StoredMessage& m) {
  return std::any_of(m.pieces.begin(), m.pieces.end(),
                     [](const StoredBodyPiece& p) { return p.file_offset.has_value(); });
}

}  // namespace

bool Reader::stored_message(std::int64_t session_id, std::uint64_t seq,
                            std::optional<StoredMessage>& out, std::string& error) {
  // The message row and its body events from the same snapshot, with the body file they
  // describe.
  return impl_->in_one_snapshot_with_body_file(
      session_id, out, error,
      [&](std::optional<StoredMessage>& m) {
        return load_stored_message(*impl_, session_id, seq, m);
      },
      [](const StoredMessage& m) { return in_body_file(m); });
}

}  // namespace mailtap::storage
