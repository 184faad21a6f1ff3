// --oauth2-token-cmd shared by sessions: one run for concurrent requests, a cache that expires,
// a rerun after the server refused a token, failures that say why, and an I/O thread that
// never waits for the command.
#include "proxy/secrets/token_provider.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <thread>

#include "temp_dir.hpp"

namespace mailtap::secrets {
namespace {

using namespace std::chrono_literals;
using Result = TokenProvider::Result;

// A clock the test moves by hand.
struct FakeClock {
  TokenProvider::Clock::time_point t = TokenProvider::Clock::time_point(1000h);
  std::mutex m;
  TokenProvider::Clock::time_point now() {
    std::lock_guard l(m);
    return t;
  }
  void advance(std::chrono::seconds d) {
    std::lock_guard l(m);
    t += d;
  }
};

TokenProvider::Options options(std::string cmd, FakeClock* clock = nullptr) {
  TokenProvider::Options o;
  o.command = std::move(cmd);
  if (clock) o.now = [clock] { return clock->now(); };
  return o;
}

Result get(TokenProvider& p) {
  asio::io_context io;
  Result out;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { out = co_await p.get(); }, asio::detached);
  io.run();
  return out;
}

std::string token_of(const Result& r) {
  EXPECT_TRUE(r.token) << r.error;
  return r.token ? std::string(r.token->value.view()) : std::string();
}

// Prints tok1, tok2, ... : a helper that hands out a new token on every run.
std::string rotating(const test_support::TempDir& dir, const std::string& extra = "") {
  const std::string f = dir.file("n");
  return "n=$(cat " + f + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " + f + "; echo tok$n" +
         extra;
}

TEST(TokenProvider, RunsTheCommandAndCachesTheToken) {
  test_support::TempDir dir;
  FakeClock clock;
  TokenProvider p(options(rotating(dir), &clock));
  const Result first = get(p);
  EXPECT_EQ(token_of(first), "tok1");
  EXPECT_TRUE(first.token->fresh);
  const Result second = get(p);
  EXPECT_EQ(token_of(second), "tok1");
  EXPECT_FALSE(second.token->fresh);
  EXPECT_EQ(second.token->generation, first.token->generation);
  EXPECT_EQ(p.runs(), 1u);
}

TEST(TokenProvider, WithoutAnExpiryTheTokenIsKeptAFewMinutes) {
  test_support::TempDir dir;
  FakeClock clock;
  TokenProvider p(options(rotating(dir), &clock));
  EXPECT_EQ(token_of(get(p)), "tok1");
  clock.advance(299s);
  EXPECT_EQ(token_of(get(p)), "tok1");
  clock.advance(2s);
  EXPECT_EQ(token_of(get(p)), "tok2");
  EXPECT_EQ(p.runs(), 2u);
}

TEST(TokenProvider, ThePrintedExpiryDecidesMinusAMargin) {
  test_support::TempDir dir;
  FakeClock clock;
  TokenProvider p(options(rotating(dir, "; echo expires_in=3600"), &clock));
  EXPECT_EQ(token_of(get(p)), "tok1");
  clock.advance(3539s);
  EXPECT_EQ(token_of(get(p)), "tok1");
  clock.advance(2s);  // 60 s before it expires: renewed
  EXPECT_EQ(token_of(get(p)), "tok2");
}

TEST(TokenProvider, ATokenAboutToExpireIsNotCached) {
  test_support::TempDir dir;
  FakeClock clock;
  TokenProvider p(options(rotating(dir, "; echo expires_in=30"), &clock));
  EXPECT_EQ(token_of(get(p)), "tok1");
  EXPECT_EQ(token_of(get(p)), "tok2");
}

TEST(TokenProvider, InvalidateAfterARejectionRunsTheCommandAgain) {
  test_support::TempDir dir;
  TokenProvider p(options(rotating(dir)));
  const Result rejected = get(p);
  EXPECT_EQ(token_of(rejected), "tok1");
  p.invalidate(rejected.token->generation);
  const Result retry = get(p);
  EXPECT_EQ(token_of(retry), "tok2");
  EXPECT_TRUE(retry.token->fresh);
  // A late invalidation of the old token must not throw the new one away.
  p.invalidate(rejected.token->generation);
  EXPECT_EQ(token_of(get(p)), "tok2");
  EXPECT_EQ(p.runs(), 2u);
}

// What a session that fetched a token ahead asks before it uses it: is it still as good?
TEST(TokenProvider, HoldsTheCachedGenerationUntilItExpiresOrIsRefused) {
  test_support::TempDir dir;
  FakeClock clock;
  TokenProvider p(options(rotating(dir), &clock));
  const Result first = get(p);
  EXPECT_TRUE(p.holds(first.token->generation));
  EXPECT_FALSE(p.holds(first.token->generation + 1));
  clock.advance(301s);  // past the default lifetime
  EXPECT_FALSE(p.holds(first.token->generation));
  const Result second = get(p);
  EXPECT_TRUE(p.holds(second.token->generation));
  p.invalidate(second.token->generation);
  EXPECT_FALSE(p.holds(second.token->generation));
}

TEST(TokenProvider, FailuresSayWhyAndAreNotCached) {
  TokenProvider failing(options("echo 'error: no refresh token for alice'; exit 1"));
  Result r = get(failing);
  EXPECT_FALSE(r.token);
  EXPECT_EQ(r.error, "--oauth2-token-cmd exited with status 1");
  get(failing);
  EXPECT_EQ(failing.runs(), 2u);

  TokenProvider silent(options("true"));
  EXPECT_EQ(get(silent).error, "--oauth2-token-cmd printed nothing");

  TokenProvider::Options slow = options("sleep 10");
  slow.timeout = 200ms;
  TokenProvider stuck(slow);
  EXPECT_EQ(get(stuck).error, "--oauth2-token-cmd did not finish within 200ms and was killed");
}

TEST(TokenProvider, ConcurrentRequestsShareOneRun) {
  test_support::TempDir dir;
  TokenProvider p(options("sleep 0.3; " + rotating(dir)));
  asio::io_context io;
  std::vector<std::string> tokens;
  std::mutex m;
  for (int i = 0; i < 20; ++i) {
    asio::co_spawn(
        asio::make_strand(io),
        [&]() -> asio::awaitable<void> {
          const Result r = co_await p.get();
          std::lock_guard l(m);
          tokens.push_back(token_of(r));
        },
        asio::detached);
  }
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  ASSERT_EQ(tokens.size(), 20u);
  for (const std::string& t : tokens) EXPECT_EQ(t, "tok1");
  EXPECT_EQ(p.runs(), 1u);
}

// A one-shot caller (mailtap encode, a test, a short-lived pool) ends its io_context the moment
// its sessions have their tokens, while the provider lives on. The provider's thread must not
// still hold the sessions' strands then: ASan saw it release one into a destroyed io_context.
TEST(TokenProvider, AnIoContextMayEndAsSoonAsItsRequestsAreAnswered) {
  TokenProvider::Options o = options("echo tok");
  o.default_lifetime = std::chrono::seconds::zero();  // never cached: every round runs it
  TokenProvider p(o);
  for (int round = 0; round < 25; ++round) {
    int answered = 0;
    {
      asio::io_context io;
      for (int i = 0; i < 8; ++i) {
        asio::co_spawn(
            asio::make_strand(io),
            [&]() -> asio::awaitable<void> {
              token_of(co_await p.get());
              ++answered;  // one thread runs io: no lock needed
            },
            asio::detached);
      }
      io.run();
    }
    EXPECT_EQ(answered, 8);
  }
}

TEST(TokenProvider, TheIoThreadKeepsWorkingWhileTheCommandRuns) {
  TokenProvider p(options("sleep 0.5; echo tok"));
  asio::io_context io;  // one thread: if get() blocked it, the ticker could not tick
  int ticks = 0;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        token_of(co_await p.get());
        done = true;
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io);
        while (!done) {
          t.expires_after(10ms);
          co_await t.async_wait(asio::use_awaitable);
          ++ticks;
        }
      },
      asio::detached);
  io.run();
  EXPECT_TRUE(done);
  EXPECT_GT(ticks, 5);
}

TEST(TokenProvider, CallbackInterfaceCompletesOnTheGivenExecutor) {
  TokenProvider p(options("echo tok"));
  asio::io_context io;
  std::thread::id ran_on;
  std::string token;
  p.async_get(io.get_executor(), [&](Result r) {
    ran_on = std::this_thread::get_id();
    token = token_of(r);
  });
  io.run();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(token, "tok");
}

TEST(TokenProvider, DestructionStopsARunningCommandAndAnswersWaiters) {
  test_support::TempDir dir;
  const std::string started = dir.file("started");
  asio::io_context io;
  std::string error;
  {
    TokenProvider p(options("touch " + started + "; sleep 30; echo tok"));
    p.async_get(io.get_executor(), [&](Result r) { error = r.error; });
    // Destroyed once the command runs (before, the request would just be refused).
    for (int i = 0; i < 1000 && !std::filesystem::exists(started); ++i)
      std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(std::filesystem::exists(started));
  }  // kills the sleep: this does not take 30 s
  io.run();
  EXPECT_EQ(error, "--oauth2-token-cmd was stopped: mailtap is shutting down");
}

// Shutdown: the provider lives on until the I/O threads are done, and a request that waits for a
// hung command would keep its thread running; stop() answers it now.
TEST(TokenProvider, StopKillsARunningCommandAndAnswersWaitersAndLaterRequests) {
  test_support::TempDir dir;
  const std::string started = dir.file("started");
  TokenProvider p(options("touch " + started + "; sleep 30; echo tok"));
  asio::io_context io;
  std::string error;
  p.async_get(io.get_executor(), [&](Result r) { error = r.error; });
  for (int i = 0; i < 1000 && !std::filesystem::exists(started); ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(std::filesystem::exists(started));
  p.stop();
  io.run();  // returns once the request is answered: this does not take 30 s
  EXPECT_EQ(error, "--oauth2-token-cmd was stopped: mailtap is shutting down");
  EXPECT_EQ(get(p).error, "--oauth2-token-cmd: mailtap is shutting down");
}

TEST(TokenProvider, StopBeforeAnyRunAnswersTheWaiters) {
  for (int round = 0; round < 20; ++round) {
    TokenProvider p(options("sleep 30; echo tok"));
    asio::io_context io;
    bool answered = false;
    p.async_get(io.get_executor(), [&](Result r) { answered = !r.token; });
    p.stop();
    io.run();
    EXPECT_TRUE(answered);
  }
}

}  // namespace
}  // namespace mailtap::secrets
