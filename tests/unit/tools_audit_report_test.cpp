// `mailtap audit` over a database written by a real Recorder: what it must find in a large
// body stored in pieces (in the database, then in the session's body file), and a damaged
// record reported as damage (exit status 3) rather than an audit that could not run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/text_normaliser.hpp"
#include "storage/body_files.hpp"
#include "storage/database.hpp"
#include "storage/pruner.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "tests/unit/plain_shaped_octets_for_tests.hpp"
#include "tests/unit/reader_test_access.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/audit_report.hpp"

namespace mailtap::tools {
namespace {

namespace fs = std::filesystem;
using storage::Record;
using test_support::batch;
using test_support::TempDir;

constexpr const char* kPassword = "alice-secret-1";

// An event inside TLS holding `bytes` as they crossed, as the dialogue records one.
smtp::Event tls_event(smtp::Direction direction, smtp::EventKind kind, std::string bytes) {
  smtp::Event e;
  e.direction = direction;
  e.phase = smtp::Phase::tls;
  e.kind = kind;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = storage::Clock::now();
  return e;
}

// A DATA body piece: client to upstream, in mail transaction 1.
smtp::Event body_piece(std::string bytes) {
  smtp::Event e =
      tls_event(smtp::Direction::client_to_upstream, smtp::EventKind::data, std::move(bytes));
  e.verb = "DATA";
  e.transaction = 1;
  return e;
}

// A client's line.
smtp::Event client_line(smtp::EventKind kind, std::string bytes) {
  return tls_event(smtp::Direction::client_to_mailtap, kind, std::move(bytes));
}

// A reply to the client (the upstream's, or mailtap's own).
smtp::Event reply_line(smtp::Direction direction, int code, std::string bytes) {
  smtp::Event e =
      tls_event(direction,
                direction == smtp::Direction::mailtap_to_client ? smtp::EventKind::local_reply
                                                                : smtp::EventKind::reply,
                std::move(bytes));
  e.reply_code = code;
  return e;
}

// `n` octets of 70-column text lines.
std::string lines(std::size_t n) {
  std::string s;
  while (s.size() < n) s += std::string(68, 'q') + "\r\n";
  s.resize(n);
  return s;
}

// Session 1 of a new database at `path`: `events` in order, from event 1, each handed over on
// its own as the dialogue hands over what one read brought, then `messages` (from message 1).
void record(const std::string& path, std::vector<smtp::Event> events,
            std::vector<smtp::Message> messages = {}) {
  storage::RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = storage::Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  const storage::SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  std::uint64_t seq = 0;
  for (smtp::Event& e : events)
    batches.push_back(
        batch(storage::SessionEvent{key, ++seq, test_support::recorded(std::move(e))}));
  std::uint64_t message_seq = 0;
  for (smtp::Message& m : messages)
    batches.push_back(batch(storage::SessionMessage{key, ++message_seq, std::move(m)}));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  ASSERT_FALSE(rec->failed()) << rec->failure_reason();
}

// Session 1: a body of `pieces`, each recorded as one event, as one read is.
void record_body(const std::string& path, const std::vector<std::string>& pieces) {
  std::vector<smtp::Event> events;
  for (const std::string& p : pieces) events.push_back(body_piece(p));
  record(path, std::move(events));
}

AuditReport audit(const std::string& path, std::string password = kPassword) {
  const CredentialScanOptions scan(smtp::Secret::copy_of(password));
  AuditReport report;
  std::string error;
  EXPECT_TRUE(build_audit_report(path, scan, 30, report, error)) << error;
  return report;
}

std::string leaks_of(const AuditReport& r) {
  std::string out;
  for (const AuditLeak& l : r.leaks)
    out += "session " + std::to_string(l.session) + ", " + l.where + ": " + l.what + "\n";
  return out;
}

// Past the first 64 KiB a body lives in the body file, in pieces of one read: a password can
// be cut in two by the end of a read, and each piece alone holds half of it.
TEST(ToolsAuditReport, APasswordCutByTheEndOfAStoredPieceIsFound) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string second = lines(48 * 1024);
  second.replace(second.size() - 9, 9, "alice-sec");
  std::string third = lines(48 * 1024);
  third.replace(0, 5, "ret-1");
  record_body(path, {lines(48 * 1024), second, third, lines(48 * 1024)});
  const AuditReport r = audit(path);
  const std::string expected = "session 1, event 2 bytes at offset " +
                               std::to_string(48 * 1024 - 9) +
                               ", on into event 3: the --password-env password, in clear\n";
  EXPECT_EQ(leaks_of(r), expected);
  EXPECT_TRUE(r.problems());
}

TEST(ToolsAuditReport, APasswordInsideOnePieceIsReportedOnce) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string second = lines(48 * 1024);
  second.replace(1000, 14, kPassword);
  record_body(path, {lines(48 * 1024), second, lines(48 * 1024)});
  EXPECT_EQ(leaks_of(audit(path)),
            "session 1, event 2 bytes at offset 1000: the --password-env password, in clear\n");
}

// A run of base64 cut by the end of a read is judged whole, with the piece that ends it: its
// first 8 characters ("\0bob\0s") have the shape of a PLAIN message, the run they begin is no
// base64 at all (10 characters), so there is nothing to report.
TEST(ToolsAuditReport, ABase64RunCutByTheEndOfAPieceIsJudgedWhole) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::string first = lines(48 * 1024) + "token AGJvYgBz";
  record_body(path, {first, "pw and more\r\n" + lines(1000)});
  EXPECT_EQ(leaks_of(audit(path)), "");
}

// A body that ends inside a run of base64 (a BDAT chunk, a body cut short) has it judged when
// the body ends: at the next transaction's body, or the end of the session.
TEST(ToolsAuditReport, ABlobThatEndsABodyIsFound) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::string blob = smtp::base64_encode(std::string("\0bob\0s3cret", 11));
  smtp::Event second_body = body_piece("text\r\n" + blob);
  second_body.transaction = 2;
  record(path, {body_piece("text\r\n"), body_piece(blob), second_body,
                client_line(smtp::EventKind::command, "QUIT\r\n")});
  EXPECT_EQ(leaks_of(audit(path)),
            "session 1, event 2 bytes at offset 0: base64 SASL PLAIN blob (user \"bob\")\n"
            "session 1, event 3 bytes at offset 6: base64 SASL PLAIN blob (user \"bob\")\n");
}

// `body` as the dialogue records it: one event a read, `read` octets each.
std::vector<std::string> reads_of(std::string_view body, std::size_t read) {
  std::vector<std::string> pieces;
  for (std::size_t i = 0; i < body.size(); i += read) pieces.emplace_back(body.substr(i, read));
  return pieces;
}

// Attachments whose lines decode to what looks like a PLAIN message: random octets with two NULs
// (a photo, a ZIP), and strings between NULs (a program, a message catalogue). No leak, wherever
// the reads cut the lines.
TEST(ToolsAuditReport, AttachmentsAreNoLeakedPlainBlobs) {
  std::string random;
  for (const std::string& line : mailtap::testing::random_lines_of_plain_shape(4)) random += line;
  for (const std::string& octets : {random, mailtap::testing::string_table(300 * 1024)}) {
    TempDir dir;
    const std::string path = dir.file("m.db");
    record_body(path,
                reads_of(mailtap::testing::attachment_body(octets) + ".\r\n", 48 * 1024 + 13));
    const AuditReport r = audit(path);
    EXPECT_EQ(leaks_of(r), "");
    EXPECT_FALSE(r.problems());
  }
}

// A PLAIN blob on a line of its own in a body is still one, also where a read began just before
// it (the line before it, which says it is no line of an attachment, is in the event before).
TEST(ToolsAuditReport, APlainBlobOnALineOfItsOwnInABodyIsFound) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  const std::string first = lines(48 * 1024) + "\r\nmy login, in case you need it:\r\n";
  const std::string blob = smtp::base64_encode(std::string("\0alice\0pässwörd", 17));
  record_body(path, {first, blob + "\r\n" + lines(1000), ".\r\n"});
  EXPECT_EQ(leaks_of(audit(path)),
            "session 1, event 2 bytes at offset 0: base64 SASL PLAIN blob (user \"alice\")\n");
}

// An AUTH LOGIN that mailtap refused, then its user name and password pasted behind it and
// stored as sent (as before the fix to the greet-again gate): the audit finds both, with no
// --password-env to go by, and nothing once a verb has ended the exchange.
TEST(ToolsAuditReport, Base64LinesStoredAsSentAfterARefusedAuthAreLeaks) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  using smtp::EventKind;
  ASSERT_NO_FATAL_FAILURE(record(path, {client_line(EventKind::auth, "AUTH LOGIN\r\n"),
                                        client_line(EventKind::command, "YWxpY2U=\r\n"),
                                        client_line(EventKind::command, "YWxpY2Utc2VjcmV0LTE=\r\n"),
                                        client_line(EventKind::command, "NOOP\r\n"),
                                        client_line(EventKind::command, "aGVsbG8gd29ybGQ=\r\n")}));
  const std::string what =
      ": base64 line after an AUTH line recorded without redaction (a SASL response, such as an "
      "AUTH LOGIN password)\n";
  EXPECT_EQ(leaks_of(audit(path, "")),
            "session 1, event 2 bytes" + what + "session 1, event 3 bytes" + what);
}

// A mailtap before the dialogue redacted a pasted blob stored it as a command as sent: in the
// URL-safe alphabet or without its padding too, as the dialogue now reads such a word
// (smtp::find_credential_words). Audit lists each as a leak, as it does the standard form.
TEST(ToolsAuditReport, UrlSafeAndUnpaddedBlobsInOldRecordsAreLeaks) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  using namespace std::string_literals;
  // "\0alice\0p>?~" encodes with "+" and "/": "AGFsaWNlAHA+P34=".
  const std::string blob = smtp::base64_encode("\0alice\0p>?~"s);
  ASSERT_NE(blob.find_first_of("+/"), std::string::npos);
  std::string url = blob;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  const std::string xoauth2 =
      smtp::base64_encode("user=a@b\x01"s + "auth=Bearer ya29.tok-secret\x01\x01");
  std::string url_xoauth2 = xoauth2.substr(0, xoauth2.find('='));
  using smtp::EventKind;
  ASSERT_NO_FATAL_FAILURE(record(
      path, {client_line(EventKind::command, url + "\r\n"),
             client_line(EventKind::command, "  " + url.substr(0, url.find('=')) + " junk\r\n"),
             client_line(EventKind::command, blob.substr(0, blob.find('=')) + "\r\n"),
             client_line(EventKind::command, url_xoauth2 + "\r\n"),
             client_line(EventKind::command, blob + "\r\n")}));
  const std::string plain = ": base64 SASL PLAIN blob (user \"alice\")\n";
  EXPECT_EQ(leaks_of(audit(path, "")),
            "session 1, event 1 bytes at offset 0" + plain +
                "session 1, event 2 bytes at offset 2" + plain +
                "session 1, event 3 bytes at offset 0" + plain +
                "session 1, event 4 bytes at offset 0: base64 XOAUTH2/OAUTHBEARER blob with a "
                "bearer token\n"
                "session 1, event 5 bytes at offset 0" +
                plain);
}

// The dialogue redacts a line without a verb only behind an AUTH that was refused: behind one
// that succeeded (the first reply after it but a 334 is a 2yz) it is a stray line, stored as
// sent, and no leak. Refused by the upstream (after a 334) or by mailtap, it is one.
TEST(ToolsAuditReport, ABase64LineIsALeakOnlyBehindARefusedAuth) {
  using smtp::Direction;
  using smtp::EventKind;
  using Replies = std::vector<std::pair<Direction, std::pair<int, std::string>>>;
  const auto scenario = [](Replies replies) { return replies; };
  const std::vector<std::tuple<std::string, Replies, bool>> cases = {
      {"235 to AUTH PLAIN", scenario({{Direction::upstream_to_client, {235, "235 2.7.0 ok\r\n"}}}),
       false},
      {"334 then 235",
       scenario({{Direction::upstream_to_client, {334, "334 \r\n"}},
                 {Direction::upstream_to_client, {235, "235 2.7.0 ok\r\n"}}}),
       false},
      {"535 to AUTH PLAIN",
       scenario({{Direction::upstream_to_client, {535, "535 5.7.8 bad credentials\r\n"}}}), true},
      {"334 then 535",
       scenario({{Direction::upstream_to_client, {334, "334 \r\n"}},
                 {Direction::upstream_to_client, {535, "535 5.7.8 no\r\n"}}}),
       true},
      {"refused by mailtap",
       scenario({{Direction::mailtap_to_client, {503, "503 5.5.1 mailtap: no\r\n"}}}), true},
  };
  for (const auto& [what, replies, leak] : cases) {
    SCOPED_TRACE(what);
    TempDir dir;
    const std::string path = dir.file("m.db");
    std::vector<smtp::Event> events = {client_line(EventKind::auth, "AUTH PLAIN <redacted>\r\n")};
    for (const auto& [d, reply] : replies)
      events.push_back(reply_line(d, reply.first, reply.second));
    const std::uint64_t stray = events.size() + 1;  // events are numbered from 1
    events.push_back(client_line(EventKind::command, "YWJjZA==\r\n"));
    ASSERT_NO_FATAL_FAILURE(record(path, std::move(events)));
    const AuditReport r = audit(path, "");
    EXPECT_EQ(leaks_of(r), leak ? "session 1, event " + std::to_string(stray) +
                                      " bytes: base64 line after an AUTH line recorded without "
                                      "redaction (a SASL response, such as an AUTH LOGIN "
                                      "password)\n"
                                : std::string{});
    EXPECT_EQ(r.problems(), leak);
  }
}

// mailtap restating the server's refusal to the client (its own AUTH failed, the client's MAIL
// gets the reason) is one refusal by the server, not two: mailtap's own replies are counted apart.
TEST(ToolsAuditReport, MailtapsOwnFailureRepliesAreCountedApartFromTheServers) {
  using smtp::Direction;
  TempDir dir;
  const std::string path = dir.file("m.db");
  ASSERT_NO_FATAL_FAILURE(
      record(path, {reply_line(Direction::upstream_to_mailtap, 535, "535 5.7.8 bad token\r\n"),
                    reply_line(Direction::upstream_to_mailtap, 535, "535 5.7.8 bad token\r\n"),
                    reply_line(Direction::mailtap_to_client, 535,
                               "535 5.7.8 mailtap: up refused AUTH XOAUTH2 as alice\r\n")}));
  // The reply lines carry no parsed enhanced status: the code alone groups them here.
  const AuditReport r = audit(path, "");
  ASSERT_EQ(r.failures.size(), 2u);
  EXPECT_EQ(r.failures[0].count, 2);
  EXPECT_FALSE(r.failures[0].by_mailtap);
  EXPECT_EQ(r.failures[1].count, 1);
  EXPECT_TRUE(r.failures[1].by_mailtap);
  EXPECT_NE(audit_report_json(r).find("\"by_mailtap\":true"), std::string::npos);
}

// Beside a recording proxy: sessions committed between the audit's reads (here after every
// one) must not make its totals disagree, as when the header counted 1523 sessions, the
// outcomes 1526 and the TLS table 1527. Each total side by side describes one state.
TEST(ToolsAuditReport, TotalsDescribeOneStateWhileSessionsAreRecorded) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  ASSERT_NO_FATAL_FAILURE(record(path, {client_line(smtp::EventKind::command, "QUIT\r\n")}));
  storage::RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = storage::Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  auto reader = storage::Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  int recorded = 0;
  storage::ReaderTestAccess::after_each_read(*reader, [&] {
    if (++recorded > 20) return;
    const storage::SessionKey key = rec->new_session_key();
    // submit() returns once a batch with the session's end is committed.
    test_support::record_batches(
        *rec, {batch(test_support::session_opened(key), test_support::session_closed(key))});
  });
  AuditReport r;
  ASSERT_TRUE(build_audit_report(*reader, CredentialScanOptions{}, 30, r, error)) << error;
  storage::ReaderTestAccess::after_each_read(*reader, {});
  rec->stop();
  ASSERT_GT(recorded, 3);  // sessions were committed between the reads
  std::int64_t outcomes = 0;
  for (const auto& [name, n] : r.outcomes) outcomes += n;
  std::int64_t tls = 0;
  for (const AuditTlsLine& t : r.tls) tls += t.count;
  EXPECT_EQ(outcomes, r.sessions);
  EXPECT_EQ(tls, r.sessions);
}

std::string integrity_of(const AuditReport& r) {
  std::string out;
  for (const std::string& line : r.integrity) out += line + "\n";
  return out;
}

// A body file gone (a database copied without its -bodies directory) or cut short: the audit
// reports it, per session, and still scans everything else.
TEST(ToolsAuditReport, AMissingOrShortBodyFileIsReportedAsDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string first = lines(48 * 1024);
  first.replace(100, 14, kPassword);  // in the database itself
  record_body(path, {first, lines(48 * 1024), lines(48 * 1024)});
  const std::string file = storage::body_file(path, 1);
  ASSERT_TRUE(fs::exists(file));

  fs::resize_file(file, 1000);
  AuditReport r = audit(path);
  EXPECT_FALSE(r.integrity_ok());
  EXPECT_TRUE(r.problems());
  std::string text = integrity_of(r);
  EXPECT_NE(text.find("database file: ok (PRAGMA integrity_check)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("session 1: 2 event(s) whose body octets cannot be read ("),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(file), std::string::npos) << text;
  EXPECT_EQ(leaks_of(r),
            "session 1, event 1 bytes at offset 100: the --password-env password, in clear\n");
  EXPECT_EQ(r.sessions, 1);

  fs::remove_all(storage::body_directory(path));
  r = audit(path);
  text = integrity_of(r);
  EXPECT_NE(text.find("session 1: 2 event(s) whose body octets cannot be read (cannot open body "
                      "file"),
            std::string::npos)
      << text;
  EXPECT_EQ(r.leaks.size(), 1u);
}

// `mailtap prune` beside the audit (soak-F1), on session 1 of `path` (a body of three 48 KiB
// pieces): the events scan reads its rows, its body file is gone when the scan comes to it, and
// prune has deleted the session by the time the totals are read. Driven between audit's reads:
// after the integrity check the file is moved aside (as prune's set-aside name does), after the
// events scan it is put back, a real prune deletes the session and its file, and then
// `after_prune` runs.
AuditReport audit_while_pruned(const std::string& path, const std::function<void()>& after_prune) {
  const std::string file = storage::body_file(path, 1);
  const std::string aside = storage::body_directory(path) + "/.pruned-1";
  EXPECT_TRUE(fs::exists(file));
  std::string error;
  auto reader = storage::Reader::open(path, error);
  EXPECT_NE(reader, nullptr) << error;
  if (reader == nullptr) return {};
  int reads = 0;
  std::size_t pruned = 0;
  storage::ReaderTestAccess::after_each_read(*reader, [&] {
    ++reads;
    if (reads == 1) fs::rename(file, aside);  // after the integrity check
    if (reads != 2) return;                   // after the events scan
    fs::rename(aside, file);
    storage::PruneCriteria all;
    all.keep = 0;
    storage::PruneResult result;
    std::string prune_error;
    EXPECT_TRUE(storage::prune_sessions(path, all, result, prune_error)) << prune_error;
    pruned = result.sessions.size();
    if (after_prune) after_prune();
  });
  AuditReport r;
  EXPECT_TRUE(build_audit_report(*reader, CredentialScanOptions{}, 30, r, error)) << error;
  storage::ReaderTestAccess::after_each_read(*reader, {});
  EXPECT_EQ(pruned, 1u);
  return r;
}

// That is no damage: the session is named as removed while audit ran, not counted, and the
// header (0 sessions) and the list agree.
TEST(ToolsAuditReport, ASessionPrunedWhileAuditRunsIsNoDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_body(path, {lines(48 * 1024), lines(48 * 1024), lines(48 * 1024)});
  const AuditReport r = audit_while_pruned(path, {});
  EXPECT_FALSE(fs::exists(storage::body_file(path, 1)));
  EXPECT_TRUE(r.integrity_ok()) << integrity_of(r);
  EXPECT_FALSE(r.problems());
  EXPECT_EQ(r.sessions, 0);
  EXPECT_EQ(r.removed_while_auditing, std::vector<std::int64_t>{1});
  const std::string json = audit_report_json(r);
  EXPECT_NE(json.find("\"ok\":true"), std::string::npos) << json;
  EXPECT_NE(json.find("\"removed_while_auditing\":[1]"), std::string::npos) << json;
}

// As above, and a session recorded after the prune is given the freed id 1 (INTEGER PRIMARY KEY
// without AUTOINCREMENT) before the totals are read: still no damage, the pruned session named
// as removed, the new one (whose body is whole) counted. Told apart by their started_at.
TEST(ToolsAuditReport, ASessionPrunedWhileAuditRunsIsNoDamageWhenItsIdIsReused) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_body(path, {lines(48 * 1024), lines(48 * 1024), lines(48 * 1024)});
  const AuditReport r = audit_while_pruned(path, [&] { record_body(path, {lines(1024)}); });
  EXPECT_TRUE(r.integrity_ok()) << integrity_of(r);
  EXPECT_FALSE(r.problems());
  EXPECT_EQ(r.sessions, 1);
  EXPECT_EQ(r.removed_while_auditing, std::vector<std::int64_t>{1});
}

// A session's or a message's time column that holds no timestamp (a hand edit, a damaged page
// SQLite cannot tell from a good one) is damage too: named, with what it holds.
TEST(ToolsAuditReport, ATimeThatIsNoTimestampIsReportedAsDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  smtp::Message m;
  m.mail_from = "MAIL FROM:<a@example.org>\r\n";
  record(path, {client_line(smtp::EventKind::command, "NOOP\r\n")}, {m});
  ASSERT_TRUE(audit(path).integrity_ok());
  {
    storage::Database db;
    ASSERT_TRUE(
        storage::Database::open(path, storage::OpenOptions{storage::OpenMode::read_write}, db)
            .ok());
    ASSERT_TRUE(db.exec("UPDATE sessions SET ended_at = 'when pigs fly'").ok());
    ASSERT_TRUE(db.exec("UPDATE messages SET finished_at = '0'").ok());
  }
  const AuditReport r = audit(path);
  EXPECT_FALSE(r.integrity_ok());
  EXPECT_TRUE(r.problems());
  const std::string text = integrity_of(r);
  EXPECT_NE(text.find("database file: ok (PRAGMA integrity_check)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("session 1: ended_at holds \"when pigs fly\", not a timestamp\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("session 1 message 1: finished_at holds \"0\", not a timestamp\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(r.sessions, 1);
}

// Overwrites the root page of `table` with garbage.
void spoil_root_page(const std::string& path, const char* table) {
  std::int64_t root = 0, page_size = 0;
  {
    storage::Database db;
    ASSERT_TRUE(
        storage::Database::open(path, storage::OpenOptions{storage::OpenMode::read_only}, db).ok());
    ASSERT_TRUE(
        db.query_int("SELECT rootpage FROM sqlite_schema WHERE name = '" + std::string(table) + "'",
                     root)
            .ok());
    ASSERT_TRUE(db.query_int("PRAGMA page_size", page_size).ok());
  }
  ASSERT_GT(root, 1);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp((root - 1) * page_size);
  const std::string garbage(static_cast<std::size_t>(page_size), '\xa5');
  f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}

// Malformed pages where the events are: the audit says so and reports the rest.
TEST(ToolsAuditReport, MalformedPagesAreReportedAsDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::vector<std::string> pieces;
  for (int i = 0; i < 40; ++i) pieces.push_back(lines(4000));  // events over many pages
  record_body(path, pieces);
  spoil_root_page(path, "events");
  const AuditReport r = audit(path);
  EXPECT_TRUE(r.problems());
  EXPECT_FALSE(r.integrity_ok());
  const std::string text = integrity_of(r);
  EXPECT_NE(text.find("events could not be read to the end: "), std::string::npos) << text;
  EXPECT_NE(text.find("malformed"), std::string::npos) << text;
  EXPECT_EQ(r.sessions, 1);  // the sessions table is intact: still summarised
  // The events were not read to the end: what the scans of them found is no "none".
  EXPECT_FALSE(r.read("events"));
  EXPECT_TRUE(r.read("sessions"));
  const std::string json = audit_report_json(r);
  const auto unread = json.find("\"unread\":[");
  ASSERT_NE(unread, std::string::npos) << json;
  EXPECT_NE(json.substr(unread, json.find(']', unread) - unread).find("\"events\""),
            std::string::npos)
      << json;
  // Each problem integrity_check names is a line of its own (SQLite joins some with LFs).
  for (const std::string& line : r.integrity) EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

// Only the sessions table damaged: list_sessions is the one read that fails, after reads that
// succeeded; its own failure (malformed) is what decides, so it is damage, not a failed audit.
TEST(ToolsAuditReport, DamageWhereOnlyTheSessionsAreIsReportedAsDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_body(path, {lines(1000)});
  spoil_root_page(path, "sessions");
  const AuditReport r = audit(path);
  EXPECT_TRUE(r.problems());
  const std::string text = integrity_of(r);
  EXPECT_NE(text.find("sessions could not be read to the end: "), std::string::npos) << text;
  EXPECT_FALSE(r.read("sessions"));  // its 0 sessions are no count
  EXPECT_TRUE(r.read("events"));
}

// Each read answers last_failure_is_damage() for itself: a damaged read, then a list_sessions
// that fails or succeeds on its own terms.
TEST(ToolsAuditReport, EachReadDecidesWhetherItsFailureIsDamage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  record_body(path, {lines(1000)});
  spoil_root_page(path, "sessions");
  std::string error;
  auto reader = storage::Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<storage::SessionRow> sessions;
  EXPECT_FALSE(reader->list_sessions({}, sessions, error));
  EXPECT_TRUE(reader->last_failure_is_damage()) << error;
  int events = 0;
  EXPECT_TRUE(
      reader->for_each_event([&](std::int64_t, const storage::EventRow&) { ++events; }, error))
      << error;
  EXPECT_EQ(events, 1);
  EXPECT_FALSE(reader->last_failure_is_damage());
}

// Item 3 lists the client's text mailtap rewrote, not the EHLO reply it filters on every
// STARTTLS or --auth-user session, nor a line --assist-auth encoded: those would bury the few
// sessions whose client sent bare line ends.
TEST(ToolsAuditReport, RewritesListOnlyTheClientsText) {
  TempDir dir;
  const std::string path = dir.file("r.db");
  smtp::Event ehlo = tls_event(smtp::Direction::mailtap_to_client, smtp::EventKind::rewrite,
                               "250-mx\r\n250 PIPELINING\r\n");
  ehlo.verb = "EHLO";
  ehlo.note = "STARTTLS and AUTH removed from the EHLO reply: mailtap holds the TLS link upstream";
  smtp::Event assisted = tls_event(smtp::Direction::mailtap_note, smtp::EventKind::rewrite, "");
  assisted.verb = "AUTH";
  assisted.note = "AUTH PLAIN: the user name and password typed in clear were base64-encoded";
  smtp::RewriteCounts counts;
  counts.bare_lf = 2;
  smtp::Event line_ends = tls_event(smtp::Direction::mailtap_note, smtp::EventKind::rewrite, "");
  line_ends.verb = "DATA";
  line_ends.note = counts.describe();
  ASSERT_NO_FATAL_FAILURE(record(path, {ehlo, assisted}, {}));
  EXPECT_TRUE(audit(path).rewrites.empty());

  TempDir dir2;
  const std::string path2 = dir2.file("r.db");
  ASSERT_NO_FATAL_FAILURE(record(path2, {ehlo, assisted, line_ends}, {}));
  const AuditReport r = audit(path2);
  ASSERT_EQ(r.rewrites.size(), 1u);
  EXPECT_EQ(r.rewrites[0].count, 1);
  EXPECT_EQ(r.rewrites[0].sample, "bare LF normalised to CRLF (2x)");
}

// A smuggling shape's offset is its message's: each is listed under the message its note names
// (numbered as `show --message` numbers it), not as one list for the whole session.
TEST(ToolsAuditReport, SmugglingShapesAreListedByMessage) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  auto shape_note = [](std::uint64_t transaction, std::string shape) {
    smtp::Event e = tls_event(smtp::Direction::mailtap_note, smtp::EventKind::rewrite, "");
    e.verb = "DATA";
    e.note = std::string(smtp::smuggling_shape_note_prefix) + shape +
             " of the message: sent as \"..\", so it does not end the message";
    e.transaction = transaction;
    return e;
  };
  auto message = [](std::uint64_t transaction) {
    smtp::Message m;
    m.mail_from = "MAIL FROM:<a@x>";
    m.transaction = transaction;
    m.final_code = 250;
    m.final_reply = "250 queued";
    return m;
  };
  // Transaction 2 was refused at MAIL, so transaction 3 is message 2; transaction 4 never ended.
  // A note naming no transaction was recorded before notes named one.
  ASSERT_NO_FATAL_FAILURE(
      record(path,
             {shape_note(1, "\\n.\\n at offset 24"), shape_note(3, "\\n.\\n at offset 39"),
              shape_note(3, "\\r.\\r at offset 50"), shape_note(4, "\\r\\n.\\n at offset 5"),
              shape_note(0, "\\n.\\r at offset 7")},
             {message(1), message(3)}));
  const AuditReport r = audit(path);
  ASSERT_EQ(r.smuggling.size(), 1u);
  EXPECT_EQ(r.smuggling[0].session, 1);
  EXPECT_EQ(r.smuggling[0].shapes,
            "message 1: \\n.\\n at offset 24; message 2: \\n.\\n at offset 39, \\r.\\r at "
            "offset 50; a message never ended (no message row): \\r\\n.\\n at offset 5; \\n.\\r "
            "at offset 7");
  const std::string json = audit_report_json(r);
  EXPECT_NE(json.find("\"smuggling_shapes\":[{\"session\":1,\"shapes\":\"message 1: "
                      "\\\\n.\\\\n at offset 24; message 2: "),
            std::string::npos)
      << json;
}

// servers-F1: a recording made before mailtap knew the server's SIZE holds a chunk that Exim
// refused at its size limit (552) and whose tail it then read as commands. audit lists such a
// chunk (its lines split across two stored pieces); an accepted chunk with the same lines, or a
// refused one with only text, is not listed.
TEST(ToolsAuditReport, ARefusedChunkHoldingCommandShapedLinesIsListed) {
  TempDir dir;
  const std::string path = dir.file("c.db");
  auto bdat_line = [](std::string bytes) {
    smtp::Event e =
        tls_event(smtp::Direction::client_to_upstream, smtp::EventKind::command, std::move(bytes));
    e.verb = "BDAT";
    return e;
  };
  auto chunk = [](std::string bytes) {
    smtp::Event e = tls_event(smtp::Direction::client_to_upstream, smtp::EventKind::bdat_chunk,
                              std::move(bytes));
    e.verb = "BDAT";
    e.transaction = 1;
    return e;
  };
  auto bdat_reply = [](int code, std::string bytes) {
    smtp::Event e = reply_line(smtp::Direction::upstream_to_client, code, std::move(bytes));
    e.verb = "BDAT";
    return e;
  };
  const std::string hidden = "RSET\r\nMAIL FROM:<ceo@x>\r\nrcpt to:<carol@y>\r\nBDAT 8 LAST\r\n";
  ASSERT_NO_FATAL_FAILURE(record(
      path, {bdat_line("BDAT 40\r\n"), chunk("Subject: ok\r\n\r\n" + hidden.substr(0, 9)),
             chunk(hidden.substr(9)), bdat_reply(250, "250 40 octets\r\n"),
             bdat_line("BDAT 20\r\n"), chunk("Subject: b\r\n\r\nbbbbbbbb\r\n"),
             bdat_reply(552, "552 too big\r\n"), bdat_line("BDAT 90 LAST\r\n"),
             chunk("Subject: b\r\n\r\nbbbb\r\n" + hidden.substr(0, 12)), chunk(hidden.substr(12)),
             bdat_reply(552, "552 Message size exceeds maximum permitted\r\n")}));
  const AuditReport r = audit(path);
  ASSERT_EQ(r.refused_chunks.size(), 1u);
  EXPECT_EQ(r.refused_chunks[0].session, 1);
  EXPECT_EQ(r.refused_chunks[0].shapes,
            "event 8: the server refused a BDAT chunk (552) that holds lines beginning BDAT, "
            "MAIL FROM, RCPT TO, RSET: a server at its size limit may have read them as commands "
            "(Exim does), and a message they sent is in no record");
  EXPECT_NE(audit_report_json(r).find("\"refused_chunks_with_commands\":[{\"session\":1,"),
            std::string::npos);
}

// As export writes the record: text that is not UTF-8 is base64 beside "<name>_encoding",
// never U+FFFD; an array (integrity) is base64 throughout when one line is not UTF-8.
TEST(ToolsAuditReport, JsonKeepsTextThatIsNotUtf8AsBase64) {
  AuditReport r;
  r.integrity = {"database file: ok (PRAGMA integrity_check)",
                 "session 1: 2 event(s) whose body octets cannot be read (/db\xff-bodies/1)"};
  r.verify_failures = {{5, "certificate for caf\xe9 is self-signed"}};
  r.failures = {{"mx.example.test", 550, "5.1.1", 1, 1}};
  const std::string json = audit_report_json(r);
  EXPECT_EQ(json.find("\\ufffd"), std::string::npos) << json;
  EXPECT_NE(
      json.find("\"integrity\":[\"ZGF0YWJhc2UgZmlsZTogb2sgKFBSQUdNQSBpbnRlZ3JpdHlfY2hlY2sp\","),
      std::string::npos)
      << json;
  EXPECT_NE(json.find("],\"integrity_encoding\":\"base64\","), std::string::npos) << json;
  EXPECT_NE(json.find("\"verify_result\":\"Y2VydGlmaWNhdGUgZm9yIGNhZukgaXMgc2VsZi1zaWduZWQ=\","
                      "\"verify_result_encoding\":\"base64\""),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"upstream\":\"mx.example.test\",\"reply_code\":550"), std::string::npos)
      << json;
}

}  // namespace
}  // namespace mailtap::tools
