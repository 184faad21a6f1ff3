#include "tools/session_json.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "storage/timestamp.hpp"

namespace mailtap::tools {

namespace {
// Recorded text may hold any octet (a client's EHLO name, a server's reply): as
// write_bytes_member writes it, with null for an empty column.
void optional_text(JsonWriter& w, std::string_view key, std::string_view value) {
  if (value.empty())
    w.key(key).null();
  else
    write_bytes_member(w, key, value);
}

// SMTP reply codes are never 0: 0 means there was no reply.
void optional_code(JsonWriter& w, std::string_view key, int code) {
  w.key(key);
  if (code == 0)
    w.null();
  else
    w.value(code);
}

void optional_bool(JsonWriter& w, std::string_view key, std::optional<bool> value) {
  w.key(key);
  if (value)
    w.value(*value);
  else
    w.null();
}

void time_member(JsonWriter& w, std::string_view key, storage::Clock::time_point t) {
  w.key(key);
  if (t == storage::Clock::time_point{})
    w.null();
  else
    w.value(storage::format_timestamp(t));
}
}  // namespace

void write_recipients_left_out(JsonWriter& w, const smtp::Message& m) {
  if (!m.recipients_left_out) {
    w.key("recipients_left_out").null();
    w.key("accepted_recipients_left_out").null();
    return;
  }
  w.key("recipients_left_out").value(m.recipients_left_out->rcpts);
  w.key("accepted_recipients_left_out").value(m.recipients_left_out->accepted);
}

void write_session_members(JsonWriter& w, const storage::SessionRow& s) {
  w.key("id").value(s.id);
  time_member(w, "started_at", s.started);
  w.key("ended_at");
  if (s.ended && !s.ended_unreadable)
    w.value(storage::format_timestamp(*s.ended));
  else
    w.null();
  // A time column that holds no timestamp (a damaged file): which, and what it holds; its time
  // is null above, never the epoch.
  optional_text(w, "unreadable", s.unreadable);
  // Measured by the steady clock (schema v11): null while it runs and for older sessions.
  w.key("duration_us");
  if (s.duration_us)
    w.value(static_cast<std::int64_t>(s.duration_us->count()));
  else
    w.null();
  // The length the tools show (SessionRow::duration): measured, else the wall-clock span
  // (negative when the clock was set back); null while it runs or when neither is readable.
  w.key("duration_ms");
  if (const auto length = s.duration())
    w.value(static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(*length).count()));
  else
    w.null();
  write_bytes_member(w, "client_address", s.client_address);
  write_bytes_member(w, "listen_address", s.listen_address);
  optional_text(w, "client_tls_version", s.client_tls_version);
  write_bytes_member(w, "upstream_host", s.upstream_host);
  w.key("upstream_port").value(static_cast<std::int64_t>(s.upstream_port));
  optional_text(w, "resolved_address", s.resolved_address);
  w.key("tls_mode").value(storage::to_string(s.tls_mode));
  write_bytes_member(w, "ehlo_name", s.ehlo_name);
  optional_text(w, "tls_version", s.tls_version);
  optional_bool(w, "tls_resumed", s.tls_resumed);
  optional_text(w, "cipher", s.cipher);
  optional_text(w, "sni", s.sni);
  optional_text(w, "verified_name", s.verified_name);
  w.key("verify_status");
  if (s.verify_status)
    w.value(storage::to_string(*s.verify_status));
  else
    w.null();
  optional_text(w, "verify_reason", s.verify_reason);
  // The status and reason as one line, as show prints it (and as older versions stored it).
  optional_text(w, "verify_result", smtp::verification_text(s.verify_status, s.verify_reason));
  optional_text(w, "client_cert_sha256", s.client_cert_sha256);
  optional_text(w, "client_cert_subject", s.client_cert_subject);
  w.key("insecure").value(s.insecure);
  w.key("outcome");
  if (s.outcome)
    w.value(storage::to_string(*s.outcome));
  else
    w.null();
  optional_text(w, "outcome_reason", s.outcome_reason);
  // No end, and the process recording it is gone (true) or runs (false); null when nobody can
  // tell (recorded before schema v8, or by a process in another pid namespace).
  w.key("writer_gone");
  if (s.ended || s.record != storage::RecordState::unknown)
    w.value(s.writer_gone());
  else
    w.null();
  w.key("bytes_client_to_upstream").value(s.bytes_client_to_upstream);
  w.key("bytes_upstream_to_client").value(s.bytes_upstream_to_client);
  optional_text(w, "auth_user", s.auth_user);
  optional_text(w, "auth_mechanism", s.auth_mechanism);
  w.key("auth_by");
  if (s.auth_by)
    w.value(storage::to_string(*s.auth_by));
  else
    w.null();
  w.key("replay_of");
  if (s.replay_of)
    w.value(*s.replay_of);
  else
    w.null();
}

void write_session_summary(JsonWriter& w, const storage::SessionSummary& row) {
  const storage::SessionRow& s = row.session;
  w.begin_object();
  write_session_members(w, s);
  w.key("messages").value(row.messages);
  optional_code(w, "last_reply_code", row.last_reply_code);
  write_bytes_member(w, "last_reply", row.last_reply);
  w.key("failure_replies").value(row.failure_replies);
  const bool ended_badly = s.outcome && *s.outcome != storage::Outcome::quit;
  w.key("failed").value(ended_badly || row.failure_replies > 0);
  w.end_object();
}

std::string der_to_pem(std::string_view der) {
  // BoringSSL's PEM writer, the one PEM_write_bio_X509 ends in, given the recorded bytes as
  // they are: the record keeps what the server sent, so nothing is parsed and re-encoded.
  const bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  const std::uint8_t* pem = nullptr;
  std::size_t pem_size = 0;
  if (!bio ||
      PEM_write_bio(bio.get(), PEM_STRING_X509, "",
                    reinterpret_cast<const std::uint8_t*>(der.data()),
                    static_cast<long>(der.size())) <= 0 ||
      !BIO_mem_contents(bio.get(), &pem, &pem_size))
    return {};
  return std::string(reinterpret_cast<const char*>(pem), pem_size);
}

namespace {

// Writes the "bytes" member(s) of an event, or the "body" of a message; false with `error` set
// if its octets could not be read.
using EventBytesWriter =
    std::function<bool(JsonWriter&, const storage::EventRow&, std::string& error)>;
using BodyWriter = std::function<bool(JsonWriter&, const storage::MessageRow&, std::string& error)>;

void write_certificates(JsonWriter& w, const storage::SessionDetail& d) {
  w.key("certificates").begin_array();
  for (const auto& c : d.certificates) {
    w.begin_object();
    w.key("position").value(static_cast<std::uint64_t>(c.position));
    w.key("sha256").value(c.certificate.sha256_hex);
    write_bytes_member(w, "subject", c.certificate.subject);
    write_bytes_member(w, "issuer", c.certificate.issuer);
    w.key("not_before").value(c.certificate.not_before);
    w.key("not_after").value(c.certificate.not_after);
    w.key("pem").value(der_to_pem(c.certificate.der));
    w.end_object();
  }
  w.end_array();
}

bool write_event(JsonWriter& w, const storage::EventRow& row, const EventBytesWriter& bytes,
                 std::string& error) {
  const auto& e = row.event;
  w.begin_object();
  w.key("seq").value(row.seq);
  time_member(w, "at", e.time);
  w.key("direction").value(smtp::to_string(e.direction));
  w.key("phase").value(smtp::to_string(e.phase));
  w.key("kind").value(smtp::to_string(e.kind));
  optional_text(w, "verb", e.verb);
  optional_code(w, "reply_code", e.reply_code);
  optional_text(w, "enhanced_status", e.enhanced_status);
  if (!bytes(w, row, error)) return false;
  w.key("wire_size").value(static_cast<std::uint64_t>(e.wire_size));
  w.key("redacted").value(e.redacted);
  optional_text(w, "note", e.note);
  // Which message's text a body event, or a note on it, is: the transcripts join a message's
  // text and place notes by it (smtp::BodyTextJoin), and so does the web page.
  w.key("mail_transaction");
  if (e.transaction == 0)
    w.null();
  else
    w.value(e.transaction);
  w.end_object();
  return true;
}

bool write_message(JsonWriter& w, const storage::MessageRow& row, const BodyWriter& body,
                   std::string& error) {
  const auto& m = row.message;
  w.begin_object();
  w.key("id").value(row.id);
  w.key("seq").value(row.seq);
  write_bytes_member(w, "mail_from", m.mail_from);
  w.key("recipients").begin_array();
  for (const auto& r : m.recipients) {
    w.begin_object();
    w.key("position").value(r.position);
    write_bytes_member(w, "command", r.command);
    optional_code(w, "reply_code", r.reply_code);
    optional_text(w, "reply", r.reply);
    w.end_object();
  }
  w.end_array();
  write_recipients_left_out(w, m);
  w.key("size").value(m.size);
  optional_text(w, "sha256", m.sha256_hex);
  if (!body(w, row, error)) return false;
  w.key("body_truncated").value(m.body_truncated);
  w.key("via_bdat").value(m.via_bdat);
  optional_code(w, "final_code", m.final_code);
  optional_text(w, "final_reply", m.final_reply);
  time_member(w, "started_at", m.started);
  time_member(w, "finished_at", m.finished);
  optional_text(w, "unreadable", row.unreadable);
  w.end_object();
  return true;
}

// The one shape of a whole session, whatever holds its octets. Stops, false with `error` set,
// at the first octets that could not be read, and once `w`'s reader has gone (error empty).
bool write_detail(JsonWriter& w, const storage::SessionDetail& d, const EventSource& events,
                  const MessageSource& messages, const EventBytesWriter& bytes,
                  const BodyWriter& body, std::string& error) {
  error.clear();
  w.begin_object();
  write_session_members(w, d.session);
  write_certificates(w, d);
  w.key("events").begin_array();
  bool written = true;
  const auto write = [&](const storage::EventRow& row) {
    written = write_event(w, row, bytes, error) && w.sink_open();
    return written;
  };
  if (events) {
    if (!events(write, error) || !written) return false;
  } else {
    for (const auto& row : d.events)
      if (!write(row)) return false;
  }
  w.end_array();
  w.key("messages").begin_array();
  const auto write_one = [&](const storage::MessageRow& row) {
    written = write_message(w, row, body, error) && w.sink_open();
    return written;
  };
  if (messages) {
    if (!messages(write_one, error) || !written) return false;
  } else {
    for (const auto& row : d.messages)
      if (!write_one(row)) return false;
  }
  w.end_array();
  w.end_object();
  return w.sink_open();
}

}  // namespace

void write_session_detail(JsonWriter& w, const storage::SessionDetail& d) {
  std::string error;
  write_detail(
      w, d, {}, {},
      [](JsonWriter& jw, const storage::EventRow& row, std::string&) {
        write_bytes_member(jw, "bytes", row.event.bytes);
        return true;
      },
      [](JsonWriter& jw, const storage::MessageRow& row, std::string&) {
        write_bytes_member(jw, "body", row.message.body);
        return true;
      },
      error);
}

bool write_session_detail(JsonWriter& w, const storage::SessionDetail& d,
                          storage::SessionOctets& octets, std::string& error,
                          const EventSource& events, const MessageSource& messages) {
  return write_detail(
      w, d, events, messages,
      [&octets](JsonWriter& jw, const storage::EventRow& row, std::string& e) {
        if (!row.file_offset) {
          write_bytes_member(jw, "bytes", row.event.bytes);
          return true;
        }
        return write_bytes_member(
            jw, "bytes",
            [&](const Emit& emit, std::string& why) { return octets.event_bytes(row, emit, why); },
            e);
      },
      [&octets](JsonWriter& jw, const storage::MessageRow& row, std::string& e) {
        return write_bytes_member(
            jw, "body",
            [&](const Emit& emit, std::string& why) { return octets.message_body(row, emit, why); },
            e);
      },
      error);
}

bool write_session_preview(JsonWriter& w, const storage::SessionDetail& d,
                           storage::SessionOctets& octets, std::string& error,
                           const EventSource& events, const MessageSource& messages) {
  return write_detail(
      w, d, events, messages,
      [](JsonWriter& jw, const storage::EventRow& row, std::string&) {
        write_bytes_member(jw, "bytes", row.event.bytes);
        if (row.file_offset) jw.key("bytes_omitted").value(row.file_length);
        return true;
      },
      [&octets](JsonWriter& jw, const storage::MessageRow& row, std::string& e) {
        std::string preview;  // at most the database's kInlineBodyOctets of the body
        bool complete = true;
        if (!octets.message_body_preview(
                row,
                [&preview](std::string_view piece) {
                  preview.append(piece);
                  return true;
                },
                complete, e))
          return false;
        write_bytes_member(jw, "body", preview);
        if (!complete) jw.key("body_preview").value(true);
        return true;
      },
      error);
}

}  // namespace mailtap::tools
