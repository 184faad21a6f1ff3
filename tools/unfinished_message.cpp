#include "tools/unfinished_message.hpp"

namespace mailtap::tools {

std::string unfinished_text(const storage::SessionRow& s, const storage::UnfinishedMessage& u,
                            std::uint64_t body_octets) {
  const std::string n = "message " + std::to_string(u.row.seq);
  const std::string octets = std::to_string(body_octets) + " octets of its body";
  if (!s.ended && !s.writer_gone()) {  // still recording (or nobody can tell)
    return u.end_of_data ? n + " in progress: its end of data went to the server after " + octets +
                               "; no reply recorded yet"
                         : n + " in progress: " + octets + " so far, no end of data yet";
  }
  if (s.writer_gone()) {
    return u.end_of_data
               ? n + " not finished: the record holds its end of data after " + octets +
                     " but no reply (session cut: the process recording it is gone); the "
                     "server may have accepted it, look for it in the server's logs"
               : n + " not finished: session cut after " + octets +
                     " (no end of data in the record; the server accepts a message only at its "
                     "end of data, so it never accepted this one unless mailtap relayed that "
                     "after its last commit)";
  }
  return u.end_of_data
             ? n + " not finished: " + octets +
                   " and its end of data were recorded, but the end never reached the server "
                   "(see the `not sent upstream` note); the server never accepted it"
             : n + " not finished: " + octets +
                   " relayed, no end of data (the session, or the transaction, ended inside its "
                   "body); the server never accepted it";
}

bool unfinished_body_octets(storage::SessionOctets& octets, const storage::UnfinishedMessage& u,
                            std::uint64_t& out, std::string& error) {
  out = 0;
  return octets.message_body(
      u.row,
      [&out](std::string_view piece) {
        out += piece.size();
        return true;
      },
      error);
}

}  // namespace mailtap::tools
