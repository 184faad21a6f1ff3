// BoringSSL's reason for the call that just failed, for mailtap's own messages.
#pragma once

#include <string>

namespace mailtap::net {

// The oldest error queued on this thread, as BoringSSL spells it ("error:0b00008e:X.509
// certificate routines:OPENSSL_internal:NO_CERTIFICATE_OR_CRL_FOUND"), or "unknown error".
// Clears the queue, so that a later failure is not explained by this one's leftovers.
std::string ssl_error();

}  // namespace mailtap::net
