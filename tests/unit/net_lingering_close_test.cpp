// The lingering close's bounds, which no real client shows on its own: the octets it throws
// away, a zero time that waits for nothing, and a group that is full or cut. (Real clients
// reading the last reply: tests/integration/test_last_reply.py.)
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <array>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/net/lingering_close.hpp"

namespace mailtap::net {
namespace {

using namespace std::chrono_literals;

struct Connection {
  asio::ip::tcp::socket server;  // mailtap's end
  asio::ip::tcp::socket client;
};

Connection connect(asio::io_context& io) {
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  return {acceptor.accept(), std::move(client)};
}

// What the client reads until the end, and whether that end was clean (a FIN, not a reset).
struct ClientEnd {
  std::string read;
  bool clean = false;
};
ClientEnd read_to_the_end(asio::ip::tcp::socket& client) {
  ClientEnd out;
  std::error_code ec;
  asio::read(client, asio::dynamic_buffer(out.read), ec);
  // A reset right behind the FIN still reads as the end, and leaves its error on the socket.
  int error = 0;
  socklen_t size = sizeof error;
  getsockopt(client.native_handle(), SOL_SOCKET, SO_ERROR, &error, &size);
  out.clean = ec == asio::error::eof && error == 0;
  return out;
}

// A lingering close started on `io`: `done` once it returned `lingered`.
struct Closing {
  Lingered lingered;
  bool done = false;
};
void start(asio::io_context& io, std::function<asio::awaitable<Lingered>()> close,
           Closing& closing) {
  asio::co_spawn(
      io,
      [close = std::move(close), &closing]() -> asio::awaitable<void> {
        closing.lingered = co_await close();
        closing.done = true;
      },
      asio::detached);
}
void start_linger(asio::io_context& io, asio::ip::tcp::socket& server, LingerLimits limits,
                  Closing& closing) {
  start(
      io, [&server, limits] { return linger_then_close(server, limits); }, closing);
}

// Runs `io` until its work is done: a wait that a bound should have ended leaves the
// lingering close unfinished (the test fails) instead of hanging the test.
void run_bounded(asio::io_context& io) {
  io.run_for(60s);
}

TEST(LingeringClose, TheClientReadsTheReplyAndAFinWhileItsInputIsThrownAway) {
  asio::io_context io;
  Connection c = connect(io);
  asio::write(c.client, asio::buffer(std::string(10000, 'x')));  // typed ahead, never read
  asio::write(c.server, asio::buffer(std::string("421 bye\r\n")));
  Closing closing;
  start_linger(io, c.server, {60s, std::size_t{1} << 20}, closing);
  io.poll();  // the FIN is out, the typed bytes read
  const ClientEnd end = read_to_the_end(c.client);
  EXPECT_EQ(end.read, "421 bye\r\n");
  EXPECT_TRUE(end.clean);
  c.client.close();  // the client closes: the linger ends
  run_bounded(io);
  ASSERT_TRUE(closing.done);
  EXPECT_EQ(closing.lingered.discarded, 10000U);
  EXPECT_TRUE(closing.lingered.client_closed);
  EXPECT_FALSE(closing.lingered.client_reset);
  EXPECT_FALSE(closing.lingered.octet_limit || closing.lingered.time_limit);
  EXPECT_FALSE(c.server.is_open());
}

// The reply came, and the client closed with it unread: its kernel resets the connection, and
// the close says so (the session records the reply as not delivered).
TEST(LingeringClose, TellsAClientThatResetOnItsReplyUnread) {
  asio::io_context io;
  Connection c = connect(io);
  asio::write(c.server, asio::buffer(std::string("221 bye\r\n")));
  c.client.wait(asio::socket_base::wait_read);
  c.client.close();
  Closing closing;
  start_linger(io, c.server, {60s, std::size_t{1} << 20}, closing);
  run_bounded(io);
  ASSERT_TRUE(closing.done);
  EXPECT_TRUE(closing.lingered.client_reset);
  EXPECT_TRUE(closing.lingered.client_closed);
  EXPECT_EQ(closing.lingered.discarded, 0U);
}

// A client that typed `typed` octets and stays connected, closed with `limits`: what the
// close made of them, and whether the client then read a clean end (a FIN, not a reset).
struct AfterTyping {
  Lingered lingered;
  bool clean_end = false;
};
AfterTyping close_after_typing(std::size_t typed, LingerLimits limits) {
  asio::io_context io;
  Connection c = connect(io);
  asio::write(c.client, asio::buffer(std::string(typed, 'x')));
  Closing closing;
  start_linger(io, c.server, limits, closing);
  run_bounded(io);
  EXPECT_TRUE(closing.done);
  EXPECT_FALSE(c.server.is_open());
  return {closing.lingered, read_to_the_end(c.client).clean};
}

TEST(LingeringClose, StopsAtItsOctetsWithTheClientStillSending) {
  const AfterTyping after = close_after_typing(20000, {60s, 4096});
  EXPECT_EQ(after.lingered.discarded, 4096U);
  EXPECT_FALSE(after.lingered.client_closed);
  EXPECT_TRUE(after.lingered.octet_limit);
  EXPECT_FALSE(after.lingered.time_limit);
}

TEST(LingeringClose, SaysWhenItsTimeRanOutWithTheClientStillThere) {
  const AfterTyping after = close_after_typing(300, {200ms, std::size_t{1} << 20});
  EXPECT_EQ(after.lingered.discarded, 300U);
  EXPECT_FALSE(after.lingered.client_closed);
  EXPECT_TRUE(after.lingered.time_limit);
  EXPECT_FALSE(after.lingered.octet_limit);
}

TEST(LingeringClose, WithoutTimeReadsWhatHasComeAndWaitsForNothing) {
  const AfterTyping after = close_after_typing(300, {0s, std::size_t{1} << 20});
  EXPECT_EQ(after.lingered.discarded, 300U);
  EXPECT_FALSE(after.lingered.client_closed);
  EXPECT_FALSE(after.lingered.time_limit || after.lingered.octet_limit);
  // Nothing was left unread: the client gets a clean end, not a reset.
  EXPECT_TRUE(after.clean_end);
}

TEST(LingeringClose, AGroupBeyondItsCapacityAndOnceCutWaitsForNobody) {
  asio::io_context io;
  LingerGroup group(1);
  std::vector<std::shared_ptr<asio::ip::tcp::socket>> servers;
  std::vector<asio::ip::tcp::socket> clients;
  for (int i = 0; i < 3; ++i) {
    Connection c = connect(io);
    servers.push_back(std::make_shared<asio::ip::tcp::socket>(std::move(c.server)));
    clients.push_back(std::move(c.client));
  }
  asio::write(clients[1], asio::buffer(std::string(50, 'x')));
  std::array<Closing, 3> closing;
  const auto start_in_group = [&](std::size_t i) {
    start(
        io,
        [&group, &servers, i] {
          return group.close(servers[i], {3600s, 1024});
        },
        closing[i]);
  };
  start_in_group(0);
  start_in_group(1);
  io.poll();
  // The group holds one: the second read what had come and closed without waiting.
  ASSERT_TRUE(closing[1].done);
  EXPECT_EQ(closing[1].lingered.discarded, 50U);
  EXPECT_FALSE(closing[0].done);
  group.cut();
  run_bounded(io);
  ASSERT_TRUE(closing[0].done);
  EXPECT_FALSE(closing[0].lingered.client_closed);
  EXPECT_FALSE(closing[0].lingered.time_limit);  // cut, not timed out
  // Once cut, none waits (the group is empty again).
  io.restart();
  start_in_group(2);
  run_bounded(io);
  ASSERT_TRUE(closing[2].done);
}

// The acceptor's wait: not while the group has room, until a place is given back when full
// (the client of the member closed), at once once cut. A place admit() took counts at once,
// before its close begins.
TEST(LingeringClose, AFullGroupHoldsTheNextClientUntilAPlaceIsGivenBack) {
  asio::io_context io;
  LingerGroup group(1);
  bool room = false;
  const auto wait_for_room = [&] {
    room = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await group.wait_for_room();
          room = true;
        },
        asio::detached);
  };
  wait_for_room();
  io.poll();
  EXPECT_TRUE(room);  // empty

  Connection c = connect(io);
  auto server = std::make_shared<asio::ip::tcp::socket>(std::move(c.server));
  LingerGroup::Place place = group.admit(server);
  ASSERT_TRUE(place);
  EXPECT_FALSE(group.admit(server));  // full: a second close would not wait
  io.restart();
  wait_for_room();
  io.poll();
  EXPECT_FALSE(room);  // the place taken counts before its close began

  Closing closing;
  start(
      io,
      [&group, &server, place = std::make_shared<LingerGroup::Place>(std::move(place))] {
        return group.close(std::move(*place), server, {3600s, 1024});
      },
      closing);
  io.restart();
  io.poll();
  EXPECT_FALSE(closing.done);
  EXPECT_FALSE(room);
  c.client.close();  // the client closes: its place is given back, the waiter goes on
  io.restart();
  run_bounded(io);
  ASSERT_TRUE(closing.done);
  EXPECT_TRUE(closing.lingered.client_closed);
  EXPECT_TRUE(room);

  // Full again, then cut: the waiter goes on at once, and nobody lingers.
  Connection d = connect(io);
  auto other = std::make_shared<asio::ip::tcp::socket>(std::move(d.server));
  LingerGroup::Place held = group.admit(other);
  ASSERT_TRUE(held);
  io.restart();
  wait_for_room();
  io.poll();
  EXPECT_FALSE(room);
  group.cut();
  io.restart();
  run_bounded(io);
  EXPECT_TRUE(room);
}

// The acceptor waits for room only while the next client would need it: once it would not
// (a session ended, so it gets a session), look_again() ends the wait, places still all held.
TEST(LingeringClose, AWaitForRoomEndsWhenTheRoomIsNoLongerNeeded) {
  asio::io_context io;
  LingerGroup group(1);
  Connection c = connect(io);
  auto server = std::make_shared<asio::ip::tcp::socket>(std::move(c.server));
  LingerGroup::Place place = group.admit(server);
  ASSERT_TRUE(place);
  bool needed = true;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await group.wait_for_room([&needed] { return needed; });
        done = true;
      },
      asio::detached);
  io.poll();
  EXPECT_FALSE(done);  // full, and needed
  group.look_again();
  io.restart();
  io.poll();
  EXPECT_FALSE(done);  // asked again: still needed
  needed = false;
  group.look_again();
  io.restart();
  run_bounded(io);
  EXPECT_TRUE(done);
  EXPECT_TRUE(place);  // the place is still held

  // A look_again() before the wait began is not lost.
  needed = true;
  done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await group.wait_for_room([&needed] {
          const bool was = needed;
          needed = false;  // no longer needed by the second look
          return was;
        });
        done = true;
      },
      asio::detached);
  group.look_again();
  io.restart();
  run_bounded(io);
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace mailtap::net
