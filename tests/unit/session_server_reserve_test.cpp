// The acceptor's descriptor in reserve, out of descriptors: each client waiting in the listen
// queue is accepted in its place and told why with a 421, and the reserve takes the client's
// descriptor back as its lingering close frees it. Other threads open descriptors meanwhile
// (the sessions' sockets, the recorder's body files, under descriptors_lock): none of them may
// take that slot in between, or the reserve is lost and the next client is told nothing.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "proxy/common/descriptor_reserve.hpp"
#include "proxy/session/proxy_config.hpp"
#include "proxy/session/server.hpp"

namespace mailtap {
namespace {

// What the client read within `wait_ms` (empty: nothing came).
std::string reply_of(int client, int wait_ms) {
  pollfd readable{client, POLLIN, 0};
  if (::poll(&readable, 1, wait_ms) <= 0) return {};
  char got[512];
  const ssize_t n = ::recv(client, got, sizeof got, 0);
  return n > 0 ? std::string(got, static_cast<std::size_t>(n)) : std::string();
}

TEST(ServerDescriptorReserve, KeptWhileAnotherThreadOpensDescriptorsAsClientsAreTurnedAway) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers need descriptors of their own";
#endif
  constexpr int kClients = 40;
  ProxyConfig config;
  config.listen = {asio::ip::make_address("127.0.0.1"), 0};
  asio::ssl::context tls(asio::ssl::context::tls_server);
  SessionContext ctx{config, tls, nullptr, {}, {}, std::nullopt, nullptr, nullptr, {}};
  ctx.target.connections_flag = "--max-sessions";
  asio::io_context io;
  Server server(io, ctx, [&io] { return io.get_executor(); });
  std::string error;
  ASSERT_TRUE(server.listen(config.listen, error)) << error;
  const auto port = static_cast<std::uint16_t>(
      std::stoi(ctx.listen_label.substr(ctx.listen_label.rfind(':') + 1)));
  asio::co_spawn(io, server.accept_loop(), asio::detached);
  std::thread acceptor([&io] { io.run(); });

  // The clients' sockets, made while descriptors last.
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(::socket(AF_INET, SOCK_STREAM, 0));
  // Then every descriptor under the limit taken (the server's reserve is held already).
  rlimit was{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &was), 0);
  rlimit few = was;
  few.rlim_cur = std::min<rlim_t>(was.rlim_cur, 512);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
  std::vector<int> held;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) held.push_back(fd);

  // Another thread opening, as the recorder's body files and the sessions' sockets do: under
  // descriptors_lock, and keeping what it gets.
  std::atomic<bool> stop{false};
  std::vector<int> taken;
  std::thread contender([&] {
    while (!stop.load()) {
      {
        const auto lock = descriptors_lock();
        if (const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC); fd >= 0) taken.push_back(fd);
      }
      std::this_thread::yield();
    }
  });

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int told = 0;
  for (const int client : clients) {
    ASSERT_EQ(::connect(client, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
    // A bound for a broken test, not a timing: the reply comes at once or never.
    const std::string reply = reply_of(client, 10000);
    if (reply.rfind("421 4.3.2 mailtap: Too many open files", 0) != 0) break;
    ++told;
    // The client closes its side (keeping its descriptor): the lingering close ends, and the
    // reserve takes the client's descriptor back.
    ::shutdown(client, SHUT_WR);
  }
  stop = true;
  contender.join();
  ::setrlimit(RLIMIT_NOFILE, &was);
  for (const int fd : held) ::close(fd);
  for (const int fd : taken) ::close(fd);
  asio::post(io, [&server] { server.begin_shutdown(std::chrono::seconds(0)); });
  acceptor.join();
  for (const int fd : clients) ::close(fd);

  EXPECT_EQ(told, kClients) << "a client was told nothing: the reserve was lost";
  EXPECT_EQ(taken.size(), 0u) << "another thread took the descriptor the reserve gave up";
}

}  // namespace
}  // namespace mailtap
