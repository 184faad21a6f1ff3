// sessions.duration_us (schema v11): a session's length by the proxy's steady clock, written with
// its close and read back, NULL (unknown) for the sessions a v10 file held, and the length the
// readers show: the measured one over the wall-clock span a clock step made wrong.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/schema.hpp"
#include "storage/timestamp.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"
#include "tools/json_writer.hpp"
#include "tools/session_json.hpp"

namespace mailtap::storage {
namespace {

using namespace std::chrono_literals;
using test_support::batch;
using test_support::count;
using test_support::kT0;
using test_support::TempDir;

RecorderOptions at(const std::string& path) {
  RecorderOptions o;
  o.path = path;
  return o;
}

// Session `key`, started at kT0 by the wall clock and ended at `ended` by it, measured as
// `measured` by the steady clock (nullopt: not measured).
std::vector<Record> session(SessionKey key, Clock::time_point ended,
                            std::optional<std::chrono::microseconds> measured) {
  SessionClosed closed = test_support::session_closed(key, ended);
  closed.duration = measured;
  return batch(test_support::session_opened(key, kT0), std::move(closed));
}

SessionRow read_back(const std::string& path, std::int64_t id) {
  std::string error;
  auto reader = Reader::open(path, error);
  EXPECT_NE(reader, nullptr) << error;
  std::optional<SessionSummary> sum;
  if (reader == nullptr) return {};
  EXPECT_TRUE(reader->session_summary(id, sum, error)) << error;
  return sum ? sum->session : SessionRow{};
}

TEST(StorageSessionDuration, TheMeasuredLengthIsWrittenWithTheCloseAndReadBack) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    // The wall clock was set forward an hour during session 1: it lasted 1.234567 s.
    test_support::record_batches(
        *rec, {session(1, kT0 + 1h, 1234567us), session(2, kT0 + 3s, std::nullopt)});
  }
  EXPECT_EQ(count(path, "SELECT duration_us FROM sessions WHERE id = 1"), 1234567);
  EXPECT_EQ(count(path, "SELECT duration_us IS NULL FROM sessions WHERE id = 2"), 1);
  const SessionRow one = read_back(path, 1);
  EXPECT_EQ(one.duration_us, 1234567us);
  EXPECT_EQ(one.duration(), Clock::duration(1234567us));
  const SessionRow two = read_back(path, 2);
  EXPECT_EQ(two.duration_us, std::nullopt);
  EXPECT_EQ(two.duration(), Clock::duration(3s)) << "not measured: the wall-clock span";
}

TEST(StorageSessionDuration, AVersionTenFileMigratesWithTheLengthOfItsSessionsUnknown) {
  TempDir dir;
  const std::string path = dir.file("v10.db");
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    test_support::record_batches(*rec, {session(1, kT0 + 2s, std::nullopt)});
  }
  {
    Database db;
    ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    ASSERT_TRUE(
        db.exec("ALTER TABLE sessions DROP COLUMN duration_us; PRAGMA user_version = 10;").ok());
  }
  EXPECT_EQ(Reader::open(path, error), nullptr) << "the tools wait for the proxy to migrate";
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
  }
  EXPECT_EQ(count(path, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count(path, "SELECT count(*) FROM sessions WHERE duration_us IS NULL"), 1);
  const SessionRow row = read_back(path, 1);
  EXPECT_EQ(row.duration_us, std::nullopt) << "never measured: unknown, not made up";
  EXPECT_EQ(row.duration(), Clock::duration(2s));
}

TEST(StorageSessionDuration, ADamagedValueIsUnreadableNotALength) {
  TempDir dir;
  const std::string path = dir.file("d.db");
  std::string error;
  {
    auto rec = Recorder::open(at(path), error);
    ASSERT_NE(rec, nullptr) << error;
    test_support::record_batches(*rec, {session(1, kT0 + 2s, 5s), session(2, kT0 + 2s, 5s),
                                        session(3, kT0 + 2s, 5s), session(4, kT0 + 2s, 5s)});
  }
  {
    Database db;
    ASSERT_TRUE(Database::open(path, OpenOptions{OpenMode::read_write}, db).ok());
    ASSERT_TRUE(db.exec("UPDATE sessions SET duration_us = 'soon' WHERE id = 1; "
                        "UPDATE sessions SET duration_us = 9223372036854775807 WHERE id = 2; "
                        "PRAGMA ignore_check_constraints = ON; "
                        "UPDATE sessions SET duration_us = -1 WHERE id = 3")
                    .ok());
  }
  // Unreadable, not unmeasured: no wall-clock span in its place, and said what it holds.
  const std::pair<std::int64_t, const char*> damaged[] = {
      {1, "duration_us holds text 'soon', not a count of microseconds"},
      {2,
       "duration_us holds 9223372036854775807, out of range (longer than the 292 years "
       "mailtap's clock holds)"},
      {3, "duration_us holds -1, out of range (a length is never negative)"}};
  for (const auto& [id, said] : damaged) {
    const SessionRow row = read_back(path, id);
    EXPECT_EQ(row.duration_us, std::nullopt) << id;
    EXPECT_TRUE(row.duration_unreadable) << id;
    EXPECT_EQ(row.duration(), std::nullopt) << id;
    EXPECT_EQ(row.unreadable, said);
    EXPECT_FALSE(row.started_unreadable || row.ended_unreadable) << id;
  }
  EXPECT_FALSE(read_back(path, 4).duration_unreadable);
  EXPECT_EQ(read_back(path, 4).duration(), Clock::duration(5s)) << "measured";
}

// The reader's choice, with wall times that disagree with the measured length.
TEST(StorageSessionDuration, TheMeasuredLengthWinsOverTheWallClockSpan) {
  SessionRow s;
  s.started = kT0;
  s.ended = kT0 - 5s;  // the clock was set back during the session
  s.duration_us = 2500ms;
  EXPECT_EQ(s.duration(), Clock::duration(2500ms));
  s.duration_us.reset();
  EXPECT_EQ(s.duration(), Clock::duration(-5s)) << "the span, which the tools show as ?";
  s.started_unreadable = true;
  s.unreadable = "started_at holds \"1026-05-01T10:00:00.000000Z\", out of range";
  EXPECT_EQ(s.duration(), std::nullopt) << "neither is known";
  s.duration_us = 2500ms;
  EXPECT_EQ(s.duration(), Clock::duration(2500ms)) << "measured, whatever the wall clock said";
  SessionRow running;
  running.started = kT0;
  EXPECT_EQ(running.duration(), std::nullopt);
}

// Wall times centuries apart (a damaged or hand-edited file): the span does not fit the clock's
// 64-bit nanoseconds, and is unknown rather than a wrapped value (undefined behaviour).
TEST(StorageSessionDuration, ASpanTheClockCannotHoldIsUnknown) {
  SessionRow s;
  s.started = *parse_timestamp("2250-01-01T00:00:00.000000Z");
  s.ended = *parse_timestamp("1700-01-01T00:00:00.000000Z");
  EXPECT_EQ(s.duration(), std::nullopt);
  std::swap(s.started, *s.ended);
  EXPECT_EQ(s.duration(), std::nullopt);
}

TEST(StorageSessionDuration, TheJsonGivesTheMeasuredLength) {
  SessionSummary sum;
  sum.session.id = 1;
  sum.session.started = kT0;
  sum.session.ended = kT0 + 1h;
  sum.session.outcome = Outcome::quit;
  sum.session.duration_us = 1234567us;
  tools::JsonWriter w;
  tools::write_session_summary(w, sum);
  std::string json = w.take();
  EXPECT_NE(json.find(R"("duration_us":1234567,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("duration_ms":1234,)"), std::string::npos) << json;
  sum.session.duration_us.reset();
  sum.session.started_unreadable = true;
  sum.session.unreadable = "started_at holds \"x\", not a timestamp";
  tools::JsonWriter w2;
  tools::write_session_summary(w2, sum);
  json = w2.take();
  EXPECT_NE(json.find(R"("duration_us":null,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("duration_ms":null,)"), std::string::npos) << json;
}

}  // namespace
}  // namespace mailtap::storage
