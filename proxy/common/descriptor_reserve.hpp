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
// among themselves, so no other accept or reserve takes the free slot the exchange makes. The
// token command's pipe (proxy/secrets) takes it too. Opens in the proxy process that do not,
// and why they may:
// - the database, its -wal and -shm: the recorder opens them before the proxy listens, when no
//   reserve is given up yet; the tools are other processes, with descriptors of their own;
// - a resolver thread's files and socket: counted instead (ResolvingWithoutReserve);
// - the token command's process-group check (proxy/secrets/run_command.cpp,
//   process_group_alive): opendir("/proc") and an open of each /proc/PID/stat, one at a time,
//   closed at once; it may cost what a --web request's open does, below (one that finds no
//   descriptor asks getpgid(), which needs none, and a process of the group it cannot read
//   takes the group for alive: the command's grace is waited out);
// - SQLite's temporary files (a statement or savepoint journal past 64 KiB, a large sort): the
//   recorder's records (one row, or a message and its recipients, in a savepoint) rewrite a
//   few existing pages at most and sort nothing; strace saw none opened (docs/proxy.md). Should
//   one fail, recording fails as for a disk error;
// - --web (CivetWeb's threads): its accepted sockets, and each request's database connection
//   and body files. They cannot be ordered by a lock of mailtap's; one that takes the slot
//   costs a session its socket (the client gets the out-of-descriptors 421, recorded), or makes
//   the recorder wait (body_files.cpp: 10 s at most) until the request has closed its files.
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
  // Runs `close`, which closes the descriptor `exchange` opened in the reserve's place (or
  // nothing, when that open failed), and takes the reserve's descriptor back, under one
  // descriptors_lock: no other open can take the slot the close frees before the reserve does.
  void give_back(const std::function<void()>& close);
  // Gives the reserve's descriptor up for whatever opens next (the reserve stays spent).
  void release();

 private:
  int fd_ = -1;
};

}  // namespace mailtap
