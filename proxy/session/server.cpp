#include "proxy/session/server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "proxy/common/log.hpp"
#include "proxy/net/endpoint.hpp"
#include "storage/recorder.hpp"

namespace mailtap {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}

Server::Server(asio::io_context& io, SessionContext& ctx,
               std::function<asio::any_io_executor()> session_executor)
    : io_(io),
      ctx_(ctx),
      session_executor_(std::move(session_executor)),
      acceptor_(io),
      grace_timer_(io) {}

bool Server::listen(const asio::ip::tcp::endpoint& at, std::string& error) {
  if (const std::error_code ec = net::open_acceptor(acceptor_, at)) {
    error = "cannot listen on " + ctx_.listen_label + ": " + ec.message();
    return false;
  }
  return true;
}

asio::awaitable<void> Server::accept_loop() {
  for (;;) {
    // The session's thread: everything of one session runs there, so it needs no strand.
    auto [ec, socket] = co_await acceptor_.async_accept(session_executor_(), use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (ec) {
      // Out of descriptors and the like: say so, breathe, keep serving the sessions we have.
      log::error("accept failed: " + ec.message());
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (ctx_.recorder && ctx_.recorder->failed() &&
        ctx_.config.record_failure == RecordFailurePolicy::stop) {
      auto ex = socket.get_executor();
      asio::co_spawn(ex, refuse_unrecorded(std::move(socket)), asio::detached);
      continue;
    }
    start_session(std::move(socket));
  }
}

// A new client: relayed, or (over --max-sessions) answered with a 421.
void Server::start_session(asio::ip::tcp::socket socket) {
  const storage::SessionKey key = ctx_.recorder ? ctx_.recorder->new_session_key() : next_key_++;
  auto session = std::make_shared<Session>(std::move(socket), ctx_, key);
  bool over_limit = false;
  bool first_refusal = false;
  {
    std::lock_guard lock(mutex_);
    over_limit = relaying_ >= ctx_.config.max_sessions;
    if (over_limit) {
      // Refusals are short but still hold a descriptor: past a second limit's worth of them,
      // close without a word rather than pile up.
      if (refusing_ >= ctx_.config.max_sessions) return;
      ++refusing_;
      first_refusal = !over_limit_reported_;
      over_limit_reported_ = true;
    } else {
      ++relaying_;
      over_limit_reported_ = false;
    }
    sessions_[key] = {session, over_limit};
  }
  if (first_refusal)
    log::error("too many sessions (" + std::to_string(ctx_.config.max_sessions) +
               "): refusing new clients with 421 until one ends (--max-sessions)");
  auto ex = session->executor();
  auto work = over_limit ? session->run_refused("4.3.2 mailtap: too many sessions (" +
                                                    std::to_string(ctx_.config.max_sessions) +
                                                    "); try again later",
                                                /*log=*/false)
                         : session->run();
  // The handler owns the session until its coroutine is done (the map holds weak pointers).
  asio::co_spawn(ex, std::move(work), [this, key, session](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("session " + std::to_string(key) + " failed: " + ex.what());
      }
    }
    session_ended(key);
  });
}

asio::awaitable<void> Server::refuse_unrecorded(asio::ip::tcp::socket socket) {
  const std::string reason = ctx_.recorder->failure_reason();
  {
    std::lock_guard lock(mutex_);
    if (!recording_failure_reported_) {
      recording_failure_reported_ = true;
      log::error("recording failed (" + reason +
                 "); refusing new sessions (--record-failure=continue relays unrecorded)");
    }
  }
  const std::string line =
      "421 4.3.0 mailtap: recording failed (" + reason + "); not accepting sessions\r\n";
  co_await asio::async_write(socket, asio::buffer(line), use_tuple);
  std::error_code ignored;
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

void Server::session_ended(storage::SessionKey id) {
  std::function<void()> drained;
  {
    std::lock_guard lock(mutex_);
    if (auto it = sessions_.find(id); it != sessions_.end()) {
      --(it->second.refusal ? refusing_ : relaying_);
      sessions_.erase(it);
    }
    if (shutting_down_ && sessions_.empty() && !drained_) {
      drained_ = true;
      drained = on_drained_;
    }
  }
  if (drained) {
    grace_timer_.cancel();
    drained();
  }
}

void Server::end_all_sessions() {
  std::lock_guard lock(mutex_);
  for (auto& [id, entry] : sessions_)
    if (auto s = entry.session.lock()) s->shutdown_now();
}

void Server::begin_shutdown(std::chrono::steady_clock::duration grace) {
  std::function<void()> drained;
  {
    std::lock_guard lock(mutex_);
    if (shutting_down_) {
      // Asked twice: do not wait for the grace period.
      grace_timer_.cancel();
    } else {
      shutting_down_ = true;
      std::error_code ignored;
      acceptor_.close(ignored);
      if (!sessions_.empty()) {
        log::info("shutting down: waiting up to " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(grace).count()) +
                  "s for " + std::to_string(sessions_.size()) +
                  " session(s) to finish (signal again to end them now)");
        grace_timer_.expires_after(grace);
        grace_timer_.async_wait([this](const std::error_code&) { end_all_sessions(); });
        return;
      }
      drained_ = true;
      drained = on_drained_;
    }
  }
  if (drained) drained();
}

}  // namespace mailtap
