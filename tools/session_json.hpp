// The JSON shape of the record, shared by `sessions --json`, `show --json` and `export`.
// Byte and text columns are written as a string when they are valid UTF-8, else as base64
// with a "<name>_encoding": "base64" member beside them (write_bytes_member), so every octet
// survives a round trip.
#pragma once

#include <string>
#include <string_view>

#include "storage/reader.hpp"
#include "tools/json_writer.hpp"

namespace mailtap::tools {

// The members of a session row (every column), into the open object.
void write_session_members(JsonWriter& w, const storage::SessionRow& s);

// A row of the sessions list (`sessions --json`, `/api/sessions`): every column, then
// duration_ms, messages, last_reply_code, last_reply, failure_replies and failed.
void write_session_summary(JsonWriter& w, const storage::SessionSummary& row);

// A whole session: its columns, certificates (PEM), events and messages, as one object.
void write_session_detail(JsonWriter& w, const storage::SessionDetail& d);

// PEM ("-----BEGIN CERTIFICATE-----", 64-column base64) of a DER certificate, by BoringSSL's
// PEM writer; the bytes are written as recorded, not parsed.
std::string der_to_pem(std::string_view der);

}  // namespace mailtap::tools
