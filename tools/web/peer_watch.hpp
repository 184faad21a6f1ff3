// Whether the client of a request has gone, asked while its answer is being worked out (a text
// search stops when nobody waits for it). A client that has sent its request may shut down its
// sending side and still read the answer (nc -N, scripts: a half-close, RFC 9112 section 9.6),
// and the end of its octets looks the same as a closed tab's. Only a reset tells the two apart:
// once the request's end is seen, the first octet of the answer ("H" of every "HTTP/1.1 ...")
// goes out early; a client still reading takes it as the start of its answer, one that closed
// its socket answers it with a reset.
#pragma once

#include <cstddef>

namespace mailtap::tools::web {

class PeerWatch {
 public:
  // `fd`: the request's socket (-1: unknown, and then never gone). Not owned.
  explicit PeerWatch(int fd) : fd_(fd) {}

  // True once the connection was reset or closed both ways, or a write to it failed.
  bool gone();

  // Octets of the response gone() has sent already: the response is sent without them. Every
  // response starts with `kProbe`.
  std::size_t response_octets_sent() const { return probed_ ? 1 : 0; }
  static constexpr char kProbe = 'H';

 private:
  int fd_;
  bool probed_ = false;
  bool gone_ = false;
};

}  // namespace mailtap::tools::web
