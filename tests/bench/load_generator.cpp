// mailtap_bench_load: drives plain-text SMTP sessions through a proxy and measures it.
//
// N concurrent connections each run sessions (connect, greeting, EHLO, optional AUTH PLAIN,
// K transactions MAIL/RCPT/DATA of S octets, QUIT) until --sessions have been run in total.
// With --hold every connection stops after EHLO until all N are established, so the proxy
// carries N open sessions at once before any mail moves.
//
// It reports one JSON object on stdout: sessions/s, messages/s, MiB/s, latency p50/p99 of a
// transaction (MAIL to the 250 after the body; of a whole session when K = 0), and for the
// process given with --pid: CPU seconds spent during the run, peak RSS, and thread count.
// Single-threaded on purpose: the generator should take as little of the machine as it can.
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  std::size_t size = 4096;
  bool auth = false;
  bool hold = false;
  long pid = 0;
  std::string label = "proxy";
  int timeout_seconds = 300;
};

struct Results {
  unsigned sessions_done = 0;
  unsigned messages_done = 0;
  unsigned errors = 0;
  std::string first_error;
  std::vector<double> transaction_ms;
  std::vector<double> session_ms;
  long max_threads = 0;
  long rss_at_hold_kib = 0;
  long threads_at_hold = 0;
};

// 78-column lines, no leading dots, ending in CRLF, then the terminating dot line.
std::string make_message(std::size_t size) {
  std::string m =
      "From: <sender@bench.test>\r\nTo: <rcpt@bench.test>\r\nSubject: mailtap benchmark\r\n\r\n";
  const std::string line = std::string(76, 'x') + "\r\n";
  while (m.size() < size) m += line;
  m += ".\r\n";
  return m;
}

std::string auth_plain_line() {
  // base64("\0alice@bench.test\0bench-secret")
  return "AUTH PLAIN AGFsaWNlQGJlbmNoLnRlc3QAYmVuY2gtc2VjcmV0\r\n";
}

class Run {
 public:
  Run(asio::io_context& io, const Options& o)
      : io_(io), o_(o), message_(make_message(o.size)), hold_gate_(io, Clock::time_point::max()) {}

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

  // Reads one (possibly multiline) reply; returns its code, or 0 on a broken connection.
  asio::awaitable<int> reply(tcp::socket& s, std::string& buf) {
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
      auto [ec, n] = co_await s.async_read_some(asio::buffer(chunk), use_tuple);
      if (ec) co_return 0;
      buf.append(chunk, n);
    }
  }

  asio::awaitable<bool> command(tcp::socket& s, std::string& buf, std::string_view line,
                                int expected) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(line), use_tuple);
    if (ec) {
      fail("write failed: " + ec.message());
      co_return false;
    }
    int code = co_await reply(s, buf);
    if (code != expected) {
      fail("after " + std::string(line.substr(0, line.find(' '))) + ": got " +
           std::to_string(code) + " (wanted " + std::to_string(expected) + ")");
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> wait_for_everyone() {
    if (++held_ == o_.connections) {
      if (o_.pid)
        if (auto s = mailtap::bench::sample_process(o_.pid)) {
          r_.rss_at_hold_kib = s->rss_kib;
          r_.threads_at_hold = s->threads;
        }
      hold_gate_.cancel();
      co_return;
    }
    co_await hold_gate_.async_wait(use_tuple);
  }

  asio::awaitable<void> session() {
    const auto began = Clock::now();
    tcp::socket s(io_);
    std::string buf;
    bool ok = false;
    auto [ec] = co_await s.async_connect(tcp::endpoint(asio::ip::make_address(o_.host), o_.port),
                                         use_tuple);
    if (ec) {
      fail("connect: " + ec.message());
    } else if (int code = co_await reply(s, buf); code != 220) {
      fail("greeting: got " + std::to_string(code));
    } else {
      ok = co_await command(s, buf, "EHLO bench.client\r\n", 250);
      if (ok && o_.auth) ok = co_await command(s, buf, auth_plain_line(), 235);
    }
    if (o_.hold) co_await wait_for_everyone();  // a failed session must not stall the others
    for (unsigned k = 0; ok && k < o_.messages; ++k) {
      const auto t = Clock::now();
      ok = co_await command(s, buf, "MAIL FROM:<sender@bench.test>\r\n", 250) &&
           co_await command(s, buf, "RCPT TO:<rcpt@bench.test>\r\n", 250) &&
           co_await command(s, buf, "DATA\r\n", 354) && co_await command(s, buf, message_, 250);
      if (ok) {
        ++r_.messages_done;
        r_.transaction_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t).count());
      }
    }
    if (ok) ok = co_await command(s, buf, "QUIT\r\n", 221);
    if (ok) {
      ++r_.sessions_done;
      r_.session_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - began).count());
    }
    std::error_code ignored;
    s.close(ignored);
  }

  asio::io_context& io_;
  const Options& o_;
  const std::string message_;
  asio::steady_timer hold_gate_;
  unsigned started_ = 0, workers_done_ = 0, held_ = 0;
  Results r_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int usage() {
  std::fprintf(stderr,
               "usage: mailtap_bench_load [--host A] [--port P] [--connections N] [--sessions M]\n"
               "       [--messages K] [--size BYTES] [--auth] [--hold] [--pid PID] [--label L]\n"
               "       [--timeout SECONDS]\n");
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
    else if (a == "--size")
      o.size = std::strtoull(value().c_str(), nullptr, 10);
    else if (a == "--auth")
      o.auth = true;
    else if (a == "--hold")
      o.hold = true;
    else if (a == "--pid")
      o.pid = std::atol(value().c_str());
    else if (a == "--label")
      o.label = value();
    else if (a == "--timeout")
      o.timeout_seconds = std::atoi(value().c_str());
    else
      return usage();
  }
  o.connections = std::min(o.connections, o.sessions);

  asio::io_context io(1);
  Run run(io, o);
  mailtap::bench::ProcSample before{};
  if (o.pid) {
    auto s = mailtap::bench::sample_process(o.pid);
    if (!s) {
      std::fprintf(stderr, "load: no process %ld\n", o.pid);
      return 1;
    }
    before = *s;
  }
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
      "\"size\": %zu, \"wall_s\": %.3f, \"sessions_done\": %u, \"messages_done\": %u, "
      "\"errors\": %u, \"first_error\": \"%s\", \"sessions_per_s\": %.1f, "
      "\"messages_per_s\": %.1f, \"mib_per_s\": %.2f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, "
      "\"proxy_cpu_s\": %.2f, \"proxy_rss_before_kib\": %ld, \"proxy_peak_rss_kib\": %ld, "
      "\"proxy_rss_at_hold_kib\": %ld, \"proxy_threads_at_hold\": %ld, "
      "\"proxy_max_threads\": %ld}\n",
      o.label.c_str(), o.connections, o.sessions, o.messages, o.size, wall, r.sessions_done,
      r.messages_done, r.errors, error.c_str(), r.sessions_done / wall, r.messages_done / wall,
      mib / wall, percentile(lat, 0.50), percentile(lat, 0.99),
      after.cpu_seconds - before.cpu_seconds, before.rss_kib, after.peak_rss_kib, r.rss_at_hold_kib,
      r.threads_at_hold, r.max_threads);
  return r.errors ? 1 : 0;
}
