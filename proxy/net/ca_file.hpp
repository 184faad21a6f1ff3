// Whether a --ca-file can be the trust store, asked when the options are read: a typo in the
// path is then a usage error in words before anything listens or connects, rather than a TLS
// library's error at the first connection.
#pragma once

#include <string>

namespace mailtap::net {

// Why the file at `path` cannot serve as --ca-file, naming it ("--ca-file PATH: No such file or
// directory", "...: no certificate in it"), or "" when it holds at least one PEM certificate.
// The file is read as SSL_CTX_load_verify_locations reads it, so what passes here loads later.
std::string ca_file_refusal(const std::string& path);

}  // namespace mailtap::net
