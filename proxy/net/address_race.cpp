#include "proxy/net/address_race.hpp"

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

namespace mailtap::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}  // namespace

std::vector<asio::ip::tcp::endpoint> interleave_families(
    const std::vector<asio::ip::tcp::endpoint>& endpoints) {
  if (endpoints.empty()) return {};
  const bool first_v6 = endpoints.front().address().is_v6();
  std::vector<asio::ip::tcp::endpoint> first, second;
  for (const auto& e : endpoints) (e.address().is_v6() == first_v6 ? first : second).push_back(e);
  std::vector<asio::ip::tcp::endpoint> out;
  out.reserve(endpoints.size());
  for (std::size_t i = 0; i < std::max(first.size(), second.size()); ++i) {
    if (i < first.size()) out.push_back(first[i]);
    if (i < second.size()) out.push_back(second[i]);
  }
  return out;
}

bool ConnectAttempt::failed() const {
  return done && error && error != asio::error::operation_aborted;
}

std::string address_label(const asio::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  return endpoint.address().is_v6() ? "[" + address + "]:" + port : address + ":" + port;
}

// Shared with the attempts' coroutines, which may finish after the race (a closed attempt
// completes with operation_aborted once connect() has returned).
struct AddressRace::State {
  State(const asio::any_io_executor& executor, std::chrono::steady_clock::duration d)
      : ex(executor), delay(d), wake(executor) {}

  asio::any_io_executor ex;
  std::chrono::steady_clock::duration delay;
  // Cancelled by each attempt as it ends, so that connect() looks again.
  asio::steady_timer wake;
  std::vector<ConnectAttempt> attempts;
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> sockets;  // one per attempt, same index
  std::optional<std::size_t> winner;
  bool cancelled = false;
  bool over = false;  // connect() has returned: an attempt connecting now is closed

  // `reserve`: the descriptor kept for this attempt's socket, which takes its place here. A
  // socket it could not open is opened by the connect, which fails as it did.
  void start(const std::shared_ptr<State>& self, const asio::ip::tcp::endpoint& endpoint,
             DescriptorReserve* reserve) {
    const std::size_t i = attempts.size();
    attempts.push_back(ConnectAttempt{endpoint, false, {}});
    sockets.push_back(std::make_unique<asio::ip::tcp::socket>(ex));
    if (reserve) {
      std::error_code ignored;
      reserve->exchange([&] { sockets.back()->open(endpoint.protocol(), ignored); });
    }
    asio::co_spawn(ex, attempt(self, i), asio::detached);
  }

  static asio::awaitable<void> attempt(std::shared_ptr<State> self, std::size_t i) {
    const asio::ip::tcp::endpoint endpoint = self->attempts[i].endpoint;
    auto [ec] = co_await self->sockets[i]->async_connect(endpoint, use_tuple);
    ConnectAttempt& a = self->attempts[i];
    a.done = true;
    a.error = ec;
    if (!ec && !self->winner && !self->cancelled && !self->over) {
      self->winner = i;
    } else if (!ec) {
      std::error_code ignored;
      self->sockets[i]->close(ignored);  // connected too late: another answered first
    }
    self->wake.cancel();
  }

  bool all_done() const {
    return std::all_of(attempts.begin(), attempts.end(),
                       [](const ConnectAttempt& a) { return a.done; });
  }

  void close_all_but_winner() {
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (winner && *winner == i) continue;
      std::error_code ignored;
      sockets[i]->close(ignored);
    }
  }
};

AddressRace::AddressRace(const asio::any_io_executor& ex, std::chrono::steady_clock::duration delay)
    : state_(std::make_shared<State>(ex, delay)) {}

AddressRace::~AddressRace() {
  state_->over = true;
  state_->close_all_but_winner();
}

asio::awaitable<std::optional<asio::ip::tcp::socket>> AddressRace::connect(
    std::vector<asio::ip::tcp::endpoint> endpoints, DescriptorReserve* reserve) {
  std::shared_ptr<State> s = state_;
  std::size_t next = 0;
  auto next_start = std::chrono::steady_clock::now();
  while (!s->winner && !s->cancelled) {
    const bool more = next < endpoints.size();
    // The next address goes when the delay is up, or at once when every attempt has failed.
    if (more && (s->all_done() || std::chrono::steady_clock::now() >= next_start)) {
      s->start(s, endpoints[next++], std::exchange(reserve, nullptr));
      next_start = std::chrono::steady_clock::now() + s->delay;
      continue;
    }
    if (!more && s->all_done()) break;
    if (more)
      s->wake.expires_at(next_start);
    else
      s->wake.expires_at(asio::steady_timer::time_point::max());
    auto [ec] = co_await s->wake.async_wait(use_tuple);
    (void)ec;  // expired (the delay) or cancelled (an attempt ended): look again either way
  }
  s->over = true;
  s->close_all_but_winner();
  if (!s->winner || s->cancelled) co_return std::nullopt;
  co_return std::move(*s->sockets[*s->winner]);
}

void AddressRace::cancel() {
  state_->cancelled = true;
  state_->close_all_but_winner();
  state_->wake.cancel();
}

std::optional<asio::ip::tcp::endpoint> AddressRace::connected() const {
  if (!state_->winner || state_->cancelled) return std::nullopt;
  return state_->attempts[*state_->winner].endpoint;
}

const std::vector<ConnectAttempt>& AddressRace::attempts() const {
  return state_->attempts;
}

std::string AddressRace::describe_attempts() const {
  std::string out;
  for (const ConnectAttempt& a : state_->attempts) {
    if (!out.empty()) out += "; ";
    out += describe_attempt(a);
  }
  return out;
}

std::string AddressRace::describe_attempt(const ConnectAttempt& a) {
  const std::string address = address_label(a.endpoint) + ": ";
  if (!a.done || a.error == asio::error::operation_aborted) return address + "no answer";
  if (a.error) return address + a.error.message();
  return address + "connected";
}

}  // namespace mailtap::net
