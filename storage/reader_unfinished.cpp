// Reader::unfinished_messages: the mail transactions whose body events have no message row,
// derived from the events at read time (nothing is written for them: a record cut by `kill -9`
// could not have written it, and older records gain them too).
#include <algorithm>
#include <cctype>
#include <charconv>

#include "storage/reader.hpp"
#include "storage/reader_impl.hpp"

namespace mailtap::storage {

namespace {

std::string client_to_upstream_sql() {
  return "'" + std::string(to_string(smtp::Direction::client_to_upstream)) + "'";
}

// The transactions with body events relayed and no row, numbered after the last message.
Status load_unfinished(Reader::Impl& impl, std::int64_t id, std::vector<UnfinishedMessage>& out) {
  std::uint64_t last_message = 0;
  if (Status s = impl.rows_for(
          "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1", id,
          [&](const Statement& r) { last_message = static_cast<std::uint64_t>(r.column_int(0)); });
      !s.ok())
    return s;
  const std::string bdat(to_string(smtp::EventKind::bdat_chunk));
  return impl.rows_for(
      "SELECT e.mail_transaction, MIN(e.seq), MAX(e.seq), SUM(e.wire_size), "
      "MAX(e.kind = '" +
          bdat + "') FROM events e WHERE e.session_id = ?1 AND e.kind IN " +
          body_event_kinds_sql() + " AND e.direction = " + client_to_upstream_sql() +
          " AND e.mail_transaction > 0 AND NOT EXISTS (SELECT 1 FROM messages m WHERE "
          "m.session_id = e.session_id AND m.mail_transaction = e.mail_transaction) "
          "GROUP BY e.mail_transaction ORDER BY e.mail_transaction",
      id, [&](const Statement& r) {
        UnfinishedMessage u;
        u.row.seq = last_message + out.size() + 1;
        u.row.message.transaction = static_cast<std::uint64_t>(r.column_int(0));
        u.first_seq = static_cast<std::uint64_t>(r.column_int(1));
        u.last_seq = static_cast<std::uint64_t>(r.column_int(2));
        u.wire_octets = static_cast<std::uint64_t>(std::max<std::int64_t>(r.column_int(3), 0));
        u.row.message.via_bdat = r.column_int(4) != 0;
        u.row.message.final_code = 0;
        out.push_back(std::move(u));
      });
}

// The MAIL command last sent upstream before the body began: the transaction's.
Status load_mail_from(Reader::Impl& impl, std::int64_t id, UnfinishedMessage& u) {
  Statement st;
  if (Status s = impl.db.prepare(
          "SELECT bytes FROM events WHERE session_id = ?1 AND seq < ?2 AND kind = '" +
              std::string(to_string(smtp::EventKind::command)) + "' AND verb = 'MAIL' AND " +
              "direction = " + client_to_upstream_sql() + " ORDER BY seq DESC LIMIT 1",
          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, id).bind_int(2, static_cast<std::int64_t>(u.first_seq));
  return impl.each_row(st, [&](const Statement& r) {
    std::string line = r.column_blob(0);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    u.row.message.mail_from = std::move(line);
  });
}

// Whether a DATA body's last octets as relayed are its terminator: the text ends with the line
// "." (the events hold the normalised text, CRLF line ends, as the server got it). The last
// few octets are read from the rows or the body file; one the file cannot supply counts as no
// end (the record does not show it).
Status load_data_end(Reader::Impl& impl, std::int64_t id, UnfinishedMessage& u) {
  constexpr std::int64_t kTail = 5;  // "\r\n.\r\n"
  Statement st;
  if (Status s = impl.db.prepare(
          "SELECT CASE WHEN file_offset IS NULL THEN substr(bytes, -5) END, file_offset, "
          "file_length FROM events WHERE session_id = ?1 AND mail_transaction = ?2 AND kind = '" +
              std::string(to_string(smtp::EventKind::data)) +
              "' AND direction = " + client_to_upstream_sql() + " ORDER BY seq DESC LIMIT 5",
          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, id).bind_int(2, static_cast<std::int64_t>(u.row.message.transaction));
  std::string tail;  // the last octets, in order
  bool readable = true;
  Status s = impl.each_row(st, [&](const Statement& r) {
    if (static_cast<std::int64_t>(tail.size()) >= kTail || !readable) return;
    std::string piece;
    if (r.is_null(1)) {
      piece = r.column_blob(0);
    } else {
      const std::int64_t length = r.column_int(2);
      const std::int64_t take = std::min(kTail, length);
      readable = impl.bodies->read(id, r.column_int(1) + length - take, take, piece).ok();
    }
    tail.insert(0, piece);
  });
  if (!s.ok()) return s;
  u.end_of_data =
      readable && (tail == ".\r\n" || (tail.size() >= 5 && tail.ends_with("\r\n.\r\n")));
  return {};
}

// Whether a BDAT body's last chunk was a whole `BDAT n LAST`: the last BDAT command before its
// last chunk says LAST, and the chunk events after that command hold its n octets.
Status load_bdat_end(Reader::Impl& impl, std::int64_t id, UnfinishedMessage& u) {
  Statement st;
  if (Status s = impl.db.prepare(
          "SELECT c.bytes, (SELECT COALESCE(SUM(e.wire_size), 0) FROM events e WHERE "
          "e.session_id = c.session_id AND e.seq > c.seq AND e.mail_transaction = ?3 AND "
          "e.kind = '" +
              std::string(to_string(smtp::EventKind::bdat_chunk)) +
              "' AND e.direction = " + client_to_upstream_sql() +
              ") FROM events c WHERE c.session_id = ?1 AND c.seq < ?2 AND c.kind = '" +
              std::string(to_string(smtp::EventKind::command)) +
              "' AND c.verb = 'BDAT' AND c.direction = " + client_to_upstream_sql() +
              " ORDER BY c.seq DESC LIMIT 1",
          st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, id)
      .bind_int(2, static_cast<std::int64_t>(u.last_seq))
      .bind_int(3, static_cast<std::int64_t>(u.row.message.transaction));
  return impl.each_row(st, [&](const Statement& r) {
    std::string line = r.column_blob(0);
    for (char& c : line) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    // "BDAT <size> LAST": the size after the verb, LAST after it.
    std::size_t at = line.find_first_not_of(' ', 4);
    if (at == std::string::npos) return;
    std::uint64_t size = 0;
    const auto [end, ec] = std::from_chars(line.data() + at, line.data() + line.size(), size);
    if (ec != std::errc{}) return;
    const bool last =
        std::string_view(line).substr(static_cast<std::size_t>(end - line.data())).find("LAST") !=
        std::string_view::npos;
    u.end_of_data = last && static_cast<std::uint64_t>(r.column_int(1)) == size;
  });
}

Status load_unfinished_messages(Reader::Impl& impl, std::int64_t id,
                                std::vector<UnfinishedMessage>& out) {
  if (Status s = load_unfinished(impl, id, out); !s.ok()) return s;
  for (UnfinishedMessage& u : out) {
    if (Status s = load_mail_from(impl, id, u); !s.ok()) return s;
    if (Status s = u.row.message.via_bdat ? load_bdat_end(impl, id, u) : load_data_end(impl, id, u);
        !s.ok())
      return s;
  }
  return {};
}

}  // namespace

bool Reader::unfinished_messages(std::int64_t id, std::vector<UnfinishedMessage>& out,
                                 std::string& error) {
  error.clear();
  out.clear();
  Status s;
  if (!impl_->in_read_transaction(error, [&] { s = load_unfinished_messages(*impl_, id, out); }))
    return false;
  if (!s.ok()) {
    out.clear();
    error = s.message;
    return false;
  }
  return true;
}

}  // namespace mailtap::storage
