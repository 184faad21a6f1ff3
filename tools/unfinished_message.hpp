// What the tools say of an unfinished message (storage::UnfinishedMessage): a mail transaction
// whose body the record holds, in part or whole, with no message row, because the session was
// cut inside it, ended inside it, or is still sending it. The same words for `show` and `export`,
// true to what the record can tell: never presented as a delivered message.
#pragma once

#include <cstdint>
#include <string>

#include "storage/reader.hpp"
#include "storage/stored_body.hpp"

namespace mailtap::tools {

// "message N not finished: ..." (or "message N in progress: ..." while its session runs), with
// `body_octets` the octets of its body the record holds as the server would have got them.
std::string unfinished_text(const storage::SessionRow& s, const storage::UnfinishedMessage& u,
                            std::uint64_t body_octets);

// The octets of `u`'s body the record holds (un-dot-stuffed, as `show --message` writes them),
// counted by reading them: false with `error` set if they cannot be read.
bool unfinished_body_octets(storage::SessionOctets& octets, const storage::UnfinishedMessage& u,
                            std::uint64_t& out, std::string& error);

}  // namespace mailtap::tools
