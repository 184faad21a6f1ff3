// The read-only side the tools use, and the default database path.
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "storage/default_path.hpp"
#include "storage/reader.hpp"
#include "storage/recorder.hpp"
#include "storage/schema.hpp"
#include "storage/timestamp.hpp"

namespace mailtap::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_support::TempDir;

using test_support::kT0;

void record(Recorder& rec, std::vector<std::vector<Record>> sessions) {
  test_support::record_batches(rec, std::move(sessions));
}

SessionOpened opened(SessionKey key, Clock::time_point at, std::string upstream) {
  SessionOpened r = test_support::session_opened(key, at, std::move(upstream));
  r.upstream_port = 25;
  r.tls_mode = TlsMode::none;
  return r;
}

SessionClosed closed(SessionKey key, Clock::time_point at, Outcome o, std::string user = "") {
  return test_support::session_closed(key, at, o, std::move(user));
}

TEST(StorageReader, RefusesMissingAndForeignFiles) {
  TempDir dir;
  std::string error;
  EXPECT_EQ(Reader::open(dir.file("none.db"), error), nullptr);
  EXPECT_NE(error.find("no database at"), std::string::npos) << error;

  std::ofstream(dir.file("text")) << std::string(5000, 'x');
  EXPECT_EQ(Reader::open(dir.file("text"), error), nullptr);
  EXPECT_NE(error.find("not an SQLite database"), std::string::npos) << error;

  sqlite3* raw = nullptr;
  sqlite3_open(dir.file("other.db").c_str(), &raw);
  sqlite3_exec(raw, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  EXPECT_EQ(Reader::open(dir.file("other.db"), error), nullptr);
  EXPECT_NE(error.find("not a mailtap database"), std::string::npos) << error;
}

// The tools never migrate; their refusal of an older file says how to get it migrated, without
// a newer proxy migrating it under an older one still recording to it (docs/install.md).
TEST(StorageReader, AnOlderSchemaIsRefusedWithHowToUpgradeIt) {
  TempDir dir;
  const std::string path = dir.file("old.db");
  std::string error;
  {
    RecorderOptions o;
    o.path = path;
    auto rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
  }
  sqlite3* raw = nullptr;
  sqlite3_open(path.c_str(), &raw);
  sqlite3_exec(raw, ("PRAGMA user_version=" + std::to_string(kSchemaVersion - 1)).c_str(), nullptr,
               nullptr, nullptr);
  sqlite3_close(raw);
  EXPECT_EQ(Reader::open(path, error), nullptr);
  EXPECT_NE(error.find("has schema version " + std::to_string(kSchemaVersion - 1)),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("stop any older proxy"), std::string::npos) << error;
  EXPECT_NE(error.find("systemctl --user restart mailtap@NAME"), std::string::npos) << error;
  EXPECT_NE(error.find("mailtap proxy --db '" + path + "'"), std::string::npos) << error;
}

TEST(StorageReader, LoadsASessionWithEverythingRecordedForIt) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;

  const SessionKey k = rec->new_session_key();
  SessionOpened open = opened(k, kT0, "mx.example.net");
  open.tls_mode = TlsMode::starttls;
  open.insecure = true;

  SessionTls tls;
  tls.key = k;
  tls.resolved_address = "192.0.2.7:25";
  tls.tls_version = "TLSv1.3";
  tls.cipher = "TLS_AES_256_GCM_SHA384";
  tls.sni = "mx.example.net";
  tls.verify_status = VerifyStatus::not_verified_insecure;
  Certificate leaf;
  leaf.der = std::string("\x30\x82\x01\x00\x00\xff", 6);
  leaf.sha256_hex = std::string(64, 'b');
  leaf.subject = "CN=mx.example.net";
  leaf.issuer = "CN=Example CA";
  leaf.not_before = "2026-01-01T00:00:00Z";
  leaf.not_after = "2027-01-01T00:00:00Z";
  tls.chain = {leaf, leaf};
  tls.chain[1].subject = "CN=Example CA";

  SessionEvent greeting{k, 1, test_support::recorded()};
  test_support::edit(greeting.event).direction = smtp::Direction::upstream_to_client;
  test_support::edit(greeting.event).phase = smtp::Phase::plain;
  test_support::edit(greeting.event).kind = smtp::EventKind::greeting;
  test_support::edit(greeting.event).reply_code = 220;
  test_support::edit(greeting.event).bytes = "220 mx ESMTP\r\n";
  test_support::edit(greeting.event).wire_size = test_support::edit(greeting.event).bytes.size();
  test_support::edit(greeting.event).time = kT0 + 1ms;

  SessionEvent auth{k, 2, test_support::recorded()};
  test_support::edit(auth.event).direction = smtp::Direction::client_to_upstream;
  test_support::edit(auth.event).phase = smtp::Phase::tls;
  test_support::edit(auth.event).kind = smtp::EventKind::auth;
  test_support::edit(auth.event).verb = "AUTH";
  test_support::edit(auth.event).bytes = std::string("AUTH PLAIN <redacted>\r\n\0", 24);
  test_support::edit(auth.event).wire_size = 40;
  test_support::edit(auth.event).redacted = true;
  test_support::edit(auth.event).note = "PLAIN credentials for user alice";
  test_support::edit(auth.event).time = kT0 + 2ms;

  SessionEvent rejected{k, 3, test_support::recorded()};
  test_support::edit(rejected.event).direction = smtp::Direction::upstream_to_client;
  test_support::edit(rejected.event).phase = smtp::Phase::tls;
  test_support::edit(rejected.event).kind = smtp::EventKind::reply;
  test_support::edit(rejected.event).reply_code = 550;
  test_support::edit(rejected.event).enhanced_status = "5.7.1";
  test_support::edit(rejected.event).bytes = "550 5.7.1 no\r\n";
  test_support::edit(rejected.event).wire_size = test_support::edit(rejected.event).bytes.size();

  SessionMessage msg;
  msg.key = k;
  msg.seq = 1;
  msg.message.mail_from = "MAIL FROM:<a@example.org> SIZE=10";
  msg.message.recipients = {{"RCPT TO:<b@example.net>", 250, "250 2.1.5 Ok"},
                            {"RCPT TO:<c@example.net>", 550, "550 5.1.1 Unknown", 1}};
  msg.message.body = std::string("body\0with nul\r\n", 15);
  msg.message.size = 1000;
  msg.message.body_truncated = true;
  msg.message.sha256_hex = std::string(64, 'c');
  msg.message.via_bdat = true;
  msg.message.final_code = 250;
  msg.message.final_reply = "250 2.0.0 queued";
  msg.message.started = kT0 + 3ms;
  msg.message.finished = kT0 + 4ms;

  SessionClosed close = closed(k, kT0 + 5ms, Outcome::client_closed, "alice");
  close.bytes_client_to_upstream = 1234;
  close.bytes_upstream_to_client = 5678;

  record(*rec, {{open, tls, greeting, auth, rejected, msg, close}});
  rec->stop();

  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);

  // The list's summary: the same row, its message count and the last reply the client saw.
  std::vector<SessionSummary> summaries;
  ASSERT_TRUE(reader->session_summaries({}, summaries, error)) << error;
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].session.id, rows[0].id);
  EXPECT_EQ(summaries[0].messages, 1);
  EXPECT_EQ(summaries[0].last_reply_code, 550);
  EXPECT_EQ(summaries[0].last_reply, "550 5.7.1 no");

  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(rows[0].id, d, error)) << error;
  ASSERT_TRUE(d);
  const SessionRow& s = d->session;
  EXPECT_EQ(s.started, kT0);
  ASSERT_TRUE(s.ended);
  EXPECT_EQ(*s.ended, kT0 + 5ms);
  EXPECT_EQ(s.upstream_host, "mx.example.net");
  EXPECT_EQ(s.upstream_port, 25);
  EXPECT_EQ(s.resolved_address, "192.0.2.7:25");
  EXPECT_EQ(s.tls_mode, TlsMode::starttls);
  EXPECT_EQ(s.tls_version, "TLSv1.3");
  EXPECT_EQ(s.verify_status, VerifyStatus::not_verified_insecure);
  EXPECT_EQ(s.verify_reason, "");
  EXPECT_EQ(s.verified_name, "");
  EXPECT_TRUE(s.insecure);
  EXPECT_EQ(s.outcome, Outcome::client_closed);
  EXPECT_EQ(s.outcome_reason, "went away");
  EXPECT_EQ(s.bytes_client_to_upstream, 1234u);
  EXPECT_EQ(s.bytes_upstream_to_client, 5678u);
  EXPECT_EQ(s.auth_user, "alice");
  EXPECT_FALSE(s.replay_of);

  ASSERT_EQ(d->certificates.size(), 2u);
  EXPECT_EQ(d->certificates[0].position, 0u);
  EXPECT_EQ(d->certificates[0].certificate.der, leaf.der);
  EXPECT_EQ(d->certificates[0].certificate.subject, "CN=mx.example.net");
  EXPECT_EQ(d->certificates[1].certificate.subject, "CN=Example CA");

  ASSERT_EQ(d->events.size(), 3u);
  EXPECT_EQ(d->events[0].seq, 1u);
  EXPECT_EQ(d->events[0].event.kind, smtp::EventKind::greeting);
  EXPECT_EQ(d->events[0].event.reply_code, 220);
  EXPECT_EQ(d->events[0].event.time, kT0 + 1ms);
  const smtp::Event& a = d->events[1].event;
  EXPECT_EQ(a.direction, smtp::Direction::client_to_upstream);
  EXPECT_EQ(a.phase, smtp::Phase::tls);
  EXPECT_EQ(a.kind, smtp::EventKind::auth);
  EXPECT_EQ(a.verb, "AUTH");
  EXPECT_EQ(a.bytes, test_support::edit(auth.event).bytes);  // binary-safe
  EXPECT_EQ(a.wire_size, 40u);
  EXPECT_TRUE(a.redacted);
  EXPECT_EQ(a.note, test_support::edit(auth.event).note);
  EXPECT_EQ(d->events[2].event.enhanced_status, "5.7.1");
  EXPECT_EQ(d->events[2].event.time, Clock::time_point{});  // none given

  ASSERT_EQ(d->messages.size(), 1u);
  const smtp::Message& m = d->messages[0].message;
  EXPECT_EQ(d->messages[0].seq, 1u);
  EXPECT_EQ(m.mail_from, msg.message.mail_from);
  EXPECT_EQ(m.body, msg.message.body);
  EXPECT_EQ(m.size, 1000u);
  EXPECT_TRUE(m.body_truncated);
  EXPECT_TRUE(m.via_bdat);
  EXPECT_EQ(m.final_code, 250);
  EXPECT_EQ(m.started, kT0 + 3ms);
  ASSERT_EQ(m.recipients.size(), 2u);
  EXPECT_EQ(m.recipients[1].command, "RCPT TO:<c@example.net>");
  EXPECT_EQ(m.recipients[1].reply_code, 550);

  std::optional<SessionDetail> none;
  ASSERT_TRUE(reader->load_session(rows[0].id + 100, none, error)) << error;
  EXPECT_FALSE(none);

  FingerprintKey key{};
  ASSERT_TRUE(reader->fingerprint_key(key, error)) << error;
  auto again = Recorder::open(o, error);
  ASSERT_NE(again, nullptr) << error;
  EXPECT_EQ(again->fingerprint_key(), key);
}

TEST(StorageReader, ListsWithFiltersWhileTheWriterIsActive) {
  TempDir dir;
  const std::string path = dir.file("m.db");
  std::string error;
  RecorderOptions o;
  o.path = path;
  auto rec = Recorder::open(o, error);
  ASSERT_NE(rec, nullptr) << error;

  std::vector<std::vector<Record>> sessions;
  std::map<int, SessionKey> keys;
  for (int i = 0; i < 6; ++i) {
    const SessionKey k = rec->new_session_key();
    keys[i] = k;
    const auto at = kT0 + std::chrono::hours(i);
    const std::string upstream = i % 2 == 0 ? "a.example" : "b.example";
    const Outcome outcome = i < 4 ? Outcome::quit : Outcome::timeout;
    const std::string user = i == 3 ? "bob" : "";
    if (i == 5) {
      sessions.push_back({opened(k, at, upstream)});  // still running
    } else {
      sessions.push_back({opened(k, at, upstream), closed(k, at + 1s, outcome, user)});
    }
  }
  record(*rec, sessions);

  // The proxy is still running: the reader works beside it.
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<SessionRow> rows;
  // The open session's records are committed within commit_interval; wait for that.
  for (int i = 0; i < 500 && reader->list_sessions({}, rows, error) && rows.size() < 6; ++i)
    std::this_thread::sleep_for(10ms);

  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows.front().started, kT0 + 5h);  // newest first
  EXPECT_FALSE(rows.front().ended);
  EXPECT_FALSE(rows.front().outcome);

  SessionFilter f;
  f.newest_first = false;
  f.limit = 2;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].started, kT0);
  EXPECT_EQ(rows[1].started, kT0 + 1h);

  f = {};
  f.since = kT0 + 1h;
  f.until = kT0 + 3h;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  EXPECT_EQ(rows.size(), 2u);
  std::vector<SessionSummary> summaries;  // the same filter selects the same sessions
  ASSERT_TRUE(reader->session_summaries(f, summaries, error)) << error;
  ASSERT_EQ(summaries.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(summaries[i].session.id, rows[i].id);
    EXPECT_EQ(summaries[i].messages, 0);
    EXPECT_EQ(summaries[i].last_reply_code, 0);
  }

  f = {};
  f.upstream = "b.example";
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  EXPECT_EQ(rows.size(), 3u);

  f = {};
  f.outcome = Outcome::timeout;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].started, kT0 + 4h);

  f = {};
  f.only_in_progress = true;
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].started, kT0 + 5h);

  f = {};
  f.user = "bob";
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].auth_user, "bob");

  // New sessions committed after the reader opened are visible to its next query.
  const SessionKey late = rec->new_session_key();
  record(*rec, {{opened(late, kT0 + 10h, "c.example"), closed(late, kT0 + 10h, Outcome::quit)}});
  f = {};
  f.upstream = "c.example";
  ASSERT_TRUE(reader->list_sessions(f, rows, error)) << error;
  EXPECT_EQ(rows.size(), 1u);
  rec->stop();

  // And it still reads after the writer is gone.
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  EXPECT_EQ(rows.size(), 7u);
}

// Two sessions recorded and closed (ids 1 and 2), then their time columns damaged by `sql`, as
// a hand edit or a damaged page leaves them.
std::string record_then_damage(TempDir& dir, const std::string& name, const std::string& sql) {
  const std::string path = dir.file(name);
  std::string error;
  {
    RecorderOptions o;
    o.path = path;
    auto rec = Recorder::open(o, error);
    EXPECT_NE(rec, nullptr) << error;
    std::vector<std::vector<Record>> sessions;
    for (int i = 0; i < 2; ++i) {
      const SessionKey k = rec->new_session_key();
      sessions.push_back({opened(k, kT0, "mx.example.net"), closed(k, kT0 + 1s, Outcome::quit)});
    }
    record(*rec, sessions);
  }
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  char* message = nullptr;
  EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK)
      << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(raw);
  return path;
}

// A time column that holds no timestamp is named with what it holds, as a body file that
// cannot be read is: never read as the epoch as if true.
TEST(StorageReader, ATimeThatIsNoTimestampIsUnreadableNotTheEpoch) {
  TempDir dir;
  const std::string path = record_then_damage(
      dir, "m.db",
      "UPDATE sessions SET started_at = 'last tuesday' WHERE id = 1;"
      "UPDATE sessions SET ended_at = '2026-13-45T99:00:00.000000Z' WHERE id = 2;"
      "INSERT INTO messages(session_id, seq, mail_from, size, body, body_truncated, via_bdat, "
      "started_at, finished_at) VALUES (2, 1, 'a@example.org', 0, '', 0, 0, 'soon', NULL)");
  std::string error;
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 2u);
  for (const SessionRow& r : rows) {
    SCOPED_TRACE(r.id);
    if (r.id == 1) {
      EXPECT_TRUE(r.started_unreadable);
      EXPECT_FALSE(r.ended_unreadable);
      EXPECT_EQ(r.unreadable, "started_at holds \"last tuesday\", not a timestamp");
    } else {
      EXPECT_FALSE(r.started_unreadable);
      EXPECT_TRUE(r.ended_unreadable);
      EXPECT_TRUE(r.ended.has_value());  // it ended: only when is unknown
      EXPECT_FALSE(r.writer_gone());
      EXPECT_NE(r.unreadable.find("ended_at holds \"2026-13-45T99:00:00.000000Z\""),
                std::string::npos)
          << r.unreadable;
    }
  }

  std::optional<SessionDetail> d;
  ASSERT_TRUE(reader->load_session(2, d, error)) << error;
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->session.ended_unreadable);
  ASSERT_EQ(d->messages.size(), 1u);
  EXPECT_EQ(d->messages[0].unreadable, "started_at holds \"soon\", not a timestamp");

  // audit's whole-file read of the messages says the same.
  std::vector<std::string> messages;
  ASSERT_TRUE(reader->for_each_message(
      [&](std::int64_t, const MessageRow& m) { messages.push_back(m.unreadable); }, error))
      << error;
  EXPECT_EQ(messages, std::vector<std::string>{"started_at holds \"soon\", not a timestamp"});

  // A damaged column may hold any amount of text: what is said of it stays short.
  const std::string long_path = record_then_damage(
      dir, "long.db", "UPDATE sessions SET started_at = '2026' || hex(zeroblob(500)) WHERE id = 1");
  auto long_reader = Reader::open(long_path, error);
  ASSERT_NE(long_reader, nullptr) << error;
  std::optional<SessionSummary> sum;
  ASSERT_TRUE(long_reader->session_summary(1, sum, error)) << error;
  ASSERT_TRUE(sum);
  EXPECT_LT(sum->session.unreadable.size(), 120u) << sum->session.unreadable;
  EXPECT_NE(sum->session.unreadable.find("...\""), std::string::npos) << sum->session.unreadable;
}

// A well-formed date the clock cannot hold (before 1677 or after 2262) is unreadable too: read
// as the clock's first or last instant, a session's length overflowed and printed garbage.
TEST(StorageReader, ATimeTheClockCannotHoldIsUnreadable) {
  TempDir dir;
  const std::string path = record_then_damage(
      dir, "m.db",
      "UPDATE sessions SET started_at = '1026-01-02T03:04:05.000000Z' WHERE id = 1;"
      "UPDATE sessions SET ended_at = '9999-12-31T23:59:59.999999Z' WHERE id = 2;");
  std::string error;
  auto reader = Reader::open(path, error);
  ASSERT_NE(reader, nullptr) << error;
  std::vector<SessionRow> rows;
  ASSERT_TRUE(reader->list_sessions({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 2u);
  for (const SessionRow& r : rows) {
    SCOPED_TRACE(r.id);
    if (r.id == 1) {
      EXPECT_TRUE(r.started_unreadable);
      EXPECT_FALSE(r.ended_unreadable);
      EXPECT_EQ(r.unreadable, "started_at holds \"1026-01-02T03:04:05.000000Z\", out of range");
    } else {
      EXPECT_FALSE(r.started_unreadable);
      EXPECT_TRUE(r.ended_unreadable);
      EXPECT_EQ(r.unreadable, "ended_at holds \"9999-12-31T23:59:59.999999Z\", out of range");
    }
  }
}

TEST(StorageDefaultPath, FollowsTheDocumentedOrder) {
  std::map<std::string, std::string> env;
  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  std::string error;
  EXPECT_EQ(default_database_path(lookup, error), "");
  EXPECT_FALSE(error.empty());

  for (const char* relative : {"~", "home/u", "."}) {
    env["HOME"] = relative;  // no home: not a directory named ~ under the current one
    EXPECT_EQ(default_database_path(lookup, error), "") << relative;
    EXPECT_NE(error.find("HOME is set but not an absolute path"), std::string::npos) << error;
  }
  env["HOME"] = "/home/u/";
  EXPECT_EQ(default_database_path(lookup, error), "/home/u/.local/share/mailtap/mailtap.db");
  EXPECT_TRUE(error.empty());
  env["XDG_DATA_HOME"] = "relative/data";  // ignored, as the XDG spec says
  EXPECT_EQ(default_database_path(lookup, error), "/home/u/.local/share/mailtap/mailtap.db");
  env["XDG_DATA_HOME"] = "/data";
  EXPECT_EQ(default_database_path(lookup, error), "/data/mailtap/mailtap.db");
  env["MAILTAP_DB"] = "";
  EXPECT_EQ(default_database_path(lookup, error), "/data/mailtap/mailtap.db");
  env["MAILTAP_DB"] = "rel/x.db";
  EXPECT_EQ(default_database_path(lookup, error), "rel/x.db");
}

// Run as root with another user's HOME (sudo -E, su -m), the proxy would make that user's
// ~/.local root-owned 0700: it refuses the default there, and only there.
TEST(StorageDefaultPath, RootDoesNotWriteIntoAnotherUsersHome) {
  TempDir dir;
  const std::string home = dir.file("home");
  ASSERT_EQ(::mkdir(home.c_str(), 0755), 0);
  std::map<std::string, std::string> env{{"HOME", home}};
  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  std::string error;
  const std::string in_home = home + "/.local/share/mailtap/mailtap.db";
  struct stat st {};
  ASSERT_EQ(::stat(home.c_str(), &st), 0);
  // The home's owner, or root in a home of its own, as before.
  EXPECT_EQ(default_database_path_to_write(lookup, st.st_uid, error), in_home) << error;
  if (st.st_uid != 0) GTEST_SKIP() << "needs root: chown to another user";
  EXPECT_EQ(default_database_path_to_write(lookup, 0, error), in_home) << error;
  ASSERT_EQ(::chown(home.c_str(), 65534, 65534), 0);
  EXPECT_EQ(default_database_path_to_write(lookup, 1000, error), in_home) << error;
  EXPECT_EQ(default_database_path_to_write(lookup, 0, error), "");
  EXPECT_EQ(error.rfind("HOME is " + home + ", and " + home + " belongs to uid 65534", 0), 0u)
      << error;
  EXPECT_NE(error.find("run mailtap as that user"), std::string::npos) << error;
  // Reading it is harmless: the tools' path is unchanged.
  EXPECT_EQ(default_database_path(lookup, error), in_home);
  // A missing XDG_DATA_HOME inside it: its nearest existing parent is the user's.
  env["XDG_DATA_HOME"] = home + "/.local/share";
  EXPECT_EQ(default_database_path_to_write(lookup, 0, error), "");
  EXPECT_NE(error.find("XDG_DATA_HOME is " + home + "/.local/share, and " + home +
                       " belongs to uid 65534"),
            std::string::npos)
      << error;
  // Named, a path is taken as asked.
  env["MAILTAP_DB"] = home + "/m.db";
  EXPECT_EQ(default_database_path_to_write(lookup, 0, error), home + "/m.db");
}

// Older systemd user units recorded to their state directory, $XDG_STATE_HOME/mailtap (the
// unit's %S); the unit now records to the default. A record left there is found where the
// unit put it, not at a hard-coded ~/.local/state, and only when the default is absent.
TEST(StorageDefaultPath, FindsARecordAnOlderUnitLeftInItsStateDirectory) {
  TempDir dir;
  const std::string home = dir.file("home");
  std::map<std::string, std::string> env{{"HOME", home}};
  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  EXPECT_EQ(older_unit_database_path(lookup), home + "/.local/state/mailtap/mailtap.db");
  env["XDG_STATE_HOME"] = "relative/state";  // ignored, as the XDG spec says
  EXPECT_EQ(older_unit_database_path(lookup), home + "/.local/state/mailtap/mailtap.db");
  const std::string state = dir.file("state");
  env["XDG_STATE_HOME"] = state;
  const std::string older = state + "/mailtap/mailtap.db";
  EXPECT_EQ(older_unit_database_path(lookup), older);

  std::string error;
  const std::string fresh = default_database_path(lookup, error);
  EXPECT_EQ(older_unit_database_left(fresh, lookup), "") << "no older record";
  std::filesystem::create_directories(state + "/mailtap");
  std::ofstream(older) << "x";
  EXPECT_EQ(older_unit_database_left(fresh, lookup), older);
  std::filesystem::create_directories(home + "/.local/share/mailtap");
  std::ofstream(fresh) << "x";
  EXPECT_EQ(older_unit_database_left(fresh, lookup), "") << "the default is there: it is read";
  env.erase("HOME");
  env.erase("XDG_STATE_HOME");
  EXPECT_EQ(older_unit_database_path(lookup), "");
}

}  // namespace
}  // namespace mailtap::storage
