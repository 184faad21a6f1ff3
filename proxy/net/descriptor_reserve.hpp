// Out of file descriptors (ulimit -n, or the system's table full), accept() fails with EMFILE
// while the client stays in the listen queue: it would get nothing at all, and the listener
// would wake for it again at once. So mailtap keeps one descriptor in reserve (/dev/null):
// given back, it lets one queued client be accepted and told why in one line; the reserve is
// taken again once that client's close is done.
//
// A session is given a descriptor in reserve too, for its socket to the server, when its client
// is accepted: in a burst, accepting clients while descriptors last would otherwise leave none
// for the server's socket of any of them, and serve none.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "proxy/common/descriptor_reserve.hpp"

namespace mailtap::net {

// EMFILE (the process's limit) or ENFILE (the system's table), as asio reports them.
bool out_of_descriptors(const std::error_code& ec);

// The text of the 421 for a client mailtap cannot serve for want of descriptors, whether its
// accept or its upstream socket found none: mailtap's own limit, not the server's fault, and
// what mends it ("4.3.2 mailtap: Too many open files (mailtap's open-file limit is 64); ...").
// `connections_flag` is the option that bounds how many connections the command holds at once
// (the proxy's --max-sessions), which lowering mends too; empty for a command that has none
// (probe, replay: one connection), whose text then names no option it does not take.
std::string out_of_descriptors_refusal(const std::error_code& ec,
                                       std::string_view connections_flag);

// EMFILE or ENFILE if mailtap cannot open one more descriptor now, else no error. For a
// failure whose error may have lost the cause: a name lookup that could not open /etc/hosts
// may still have asked DNS, and then says "host not found" (glibc's EAI_NONAME), not EMFILE.
std::error_code descriptor_shortage();

// Whether a client waits in the listen queue of `listen_fd`, looked at without a descriptor.
// Out of descriptors, accept() fails with EMFILE whether or not one waits (the kernel takes
// the descriptor first), so the failure alone does not say a client needs the reserve.
bool client_waiting(int listen_fd);

// The reserve and its lock are the common layer's (the recorder keeps one too).
using mailtap::DescriptorReserve;
using mailtap::descriptors_lock;

// Counts, while it lives, a session that gave its kept descriptor up to resolve its server's
// name: that slot is the resolver's (its files, its socket to the DNS server), and the acceptor
// must not take it for a next client (room_beside_resolves), or each descriptor given up can
// cost two clients, the one resolving and the one taken in its place.
class ResolvingWithoutReserve {
 public:
  ResolvingWithoutReserve();
  ~ResolvingWithoutReserve();
  ResolvingWithoutReserve(const ResolvingWithoutReserve&) = delete;
  ResolvingWithoutReserve& operator=(const ResolvingWithoutReserve&) = delete;
};

// Whether a client and its kept descriptor can be taken now, leaving a descriptor free for each
// session resolving without its own: at once true while none does, or while the kernel's count
// of open descriptors leaves plenty under the process's limit; near it (or with no count, before
// Linux 6.2), looked at by opening that many and closing them again. Well under the limit it
// does not look, so a full system file table (ENFILE) is seen only by the real open (the
// accept, the session's connect), which answers it as for EMFILE. Called under
// descriptors_lock().
bool room_beside_resolves();
// How many times room_beside_resolves() has opened descriptors to look (for tests).
unsigned long room_probes_made();

}  // namespace mailtap::net
