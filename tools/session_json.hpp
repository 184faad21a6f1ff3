// The JSON shape of the record, shared by `sessions --json`, `show --json` and `export`.
// Byte and text columns are written as a string when they are valid UTF-8, else as base64
// with a "<name>_encoding": "base64" member beside them (write_bytes_member), so every octet
// survives a round trip.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "storage/reader.hpp"
#include "storage/stored_body.hpp"
#include "tools/json_writer.hpp"

namespace mailtap::tools {

// The members of a session row (every column, and duration_ms), into the open object.
void write_session_members(JsonWriter& w, const storage::SessionRow& s);

// A row of the sessions list (`sessions --json`, `/api/sessions`): every column and
// duration_ms, then messages, last_reply_code, last_reply, failure_replies and failed.
void write_session_summary(JsonWriter& w, const storage::SessionSummary& row);

// A whole session: its columns, certificates (PEM), events and messages, as one object.
void write_session_detail(JsonWriter& w, const storage::SessionDetail& d);

// A session's events, handed to `fn` in seq order (storage::for_each_session_event, for a
// session that left some in the record); `fn` returns false to stop: true. False with `error`
// set if they could not all be read. Empty: the events `d` holds.
using EventSource = std::function<bool(const std::function<bool(const storage::EventRow&)>& fn,
                                       std::string& error)>;
// The same for a session's messages (storage::for_each_session_message).
using MessageSource = std::function<bool(const std::function<bool(const storage::MessageRow&)>& fn,
                                         std::string& error)>;

// The same, for `d` loaded with Reader::BodyOctets::leave_in_file: the octets it left in the body
// file are read by `octets` as they are written, a piece at a time, so a writer that streams
// (JsonWriter::stream_to) writes a session with a message of any size in bounded memory, the
// same JSON as the session loaded whole. False with `error` set if a body file could not supply
// its octets, and (`error` empty) once the writer's reader has gone: either way the document is
// cut short.
bool write_session_detail(JsonWriter& w, const storage::SessionDetail& d,
                          storage::SessionOctets& octets, std::string& error,
                          const EventSource& events = {}, const MessageSource& messages = {});

// What the web page shows of a session, with `d` loaded as for the above and no body file read:
// as write_session_detail but for the octets the database does not hold. An event whose octets
// are in the body file has empty `bytes` and their length as `bytes_omitted`; a message's `body`
// is what the database holds of it (its first kInlineBodyOctets), with `body_preview: true`
// when that is not all of it. The whole message is at /api/sessions/ID/messages/N/raw.
bool write_session_preview(JsonWriter& w, const storage::SessionDetail& d,
                           storage::SessionOctets& octets, std::string& error,
                           const EventSource& events = {}, const MessageSource& messages = {});

// A message's recipients_left_out and accepted_recipients_left_out (RCPTs past what its row
// keeps), both null where the record does not know them (recorded before mailtap counted them).
void write_recipients_left_out(JsonWriter& w, const smtp::Message& m);

// PEM ("-----BEGIN CERTIFICATE-----", 64-column base64) of a DER certificate, by BoringSSL's
// PEM writer; the bytes are written as recorded, not parsed.
std::string der_to_pem(std::string_view der);

}  // namespace mailtap::tools
