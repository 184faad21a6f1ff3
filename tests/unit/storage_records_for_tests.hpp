// Session records the storage tests write through a real Recorder: one way to build them and
// one way to submit them, so each test says only what differs.
#pragma once

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <string>
#include <utility>
#include <vector>

#include "storage/database.hpp"
#include "storage/recorder.hpp"
#include "storage/timestamp.hpp"
#include "tests/unit/recorded_event_for_tests.hpp"

namespace mailtap::test_support {

inline const storage::Clock::time_point kT0 =
    storage::parse_timestamp("2026-11-24T20:41:07.123456Z").value();

// A STARTTLS session to port 587 from 127.0.0.1:40000 through 127.0.0.1:2525.
inline storage::SessionOpened session_opened(storage::SessionKey key,
                                             storage::Clock::time_point at = storage::Clock::now(),
                                             std::string upstream = "mx.example.net") {
  storage::SessionOpened r;
  r.key = key;
  r.started = at;
  r.client_address = "127.0.0.1:40000";
  r.listen_address = "127.0.0.1:2525";
  r.upstream_host = std::move(upstream);
  r.upstream_port = 587;
  r.tls_mode = storage::TlsMode::starttls;
  r.ehlo_name = "mailtap.test";
  return r;
}

// 100 octets up, 200 down; any outcome but quit with the reason "went away".
inline storage::SessionClosed session_closed(storage::SessionKey key,
                                             storage::Clock::time_point at = storage::Clock::now(),
                                             storage::Outcome outcome = storage::Outcome::quit,
                                             std::string user = "") {
  storage::SessionClosed r;
  r.key = key;
  r.ended = at;
  r.outcome = outcome;
  r.reason = outcome == storage::Outcome::quit ? "" : "went away";
  r.auth_user = std::move(user);
  r.bytes_client_to_upstream = 100;
  r.bytes_upstream_to_client = 200;
  return r;
}

// Variadic rather than an initializer_list: g++ 12 rejects braced lists of these records inside
// coroutines ("array used as initializer"). Build each batch in a named local before co_await:
// g++ 12 miscompiles some temporaries inside a co_await full-expression.
template <typename... R>
std::vector<storage::Record> batch(R&&... records) {
  std::vector<storage::Record> v;
  v.reserve(sizeof...(records));
  (v.emplace_back(std::forward<R>(records)), ...);
  return v;
}

// Submits each record list in order, one submit each, and returns when all have been taken.
inline void record_batches(storage::Recorder& rec,
                           std::vector<std::vector<storage::Record>> batches) {
  asio::io_context io;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (auto& b : batches) {
          auto records = std::move(b);
          co_await rec.submit(std::move(records));
        }
      },
      asio::detached);
  io.run();
}

// A second process's view of the file: one integer from a plain read-only connection.
inline std::int64_t count(const std::string& path, const std::string& sql) {
  storage::Database db;
  EXPECT_TRUE(
      storage::Database::open(path, storage::OpenOptions{storage::OpenMode::read_only}, db).ok());
  std::int64_t n = -1;
  const storage::Status st = db.query_int(sql, n);
  EXPECT_TRUE(st.ok()) << st.message;
  return n;
}

// A DATA body piece as the dialogue records it: client to upstream, in mail transaction 1.
inline storage::SessionEvent body_piece(storage::SessionKey key, std::uint64_t seq,
                                        std::string bytes, std::uint64_t transaction = 1) {
  storage::SessionEvent r{key, seq, recorded()};
  auto& e = edit(r.event);
  e.direction = smtp::Direction::client_to_upstream;
  e.phase = smtp::Phase::tls;
  e.kind = smtp::EventKind::data;
  e.verb = "DATA";
  e.transaction = transaction;
  e.wire_size = bytes.size();
  e.bytes = std::move(bytes);
  e.time = storage::Clock::now();
  return r;
}

// `n` octets no two 64 KiB pieces of which are alike, so a misplaced piece shows.
inline std::string pattern(std::size_t n, std::size_t salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i / 977 + salt) % 26);
  return s;
}

// Records session `key` with `pieces` body events of `size` octets and returns what was sent.
inline std::vector<std::string> record_body(storage::Recorder& rec, storage::SessionKey key,
                                            std::size_t pieces, std::size_t size) {
  std::vector<std::string> sent;
  std::vector<std::vector<storage::Record>> batches;
  batches.push_back(batch(session_opened(key)));
  for (std::size_t i = 0; i < pieces; ++i) {
    sent.push_back(pattern(size, i));
    batches.push_back(batch(body_piece(key, i + 1, sent.back())));
  }
  batches.push_back(batch(session_closed(key)));
  record_batches(rec, std::move(batches));
  return sent;
}

}  // namespace mailtap::test_support
