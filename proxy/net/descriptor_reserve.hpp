// Out of file descriptors (ulimit -n, or the system's table full), accept() fails with EMFILE
// while the client stays in the listen queue: it would get nothing at all, and the listener
// would wake for it again at once. So mailtap keeps one descriptor in reserve (/dev/null):
// given back for a moment, it lets one queued client be accepted, told why in one line, and
// closed, before the reserve is taken again.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace mailtap::net {

// EMFILE (the process's limit) or ENFILE (the system's table), as asio reports them.
bool out_of_descriptors(const std::error_code& ec);

// The text of the 421 for a client mailtap cannot serve for want of descriptors, whether its
// accept or its upstream socket found none: mailtap's own limit, not the server's fault, and
// what mends it ("4.3.2 mailtap: Too many open files (mailtap's open-file limit is 64); ...").
std::string out_of_descriptors_refusal(const std::error_code& ec);

class DescriptorReserve {
 public:
  DescriptorReserve();
  ~DescriptorReserve();
  DescriptorReserve(const DescriptorReserve&) = delete;
  DescriptorReserve& operator=(const DescriptorReserve&) = delete;

  // Accepts one client waiting on the listening socket `listen_fd`, writes `line` to it
  // without waiting, and closes it. False when no client could be taken: none is waiting, the
  // reserve is spent (another thread took the descriptor it freed), or accept failed again.
  bool turn_away_one(int listen_fd, std::string_view line);

 private:
  void take();
  int fd_ = -1;
};

}  // namespace mailtap::net
