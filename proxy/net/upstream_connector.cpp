#include "proxy/net/upstream_connector.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/verify_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>

#include "proxy/common/duration.hpp"
#include "proxy/common/terminal_escape.hpp"
#include "proxy/net/address_race.hpp"
#include "proxy/net/certificate_facts.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/net/descriptor_reserve.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/net/octets_after_starttls.hpp"
#include "proxy/net/tls_alert.hpp"
#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/cipher_caveat.hpp"

namespace mailtap::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
using smtp::Direction;
using smtp::Event;
using smtp::EventKind;
using smtp::Phase;

// A reply quoted in mailtap's own 421 (and so in the log and the record's reason): escaped to
// printable ASCII, as an SMTP reply's text must be (RFC 5321 4.2), so a server cannot put
// escape sequences on the client's terminal in mailtap's name. Relayed replies stay as sent.
std::string one_line(const smtp::Reply& r) {
  std::string s = std::to_string(r.code);
  if (!r.lines.empty() && !r.lines.front().empty()) s += " " + escape_line(r.lines.front());
  return s;
}

// The enhanced status of mailtap's 421 quoting a server's refusal: the server's own if it is a
// 4.x.x (a "421 4.7.0 ... try later" keeps what it says), else `otherwise` (a 5.x.x would
// contradict the 421).
std::string refusal_status(const smtp::Reply& r, const char* otherwise) {
  return r.enhanced_status.rfind("4.", 0) == 0 ? r.enhanced_status : std::string(otherwise);
}

// How long the QUIT after a refusal waits for its reply (within the set-up's own timeout).
constexpr std::chrono::seconds kQuitWait{2};

bool is_ip_literal(const std::string& s) {
  std::error_code ec;
  asio::ip::make_address(s, ec);
  return !ec;
}

// The name to send as SNI and verify: an absolute name ("smtp.gmail.com.") without its one
// trailing dot, which certificates never carry and SNI must not (RFC 6066 3). Messages keep
// the name as the user gave it.
std::string name_to_verify(const std::string& tls_name) {
  if (tls_name.size() > 1 && tls_name.back() == '.') return tls_name.substr(0, tls_name.size() - 1);
  return tls_name;
}

class Setup {
 public:
  Setup(Link& link, const UpstreamTarget& t, std::vector<smtp::RecordedEvent>& events)
      : link_(link), t_(t), events_(events) {
    label_ = target_label_ = host_port_label(t.host, t.port);
  }

  asio::awaitable<UpstreamSetup> run() {
    auto ex = co_await asio::this_coro::executor;
    setup_ends_ = std::chrono::steady_clock::now() + t_.timeout;
    Deadline deadline(ex, setup_ends_, [this] {
      timed_out_ = true;
      if (race_ != nullptr) race_->cancel();
      link_.close();
    });
    co_await steps();
    deadline.cancel();
    if (!result_.ok) keep_unrelayed_greeting();
    // A failure already said stays (the deadline may end a QUIT after a refusal).
    if (!result_.ok && timed_out_ && result_.failure.empty()) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t_.timeout);
      fail("4.4.1 mailtap: " + label_ + " timed out after " + format_setting_duration(ms) + " " +
               step_ + timeout_advice(),
           smtp::Outcome::timeout);
    }
    if (!result_.ok) name_address_in_failure();
    co_return std::move(result_);
  }

 private:
  // Connected, and not one byte came: as likely a port that waits for a TLS handshake as a slow
  // server, and the first is the one a longer timeout does not fix; unless the name has another
  // address not tried yet: then this one may be the broken node, and --tls implicit would break
  // the others, so the advice is to try one of them; or the server greeted earlier sessions of
  // this proxy: then it speaks plain text first, and is busy (Postfix at its process limit).
  std::string timeout_advice() const {
    if (!connected_ || received_ || t_.mode == TlsMode::implicit)
      return " (see " + t_.timeout_flag + ")";
    const std::vector<std::string>& untried = result_.addresses_untried;
    if (!untried.empty()) {
      return ": if " + untried.front() + " greets when given instead of " + target_label_ +
             " (with --tls-name " + t_.tls_name + "), " + result_.tls.resolved_address +
             " is broken; else see " + t_.timeout_flag;
    }
    if (t_.greeted_before != nullptr && t_.greeted_before->load(std::memory_order_relaxed)) {
      return ": it greeted earlier sessions of this mailtap, so it is slow or busy now (too many "
             "sessions at once?): try again later; else see " +
             t_.timeout_flag;
    }
    return ": " + implicit_tls_hint(target_label_) + "; else see " + t_.timeout_flag;
  }

  // After connecting to one of several addresses, every failure names it (and the others, in
  // label_): a failure whose words do not name the server, as a certificate's, gets it first.
  void name_address_in_failure() {
    if (label_ == target_label_ || result_.failure.find(label_) != std::string::npos) return;
    const std::string mailtap = "mailtap: ";
    if (const auto at = result_.failure.find(mailtap); at != std::string::npos)
      result_.failure.insert(at + mailtap.size(), label_ + ": ");
  }

  // The server's reply refused the set-up, and the session still stands where commands go (in
  // clear, or over implicit TLS): mailtap ends it with QUIT.
  void refuse(std::string reason) {
    fail(std::move(reason));
    quit_due_ = true;
  }

  // QUIT, as a client that is done says (RFC 5321 4.1.1.10), and its reply, both recorded:
  // a server counts a dropped connection against the client (connection and error limits),
  // on top of the fault being diagnosed. Its failure changes nothing of the refusal's. The
  // telnet user's 421 waits for it, so a server that never answers QUIT gets kQuitWait, not
  // what is left of the whole set-up's timeout.
  asio::awaitable<void> quit_after_refusal() {
    if (!quit_due_) co_return;
    auto ex = co_await asio::this_coro::executor;
    const Deadline quit_deadline(
        ex, std::min(setup_ends_, std::chrono::steady_clock::now() + kQuitWait),
        [this] { link_.close(); });
    const std::string line = "QUIT\r\n";
    auto [ec, n] = co_await link_.write(asio::buffer(line));
    if (ec) co_return;
    record(Direction::mailtap_to_upstream, EventKind::command, line, "QUIT");
    for (;;) {
      if (auto reply = parser_.next()) {
        record(Direction::upstream_to_mailtap, EventKind::reply, reply->raw, "QUIT", &*reply);
        co_return;
      }
      if (parser_.error() != smtp::ReplyParser::Error::none) co_return;
      auto [rec, got] = co_await link_.read_some(asio::buffer(read_buffer_));
      if (rec) co_return;
      parser_.feed(std::string_view(read_buffer_.data(), got));
    }
  }

  // The link closed under the set-up by the session, not by the deadline: mailtap is shutting
  // down, and the session says so in its 421 and the record's outcome. What the interrupted
  // step then fails with (asio's "Operation aborted.") is no fault of the server's.
  bool closed_by_session() const { return link_.closed() && !timed_out_; }

  void fail(std::string reason, smtp::Outcome outcome = smtp::Outcome::refused) {
    result_.ok = false;
    result_.failure = std::move(reason);
    result_.outcome = outcome;
  }

  void note(EventKind kind, std::string text) {
    Event e;
    e.direction = Direction::mailtap_note;
    e.phase = phase_;
    e.kind = kind;
    e.note = std::move(text);
    e.time = std::chrono::system_clock::now();
    events_.push_back(smtp::mailtap_event(std::move(e)));
  }

  void record(Direction d, EventKind kind, std::string bytes, std::string verb,
              const smtp::Reply* reply = nullptr) {
    events_.push_back(
        smtp::mailtap_event(make_event(d, kind, std::move(bytes), std::move(verb), reply)));
  }

  Event make_event(Direction d, EventKind kind, std::string bytes, std::string verb,
                   const smtp::Reply* reply) const {
    Event e;
    e.direction = d;
    e.phase = phase_;
    e.kind = kind;
    e.verb = std::move(verb);
    if (reply) {
      e.reply_code = reply->code;
      e.enhanced_status = reply->enhanced_status;
    }
    e.wire_size = bytes.size();
    e.bytes = std::move(bytes);
    e.time = std::chrono::system_clock::now();
    return e;
  }

  // A 220 is recorded when the session relays it to the client; a set-up that fails after it
  // would lose it, and with it which server (its host and software) was refused: it goes into
  // the record where it was read, as mailtap's.
  void keep_unrelayed_greeting() {
    if (!unrelayed_greeting_) return;
    const auto at = events_.begin() + static_cast<std::ptrdiff_t>(greeting_at_);
    events_.insert(at, smtp::mailtap_event(std::move(*unrelayed_greeting_)));
    unrelayed_greeting_.reset();
  }

  asio::awaitable<std::optional<smtp::Reply>> read_reply() {
    for (;;) {
      if (auto r = parser_.next()) co_return r;
      if (parser_.error() != smtp::ReplyParser::Error::none) {
        // No SMTP server says that much or that oddly: the port is most often another
        // service's, or the server is broken.
        fail("4.5.0 mailtap: " + std::string(parser_.error_text()) + " " + step_ + ": " + label_ +
                 " does not speak SMTP as a mail server does; check that it is the mail "
                 "server's port (mailtap probe " +
                 target_label_ + " shows what it sends), or ask its administrator",
             smtp::Outcome::error);
        co_return std::nullopt;
      }
      auto [ec, n] = co_await link_.read_some(asio::buffer(read_buffer_));
      if (n > 0) received_ = true;
      if (ec) {
        link_failed(ec);
        co_return std::nullopt;
      }
      parser_.feed(std::string_view(read_buffer_.data(), n));
    }
  }

  asio::awaitable<bool> send(std::string line, std::string verb) {
    record(Direction::mailtap_to_upstream, EventKind::command, line, std::move(verb));
    auto [ec, n] = co_await link_.write(asio::buffer(line));
    if (ec) link_failed(ec);
    co_return !ec;
  }

  // A read or write on the link failed: over TLS most often the server's alert (over TLS 1.3 a
  // server refuses a client without a certificate only once the client's handshake is done).
  void link_failed(const std::error_code& ec) {
    if (timed_out_) return;
    if (const std::string why = upstream_alert(ec); !why.empty()) {
      note(EventKind::tls, label_ + " " + why);
      fail("4.7.0 mailtap: " + label_ + " " + why, smtp::Outcome::error);
      return;
    }
    fail("4.4.2 mailtap: " + label_ + " closed the connection " + step_ + " (" + ec.message() + ")",
         smtp::Outcome::error);
  }

  // The server's certificate refused for its keyUsage, in words; empty if `ec` is not that.
  std::string refused_key_usage(const std::error_code& ec) {
    if (ec.category() != asio::error::get_ssl_category()) return {};
    return explain_key_usage_refusal(static_cast<uint32_t>(ec.value()),
                                     name_to_verify(t_.tls_name));
  }

  // The server's TLS alert in `ec`, in words; empty if it is none.
  std::string upstream_alert(const std::error_code& ec) {
    const TlsStream* tls = link_.tls();
    return describe_upstream_alert(ec, tls != nullptr && tls->certificate_requested(),
                                   t_.client_certificate.get(), !result_.tls.sni.empty());
  }

  // Each step returns whether to go on; a failure has been set when it does not. Awaited results
  // are named before they are tested: GCC 12.2 miscompiles a co_await in an if condition when it
  // is the first suspension of a coroutine with no other local in its frame (the callee then
  // reads a garbage `this`), which is what broke the first split of these functions.
  asio::awaitable<void> steps() {
    const bool connected = co_await connect();
    if (!connected) co_return;
    phase_ = t_.mode == TlsMode::none ? Phase::plain : Phase::pre_tls;
    if (t_.mode == TlsMode::implicit) {
      const bool secured = co_await handshake();
      if (!secured) co_return;
    }
    const bool greeted = co_await read_greeting();
    if (!greeted) {
      co_await quit_after_refusal();
      co_return;
    }
    if (t_.mode == TlsMode::starttls) {
      const bool upgraded = co_await upgrade_to_tls();
      if (!upgraded) {
        co_await quit_after_refusal();
        co_return;
      }
    }
    result_.after_greeting = parser_.take_buffered();
    result_.ok = true;
  }

  // Resolves the upstream's name and connects to the first of its addresses that answers.
  asio::awaitable<bool> connect() {
    auto ex = co_await asio::this_coro::executor;
    std::optional<std::vector<asio::ip::tcp::endpoint>> endpoints = co_await resolve();
    if (!endpoints) co_return false;
    step_ = "while connecting";
    if (closed_by_session()) co_return false;
    AddressRace race(ex);
    race_ = &race;
    link_.while_connecting([&race] { race.cancel(); });
    auto socket = co_await race.connect(*endpoints, link_.socket_reserve());
    link_.while_connecting(nullptr);
    race_ = nullptr;
    // The deadline's failure names the addresses tried; the session's shutdown says its own.
    if (closed_by_session()) co_return false;
    if (!socket) {
      connect_failed(race);
      co_return false;
    }
    link_.socket() = std::move(*socket);
    std::error_code ignored;
    link_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    const asio::ip::tcp::endpoint endpoint = race.connected().value_or(asio::ip::tcp::endpoint());
    result_.tls.resolved_address = address_label(endpoint);
    std::string tried;  // the addresses that did not answer first, in the record's note
    for (const ConnectAttempt& a : race.attempts())
      if (a.endpoint != endpoint) tried += (tried.empty() ? "" : ", ") + address_label(a.endpoint);
    note(EventKind::note, "connected to " + label_ + " (" + result_.tls.resolved_address +
                              (tried.empty() ? "" : "; also tried " + tried) + ")");
    name_the_address(race, *endpoints, endpoint);
    co_return true;
  }

  // The upstream's addresses, in the order to try them; nullopt once the session failed. An
  // address needs no resolver, which would open files (and a netlink socket) in the place of
  // the descriptor the session keeps for its socket; a name does, and that descriptor is given
  // up for them.
  asio::awaitable<std::optional<std::vector<asio::ip::tcp::endpoint>>> resolve() {
    step_ = "while resolving " + t_.host;
    std::error_code not_an_address;
    const asio::ip::address address = asio::ip::make_address(t_.host, not_an_address);
    DescriptorReserve* reserve = link_.socket_reserve();
    std::optional<ResolvingWithoutReserve> lent;  // the acceptor leaves the slot to the resolver
    if (reserve && not_an_address && reserve->held()) {
      lent.emplace();
      reserve->release();
    }
    // Not one descriptor free: the socket could not be had whatever the resolve said, and the
    // resolve may say "host not found", its files failing for it before DNS answered.
    if (!reserve || !reserve->held()) {
      if (const std::error_code shortage = descriptor_shortage()) {
        fail_for_descriptors(shortage);
        co_return std::nullopt;
      }
    }
    if (!not_an_address) co_return std::vector{asio::ip::tcp::endpoint(address, t_.port)};
    asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
    auto [rec, resolved] =
        co_await resolver.async_resolve(t_.host, std::to_string(t_.port), use_tuple);
    // The resolver's files are closed: the slot is kept for the socket again, if still free.
    if (lent) {
      reserve->take();
      lent.reset();
    }
    if (rec) {
      resolve_failed(rec);
      co_return std::nullopt;
    }
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (const auto& entry : resolved) endpoints.push_back(entry.endpoint());
    co_return interleave_families(endpoints);
  }

  // Mailtap's own limit, `ec` (EMFILE or ENFILE), which the 421 must not pin on the server.
  void fail_for_descriptors(const std::error_code& ec) {
    fail(out_of_descriptors_refusal(ec, t_.connections_flag), smtp::Outcome::error);
    result_.own_fault = true;
  }

  // No descriptor to resolve the name with (to read /etc/hosts, or a socket to the DNS
  // server) is mailtap's own limit, which the 421 must not pin on the name: glibc reports it
  // as EMFILE (EAI_SYSTEM), but when /etc/hosts could not be read and a descriptor came free
  // for the DNS query, as DNS's "host not found" for a name only /etc/hosts knows.
  void resolve_failed(std::error_code ec) {
    if (timed_out_) return;
    if (!out_of_descriptors(ec)) {
      if (const std::error_code shortage = descriptor_shortage()) ec = shortage;
    }
    if (out_of_descriptors(ec)) {
      fail_for_descriptors(ec);
      return;
    }
    fail("4.4.3 mailtap: cannot resolve " + t_.host + ": " + ec.message() + "; check the name" +
             in_target_flag(),
         smtp::Outcome::error);
  }

  // The name's other addresses, each failed (for probe, and a broken one costs every client
  // that tries it first) or untried (one still unanswered when `used` connected is not known
  // to be broken). With several, the failures from here on name the one connected to and what
  // each other did ("[::1]:587 (mx.example.test; 127.0.0.1:587: not tried)"): one broken node
  // of a dual-stack or round-robin name is the fault that "works sometimes", and which address
  // it is, is the first thing its administrator needs.
  void name_the_address(const AddressRace& race,
                        const std::vector<asio::ip::tcp::endpoint>& endpoints,
                        const asio::ip::tcp::endpoint& used) {
    const auto& attempts = race.attempts();
    std::string others;
    for (const asio::ip::tcp::endpoint& e : endpoints) {
      if (e == used) continue;
      const auto a = std::find_if(attempts.begin(), attempts.end(),
                                  [&](const ConnectAttempt& c) { return c.endpoint == e; });
      const std::string what = a == attempts.end() ? address_label(e) + ": not tried"
                                                   : AddressRace::describe_attempt(*a);
      if (a != attempts.end() && a->failed())
        result_.addresses_failed.push_back(what);
      else
        result_.addresses_untried.push_back(address_label(e));
      others += "; " + what;
    }
    if (!others.empty()) label_ = result_.tls.resolved_address + " (" + t_.host + others + ")";
  }

  // Every address failed, or the deadline ended the race: the reason names each address
  // tried and what it did (a name that resolves to one address just the one).
  void connect_failed(const AddressRace& race) {
    const auto& attempts = race.attempts();
    const bool single = attempts.size() == 1;
    if (timed_out_) {
      step_ = single && address_label(attempts.front().endpoint) == label_
                  ? "while connecting"
                  : "while connecting (" + race.describe_attempts() + ")";
      return;
    }
    // No socket to try an address with: mailtap's own limit, which the 421 must not pin on
    // the server (as a client turned away at accept is told).
    for (const ConnectAttempt& a : attempts)
      if (out_of_descriptors(a.error)) {
        fail_for_descriptors(a.error);
        return;
      }
    std::string why = race.describe_attempts();
    if (single) {
      const std::string address = address_label(attempts.front().endpoint);
      const std::string error = attempts.front().error.message();
      why = address == label_ ? error : address + ": " + error;
    }
    fail("4.4.1 mailtap: cannot connect to " + label_ + ": " + why + "; check the host and port" +
             in_target_flag() + ", and that the server runs and accepts connections there",
         smtp::Outcome::error);
  }

  // Where the user gave the server's name, for a failure that may be a typo in it.
  std::string in_target_flag() const {
    return t_.target_flag.empty() ? std::string() : " in " + t_.target_flag;
  }

  // The upstream's greeting, kept for the client; anything but 220 ends the setup.
  asio::awaitable<bool> read_greeting() {
    step_ = "waiting for the greeting";
    connected_ = true;
    auto greeting = co_await read_reply();
    if (!greeting) co_return false;
    if (greeting->code != 220) {
      record(Direction::upstream_to_mailtap, EventKind::greeting, greeting->raw, "", &*greeting);
      // Implicit TLS: a server that asked for a client certificate may refuse it in its
      // greeting, the first thing it says after the handshake. Only mailtap's note is added:
      // the status stays what any refused greeting gets, the server's own if it is a 4.x.x (a
      // "554 5.7.1" is not made a "4.7.0", nor blamed on the certificate more than it says).
      const std::string& certificate = result_.certificate_request_note;
      refuse(refusal_status(*greeting, "4.3.2") + " mailtap: " + label_ + " refused the session: " +
             one_line(*greeting) + (certificate.empty() ? std::string() : "; it " + certificate));
      co_return false;
    }
    result_.greeting = greeting;
    result_.greeting_phase = phase_;
    if (t_.greeted_before != nullptr) t_.greeted_before->store(true, std::memory_order_relaxed);
    greeting_at_ = events_.size();
    unrelayed_greeting_ = make_event(Direction::upstream_to_mailtap, EventKind::greeting,
                                     greeting->raw, "", &*greeting);
    co_return true;
  }

  // STARTTLS: mailtap's own EHLO, the STARTTLS command, then the handshake. Never goes on in
  // plain text.
  asio::awaitable<bool> upgrade_to_tls() {
    const bool offered = co_await ehlo_offers_starttls();
    if (!offered) co_return false;
    const bool accepted = co_await starttls_accepted();
    if (!accepted) co_return false;
    co_return co_await handshake();
  }

  asio::awaitable<bool> ehlo_offers_starttls() {
    step_ = "waiting for the reply to EHLO";
    const bool sent = co_await send("EHLO " + t_.ehlo_name + "\r\n", "EHLO");
    if (!sent) co_return false;
    auto ehlo = co_await read_reply();
    if (!ehlo) co_return false;
    record(Direction::upstream_to_mailtap, EventKind::reply, ehlo->raw, "EHLO", &*ehlo);
    if (ehlo->code != 250) {
      refuse(refusal_status(*ehlo, "4.7.0") + " mailtap: " + label_ + " refused EHLO " +
             t_.ehlo_name + ": " + one_line(*ehlo) + " (" + ehlo_refusal_advice(*ehlo) + ")");
      co_return false;
    }
    if (!smtp::parse_capabilities(*ehlo).starttls) {
      refuse("4.7.0 mailtap: " + label_ +
             " does not offer STARTTLS; refusing to continue in plain text (--tls none relays "
             "unencrypted, --tls implicit for port 465)");
      co_return false;
    }
    co_return true;
  }

  // The STARTTLS command and its 220, with nothing after it before the handshake.
  asio::awaitable<bool> starttls_accepted() {
    step_ = "waiting for the reply to STARTTLS";
    const bool sent = co_await send("STARTTLS\r\n", "STARTTLS");
    if (!sent) co_return false;
    auto go = co_await read_reply();
    if (!go) co_return false;
    record(Direction::upstream_to_mailtap, EventKind::reply, go->raw, "STARTTLS", &*go);
    if (go->code / 100 == 2 && go->code != 220) {
      // No refusal, and no agreement either: RFC 3207 has the server start TLS after a 220.
      refuse("4.7.0 mailtap: " + label_ + " answered STARTTLS with " + one_line(*go) +
             " instead of 220: it did not agree to start TLS, and mailtap does not go on in "
             "plain text; the server (or a firewall between that inspects SMTP) is broken: ask "
             "its administrator");
      co_return false;
    }
    if (go->code != 220) {
      refuse("4.7.0 mailtap: " + label_ + " refused STARTTLS: " + one_line(*go) +
             ": it offers no working TLS on this port; if it has an implicit-TLS port (465), use "
             "that with --tls implicit, else ask its administrator to set TLS up");
      co_return false;
    }
    if (parser_.buffered() > 0) {
      // Plain-text bytes after "220" would be read as if they came over TLS (CVE-2011-0411),
      // unless they are the server's own TLS alert; the record keeps them as evidence.
      const OctetsAfterStarttls behind =
          describe_octets_after_starttls(parser_.take_buffered(), label_);
      note(EventKind::error, behind.note);
      fail("4.7.0 mailtap: " + behind.reason);
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> handshake() {
    step_ = "during the TLS handshake";
    TlsStream& tls = link_.start_tls();
    const std::string name = name_to_verify(t_.tls_name);
    result_.tls.sni = is_ip_literal(name) ? "" : name;
    if (!result_.tls.sni.empty()) SSL_set_tlsext_host_name(tls.native_handle(), name.c_str());
    auto failures = std::make_shared<std::vector<VerifyFailure>>();
    auto checked = std::make_shared<bool>(false);
    const bool enforce = !t_.insecure;
    if (enforce || t_.report_when_insecure || t_.check_when_insecure)
      check_certificate(tls, enforce, failures, checked);
    // Resume only where certificates were checked the same way (the cache is per context).
    if (t_.session_cache != nullptr)
      t_.session_cache->prepare(tls.native_handle(), target_label_ + " " + name);
    const std::error_code ec = co_await tls.handshake();
    // The name is the one a certificate was checked against (schema.md: NULL if not checked):
    // a handshake that ended before any certificate came (an alert, plain text, a timeout)
    // checked none. One that succeeded did, or resumed a session whose handshake did.
    if (ec && !*checked) result_.tls.verified_name.clear();
    keep_verify_problems(*failures);
    take_client_certificate(tls);
    if (ec) {
      // In the words of the client side's note for the same moment.
      if (closed_by_session())
        note(EventKind::tls,
             "TLS handshake with " + label_ + " not finished: mailtap shut down during it");
      else if (!timed_out_)
        handshake_failed(ec, enforce);
      co_return false;
    }
    link_.set_tls_active();
    phase_ = Phase::tls;
    note_tls_established(tls.native_handle(), enforce);
    co_return true;
  }

  // Has the handshake check the certificate for --tls-name; every failure goes to `failures`.
  // `checked` becomes true once the server's certificate is looked at.
  void check_certificate(TlsStream& tls, bool enforce,
                         const std::shared_ptr<std::vector<VerifyFailure>>& failures,
                         const std::shared_ptr<bool>& checked) {
    const std::string name = name_to_verify(t_.tls_name);
    X509_VERIFY_PARAM* param = SSL_get0_param(tls.native_handle());
    // Names come from the subjectAltName only: BoringSSL would otherwise take the subject's CN
    // of a certificate that has none, which no CA may issue for a host name (CA/Browser Forum
    // baseline requirements; RFC 6125 6.4.4). Proxy, probe and replay all verify here.
    X509_VERIFY_PARAM_set_hostflags(
        param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (is_ip_literal(name))
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, name.data(), name.size());
    result_.tls.verified_name = name;
    tls.set_verify([failures, checked, enforce](bool preverified, X509_STORE_CTX* store) {
      *checked = true;
      // A chain BoringSSL verifies may still hold a key or a signature too weak to trust.
      const std::string weakness = preverified ? weakness_of(store) : std::string();
      if (!weakness.empty()) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
        preverified = false;
      }
      // Enforcing, the first failure ends the handshake; reporting, every one is kept.
      if (!preverified && (!enforce || failures->empty())) {
        failures->push_back(capture_verify_failure(store));
        failures->back().weakness = weakness;
      }
      return preverified || !enforce;
    });
  }

  // Whether mailtap presented its client certificate (--client-cert): in this handshake, which
  // BoringSSL does when the server asks for one, or in the one of the session it resumed. For
  // the record, and for the words of a refusal that follows a request.
  void take_client_certificate(const TlsStream& tls) {
    const ClientCertificate* mine = t_.client_certificate.get();
    const bool requested = tls.certificate_requested();
    if (mine != nullptr &&
        (requested || TlsSessionCache::resumed_with_client_certificate(tls.native_handle()))) {
      result_.tls.client_cert_sha256 = mine->leaf_facts.sha256_hex;
      result_.tls.client_cert_subject = mine->leaf_facts.subject;
    }
    if (requested)
      result_.certificate_request_note = describe_refusal_after_certificate_request(mine);
  }

  // The client certificate in the record's tls note: ", client certificate CN=x presented", or
  // that the server asked for one and mailtap had none; "" when it was not asked for.
  std::string client_certificate_note() const {
    if (!result_.tls.client_cert_subject.empty())
      return ", client certificate " + result_.tls.client_cert_subject + " presented" +
             (result_.tls.resumed ? " (when the session resumed was made)" : "");
    if (!result_.certificate_request_note.empty())
      return ", a client certificate asked for and none presented (no --client-cert)";
    return {};
  }

  // Each verification failure explained once, in the order found.
  void keep_verify_problems(const std::vector<VerifyFailure>& failures) {
    auto& seen = result_.verify_problems;
    for (const VerifyFailure& f : failures) {
      VerifyProblem problem{f.error, explain_verify_failure(f, t_.tls_name, t_.trust_source)};
      if (std::none_of(seen.begin(), seen.end(),
                       [&](const VerifyProblem& p) { return p.reason == problem.reason; }))
        seen.push_back(std::move(problem));
    }
  }

  // Plain text where the server's handshake was due is said in words: BoringSSL's
  // WRONG_VERSION_NUMBER tells no one that a server answered in SMTP, behind the 220 to
  // STARTTLS (the injection the check in starttls_accepted catches when it comes in one read
  // with the 220) or from the first byte of a port without implicit TLS.
  void handshake_failed(const std::error_code& ec, bool enforce) {
    std::string reason = "TLS handshake with " + label_ + " failed: ";
    if (enforce && !result_.verify_problems.empty()) {
      // The chain the server presented is what the refusal is about: recorded as for a
      // session that went on (the certificates table), for show, web and export to show.
      if (const TlsStream* tls = link_.tls()) result_.tls.chain = peer_chain(tls->native_handle());
      reason = result_.verify_problems.front().reason;
      result_.tls.verify_status = smtp::VerifyStatus::failed;
      result_.tls.verify_reason = reason;
    } else if (link_.tls() != nullptr && link_.tls()->handshake_read_plain_text()) {
      reason = t_.mode == TlsMode::starttls
                   ? starttls_not_started(*link_.tls())
                   : reason +
                         "it sent plain text where the handshake was due: it does not speak "
                         "TLS from the first byte (use --tls starttls)";
    } else if (const std::string why = upstream_alert(ec); !why.empty()) {
      reason = label_ + " " + why;
      result_.handshake_alert = true;
    } else if (std::string refused = refused_key_usage(ec); !refused.empty()) {
      reason = std::move(refused);
    } else if (const std::string closed = closed_during_handshake(ec); !closed.empty()) {
      reason = closed;
    } else {
      // BoringSSL's reason alone (EXCESSIVE_MESSAGE_SIZE, ...) says nothing a user can act on:
      // what happened in words, where to look, and the reason kept in brackets.
      reason +=
          "what it sent was not a TLS handshake mailtap could complete; check the "
          "server's TLS set-up (" +
          s_client_command() +
          "), and whether that port expects --tls implicit or --tls starttls [" + ec.message() +
          "]";
    }
    note(EventKind::tls, reason);
    fail("4.7.0 mailtap: " + reason);
  }

  // Plain text where the server's handshake was due after its 220 to STARTTLS came in a read
  // of its own: most often its answer to the ClientHello (a server, or an "SMTP inspection"
  // firewall, that accepts STARTTLS without doing it). The handshake fails on it, so nothing
  // was or could be read as if it came over TLS: no injection; what it said tells the admin
  // which box it was.
  std::string starttls_not_started(TlsStream& tls) const {
    constexpr std::size_t quoted_octets = 200;
    const std::string said = escape_line(tls.take_plain_text_line(quoted_octets));
    return label_ +
           " answered STARTTLS with 220 but did not start TLS: it sent plain text where its TLS "
           "handshake was due (\"" +
           said + "\"): the server, or a firewall between that inspects SMTP, is broken";
  }

  // The server closed or reset the connection in the handshake without saying why (no alert):
  // BoringSSL's "stream truncated" names neither who did it nor what to check. "" for any
  // other failure.
  std::string closed_during_handshake(const std::error_code& ec) const {
    const bool reset = ec == asio::error::connection_reset;
    if (!reset && ec != asio::ssl::error::stream_truncated && ec != asio::error::eof &&
        ec != asio::error::broken_pipe)
      return {};
    return label_ + (reset ? " reset" : " closed") +
           " the connection during the TLS handshake, after mailtap's ClientHello and without a "
           "TLS alert: its TLS set-up is broken, or something between drops TLS; check the "
           "server's log (" +
           s_client_command() + " shows the same)";
  }

  // The command that shows the server's side of a failed handshake, for the address that
  // failed when the name has others.
  std::string s_client_command() const {
    const std::string& at = label_ == target_label_ ? label_ : result_.tls.resolved_address;
    return t_.mode == TlsMode::starttls ? "openssl s_client -starttls smtp -connect " + at
                                        : "openssl s_client -connect " + at;
  }

  // What verification would have said of a certificate --insecure took unchecked, for the
  // record: every problem found, in the words a refusal would have used.
  std::string would_have_said() const {
    if (result_.verify_problems.empty())
      return "not verified (--insecure); verification would have passed";
    std::string reasons;
    for (const VerifyProblem& p : result_.verify_problems)
      reasons += (reasons.empty() ? "" : "; ") + p.reason;
    return "not verified (--insecure); verification would have failed: " + reasons;
  }

  // After a completed handshake: what was negotiated and what the certificate check concluded.
  void note_tls_established(SSL* ssl, bool enforce) {
    result_.tls.tls_version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl))
      result_.tls.cipher = SSL_CIPHER_standard_name(c);
    result_.tls.chain = peer_chain(ssl);
    result_.tls.resumed = SSL_session_reused(ssl) != 0;
    if (enforce) {
      result_.tls.verify_status = smtp::VerifyStatus::ok;
    } else if (!t_.report_when_insecure) {
      result_.tls.verify_status = smtp::VerifyStatus::not_verified_insecure;
      // A resumed session had no certificate to check: its first handshake's record says.
      if (t_.check_when_insecure && !result_.tls.resumed)
        result_.tls.verify_reason = would_have_said();
    } else if (result_.verify_problems.empty()) {
      result_.tls.verify_status = smtp::VerifyStatus::ok;
      result_.tls.verify_reason = "checked, though --insecure would have gone on";
    } else {
      result_.tls.verify_status = smtp::VerifyStatus::failed;
      result_.tls.verify_reason = "FAILED, gone on because of --insecure";
    }
    const std::string caveat = smtp::cipher_caveat(result_.tls.cipher);
    note(EventKind::tls, result_.tls.tls_version + " " + result_.tls.cipher +
                             (caveat.empty() ? "" : " (" + caveat + ")") +
                             (t_.insecure ? ", certificate NOT verified (--insecure)"
                                          : ", certificate verified for " + t_.tls_name) +
                             (result_.tls.resumed ? " (session resumed)" : "") +
                             client_certificate_note());
  }

  Link& link_;
  const UpstreamTarget& t_;
  std::vector<smtp::RecordedEvent>& events_;
  std::string target_label_;  // "HOST:PORT" as given
  // What failures name the server by: target_label_, or once connected to one of a name's
  // several addresses, that address and what the others did (name_the_address).
  std::string label_;
  std::string step_;
  std::chrono::steady_clock::time_point setup_ends_;  // t_.timeout after run() began
  bool timed_out_ = false;
  bool connected_ = false;  // the greeting is due
  bool received_ = false;   // any byte from the server
  bool quit_due_ = false;   // refused by a reply: the session ends with QUIT
  // The connect step's race while it runs: the deadline ends it.
  AddressRace* race_ = nullptr;
  Phase phase_ = Phase::plain;
  smtp::ReplyParser parser_;
  UpstreamSetup result_;
  // The 220 as read, until the set-up's end says whether the session relays it.
  std::optional<Event> unrelayed_greeting_;
  std::size_t greeting_at_ = 0;
  // A member, not a coroutine local: GCC 12 then stops warning (falsely) that the coroutine
  // frame is freed with a mismatched operator delete.
  std::array<char, 4096> read_buffer_{};
};
}  // namespace

std::optional<TlsMode> parse_tls_mode(std::string_view text) {
  return smtp::parse_name<TlsMode>(text);
}

TlsMode default_tls_mode(std::uint16_t port) {
  return port == 465 ? TlsMode::implicit : TlsMode::starttls;
}

std::string default_ehlo_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::string implicit_tls_hint(const std::string& host_port) {
  return "if " + host_port +
         " expects TLS from the first byte (as port 465 does), use --tls implicit";
}

std::string ehlo_refusal_advice(const smtp::Reply& reply) {
  if (reply.code >= 400 && reply.code < 500)
    return "try again later: the server turns sessions away for now";
  if (reply.code == 500 || reply.code == 502)
    return "the server does not speak ESMTP, so it cannot offer STARTTLS";
  return "try --ehlo-name";
}

std::string UpstreamSetup::failure_reason() const {
  if (!record_reason.empty()) return record_reason;
  std::string reason = failure;
  if (auto pos = reason.find("mailtap: "); pos != std::string::npos) reason.erase(0, pos + 9);
  return reason;
}

asio::awaitable<UpstreamSetup> establish_upstream(Link& link, const UpstreamTarget& target,
                                                  std::vector<smtp::RecordedEvent>& events) {
  // On the heap rather than in the coroutine frame (GCC 12's false mismatched-delete warning).
  auto setup = std::make_unique<Setup>(link, target, events);
  co_return co_await setup->run();
}

}  // namespace mailtap::net
