// One side of a session's connection: a TCP socket that may be upgraded to TLS in place
// (STARTTLS), or that is TLS from the first byte (implicit), or stays plain. The upstream link
// is the TLS client (--tls); the client's link, with --local-tls, the TLS server.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <tuple>

#include "proxy/net/descriptor_reserve.hpp"
#include "proxy/net/lingering_close.hpp"
#include "proxy/net/tls_stream.hpp"

namespace mailtap::net {

class Link {
 public:
  // A link to connect (its socket is opened by the caller), TLS client side.
  Link(const asio::any_io_executor& ex, asio::ssl::context& ctx)
      : socket_(ex), ctx_(ctx.native_handle()), role_(TlsStream::Role::client) {}
  // An accepted connection; `server_ctx` (may be null: never TLS) makes it the TLS server side.
  Link(asio::ip::tcp::socket socket, SSL_CTX* server_ctx)
      : socket_(std::move(socket)), ctx_(server_ctx), role_(TlsStream::Role::server) {}

  asio::ip::tcp::socket& socket() { return socket_; }
  // The descriptor kept for the socket until it is opened (see descriptor_reserve.hpp): given
  // when the session's client was accepted, null when none was.
  void hold_socket_reserve(std::unique_ptr<DescriptorReserve> reserve) {
    socket_reserve_ = std::move(reserve);
  }
  DescriptorReserve* socket_reserve() { return socket_reserve_.get(); }
  // Creates the TLS layer on the connected socket (its handshake is the caller's).
  TlsStream& start_tls();
  TlsStream* tls() { return tls_.get(); }
  bool tls_active() const { return tls_active_; }
  void set_tls_active() { tls_active_ = true; }

  using ReadResult = std::tuple<std::error_code, std::size_t>;
  // See TlsStream::read_some: with TLS the bytes are in `buf` on return and a buffer shared
  // with other links will do if consumed before the caller next suspends.
  asio::awaitable<ReadResult> read_some(asio::mutable_buffer buf);
  // read_some for a reader that may stop wanting bytes while it waits for them: in plain text
  // `still_wanted` is asked each time the socket is ready (bytes or an error), before anything
  // is read, and when it says no nothing is (nullopt): the bytes stay in the socket for a later
  // read, or for a TLS handshake. With TLS it is not asked.
  asio::awaitable<std::optional<ReadResult>> read_some_if(
      asio::mutable_buffer buf, const std::function<bool()>& still_wanted);
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(asio::const_buffer buf);
  // One attempt that never waits (see TlsStream::write_now): the octets written, all of `buf`
  // unless `ec` is set; asio::error::would_block when the socket is full, which with TLS can
  // come with all of `buf` taken and some of its records still to send (flushed() is false).
  std::size_t write_now(asio::const_buffer buf, std::error_code& ec);
  // Everything written has reached the socket; if not, write() (of no bytes, or of more) sends
  // the rest first.
  bool flushed() const { return tls_ == nullptr || tls_->flushed(); }
  // Of the octets write_now() took and write() was given, those not on the socket: with TLS in
  // records waiting for it (TlsStream::unsent_plaintext), and the rest of a write() under way
  // or of one that failed. They are the last ones given.
  std::size_t unsent() const;
  // The octets the socket has taken in all (plain text, then with TLS its ciphertext, the
  // handshake's included): what the kernel's count of unacknowledged octets counts from.
  std::uint64_t socket_octets() const {
    return plain_on_socket_ + (tls_ ? tls_->ciphertext_on_socket() : 0);
  }
  // Of those, the ones the peer has not acknowledged yet (Linux SIOCOUTQ), nullopt where the
  // kernel cannot say. A system call: for a session waiting to know whether the server has
  // all of a command (DeliveryWait), never per write.
  std::optional<std::uint64_t> unacknowledged_octets();
  // Nothing more goes to the socket: with TLS the records waiting for it are dropped; a write()
  // under way ends now with asio::error::operation_aborted (the socket's waits are cancelled:
  // a read under way ends so too), as do later writes. Returns what unsent() said: octets the
  // peer will never get.
  std::size_t stop_output();
  // Sends TLS close_notify (without waiting for the peer's), then closes the socket.
  asio::awaitable<void> close_gracefully();
  // The client's side, once its last reply is written: TLS close_notify, then a lingering
  // close (see lingering_close.hpp), which cut_linger() ends early. Inside TLS it counts the
  // client's plaintext: a client that ends with its close_notify sent nothing after the end.
  asio::awaitable<Lingered> close_lingering(LingerLimits limits);
  // A shutdown: a lingering close under way ends now (what the client sent by then is still
  // read), and one to come does not wait.
  void cut_linger();
  // Closes the socket, and ends a connect under way (see while_connecting).
  void close();
  // A peer that does not take what is written to it: nothing more goes (as stop_output: a
  // write under way ends with operation_aborted, TLS records waiting are dropped), and the
  // connection ends with a TCP reset rather than a FIN behind output the peer will not read,
  // with no lingering close after it.
  void reset();
  bool closed() const { return closed_; }
  // While the connector races a name's addresses on sockets of its own, how close() ends that
  // race (null once it is over): a shutdown must not wait for --timeout-connect.
  void while_connecting(std::function<void()> cancel) { cancel_connect_ = std::move(cancel); }

 private:
  // Plain text, in two steps, so that `buf` is only touched once there are bytes: wait until
  // the socket has bytes (or an error), then take what is there without waiting (would_block or
  // try_again: nothing after all, wait again).
  asio::awaitable<std::error_code> wait_readable();
  std::size_t read_now(asio::mutable_buffer buf, std::error_code& ec);
  asio::awaitable<std::tuple<std::error_code, std::size_t>> write_plain(asio::const_buffer buf);
  // The lingering close's read inside TLS (see close_lingering); `records` goes false once
  // they cannot be read.
  std::size_t read_plaintext_after_end(asio::mutable_buffer buffer, std::error_code& ec,
                                       bool& records);

  asio::ip::tcp::socket socket_;
  std::unique_ptr<DescriptorReserve> socket_reserve_;
  std::function<void()> cancel_connect_;
  bool closed_ = false;
  bool lingering_ = false;   // close_lingering() is waiting for the client
  bool linger_cut_ = false;  // cut_linger()
  SSL_CTX* ctx_;
  TlsStream::Role role_;
  std::unique_ptr<TlsStream> tls_;
  bool tls_active_ = false;
  bool writing_ = false;         // a write() is under way
  bool output_stopped_ = false;  // stop_output()
  // Of the write() under way, or of one that failed, what is not on the socket (plain text; or
  // any write() after stop_output()).
  std::size_t plain_unsent_ = 0;
  std::uint64_t plain_on_socket_ = 0;  // octets the socket took from write_now() in plain text
};

}  // namespace mailtap::net
