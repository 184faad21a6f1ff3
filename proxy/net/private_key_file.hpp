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

// Why the file `st` (what fstat or stat said of it) is no file to read, naming it as `what`:
// "WHAT: a directory, not a file", "WHAT: not a regular file"; "" for a regular file.
std::string file_kind_refusal(const struct stat& st, const std::string& what);

// Why the key file `st` may not be used, naming it as `what` ("the key PATH", "--local-key
// PATH"): file_kind_refusal, or what privacy_problem finds with its fix (chmod 600 `path`, or
// chown), with `alternative` ("delete it and CERT for a new pair"), if not empty, after it; ""
// when it is a private regular file.
std::string private_key_refusal(const struct stat& st, const std::string& path,
                                const std::string& what, const std::string& alternative = {});

// Opens `path` to read, and checks on that descriptor (so the file checked is the file read)
// that it is a regular file; `st` is what fstat says of it. O_NONBLOCK: a FIFO (or a device)
// put where the file was would otherwise hold the open, and mailtap's start with it, until
// something writes to it. Returns the descriptor, or -1 with "WHAT: <strerror>" or
// file_kind_refusal in `error`, and in errno the open's (or fstat's) error, or 0 for a file
// that is no regular file.
int open_regular_file(const std::string& path, const std::string& what, struct stat& st,
                      std::string& error);

// open_regular_file, then private_key_refusal on the descriptor: the one way a key file of its
// own is opened (the --local-tls key, --local-key, --client-key; --client-cert's file, known to
// hold a key only once read, is held to private_key_refusal then). Returns the descriptor, or -1
// with what is wrong and what to do in `error`. A key that is not there is refused too, unless
// `missing_ok`: then -1 with `error` empty.
int open_private_key(const std::string& path, const std::string& what,
                     const std::string& alternative, bool missing_ok, std::string& error);

// The whole of the open file `fd`, up to `max` octets, in a Secret: what a key file holds is
// read into no other buffer. nullopt, with `error` saying why after `what`, when it cannot be
// read or is longer.
std::optional<smtp::Secret> read_private_file(int fd, std::size_t max, const std::string& what,
                                              std::string& error);

}  // namespace mailtap::net
