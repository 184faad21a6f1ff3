// Reader::session_summaries as `mailtap sessions` and the web page's list use it (filters,
// paging, what each row shows) and the change token behind the page's live updates.
#include "storage/reader.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "storage/recorder.hpp"
#include "storage/timestamp.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"
#include "tests/unit/storage_records_for_tests.hpp"
#include "tests/unit/temp_dir.hpp"

namespace mailtap::storage {
namespace {

using namespace std::chrono_literals;
using test_support::TempDir;

using test_support::kT0;

SessionEvent reply(SessionKey k, std::uint64_t seq, int code, std::string bytes,
                   smtp::Direction d = smtp::Direction::upstream_to_client) {
  smtp::Event ev;
  ev.direction = d;
  ev.kind = smtp::EventKind::reply;
  ev.reply_code = code;
  ev.wire_size = bytes.size();
  ev.bytes = std::move(bytes);
  ev.time = kT0;
  return SessionEvent{k, seq, test_support::recorded(std::move(ev))};
}

// Records one session; `outcome` nullopt leaves it in progress.
void session(Recorder& rec, Clock::time_point at, std::string upstream, std::string user,
             std::optional<Outcome> outcome, std::vector<std::pair<int, std::string>> replies,
             std::string body = "") {
  const SessionKey k = rec.new_session_key();
  std::vector<Record> records;
  records.push_back(test_support::session_opened(k, at, std::move(upstream)));
  std::uint64_t seq = 0;
  for (auto& [code, text] : replies) records.push_back(reply(k, ++seq, code, text));
  if (!body.empty()) {
    SessionMessage m;
    m.key = k;
    m.seq = 1;
    m.message.mail_from = "MAIL FROM:<a@example.org>";
    m.message.body = body;
    m.message.size = body.size();
    records.push_back(m);
  }
  if (outcome)
    records.push_back(test_support::session_closed(k, at + 1s, *outcome, std::move(user)));
  test_support::record_batches(rec, {std::move(records)});
}

class SessionSummariesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RecorderOptions o;
    o.path = path;
    std::string error;
    rec = Recorder::open(o, error);
    ASSERT_NE(rec, nullptr) << error;
    session(*rec, kT0, "smtp.example.net", "alice", Outcome::quit,
            {{220, "220 hi\r\n"}, {250, "250 2.0.0 queued\r\n"}}, "Subject: needle\r\n\r\nx");
    session(*rec, kT0 + 1h, "smtp.example.net", "bob", Outcome::quit,
            {{220, "220 hi\r\n"}, {535, "535 5.7.8 bad credentials\r\n"}, {221, "221 bye\r\n"}});
    session(*rec, kT0 + 2h, "mx.example.org", "", Outcome::timeout, {{220, "220 hi\r\n"}});
    reader = Reader::open(path, error);
    ASSERT_NE(reader, nullptr) << error;
  }
  void TearDown() override {
    if (rec) rec->stop();
  }

  // Ids listed with the query `set` adjusts from the default one.
  template <typename Set>
  std::vector<std::int64_t> ids(Set set) {
    SessionFilter q;
    set(q);
    std::vector<SessionSummary> rows;
    std::string error;
    EXPECT_TRUE(reader->session_summaries(q, rows, error)) << error;
    std::vector<std::int64_t> out;
    for (const auto& r : rows) out.push_back(r.session.id);
    return out;
  }

  TempDir dir;
  std::string path = dir.file("m.db");
  std::unique_ptr<Recorder> rec;
  std::unique_ptr<Reader> reader;
};

// A session that ended on a reply of several lines (the client left after EHLO) lists it as
// one line: the code once, then each line's text, not the continuation's "250-".
TEST_F(SessionSummariesTest, AMultiLineLastReplyIsItsCodeAndEveryLinesText) {
  session(*rec, kT0 + 3h, "mx.example.org", "", Outcome::client_closed,
          {{220, "220 hi\r\n"},
           {250, "250-mx.example.org greets you\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"}});
  std::vector<SessionSummary> rows;
  std::string error;
  ASSERT_TRUE(reader->session_summaries({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].last_reply_code, 250);
  EXPECT_EQ(rows[0].last_reply, "250 mx.example.org greets you; PIPELINING; SMTPUTF8");
}

TEST_F(SessionSummariesTest, ListsNewestFirstWithWhatEachRowShows) {
  std::vector<SessionSummary> rows;
  std::string error;
  ASSERT_TRUE(reader->session_summaries({}, rows, error)) << error;
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].session.upstream_host, "mx.example.org");
  EXPECT_EQ(rows[1].last_reply_code, 221);
  EXPECT_EQ(rows[1].last_reply, "221 bye");
  EXPECT_EQ(rows[1].failure_replies, 1);
  EXPECT_EQ(rows[2].messages, 1);
  EXPECT_EQ(rows[2].session.auth_user, "alice");
}

// `mailtap sessions` writes the rows as they are read, not gathered first: the same rows, in
// the same order, one at a time.
TEST_F(SessionSummariesTest, OneAtATimeAreTheRowsTheListHas) {
  std::vector<SessionSummary> rows;
  std::string error;
  ASSERT_TRUE(reader->session_summaries({}, rows, error)) << error;
  std::vector<std::int64_t> ids;
  ASSERT_TRUE(reader->for_each_session_summary(
      {}, 1,
      [&](int pass, const SessionSummary& row) {
        EXPECT_EQ(pass, 0);
        ids.push_back(row.session.id);
        return true;
      },
      error))
      << error;
  ASSERT_EQ(ids.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(ids[i], rows[i].session.id);
}

// The table sizes its columns on a first pass and writes on a second: a session the proxy
// records meanwhile is in neither.
TEST_F(SessionSummariesTest, EveryPassSeesTheSameRows) {
  std::vector<std::int64_t> ids[2];
  std::string error;
  ASSERT_TRUE(reader->for_each_session_summary(
      {}, 2,
      [&](int pass, const SessionSummary& row) {
        if (pass == 0 && ids[0].empty())
          session(*rec, kT0 + 5h, "new.example.org", "", Outcome::quit, {{221, "221 bye\r\n"}});
        ids[pass].push_back(row.session.id);
        return true;
      },
      error))
      << error;
  EXPECT_EQ(ids[0].size(), 3u);
  EXPECT_EQ(ids[1], ids[0]);
  std::vector<SessionSummary> rows;
  ASSERT_TRUE(reader->session_summaries({}, rows, error)) << error;
  EXPECT_EQ(rows.size(), 4u);  // once the passes are done
}

// A reader gone (a closed pipe): no more rows are read, and that is no error.
TEST_F(SessionSummariesTest, OneAtATimeStopsWhenAsked) {
  int calls = 0;
  std::string error;
  EXPECT_TRUE(reader->for_each_session_summary(
      {}, 2, [&](int, const SessionSummary&) { return ++calls < 2; }, error));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(error, "");
  EXPECT_FALSE(reader->last_failure_is_damage());
}

// By id (mailtap export ID...): the row session_summaries() gives, or none.
TEST_F(SessionSummariesTest, OneById) {
  std::vector<SessionSummary> rows;
  std::string error;
  ASSERT_TRUE(reader->session_summaries({}, rows, error)) << error;
  for (const SessionSummary& listed : rows) {
    std::optional<SessionSummary> one;
    ASSERT_TRUE(reader->session_summary(listed.session.id, one, error)) << error;
    ASSERT_TRUE(one);
    EXPECT_EQ(one->session.id, listed.session.id);
    EXPECT_EQ(one->session.upstream_host, listed.session.upstream_host);
    EXPECT_EQ(one->messages, listed.messages);
    EXPECT_EQ(one->last_reply_code, listed.last_reply_code);
    EXPECT_EQ(one->last_reply, listed.last_reply);
    EXPECT_EQ(one->failure_replies, listed.failure_replies);
  }
  std::optional<SessionSummary> none = rows.front();
  EXPECT_TRUE(reader->session_summary(99, none, error)) << error;
  EXPECT_FALSE(none);
}

TEST(SessionFilterUpstream, HostOrHostAndPort) {
  SessionFilter f;
  set_upstream_filter(f, "smtp.gmail.com");
  EXPECT_EQ(f.upstream, "smtp.gmail.com");
  EXPECT_FALSE(f.upstream_port);
  set_upstream_filter(f, "127.0.0.1:31256");
  EXPECT_EQ(f.upstream, "127.0.0.1");
  EXPECT_EQ(f.upstream_port, 31256);
  set_upstream_filter(f, "[::1]:25");
  EXPECT_EQ(f.upstream, "::1");
  EXPECT_EQ(f.upstream_port, 25);
  for (const char* host : {"::1", "host:", "host:99999", "host:0", "host:smtp", ":25"}) {
    set_upstream_filter(f, host);
    EXPECT_EQ(f.upstream, host);
    EXPECT_FALSE(f.upstream_port) << host;
  }
}

TEST_F(SessionSummariesTest, Filters) {
  EXPECT_EQ(ids([](auto& q) { q.only_failed = true; }), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(ids([](auto& q) { q.outcome = Outcome::timeout; }), (std::vector<std::int64_t>{3}));
  EXPECT_EQ(ids([](auto& q) { q.reply_class = 5; }), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(ids([](auto& q) { q.user = "alice"; }), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(ids([](auto& q) { q.upstream = "smtp.example.net"; }),
            (std::vector<std::int64_t>{2, 1}));
  // HOST:PORT, as `proxy --upstream` takes it and the sessions list shows it.
  EXPECT_EQ(ids([](auto& q) { set_upstream_filter(q, "smtp.example.net:587"); }),
            (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(ids([](auto& q) { set_upstream_filter(q, "smtp.example.net:465"); }),
            (std::vector<std::int64_t>{}));
  EXPECT_EQ(ids([](auto& q) { q.text = "NEEDLE"; }),
            (std::vector<std::int64_t>{1}));  // a message body
  EXPECT_EQ(ids([](auto& q) { q.text = "credentials"; }),
            (std::vector<std::int64_t>{2}));  // a reply
  EXPECT_EQ(ids([](auto& q) { q.text = "%"; }),
            (std::vector<std::int64_t>{}));  // LIKE wildcards are escaped
  EXPECT_EQ(ids([](auto& q) { q.text = "_"; }), (std::vector<std::int64_t>{}));
  EXPECT_EQ(ids([](auto& q) {
              q.since = kT0 + 30min;
              q.until = kT0 + 90min;
            }),
            (std::vector<std::int64_t>{2}));
}

TEST_F(SessionSummariesTest, PagesFollowTheListOrderEvenPastAPrunedSession) {
  EXPECT_EQ(ids([](auto& q) {
              q.after_session = 3;
              q.limit = 1;
            }),
            (std::vector<std::int64_t>{2}));
  EXPECT_EQ(ids([](auto& q) {
              q.newest_first = false;
              q.after_session = 1;
            }),
            (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(ids([](auto& q) {
              q.after_session = 99;  // no such session (pruned since the page was shown)
              q.limit = 2;
            }),
            (std::vector<std::int64_t>{3, 2}));
}

// What a live list fetches again: the sessions recorded since it last looked, and those by id
// that may have changed; both with the other filters, in the list's order.
TEST_F(SessionSummariesTest, NewerThanAnIdAndByIds) {
  EXPECT_EQ(ids([](auto& q) { q.newer_than_id = 1; }), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(ids([](auto& q) { q.newer_than_id = 3; }), (std::vector<std::int64_t>{}));
  EXPECT_EQ(ids([](auto& q) {
              q.newer_than_id = 1;
              q.only_failed = true;
              q.after_session = 3;
            }),
            (std::vector<std::int64_t>{2}));
  EXPECT_EQ(ids([](auto& q) { q.ids = {1, 3, 7}; }), (std::vector<std::int64_t>{3, 1}));
  EXPECT_EQ(ids([](auto& q) {
              q.ids = {1, 2};
              q.text = "credentials";
            }),
            (std::vector<std::int64_t>{2}));
}

// A search whose client has gone ends: `stop` is asked while it runs, and the connection runs
// the next query as before.
TEST_F(SessionSummariesTest, AStoppedQueryEndsWithAnError) {
  for (int i = 0; i < 300; ++i)  // enough to read for `stop` to be asked while it runs
    session(*rec, kT0 + 3h + i * 1s, "mx.example.org", "", Outcome::quit,
            {{220, "220 hi\r\n"}, {250, "250 ok\r\n"}, {221, "221 bye\r\n"}});
  SessionFilter q;
  q.text = "no such text anywhere";
  std::vector<SessionSummary> rows;
  std::string error;
  int asked = 0;
  // Not gone when it starts; gone at the next look, which is while the query runs.
  EXPECT_FALSE(reader->session_summaries(q, rows, error, [&asked] { return ++asked > 1; }));
  EXPECT_GT(asked, 1);
  EXPECT_NE(error, "");
  EXPECT_TRUE(reader->session_summaries(q, rows, error, [] { return false; })) << error;
  EXPECT_EQ(ids([](auto& f) { f.text = "credentials"; }), (std::vector<std::int64_t>{2}));
}

TEST_F(SessionSummariesTest, InProgressSessionsAndTheChangeToken) {
  ChangeToken before;
  std::string error;
  ASSERT_TRUE(reader->change_token(before, error)) << error;
  ChangeToken same;
  ASSERT_TRUE(reader->change_token(same, error)) << error;
  EXPECT_EQ(before, same);

  // Another connection commits: the token changes, without any query of the rows.
  session(*rec, kT0 + 3h, "smtp.example.net", "", std::nullopt, {{220, "220 hi\r\n"}},
          "Subject: x\r\n\r\ny");
  ChangeToken after;
  ASSERT_TRUE(reader->change_token(after, error)) << error;
  EXPECT_NE(before, after);
  EXPECT_EQ(after.max_session_id, 4);
  EXPECT_EQ(ids([](auto& q) { q.only_in_progress = true; }), (std::vector<std::int64_t>{4}));
}

}  // namespace
}  // namespace mailtap::storage
