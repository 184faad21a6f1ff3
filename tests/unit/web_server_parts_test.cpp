// The pieces of `mailtap web` that decide what a request gets: the Host check (DNS rebinding),
// the route table, the query string, the security headers, JSON escaping of wire bytes, the
// MIME walk of a message, and the change watcher behind the live feed.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <system_error>

#include "tools/json_writer.hpp"
#include "tools/session_json.hpp"
#include "tools/time_format.hpp"
#include "tools/web/api.hpp"
#include "tools/web/change_watcher.hpp"
#include "tools/web/charset.hpp"
#include "tools/web/host_check.hpp"
#include "tools/web/http_response.hpp"
#include "tools/web/mime.hpp"
#include "tools/web/routes.hpp"

namespace mailtap::tools::web {
namespace {

using namespace std::chrono_literals;

TEST(WebHostCheck, AcceptsLoopbackNamesAndTheListeningAddress) {
  const HostPolicy p{"127.0.0.1", 8025};
  EXPECT_TRUE(host_allowed("127.0.0.1:8025", p));
  EXPECT_TRUE(host_allowed("localhost:8025", p));
  EXPECT_TRUE(host_allowed("LOCALHOST:8025", p));
  EXPECT_TRUE(host_allowed("localhost.:8025", p));
  EXPECT_TRUE(host_allowed("localhost", p));
  EXPECT_TRUE(host_allowed("[::1]:8025", p));
  EXPECT_TRUE(host_allowed("127.0.0.2:8025", p));
}

TEST(WebHostCheck, RefusesOtherNamesPortsAndMalformedValues) {
  const HostPolicy p{"127.0.0.1", 8025};
  EXPECT_FALSE(host_allowed("evil.example:8025", p));  // DNS rebinding
  EXPECT_FALSE(host_allowed("evil.example", p));
  EXPECT_FALSE(host_allowed("localhost.evil.example:8025", p));
  EXPECT_FALSE(host_allowed("app.localhost:8025", p));
  EXPECT_FALSE(host_allowed("localhost:8026", p));
  EXPECT_FALSE(host_allowed("localhost:", p));
  EXPECT_FALSE(host_allowed("localhost:80x", p));
  EXPECT_FALSE(host_allowed("192.0.2.1:8025", p));
  EXPECT_FALSE(host_allowed("", p));
  EXPECT_FALSE(host_allowed(":8025", p));
  EXPECT_FALSE(host_allowed("::1", p));  // IPv6 must be bracketed
  EXPECT_FALSE(host_allowed("[127.0.0.1]:8025", p));
  EXPECT_FALSE(host_allowed("[::1", p));
  EXPECT_FALSE(host_allowed("local host", p));
  EXPECT_FALSE(host_allowed("localhost:99999999999", p));
}

// The address parser reads a C string: a Host with a NUL was read up to it, so
// "127.0.0.1\0evil.example" passed as 127.0.0.1 (found by fuzz_web_request). No byte of a
// host name or an address literal is a control character or a space.
TEST(WebHostCheck, RefusesAHostWithANulOrAControlCharacter) {
  const HostPolicy p{"127.0.0.1", 8025};
  using namespace std::string_view_literals;
  EXPECT_FALSE(host_allowed("127.0.0.1\0evil.example"sv, p));
  EXPECT_FALSE(host_allowed("127.0.0.1\0:8025"sv, p));
  EXPECT_FALSE(host_allowed("[::1\0evil]:8025"sv, p));
  EXPECT_FALSE(host_allowed("127.0.0.1\t"sv, p));
  EXPECT_EQ(check_request_host("http://127.0.0.1\0x:8025/"sv, {"localhost:8025"}, p),
            HostVerdict::misdirected);
}

TEST(WebHostCheck, RemoteListeningAcceptsItsOwnAddressOnly) {
  EXPECT_TRUE(host_allowed("192.0.2.1:8025", {"192.0.2.1", 8025}));
  EXPECT_FALSE(host_allowed("192.0.2.2:8025", {"192.0.2.1", 8025}));
  EXPECT_FALSE(host_allowed("mail.example:8025", {"192.0.2.1", 8025}));
  // On 0.0.0.0 any address literal may name it (a literal cannot be rebound), names still not.
  EXPECT_TRUE(host_allowed("192.0.2.2:8025", {"0.0.0.0", 8025}));
  EXPECT_FALSE(host_allowed("mail.example:8025", {"0.0.0.0", 8025}));
}

// RFC 9112 section 3.2: more than one Host is a 400, whichever comes first (the first used to
// be the only one read: a foreign second Host was served). An absolute-form target names the
// server by its authority, checked as a Host (CivetWeb used to close it unanswered).
TEST(WebHostCheck, EveryHostHeaderAndAnAbsoluteTargetsAuthorityAreChecked) {
  const HostPolicy p{"127.0.0.1", 8025};
  using V = HostVerdict;
  EXPECT_EQ(check_request_host("/api/sessions", {"127.0.0.1:8025"}, p), V::serve);
  EXPECT_EQ(check_request_host("/api/sessions", {"evil.example"}, p), V::misdirected);
  EXPECT_EQ(check_request_host("/api/sessions", {}, p), V::misdirected);
  EXPECT_EQ(check_request_host("/api/sessions", {"127.0.0.1:8025", "evil.example"}, p),
            V::bad_request);
  EXPECT_EQ(check_request_host("/api/sessions", {"evil.example", "127.0.0.1:8025"}, p),
            V::bad_request);
  EXPECT_EQ(check_request_host("/", {"localhost", "localhost"}, p), V::bad_request);

  EXPECT_EQ(check_request_host("http://127.0.0.1:8025/api/sessions", {"127.0.0.1"}, p), V::serve);
  EXPECT_EQ(check_request_host("HTTP://localhost:8025/", {}, p), V::serve);  // HTTP/1.0
  EXPECT_EQ(check_request_host("http://evil.example:8025/api/sessions", {"127.0.0.1:8025"}, p),
            V::misdirected);
  EXPECT_EQ(check_request_host("http://127.0.0.1:8025/", {"evil.example"}, p), V::misdirected);
  EXPECT_EQ(check_request_host("http://bob@127.0.0.1:8025/", {}, p), V::misdirected);
  EXPECT_EQ(check_request_host("http://127.0.0.1:8026/", {"127.0.0.1:8025"}, p), V::misdirected);
  EXPECT_EQ(check_request_host("http:///", {"127.0.0.1:8025"}, p), V::misdirected);
  EXPECT_EQ(check_request_host("http://127.0.0.1:8025/", {"127.0.0.1", "evil"}, p), V::bad_request);
}

// A target's authority without a port names its scheme's default port (RFC 9110 section 4.2),
// not this server's; a Host header without one is taken as before.
TEST(WebHostCheck, AnAbsoluteTargetWithoutAPortNamesItsSchemesPort) {
  using V = HostVerdict;
  const HostPolicy on_8025{"127.0.0.1", 8025};
  EXPECT_EQ(check_request_host("http://127.0.0.1/", {"127.0.0.1"}, on_8025), V::misdirected);
  EXPECT_EQ(check_request_host("http://localhost/api/sessions", {}, on_8025), V::misdirected);
  EXPECT_EQ(check_request_host("/", {"127.0.0.1"}, on_8025), V::serve);
  const HostPolicy on_80{"127.0.0.1", 80};
  EXPECT_EQ(check_request_host("http://127.0.0.1/", {"127.0.0.1"}, on_80), V::serve);
  EXPECT_EQ(check_request_host("https://127.0.0.1/", {"127.0.0.1"}, on_80), V::misdirected);
  EXPECT_EQ(check_request_host("https://127.0.0.1/", {}, HostPolicy{"127.0.0.1", 443}), V::serve);
}

TEST(WebRoutes, NamesEachUrl) {
  EXPECT_EQ(match_route("/").kind, RouteKind::page);
  EXPECT_EQ(match_route("/assets/app.js").kind, RouteKind::asset);
  EXPECT_EQ(match_route("/assets/app.js").asset, "app.js");
  EXPECT_EQ(match_route("/api/sessions").kind, RouteKind::sessions);
  EXPECT_EQ(match_route("/api/audit").kind, RouteKind::audit);
  EXPECT_EQ(match_route("/api/events").kind, RouteKind::events);
  Route r = match_route("/api/sessions/42");
  EXPECT_EQ(r.kind, RouteKind::session);
  EXPECT_EQ(r.session, 42);
  EXPECT_EQ(match_route("/api/sessions/42/download").kind, RouteKind::session_download);
  r = match_route("/api/sessions/42/messages/3");
  EXPECT_EQ(r.kind, RouteKind::message);
  EXPECT_EQ(r.message, 3u);
  EXPECT_EQ(match_route("/api/sessions/42/messages/3/raw").kind, RouteKind::message_raw);
  r = match_route("/api/sessions/42/messages/3/parts/0");
  EXPECT_EQ(r.kind, RouteKind::message_part);
  EXPECT_EQ(r.part, 0u);
  EXPECT_EQ(match_route("/api/sessions/42/messages/3/parts/12").part, 12u);
}

TEST(WebRoutes, AnythingElseIsNotFound) {
  for (const char* path : {"",
                           "/api",
                           "/api/",
                           "/api/sessions/",
                           "/api/sessions/0",
                           "/api/sessions/-1",
                           "/api/sessions/01",
                           "/api/sessions/1x",
                           "/api/sessions/99999999999999999999",
                           "/api/sessions/1/messages",
                           "/api/sessions/1/messages/0",
                           "/api/sessions/1/messages/1/x",
                           "/api/sessions/1/messages/1/parts/",
                           "/api/sessions/1/messages/1/parts/01",
                           "/assets/",
                           "/assets/a/b",
                           "/etc/passwd",
                           "/../",
                           "/api/audit/x",
                           "/api/sessions/1/download/x"})
    EXPECT_EQ(match_route(path).kind, RouteKind::not_found) << path;
}

TEST(WebRoutes, QueryStrings) {
  auto q = parse_query("outcome=failed&q=a%20b+c&user=&x&q2=%zz&%41=1");
  EXPECT_EQ(q["outcome"], "failed");
  EXPECT_EQ(q["q"], "a b c");
  EXPECT_EQ(q["user"], "");
  EXPECT_TRUE(q.contains("x"));
  EXPECT_EQ(q["q2"], "%zz");
  EXPECT_EQ(q["A"], "1");
  EXPECT_TRUE(parse_query("").empty());
}

TEST(WebRoutes, SessionFilters) {
  storage::SessionFilter q;
  EXPECT_EQ(
      parse_session_filters({{"outcome", "failed"}, {"reply_class", "5xx"}, {"limit", "5"}}, q),
      "");
  EXPECT_TRUE(q.only_failed);
  EXPECT_EQ(q.reply_class, 5);
  EXPECT_EQ(q.limit, 5u);
  EXPECT_NE(parse_session_filters({{"outcome", "nonsense"}}, q), "");
  // As `mailtap sessions --outcome`: a cut session (no end, its writer gone) is not in_progress.
  storage::SessionFilter cut, in_progress;
  EXPECT_EQ(parse_session_filters({{"outcome", "cut"}}, cut), "");
  EXPECT_EQ(cut.writer, storage::SessionFilter::Writer::gone);
  EXPECT_EQ(parse_session_filters({{"outcome", "in_progress"}}, in_progress), "");
  EXPECT_EQ(in_progress.writer, storage::SessionFilter::Writer::not_gone);
  EXPECT_NE(parse_session_filters({{"reply_class", "6xx"}}, q), "");
  // Refused naming every form the command line's --since takes, the +hh offset among them.
  EXPECT_EQ(parse_session_filters({{"since", "yesterday"}}, q),
            "since yesterday: expected " + std::string(kTimeSpecForms));
  EXPECT_NE(kTimeSpecForms.find("+01)"), std::string_view::npos);
  EXPECT_NE(parse_session_filters({{"limit", "0"}}, q), "");
  EXPECT_NE(parse_session_filters({{"before", "-3"}}, q), "");
  // Numbers as the command line takes them: plain decimal, no leading zero.
  EXPECT_NE(parse_session_filters({{"before", "012"}}, q), "");
  EXPECT_NE(parse_session_filters({{"limit", "05"}}, q), "");
  EXPECT_EQ(parse_session_filters({{"before", "12"}, {"limit", "1000"}}, q), "");
  // What a live list asks for: the sessions after the newest it saw, and some by id.
  storage::SessionFilter live;
  EXPECT_EQ(parse_session_filters({{"after", "0"}, {"ids", "3,12,7"}}, live), "");
  EXPECT_EQ(live.newer_than_id, 0);
  EXPECT_EQ(live.ids, (std::vector<std::int64_t>{3, 12, 7}));
  EXPECT_NE(parse_session_filters({{"after", "x"}}, q), "");
  EXPECT_NE(parse_session_filters({{"ids", "3,,4"}}, q), "");
  EXPECT_NE(parse_session_filters({{"ids", "3,"}}, q), "");
  std::string many = "1";
  for (int i = 2; i <= 1001; ++i) many += "," + std::to_string(i);
  EXPECT_NE(parse_session_filters({{"ids", many}}, q), "");
}

TEST(WebResponse, EveryResponseCarriesTheSecurityHeadersAndNoCors) {
  Response r;
  r.body = "{}";
  const std::string head = serialize_head(r);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(head.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Security-Policy: default-src 'none'; script-src 'self'"),
            std::string::npos);
  EXPECT_NE(head.find("X-Content-Type-Options: nosniff\r\n"), std::string::npos);
  EXPECT_NE(head.find("Referrer-Policy: no-referrer\r\n"), std::string::npos);
  EXPECT_NE(head.find("X-Frame-Options: DENY\r\n"), std::string::npos);
  EXPECT_EQ(head.find("Access-Control"), std::string::npos);
  EXPECT_TRUE(head.ends_with("\r\n\r\n"));

  Response part;
  part.csp = kMessagePartCsp;
  const std::string part_head = serialize_head(part, true);
  EXPECT_NE(part_head.find("Content-Security-Policy: sandbox; default-src 'none'"),
            std::string::npos);
  EXPECT_NE(part_head.find("X-Frame-Options: DENY"), std::string::npos);
  EXPECT_NE(part_head.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(part_head.find("Content-Length"), std::string::npos);

  Response e = error_response(421, "no \"such\" host");
  EXPECT_EQ(e.status, 421);
  EXPECT_EQ(e.body, "{\"error\":\"no \\\"such\\\" host\",\"status\":421}\n");
  EXPECT_EQ(serialize_head(e).rfind("HTTP/1.1 421 Misdirected Request\r\n", 0), 0u);
}

// A body passed on as it is read: the head says its length, which is not that of `body`.
TEST(WebResponse, AStreamedBodyHasItsOwnLength) {
  Response r;
  r.content_type = "message/rfc822";
  r.streamed =
      StreamedBody{64ull << 20, [](const StreamedBody::Sink&, std::string&) { return true; }};
  const std::string head = serialize_head(r);
  EXPECT_NE(head.find("Content-Length: 67108864\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Cache-Control: no-store\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
}

// What a streamed body throws midway (SQL and JSON writing allocate) ends the download short,
// said in the error the server logs, instead of escaping the thread that sends it.
TEST(WebResponse, AStreamedBodyThatThrowsEndsShortWithItsReason) {
  const auto throwing = [](auto thrown) {
    return StreamedBody{100, [thrown](const StreamedBody::Sink& sink, std::string&) -> bool {
                          sink("first piece");
                          throw thrown;
                        }};
  };
  std::string got;
  const StreamedBody::Sink sink = [&](std::string_view piece) {
    got += piece;
    return true;
  };
  std::string error;
  EXPECT_FALSE(write_streamed_body(throwing(std::bad_alloc()), sink, error));
  EXPECT_EQ(got, "first piece");
  EXPECT_EQ(error, "out of memory");
  error.clear();
  EXPECT_FALSE(write_streamed_body(
      throwing(std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                 "thread")),
      sink, error));
  EXPECT_NE(error.find("thread"), std::string::npos) << error;
}

TEST(WebResponse, AnUnreadableRequestGetsAFixedReply) {
  for (int status : {400, 413, 505}) {
    const Response r = unreadable_request_response(status);
    EXPECT_EQ(r.status, status);
    EXPECT_NE(r.body.find("\"status\":" + std::to_string(status)), std::string::npos);
    EXPECT_NE(status_text(status), "Unknown");
  }
  EXPECT_EQ(unreadable_request_response(999).status, 400);
  EXPECT_EQ(unreadable_request_response(200).status, 400);
}

// RFC 9110 section 9.1: 405 for a method the server knows and the resource does not allow,
// 501 for one it does not know; both say which it serves.
TEST(WebResponse, AKnownMethodIsNotAllowedAndAnUnknownOneNotImplemented) {
  for (const char* method : {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    const Response r = method_refusal(method);
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_NE(std::find(r.headers.begin(), r.headers.end(),
                        std::pair<std::string, std::string>("Allow", "GET, HEAD")),
              r.headers.end())
        << method;
  }
  for (const char* method : {"FOO", "PROPFIND", "M-SEARCH", "LINK", "get", "Post"}) {
    const Response r = method_refusal(method);
    EXPECT_EQ(r.status, 501) << method;
    EXPECT_EQ(status_text(501), "Not Implemented");
    EXPECT_EQ(r.body.find(method), std::string::npos) << "the method is not echoed";
  }
}

TEST(WebResponse, NoLineBreakReachesAHeader) {
  Response r;
  r.content_type = "text/html; charset=x\r\nSet-Cookie: a=b";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"a\nb\"");
  const std::string head = serialize_head(r);
  EXPECT_EQ(head.find("\r\nSet-Cookie"), std::string::npos);
  EXPECT_NE(head.find("charset=xSet-Cookie: a=b\r\n"), std::string::npos);
  EXPECT_NE(head.find("filename=\"ab\""), std::string::npos);
}

TEST(WebResponse, WireBytesAreEscapedInJson) {
  JsonWriter w;
  w.begin_object();
  write_bytes_member(w, "a", "</script><b>\"x\"\r\n\x01");
  write_bytes_member(w, "b", std::string("\xff\xfe", 2));
  w.end_object();
  const std::string json = w.take();
  EXPECT_EQ(json.find("\r"), std::string::npos);
  EXPECT_EQ(json.find('\x01'), std::string::npos);
  EXPECT_NE(json.find("\\\"x\\\""), std::string::npos);
  EXPECT_NE(json.find("\"b_encoding\":\"base64\""), std::string::npos);
}

TEST(WebMime, WalksMultipartAndUndoesTransferEncodings) {
  const std::string raw =
      "Subject: hello\r\n"
      " folded\r\n"
      "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
      "\r\n"
      "preamble\r\n"
      "--b1\r\n"
      "Content-Type: text/plain; charset=ISO-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "caf=E9 =\r\nau lait\r\n"
      "--b1\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "PGI+aGk8L2I+\r\n"
      "--b1--\r\n";
  const ParsedMessage m = parse_message(raw);
  ASSERT_EQ(m.headers.size(), 2u);
  EXPECT_EQ(m.headers[0].value, "hello folded");
  ASSERT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(m.parts[0].content_type, "text/plain");
  EXPECT_EQ(m.parts[0].charset, "iso-8859-1");
  EXPECT_EQ(m.parts[0].body, "caf\xe9 au lait");
  EXPECT_EQ(to_utf8(m.parts[0].body, m.parts[0].charset), "caf\xc3\xa9 au lait");
  EXPECT_EQ(m.parts[1].content_type, "text/html");
  EXPECT_EQ(m.parts[1].body, "<b>hi</b>");
}

// parts/K sends a part decoded from the record a chunk at a time: cut anywhere (inside a
// quoted-printable escape or soft break, a base64 group), the decoder gives what decoding the
// whole gives, and MimeBodies::located finds where each part is without decoding it.
TEST(WebMime, DecodesInPiecesAsWholeAndLocatesParts) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"quoted-printable", "caf=E9 =\r\nau lait=\nx == =4 =zz end="},
      {"quoted-printable", "=C3=A9=\r\n=\n=="},
      {"base64", "PGI+aGk8L2I+\r\nPGI+\r\naGk8L2I+=ignored after padding"},
      {"base64", "YWJj\r\nZA"},
      {"7bit", "as it is\r\n"},
  };
  for (const auto& [encoding, encoded] : cases) {
    std::string whole;
    TransferDecoder one(encoding);
    one.append(encoded, whole);
    one.finish(whole);
    EXPECT_EQ(decoded_size(encoding, encoded), whole.size());
    for (std::size_t each = 1; each <= 4; ++each) {
      std::string pieces;
      TransferDecoder d(encoding);
      for (std::size_t i = 0; i < encoded.size(); i += each)
        d.append(std::string_view(encoded).substr(i, each), pieces);
      d.finish(pieces);
      EXPECT_EQ(pieces, whole) << encoding << " in pieces of " << each << ": " << encoded;
    }
  }
  const std::string raw =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--b--\r\n";
  const ParsedMessage located = parse_message(raw, MimeBodies::located);
  ASSERT_EQ(located.parts.size(), 1u);
  EXPECT_TRUE(located.parts[0].body.empty());
  EXPECT_EQ(located.parts[0].encoded, "YWJj");
  EXPECT_EQ(located.parts[0].encoded.data(), raw.data() + raw.find("YWJj"));
  EXPECT_EQ(located.parts[0].transfer_encoding, "base64");
  EXPECT_EQ(parse_message(raw).parts[0].body, "abc");
}

// The message view's text of a part is its start: no more is decoded than that, whatever the
// part's size, and `cut` tells whether there is more.
TEST(WebMime, DecodesAPrefixNoLongerThanItsLimit) {
  bool cut = true;
  EXPECT_EQ(decoded_prefix("7bit", "short", 10, cut), "short");
  EXPECT_FALSE(cut);
  EXPECT_EQ(decoded_prefix("7bit", "exactly 10", 10, cut), "exactly 10");
  EXPECT_FALSE(cut);
  EXPECT_EQ(decoded_prefix("7bit", "eleven octs", 10, cut), "eleven oct");
  EXPECT_TRUE(cut);
  EXPECT_EQ(decoded_prefix("base64", "YWJjZGVm\r\n", 4, cut), "abcd");
  EXPECT_TRUE(cut);
  EXPECT_EQ(decoded_prefix("quoted-printable", "caf=C3=A9=\r\n", 5, cut), "caf\xc3\xa9");
  EXPECT_FALSE(cut);
  const std::string big(3 << 20, 'x');  // many slices: stops soon after the limit
  const std::string start = decoded_prefix("", big, 1 << 20, cut);
  EXPECT_EQ(start.size(), std::size_t{1} << 20);
  EXPECT_TRUE(cut);
}

TEST(WebMime, AMessageWithoutStructureIsOneTextPart) {
  const ParsedMessage m = parse_message("no headers at all, bare LF\nline 2\n");
  ASSERT_EQ(m.parts.size(), 1u);
  EXPECT_EQ(m.parts[0].content_type, "text/plain");
  EXPECT_EQ(m.parts[0].body, "no headers at all, bare LF\nline 2\n");
  const ParsedMessage unterminated =
      parse_message("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nonly part\n");
  ASSERT_EQ(unterminated.parts.size(), 1u);  // no closing delimiter: the part runs to the end
  EXPECT_EQ(unterminated.parts[0].body, "only part\n");
}

TEST(WebChangeWatcher, WakesWaitersWhenTheProbeChanges) {
  std::atomic<int> state{1};
  ChangeWatcher watcher([&] { return std::optional<std::string>(std::to_string(state.load())); },
                        5ms);
  const auto first = watcher.current();
  EXPECT_EQ(first.state, "1");

  ChangeWatcher::Snapshot unchanged;
  EXPECT_TRUE(watcher.wait_for_change(first.generation, 20ms, unchanged));
  EXPECT_EQ(unchanged.generation, first.generation);  // timed out: nothing changed

  state = 2;
  ChangeWatcher::Snapshot next;
  while (next.generation == first.generation)
    ASSERT_TRUE(watcher.wait_for_change(first.generation, 1s, next));
  EXPECT_EQ(next.state, "2");

  watcher.stop();
  ChangeWatcher::Snapshot after_stop;
  EXPECT_FALSE(watcher.wait_for_change(next.generation, 10s, after_stop));  // returns at once
}

TEST(WebChangeWatcher, AFailedProbeIsNotAChange) {
  std::atomic<bool> fail{false};
  ChangeWatcher watcher(
      [&]() -> std::optional<std::string> {
        if (fail) return std::nullopt;
        return "same";
      },
      1ms);
  fail = true;
  ChangeWatcher::Snapshot s;
  EXPECT_TRUE(watcher.wait_for_change(0, 30ms, s));
  EXPECT_EQ(s.generation, 0u);
  EXPECT_EQ(s.state, "same");
}

// A message of headers alone (no blank line): its one part's body is empty and lies inside the
// message, where the part's offset in the stored body is taken from (not a null view).
TEST(WebMime, AMessageOfHeadersAloneHasAnEmptyBodyInsideIt) {
  const std::string raw = "Subject: x\r\n";
  const ParsedMessage m = parse_message(raw, MimeBodies::located);
  ASSERT_EQ(m.parts.size(), 1u);
  EXPECT_TRUE(m.parts[0].encoded.empty());
  EXPECT_EQ(m.parts[0].encoded.data(), raw.data() + raw.size());
}

}  // namespace
}  // namespace mailtap::tools::web
