// Connects to the first of a name's addresses that answers, as RFC 8305 ("Happy Eyeballs
// Version 2") has clients do: the next address is tried when the one before fails, or when it
// has not answered within a short delay (250 ms), while the earlier attempts go on. Trying the
// addresses one after another, each with the whole connect timeout, locks a user out of a
// server whose first address (often its IPv6 one) drops packets on the way, though its other
// addresses answer at once.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "proxy/net/descriptor_reserve.hpp"

namespace mailtap::net {

// RFC 8305 section 5's "Connection Attempt Delay".
inline constexpr std::chrono::milliseconds connection_attempt_delay{250};

// The resolver's order with the address families taken in turn (RFC 8305 section 4), starting
// with the family of the first address: [v6, v6, v4, v4] becomes [v6, v4, v6, v4], so a
// broken family costs one delay, not one per address of it.
std::vector<asio::ip::tcp::endpoint> interleave_families(
    const std::vector<asio::ip::tcp::endpoint>& endpoints);

// "192.0.2.1:587", "[2001:db8::1]:587".
std::string address_label(const asio::ip::tcp::endpoint& endpoint);

struct ConnectAttempt {
  asio::ip::tcp::endpoint endpoint;
  bool done = false;      // it connected or failed; false: still waiting when the race ended
  std::error_code error;  // why it failed (when done)

  // It failed on its own (refused, unreachable), not ended by the race: known to be broken.
  bool failed() const;
};

// One race over a list of addresses. All its coroutines run on the executor it is made with,
// which must run them one at a time (a session's thread, probe's and replay's io_context).
class AddressRace {
 public:
  explicit AddressRace(const asio::any_io_executor& ex,
                       std::chrono::steady_clock::duration delay = connection_attempt_delay);
  ~AddressRace();
  AddressRace(const AddressRace&) = delete;
  AddressRace& operator=(const AddressRace&) = delete;

  // The socket connected to the first address that answered, the others closed; nullopt when
  // every address failed (each error is in attempts()) or cancel() came first. Call once.
  // `reserve` (may be null): the descriptor kept for the first attempt's socket, given up for it.
  asio::awaitable<std::optional<asio::ip::tcp::socket>> connect(
      std::vector<asio::ip::tcp::endpoint> endpoints, DescriptorReserve* reserve = nullptr);
  // Ends the race now: every attempt still waiting is closed and connect() returns nullopt.
  void cancel();

  // The address connect() returned a socket for.
  std::optional<asio::ip::tcp::endpoint> connected() const;
  // The addresses tried so far, in the order tried.
  const std::vector<ConnectAttempt>& attempts() const;
  // "127.0.0.1:25: Connection refused; [::1]:25: no answer" for each attempt, in order.
  std::string describe_attempts() const;
  // One of them: "[::1]:587: Connection refused", "...: no answer", "...: connected".
  static std::string describe_attempt(const ConnectAttempt& a);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace mailtap::net
