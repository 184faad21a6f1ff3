// The split-read harness for Dialogue tests: every scenario is a script of client bytes,
// upstream bytes, EOFs and tokens, run whole, one byte at a time, and split into two reads at
// every position; every way must give the same bytes on both wires, events, messages and
// state. Shared by dialogue_test.cpp and dialogue_auth_test.cpp.
#pragma once

#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/message_body.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/command.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/reply_of.hpp"
#include "tests/unit/upstream_text.hpp"

namespace mailtap::smtp::testing {

using namespace std::string_literals;

enum class Side {
  client,
  upstream,
  client_eof,
  upstream_eof,
  token,
  cached_token,
  token_error,
  client_tls_up,
  client_tls_failed,
  client_tls_cut_by_shutdown
};
struct Step {
  Side side;
  std::string bytes;
};
inline Step client(std::string s) {
  return {Side::client, std::move(s)};
}
inline Step upstream(std::string s) {
  return {Side::upstream, std::move(s)};
}
inline Step client_eof() {
  return {Side::client_eof, {}};
}
// The upstream connection ended; `tls_reason` as the session gives it for a TLS alert.
inline Step upstream_eof(std::string tls_reason = {}) {
  return {Side::upstream_eof, std::move(tls_reason)};
}
// The session hands the dialogue the access token it asked for (or the token command failed).
inline Step token(std::string value) {
  return {Side::token, std::move(value)};
}
// A token from the provider's cache, fetched for an earlier session.
inline Step cached_token(std::string value) {
  return {Side::cached_token, std::move(value)};
}
inline Step token_error(std::string error) {
  return {Side::token_error, std::move(error)};
}
// The session's server-side handshake with the client ended (--local-tls starttls).
inline Step client_tls_up(std::string description = "TLSv1.3 TLS_AES_128_GCM_SHA256") {
  return {Side::client_tls_up, std::move(description)};
}
inline Step client_tls_failed(std::string reason) {
  return {Side::client_tls_failed, std::move(reason)};
}
inline Step client_tls_cut_by_shutdown() {
  return {Side::client_tls_cut_by_shutdown, {}};
}
using Script = std::vector<Step>;
using Splitter = std::function<std::vector<std::string_view>(std::string_view)>;

inline const std::string greeting = "220 up.example ESMTP\r\n";
inline const std::string ehlo = "EHLO client.example\r\n";
inline const std::string ehlo_reply =
    "250-up.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
inline const std::string ehlo_reply_filtered =
    "250-up.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
inline const std::string ehlo_reply_chunking =
    "250-up.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n";

inline DialogueOptions test_options() {
  DialogueOptions o;
  o.phase = Phase::tls;
  o.upstream_label = "up.example:587";
  o.starttls_refusal = "STARTTLS is not needed";
  o.tls_on_plain_port_advice = "connect without TLS, or run mailtap with --local-tls implicit";
  return o;
}

using test_support::reply_of;

inline std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

inline bool is_body_event(const Event& e) {
  return e.kind == EventKind::data || e.kind == EventKind::bdat_chunk;
}

struct Result {
  std::vector<Event> events;
  std::vector<UnrecordedBody> unrecorded_bodies;
  std::vector<Message> messages;
  std::string to_upstream;  // everything, greeting excluded
  std::string to_client;    // everything after the greeting
  std::vector<std::string> upstream_per_step;
  std::vector<std::string> client_per_step;
  std::vector<bool> in_data_per_step;
  std::vector<bool> wants_input_per_step;
  std::vector<bool> awaiting_reply_per_step;
  std::vector<int> token_needed_per_step;
  std::vector<bool> client_tls_due_per_step;
  bool finished = false;
  bool abandon = false;
  std::optional<Ending> ending;
  std::string auth_user;
  std::string auth_mechanism;
  bool by_mailtap = false;
  std::uint64_t bytes_to_upstream = 0, bytes_from_upstream = 0, bytes_to_client = 0;
  std::uint64_t client_octets_discarded = 0;

  // Body events merged (their count depends on reads), DATA rewrite/long-line notes summed
  // (they are taken per read inside a body): what must not depend on the read boundaries.
  std::vector<Event> merged_events() const {
    std::vector<Event> out;
    for (const Event& e : events) {
      if ((e.kind == EventKind::rewrite && (e.verb == "DATA" || e.verb == "BDAT")) ||
          (e.kind == EventKind::note && e.verb == "DATA"))
        continue;
      if (is_body_event(e) && !out.empty() && out.back().kind == e.kind &&
          out.back().direction == e.direction) {
        out.back().bytes += e.bytes;
        out.back().wire_size += e.wire_size;
        continue;
      }
      out.push_back(e);
    }
    return out;
  }

  std::string body_notes() const {
    std::map<std::string, std::uint64_t> counts;
    for (const Event& e : events) {
      if (e.kind == EventKind::note && e.verb == "DATA") ++counts[e.note];
      if (e.kind != EventKind::rewrite || (e.verb != "DATA" && e.verb != "BDAT")) continue;
      if (e.note.rfind(smuggling_shape_note_prefix, 0) == 0) {
        ++counts[e.note];  // one note per shape, whatever the reads
        continue;
      }
      // "bare LF normalised to CRLF (2x); telnet IAC sequence removed (1x)"
      std::string_view note = e.note;
      while (!note.empty()) {
        const std::size_t end = std::min(note.find("; "), note.size());
        std::string_view part = note.substr(0, end);
        const std::size_t open = part.rfind(" (");
        counts[std::string(part.substr(0, open))] +=
            std::stoull(std::string(part.substr(open + 2, part.size() - open - 4)));
        note.remove_prefix(std::min(end + 2, note.size()));
      }
    }
    std::string s;
    for (const auto& [what, n] : counts) s += what + "=" + std::to_string(n) + ";";
    return s;
  }

  // order_across_wires=false: events are compared as a multiset. When a reply frees room
  // under max_pending_replies, the next command is forwarded between two replies of one read or
  // after both, depending on the read boundaries; the bytes on each wire are the same.
  std::string describe(bool order_across_wires = true) const {
    std::string s;
    for (std::size_t i = 0; i < upstream_per_step.size(); ++i) {
      s += "step " + std::to_string(i) + ": up=[" + printable(upstream_per_step[i]) + "] client=[" +
           printable(client_per_step[i]) + "] in_data=" + std::to_string(in_data_per_step[i]) +
           " wants=" + std::to_string(wants_input_per_step[i]) +
           " awaiting=" + std::to_string(awaiting_reply_per_step[i]) +
           " token=" + std::to_string(token_needed_per_step[i]) +
           " tls_due=" + std::to_string(client_tls_due_per_step[i]) + "\n";
    }
    std::vector<std::string> lines;
    for (const Event& e : merged_events()) {
      std::string line = std::string(to_string(e.direction)) + " " +
                         std::string(to_string(e.kind)) + " " + std::string(to_string(e.phase)) +
                         " verb=" + printable(e.verb) + " code=" + std::to_string(e.reply_code) +
                         " es=" + e.enhanced_status + " [" + printable(e.bytes) +
                         "] ws=" + std::to_string(e.wire_size) +
                         " red=" + std::to_string(e.redacted) + " note=" + printable(e.note) + "\n";
      lines.push_back(std::move(line));
    }
    if (!order_across_wires) std::sort(lines.begin(), lines.end());
    for (const std::string& line : lines) s += line;
    s += "body notes: " + body_notes() + "\n";
    // Past --max-body: what the recorder hashes, however the reads cut it.
    std::map<std::uint64_t, std::string> unrecorded;
    for (const UnrecordedBody& b : unrecorded_bodies) unrecorded[b.transaction] += b.wire;
    for (const auto& [transaction, wire] : unrecorded)
      s += "unrecorded t=" + std::to_string(transaction) + " [" + printable(wire) + "]\n";
    for (const Message& m : messages) {
      s += "message from=" + printable(m.mail_from) + " rcpts=";
      for (const Recipient& r : m.recipients)
        s += printable(r.command) + "/" + std::to_string(r.reply_code) + "/" + printable(r.reply) +
             ",";
      s += " body=[" + printable(m.body) + "] size=" + std::to_string(m.size) +
           " trunc=" + std::to_string(m.body_truncated) + " sha=" + m.sha256_hex +
           " bdat=" + std::to_string(m.via_bdat) + " final=" + std::to_string(m.final_code) + " " +
           printable(m.final_reply) + "\n";
    }
    s += "finished=" + std::to_string(finished) + " abandon=" + std::to_string(abandon);
    if (ending)
      s += " ending=" + std::to_string(static_cast<int>(ending->kind)) + " " + ending->reason;
    s += " user=" + auth_user + " mech=" + auth_mechanism +
         " by_mailtap=" + std::to_string(by_mailtap) +
         " bytes=" + std::to_string(bytes_to_upstream) + "/" + std::to_string(bytes_from_upstream) +
         "/" + std::to_string(bytes_to_client);
    return s;
  }
};

inline std::vector<std::string_view> whole(std::string_view s) {
  return {s};
}

inline Result run(const Script& script, const Splitter& split, const DialogueOptions& options) {
  Result r;
  std::vector<RecordedEvent> recorded;
  Dialogue d(options, recorded, r.messages);
  d.relay_greeting(reply_of(greeting), Phase::tls);
  EXPECT_EQ(d.take_to_client(), greeting);
  for (const Step& step : script) {
    switch (step.side) {
      case Side::client:
        for (std::string_view piece : split(step.bytes)) d.client_bytes(piece);
        break;
      case Side::upstream:
        for (std::string_view piece : split(step.bytes)) d.upstream_bytes(piece);
        break;
      case Side::client_eof:
        d.client_closed();
        break;
      case Side::upstream_eof:
        d.upstream_closed(step.bytes);
        break;
      case Side::token:
        d.provide_token(Secret::copy_of(step.bytes), /*fresh=*/true);
        break;
      case Side::cached_token:
        d.provide_token(Secret::copy_of(step.bytes), /*fresh=*/false);
        break;
      case Side::token_error:
        d.token_unavailable(step.bytes);
        break;
      case Side::client_tls_up:
        d.client_tls_started(step.bytes);
        break;
      case Side::client_tls_failed:
        d.client_tls_failed(step.bytes);
        break;
      case Side::client_tls_cut_by_shutdown:
        d.client_tls_cut_by_shutdown();
        break;
    }
    for (UnrecordedBody& b : d.take_unrecorded_bodies())
      r.unrecorded_bodies.push_back(std::move(b));
    r.upstream_per_step.push_back(upstream_text(d.take_to_upstream()));
    r.client_per_step.push_back(d.take_to_client());
    r.to_upstream += r.upstream_per_step.back();
    r.to_client += r.client_per_step.back();
    r.in_data_per_step.push_back(d.in_data());
    r.wants_input_per_step.push_back(d.wants_client_input());
    r.awaiting_reply_per_step.push_back(d.awaiting_reply());
    r.token_needed_per_step.push_back(static_cast<int>(d.token_needed()));
    r.client_tls_due_per_step.push_back(d.client_tls_due());
  }
  r.events = test_support::plain_events(recorded);
  r.finished = d.finished();
  r.abandon = d.abandon_upstream();
  r.ending = d.ending();
  r.auth_user = d.auth_user();
  r.auth_mechanism = d.auth_mechanism();
  r.by_mailtap = d.authenticated_by_mailtap();
  r.bytes_to_upstream = d.bytes_to_upstream();
  r.bytes_from_upstream = d.bytes_from_upstream();
  r.bytes_to_client = d.bytes_to_client();
  r.client_octets_discarded = d.client_octets_discarded();

  // Byte accounting: what the events say crossed each wire is what the counters say.
  std::uint64_t relayed_up = 0, relayed_down = 0;
  for (const Event& e : r.events) {
    if (e.direction == Direction::client_to_upstream) relayed_up += e.wire_size;
    if (e.direction == Direction::upstream_to_client) relayed_down += e.wire_size;
  }
  EXPECT_EQ(relayed_up, r.bytes_to_upstream);
  EXPECT_EQ(relayed_down, r.bytes_from_upstream);
  // Bodies are recorded once, in their events; read them back as the storage reader does.
  for (Message& m : r.messages) {
    EXPECT_TRUE(m.body.empty());
    m.body = body_from_events(m, r.events);
  }
  EXPECT_EQ(r.bytes_to_client, greeting.size() + r.to_client.size());
  return r;
}

// Runs the script whole, byte by byte, and split at every `stride`-th position; all must agree.
inline Result run_all_splits(const Script& script, const DialogueOptions& options = test_options(),
                             std::size_t stride = 1, bool order_across_wires = true) {
  const Result reference = run(script, whole, options);
  const std::string expected = reference.describe(order_across_wires);
  auto bytewise = [](std::string_view s) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < s.size(); ++i) out.push_back(s.substr(i, 1));
    return out;
  };
  EXPECT_EQ(run(script, bytewise, options).describe(order_across_wires), expected)
      << "one byte at a time";
  std::size_t longest = 0;
  for (const Step& s : script) longest = std::max(longest, s.bytes.size());
  for (std::size_t p = 1; p < longest; p += stride) {
    auto at = [p](std::string_view s) {
      if (p >= s.size()) return std::vector<std::string_view>{s};
      return std::vector<std::string_view>{s.substr(0, p), s.substr(p)};
    };
    const std::string got = run(script, at, options).describe(order_across_wires);
    EXPECT_EQ(got, expected) << "split at " << p;
    if (got != expected) break;  // one failing position says enough
  }
  return reference;
}

inline bool has_bare_cr_or_lf(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

// Each recorded DATA body ends exactly at its first CRLF "." CRLF (the CRLF before the dot may be
// the DATA command's own), so mailtap ends the body where a strict server ends it.
inline void expect_bodies_end_at_first_terminator(const Result& r) {
  for (const Event& e : r.merged_events()) {
    if (e.kind != EventKind::data) continue;
    const std::string framed = "\r\n" + e.bytes;
    EXPECT_EQ(framed.find("\r\n.\r\n"), framed.size() - 5) << printable(e.bytes);
  }
}

inline void expect_secret_absent(const Result& r, std::string_view secret) {
  for (const Event& e : r.events) {
    EXPECT_EQ(e.bytes.find(secret), std::string::npos) << printable(e.bytes);
    EXPECT_EQ(e.note.find(secret), std::string::npos) << printable(e.note);
    EXPECT_EQ(e.verb.find(secret), std::string::npos) << printable(e.verb);
  }
  EXPECT_EQ(r.auth_user.find(secret), std::string::npos);
}

inline std::vector<const Event*> find_events(const Result& r, Direction d, EventKind k) {
  std::vector<const Event*> out;
  for (const Event& e : r.events)
    if (e.direction == d && e.kind == k) out.push_back(&e);
  return out;
}

}  // namespace mailtap::smtp::testing
