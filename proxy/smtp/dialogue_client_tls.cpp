// The Dialogue's side of TLS towards the client (--local-tls): mailtap's own STARTTLS offer,
// what a STARTTLS line means, the injection rule, and AUTH only inside TLS. The session does
// the handshake when client_tls_due() says so. See docs/proxy.md, "TLS towards the client".
#include <utility>

#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/command.hpp"
#include "proxy/smtp/dialogue.hpp"
#include "proxy/smtp/dialogue_internal.hpp"

namespace mailtap::smtp {

namespace {
constexpr std::string_view kLocalTlsWay =
    "; a client that requires TLS needs mailtap run with --local-tls starttls (or implicit)";
}  // namespace

std::string starttls_refusal_upstream_encrypted(std::string_view link) {
  return "STARTTLS is not offered: mailtap already encrypts the link to " + std::string(link) +
         std::string(kLocalTlsWay);
}

std::string starttls_refusal_plain_relay() {
  return "STARTTLS is not available: this session is relayed in plain text (--tls none)" +
         std::string(kLocalTlsWay);
}

bool Dialogue::client_tls_due() const {
  return client_tls_ == ClientTlsState::due && !ending_ && !client_eof_;
}

std::string Dialogue::answer_starttls(const Command& cmd) {
  switch (client_tls_) {
    case ClientTlsState::unavailable:
      return "502 5.5.1 mailtap: " + options_.starttls_refusal + "\r\n";
    case ClientTlsState::active:
      return "503 5.5.1 mailtap: TLS is already active on this connection\r\n";
    case ClientTlsState::requested:
    case ClientTlsState::due:
      break;  // not reached: nothing is read until the handshake
    case ClientTlsState::offered:
      if (!cmd.args.empty()) return "501 5.5.4 mailtap: syntax is STARTTLS, without arguments\r\n";
      // The upstream holds the transaction: TLS cannot start under it (RFC 3207 §4.2 resets
      // the client's state, the upstream's would not be). Nor where one may be open once the
      // replies still awaited are in.
      if (const TransactionTracker::Forecast f = forecast_transaction();
          f.transaction() || !f.certain())
        return "503 5.5.1 mailtap: STARTTLS inside a mail transaction; send RSET first\r\n";
      client_tls_ = ClientTlsState::requested;
      return "220 2.0.0 Ready to start TLS\r\n";
  }
  return "502 5.5.1 mailtap: STARTTLS is not available\r\n";
}

// Before the client's TLS is up, AUTH is refused (credentials only inside TLS, as Gmail and
// Postfix with smtpd_tls_auth_only do); after its STARTTLS, the client must greet again.
bool Dialogue::gate_client_tls(const Command& cmd, std::string_view line) {
  if (cmd.id == Verb::auth && client_tls_ == ClientTlsState::offered) {
    refuse_auth_line(line,
                     "530 5.7.0 mailtap: Must issue a STARTTLS command first (--local-tls "
                     "starttls: AUTH only inside TLS)\r\n");
    return true;
  }
  if (!greet_again_) return false;
  // BDAT goes on: with CHUNKING forgotten (client_tls_started) its chunk is read and discarded
  // with the same 503, so that no chunk byte is ever read as a command.
  switch (cmd.id) {
    case Verb::ehlo:
    case Verb::helo:
    case Verb::noop:
    case Verb::rset:
    case Verb::quit:
    case Verb::help:
    case Verb::bdat:
      return false;
    default:
      break;
  }
  const std::string reply = std::string(greet_again_reply) + "\r\n";
  if (cmd.id == Verb::auth) {
    refuse_auth_line(line, reply);
    return true;
  }
  record(client_line_event(Direction::client_to_mailtap, cmd, line));
  queue_local_reply(reply);
  return true;
}

// The server had the client's EHLO (or HELO) before the client's STARTTLS, which mailtap
// answered itself: the greeting RFC 3207 asks for after it is the server's second, which
// RFC 5321 §4.1.4 lets it refuse (OpenSMTPD: "503 5.5.1 Invalid command: Already identified").
// mailtap made that greeting necessary, so a 503 to it must not strand the client: the
// client gets the server's reply to its earlier greeting, what RFC 3207 §4.2 has it learn
// again, filtered as that reply is relayed inside TLS, and counts as greeted. Any other reply
// is the server's word on this greeting and goes as it came. The server's state is the one its
// earlier acceptance left: no transaction (STARTTLS is refused inside one, and MAIL until the
// client greets again), so nothing needs an RSET. The 503 stays in the record, followed by the
// rewrite event with what the client got instead.
bool Dialogue::greet_again_from_earlier_reply(const Pending& p, const Reply& reply, Relayed& out) {
  if (!greet_again_ || reply.code != 503 || !accepted_greeting_) return false;
  greet_again_ = false;
  const AcceptedGreeting& earlier = *accepted_greeting_;
  const bool extensions = earlier.command == Verb::ehlo;
  const Capabilities caps = extensions ? parse_capabilities(earlier.reply) : Capabilities{};
  if (p.command == Verb::helo)
    chunking_ = Chunking::after_helo;
  else if (caps.chunking)
    chunking_ = Chunking::advertised;
  else
    chunking_ = Chunking::not_advertised;
  upstream_size_ = caps.size;
  upstream_size_unreadable_ = caps.size_unreadable;
  bool removed = false;
  // A HELO is answered with one line, the server's name (RFC 5321 §4.1.1.1): a client that
  // sent one gets no extension list, whatever it sent before its STARTTLS.
  const bool one_line = extensions && p.command == Verb::helo;
  if (one_line)
    out.to_client = first_line(earlier.reply) + "\r\n";
  else
    out.to_client = extensions ? client_ehlo_extensions(earlier.reply, removed) : earlier.reply.raw;
  bool marked = false;
  out.to_client = with_greeting_warning(std::move(out.to_client), marked);
  const std::string earlier_verb = extensions ? "EHLO" : "HELO";
  std::string note = "the server refused the repeated " + p.verb + " (" + first_line(reply) +
                     "): it had the client's " + earlier_verb +
                     " before the client's STARTTLS, which mailtap answered itself "
                     "(--local-tls starttls); the client got the server's reply to that " +
                     earlier_verb + " instead";
  if (one_line) note += ", its first line only, as a HELO is answered";
  if (removed) note += ", as mailtap relays it inside TLS";
  if (marked) note += ", its first line ending [" + options_.greeting_warning + "]";
  note += ", and is greeted again (RFC 3207 §4.2)";
  out.rewrite = rewrite_event(p.verb, out.to_client, std::move(note));
  return true;
}

// Bytes after the STARTTLS line and before the handshake would be read as if they came
// through TLS: the plain-text command injection of CVE-2011-0411. They are not read (nor kept:
// they may be anything), and the session ends.
void Dialogue::refuse_tls_injection() {
  discard_unread_client_input();
  Event e = make_event(Direction::client_to_mailtap, EventKind::error);
  e.verb = "STARTTLS";
  e.redacted = true;
  e.note =
      "client bytes followed STARTTLS before the TLS handshake (command injection, "
      "CVE-2011-0411 class): not read, session closed";
  record(std::move(e));
  abort(
      "4.7.0 mailtap: bytes after STARTTLS before the TLS handshake (possible command "
      "injection); closing: connect again, and after STARTTLS send nothing until its 220 has "
      "come and the TLS handshake is done",
      {Ending::Kind::error, "client sent bytes after STARTTLS before the TLS handshake"});
}

namespace {
enum class TlsStart : std::uint8_t { no, maybe, yes };
// Whether `head` begins a TLS record of the handshake (RFC 8446 §5.1: content type 22, then
// legacy_record_version 0x0301, or 0x0300..0x0304 from older and odder clients); `maybe`: too
// few octets to tell, and so far they do.
TlsStart tls_handshake_start(std::string_view head) {
  constexpr unsigned char handshake = 0x16, major = 0x03, highest_minor = 0x04;
  const auto octet = [&head](std::size_t i) { return static_cast<unsigned char>(head[i]); };
  if (head.empty()) return TlsStart::maybe;
  if (octet(0) != handshake) return TlsStart::no;
  if (head.size() < 2) return TlsStart::maybe;
  if (octet(1) != major) return TlsStart::no;
  if (head.size() < 3) return TlsStart::maybe;
  return octet(2) <= highest_minor ? TlsStart::yes : TlsStart::no;
}
}  // namespace

// A client that speaks TLS from its first byte (swaks --tlsc, an implicit-TLS setting) on a
// port where mailtap speaks plain SMTP: its ClientHello read as command lines would make NUL
// errors, or be relayed where it has none. True once decided (and the dialogue goes on).
bool Dialogue::check_client_start() {
  if (client_tls_ == ClientTlsState::active) return true;
  switch (tls_handshake_start(framer_.peek_unread())) {
    case TlsStart::no:
      return true;
    case TlsStart::maybe:
      return client_eof_;  // nothing more will come: what there is is read as it is
    case TlsStart::yes:
      refuse_tls_on_plain_port();
      return true;
  }
  return true;
}

// Not read, not relayed, not kept; the client, in its handshake, will not read the 421, but a
// person looking at its error may see it, and the record and the log say what to do.
void Dialogue::refuse_tls_on_plain_port() {
  const std::string& advice = options_.tls_on_plain_port_advice;
  const std::string what_to_do = advice.empty() ? std::string() : ": " + advice;
  // No size: how much of the handshake has arrived depends on the reads.
  Event e = make_event(Direction::client_to_mailtap, EventKind::error);
  e.redacted = true;
  e.note =
      "the client's first bytes are a TLS ClientHello: it started a TLS handshake on a port "
      "where mailtap speaks plain SMTP; not read, not forwarded, session closed" +
      (advice.empty() ? std::string() : "; " + advice);
  record(std::move(e));
  framer_.skip_unread();
  abort("4.5.0 mailtap: this port speaks plain SMTP, not TLS" + what_to_do + "; closing",
        {Ending::Kind::error, "client started a TLS handshake on a plain-text port" + what_to_do});
}

void Dialogue::client_tls_started(std::string_view description) {
  if (ending_ || client_tls_ != ClientTlsState::due) return;
  client_tls_ = ClientTlsState::active;
  greet_again_ = true;
  chunking_ = Chunking::after_starttls;  // learned from an EHLO before TLS: void until the next
  record(note_event(EventKind::tls, "STARTTLS",
                    "client side: TLS established (" + std::string(description) +
                        "); the client must send EHLO again"));
  process_client();
}

void Dialogue::client_tls_failed(std::string_view reason) {
  if (ending_ || client_tls_ != ClientTlsState::due) return;
  record(note_event(EventKind::tls, "STARTTLS",
                    "client side: TLS handshake failed: " + std::string(reason)));
  // No reply: the client is inside a handshake and could not read one.
  finish(Ending::Kind::error, "client TLS handshake failed: " + std::string(reason));
}

void Dialogue::client_tls_cut_by_shutdown() {
  if (ending_ || client_tls_ != ClientTlsState::due) return;
  record(note_event(EventKind::tls, "STARTTLS",
                    "client side: TLS handshake not finished: mailtap shut down during it"));
  // No reply, as above: the 421 a shutdown sends could not be read inside a handshake.
  finish(Ending::Kind::shutdown, "mailtap shut down during the client's handshake");
}

}  // namespace mailtap::smtp
