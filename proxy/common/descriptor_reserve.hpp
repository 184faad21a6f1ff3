// A descriptor kept in reserve (/dev/null) for an open that must find one when the descriptors
// have run out (ulimit -n, or the system's table full), and the one lock under which such a
// reserve is given up and the descriptor it was kept for opened in its place.
//
// Who keeps one: the proxy's acceptor (to tell a client it cannot take why, proxy/net), each
// accepted session (for its socket to the server), and the recorder's body files (storage/): in a
// burst that holds every descriptor, a large message's body file could otherwise not be opened,
// and recording failed for every session.
#pragma once

#include <functional>
#include <mutex>

namespace mailtap {

// Held by whoever opens a descriptor that must not take the one a reserve has just given up for
// its owner's next (the acceptor accepting, a reserve taken or exchanged): it orders those opens
// among themselves, so no other accept or reserve takes the free slot the exchange makes. Opens
// that do not take the lock can still take it in that short window (docs/dialogue.md, "Too many
// sessions", says which they are and why none of them costs more than a moment's wait).
std::unique_lock<std::recursive_mutex> descriptors_lock();

// Whether `err` (an errno) says the descriptors ran out: EMFILE (the process's limit) or ENFILE
// (the system's table).
bool descriptors_ran_out(int err);

class DescriptorReserve {
 public:
  DescriptorReserve();  // taken at once, if a descriptor is free (held() says)
  ~DescriptorReserve();
  DescriptorReserve(const DescriptorReserve&) = delete;
  DescriptorReserve& operator=(const DescriptorReserve&) = delete;

  // Accepts one client waiting on the listening socket `listen_fd` in the reserve's place
  // (taken again first if it was spent and a descriptor is free now): the caller owns the
  // descriptor returned, and calls take() once it has closed it. -1 when no client could be
  // taken: none is waiting, no descriptor is free, or accept failed again.
  int accept_one(int listen_fd);
  // Takes the reserve's descriptor again, if it is spent and one is free.
  void take();
  bool held() const { return fd_ >= 0; }
  // Gives the reserve's descriptor up for `open`, which opens the one it was kept for in its
  // place, before anyone else can take it (descriptors_lock). The reserve stays spent.
  void exchange(const std::function<void()>& open);
  // Gives the reserve's descriptor up for whatever opens next (the reserve stays spent).
  void release();

 private:
  int fd_ = -1;
};

}  // namespace mailtap
