// mailtap_bench_sink: a fast STARTTLS SMTP sink for the benchmarks.
//
// It plays the upstream for mailtap and stunnel: greets, offers PIPELINING, CHUNKING,
// STARTTLS (and AUTH PLAIN once TLS is up), accepts every command, swallows DATA and BDAT
// bodies without keeping them, and answers QUIT with 221. Replies to pipelined commands are
// batched until the input holds no further complete command, as real servers do, so the sink
// never costs a round trip the proxy would be blamed for.
//
// Usage: mailtap_bench_sink --listen 127.0.0.1:PORT --cert CHAIN.pem --key KEY.pem
//                           [--threads N] [--resumption]
// TLS session resumption is off by default: stunnel's client caches sessions and mailtap does
// not, so with resumption the comparison would measure different handshakes.
// On SIGINT/SIGTERM it prints counters (sessions, TLS handshakes, resumed, messages, bytes).
#include <openssl/ssl.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Counters {
  std::atomic<std::uint64_t> sessions{0}, handshakes{0}, resumed{0}, handshake_failures{0},
      messages{0}, body_bytes{0};
};
Counters counters;

// One client connection: plain until STARTTLS, then TLS over the same socket.
class SinkConnection {
 public:
  SinkConnection(tcp::socket socket, asio::ssl::context& tls) : stream_(std::move(socket), tls) {}

  asio::awaitable<void> run() {
    counters.sessions++;
    reply("220 sink.bench ESMTP ready\r\n");
    for (;;) {
      std::string_view line;
      if (!co_await next_line(line)) break;
      if (!co_await handle(line)) break;
    }
    co_await flush();
    co_await close();
  }

 private:
  static bool verb_is(std::string_view line, std::string_view verb) {
    if (line.size() < verb.size()) return false;
    for (std::size_t i = 0; i < verb.size(); ++i)
      if ((line[i] & ~0x20) != verb[i]) return false;
    return line.size() == verb.size() || line[verb.size()] == ' ';
  }

  // Returns false when the session is over.
  asio::awaitable<bool> handle(std::string_view line) {
    if (verb_is(line, "EHLO")) {
      reply(tls_ ? "250-sink.bench\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n"
                   "250-SIZE 0\r\n250-AUTH PLAIN\r\n250 ENHANCEDSTATUSCODES\r\n"
                 : "250-sink.bench\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n"
                   "250-STARTTLS\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (verb_is(line, "HELO")) {
      reply("250 sink.bench\r\n");
    } else if (verb_is(line, "STARTTLS") && !tls_) {
      reply("220 2.0.0 go ahead\r\n");
      co_await flush();
      if (pos_ != in_.size()) co_return false;  // pipelined past STARTTLS: injection, drop
      co_return co_await handshake();
    } else if (verb_is(line, "AUTH")) {
      // AUTH PLAIN with or without an initial response; any credentials are fine.
      if (line.find(' ', 5) == std::string_view::npos) {
        reply("334 \r\n");
        std::string_view response;
        if (!co_await next_line(response)) co_return false;
      }
      reply("235 2.7.0 authenticated\r\n");
    } else if (verb_is(line, "DATA")) {
      reply("354 end with <CRLF>.<CRLF>\r\n");
      co_await flush();
      if (!co_await skip_dot_terminated_body()) co_return false;
      counters.messages++;
      reply("250 2.0.0 queued\r\n");
    } else if (verb_is(line, "BDAT")) {
      std::string_view rest = line.substr(5);
      std::size_t size = std::strtoull(std::string(rest).c_str(), nullptr, 10);
      if (!co_await skip_exactly(size)) co_return false;
      counters.body_bytes += size;
      if (rest.find("LAST") != std::string_view::npos ||
          rest.find("last") != std::string_view::npos) {
        counters.messages++;
        reply("250 2.0.0 queued\r\n");
      } else {
        reply("250 2.0.0 chunk received\r\n");
      }
    } else if (verb_is(line, "QUIT")) {
      reply("221 2.0.0 bye\r\n");
      co_return false;
    } else {
      reply("250 2.0.0 ok\r\n");  // MAIL, RCPT, RSET, NOOP, anything else
    }
    co_return true;
  }

  void reply(std::string_view text) { out_ += text; }

  asio::awaitable<void> flush() {
    if (out_.empty()) co_return;
    std::string chunk = std::move(out_);
    out_.clear();
    if (tls_)
      co_await asio::async_write(stream_, asio::buffer(chunk), use_tuple);
    else
      co_await asio::async_write(stream_.next_layer(), asio::buffer(chunk), use_tuple);
  }

  // Replies are sent only when no complete command is waiting: one write per pipelined group.
  asio::awaitable<bool> read_more() {
    co_await flush();
    if (pos_ > 0) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
    const std::size_t old = in_.size();
    in_.resize(old + 64 * 1024);
    std::error_code ec;
    std::size_t n = 0;
    if (tls_)
      std::tie(ec, n) =
          co_await stream_.async_read_some(asio::buffer(in_.data() + old, 64 * 1024), use_tuple);
    else
      std::tie(ec, n) = co_await stream_.next_layer().async_read_some(
          asio::buffer(in_.data() + old, 64 * 1024), use_tuple);
    in_.resize(old + n);
    co_return !ec && n > 0;
  }

  asio::awaitable<bool> next_line(std::string_view& line) {
    for (;;) {
      auto eol = in_.find("\r\n", pos_);
      if (eol != std::string::npos) {
        line = std::string_view(in_).substr(pos_, eol - pos_);
        pos_ = eol + 2;
        co_return true;
      }
      if (!co_await read_more()) co_return false;
    }
  }

  // The body ends at the first "<CRLF>.<CRLF>", counting the CRLF that ended DATA.
  asio::awaitable<bool> skip_dot_terminated_body() {
    std::size_t scan = pos_ - 2;  // the DATA line's CRLF
    std::size_t body_start = pos_;
    for (;;) {
      auto end = in_.find("\r\n.\r\n", scan);
      if (end != std::string::npos) {
        counters.body_bytes += end + 2 - body_start;
        pos_ = end + 5;
        co_return true;
      }
      // Keep only the tail that could start the terminator; the body itself is not kept.
      const std::size_t cut = std::max(scan, in_.size() >= 4 ? in_.size() - 4 : 0);
      if (cut > body_start) counters.body_bytes += cut - body_start;
      in_.erase(0, cut);
      body_start = body_start > cut ? body_start - cut : 0;
      scan = 0;
      pos_ = 0;
      if (!co_await read_more()) co_return false;
    }
  }

  asio::awaitable<bool> skip_exactly(std::size_t size) {
    for (;;) {
      const std::size_t available = in_.size() - pos_;
      if (available >= size) {
        pos_ += size;
        co_return true;
      }
      size -= available;
      pos_ = in_.size();
      if (!co_await read_more()) co_return false;
    }
  }

  asio::awaitable<bool> handshake() {
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
      counters.handshake_failures++;
      co_return false;
    }
    counters.handshakes++;
    if (SSL_session_reused(stream_.native_handle())) counters.resumed++;
    tls_ = true;
    in_.clear();
    pos_ = 0;
    co_return true;
  }

  // close_notify if TLS is up, waiting at most a second for the peer's, then close.
  asio::awaitable<void> close() {
    using namespace asio::experimental::awaitable_operators;
    if (tls_) {
      asio::steady_timer timer(stream_.get_executor(), std::chrono::seconds(1));
      co_await (stream_.async_shutdown(use_tuple) || timer.async_wait(use_tuple));
    }
    std::error_code ignored;
    stream_.next_layer().close(ignored);
  }

  asio::ssl::stream<tcp::socket> stream_;
  bool tls_ = false;
  std::string in_;
  std::size_t pos_ = 0;
  std::string out_;
};

asio::awaitable<void> serve(tcp::socket socket, asio::ssl::context& tls) {
  SinkConnection connection(std::move(socket), tls);
  co_await connection.run();
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, asio::ssl::context& tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. EMFILE: keep serving the others
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), tls), asio::detached);
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: mailtap_bench_sink --listen ADDR:PORT --cert CHAIN.pem --key KEY.pem "
               "[--threads N] [--resumption]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:2587", cert, key;
  unsigned threads = 1;
  bool resumption = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--listen")
      listen = value();
    else if (a == "--cert")
      cert = value();
    else if (a == "--key")
      key = value();
    else if (a == "--threads")
      threads = std::max(1, std::atoi(value().c_str()));
    else if (a == "--resumption")
      resumption = true;
    else
      return usage();
  }
  auto colon = listen.rfind(':');
  if (cert.empty() || key.empty() || colon == std::string::npos) return usage();

  asio::ssl::context tls(asio::ssl::context::tls_server);
  std::error_code ec;
  tls.use_certificate_chain_file(cert, ec);
  if (!ec) tls.use_private_key_file(key, asio::ssl::context::pem, ec);
  if (ec) {
    std::fprintf(stderr, "sink: cannot load %s / %s: %s\n", cert.c_str(), key.c_str(),
                 ec.message().c_str());
    return 1;
  }
  if (!resumption) {
    SSL_CTX_set_options(tls.native_handle(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(tls.native_handle(), SSL_SESS_CACHE_OFF);
  }

  asio::io_context io;
  tcp::endpoint at(asio::ip::make_address(listen.substr(0, colon), ec),
                   static_cast<unsigned short>(std::atoi(listen.c_str() + colon + 1)));
  if (ec) return usage();
  tcp::acceptor acceptor(io);
  acceptor.open(at.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(at, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "sink: cannot listen on %s: %s\n", listen.c_str(), ec.message().c_str());
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const std::error_code&, int) {
    std::fprintf(stderr,
                 "sink: sessions=%llu handshakes=%llu resumed=%llu handshake_failures=%llu "
                 "messages=%llu body_bytes=%llu\n",
                 static_cast<unsigned long long>(counters.sessions.load()),
                 static_cast<unsigned long long>(counters.handshakes.load()),
                 static_cast<unsigned long long>(counters.resumed.load()),
                 static_cast<unsigned long long>(counters.handshake_failures.load()),
                 static_cast<unsigned long long>(counters.messages.load()),
                 static_cast<unsigned long long>(counters.body_bytes.load()));
    io.stop();
  });
  std::signal(SIGPIPE, SIG_IGN);
  asio::co_spawn(io, accept_loop(acceptor, tls), asio::detached);
  std::fprintf(stderr, "sink: listening on %s\n", listen.c_str());
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
