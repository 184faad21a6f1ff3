#include "tools/web/peer_watch.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace mailtap::tools::web {
namespace {

// A TCP connection on loopback: the client's end and the server's, as the web server has it.
struct Connection {
  int client = -1, server = -1;
  Connection() {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof at;
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&at), size), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &size), 0);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&at), size), 0);
    server = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    const char request[] = "GET / HTTP/1.1\r\n\r\n";
    EXPECT_EQ(::send(client, request, sizeof request - 1, 0), ssize_t(sizeof request - 1));
    char read[sizeof request];
    EXPECT_EQ(::recv(server, read, sizeof read, 0), ssize_t(sizeof request - 1));
  }
  ~Connection() {
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
  void close_client() { ::close(std::exchange(client, -1)); }
};

TEST(WebPeerWatch, AClientWaitingForItsAnswerHasNotGone) {
  Connection c;
  PeerWatch watch(c.server);
  EXPECT_FALSE(watch.gone());
  EXPECT_FALSE(watch.gone());
  EXPECT_EQ(watch.response_octets_sent(), 0u);
}

// nc -N: the request's end, and the client still reads. It gets the first octet of its answer.
TEST(WebPeerWatch, AClientThatHalfClosedHasNotGone) {
  Connection c;
  ASSERT_EQ(::shutdown(c.client, SHUT_WR), 0);
  PeerWatch watch(c.server);
  EXPECT_FALSE(watch.gone());
  EXPECT_FALSE(watch.gone());
  ASSERT_EQ(watch.response_octets_sent(), 1u);
  const char rest[] = "TTP/1.1 200 OK\r\n\r\n";
  ASSERT_EQ(::send(c.server, rest, sizeof rest - 1, 0), ssize_t(sizeof rest - 1));
  ::shutdown(c.server, SHUT_WR);
  char answer[64] = {};
  std::size_t got = 0;
  for (ssize_t n; (n = ::recv(c.client, answer + got, sizeof answer - 1 - got, 0)) > 0;) got += n;
  EXPECT_STREQ(answer, "HTTP/1.1 200 OK\r\n\r\n");
}

TEST(WebPeerWatch, AClientThatClosedHasGone) {
  Connection c;
  c.close_client();
  PeerWatch watch(c.server);
  bool gone = watch.gone();
  // The reset answering the early octet may come after the first look's short wait.
  for (int i = 0; i < 100 && !gone; ++i) {
    ::usleep(10'000);
    gone = watch.gone();
  }
  EXPECT_TRUE(gone);
}

TEST(WebPeerWatch, AClientThatResetHasGone) {
  Connection c;
  const linger abort{1, 0};
  ASSERT_EQ(::setsockopt(c.client, SOL_SOCKET, SO_LINGER, &abort, sizeof abort), 0);
  c.close_client();
  PeerWatch watch(c.server);
  EXPECT_TRUE(watch.gone());
  EXPECT_EQ(watch.response_octets_sent(), 0u);
}

TEST(WebPeerWatch, AnUnknownSocketNeverGoes) {
  PeerWatch watch(-1);
  EXPECT_FALSE(watch.gone());
}

}  // namespace
}  // namespace mailtap::tools::web
