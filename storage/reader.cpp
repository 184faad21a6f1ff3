#include "storage/reader.hpp"

#include "proxy/smtp/message_body.hpp"
#include "proxy/smtp/reply_parser.hpp"

#include <algorithm>

#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/reader_impl.hpp"
#include "storage/row_body_reader.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {

const std::string_view kSessionColumns =
    "id, started_at, ended_at, client_address, listen_address, upstream_host, upstream_port, "
    "resolved_address, tls_mode, ehlo_name, tls_version, cipher, sni, verified_name, "
    "verify_status, verify_reason, insecure, outcome, outcome_reason, bytes_client_to_upstream, "
    "bytes_upstream_to_client, auth_user, replay_of, auth_mechanism, auth_by, tls_resumed, "
    "client_tls_version, writer, client_cert_sha256, client_cert_subject, "
    // An integer, in range or not (session_from judges it) ...
    "CASE WHEN typeof(duration_us) = 'integer' THEN duration_us END, "
    // ... or what a value that is no count of microseconds (a hand edit, a damaged page) holds:
    // its type and as much of it as recognises it.
    "CASE WHEN typeof(duration_us) NOT IN ('integer', 'null') "
    "THEN typeof(duration_us) || ' ' || substr(quote(duration_us), 1, 65) END";

Clock::time_point time_or_epoch(const std::string& text) {
  return parse_timestamp(text).value_or(Clock::time_point{});
}

Clock::time_point time_column(const Statement& st, int col, std::string_view name,
                              std::string& unreadable, bool* bad) {
  if (st.is_null(col)) return {};
  const std::string text = st.column_text(col);
  const auto t = parse_timestamp(text);
  // A date the clock cannot hold comes back clamped to its first or last instant: read as a
  // time, a session's length from it would overflow.
  const bool clamped = t && out_of_clock_range(*t);
  if (t && !clamped) return *t;
  // Enough of the text to recognise it; a damaged column may hold anything, of any length.
  constexpr std::size_t kShown = 64;
  if (!unreadable.empty()) unreadable += "; ";
  unreadable += std::string(name) + " holds \"" + text.substr(0, kShown) +
                (text.size() > kShown ? "...\"" : "\"") +
                (clamped ? ", out of range" : ", not a timestamp");
  if (bad != nullptr) *bad = true;
  return {};
}

namespace {

// sessions.duration_us, at `integer_col` when it holds an integer, else what it holds at
// `held_col` (kSessionColumns). A value that is no length the proxy can have measured (a hand
// edit, a damaged page) is unreadable, and said so in r.unreadable: never taken for a session
// whose length was not measured, which would show the wall-clock span as if it were.
void duration_column(const Statement& st, int integer_col, int held_col, SessionRow& r) {
  std::string why;
  if (const auto us = st.column_optional_int(integer_col)) {
    // Only a damaged file holds one longer than the clock can (292 years) or a negative one.
    constexpr auto kLongest =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::duration::max());
    if (*us >= 0 && *us <= kLongest.count()) {
      r.duration_us = std::chrono::microseconds(*us);
      return;
    }
    why = "duration_us holds " + std::to_string(*us) + ", out of range (" +
          (*us < 0 ? "a length is never negative)"
                   : "longer than the 292 years mailtap's clock holds)");
  } else if (!st.is_null(held_col)) {  // "text 'soon'": the type, then the value as SQL writes it
    constexpr std::size_t kShown = 64;
    std::string held = st.column_text(held_col);
    const std::size_t value = held.find(' ') + 1;
    if (held.size() - value > kShown) held = held.substr(0, value + kShown) + "...";
    why = "duration_us holds " + held + ", not a count of microseconds";
  } else {
    return;
  }
  r.duration_unreadable = true;
  r.unreadable += (r.unreadable.empty() ? "" : "; ") + why;
}

}  // namespace

SessionRow session_from(const Statement& st) {
  SessionRow r;
  r.id = st.column_int(0);
  r.started = time_column(st, 1, "started_at", r.unreadable, &r.started_unreadable);
  if (!st.is_null(2)) r.ended = time_column(st, 2, "ended_at", r.unreadable, &r.ended_unreadable);
  r.client_address = st.column_text(3);
  r.listen_address = st.column_text(4);
  r.upstream_host = st.column_text(5);
  r.upstream_port = static_cast<std::uint16_t>(st.column_int(6));
  r.resolved_address = st.column_text(7);
  r.tls_mode = parse_name<TlsMode>(st.column_text(8)).value_or(TlsMode::starttls);
  r.ehlo_name = st.column_text(9);
  r.tls_version = st.column_text(10);
  r.cipher = st.column_text(11);
  r.sni = st.column_text(12);
  r.verified_name = st.column_text(13);
  if (!st.is_null(14)) {
    // A status this build does not know (a newer mailtap) reads as a failure: never as ok.
    r.verify_status = parse_name<VerifyStatus>(st.column_text(14)).value_or(VerifyStatus::failed);
  }
  r.verify_reason = st.column_text(15);
  r.insecure = st.column_int(16) != 0;
  if (!st.is_null(17)) {
    // An outcome this build does not know (written by a newer mailtap) reads as error.
    r.outcome = parse_name<Outcome>(st.column_text(17)).value_or(Outcome::error);
  }
  r.outcome_reason = st.column_text(18);
  r.bytes_client_to_upstream = static_cast<std::uint64_t>(st.column_int(19));
  r.bytes_upstream_to_client = static_cast<std::uint64_t>(st.column_int(20));
  r.auth_user = st.column_text(21);
  r.replay_of = st.column_optional_int(22);
  r.auth_mechanism = st.column_text(23);
  if (!st.is_null(24)) {
    // A name this build does not know (written by a newer mailtap) reads as `client`: only a
    // recorded `mailtap` is mailtap's own AUTH.
    r.auth_by = parse_name<AuthBy>(st.column_text(24)).value_or(AuthBy::client);
  }
  if (!st.is_null(25)) r.tls_resumed = st.column_int(25) != 0;
  r.client_tls_version = st.column_text(26);
  // Looks the writer up in /proc only for a session without an end.
  r.record = record_state(r.ended.has_value(),
                          st.is_null(27) ? std::nullopt : std::optional(st.column_text(27)));
  r.client_cert_sha256 = st.column_text(28);
  r.client_cert_subject = st.column_text(29);
  duration_column(st, 30, 31, r);
  return r;
}

std::optional<Clock::duration> SessionRow::duration() const {
  if (duration_unreadable) return std::nullopt;
  if (duration_us) return std::chrono::duration_cast<Clock::duration>(*duration_us);
  if (!ended || started_unreadable || ended_unreadable) return std::nullopt;
  return time_between(started, *ended);
}

const std::string_view kEventColumns =
    "at, direction, phase, kind, verb, reply_code, enhanced_status, bytes, wire_size, redacted, "
    "note, mail_transaction, file_offset, file_length";

Status Reader::Impl::event_from(const Statement& r, int first, std::int64_t session_id,
                                smtp::Event& ev, bool read_body_file) {
  ev.time = time_or_epoch(r.column_text(first));
  // Unknown enum text (a newer writer) keeps the defaults.
  parse(r.column_text(first + 1), ev.direction);
  parse(r.column_text(first + 2), ev.phase);
  parse(r.column_text(first + 3), ev.kind);
  ev.verb = r.column_text(first + 4);
  ev.reply_code = static_cast<int>(r.column_int(first + 5));
  ev.enhanced_status = r.column_text(first + 6);
  ev.bytes = r.column_blob(first + 7);
  ev.wire_size = static_cast<std::size_t>(r.column_int(first + 8));
  ev.redacted = r.column_int(first + 9) != 0;
  ev.note = r.column_text(first + 10);
  ev.transaction = static_cast<std::uint64_t>(r.column_int(first + 11));
  if (r.is_null(first + 12) || !read_body_file) return {};
  return bodies->read(session_id, r.column_int(first + 12), r.column_int(first + 13), ev.bytes);
}

std::string message_columns(bool leave_long_body) {
  const std::string body =
      leave_long_body
          ? "CASE WHEN length(body) <= " + std::to_string(kInlineBodyOctets) + " THEN body END"
          : "body";
  return "id, seq, mail_from, size, sha256, " + body +
         ", body_truncated, via_bdat, final_code, final_reply, started_at, finished_at, "
         "mail_transaction, recipients_left_out, accepted_recipients_left_out" +
         (leave_long_body ? ", length(body)" : "");
}

void message_from(const Statement& r, int first, MessageRow& m, bool leave_long_body) {
  if (leave_long_body && r.is_null(first + 5) && r.column_int(first + 15) > 0)
    m.body_left_in_row = r.column_int(first + 15);
  m.id = r.column_int(first);
  m.seq = static_cast<std::uint64_t>(r.column_int(first + 1));
  smtp::Message& msg = m.message;
  msg.mail_from = r.column_text(first + 2);
  msg.size = static_cast<std::uint64_t>(r.column_int(first + 3));
  msg.sha256_hex = r.column_text(first + 4);
  msg.body = r.column_blob(first + 5);
  msg.body_truncated = r.column_int(first + 6) != 0;
  msg.via_bdat = r.column_int(first + 7) != 0;
  msg.final_code = static_cast<int>(r.column_int(first + 8));
  msg.final_reply = r.column_text(first + 9);
  msg.started = time_column(r, first + 10, "started_at", m.unreadable);
  msg.finished = time_column(r, first + 11, "finished_at", m.unreadable);
  msg.transaction = static_cast<std::uint64_t>(r.column_int(first + 12));
  msg.recipients_left_out.reset();  // NULL: not known (schema.md, messages)
  if (!r.is_null(first + 13)) {
    msg.recipients_left_out =
        smtp::RecipientsLeftOut{static_cast<std::uint64_t>(r.column_int(first + 13)),
                                static_cast<std::uint64_t>(r.column_int(first + 14))};
  }
}

bool InlineBodyBudget::keeps(std::uint64_t transaction, bool in_file, std::int64_t length) {
  auto found = std::find_if(used_.rbegin(), used_.rend(),
                            [transaction](const auto& u) { return u.first == transaction; });
  auto it = found == used_.rend() ? used_.insert(used_.end(), {transaction, 0}) : found.base() - 1;
  if (it->second < 0) return false;
  if (in_file || it->second + length > static_cast<std::int64_t>(kInlineBodyOctets)) {
    it->second = -1;
    return false;
  }
  it->second += length;
  return true;
}

std::string body_event_kinds_sql() {
  return "('" + std::string(to_string(smtp::EventKind::data)) + "', '" +
         std::string(to_string(smtp::EventKind::bdat_chunk)) + "')";
}

std::string bytes_past_inline_left_sql() {
  return "CASE WHEN kind NOT IN " + body_event_kinds_sql() +
         " OR length(bytes) <= " + std::to_string(kInlineBodyOctets) +
         " THEN bytes END, id, length(bytes)";
}

// Since schema v4 a body is stored once, as the body events of its transaction.
static void attach_bodies(SessionDetail& d) {
  for (MessageRow& m : d.messages) {
    if (m.message.transaction == 0) continue;  // recorded before v4: the body is in the row
    smtp::MessageBodyAssembler body(m.message.via_bdat);
    for (const EventRow& e : d.events) {
      if (smtp::is_body_of(e.event, m.message)) body.append(e.event.bytes);
    }
    m.message.body = body.take();
  }
}

Status Reader::Impl::load_certificates(std::int64_t id, SessionDetail& d) {
  return rows_for(
      // Since schema v7 the DER is stored once, in certificate_ders.
      "SELECT c.position, CASE WHEN length(c.der) > 0 THEN c.der ELSE "
      "(SELECT d.der FROM certificate_ders d WHERE d.sha256 = c.sha256) END, c.sha256, "
      "c.subject, c.issuer, c.not_before, c.not_after "
      "FROM certificates c WHERE c.session_id = ?1 ORDER BY c.position",
      id, [&](const Statement& r) {
        CertificateRow c;
        c.position = static_cast<std::size_t>(r.column_int(0));
        c.certificate.der = r.column_blob(1);
        c.certificate.sha256_hex = r.column_text(2);
        c.certificate.subject = r.column_text(3);
        c.certificate.issuer = r.column_text(4);
        c.certificate.not_before = r.column_text(5);
        c.certificate.not_after = r.column_text(6);
        d.certificates.push_back(std::move(c));
      });
}

namespace {

// kEventColumns with no body event's `bytes` longer than kInlineBodyOctets loaded, then the
// row's id and its bytes' length (bytes_past_inline_left_sql).
std::string event_columns_past_inline_left() {
  std::string columns(kEventColumns);
  const std::string_view bytes = "bytes,";
  const std::string sql = bytes_past_inline_left_sql();
  columns.replace(columns.find(bytes), bytes.size(), sql.substr(0, sql.find(" END") + 4) + ",");
  return columns + sql.substr(sql.find(" END") + 4);
}

bool is_body_event(const smtp::Event& e) {
  return e.kind == smtp::EventKind::data || e.kind == smtp::EventKind::bdat_chunk;
}

// An event read with the columns of event_columns_past_inline_left(), after seq: a body
// event's octets past what `budget` keeps left in its row (BodyOctets::leave_past_inline).
EventRow left_body_event(Reader::Impl& impl, const Statement& r, std::int64_t id,
                         InlineBodyBudget& budget, Status& status) {
  constexpr int kFileOffset = 13;
  constexpr int kRowId = 15;
  EventRow e;
  e.seq = static_cast<std::uint64_t>(r.column_int(0));
  smtp::Event& ev = e.event;
  status = impl.event_from(r, 1, id, ev, /*read_body_file=*/false);
  const bool in_file = !r.is_null(kFileOffset);
  if (in_file) {
    e.file_offset = r.column_int(kFileOffset);
    e.file_length = r.column_int(kFileOffset + 1);
  }
  const std::int64_t length = r.column_int(kRowId + 1);
  if (is_body_event(ev) && !budget.keeps(ev.transaction, in_file, length) && !in_file &&
      length > 0) {
    ev.bytes.clear();  // at most kInlineBodyOctets were loaded
    e.row_id = r.column_int(kRowId);
    e.file_offset = 0;
    e.file_length = length;
  }
  return e;
}

}  // namespace

Status Reader::Impl::load_events(std::int64_t id, SessionDetail& d, Reader::BodyOctets octets,
                                 std::string_view only) {
  if (octets == Reader::BodyOctets::leave_past_inline)
    return load_events_past_inline_left(id, d, only);
  const bool leave_in_file = octets == Reader::BodyOctets::leave_in_file;
  constexpr int kFileOffset = 13;  // 1 + kEventColumns' file_offset
  return rows_for("SELECT seq, " + std::string(kEventColumns) +
                      " FROM events WHERE session_id = ?1" + std::string(only) + " ORDER BY seq",
                  id, [&](const Statement& r) {
                    EventRow e;
                    e.seq = static_cast<std::uint64_t>(r.column_int(0));
                    const bool in_file = leave_in_file && !r.is_null(kFileOffset);
                    if (in_file) {
                      e.file_offset = r.column_int(kFileOffset);
                      e.file_length = r.column_int(kFileOffset + 1);
                    }
                    Status s = event_from(r, 1, id, e.event, /*read_body_file=*/!in_file);
                    d.events.push_back(std::move(e));
                    return s;
                  });
}

Status Reader::Impl::load_events_past_inline_left(std::int64_t id, SessionDetail& d,
                                                  std::string_view only) {
  InlineBodyBudget budget;
  return rows_for("SELECT seq, " + event_columns_past_inline_left() +
                      " FROM events WHERE session_id = ?1" + std::string(only) + " ORDER BY seq",
                  id, [&](const Statement& r) {
                    Status s;
                    d.events.push_back(left_body_event(*this, r, id, budget, s));
                    return s;
                  });
}

Status Reader::Impl::load_messages(std::int64_t id, SessionDetail& d, bool leave_long_body) {
  if (Status s = rows_for("SELECT " + message_columns(leave_long_body) +
                              " FROM messages WHERE session_id = ?1 ORDER BY seq",
                          id,
                          [&](const Statement& r) {
                            MessageRow m;
                            message_from(r, 0, m, leave_long_body);
                            d.messages.push_back(std::move(m));
                          });
      !s.ok()) {
    return s;
  }
  if (d.messages.empty()) return {};
  return load_recipients(id, d);
}

Status Reader::Impl::load_recipients(std::int64_t id, SessionDetail& d) {
  // Both ordered by the message's seq: one pass hands each recipient to its message.
  auto message = d.messages.begin();
  return rows_for(
      "SELECT r.message_id, r.command, r.reply_code, r.reply, r.position "
      "FROM recipients r JOIN messages m ON m.id = r.message_id "
      "WHERE m.session_id = ?1 ORDER BY m.seq, r.position",
      id, [&](const Statement& r) {
        const std::int64_t message_id = r.column_int(0);
        while (message != d.messages.end() && message->id != message_id) ++message;
        if (message == d.messages.end()) return;
        smtp::Recipient rc;
        rc.command = r.column_text(1);
        rc.reply_code = static_cast<int>(r.column_int(2));
        rc.reply = r.column_text(3);
        rc.position = static_cast<std::uint64_t>(r.column_int(4));
        message->message.recipients.push_back(std::move(rc));
      });
}

Status Reader::Impl::count_events_left(std::int64_t id, SessionDetail& d, bool bodies) {
  d.events_left.emplace();
  d.events_left->bodies = bodies;
  return rows_for(
      "SELECT count(*), coalesce(max(seq), 0), "
      "(SELECT started_at FROM sessions WHERE id = ?1), count(file_offset) FROM events "
      "WHERE session_id = ?1" +
          (bodies ? std::string() : " AND kind NOT IN " + body_event_kinds_sql()),
      id, [&](const Statement& r) {
        d.events_left->count = r.column_int(0);
        d.events_left->last_seq = static_cast<std::uint64_t>(r.column_int(1));
        d.events_left->started_at = r.column_text(2);
        d.events_left->in_body_file = bodies && r.column_int(3) > 0;
      });
}

Status Reader::Impl::count_messages_left(std::int64_t id, SessionDetail& d) {
  d.messages_left.emplace();
  return rows_for(
      "SELECT count(*), coalesce(max(seq), 0), (SELECT started_at FROM sessions WHERE id = ?1) "
      "FROM messages WHERE session_id = ?1",
      id, [&](const Statement& r) {
        d.messages_left->count = r.column_int(0);
        d.messages_left->last_seq = static_cast<std::uint64_t>(r.column_int(1));
        d.messages_left->started_at = r.column_text(2);
      });
}

Status Reader::Impl::load(std::int64_t id, std::optional<SessionDetail>& out,
                          Reader::BodyOctets octets, Reader::EventRows events) {
  SessionDetail d;
  bool found = false;
  if (Status s =
          rows_for("SELECT " + std::string(kSessionColumns) + " FROM sessions WHERE id = ?1", id,
                   [&](const Statement& r) {
                     d.session = session_from(r);
                     found = true;
                   });
      !s.ok()) {
    return s;
  }
  if (!found) return {};
  if (Status s = load_certificates(id, d); !s.ok()) return s;
  if (events == Reader::EventRows::none) {
    if (Status s = count_events_left(id, d, /*bodies=*/true); !s.ok()) return s;
    if (Status s = count_messages_left(id, d); !s.ok()) return s;
    out = std::move(d);
    return {};
  }
  const bool bodies_only = events == Reader::EventRows::bodies_only;
  const std::string only = bodies_only ? " AND kind IN " + body_event_kinds_sql() : "";
  if (Status s = load_events(id, d, octets, only); !s.ok()) return s;
  if (bodies_only) {
    if (Status s = count_events_left(id, d, /*bodies=*/false); !s.ok()) return s;
  }
  if (Status s = load_messages(id, d, octets != Reader::BodyOctets::read); !s.ok()) return s;
  if (octets == Reader::BodyOctets::read) attach_bodies(d);
  out = std::move(d);
  return {};
}

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::~Reader() = default;

std::unique_ptr<Reader> Reader::open(const std::string& path, std::string& error, Use use) {
  error.clear();
  auto impl = std::make_unique<Impl>();
  OpenOptions oo;
  oo.mode = OpenMode::read_only;
  oo.allow_immutable = use == Use::one_shot;
  impl->open_options = oo;
  if (Status st = Database::open(path, oo, impl->db); !st.ok()) {
    error = st.message;
    return nullptr;
  }
  if (Status st = check_for_reading(impl->db); !st.ok()) {
    error = st.message;
    return nullptr;
  }
  impl->bodies = std::make_unique<BodyFileReader>(path);
  // For searches: an event's bytes wherever they are stored, NULL if its body file cannot
  // supply them (a search skips what it cannot read; `load` reports it).
  if (Status st = impl->db.define_blob_function(
          "mailtap_body_bytes", 3,
          [bodies = impl->bodies.get()](const std::int64_t* a, std::string& out) {
            return bodies->read(a[0], a[1], a[2], out).ok();
          });
      !st.ok()) {
    error = st.message;
    return nullptr;
  }
  return std::unique_ptr<Reader>(new Reader(std::move(impl)));
}

namespace {

// "upstream_to_client" etc. as an SQL list: the directions of replies the client saw.
std::string replies_to_client_sql() {
  return "'" + std::string(to_string(smtp::Direction::upstream_to_client)) + "', '" +
         std::string(to_string(smtp::Direction::mailtap_to_client)) + "'";
}

// LIKE pattern matching `text` anywhere, with LIKE's own wildcards escaped.
std::string contains_pattern(std::string_view text) {
  std::string p = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') p += '\\';
    p += c;
  }
  p += '%';
  return p;
}

// Where one batch of a list read in batches (Reader::for_each_session_summary) starts: among
// the sessions that were there when the list began (id <= max_id), after the last row of the
// batch before it (in the list's order), and at most `size` rows.
struct SummaryBatch {
  std::int64_t max_id = 0;
  std::optional<std::string> after_started_at;  // as stored; nullopt: the first batch
  std::int64_t after_id = 0;
  std::int64_t size = 0;
};

// The batch bounds as SQL: ?15 = max_id, ?16 = after_started_at, ?17 = after_id. The plain
// range on started_at lets the started_at index start the scan where the batch before ended;
// the rest skips the rows of that same instant it already had.
std::string batch_sql(const SummaryBatch* batch, bool newest_first) {
  if (batch == nullptr) return {};
  std::string sql = " AND s.id <= ?15";
  if (batch->after_started_at) {
    sql += newest_first ? " AND s.started_at <= ?16 AND (s.started_at < ?16 OR s.id < ?17)"
                        : " AND s.started_at >= ?16 AND (s.started_at > ?16 OR s.id > ?17)";
  }
  return sql;
}

std::string sessions_sql(const SessionFilter& f, std::string_view extra,
                         const SummaryBatch* batch = nullptr) {
  const std::string client_reply = "e.direction IN (" + replies_to_client_sql() + ")";
  const std::string like = " LIKE ?10 ESCAPE '\\'";
  const std::string_view later = f.newest_first ? "<" : ">";
  // Fixed placeholders with "?N IS NULL OR ..." keep one statement text for every combination
  // of the filters; the planner still uses the started_at index for the ORDER BY. The id bounds
  // of a live list's refresh are the exception: they take a range of the primary key, and the
  // ORDER BY on "+started_at" keeps the planner from scanning every session in started_at
  // order for the few new ones.
  return "SELECT " + std::string(kSessionColumns) + std::string(extra) +
         " FROM sessions s WHERE (?1 IS NULL OR started_at >= ?1)"
         " AND (?2 IS NULL OR started_at < ?2)"
         " AND (?3 IS NULL OR upstream_host = ?3)"
         " AND (?12 IS NULL OR upstream_port = ?12)"
         " AND (?4 IS NULL OR outcome = ?4)"
         " AND (?5 = 0 OR ended_at IS NULL)"
         " AND (?6 IS NULL OR auth_user = ?6)"
         " AND (?8 = 0 OR (outcome IS NOT NULL AND outcome <> '" +
         std::string(to_string(Outcome::quit)) +
         "') OR EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND "
         "e.reply_code >= 400 AND " +
         client_reply +
         "))"
         " AND (?9 IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND "
         "e.reply_code >= ?9 * 100 AND e.reply_code < ?9 * 100 + 100 AND " +
         client_reply +
         "))"
         " AND (?10 IS NULL OR client_address" +
         like + " OR upstream_host" + like + " OR coalesce(auth_user, '')" + like +
         " OR coalesce(outcome_reason, '')" + like +
         " OR EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND "
         "(CAST(CASE WHEN e.file_offset IS NULL THEN e.bytes ELSE "
         "mailtap_body_bytes(e.session_id, e.file_offset, e.file_length) END AS TEXT)" +
         like + " OR coalesce(e.note, '')" + like +
         "))"
         " OR EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id AND (m.mail_from" +
         like + " OR CAST(m.body AS TEXT)" + like +
         ")))"
         " AND (?11 IS NULL OR EXISTS (SELECT 1 FROM sessions c WHERE c.id = ?11 AND "
         "(s.started_at, s.id) " +
         std::string(later) +
         " (c.started_at, c.id)) OR (NOT EXISTS (SELECT 1 FROM sessions c WHERE c.id = ?11) "
         "AND s.id " +
         std::string(later) + " ?11))" + (f.newer_than_id ? " AND s.id > ?13" : "") +
         (f.ids.empty() ? "" : " AND s.id IN (SELECT value FROM json_each(?14))") +
         batch_sql(batch, f.newest_first) + " ORDER BY " +
         (f.newer_than_id || !f.ids.empty() ? "+" : "") + "started_at " +
         (f.newest_first ? "DESC, id DESC" : "ASC, id ASC") + " LIMIT ?7";
}

// Runs the sessions query for `f` with `extra` columns after kSessionColumns, calling `row`
// for each row; only `batch`'s rows if given.
template <typename Fn>
Status select_sessions(Reader::Impl& impl, const SessionFilter& f, std::string_view extra, Fn&& row,
                       const SummaryBatch* batch = nullptr) {
  Statement st;
  if (Status s = impl.db.prepare(sessions_sql(f, extra, batch), st); !s.ok()) return impl.noted(s);
  const std::string since = f.since ? format_timestamp(*f.since) : std::string();
  const std::string until = f.until ? format_timestamp(*f.until) : std::string();
  const std::string_view outcome = f.outcome ? to_string(*f.outcome) : std::string_view();
  const std::string pattern = f.text.empty() ? std::string() : contains_pattern(f.text);
  st.bind_text_or_null(1, since)
      .bind_text_or_null(2, until)
      .bind_text_or_null(3, f.upstream)
      .bind_text_or_null(4, outcome)
      .bind_int(5, f.only_in_progress || f.writer != SessionFilter::Writer::any ? 1 : 0)
      .bind_text_or_null(6, f.user)
      .bind_int(7, f.limit == 0 || f.writer != SessionFilter::Writer::any
                       ? -1
                       : static_cast<std::int64_t>(f.limit))
      .bind_int(8, f.only_failed ? 1 : 0)
      .bind_text_or_null(10, pattern)
      .bind_optional(11, f.after_session)
      .bind_optional(
          12, f.upstream_port ? std::optional<std::int64_t>(*f.upstream_port) : std::nullopt);
  if (f.newer_than_id) st.bind_int(13, *f.newer_than_id);  // ?13 and ?14 are there only if set
  // Bound without a copy: it lives as long as the statement runs.
  std::string ids_json;
  if (!f.ids.empty()) {
    ids_json = "[";
    for (auto id : f.ids) ids_json += (ids_json.size() > 1 ? "," : "") + std::to_string(id);
    ids_json += "]";
    st.bind_text(14, ids_json);
  }
  if (f.reply_class >= 2 && f.reply_class <= 5)
    st.bind_int(9, f.reply_class);
  else
    st.bind_null(9);
  if (batch != nullptr) {
    st.bind_int(7, batch->size).bind_int(15, batch->max_id);
    if (batch->after_started_at)
      st.bind_text(16, *batch->after_started_at).bind_int(17, batch->after_id);
  }
  return impl.each_row(st, row);
}

constexpr int kSessionColumnCount = 32;

// SessionFilter::writer, on a row the query gave (sessions without an end: few); the query
// could not apply it, nor the filter's limit with it.
bool kept_by_writer(const SessionFilter& f, const SessionRow& row) {
  return f.writer == SessionFilter::Writer::any ||
         row.writer_gone() == (f.writer == SessionFilter::Writer::gone);
}

template <typename T, typename RowOf>
void keep_by_writer(const SessionFilter& f, std::vector<T>& rows, RowOf row_of) {
  if (f.writer == SessionFilter::Writer::any) return;
  std::erase_if(rows, [&](const T& r) { return !kept_by_writer(f, row_of(r)); });
  if (f.limit != 0 && rows.size() > f.limit) rows.resize(f.limit);
}

}  // namespace

void set_upstream_filter(SessionFilter& f, std::string_view value) {
  f.upstream = std::string(value);
  f.upstream_port.reset();
  const auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == value.size()) return;
  std::string_view host = value.substr(0, colon);
  const std::string_view port = value.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);  // [::1]:25
  else if (host.find(':') != std::string_view::npos)
    return;  // a bare IPv6 address: all host
  unsigned long n = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || (n = n * 10 + static_cast<unsigned long>(c - '0')) > 65535) return;
  }
  if (host.empty() || n == 0) return;
  f.upstream = std::string(host);
  f.upstream_port = static_cast<std::uint16_t>(n);
}

bool Reader::list_sessions(const SessionFilter& f, std::vector<SessionRow>& out,
                           std::string& error) {
  error.clear();
  out.clear();
  if (Status s = select_sessions(*impl_, f, "",
                                 [&](const Statement& r) { out.push_back(session_from(r)); });
      !s.ok()) {
    error = s.message;
    return false;
  }
  keep_by_writer(f, out, [](const SessionRow& r) -> const SessionRow& { return r; });
  return true;
}

namespace {

// The columns a SessionSummary adds after kSessionColumns. Correlated subqueries on the
// (session_id, seq) index: a few index probes per session.
std::string summary_columns() {
  const std::string last_reply =
      "(SELECT {} FROM events e WHERE e.session_id = s.id AND "
      "e.reply_code IS NOT NULL AND e.direction IN (" +
      replies_to_client_sql() + ") ORDER BY e.seq DESC LIMIT 1)";
  const auto with = [&](std::string_view column) {
    std::string q = last_reply;
    q.replace(q.find("{}"), 2, column);
    return q;
  };
  return ", (SELECT count(*) FROM messages m WHERE m.session_id = s.id), " + with("e.reply_code") +
         ", " + with("e.bytes") +
         ", (SELECT count(*) FROM events e WHERE e.session_id = s.id AND "
         "e.reply_code >= 400 AND e.direction IN (" +
         replies_to_client_sql() + "))";
}

SessionSummary summary_from(const Statement& r) {
  SessionSummary sum;
  sum.session = session_from(r);
  sum.messages = r.column_int(kSessionColumnCount);
  sum.last_reply_code = static_cast<int>(r.column_int(kSessionColumnCount + 1));
  sum.last_reply = smtp::reply_summary(r.column_blob(kSessionColumnCount + 2));
  sum.failure_replies = r.column_int(kSessionColumnCount + 3);
  return sum;
}

}  // namespace

bool Reader::session_summaries(const SessionFilter& f, std::vector<SessionSummary>& out,
                               std::string& error, std::function<bool()> stop) {
  error.clear();
  out.clear();
  const bool stoppable = static_cast<bool>(stop);
  if (stoppable && stop()) {
    error = "'" + impl_->db.path() + "': stopped before it started";
    return false;
  }
  if (stoppable) impl_->db.stop_when(std::move(stop));
  const bool read = for_each_session_summary(
      f, 1,
      [&out](int, const SessionSummary& row) {
        out.push_back(row);
        return true;
      },
      error);
  if (stoppable) impl_->db.stop_when({});
  return read;
}

namespace {

// Rows in one batch of for_each_session_summary: one short read each.
constexpr std::int64_t kSummaryBatchRows = 500;

// The rows of `f`'s list in `batch`, kept by SessionFilter::writer, into `out`; `batch` then
// starts after them, and `last` says whether the list has no more rows.
Status read_summary_batch(Reader::Impl& impl, const SessionFilter& f, SummaryBatch& batch,
                          std::vector<SessionSummary>& out, bool& last) {
  out.clear();
  std::int64_t read = 0;
  // The batch's bounds are bound to the query without a copy: the next ones are kept aside
  // until it has finished.
  std::int64_t after_id = batch.after_id;
  std::optional<std::string> after_started_at = batch.after_started_at;
  Status s = select_sessions(
      impl, f, summary_columns(),
      [&](const Statement& r) {
        ++read;
        after_id = r.column_int(0);
        after_started_at = r.column_text(1);
        SessionSummary row = summary_from(r);
        if (kept_by_writer(f, row.session)) out.push_back(std::move(row));
      },
      &batch);
  batch.after_id = after_id;
  batch.after_started_at = std::move(after_started_at);
  last = read < batch.size;
  return s;
}

}  // namespace

bool Reader::for_each_session_summary(
    const SessionFilter& f, int passes,
    const std::function<bool(int pass, const SessionSummary&)>& fn, std::string& error) {
  error.clear();
  // The list is read in batches, each its own short read, and handed to `fn` between them: a
  // read held while `fn` waits (on a pager nobody reads, say) would keep a recording proxy's
  // WAL checkpoint from finishing, and the -wal file growing, all that time. Bounded by the
  // sessions there now, so that the passes see the same sessions unless one is pruned.
  SummaryBatch batch;
  Status s = impl_->rows("SELECT coalesce(max(id), 0) FROM sessions",
                         [&](const Statement& r) { batch.max_id = r.column_int(0); });
  // A limit the query can apply (no writer filter) keeps a short list to one read.
  const bool query_limits = f.limit != 0 && f.writer == SessionFilter::Writer::any;
  std::vector<SessionSummary> rows;
  bool stopped = false;
  for (int pass = 0; pass < passes && s.ok() && !stopped; ++pass) {
    batch.after_started_at.reset();
    std::size_t kept = 0;
    bool last = false;
    while (s.ok() && !last && !stopped && (f.limit == 0 || kept < f.limit)) {
      batch.size = query_limits ? std::min<std::int64_t>(kSummaryBatchRows,
                                                         static_cast<std::int64_t>(f.limit - kept))
                                : kSummaryBatchRows;
      s = read_summary_batch(*impl_, f, batch, rows, last);
      for (std::size_t i = 0; s.ok() && i < rows.size() && (f.limit == 0 || kept < f.limit);
           ++i, ++kept) {
        if (!fn(pass, rows[i])) {
          stopped = true;
          break;
        }
      }
    }
  }
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::session_summary(std::int64_t id, std::optional<SessionSummary>& out,
                             std::string& error) {
  error.clear();
  out.reset();
  if (Status s = impl_->rows_for("SELECT " + std::string(kSessionColumns) + summary_columns() +
                                     " FROM sessions s WHERE s.id = ?1",
                                 id, [&](const Statement& r) { out = summary_from(r); });
      !s.ok()) {
    error = s.message;
    return false;
  }
  return true;
}

bool Reader::change_token(ChangeToken& out, std::string& error) {
  error.clear();
  // PRAGMA data_version changes when another connection commits: the proxy, or prune.
  Status s = impl_->rows("PRAGMA data_version",
                         [&](const Statement& r) { out.data_version = r.column_int(0); });
  if (s.ok()) {
    s = impl_->rows("SELECT coalesce(max(id), 0) FROM sessions",
                    [&](const Statement& r) { out.max_session_id = r.column_int(0); });
  }
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::load_session(std::int64_t id, std::optional<SessionDetail>& out, std::string& error,
                          BodyOctets octets, EventRows events) {
  // A session must not be shown with events from one snapshot and messages from another.
  const auto load = [&](std::optional<SessionDetail>& d) {
    return impl_->load(id, d, octets, events);
  };
  if (octets == BodyOctets::read) return impl_->in_one_snapshot(out, error, load);
  // The octets left in the body file are read later, from the file the rows describe.
  if (!impl_->in_one_snapshot_with_body_file(id, out, error, load, [](const SessionDetail& d) {
        return (d.events_left && d.events_left->in_body_file) ||
               std::any_of(d.events.begin(), d.events.end(), [](const EventRow& e) {
                 return e.file_offset.has_value() && !e.row_id;
               });
      }))
    return false;
  // Events and messages left in the record may leave octets in their rows: they are read later.
  if (out && ((out->events_left && out->events_left->bodies) ||
              std::any_of(out->events.begin(), out->events.end(),
                          [](const EventRow& e) { return e.row_id.has_value(); }) ||
              std::any_of(out->messages.begin(), out->messages.end(),
                          [](const MessageRow& m) { return m.body_left_in_row.has_value(); })))
    out->row_bodies = impl_->row_body_reader();
  return true;
}

namespace {

// The condition every batch read of a session left in the record adds: the session with id ?1
// is still the one that started at ?5. As octets: a damaged started_at stored as a BLOB or a
// number is never equal to the text it was read as, and the session would seem to have lost
// its rows.
constexpr std::string_view kStillTheSession =
    " AND EXISTS (SELECT 1 FROM sessions WHERE id = ?1 AND "
    "CAST(started_at AS BLOB) = CAST(?5 AS BLOB)) ";

}  // namespace

bool Reader::session_events(std::int64_t id, const SessionEventsLeft& left, std::uint64_t after_seq,
                            std::size_t limit, std::vector<EventRow>& out, std::string& error,
                            InlineBodyBudget* budget) {
  error.clear();
  InlineBodyBudget unused;
  InlineBodyBudget& kept = budget != nullptr ? *budget : unused;
  Statement st;
  Status s = impl_->db.prepare(
      "SELECT seq, " +
          (left.bodies ? event_columns_past_inline_left() : std::string(kEventColumns)) +
          " FROM events WHERE session_id = ?1 AND seq > ?2 AND seq <= ?3" +
          (left.bodies ? std::string() : " AND kind NOT IN " + body_event_kinds_sql()) +
          std::string(kStillTheSession) + "ORDER BY seq LIMIT ?4",
      st);
  if (s.ok()) {
    st.bind_int(1, id)
        .bind_int(2, static_cast<std::int64_t>(after_seq))
        .bind_int(3, static_cast<std::int64_t>(left.last_seq))
        .bind_int(4, static_cast<std::int64_t>(limit))
        .bind_text(5, left.started_at);
    s = impl_->each_row(st, [&](const Statement& r) {
      Status read;
      if (left.bodies) {
        out.push_back(left_body_event(*impl_, r, id, kept, read));
        return read;
      }
      // Only a body's octets go to the body file: these hold their own.
      EventRow e;
      e.seq = static_cast<std::uint64_t>(r.column_int(0));
      read = impl_->event_from(r, 1, id, e.event);
      out.push_back(std::move(e));
      return read;
    });
  } else {
    s = impl_->noted(s);
  }
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::session_messages(std::int64_t id, const SessionMessagesLeft& left,
                              std::uint64_t after_seq, std::size_t limit,
                              std::vector<MessageRow>& out, std::string& error) {
  error.clear();
  const std::size_t first = out.size();
  Status s;
  if (!impl_->in_read_transaction(error, [&] {
        Statement st;
        s = impl_->db.prepare(
            "SELECT " + message_columns(/*leave_long_body=*/true) +
                " FROM messages WHERE session_id = ?1 AND seq > ?2 AND seq <= ?3" +
                std::string(kStillTheSession) + "ORDER BY seq LIMIT ?4",
            st);
        if (!s.ok()) {
          s = impl_->noted(s);
          return;
        }
        st.bind_int(1, id)
            .bind_int(2, static_cast<std::int64_t>(after_seq))
            .bind_int(3, static_cast<std::int64_t>(left.last_seq))
            .bind_int(4, static_cast<std::int64_t>(limit))
            .bind_text(5, left.started_at);
        s = impl_->each_row(st, [&](const Statement& r) {
          MessageRow m;
          message_from(r, 0, m, /*leave_long_body=*/true);
          out.push_back(std::move(m));
        });
        if (!s.ok() || out.size() == first) return;
        // The batch's recipients, by message then position, from the same snapshot.
        Statement rs;
        s = impl_->db.prepare(
            "SELECT r.message_id, r.command, r.reply_code, r.reply, r.position "
            "FROM recipients r JOIN messages m ON m.id = r.message_id "
            "WHERE m.session_id = ?1 AND m.seq >= ?2 AND m.seq <= ?3 ORDER BY m.seq, r.position",
            rs);
        if (!s.ok()) {
          s = impl_->noted(s);
          return;
        }
        rs.bind_int(1, id)
            .bind_int(2, static_cast<std::int64_t>(out[first].seq))
            .bind_int(3, static_cast<std::int64_t>(out.back().seq));
        auto message = out.begin() + static_cast<std::ptrdiff_t>(first);
        s = impl_->each_row(rs, [&](const Statement& r) {
          const std::int64_t message_id = r.column_int(0);
          while (message != out.end() && message->id != message_id) ++message;
          if (message == out.end()) return;
          smtp::Recipient rc;
          rc.command = r.column_text(1);
          rc.reply_code = static_cast<int>(r.column_int(2));
          rc.reply = r.column_text(3);
          rc.position = static_cast<std::uint64_t>(r.column_int(4));
          message->message.recipients.push_back(std::move(rc));
        });
      }))
    return false;
  if (!s.ok()) error = s.message;
  return s.ok();
}

namespace {

// The body events of transaction `transaction` of session `id` with a seq past `after_seq`, as
// load_body_pieces gives them, found by seq (the table's index) and no further than the first
// body event of a later transaction: mail_transaction is stored after the bytes, and a query
// on it alone would read every body of the session for each message.
Status load_body_pieces_from(Reader::Impl& impl, std::int64_t id, std::uint64_t transaction,
                             std::uint64_t after_seq, std::size_t limit, InlineBodyBudget& budget,
                             std::vector<StoredBodyPiece>& out) {
  Statement st;
  if (Status s = impl.db.prepare("SELECT " + bytes_past_inline_left_sql() +
                                     ", file_offset, file_length, seq, mail_transaction FROM "
                                     "events WHERE session_id = ?1 AND seq > ?2 AND kind IN " +
                                     body_event_kinds_sql() + " ORDER BY seq",
                                 st);
      !s.ok())
    return impl.noted(s);
  st.bind_int(1, id).bind_int(2, static_cast<std::int64_t>(after_seq));
  while (limit > 0) {
    const Statement::Step step = st.step();
    if (step == Statement::Step::error) {
      Status s = impl.error(st);
      st.reset();
      return impl.noted(s);
    }
    if (step == Statement::Step::done) break;
    const auto of = static_cast<std::uint64_t>(st.column_int(6));
    if (of > transaction) break;
    if (of < transaction) continue;
    StoredBodyPiece p;
    p.file_offset = st.column_optional_int(3);
    p.file_length = st.column_int(4);
    p.seq = static_cast<std::uint64_t>(st.column_int(5));
    const std::int64_t length = st.column_int(2);
    if (budget.keeps(transaction, p.file_offset.has_value(), length)) {
      p.bytes = st.column_blob(0);
    } else if (!p.file_offset && length > 0) {
      p.row_id = st.column_int(1);
      p.file_offset = 0;
      p.file_length = length;
    }
    out.push_back(std::move(p));
    --limit;
  }
  st.reset();
  return impl.noted({});
}

}  // namespace

bool Reader::message_body_pieces(std::int64_t id, const std::string& started_at,
                                 const MessageRow& m, std::uint64_t after_seq, std::size_t limit,
                                 InlineBodyBudget& budget, std::vector<StoredBodyPiece>& out,
                                 std::string& error) {
  error.clear();
  bool same_session = false;
  Status s;
  if (!impl_->in_read_transaction(error, [&] {
        Statement st;
        s = impl_->db.prepare(
            "SELECT 1 FROM sessions WHERE id = ?1 AND CAST(started_at AS BLOB) = CAST(?2 AS BLOB)",
            st);
        if (!s.ok()) {
          s = impl_->noted(s);
          return;
        }
        st.bind_int(1, id).bind_text(2, started_at);
        s = impl_->each_row(st, [&](const Statement&) { same_session = true; });
        if (s.ok() && same_session && m.message.transaction != 0)
          s = load_body_pieces_from(*impl_, id, m.message.transaction, after_seq, limit, budget,
                                    out);
      }))
    return false;
  if (s.ok() && !same_session) {
    error =
        "session " + std::to_string(id) + " was removed while it was being read (mailtap prune?)";
    return false;
  }
  if (!s.ok()) error = s.message;
  return s.ok();
}

bool Reader::in_one_snapshot(const std::function<bool()>& reads, std::string& error) {
  error.clear();
  bool ok = false;
  return impl_->in_read_transaction(error, [&] { ok = reads(); }) && ok;
}

bool Reader::fingerprint_key(FingerprintKey& key, std::string& error) {
  error.clear();
  if (Status s = read_fingerprint_key(impl_->db, key); !s.ok()) {
    error = s.message;
    return false;
  }
  return true;
}

const std::string& Reader::path() const {
  return impl_->db.path();
}

}  // namespace mailtap::storage
