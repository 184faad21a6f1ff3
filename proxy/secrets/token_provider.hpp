// --oauth2-token-cmd: OAuth access tokens for XOAUTH2/OAUTHBEARER, shared by every session.
//
// The command runs when a session asks for a token and none is cached (an --auth-user session
// asks as it starts, see Session::start_token_prefetch), on the provider's own thread (never on
// an I/O thread); sessions that ask while it runs wait for that same run. stop() (shutdown)
// kills a running command and answers every request with an error.
// A token is cached in memory only (a Secret) while it is valid: until `expires_in` minus a
// margin when the command prints one (see token_output.hpp), else for a few minutes. When the
// server refuses a token, the session calls invalidate() with the token's generation and asks
// again, so the command runs again once; a second refusal is the session's failure.
//
// Use from a coroutine:
//   TokenProvider::Result r = co_await provider.get();
//   if (!r.token) -> explain r.error; else use r.token->value, and after a rejection
//   provider.invalidate(r.token->generation) and get() once more.
// Or with a callback: provider.async_get(executor, [](TokenProvider::Result r) { ... }).
// Completions run on the caller's executor (or the handler's associated one, e.g. the
// session's strand), never inline and never on the provider's thread. An io_context may end as
// soon as its requests are answered, while the provider lives on. The provider's destructor kills
// a running command and completes every waiter with an error, so an io_context with a request
// still waiting must outlive the provider.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "proxy/secrets/token_output.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::secrets {

// How long the token command may take. A session's EHLO reply waits for it (mailtap
// authenticates before answering), and clients give up on a reply: swaks after 30 s, Nodemailer
// on its greeting after 30 s (msmtp, curl and Python's smtplib wait longer, RFC 5321 4.5.3.2
// suggests 5 minutes). 20 s leaves a 30 s client the rest for connecting, TLS and AUTH, so it
// reads mailtap's explanation instead of giving up and misreading every later reply.
inline constexpr std::chrono::seconds kTokenCommandTimeout{20};

// Runs the token command once, on the calling thread, and reads its output: one run of the
// provider below, for a caller that needs one token now (mailtap encode). Errors start with
// "--oauth2-token-cmd".
TokenParse run_token_command(const std::string& command, std::chrono::milliseconds timeout,
                             const std::atomic<bool>* cancel = nullptr);

class TokenProvider {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string command;
    std::chrono::milliseconds timeout{kTokenCommandTimeout};
    // How long a token is kept when the command says nothing about its expiry.
    std::chrono::seconds default_lifetime{std::chrono::minutes(5)};
    // A token is renewed this long before the expiry the command printed.
    std::chrono::seconds expiry_margin{std::chrono::seconds(60)};
    std::function<Clock::time_point()> now;  // for tests; steady_clock by default
  };

  struct Token {
    smtp::Secret value;
    std::uint64_t generation = 0;  // pass to invalidate() when the server refuses it
    bool fresh = false;            // from a run of the command made for this request
  };
  struct Result {
    std::optional<Token> token;
    std::string error;  // "--oauth2-token-cmd exited with status 1", no secret
  };

  explicit TokenProvider(Options options);
  ~TokenProvider();
  TokenProvider(const TokenProvider&) = delete;
  TokenProvider& operator=(const TokenProvider&) = delete;

  // Completion signature void(Result). `executor` is where the handler runs unless the handler
  // has an associated executor of its own.
  template <typename CompletionToken>
  auto async_get(const asio::any_io_executor& executor, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(Result)>(
        [this](auto handler, const asio::any_io_executor& fallback) {
          auto ex = asio::get_associated_executor(handler, fallback);
          using Handler = decltype(handler);
          using Executor = decltype(ex);
          enqueue(std::make_unique<WaiterFor<Handler, Executor>>(std::move(handler), ex));
        },
        token, executor);
  }

  asio::awaitable<Result> get();

  // The server refused the token of this generation: drop it from the cache, unless a newer
  // one has replaced it already.
  void invalidate(std::uint64_t generation);

  // The token of this generation is still the cached one, within its lifetime: a token a
  // session fetched ahead and held meanwhile is still as good as when it came.
  bool holds(std::uint64_t generation);

  // Shutting down: kills a running command and answers every request, now and later, with an
  // error, so no waiter keeps its io_context running until the command's timeout. Any thread.
  void stop();

  // How many times the command has run (logs and tests).
  std::uint64_t runs() const { return runs_.load(); }

 private:
  // A request waiting for a token. Completing it hands the waiter itself to the handler that is
  // posted to its executor, so every copy of that executor (a strand, say) and the work it holds
  // are released on the waiter's own I/O thread, inside its run(): the provider's thread never
  // drops the last reference to an executor whose io_context may be ending.
  struct Waiter {
    virtual ~Waiter() = default;
    // `gate`, when given, is held by the provider's thread while it posts: the handler waits
    // for it, so the poster's own executor copies are gone before the handler's work ends.
    virtual void post_completion(std::unique_ptr<Waiter> self, Result result,
                                 std::shared_ptr<std::mutex> gate) = 0;
  };
  template <typename Handler, typename Executor>
  struct WaiterFor final : Waiter {
    WaiterFor(Handler h, const Executor& ex) : handler(std::move(h)), work(ex) {}
    void post_completion(std::unique_ptr<Waiter> self, Result result,
                         std::shared_ptr<std::mutex> gate) override {
      const Executor ex = work.get_executor();
      asio::post(ex,
                 [self = std::move(self), r = std::move(result), gate = std::move(gate)]() mutable {
                   if (gate) {
                     const std::lock_guard wait_for_poster(*gate);
                   }
                   std::move(static_cast<WaiterFor&>(*self).handler)(std::move(r));
                 });
    }
    Handler handler;
    asio::executor_work_guard<Executor> work;  // keeps the waiter's io_context running
  };
  static void complete(std::unique_ptr<Waiter> waiter, Result result,
                       std::shared_ptr<std::mutex> gate = nullptr);

  void enqueue(std::unique_ptr<Waiter> waiter);
  void run_worker();
  // Answers every waiting request with the shutdown error (the worker, once stopping_).
  void complete_left_waiters();
  Clock::time_point now() const;

  const Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool running_ = false;  // a run is requested or under way
  std::vector<std::unique_ptr<Waiter>> waiters_;
  std::optional<smtp::Secret> cached_;
  Clock::time_point cached_until_{};
  std::uint64_t generation_ = 0;
  std::atomic<bool> cancel_{false};
  std::atomic<std::uint64_t> runs_{0};
  std::thread worker_;  // last: starts after everything it uses exists
};

}  // namespace mailtap::secrets
