// `mailtap audit` over a database written by a real Recorder: what it must find in a large
// body stored in pieces (in the database, then in the session's body file).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/recorder.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/audit_report.hpp"

namespace mailtap::tools {
namespace {

using storage::Record;
using test_support::batch;
using test_support::TempDir;

constexpr const char* kPassword = "alice-secret-1";

// A DATA body piece as the dialogue records it: client to upstream, in mail transaction 1.
storage::SessionEvent body_piece(storage::SessionKey key, std::uint64_t seq, std::string bytes) {
  storage::SessionEvent r{key, seq, test_support::recorded()};
  auto& e = test_support::edit(r.event);
  e.direction = smtp::Direction::client_to_upstream;
  e.phase = smtp::Phase::tls;
  e.kind = smtp::EventKind::data;
  e.verb = "DATA";
  e.transaction = 1;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = storage::Clock::now();
  return r;
}

// `n` octets of 70-column text lines.
std::string lines(std::size_t n) {
  std::string s;
  while (s.size() < n) s += std::string(68, 'q') + "\r\n";
  s.resize(n);
  return s;
}

// Session 1: a body of `pieces` (each recorded as one event, as one read is).
void record(const std::string& path, const std::vector<std::string>& pieces) {
  storage::RecorderOptions o;
  o.path = path;
  std::string error;
  auto rec = storage::Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  const storage::SessionKey key = rec->new_session_key();
  std::vector<std::vector<Record>> batches;
  batches.push_back(batch(test_support::session_opened(key)));
  std::uint64_t seq = 0;
  for (const std::string& p : pieces) batches.push_back(batch(body_piece(key, ++seq, p)));
  batches.push_back(batch(test_support::session_closed(key)));
  test_support::record_batches(*rec, std::move(batches));
  rec->stop();
  ASSERT_FALSE(rec->failed()) << rec->failure_reason();
}

AuditReport audit(const std::string& path, std::string password = kPassword) {
  CredentialScanOptions scan;
  scan.known_password = std::move(password);
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
  record(path, {lines(48 * 1024), second, third, lines(48 * 1024)});
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
  record(path, {lines(48 * 1024), second, lines(48 * 1024)});
  EXPECT_EQ(leaks_of(audit(path)),
            "session 1, event 2 bytes at offset 1000: the --password-env password, in clear\n");
}

}  // namespace
}  // namespace mailtap::tools
