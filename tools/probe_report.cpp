#include "tools/probe_report.hpp"

#include <openssl/x509.h>

#include <cstdio>

#include "proxy/net/certificate_facts.hpp"
#include "proxy/net/endpoint.hpp"
#include "proxy/smtp/capabilities.hpp"
#include "proxy/smtp/cipher_caveat.hpp"
#include "proxy/smtp/command.hpp"
#include "tools/json_writer.hpp"
#include "tools/reply_codes.hpp"
#include "tools/terminal_text.hpp"
#include "tools/time_format.hpp"

namespace mailtap::tools {

namespace {

using smtp::Direction;
using smtp::EventKind;

std::optional<smtp::Reply> parse_reply(std::string_view bytes) {
  smtp::ReplyParser parser;
  parser.feed(bytes);
  return parser.next();
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

std::string host_port(const ProbeReport& r) {
  return net::host_port_label(r.host, r.port);
}

std::string first_line(const smtp::Reply& reply) {
  std::string out = std::to_string(reply.code);
  if (!reply.lines.empty() && !reply.lines.front().empty()) out += " " + reply.lines.front();
  return escape_line(out);
}

// Extension keywords and their parameters, from the lines after the first.
std::vector<std::string> extensions(const smtp::Reply& ehlo) {
  std::vector<std::string> out;
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) out.push_back(ehlo.lines[i]);
  return out;
}

bool offers(const smtp::Reply& ehlo, std::string_view keyword) {
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    std::string_view line = ehlo.lines[i];
    if (smtp::iequals(line.substr(0, line.find(' ')), keyword)) return true;
  }
  return false;
}

// "offers PIPELINING, CHUNKING, 8BITMIME; not SMTPUTF8" over the extensions a client notices.
std::string extension_line(const smtp::Reply& ehlo) {
  static constexpr std::string_view kNoticed[] = {
      "PIPELINING", "CHUNKING", "SMTPUTF8", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES", "REQUIRETLS"};
  std::string yes, no;
  for (std::string_view k : kNoticed) {
    std::string& list = offers(ehlo, k) ? yes : no;
    if (k == "REQUIRETLS" && &list == &no) continue;  // rare; absence says nothing
    list += (list.empty() ? "" : ", ") + std::string(k);
  }
  std::string out = "offers " + (yes.empty() ? std::string("none of the usual extensions") : yes);
  if (!no.empty()) out += "; not " + no;
  return out;
}

// A SIZE limit as people read it: "35.9 MB", "512.0 kB", "1000 octets" (never "0.0 MB").
std::string megabytes(std::uint64_t octets) {
  char buf[32];
  if (octets >= 1000000)
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(octets) / 1e6);
  else if (octets >= 10000)
    std::snprintf(buf, sizeof buf, "%.1f kB", static_cast<double>(octets) / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%llu octets", static_cast<unsigned long long>(octets));
  return buf;
}

// Whole days from `now` to the certificate's notAfter; nullopt if unreadable. Counted in
// seconds: a notAfter before 1677 is the clock's first instant, and its distance from now in
// nanoseconds overflows (it wrapped round into centuries of validity).
std::optional<long long> days_left(const storage::Certificate& c, storage::Clock::time_point now) {
  const auto until = parse_time_spec(c.not_after, now);
  if (!until) return std::nullopt;
  using std::chrono::seconds;
  const seconds left = std::chrono::time_point_cast<seconds>(*until).time_since_epoch() -
                       std::chrono::time_point_cast<seconds>(now).time_since_epoch();
  return left.count() / 86400;
}

const smtp::Reply* final_ehlo(const ProbeReport& r) {
  if (r.ehlo_tls) return &*r.ehlo_tls;
  if (r.mode == net::TlsMode::none && r.ehlo_plain) return &*r.ehlo_plain;
  return nullptr;
}

// The proxy command for this server: `full` adds the trust options the probe was given.
std::string proxy_command(const ProbeReport& r, bool full) {
  std::string cmd = "mailtap proxy --upstream " + host_port(r);
  if (r.mode != net::default_tls_mode(r.port))
    cmd += " --tls " + std::string(net::to_string(r.mode));
  if (full && r.tls_name != r.host) cmd += " --tls-name " + r.tls_name;
  if (full && !r.ca_file.empty()) cmd += " --ca-file " + r.ca_file;
  if (full && !r.client_cert.empty()) cmd += " --client-cert " + r.client_cert;
  if (full && !r.client_key.empty()) cmd += " --client-key " + r.client_key;
  return cmd;
}

void reply_block(std::string& out, const char* label, const smtp::Reply& reply, const Style& st) {
  out += st.bold(label) + "\n";
  std::string_view raw = reply.raw;
  while (!raw.empty()) {
    std::size_t eol = raw.find('\n');
    std::string_view line = raw.substr(0, eol == std::string_view::npos ? raw.size() : eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string text = "  " + escape_line(line);
    out += (reply.code >= 400 ? st.red(text) : text) + "\n";
    if (eol == std::string_view::npos) break;
    raw.remove_prefix(eol + 1);
  }
}

void write_reply(JsonWriter& w, const char* key, const std::optional<smtp::Reply>& reply) {
  w.key(key);
  if (!reply) {
    w.null();
    return;
  }
  w.begin_object();
  w.key("code").value(reply->code);
  w.key("enhanced_status").value(reply->enhanced_status);
  write_bytes_array_member(w, "lines", reply->lines);
  w.end_object();
}

}  // namespace

int ProbeReport::exit_status() const {
  switch (failure_kind) {
    case ProbeFailure::none:
      return 0;
    case ProbeFailure::connection:
      return 1;
    case ProbeFailure::no_tls:
      return 3;
    case ProbeFailure::certificate:
      return 4;
  }
  return 1;
}

namespace {

// Where a failed setup stopped: connecting, upgrading to TLS, or trusting the certificate.
ProbeFailure failure_kind(const ProbeReport& r, const net::UpstreamSetup& setup) {
  const bool starttls = r.mode == net::TlsMode::starttls;
  if (setup.outcome == storage::Outcome::timeout) return ProbeFailure::connection;
  if (!r.verify_problems.empty() && !r.insecure) return ProbeFailure::certificate;
  if (r.greeting && r.greeting->code != 220) return ProbeFailure::connection;
  if (starttls && r.ehlo_plain && r.ehlo_plain->code != 250) return ProbeFailure::connection;
  if (starttls && r.ehlo_plain && !r.tls) return ProbeFailure::no_tls;
  if (r.mode == net::TlsMode::implicit && !r.address.empty() && !r.tls) return ProbeFailure::no_tls;
  return ProbeFailure::connection;
}

}  // namespace

void take_setup(ProbeReport& r, const net::UpstreamSetup& setup,
                const std::vector<smtp::RecordedEvent>& events) {
  r.address = setup.tls.resolved_address;
  r.addresses_failed = setup.addresses_failed;
  r.addresses_untried = setup.addresses_untried;
  r.greeting = setup.greeting;
  for (const smtp::RecordedEvent& recorded : events) {
    const smtp::Event& e = *recorded;
    if (e.direction == Direction::upstream_to_mailtap) {
      auto reply = parse_reply(e.bytes);
      if (!reply) continue;
      if (e.kind == EventKind::greeting)
        r.greeting = std::move(reply);
      else if (e.verb == "EHLO")
        r.ehlo_plain = std::move(reply);
      else if (e.verb == "STARTTLS")
        r.starttls = std::move(reply);
      else if (e.verb == "QUIT")
        r.quit = std::move(reply);
    } else if (e.direction == Direction::mailtap_note) {
      r.timeline.push_back(e.note);
    }
  }
  r.tls = !setup.tls.tls_version.empty();
  r.tls_alert = setup.handshake_alert;
  r.tls_version = setup.tls.tls_version;
  r.cipher = setup.tls.cipher;
  r.sni = setup.tls.sni;
  r.verify_result = smtp::verification_text(setup.tls.verify_status, setup.tls.verify_reason);
  r.chain.clear();
  for (const auto& c : setup.tls.chain) r.chain.push_back({c, net::subject_alt_names(c.der)});
  r.verify_problems = setup.verify_problems;
  r.client_cert_subject = setup.tls.client_cert_subject;
  r.client_cert_sha256 = setup.tls.client_cert_sha256;
  r.certificate_request_note = setup.certificate_request_note;

  if (setup.ok) {
    if (!r.verify_problems.empty()) {
      r.failure_kind = ProbeFailure::certificate;
      r.failure = "the certificate is NOT trusted (shown only because of --insecure)";
    }
    return;
  }
  r.failure = setup.failure_reason();
  r.failure_kind = failure_kind(r, setup);
}

namespace {

// Lines of the summary, appended in order.
using Summary = std::vector<std::string>;

// The connection failed before TLS: why, and the replies that refused it.
void explain_connection_failure(const ProbeReport& r, Summary& s) {
  s.push_back(r.failure);
  // The connector's timeout says it already when no byte came at all, and leaves it out when
  // another address of the name may greet (this one may be the broken one).
  if (!r.greeting && !r.address.empty() && r.mode == net::TlsMode::starttls &&
      r.addresses_untried.empty() && contains(r.failure, "timed out") &&
      !contains(r.failure, "use --tls implicit"))
    s.push_back("no greeting: " + net::implicit_tls_hint(host_port(r)));
  for (const smtp::Reply* reply :
       {r.greeting ? &*r.greeting : nullptr, r.ehlo_plain ? &*r.ehlo_plain : nullptr,
        r.ehlo_tls ? &*r.ehlo_tls : nullptr}) {
    if (reply == nullptr || reply->code < 400) continue;
    if (r.greeting && reply == &*r.greeting && reply->code >= 500) {
      // The code's usual advice (relaying, AUTH) is for replies to commands; nothing was sent.
      s.push_back(std::to_string(reply->code) +
                  ": the server refuses this connection before any command (RFC 5321 section 3.1)");
      s.push_back(
          "nothing mailtap sent caused it: most likely your address is on a block list "
          "or not allowed here, or this is not the server or port you meant");
      continue;
    }
    const auto advice = advise_reply(reply->code, reply->enhanced_status, reply->raw);
    s.push_back(std::to_string(reply->code) + ": " + advice.meaning);
    if (!advice.fix.empty()) s.push_back(advice.fix);
  }
}

// TLS could not be established: STARTTLS missing or refused, injection, or a handshake failure.
void explain_no_tls(const ProbeReport& r, Summary& s) {
  const std::string hp = host_port(r);
  const bool starttls = r.mode == net::TlsMode::starttls;
  if (starttls && r.ehlo_plain && !smtp::parse_capabilities(*r.ehlo_plain).starttls) {
    s.push_back("server does not offer STARTTLS: refusing to go on in plain text");
    s.push_back("if " + hp +
                " speaks TLS from the first byte, use --tls implicit; mailtap proxy --tls none "
                "would relay in plain text, passwords included");
  } else if (starttls && r.starttls && r.starttls->code / 100 == 2 && r.starttls->code != 220) {
    // No refusal: it answered as if it had agreed, but not with the 220 that starts TLS.
    s.push_back("server answered STARTTLS with " + first_line(*r.starttls) +
                " instead of 220: it did not agree to start TLS");
    s.push_back(
        "the server (or a firewall between that inspects SMTP) is broken: ask its "
        "administrator; mailtap does not go on in plain text");
  } else if (starttls && r.starttls && r.starttls->code != 220) {
    const auto advice =
        advise_reply(r.starttls->code, r.starttls->enhanced_status, r.starttls->raw);
    s.push_back("server refused STARTTLS: " + first_line(*r.starttls) + " (" + advice.meaning +
                ")");
    if (!advice.fix.empty()) s.push_back(advice.fix);
  } else if (contains(r.failure, "injection")) {
    s.push_back(r.failure);
    s.push_back(
        "bytes that arrive in clear after the 220 to STARTTLS would be read as if they came "
        "over TLS (CVE-2011-0411): do not use this path");
  } else {
    s.push_back(r.failure);
    // A TLS alert proves the port speaks TLS from the first byte; a close, a timeout or plain
    // text may be a port that waits for a plain SMTP client.
    if (r.mode == net::TlsMode::implicit && !r.tls_alert)
      s.push_back("if " + hp + " speaks plain SMTP first (as port 587 does), use --tls starttls");
  }
}

void explain_certificate_failure(const ProbeReport& r, Summary& s) {
  if (r.insecure)
    s.push_back("CERTIFICATE NOT TRUSTED: mailtap proxy would refuse " + host_port(r) +
                " (--insecure only for tests: anyone on the path could read and change the "
                "session)");
  for (const auto& p : r.verify_problems) {
    if (p.x509_error == X509_V_ERR_HOSTNAME_MISMATCH ||
        p.x509_error == X509_V_ERR_IP_ADDRESS_MISMATCH)
      s.push_back("the certificate does not match " + r.tls_name);
    s.push_back(p.reason);  // worded where the proxy's 421 is, so that both say the same
  }
  if (!r.insecure) s.push_back("--insecure shows the chain anyway (and says so loudly)");
}

void warn_of_expiry(const ProbeReport& r, storage::Clock::time_point now, Summary& s) {
  if (!r.tls || r.chain.empty()) return;
  const auto& leaf = r.chain.front().certificate;
  if (auto days = days_left(leaf, now)) {
    // An expired certificate is already a verification problem above.
    if (*days >= 0 && *days <= 30)
      s.push_back("certificate expires in " + std::to_string(*days) + " day" +
                  (*days == 1 ? "" : "s") + " (" + leaf.not_after + ")");
  }
}

// --tls none, yet the server offers STARTTLS: the plain-text link is a choice, not a need.
bool offers_starttls_in_clear(const ProbeReport& r) {
  return r.mode == net::TlsMode::none && r.ehlo_plain && r.ehlo_plain->code == 250 &&
         smtp::parse_capabilities(*r.ehlo_plain).starttls;
}

// How the link is protected.
void describe_protection(const ProbeReport& r, Summary& s) {
  const bool implicit = r.mode == net::TlsMode::implicit;
  if (r.mode == net::TlsMode::none) {
    s.push_back(
        "plain text only (--tls none): everything, passwords included, travels unencrypted");
    if (offers_starttls_in_clear(r))
      s.push_back(smtp::starttls_offered_under_tls_none() + " (`mailtap probe " + host_port(r) +
                  "` without it checks its certificate)");
  } else if (r.tls) {
    std::string how = implicit ? "implicit TLS on port " + std::to_string(r.port)
                               : "STARTTLS on port " + std::to_string(r.port);
    how += " (" + r.tls_version + ")";
    if (r.failure_kind == ProbeFailure::none) how += ", certificate verified for " + r.tls_name;
    s.push_back(how);
    if (implicit)
      s.push_back(r.port == 465
                      ? "implicit TLS on 465: mailtap proxy uses it by default there"
                      : "implicit TLS on " + std::to_string(r.port) + ": use --tls implicit");
  }
}

// Which AUTH mechanisms the client will be offered, and whether before TLS too.
void describe_auth(const ProbeReport& r, const smtp::Reply& ehlo, Summary& s) {
  const bool starttls = r.mode == net::TlsMode::starttls;
  const std::string auth_after = smtp::parse_capabilities(ehlo).auth;
  const std::string auth_before =
      starttls && r.ehlo_plain ? smtp::parse_capabilities(*r.ehlo_plain).auth : "";
  if (starttls && !auth_after.empty() && auth_before.empty())
    s.push_back("AUTH is offered only after TLS (" + escape_line(auth_after) + "): use `" +
                proxy_command(r, false) + "`, which upgrades before your client's EHLO");
  else if (!auth_after.empty())
    s.push_back("AUTH mechanisms: " + escape_line(auth_after));
  if (!auth_before.empty())
    s.push_back("the server offers AUTH (" + escape_line(auth_before) +
                ") before TLS too: never log in before STARTTLS (mailtap proxy always "
                "upgrades first)");
  if (auth_after.empty() && r.mode != net::TlsMode::none)
    s.push_back(
        "no AUTH after TLS: this server takes no logins here (an MX, or relaying by address "
        "only)");
}

// The server's SIZE as mailtap proxy reads it (parse_capabilities, whose BDAT guard it sets):
// one without a number mailtap can read is said so, not taken for no limit.
void describe_size(const smtp::Reply& ehlo, Summary& s) {
  const smtp::Capabilities caps = smtp::parse_capabilities(ehlo);
  if (!caps.size_advertised) return;
  if (caps.size_unreadable)
    s.push_back(
        "the server's SIZE has no number mailtap can read (RFC 1870: SIZE and the limit in "
        "octets): its limit is unknown, so mailtap proxy forwards no BDAT chunk to it (DATA "
        "goes)");
  else if (caps.size == 0)
    s.push_back("SIZE with no fixed limit (RFC 1870: no number, or 0)");
  else
    s.push_back("messages up to " + megabytes(caps.size) + " (SIZE " + std::to_string(caps.size) +
                ")");
}

// What the client will be offered.
void describe_offer(const ProbeReport& r, Summary& s) {
  const smtp::Reply* ehlo = final_ehlo(r);
  if (ehlo != nullptr && ehlo->code == 250) {
    describe_auth(r, *ehlo, s);
    s.push_back(extension_line(*ehlo));
    describe_size(*ehlo, s);
  } else if (ehlo != nullptr) {
    s.push_back("EHLO after TLS refused: " + first_line(*ehlo));
  }
}

}  // namespace

std::vector<std::string> summarise(const ProbeReport& r, storage::Clock::time_point now) {
  Summary s;
  // Why it stopped, and what to try.
  if (r.failure_kind == ProbeFailure::connection)
    explain_connection_failure(r, s);
  else if (r.failure_kind == ProbeFailure::no_tls)
    explain_no_tls(r, s);
  else if (r.failure_kind == ProbeFailure::certificate)
    explain_certificate_failure(r, s);
  warn_of_expiry(r, now, s);
  for (const std::string& failed : r.addresses_failed)
    s.push_back("another address of " + r.host + " failed: " + failed +
                " (a client that tries it first waits or fails)");
  if (r.failure_kind == ProbeFailure::connection || r.failure_kind == ProbeFailure::no_tls)
    return s;
  describe_protection(r, s);
  describe_offer(r, s);
  // A plain-text proxy is not advised where TLS is on offer: the probe to run first is.
  if (r.failure_kind == ProbeFailure::none && !offers_starttls_in_clear(r))
    s.push_back("next: " + proxy_command(r, true) + ", then: telnet localhost 2525");
  return s;
}

namespace {

void render_chain(const ProbeReport& r, storage::Clock::time_point now, std::string& out) {
  for (std::size_t i = 0; i < r.chain.size(); ++i) {
    const auto& c = r.chain[i].certificate;
    out += "  [" + std::to_string(i) + "] " + escape_line(c.subject) + "\n";
    out += "      issuer  " + escape_line(c.issuer) + "\n";
    std::string validity = "      valid   " + c.not_before + " to " + c.not_after;
    if (auto days = days_left(c, now))
      validity += *days < 0 ? " (EXPIRED)" : " (" + std::to_string(*days) + " days left)";
    out += validity + "\n";
    if (!r.chain[i].names.empty()) {
      std::string names;
      for (const auto& n : r.chain[i].names) names += (names.empty() ? "" : ", ") + n;
      out += "      names   " + escape_line(names) + "\n";
    }
    out += "      sha256  " + c.sha256_hex + "\n";
  }
}

// The TLS section: version, verification verdict and the chain.
void render_tls(const ProbeReport& r, const Style& st, storage::Clock::time_point now,
                std::string& out) {
  out += st.bold("TLS") + "\n";
  const std::string caveat = smtp::cipher_caveat(r.cipher);
  out += "  " + r.tls_version + " " + r.cipher + (caveat.empty() ? "" : " (" + caveat + ")") +
         (r.sni.empty() ? "" : ", SNI " + r.sni) + "\n";
  std::string verdict = "  verification: " + r.verify_result;
  if (r.verify_problems.empty() && !r.insecure)
    verdict += " (for " + r.tls_name + ", trusting " + r.trust_source + ")";
  out += (r.verify_problems.empty() && !r.insecure ? st.green(verdict) : st.red(verdict)) + "\n";
  for (const auto& p : r.verify_problems) out += st.red("  ! " + escape_line(p.reason)) + "\n";
  if (!r.client_cert_subject.empty())
    out += "  client certificate: " + escape_line(r.client_cert_subject) + " presented (sha256 " +
           r.client_cert_sha256 + ")\n";
  else if (!r.certificate_request_note.empty())
    out += st.red("  client certificate: asked for, none presented (--client-cert)") + "\n";
  else if (!r.client_cert.empty())
    out += "  client certificate: not asked for\n";
  out += st.bold("Certificate chain") + " (as the server sent it, leaf first)\n";
  render_chain(r, now, out);
}

void write_tls(JsonWriter& w, const ProbeReport& r, storage::Clock::time_point now) {
  w.begin_object();
  w.key("version").value(r.tls_version).key("cipher").value(r.cipher).key("sni").value(r.sni);
  w.key("verified").value(r.verify_problems.empty() && !r.insecure);
  w.key("insecure").value(r.insecure);
  w.key("verify_result").value(r.verify_result);
  w.key("client_certificate_requested").value(!r.certificate_request_note.empty());
  w.key("client_certificate");
  if (r.client_cert_subject.empty()) {
    w.null();
  } else {
    w.begin_object().key("file").value(r.client_cert);
    w.key("subject").value(r.client_cert_subject).key("sha256").value(r.client_cert_sha256);
    w.end_object();
  }
  w.key("chain").begin_array();
  for (const auto& pc : r.chain) {
    const auto& c = pc.certificate;
    w.begin_object();
    w.key("subject").value(c.subject).key("issuer").value(c.issuer);
    w.key("not_before").value(c.not_before).key("not_after").value(c.not_after);
    w.key("days_left");
    if (auto days = days_left(c, now))
      w.value(static_cast<std::int64_t>(*days));
    else
      w.null();
    w.key("names").begin_array();
    for (const auto& n : pc.names) w.value(n);
    w.end_array();
    w.key("sha256").value(c.sha256_hex);
    w.end_object();
  }
  w.end_array();
  w.end_object();
}

// The AUTH mechanisms of the last EHLO, one array element each.
void write_auth_mechanisms(JsonWriter& w, const ProbeReport& r) {
  w.key("auth_mechanisms").begin_array();
  if (const smtp::Reply* ehlo = final_ehlo(r)) {
    const std::string auth = smtp::parse_capabilities(*ehlo).auth;
    std::string_view mechs = auth;
    while (!mechs.empty()) {
      const auto space = mechs.find(' ');
      if (space != 0) w.value(mechs.substr(0, space));
      if (space == std::string_view::npos) break;
      mechs.remove_prefix(space + 1);
    }
  }
  w.end_array();
}

}  // namespace

std::string render_probe_text(const ProbeReport& r, const Style& st,
                              storage::Clock::time_point now) {
  std::string out;
  const char* how = r.mode == net::TlsMode::starttls   ? "STARTTLS"
                    : r.mode == net::TlsMode::implicit ? "implicit TLS"
                                                       : "plain text, --tls none";
  out += st.bold("mailtap probe " + host_port(r)) + " (" + how + ")\n";
  if (!r.address.empty()) out += "connected to " + r.address + "\n";
  for (const std::string& failed : r.addresses_failed) out += "  also tried " + failed + "\n";
  out += "\n";
  if (r.greeting) reply_block(out, "Greeting", *r.greeting, st);
  if (r.ehlo_plain)
    reply_block(out,
                r.mode == net::TlsMode::none ? "EHLO (plain text)" : "EHLO before TLS (in clear)",
                *r.ehlo_plain, st);
  if (r.starttls) reply_block(out, "STARTTLS", *r.starttls, st);

  if (r.tls) render_tls(r, st, now, out);
  if (r.ehlo_tls) reply_block(out, "EHLO after TLS", *r.ehlo_tls, st);
  if (r.quit) reply_block(out, "QUIT", *r.quit, st);

  out += "\n" + st.bold("Summary") + "\n";
  const auto lines = summarise(r, now);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string line = "  " + escape_line(lines[i]);
    // The first line says why a failed probe stopped.
    out += (i == 0 && r.failure_kind != ProbeFailure::none ? st.red(line) : line) + "\n";
  }
  return out;
}

std::string render_probe_json(const ProbeReport& r, storage::Clock::time_point now) {
  JsonWriter w;
  w.begin_object();
  w.key("host").value(r.host).key("port").value(static_cast<int>(r.port));
  w.key("tls_mode").value(net::to_string(r.mode));
  w.key("tls_name").value(r.tls_name);
  w.key("address").value(r.address);
  w.key("addresses_failed").begin_array();
  for (const std::string& failed : r.addresses_failed) w.value(failed);
  w.end_array();
  write_reply(w, "greeting", r.greeting);
  write_reply(w, "ehlo_before_tls", r.ehlo_plain);
  write_reply(w, "starttls", r.starttls);
  w.key("tls");
  if (r.tls)
    write_tls(w, r, now);
  else
    w.null();
  w.key("verify_problems").begin_array();
  for (const auto& p : r.verify_problems) w.value(p.reason);
  w.end_array();
  write_reply(w, "ehlo_after_tls", r.ehlo_tls);
  const smtp::Reply* ehlo = final_ehlo(r);
  write_bytes_array_member(w, "extensions",
                           ehlo != nullptr ? extensions(*ehlo) : std::vector<std::string>{});
  write_auth_mechanisms(w, r);
  write_reply(w, "quit", r.quit);
  w.key("summary").begin_array();
  for (const auto& line : summarise(r, now)) w.value(line);
  w.end_array();
  w.key("ok").value(r.failure_kind == ProbeFailure::none);
  w.key("failure");
  if (r.failure.empty())
    w.null();
  else
    w.value(r.failure);
  w.key("exit_status").value(r.exit_status());
  w.end_object();
  return w.take() + "\n";
}

}  // namespace mailtap::tools
