// Opens the upstream link and makes it ready to relay: resolve, connect, (implicit TLS,)
// read the greeting, and for STARTTLS: EHLO, require STARTTLS, upgrade, verify. Each failure
// comes back as a specific SMTP reason for the client's 421.
#pragma once

#include <asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/net/client_certificate.hpp"
#include "proxy/net/link.hpp"
#include "proxy/net/tls_session_cache.hpp"
#include "proxy/smtp/event.hpp"
#include "proxy/smtp/record_vocabulary.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "proxy/smtp/upstream_tls.hpp"

namespace mailtap::net {

using smtp::TlsMode;
using smtp::to_string;
// "starttls", "implicit", "none"; nullopt for anything else.
std::optional<TlsMode> parse_tls_mode(std::string_view text);
// What a port speaks when --tls is not given: implicit TLS on 465 (RFC 8314), else STARTTLS.
TlsMode default_tls_mode(std::uint16_t port);
// The name for mailtap's own EHLO when --ehlo-name is not given: this machine's host name.
std::string default_ehlo_name();
// Why a server may send no greeting: "if HOST:PORT expects TLS from the first byte (as port 465
// does), use --tls implicit". A server with implicit TLS waits for the client's handshake, so
// STARTTLS (or plain) mode waits for a greeting that never comes: proxy and probe say so.
std::string implicit_tls_hint(const std::string& host_port);

// The next step after a server refused mailtap's EHLO, by what its code means: "try again
// later ..." for a 4xx (a rate limit, a busy server), that it does not speak ESMTP for 500/502,
// "try --ehlo-name" for the rest (501, 550: the name is what it objects to). Proxy, probe and
// replay say the same.
std::string ehlo_refusal_advice(const smtp::Reply& reply);

struct UpstreamTarget {
  std::string host;
  std::uint16_t port = 587;
  TlsMode mode = TlsMode::starttls;
  std::string tls_name;   // SNI and the name the certificate must match
  std::string ehlo_name;  // mailtap's own EHLO before STARTTLS
  bool insecure = false;
  // With `insecure`: check the certificate all the same and list every problem in
  // UpstreamSetup::verify_problems, but go on (`mailtap probe --insecure` shows the chain of a
  // server it cannot verify). The TLS context must then verify peers (made without insecure).
  bool report_when_insecure = false;
  // With `insecure`: check the certificate all the same, and record what verification would
  // have said as the verify_reason of a status that stays not_verified_insecure (the proxy's
  // record). The TLS context must then verify peers, as for report_when_insecure.
  bool check_when_insecure = false;
  std::string trust_source;  // for messages
  // --client-cert: what the TLS context presents to a server that asks for a certificate (it
  // was given to the context); here for the record and the words of a refusal. Null: none.
  std::shared_ptr<const ClientCertificate> client_certificate;
  std::chrono::steady_clock::duration timeout = std::chrono::seconds(30);
  std::string timeout_flag = "--timeout-connect";  // the option a timeout message points to
  // The option bounding the connections held at once, which a 421 for want of descriptors
  // suggests lowering (the proxy's --max-sessions); none for probe and replay.
  std::string connections_flag;
  // The option that names the server (the proxy's --upstream), which a failure to resolve or
  // reach it points to; none for probe and replay, whose argument names it.
  std::string target_flag;
  TlsSessionCache* session_cache = nullptr;  // resume TLS sessions (the proxy's)
  // Set once the upstream has greeted a session of this process (the proxy's; null for probe
  // and replay): from then on a greeting that does not come is a slow or busy server, not a
  // port that waits for a TLS handshake, and the timeout says so.
  std::atomic<bool>* greeted_before = nullptr;
};

struct VerifyProblem {
  int x509_error = 0;  // X509_V_ERR_*
  std::string reason;  // "certificate for x is self-signed, and FILE does not hold it: ..."
};

struct UpstreamSetup {
  bool ok = false;
  std::string failure;  // "4.7.0 mailtap: ..." (text after "421 "), when !ok
  smtp::Outcome outcome = smtp::Outcome::error;
  std::optional<smtp::Reply> greeting;
  smtp::Phase greeting_phase = smtp::Phase::plain;
  // What the upstream sent behind its greeting in the same read (implicit TLS, --tls none): the
  // relay's to read, as if it had come after.
  std::string after_greeting;
  smtp::UpstreamTls tls;  // filled as far as the setup got
  // The upstream's other addresses tried while connecting, and what each did ("[::1]:587:
  // Connection refused"): a broken one costs every client that tries it first.
  std::vector<std::string> addresses_failed;
  // The name's other addresses not known to be broken ("127.0.0.1:587"): not tried, or not
  // answered before the one used did. One of them may work where the one used failed.
  std::vector<std::string> addresses_untried;
  // Why the certificate is not trusted: the problem that ended the handshake, or every one
  // found under report_when_insecure.
  std::vector<VerifyProblem> verify_problems;
  // The server asked for a client certificate in the handshake: what mailtap adds to a 421
  // with which it ends the session before any other reply (smtp::DialogueOptions::
  // certificate_request_note), after its host:port; "" when it asked for none.
  std::string certificate_request_note;
  // The handshake ended on the server's TLS alert: whatever it refused, it speaks TLS there.
  bool handshake_alert = false;
  // The failure is mailtap's own (no descriptor for the socket), not the server's.
  bool own_fault = false;

  // The record's reason when it is not what the 421 says: a shutdown's ("mailtap shut down
  // ..."), where the client is told "shutting down; try again later".
  std::string record_reason;

  // `record_reason`, else `failure` without its enhanced status and "mailtap: ", as the record and
  // reports give it.
  std::string failure_reason() const;
};

// Appends mailtap's own exchange with the upstream (and TLS notes) to `events`.
asio::awaitable<UpstreamSetup> establish_upstream(Link& link, const UpstreamTarget& target,
                                                  std::vector<smtp::RecordedEvent>& events);

}  // namespace mailtap::net
