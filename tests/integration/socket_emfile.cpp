// Fault injection for the integration tests, preloaded into mailtap (LD_PRELOAD): out of
// descriptors exactly when mailtap opens its socket to the server. Once the file
// MAILTAP_SOCKET_EMFILE_WHEN names exists, every socket() for TCP (IPv4 or IPv6) fails with
// EMFILE; other sockets (the resolver's netlink query) and every other descriptor (/dev/null,
// the database) are still had. A test makes the file after mailtap listens, so a session finds
// a descriptor free to resolve the upstream's name, and none for the socket to connect with:
// what a real limit does only when another session takes the last descriptor in between.
// With MAILTAP_SOCKET_NO_SOCK_DIAG set, a NETLINK_SOCK_DIAG socket fails with EPROTONOSUPPORT,
// as under a seccomp filter or without the inet_diag module: who connected is then read from
// /proc/net/tcp (peer_owner's fallback).
#include <dlfcn.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

using SocketFn = int (*)(int, int, int);

SocketFn real_socket() {
  static const auto fn = reinterpret_cast<SocketFn>(dlsym(RTLD_NEXT, "socket"));
  return fn;
}

bool out_of_descriptors_now() {
  static const char* const when = std::getenv("MAILTAP_SOCKET_EMFILE_WHEN");
  return when != nullptr && ::access(when, F_OK) == 0;
}

bool sock_diag_refused() {
  static const bool refused = std::getenv("MAILTAP_SOCKET_NO_SOCK_DIAG") != nullptr;
  return refused;
}

}  // namespace

extern "C" int socket(int domain, int type, int protocol) {
  if (domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG && sock_diag_refused()) {
    errno = EPROTONOSUPPORT;
    return -1;
  }
  const bool tcp = (domain == AF_INET || domain == AF_INET6) &&
                   (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
  if (tcp && out_of_descriptors_now()) {
    errno = EMFILE;
    return -1;
  }
  return real_socket()(domain, type, protocol);
}
