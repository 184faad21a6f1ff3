#include "proxy/net/link.hpp"

#include <sys/ioctl.h>
#if __has_include(<linux/sockios.h>)
#include <linux/sockios.h>
#endif

#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl/error.hpp>
#include <asio/use_awaitable.hpp>
#include <utility>

namespace mailtap::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}

TlsStream& Link::start_tls() {
  tls_ = std::make_unique<TlsStream>(socket_, ctx_, role_);
  return *tls_;
}

asio::awaitable<Link::ReadResult> Link::read_some(asio::mutable_buffer buf) {
  static const std::function<bool()> always = [] { return true; };
  co_return *co_await read_some_if(buf, always);
}

asio::awaitable<std::optional<Link::ReadResult>> Link::read_some_if(
    asio::mutable_buffer buf, const std::function<bool()>& still_wanted) {
  if (tls_active_) co_return co_await tls_->read_some(buf);
  for (;;) {
    const std::error_code wait_ec = co_await wait_readable();
    if (!still_wanted()) co_return std::nullopt;
    if (wait_ec) co_return ReadResult{wait_ec, 0};
    std::error_code ec;
    const std::size_t n = read_now(buf, ec);
    if (ec != asio::error::would_block && ec != asio::error::try_again) co_return ReadResult{ec, n};
  }
}

asio::awaitable<std::error_code> Link::wait_readable() {
  auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_read, use_tuple);
  co_return ec;
}

std::size_t Link::read_now(asio::mutable_buffer buf, std::error_code& ec) {
  ec.clear();
  // The getter reads asio's flag; setting it is an ioctl, needed once per socket.
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  if (ec) return 0;
  return socket_.read_some(buf, ec);
}

asio::awaitable<std::tuple<std::error_code, std::size_t>> Link::write(asio::const_buffer buf) {
  if (output_stopped_) {
    plain_unsent_ += buf.size();  // given, never sent: unsent() says so
    co_return std::tuple{std::error_code(asio::error::operation_aborted), 0};
  }
  writing_ = true;
  auto result = tls_active_ ? co_await tls_->write(buf) : co_await write_plain(buf);
  writing_ = false;
  co_return result;
}

// As asio::async_write, but what is not on the socket yet is known while it waits
// (plain_unsent_), for stop_output().
asio::awaitable<std::tuple<std::error_code, std::size_t>> Link::write_plain(
    asio::const_buffer buf) {
  std::size_t done = 0;
  for (;;) {
    std::error_code ec;
    done += write_now(buf + done, ec);
    plain_unsent_ = buf.size() - done;
    if (!ec && done == buf.size()) co_return std::tuple{ec, done};
    if (ec && ec != asio::error::would_block) co_return std::tuple{ec, done};
    if (ec) {
      auto [wec] = co_await socket_.async_wait(asio::socket_base::wait_write, use_tuple);
      if (output_stopped_)
        co_return std::tuple{std::error_code(asio::error::operation_aborted), done};
      if (wec) co_return std::tuple{wec, done};
    }
  }
}

std::size_t Link::write_now(asio::const_buffer buf, std::error_code& ec) {
  if (output_stopped_) {
    ec = asio::error::operation_aborted;
    return 0;
  }
  if (tls_active_) return tls_->write_now(buf, ec);
  ec.clear();
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  if (ec) return 0;
  const std::size_t n = socket_.write_some(buf, ec);
  plain_on_socket_ += n;
  if (ec == asio::error::try_again) ec = asio::error::would_block;
  return n;
}

std::optional<std::uint64_t> Link::unacknowledged_octets() {
#ifdef SIOCOUTQ
  int octets = 0;
  if (!socket_.is_open() || ::ioctl(socket_.native_handle(), SIOCOUTQ, &octets) != 0 || octets < 0)
    return std::nullopt;
  return static_cast<std::uint64_t>(octets);
#else
  return std::nullopt;
#endif
}

std::size_t Link::unsent() const {
  return (tls_active_ ? tls_->unsent_plaintext() : 0) + plain_unsent_;
}

std::size_t Link::stop_output() {
  const std::size_t unsent =
      (tls_active_ ? tls_->stop_output() : 0) + std::exchange(plain_unsent_, 0);
  output_stopped_ = true;
  // The socket's one cancel() ends its read wait too; every caller has ended its dialogue by
  // then, so the reader that wakes with operation_aborted finds it finished and stops without
  // reading it as the server's close. Cancelling only the write's wait is not clean with Asio:
  // binding a cancellation slot of the link's to that wait replaces the coroutine's own, so an
  // awaitable operator (the relay's &&) cancelling the writer would no longer reach a write
  // stuck on a server that does not read (forwarding one to the other is more machinery than
  // the harm), and shutting down the sending side, which does wake the wait alone, would send
  // the server a FIN before the session chose to close.
  std::error_code ignored;
  if (writing_) socket_.cancel(ignored);
  return unsent;
}

asio::awaitable<void> Link::close_gracefully() {
  if (tls_active_ && socket_.is_open()) tls_->shutdown();
  close();
  co_return;
}

asio::awaitable<Lingered> Link::close_lingering(LingerLimits limits) {
  ReadNow read_now;
  if (tls_active_ && socket_.is_open()) {
    tls_->shutdown();
    read_now = [this, records = true](asio::mutable_buffer buffer,
                                      std::error_code& ec) mutable -> std::size_t {
      if (records) return read_plaintext_after_end(buffer, ec, records);
      return socket_.read_some(buffer, ec);
    };
  }
  if (linger_cut_) limits.time = std::chrono::steady_clock::duration::zero();
  lingering_ = true;
  const Lingered out = co_await linger_then_close(socket_, limits, std::move(read_now));
  lingering_ = false;
  close();
  co_return out;
}

// What a TLS client sends after the end is records: what it meant is their plaintext, and its
// close_notify (or a close without one) is its end, not data. Past a record that cannot be
// read (`records` set false), nothing more can be: the socket's octets are counted as they
// come.
std::size_t Link::read_plaintext_after_end(asio::mutable_buffer buffer, std::error_code& ec,
                                           bool& records) {
  const std::size_t got = tls_->read_now(buffer, ec);
  if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
  // The socket's own errors (would_block, a reset) are the lingering close's as they are.
  if (!ec || ec == asio::error::eof || ec.category() == asio::error::get_system_category())
    return got;
  records = false;
  ec.clear();
  return got;
}

void Link::cut_linger() {
  linger_cut_ = true;
  std::error_code ignored;
  if (lingering_) socket_.cancel(ignored);
}

void Link::reset() {
  stop_output();
  std::error_code ignored;
  // Linger on with a time of zero: close() discards what the socket still holds and sends a
  // reset.
  socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  closed_ = true;
  socket_.close(ignored);
}

void Link::close() {
  closed_ = true;
  if (cancel_connect_) cancel_connect_();
  std::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace mailtap::net
