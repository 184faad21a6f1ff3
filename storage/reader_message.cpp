// Reader::stored_message: one message and where its body is, without reading the body file.
#include <algorithm>

#include "storage/reader.hpp"
#include "storage/reader_impl.hpp"
#include "storage/stored_body.hpp"

namespace mailtap::storage {

namespace {

// The message's row; `found` false if there is none.
Status load_message_row(Reader::Impl& impl, std::int64_t session_id, std::uint64_t seq,
                        MessageRow& row, bool& found) {
  Statement st;
  if (Status s = impl.db.prepare("SELECT " + message_columns(/*leave_long_body=*/true) +
                                     " FROM messages WHERE session_id = ?1 AND seq = ?2",
                                 st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, session_id).bind_int(2, static_cast<std::int64_t>(seq));
  return impl.each_row(st, [&](const Statement& r) {
    message_from(r, 0, row, /*leave_long_body=*/true);
    found = true;
  });
}

Status load_message_recipients(Reader::Impl& impl, MessageRow& row) {
  return impl.rows_for(
      "SELECT command, reply_code, reply, position FROM recipients WHERE message_id = ?1 "
      "ORDER BY position",
      row.id, [&](const Statement& r) {
        smtp::Recipient rc;
        rc.command = r.column_text(0);
        rc.reply_code = static_cast<int>(r.column_int(1));
        rc.reply = r.column_text(2);
        rc.position = static_cast<std::uint64_t>(r.column_int(3));
        row.message.recipients.push_back(std::move(rc));
      });
}

// Since schema v4 a body is the body events of its transaction (reader.cpp's attach_bodies).
// Octets the rows hold past the first kInlineBodyOctets (recorded before schema v6) are left
// there, as the body file's are. Only the first kBodyPieceBatch pieces are kept: of the rest,
// where they are, for the body file and the rows' reader to be held from this snapshot.
Status load_body_pieces(Reader::Impl& impl, StoredMessage& m) {
  Statement st;
  if (Status s = impl.db.prepare(
          "SELECT " + bytes_past_inline_left_sql() +
              ", file_offset, file_length, seq FROM events WHERE session_id = ?1 AND "
              "mail_transaction = ?2 AND kind IN " +
              body_event_kinds_sql() + " ORDER BY seq",
          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, m.session_id).bind_int(2, static_cast<std::int64_t>(m.row.message.transaction));
  InlineBodyBudget budget;
  return impl.each_row(st, [&](const Statement& r) {
    StoredBodyPiece p;
    p.file_offset = r.column_optional_int(3);
    p.file_length = r.column_int(4);
    p.seq = static_cast<std::uint64_t>(r.column_int(5));
    const std::int64_t length = r.column_int(2);
    if (m.pieces.size() == kBodyPieceBatch && !m.pieces_left)
      m.pieces_left.emplace().budget = budget;
    if (budget.keeps(m.row.message.transaction, p.file_offset.has_value(), length)) {
      p.bytes = r.column_blob(0);
    } else if (!p.file_offset && length > 0) {
      p.row_id = r.column_int(1);
      p.file_offset = 0;
      p.file_length = length;
    }
    if (!m.pieces_left) {
      m.pieces.push_back(std::move(p));
      return;
    }
    m.pieces_left->in_body_file |= p.file_offset.has_value() && !p.row_id;
    m.pieces_left->in_rows |= p.row_id.has_value();
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
  if (m.pieces_left) {
    if (Status s = impl.rows_for(
            "SELECT started_at FROM sessions WHERE id = ?1", session_id,
            [&](const Statement& r) { m.pieces_left->session_started_at = r.column_text(0); });
        !s.ok())
      return s;
  }
  out = std::move(m);
  return {};
}

// Whether some of the message's body is in the body file.
bool in_body_file(const StoredMessage& m) {
  return (m.pieces_left && m.pieces_left->in_body_file) ||
         std::any_of(m.pieces.begin(), m.pieces.end(), [](const StoredBodyPiece& p) {
           return p.file_offset.has_value() && !p.row_id;
         });
}

// Whether some of the message's body was left in its rows, or all of it in its own.
bool left_in_rows(const StoredMessage& m) {
  return m.row.body_left_in_row || (m.pieces_left && m.pieces_left->in_rows) ||
         std::any_of(m.pieces.begin(), m.pieces.end(),
                     [](const StoredBodyPiece& p) { return p.row_id.has_value(); });
}

}  // namespace

bool Reader::stored_message(std::int64_t session_id, std::uint64_t seq,
                            std::optional<StoredMessage>& out, std::string& error) {
  // The message row and its body events from the same snapshot, with the body file they
  // describe.
  if (!impl_->in_one_snapshot_with_body_file(
          session_id, out, error,
          [&](std::optional<StoredMessage>& m) {
            return load_stored_message(*impl_, session_id, seq, m);
          },
          [](const StoredMessage& m) { return in_body_file(m); }))
    return false;
  if (out && left_in_rows(*out)) out->row_bodies = impl_->row_body_reader();
  return true;
}

}  // namespace mailtap::storage
