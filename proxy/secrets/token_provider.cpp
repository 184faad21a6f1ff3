#include "proxy/secrets/token_provider.hpp"

#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "proxy/secrets/run_command.hpp"
#include "proxy/secrets/token_output.hpp"

namespace mailtap::secrets {

namespace {
constexpr std::string_view kOption = "--oauth2-token-cmd";
}

TokenParse run_token_command(const std::string& command, std::chrono::milliseconds timeout,
                             const std::atomic<bool>* cancel) {
  CommandOptions options;
  options.timeout = timeout;
  options.cancel = cancel;
  CommandResult ran = run_command(command, options);
  if (!ran.ok()) {
    TokenParse failed;
    failed.error = describe_failure(kOption, ran, options);
    return failed;
  }
  TokenParse parsed = parse_token_output(ran.output.view());
  if (!parsed.value) parsed.error = std::string(kOption) + " " + parsed.error;
  return parsed;
}

TokenProvider::TokenProvider(Options options)
    : options_(std::move(options)), worker_([this] { run_worker(); }) {}

TokenProvider::~TokenProvider() {
  stop();
  if (worker_.joinable()) worker_.join();
  complete_left_waiters();
}

void TokenProvider::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cancel_ = true;
  wake_.notify_all();
}

void TokenProvider::complete_left_waiters() {
  std::vector<std::unique_ptr<Waiter>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(waiters_);
  }
  const auto gate = std::make_shared<std::mutex>();  // as in run_worker
  const std::lock_guard posting(*gate);
  for (auto& w : left)
    complete(std::move(w), {std::nullopt, std::string(kOption) + ": mailtap is shutting down"},
             gate);
}

TokenProvider::Clock::time_point TokenProvider::now() const {
  return options_.now ? options_.now() : Clock::now();
}

asio::awaitable<TokenProvider::Result> TokenProvider::get() {
  const auto executor = co_await asio::this_coro::executor;
  co_return co_await async_get(executor, asio::use_awaitable);
}

void TokenProvider::enqueue(std::unique_ptr<Waiter> waiter) {
  std::unique_lock lock(mutex_);
  if (stopping_) {
    lock.unlock();
    complete(std::move(waiter),
             {std::nullopt, std::string(kOption) + ": mailtap is shutting down"});
    return;
  }
  if (cached_ && now() < cached_until_) {
    Result r;
    r.token = Token{cached_->clone(), generation_, false};
    lock.unlock();
    complete(std::move(waiter), std::move(r));
    return;
  }
  waiters_.push_back(std::move(waiter));
  if (!running_) {
    running_ = true;
    wake_.notify_one();
  }
}

void TokenProvider::complete(std::unique_ptr<Waiter> waiter, Result result,
                             std::shared_ptr<std::mutex> gate) {
  Waiter& w = *waiter;
  w.post_completion(std::move(waiter), std::move(result), std::move(gate));
}

void TokenProvider::invalidate(std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  if (cached_ && generation == generation_) cached_.reset();
}

bool TokenProvider::holds(std::uint64_t generation) {
  std::lock_guard lock(mutex_);
  return cached_ && generation == generation_ && now() < cached_until_;
}

void TokenProvider::run_worker() {
  for (;;) {
    bool stop_now = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || running_; });
      stop_now = stopping_;
    }
    if (stop_now) {  // requests made since the last run are answered, not left waiting
      complete_left_waiters();
      return;
    }
    TokenParse fetched = run_token_command(options_.command, options_.timeout, &cancel_);
    ++runs_;
    Result result;
    std::optional<std::chrono::seconds> expires_in;
    if (fetched.value) {
      result.token = Token{std::move(fetched.value->token), 0, true};
      expires_in = fetched.value->expires_in;
    } else {
      result.error = std::move(fetched.error);
    }

    std::vector<std::unique_ptr<Waiter>> done;
    {
      std::lock_guard lock(mutex_);
      cached_.reset();
      if (result.token) {
        result.token->generation = ++generation_;
        const std::chrono::seconds lifetime =
            expires_in ? *expires_in - options_.expiry_margin : options_.default_lifetime;
        if (lifetime > std::chrono::seconds::zero()) {
          cached_ = result.token->value.clone();
          cached_until_ = now() + lifetime;
        }
      }
      running_ = false;
      done.swap(waiters_);
    }
    // Every executor copy this thread makes while posting is gone before the gate opens.
    const auto gate = std::make_shared<std::mutex>();
    std::lock_guard posting(*gate);
    for (auto& w : done) {
      Result copy;
      copy.error = result.error;
      if (result.token) {
        copy.token = Token{result.token->value.clone(), result.token->generation, true};
      }
      complete(std::move(w), std::move(copy), gate);
    }
  }
}

}  // namespace mailtap::secrets
