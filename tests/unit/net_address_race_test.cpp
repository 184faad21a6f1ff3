// Connecting to a name's addresses as RFC 8305 has it: an address that drops the SYN (a
// listener whose queue is full, as a host with broken IPv6 routing looks) does not keep the
// next one from being tried after the delay; every failure is named; cancel() ends the race.
#include "proxy/net/address_race.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace mailtap::net {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

const asio::ip::address loopback = asio::ip::make_address("127.0.0.1");

// A port nobody listens on (the kernel refuses a connection at once).
tcp::endpoint refusing_endpoint(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(loopback, 0));
  const tcp::endpoint e = a.local_endpoint();
  a.close();
  return e;
}

// A listener whose accept queue is full: further SYNs are dropped, and a connection attempt
// waits (a blackholed address).
struct Blackhole {
  explicit Blackhole(asio::io_context& io) : acceptor(io) {
    acceptor.open(tcp::v4());
    acceptor.bind(tcp::endpoint(loopback, 0));
    acceptor.listen(0);
    for (int i = 0; i < 3; ++i) {
      fill.emplace_back(io);
      fill.back().async_connect(acceptor.local_endpoint(), [](const std::error_code&) {});
    }
    io.run_for(200ms);
    io.restart();
  }
  tcp::acceptor acceptor;
  std::vector<tcp::socket> fill;
};

struct Outcome {
  std::optional<tcp::socket> socket;
  std::chrono::steady_clock::duration took{};
  bool done = false;
};

// Runs connect() and stops `io` as it returns, so that the test looks at the race as it ended.
void race(asio::io_context& io, AddressRace& r, std::vector<tcp::endpoint> endpoints,
          Outcome& out) {
  asio::co_spawn(
      io,
      [&io, &r, &out, endpoints]() -> asio::awaitable<void> {
        const auto start = std::chrono::steady_clock::now();
        out.socket = co_await r.connect(endpoints);
        out.took = std::chrono::steady_clock::now() - start;
        out.done = true;
        io.stop();
      },
      asio::detached);
}

TEST(AddressRace, ABlackholedFirstAddressGivesWayToTheNextAfterTheDelay) {
  asio::io_context io;
  Blackhole hole(io);
  tcp::acceptor server(io, tcp::endpoint(loopback, 0));
  AddressRace r(io.get_executor(), 100ms);
  Outcome out;
  race(io, r, {hole.acceptor.local_endpoint(), server.local_endpoint()}, out);
  io.run_for(5s);
  ASSERT_TRUE(out.done);
  ASSERT_TRUE(out.socket.has_value());
  std::error_code ec;
  EXPECT_EQ(out.socket->remote_endpoint(ec), server.local_endpoint());
  EXPECT_LT(out.took, 2s);
  ASSERT_EQ(r.attempts().size(), 2u);
  EXPECT_FALSE(r.attempts()[0].done);  // still waiting when the second answered
  EXPECT_NE(
      r.describe_attempts().find(address_label(hole.acceptor.local_endpoint()) + ": no answer"),
      std::string::npos)
      << r.describe_attempts();
}

TEST(AddressRace, AFailureStartsTheNextAddressAtOnceAndEveryFailureIsNamed) {
  asio::io_context io;
  const tcp::endpoint a = refusing_endpoint(io), b = refusing_endpoint(io);
  AddressRace r(io.get_executor(), 10s);  // a delay that would show
  Outcome out;
  race(io, r, {a, b}, out);
  io.run_for(5s);
  ASSERT_TRUE(out.done);
  EXPECT_FALSE(out.socket.has_value());
  EXPECT_LT(out.took, 2s);
  const std::string d = r.describe_attempts();
  EXPECT_NE(d.find(address_label(a) + ": Connection refused; " + address_label(b) +
                   ": Connection refused"),
            std::string::npos)
      << d;
}

TEST(AddressRace, CancelEndsAPendingRace) {
  asio::io_context io;
  Blackhole hole(io);
  AddressRace r(io.get_executor(), 100ms);
  Outcome out;
  race(io, r, {hole.acceptor.local_endpoint()}, out);
  asio::steady_timer later(io, 300ms);
  later.async_wait([&r](const std::error_code&) { r.cancel(); });
  io.run_for(5s);
  ASSERT_TRUE(out.done);
  EXPECT_FALSE(out.socket.has_value());
  EXPECT_LT(out.took, 2s);
}

TEST(AddressRace, FamiliesTakeTurnsFromTheFirstAddresssFamily) {
  const auto v6a = tcp::endpoint(asio::ip::make_address("2001:db8::1"), 25);
  const auto v6b = tcp::endpoint(asio::ip::make_address("2001:db8::2"), 25);
  const auto v4a = tcp::endpoint(asio::ip::make_address("192.0.2.1"), 25);
  const auto v4b = tcp::endpoint(asio::ip::make_address("192.0.2.2"), 25);
  EXPECT_EQ(interleave_families({v6a, v6b, v4a, v4b}),
            (std::vector<tcp::endpoint>{v6a, v4a, v6b, v4b}));
  EXPECT_EQ(interleave_families({v4a, v6a, v6b}), (std::vector<tcp::endpoint>{v4a, v6a, v6b}));
  EXPECT_EQ(address_label(v6a), "[2001:db8::1]:25");
}

}  // namespace
}  // namespace mailtap::net
