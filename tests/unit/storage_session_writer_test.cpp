// Which process records a session (sessions.writer, schema v8) and whether a reader takes a
// session without an end for running, cut or unknown.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <unistd.h>
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/schema.hpp"
#include "storage/session_writer.hpp"

namespace mailtap::storage {
namespace {

using test_support::TempDir;

const WriterIdentity kHere{"0f4c3a1e-7d1b-4d3e-9c1a-2b3c4d5e6f70", 4242, 987654,
                           "pid:[4026531836]"};

// The processes a test's /proc holds: pid -> start time.
auto processes(std::map<std::int64_t, std::uint64_t> running) {
  return [running](std::int64_t pid) -> std::optional<std::uint64_t> {
    const auto it = running.find(pid);
    if (it == running.end()) return std::nullopt;
    return it->second;
  };
}

std::string writer(std::string boot, std::int64_t pid, std::uint64_t start, std::string ns) {
  return format_writer(WriterIdentity{std::move(boot), pid, start, std::move(ns)});
}

TEST(SessionWriter, TextRoundTripsAndMalformedTextIsNoWriter) {
  EXPECT_EQ(format_writer(kHere),
            "0f4c3a1e-7d1b-4d3e-9c1a-2b3c4d5e6f70 4242 987654 pid:[4026531836]");
  EXPECT_EQ(parse_writer(format_writer(kHere)), kHere);
  for (const char* bad : {"", "x", "b 12 34", "b 12 34 ns extra", "b -1 34 ns", "b 0 34 ns",
                          "b twelve 34 ns", "b 12 3x ns", "b  12 34 ns", "b 12 34 ns "}) {
    EXPECT_EQ(parse_writer(bad), std::nullopt) << bad;
  }
}

TEST(SessionWriter, AnEndedSessionIsEndedWhateverItsWriter) {
  const auto none = processes({});
  EXPECT_EQ(judge_record(true, std::nullopt, kHere, none), RecordState::ended);
  EXPECT_EQ(judge_record(true, format_writer(kHere), kHere, none), RecordState::ended);
}

TEST(SessionWriter, ARowWithoutWriterOrWithAnUnreadableOneIsUnknown) {
  const auto all = processes({{4242, 987654}});
  EXPECT_EQ(judge_record(false, std::nullopt, kHere, all), RecordState::unknown);
  EXPECT_EQ(judge_record(false, std::string("garbage"), kHere, all), RecordState::unknown);
  // A reader that cannot tell who it is cannot compare.
  EXPECT_EQ(judge_record(false, format_writer(kHere), std::nullopt, all), RecordState::unknown);
}

TEST(SessionWriter, AWriterOfThisBootIsAliveIffItsPidRunsWithItsStartTime) {
  const std::string w = writer(kHere.boot_id, 100, 5000, kHere.pid_namespace);
  EXPECT_EQ(judge_record(false, w, kHere, processes({{100, 5000}})), RecordState::recording);
  // Killed: no such process.
  EXPECT_EQ(judge_record(false, w, kHere, processes({})), RecordState::cut);
  // Killed, and its pid reused by a process started later.
  EXPECT_EQ(judge_record(false, w, kHere, processes({{100, 9000}})), RecordState::cut);
}

TEST(SessionWriter, AWriterOfAnotherBootIsGoneWithoutLookingItUp) {
  const std::string w = writer("another-boot", 100, 5000, kHere.pid_namespace);
  EXPECT_EQ(judge_record(false, w, kHere, processes({{100, 5000}})), RecordState::cut);
  // Its namespace does not matter either: a reboot ended every process.
  EXPECT_EQ(judge_record(false, writer("another-boot", 100, 5000, "pid:[1]"), kHere,
                         processes({{100, 5000}})),
            RecordState::cut);
}

TEST(SessionWriter, AWriterInAnotherPidNamespaceIsUnknown) {
  const std::string w = writer(kHere.boot_id, 100, 5000, "pid:[4026532000]");
  EXPECT_EQ(judge_record(false, w, kHere, processes({})), RecordState::unknown);
  EXPECT_EQ(judge_record(false, w, kHere, processes({{100, 5000}})), RecordState::unknown);
}

TEST(SessionWriter, StartTimeIsField22CountedFromTheLastParenthesis) {
  // A command name with spaces and parentheses in it, as a process may give itself.
  const std::string stat =
      "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 777777 1000 10 "
      "18446744073709551615";
  EXPECT_EQ(start_time_of_stat(stat), 777777u);
  // A zombie has exited: not a writer any more.
  std::string zombie = stat;
  zombie.replace(zombie.find(") S ") + 2, 1, "Z");
  EXPECT_EQ(start_time_of_stat(zombie), std::nullopt);
  EXPECT_EQ(start_time_of_stat("1234 (a) S 1 2"), std::nullopt);
  EXPECT_EQ(start_time_of_stat("no parenthesis"), std::nullopt);
}

TEST(SessionWriter, ThisProcessIsFoundRunningInProc) {
  const std::optional<WriterIdentity>& self = this_process();
  ASSERT_TRUE(self.has_value());  // Linux with /proc, as the tests run
  EXPECT_EQ(self->pid, ::getpid());
  EXPECT_EQ(process_start_time(self->pid), self->start_time);
  EXPECT_EQ(record_state(false, format_writer(*self)), RecordState::recording);
  WriterIdentity earlier = *self;
  earlier.start_time -= 1;  // the same pid, another process
  EXPECT_EQ(record_state(false, format_writer(earlier)), RecordState::cut);
}

// A plain sqlite3 connection, to set things up behind the wrappers' back.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &message);
  const std::string why = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(raw);
  ASSERT_EQ(rc, SQLITE_OK) << why;
}

std::map<std::int64_t, SessionRow> rows_of(const std::string& path) {
  std::string error;
  auto reader = Reader::open(path, error);
  EXPECT_NE(reader, nullptr) << error;
  std::map<std::int64_t, SessionRow> out;
  if (!reader) return out;
  std::vector<SessionRow> rows;
  EXPECT_TRUE(reader->list_sessions({}, rows, error)) << error;
  for (auto& r : rows) out[r.id] = r;
  return out;
}

// A version-7 file (no writer column) migrates; its rows without an end stay unknown, and
// the sessions recorded since name their writer, which the reader finds running.
TEST(SessionWriter, AVersionSevenFileMigratesAndNewSessionsNameTheirWriter) {
  TempDir dir;
  const std::string path = dir.file("v7.db");
  std::string error;
  {
    RecorderOptions o;
    o.path = path;
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
  }
  raw_exec(path,
           "ALTER TABLE sessions DROP COLUMN duration_us; "
           "ALTER TABLE messages DROP COLUMN recipients_left_out; "
           "ALTER TABLE messages DROP COLUMN accepted_recipients_left_out; "
           "ALTER TABLE sessions DROP COLUMN client_cert_sha256; "
           "ALTER TABLE sessions DROP COLUMN client_cert_subject; "
           "ALTER TABLE sessions DROP COLUMN writer; PRAGMA user_version = 7; "
           "INSERT INTO sessions(id, started_at, client_address, listen_address, upstream_host, "
           "upstream_port, tls_mode, ehlo_name) VALUES (1, '2026-01-01T00:00:00.000000Z', 'c', "
           "'l', 'u', 25, 'none', 'e'); "
           "INSERT INTO sessions(id, started_at, ended_at, outcome, client_address, "
           "listen_address, upstream_host, upstream_port, tls_mode, ehlo_name) VALUES (2, "
           "'2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z', 'quit', 'c', 'l', "
           "'u', 25, 'none', 'e');");
  EXPECT_EQ(Reader::open(path, error), nullptr);  // the tools wait for the proxy to migrate

  RecorderOptions o;
  o.path = path;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;
  const SessionKey key = rec->new_session_key();
  test_support::record_batches(*rec, {test_support::batch(test_support::session_opened(key))});
  rec->stop();  // committed; the session stays without an end, its writer (this process) runs

  std::map<std::int64_t, SessionRow> rows = rows_of(path);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].record, RecordState::unknown);
  EXPECT_FALSE(rows[1].writer_gone());
  EXPECT_EQ(rows[2].record, RecordState::ended);
  const std::int64_t id = static_cast<std::int64_t>(key);
  ASSERT_TRUE(rows.count(id));
  EXPECT_EQ(rows[id].record, RecordState::recording);
  EXPECT_TRUE(rows[id].writer_alive());

  // The same row as a killed writer would have left it.
  WriterIdentity dead = *this_process();
  dead.start_time += 1;
  raw_exec(path, "UPDATE sessions SET writer = '" + format_writer(dead) +
                     "' WHERE id = " + std::to_string(id));
  rows = rows_of(path);
  EXPECT_EQ(rows[id].record, RecordState::cut);
  EXPECT_TRUE(rows[id].writer_gone());

  // Audit counts it apart from the other session without an end.
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<OutcomeCount> counts;
  ASSERT_TRUE(reader->outcome_counts(counts, error)) << error;
  std::map<std::string, std::int64_t> by_state;
  for (const auto& c : counts) {
    const std::string name = c.outcome                          ? std::string(to_string(*c.outcome))
                             : c.record == RecordState::cut     ? "cut"
                             : c.record == RecordState::unknown ? "unknown"
                                                                : "other";
    by_state[name] += c.sessions;
  }
  EXPECT_EQ(by_state,
            (std::map<std::string, std::int64_t>{{"cut", 1}, {"quit", 1}, {"unknown", 1}}));
}

// `mailtap sessions --outcome cut / in_progress`: the reader sorts sessions without an end by
// their writer (the system is asked, not SQL) and applies the limit to those it keeps.
TEST(SessionWriter, AFilterByWriterKeepsCutOrOtherOpenSessionsAndLimitsAfter) {
  TempDir dir;
  const std::string path = dir.file("writers.db");
  std::string error;
  {
    RecorderOptions o;
    o.path = path;
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
  }
  WriterIdentity dead = *this_process();
  dead.start_time += 1;
  const std::string running = "'" + format_writer(*this_process()) + "'";
  const std::string cut = "'" + format_writer(dead) + "'";
  // Oldest first: 1 ended, 2 cut, 3 no writer (before schema v8), 4 cut, 5 running.
  std::string sql;
  for (const auto& [id, ended, writer] :
       std::vector<std::tuple<int, bool, std::string>>{{1, true, running},
                                                       {2, false, cut},
                                                       {3, false, "NULL"},
                                                       {4, false, cut},
                                                       {5, false, running}}) {
    sql +=
        "INSERT INTO sessions(id, started_at, ended_at, outcome, client_address, "
        "listen_address, upstream_host, upstream_port, tls_mode, ehlo_name, writer) VALUES (" +
        std::to_string(id) + ", '2026-01-01T00:00:0" + std::to_string(id) + ".000000Z', " +
        (ended ? "'2026-01-01T00:00:09.000000Z', 'quit'" : "NULL, NULL") +
        ", 'c', 'l', 'u', 25, 'none', 'e', " + writer + ");";
  }
  raw_exec(path, sql);
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  const auto ids = [&](SessionFilter::Writer writer, std::size_t limit) {
    SessionFilter f;
    f.writer = writer;
    f.limit = limit;
    std::vector<SessionRow> rows;
    EXPECT_TRUE(reader->list_sessions(f, rows, error)) << error;
    std::vector<SessionSummary> summaries;
    EXPECT_TRUE(reader->session_summaries(f, summaries, error)) << error;
    std::vector<std::int64_t> out, from_summaries;
    for (const auto& r : rows) out.push_back(r.id);
    for (const auto& r : summaries) from_summaries.push_back(r.session.id);
    EXPECT_EQ(out, from_summaries);
    return out;
  };
  using W = SessionFilter::Writer;
  EXPECT_EQ(ids(W::gone, 0), (std::vector<std::int64_t>{4, 2}));
  EXPECT_EQ(ids(W::not_gone, 0), (std::vector<std::int64_t>{5, 3}));
  EXPECT_EQ(ids(W::any, 0), (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
  // The limit counts the sessions kept, not the rows read: the newest cut one is not the
  // newest session.
  EXPECT_EQ(ids(W::gone, 1), (std::vector<std::int64_t>{4}));
  EXPECT_EQ(ids(W::not_gone, 1), (std::vector<std::int64_t>{5}));
  SessionFilter open;
  open.only_in_progress = true;
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions(open, rows, error)) << error;
  EXPECT_EQ(rows.size(), 4u);
}

}  // namespace
}  // namespace mailtap::storage
