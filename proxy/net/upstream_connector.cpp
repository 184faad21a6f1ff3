#include "proxy/net/upstream_connector.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/verify_context.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <memory>

#include "proxy/common/duration.hpp"
#include "proxy/net/certificate_facts.hpp"
#include "proxy/net/deadline.hpp"
#include "proxy/smtp/capabilities.hpp"

namespace mailtap::net {

namespace {
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
using smtp::Direction;
using smtp::Event;
using smtp::EventKind;
using smtp::Phase;

std::string one_line(const smtp::Reply& r) {
  std::string s = std::to_string(r.code);
  if (!r.lines.empty() && !r.lines.front().empty()) s += " " + r.lines.front();
  return s;
}

bool is_ip_literal(const std::string& s) {
  std::error_code ec;
  asio::ip::make_address(s, ec);
  return !ec;
}

class Setup {
 public:
  Setup(Link& link, const UpstreamTarget& t, std::vector<smtp::RecordedEvent>& events)
      : link_(link), t_(t), events_(events) {
    label_ = t.host + ":" + std::to_string(t.port);
  }

  asio::awaitable<UpstreamSetup> run() {
    auto ex = co_await asio::this_coro::executor;
    Deadline deadline(ex, t_.timeout, [this] {
      timed_out_ = true;
      link_.close();
    });
    co_await steps();
    deadline.cancel();
    if (!result_.ok && timed_out_) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t_.timeout);
      fail("4.4.1 mailtap: " + label_ + " timed out after " + format_setting_duration(ms) + " " +
               step_ + " (see " + t_.timeout_flag + ")",
           smtp::Outcome::timeout);
    }
    co_return std::move(result_);
  }

 private:
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
    events_.push_back(smtp::mailtap_event(std::move(e)));
  }

  asio::awaitable<std::optional<smtp::Reply>> read_reply() {
    for (;;) {
      if (auto r = parser_.next()) co_return r;
      if (parser_.error() != smtp::ReplyParser::Error::none) {
        fail("4.5.0 mailtap: " + std::string(parser_.error_text()) + " " + step_,
             smtp::Outcome::error);
        co_return std::nullopt;
      }
      auto [ec, n] = co_await link_.read_some(asio::buffer(read_buffer_));
      if (ec) {
        if (!timed_out_)
          fail("4.4.2 mailtap: " + label_ + " closed the connection " + step_ + " (" +
                   ec.message() + ")",
               smtp::Outcome::error);
        co_return std::nullopt;
      }
      parser_.feed(std::string_view(read_buffer_.data(), n));
    }
  }

  asio::awaitable<bool> send(std::string line, std::string verb) {
    record(Direction::mailtap_to_upstream, EventKind::command, line, std::move(verb));
    auto [ec, n] = co_await link_.write(asio::buffer(line));
    if (ec && !timed_out_)
      fail("4.4.2 mailtap: " + label_ + " closed the connection " + step_ + " (" + ec.message() +
               ")",
           smtp::Outcome::error);
    co_return !ec;
  }

  asio::awaitable<void> steps() {
    auto ex = co_await asio::this_coro::executor;
    step_ = "while resolving " + t_.host;
    asio::ip::tcp::resolver resolver(ex);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(t_.host, std::to_string(t_.port), use_tuple);
    if (rec) {
      if (!timed_out_)
        fail("4.4.3 mailtap: cannot resolve " + t_.host + ": " + rec.message(),
             smtp::Outcome::error);
      co_return;
    }
    step_ = "while connecting";
    auto [cec, endpoint] = co_await asio::async_connect(link_.socket(), endpoints, use_tuple);
    if (cec) {
      if (!timed_out_)
        fail("4.4.1 mailtap: cannot connect to " + label_ + ": " + cec.message(),
             smtp::Outcome::error);
      co_return;
    }
    std::error_code ignored;
    link_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    result_.tls.resolved_address =
        endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    if (endpoint.address().is_v6())
      result_.tls.resolved_address =
          "[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port());
    note(EventKind::note, "connected to " + label_ + " (" + result_.tls.resolved_address + ")");

    phase_ = t_.mode == TlsMode::none ? Phase::plain : Phase::pre_tls;
    if (t_.mode == TlsMode::implicit) {
      if (!co_await handshake()) co_return;
    }

    step_ = "waiting for the greeting";
    auto greeting = co_await read_reply();
    if (!greeting) co_return;
    if (greeting->code != 220) {
      record(Direction::upstream_to_mailtap, EventKind::greeting, greeting->raw, "", &*greeting);
      fail("4.3.2 mailtap: " + label_ + " refused the session: " + one_line(*greeting));
      co_return;
    }
    result_.greeting = greeting;
    result_.greeting_phase = phase_;

    if (t_.mode == TlsMode::starttls) {
      step_ = "waiting for the reply to EHLO";
      if (!co_await send("EHLO " + t_.ehlo_name + "\r\n", "EHLO")) co_return;
      auto ehlo = co_await read_reply();
      if (!ehlo) co_return;
      record(Direction::upstream_to_mailtap, EventKind::reply, ehlo->raw, "EHLO", &*ehlo);
      if (ehlo->code != 250) {
        fail("4.7.0 mailtap: " + label_ + " refused EHLO " + t_.ehlo_name + ": " + one_line(*ehlo) +
             " (try --ehlo-name)");
        co_return;
      }
      if (!smtp::parse_capabilities(*ehlo).starttls) {
        fail("4.7.0 mailtap: " + label_ +
             " does not offer STARTTLS; refusing to continue in plain text (--tls none relays "
             "unencrypted, --tls implicit for port 465)");
        co_return;
      }
      step_ = "waiting for the reply to STARTTLS";
      if (!co_await send("STARTTLS\r\n", "STARTTLS")) co_return;
      auto go = co_await read_reply();
      if (!go) co_return;
      record(Direction::upstream_to_mailtap, EventKind::reply, go->raw, "STARTTLS", &*go);
      if (go->code != 220) {
        fail("4.7.0 mailtap: " + label_ + " refused STARTTLS: " + one_line(*go));
        co_return;
      }
      if (parser_.buffered() > 0) {
        // Plain-text bytes after "220" would be read as if they came over TLS (CVE-2011-0411).
        note(EventKind::error,
             std::to_string(parser_.buffered()) +
                 " octets followed the 220 reply to STARTTLS before the handshake");
        fail("4.7.0 mailtap: " + label_ + " sent " + std::to_string(parser_.buffered()) +
             " unexpected octets after its 220 reply to STARTTLS: possible STARTTLS command "
             "injection; closing");
        co_return;
      }
      if (!co_await handshake()) co_return;
    }
    result_.ok = true;
  }

  asio::awaitable<bool> handshake() {
    step_ = "during the TLS handshake";
    TlsStream& tls = link_.start_tls();
    SSL* ssl = tls.native_handle();
    const std::string& name = t_.tls_name;
    result_.tls.sni = is_ip_literal(name) ? "" : name;
    if (!result_.tls.sni.empty()) SSL_set_tlsext_host_name(ssl, name.c_str());
    auto failures = std::make_shared<std::vector<VerifyFailure>>();
    const bool enforce = !t_.insecure;
    if (enforce || t_.report_when_insecure) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (is_ip_literal(name))
        X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
      else
        X509_VERIFY_PARAM_set1_host(param, name.data(), name.size());
      result_.tls.verified_name = name;
      tls.set_verify([failures, enforce](bool preverified, X509_STORE_CTX* store) {
        // Enforcing, the first failure ends the handshake; reporting, every one is kept.
        if (!preverified && (!enforce || failures->empty()))
          failures->push_back(capture_verify_failure(store));
        return preverified || !enforce;
      });
    }
    // Resume only where certificates were checked the same way (the cache is per context).
    if (t_.session_cache != nullptr)
      t_.session_cache->prepare(ssl, t_.host + ":" + std::to_string(t_.port) + " " + name);
    const std::error_code ec = co_await tls.handshake();
    for (const VerifyFailure& f : *failures) {
      VerifyProblem problem{f.error, explain_verify_failure(f, name, t_.trust_source)};
      auto& seen = result_.verify_problems;
      if (std::none_of(seen.begin(), seen.end(),
                       [&](const VerifyProblem& p) { return p.reason == problem.reason; }))
        seen.push_back(std::move(problem));
    }
    if (ec) {
      if (timed_out_) co_return false;
      std::string reason;
      if (enforce && !result_.verify_problems.empty()) {
        reason = result_.verify_problems.front().reason;
        result_.tls.verify_status = smtp::VerifyStatus::failed;
        result_.tls.verify_reason = reason;
      } else {
        reason = "TLS handshake with " + label_ + " failed: " + ec.message();
      }
      note(EventKind::tls, reason);
      fail("4.7.0 mailtap: " + reason);
      co_return false;
    }
    link_.set_tls_active();
    phase_ = Phase::tls;
    result_.tls.tls_version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl))
      result_.tls.cipher = SSL_CIPHER_standard_name(c);
    result_.tls.chain = peer_chain(ssl);
    result_.tls.resumed = SSL_session_reused(ssl) != 0;
    if (enforce) {
      result_.tls.verify_status = smtp::VerifyStatus::ok;
    } else if (!t_.report_when_insecure) {
      result_.tls.verify_status = smtp::VerifyStatus::not_verified_insecure;
    } else if (result_.verify_problems.empty()) {
      result_.tls.verify_status = smtp::VerifyStatus::ok;
      result_.tls.verify_reason = "checked, though --insecure would have gone on";
    } else {
      result_.tls.verify_status = smtp::VerifyStatus::failed;
      result_.tls.verify_reason = "FAILED, gone on because of --insecure";
    }
    note(EventKind::tls, result_.tls.tls_version + " " + result_.tls.cipher +
                             (t_.insecure ? ", certificate NOT verified (--insecure)"
                                          : ", certificate verified for " + name) +
                             (result_.tls.resumed ? " (session resumed)" : ""));
    co_return true;
  }

  Link& link_;
  const UpstreamTarget& t_;
  std::vector<smtp::RecordedEvent>& events_;
  std::string label_;
  std::string step_;
  bool timed_out_ = false;
  Phase phase_ = Phase::plain;
  smtp::ReplyParser parser_;
  UpstreamSetup result_;
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

std::string UpstreamSetup::failure_reason() const {
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
