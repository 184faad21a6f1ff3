// mailtap_bench_load: drives plain-text SMTP sessions through a proxy and measures it.
//
// N concurrent connections each run sessions (connect, greeting, EHLO, optional AUTH PLAIN,
// optional NOOPs, K transactions MAIL/RCPT/DATA of S octets, QUIT) until --sessions have been
// run in total. With --hold every connection stops after EHLO until all N are established, so
// the proxy carries N open sessions at once before any mail moves; --hold-file then also
// writes a file and keeps every session idle until someone deletes it (run.sh reads the
// proxy's memory meanwhile, profile.sh zeroes its profiler's counters).
//
// --tls makes the generator the TLS client itself (STARTTLS to the sink, certificate and name
// verified, EHLO again): the physical limit of the same dialogue with no proxy in between.
//
// It reports one JSON object on stdout: sessions/s, messages/s, MiB/s, latency p50/p99 of a
// transaction (MAIL to the 250 after the body; of a whole session when K = 0), of a NOOP round
// trip (--noops), the generator's own CPU time, and for the process given with --pid: CPU
// seconds spent during the run, peak RSS, and thread count. --timeline-ms adds the body bytes
// written and the messages acknowledged in each interval of the run.
// Single-threaded on purpose: the generator should take as little of the machine as it can.
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proc_stats.hpp"

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 2525;
  unsigned connections = 1;
  unsigned sessions = 1;
  unsigned messages = 1;
  unsigned noops = 0;
  std::size_t size = 4096;
  bool auth = false;
  bool hold = false;
  std::string hold_file;
  bool tls = false;
  std::string ca_file;
  std::string tls_name = "localhost";
  long pid = 0;
  std::string label = "proxy";
  int timeout_seconds = 300;
  int timeline_ms = 0;
};

struct Results {
  unsigned sessions_done = 0;
  unsigned messages_done = 0;
  unsigned noops_done = 0;
  unsigned errors = 0;
  std::string first_error;
  std::vector<double> transaction_ms;
  std::vector<double> session_ms;
  std::vector<double> noop_us;
  long max_threads = 0;
  long rss_at_hold_kib = 0;
  long threads_at_hold = 0;
  std::vector<std::uint64_t> timeline_bytes;     // body octets written per interval
  std::vector<std::uint64_t> timeline_messages;  // messages acknowledged per interval
};

// A message is a header, then 78-octet lines (76 'x' + CRLF, no leading dots) until it holds at
// least `size` octets, then the terminating dot line. Small messages go out in one write as a
// person's client would send them; large ones are streamed from one block so the generator
// never holds (or page-faults in) a whole 256 MiB message.
class MessageSource {
 public:
  explicit MessageSource(std::size_t size) {
    head_ =
        "From: <sender@bench.test>\r\nTo: <rcpt@bench.test>\r\nSubject: mailtap benchmark\r\n\r\n";
    lines_ = size > head_.size() ? (size - head_.size() + kLine.size() - 1) / kLine.size() : 0;
    if (size <= kWholeLimit) {
      whole_ = head_;
      for (std::size_t i = 0; i < lines_; ++i) whole_ += kLine;
      whole_ += ".\r\n";
    } else {
      for (std::size_t i = 0; i < kBlockLines; ++i) block_ += kLine;
    }
  }

  bool streamed() const { return whole_.empty(); }
  std::string_view whole() const { return whole_; }
  std::string_view head() const { return head_; }
  std::size_t lines() const { return lines_; }
  std::string_view block(std::size_t lines) const {
    return std::string_view(block_).substr(0, lines * kLine.size());
  }
  static constexpr std::size_t kBlockLines = 3360;  // 262080 octets: a few socket buffers

 private:
  static constexpr std::string_view kLine =
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
  static constexpr std::size_t kWholeLimit = 1 << 20;
  std::string head_, whole_, block_;
  std::size_t lines_ = 0;
};

std::string auth_plain_line() {
  // base64("\0alice@bench.test\0bench-secret")
  return "AUTH PLAIN AGFsaWNlQGJlbmNoLnRlc3QAYmVuY2gtc2VjcmV0\r\n";
}

// A client connection: plain, or TLS over the same socket once STARTTLS succeeded.
class Connection {
 public:
  explicit Connection(asio::io_context& io) : plain_(io) {}

  tcp::socket& socket() { return plain_; }

  asio::awaitable<std::error_code> handshake(asio::ssl::context& ctx, const std::string& name) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(plain_, ctx);
    SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(name));
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, use_tuple);
    co_return ec;
  }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    // (Results are named before co_return: GCC 12 miscompiles some `co_return co_await`.)
    auto result = tls_ ? co_await tls_->async_read_some(b, use_tuple)
                       : co_await plain_.async_read_some(b, use_tuple);
    co_return result;
  }

  asio::awaitable<std::tuple<std::error_code, std::size_t>> write(asio::const_buffer b) {
    auto result = tls_ ? co_await asio::async_write(*tls_, b, use_tuple)
                       : co_await asio::async_write(plain_, b, use_tuple);
    co_return result;
  }

  void close() {
    std::error_code ignored;
    plain_.close(ignored);
  }

 private:
  tcp::socket plain_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

class Run {
 public:
  Run(asio::io_context& io, const Options& o, asio::ssl::context* tls)
      : io_(io),
        o_(o),
        tls_(tls),
        message_(o.size),
        hold_gate_(io, Clock::time_point::max()),
        began_(Clock::now()) {}

  Results& results() { return r_; }

  asio::awaitable<void> worker() {
    while (started_ < o_.sessions) {
      ++started_;
      co_await session();
    }
    if (++workers_done_ == o_.connections) io_.stop();
  }

  asio::awaitable<void> sampler() {
    asio::steady_timer timer(io_);
    for (;;) {
      if (o_.pid)
        if (auto s = mailtap::bench::sample_process(o_.pid))
          r_.max_threads = std::max(r_.max_threads, s->threads);
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(use_tuple);
    }
  }

 private:
  void fail(std::string what) {
    if (r_.errors++ == 0) r_.first_error = std::move(what);
  }

  std::size_t interval_now() const {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began_);
    return static_cast<std::size_t>(ms.count() / o_.timeline_ms);
  }

  void count_in_timeline(std::vector<std::uint64_t>& series, std::uint64_t amount) {
    if (o_.timeline_ms <= 0) return;
    const std::size_t i = interval_now();
    if (r_.timeline_bytes.size() <= i) r_.timeline_bytes.resize(i + 1);
    if (r_.timeline_messages.size() <= i) r_.timeline_messages.resize(i + 1);
    series[i] += amount;
  }

  // Reads one (possibly multiline) reply; returns its code, or 0 on a broken connection.
  asio::awaitable<int> reply(Connection& c, std::string& buf) {
    for (;;) {
      std::size_t start = 0;
      for (;;) {
        auto eol = buf.find("\r\n", start);
        if (eol == std::string::npos) break;
        if (eol - start >= 3 && (eol - start == 3 || buf[start + 3] == ' ')) {
          int code = std::atoi(buf.substr(start, 3).c_str());
          buf.erase(0, eol + 2);
          co_return code;
        }
        start = eol + 2;
      }
      char chunk[4096];
      auto [ec, n] = co_await c.read_some(asio::buffer(chunk));
      if (ec) co_return 0;
      buf.append(chunk, n);
    }
  }

  asio::awaitable<bool> expect(Connection& c, std::string& buf, std::string_view after,
                               int expected) {
    int code = co_await reply(c, buf);
    if (code != expected) {
      fail("after " + std::string(after) + ": got " + std::to_string(code) + " (wanted " +
           std::to_string(expected) + ")");
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> send(Connection& c, std::string_view bytes) {
    auto [ec, n] = co_await c.write(asio::buffer(bytes));
    if (ec) fail("write failed: " + ec.message());
    co_return !ec;
  }

  asio::awaitable<bool> command(Connection& c, std::string& buf, std::string_view line,
                                int expected) {
    if (!co_await send(c, line)) co_return false;
    const std::string verb(line.substr(0, line.find_first_of(" \r")));
    const bool ok = co_await expect(c, buf, verb, expected);
    co_return ok;
  }

  asio::awaitable<bool> body(Connection& c, std::string& buf) {
    if (!message_.streamed()) {
      if (!co_await send(c, message_.whole())) co_return false;
      count_in_timeline(r_.timeline_bytes, message_.whole().size());
    } else {
      if (!co_await send(c, message_.head())) co_return false;
      for (std::size_t left = message_.lines(); left > 0;) {
        const auto block = message_.block(std::min(left, MessageSource::kBlockLines));
        if (!co_await send(c, block)) co_return false;
        count_in_timeline(r_.timeline_bytes, block.size());
        left -= std::min(left, MessageSource::kBlockLines);
      }
      if (!co_await send(c, ".\r\n")) co_return false;
    }
    const bool ok = co_await expect(c, buf, "the message body", 250);
    co_return ok;
  }

  // The sink offers STARTTLS in plain text; after the handshake the EHLO is repeated, as every
  // client (and mailtap, and stunnel) does.
  asio::awaitable<bool> starttls(Connection& c, std::string& buf) {
    if (!co_await command(c, buf, "STARTTLS\r\n", 220)) co_return false;
    if (auto ec = co_await c.handshake(*tls_, o_.tls_name)) {
      fail("TLS handshake: " + ec.message());
      co_return false;
    }
    buf.clear();
    const bool ok = co_await command(c, buf, "EHLO bench.client\r\n", 250);
    co_return ok;
  }

  asio::awaitable<bool> noops(Connection& c, std::string& buf) {
    for (unsigned k = 0; k < o_.noops; ++k) {
      const auto t = Clock::now();
      if (!co_await command(c, buf, "NOOP\r\n", 250)) co_return false;
      r_.noop_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
      ++r_.noops_done;
    }
    co_return true;
  }

  asio::awaitable<void> wait_until_removed(const std::string& path) {
    asio::steady_timer poll(io_);
    while (access(path.c_str(), F_OK) == 0) {
      poll.expires_after(std::chrono::milliseconds(20));
      co_await poll.async_wait(use_tuple);
    }
  }

  asio::awaitable<void> wait_for_everyone() {
    if (++held_ == o_.connections) {
      if (o_.pid)
        if (auto s = mailtap::bench::sample_process(o_.pid)) {
          r_.rss_at_hold_kib = s->rss_kib;
          r_.threads_at_hold = s->threads;
        }
      if (!o_.hold_file.empty()) {
        std::ofstream(o_.hold_file) << held_ << " sessions held\n";
        co_await wait_until_removed(o_.hold_file);
      }
      hold_gate_.cancel();
      co_return;
    }
    co_await hold_gate_.async_wait(use_tuple);
  }

  asio::awaitable<void> session() {
    const auto began = Clock::now();
    Connection c(io_);
    std::string buf;
    bool ok = false;
    auto [ec] = co_await c.socket().async_connect(
        tcp::endpoint(asio::ip::make_address(o_.host), o_.port), use_tuple);
    if (ec) {
      fail("connect: " + ec.message());
    } else if (int code = co_await reply(c, buf); code != 220) {
      fail("greeting: got " + std::to_string(code));
    } else {
      c.socket().set_option(tcp::no_delay(true), ec);
      ok = co_await command(c, buf, "EHLO bench.client\r\n", 250);
      if (ok && tls_) ok = co_await starttls(c, buf);
      if (ok && o_.auth) ok = co_await command(c, buf, auth_plain_line(), 235);
    }
    if (o_.hold) co_await wait_for_everyone();  // a failed session must not stall the others
    if (ok) ok = co_await noops(c, buf);
    for (unsigned k = 0; ok && k < o_.messages; ++k) {
      const auto t = Clock::now();
      ok = co_await command(c, buf, "MAIL FROM:<sender@bench.test>\r\n", 250) &&
           co_await command(c, buf, "RCPT TO:<rcpt@bench.test>\r\n", 250) &&
           co_await command(c, buf, "DATA\r\n", 354) && co_await body(c, buf);
      if (ok) {
        ++r_.messages_done;
        count_in_timeline(r_.timeline_messages, 1);
        r_.transaction_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      }
    }
    if (ok) ok = co_await command(c, buf, "QUIT\r\n", 221);
    if (ok) {
      ++r_.sessions_done;
      r_.session_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - began).count());
    }
    c.close();
  }

  asio::io_context& io_;
  const Options& o_;
  asio::ssl::context* tls_;
  const MessageSource message_;
  asio::steady_timer hold_gate_;
  const Clock::time_point began_;
  unsigned started_ = 0, workers_done_ = 0, held_ = 0;
  Results r_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

std::string json_array(const std::vector<std::uint64_t>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

int usage() {
  std::fprintf(
      stderr,
      "usage: mailtap_bench_load [--host A] [--port P] [--connections N] [--sessions M]\n"
      "       [--messages K] [--size BYTES] [--noops N] [--auth] [--hold] [--hold-file PATH]\n"
      "       [--tls --ca-file CA.pem [--tls-name NAME]] [--pid PID] [--label L]\n"
      "       [--timeline-ms MS] [--timeout SECONDS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--host")
      o.host = value();
    else if (a == "--port")
      o.port = static_cast<unsigned short>(std::atoi(value().c_str()));
    else if (a == "--connections")
      o.connections = std::max(1, std::atoi(value().c_str()));
    else if (a == "--sessions")
      o.sessions = std::max(1, std::atoi(value().c_str()));
    else if (a == "--messages")
      o.messages = std::max(0, std::atoi(value().c_str()));
    else if (a == "--noops")
      o.noops = std::max(0, std::atoi(value().c_str()));
    else if (a == "--size")
      o.size = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--auth")
      o.auth = true;
    else if (a == "--hold")
      o.hold = true;
    else if (a == "--hold-file") {
      o.hold = true;
      o.hold_file = value();
    } else if (a == "--tls")
      o.tls = true;
    else if (a == "--ca-file")
      o.ca_file = value();
    else if (a == "--tls-name")
      o.tls_name = value();
    else if (a == "--pid")
      o.pid = std::atol(value().c_str());
    else if (a == "--label")
      o.label = value();
    else if (a == "--timeout")
      o.timeout_seconds = std::atoi(value().c_str());
    else if (a == "--timeline-ms")
      o.timeline_ms = std::max(0, std::atoi(value().c_str()));
    else
      return usage();
  }
  o.connections = std::min(o.connections, o.sessions);
  if (o.tls && o.ca_file.empty()) return usage();

  std::unique_ptr<asio::ssl::context> tls;
  if (o.tls) {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    std::error_code ec;
    tls->load_verify_file(o.ca_file, ec);
    if (ec) {
      std::fprintf(stderr, "load: cannot read %s: %s\n", o.ca_file.c_str(), ec.message().c_str());
      return 1;
    }
  }

  asio::io_context io(1);
  Run run(io, o, tls.get());
  mailtap::bench::ProcSample before{};
  if (o.pid) {
    auto s = mailtap::bench::sample_process(o.pid);
    if (!s) {
      std::fprintf(stderr, "load: no process %ld\n", o.pid);
      return 1;
    }
    before = *s;
  }
  const double own_cpu_before = own_cpu_seconds();
  const auto began = Clock::now();
  for (unsigned i = 0; i < o.connections; ++i) asio::co_spawn(io, run.worker(), asio::detached);
  asio::co_spawn(io, run.sampler(), asio::detached);
  asio::steady_timer limit(io, std::chrono::seconds(o.timeout_seconds));
  bool timed_out = false;
  limit.async_wait([&](const std::error_code& ec) {
    if (!ec) timed_out = true, io.stop();
  });
  io.run();
  const double wall = std::chrono::duration<double>(Clock::now() - began).count();
  const double own_cpu = own_cpu_seconds() - own_cpu_before;
  mailtap::bench::ProcSample after{};
  if (o.pid)
    if (auto s = mailtap::bench::sample_process(o.pid)) after = *s;

  Results& r = run.results();
  if (timed_out && r.errors++ == 0) r.first_error = "timed out";
  const std::vector<double>& lat = o.messages ? r.transaction_ms : r.session_ms;
  const double mib = static_cast<double>(r.messages_done) * static_cast<double>(o.size) / (1 << 20);
  std::string error = r.first_error;
  for (char& c : error)
    if (c == '"' || c == '\\') c = '\'';
  std::printf(
      "{\"label\": \"%s\", \"connections\": %u, \"sessions\": %u, \"messages_per_session\": %u, "
      "\"size\": %zu, \"noops_per_session\": %u, \"direct_tls\": %s, \"wall_s\": %.3f, "
      "\"sessions_done\": %u, \"messages_done\": %u, \"noops_done\": %u, "
      "\"errors\": %u, \"first_error\": \"%s\", \"sessions_per_s\": %.1f, "
      "\"messages_per_s\": %.1f, \"mib_per_s\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
      "\"noop_p50_us\": %.1f, \"noop_p90_us\": %.1f, \"noop_p99_us\": %.1f, "
      "\"client_cpu_s\": %.3f, "
      "\"proxy_cpu_s\": %.3f, \"proxy_rss_before_kib\": %ld, \"proxy_peak_rss_kib\": %ld, "
      "\"proxy_rss_at_hold_kib\": %ld, \"proxy_threads_at_hold\": %ld, "
      "\"proxy_max_threads\": %ld, \"timeline_ms\": %d, \"timeline_bytes\": %s, "
      "\"timeline_messages\": %s}\n",
      o.label.c_str(), o.connections, o.sessions, o.messages, o.size, o.noops,
      o.tls ? "true" : "false", wall, r.sessions_done, r.messages_done, r.noops_done, r.errors,
      error.c_str(), r.sessions_done / wall, r.messages_done / wall, mib / wall,
      percentile(lat, 0.50), percentile(lat, 0.99), percentile(r.noop_us, 0.50),
      percentile(r.noop_us, 0.90), percentile(r.noop_us, 0.99), own_cpu,
      after.cpu_seconds - before.cpu_seconds, before.rss_kib, after.peak_rss_kib, r.rss_at_hold_kib,
      r.threads_at_hold, r.max_threads, o.timeline_ms, json_array(r.timeline_bytes).c_str(),
      json_array(r.timeline_messages).c_str());
  return r.errors ? 1 : 0;
}
