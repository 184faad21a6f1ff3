// A private key on disk, held to what ssh asks of one: a regular file that only its owner, the
// user running mailtap (or root), may access. Whoever can read a key can pose as its certificate;
// one another user owns may be theirs. The --local-tls key mailtap makes, --local-key, and the
// key of --client-cert (docs/proxy.md) are all checked here, with the same words.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>

#include "proxy/smtp/secret.hpp"

namespace mailtap::net {

// Why the key file `st` (what fstat said of it) may not be used, naming it as `what` ("the key
// PATH", "--local-key PATH") with the fix (chmod 600 `path`, or chown) and `alternative` ("delete
// it and CERT for a new pair"), if not empty, after it; "" when it is private.
std::string private_key_refusal(const struct stat& st, const std::string& path,
                                const std::string& what, const std::string& alternative = {});

// Opens the private key at `path` to read it, and checks on that descriptor (so the file checked
// is the file used) that it is a private regular file (private_key_refusal). Returns the
// descriptor, or -1 with what is wrong and what to do in `error`. A key that is not there is
// refused too, unless `missing_ok`: then -1 with `error` empty.
int open_private_key(const std::string& path, const std::string& what,
                     const std::string& alternative, bool missing_ok, std::string& error);

// The whole of the open file `fd`, up to `max` octets, in a Secret: what a key file holds is
// read into no other buffer. nullopt, with `error` saying why after `what`, when it cannot be
// read or is longer.
std::optional<smtp::Secret> read_private_file(int fd, std::size_t max, const std::string& what,
                                              std::string& error);

}  // namespace mailtap::net
