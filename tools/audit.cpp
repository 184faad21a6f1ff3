// `mailtap audit`: checks a database for damage (PRAGMA integrity_check) and for anything that
// should never be in it (credentials that escaped redaction), and summarises what deserves a
// look: bare-LF rewrites and smuggling-shaped DATA, failures by reply code and upstream, TLS
// versions, --insecure sessions and certificates near or past expiry.
// Exit status: 0 clean, 3 a leak or damage was found, 1 the audit could not run.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "proxy/session/log.hpp"
#include "proxy/smtp/base64.hpp"
#include "proxy/smtp/event.hpp"
#include "storage/reader.hpp"
#include "tools/commands.hpp"
#include "tools/credential_scan.hpp"
#include "tools/json_writer.hpp"
#include "tools/reply_codes.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

constexpr int kExitFound = 3;

struct AuditArgs {
  ToolOptions common;
  std::string password_env;
  int expiry_days = 30;
};

struct Leak {
  std::int64_t session = 0;
  std::string where;  // "event 7 bytes", "message 1 body", "sessions.outcome_reason"
  std::string what;
};

struct Smuggle {
  std::int64_t session = 0;
  std::string shapes;
};

struct Rewrite {
  std::int64_t session = 0;
  std::int64_t count = 0;
  std::string sample;
};

struct Failure {
  std::string upstream;
  int code = 0;
  std::string status;
  std::int64_t count = 0;
  std::int64_t sessions = 0;
};

struct TlsLine {
  std::string version, cipher;
  std::int64_t count = 0;
};

struct CertLine {
  std::string sha256, subject, not_after, state;  // state: "expired" | "expires soon"
  std::int64_t first_session = 0, sessions = 0;
};

struct Report {
  std::vector<std::string> integrity;  // "ok" alone when healthy
  std::vector<Leak> leaks;
  std::vector<Rewrite> rewrites;
  std::vector<Smuggle> smuggling;
  std::vector<Failure> failures;
  std::vector<std::pair<std::string, std::int64_t>> outcomes;
  std::vector<TlsLine> tls;
  std::vector<std::int64_t> insecure;
  std::vector<std::pair<std::int64_t, std::string>> verify_failures;
  std::vector<CertLine> certificates;
  std::int64_t sessions = 0;
  bool integrity_ok() const { return integrity.size() == 1 && integrity[0] == "ok"; }
  bool problems() const { return !integrity_ok() || !leaks.empty(); }
};

class Auditor {
 public:
  Auditor(storage::Reader& reader, CredentialScanOptions scan)
      : reader_(reader), scan_(std::move(scan)) {}

  bool run(Report& r, int expiry_days, std::string& error) {
    return integrity(r, error) && scan_events(r, error) && scan_messages(r, error) &&
           scan_sessions(r, error) && failures(r, error) && certificates(r, expiry_days, error);
  }

 private:
  void scan(Report& r, std::int64_t session, const std::string& where, std::string_view bytes) {
    for (auto& f : scan_for_credentials(bytes, scan_))
      r.leaks.push_back({session, where + " at offset " + std::to_string(f.offset), f.what});
  }

  bool integrity(Report& r, std::string& error) {
    if (!reader_.integrity_check(r.integrity, error)) return false;
    if (r.integrity.empty()) r.integrity.push_back("integrity_check returned nothing");
    return true;
  }

  bool scan_events(Report& r, std::string& error) {
    std::int64_t current = -1;
    std::string data;          // the client's DATA/BDAT bytes of the current session
    std::string login_prompt;  // "Username:"/"Password:" after a 334, until the client answers
    std::map<std::int64_t, Rewrite> rewrites;
    // Shapes mailtap neutralised as they arrived ("\n.\n at offset 12"), from its rewrite
    // notes; older recordings kept the raw shapes in their DATA bytes, scanned as well.
    std::vector<std::string> noted_shapes;
    auto flush = [&] {
      if (current < 0) return;
      std::set<std::string> distinct;
      for (const auto& s : find_smuggling_shapes(data)) distinct.insert(s.shape);
      std::string text;
      for (const auto& s : noted_shapes) text += (text.empty() ? "" : ", ") + s;
      for (const auto& s : distinct) text += (text.empty() ? "" : ", ") + s;
      if (!text.empty()) r.smuggling.push_back({current, text});
      data.clear();
      noted_shapes.clear();
      login_prompt.clear();
    };
    const bool ok = reader_.for_each_event(
        [&](std::int64_t session, const storage::EventRow& row) {
          if (session != current) {
            flush();
            current = session;
          }
          const smtp::Event& e = row.event;
          const std::string where = "event " + std::to_string(row.seq);
          scan(r, session, where + " bytes", e.bytes);
          scan(r, session, where + " note", e.note);

          using smtp::EventKind;
          const bool from_client = e.direction == smtp::Direction::client_to_upstream ||
                                   e.direction == smtp::Direction::client_to_mailtap;
          if (from_client && (e.kind == EventKind::data || e.kind == EventKind::bdat_chunk))
            data += e.bytes;
          if (e.kind == EventKind::rewrite &&
              e.note.rfind(smtp::smuggling_shape_note_prefix, 0) == 0) {
            const std::string shape = e.note.substr(smtp::smuggling_shape_note_prefix.size());
            noted_shapes.push_back(shape.substr(0, shape.find(" of the message")));
          } else if (e.kind == EventKind::rewrite) {
            auto& rw = rewrites[session];
            rw.session = session;
            if (rw.count++ == 0) rw.sample = e.note;
          }
          // AUTH LOGIN: the answer to a "334 UGFzc3dvcmQ6" (Password:) must be redacted.
          if (e.reply_code == 334 && !from_client) {
            std::string line = e.bytes.substr(0, e.bytes.find_first_of("\r\n"));
            std::string decoded;
            if (line.size() > 4) {
              if (auto d = smtp::base64_decode(line.substr(4))) decoded = *d;
            }
            login_prompt = decoded.empty() ? e.note : decoded;
          } else if (from_client && e.kind == EventKind::auth) {
            if (!e.redacted && (login_prompt == "Password:" || login_prompt == "password:")) {
              const std::string line = e.bytes.substr(0, e.bytes.find_first_of("\r\n"));
              if (looks_like_base64_text(line))
                r.leaks.push_back({session, where + " bytes",
                                   "AUTH LOGIN password response recorded without redaction"});
            }
            login_prompt.clear();
          } else if (from_client) {
            login_prompt.clear();
          }
        },
        error);
    if (!ok) return false;
    flush();
    for (auto& [id, rw] : rewrites) r.rewrites.push_back(rw);
    return true;
  }

  bool scan_messages(Report& r, std::string& error) {
    const bool ok = reader_.for_each_message(
        [&](std::int64_t session, const storage::MessageRow& m) {
          const std::string where = "message " + std::to_string(m.seq);
          scan(r, session, where + " mail_from", m.message.mail_from);
          scan(r, session, where + " body", m.message.body);
          scan(r, session, where + " final_reply", m.message.final_reply);
        },
        error);
    if (!ok) return false;
    return reader_.for_each_recipient(
        [&](const storage::RecordedRecipient& rc) {
          const std::string where = "message " + std::to_string(rc.message_seq) + " recipient " +
                                    std::to_string(rc.position);
          scan(r, rc.session_id, where + " command", rc.recipient.command);
          scan(r, rc.session_id, where + " reply", rc.recipient.reply);
        },
        error);
  }

  // Every free-text column of every session: scanned for credentials; and which sessions ran
  // with --insecure or had their certificate refused.
  bool scan_sessions(Report& r, std::string& error) {
    storage::SessionFilter all;
    all.newest_first = false;
    std::vector<storage::SessionRow> sessions;
    if (!reader_.list_sessions(all, sessions, error)) return false;
    std::sort(sessions.begin(), sessions.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    for (const storage::SessionRow& s : sessions) {
      ++r.sessions;
      const std::pair<const char*, const std::string*> texts[] = {
          {"client_address", &s.client_address}, {"listen_address", &s.listen_address},
          {"upstream_host", &s.upstream_host},   {"resolved_address", &s.resolved_address},
          {"ehlo_name", &s.ehlo_name},           {"sni", &s.sni},
          {"verified_name", &s.verified_name},   {"verify_reason", &s.verify_reason},
          {"outcome_reason", &s.outcome_reason}, {"auth_user", &s.auth_user}};
      for (const auto& [column, text] : texts)
        scan(r, s.id, std::string("sessions.") + column, *text);
      if (s.insecure) r.insecure.push_back(s.id);
      if (s.verify_status == storage::VerifyStatus::failed)
        r.verify_failures.emplace_back(s.id,
                                       smtp::verification_text(s.verify_status, s.verify_reason));
    }
    return true;
  }

  bool failures(Report& r, std::string& error) {
    std::vector<storage::FailureReplyCount> failures;
    if (!reader_.failure_reply_counts(failures, error)) return false;
    for (const auto& f : failures)
      r.failures.push_back(
          {f.upstream_host, f.reply_code, f.enhanced_status, f.replies, f.sessions});
    std::vector<storage::OutcomeCount> outcomes;
    if (!reader_.outcome_counts(outcomes, error)) return false;
    for (const auto& o : outcomes)
      r.outcomes.emplace_back(
          o.outcome ? std::string(storage::to_string(*o.outcome)) : std::string("in_progress"),
          o.sessions);
    return true;
  }

  bool certificates(Report& r, int expiry_days, std::string& error) {
    std::vector<storage::TlsCount> tls;
    if (!reader_.tls_counts(tls, error)) return false;
    for (const auto& t : tls)
      r.tls.push_back({t.tls_version.empty() ? "none" : t.tls_version, t.cipher, t.sessions});
    std::vector<storage::CertificateSeen> seen;
    if (!reader_.certificates_seen(seen, error)) return false;
    const auto now = Clock::now();
    const auto soon = now + std::chrono::hours(24) * expiry_days;
    for (const auto& cert : seen) {
      CertLine c{cert.sha256_hex,    cert.subject, cert.not_after, "",
                 cert.first_session, cert.sessions};
      const auto not_after = parse_time_spec(c.not_after, now);
      if (!not_after)
        c.state = "unreadable expiry date";
      else if (*not_after < now)
        c.state = "expired";
      else if (*not_after < soon)
        c.state = "expires within " + std::to_string(expiry_days) + " days";
      if (!c.state.empty()) r.certificates.push_back(std::move(c));
    }
    return true;
  }

  storage::Reader& reader_;
  CredentialScanOptions scan_;
};

std::string render_json(const Report& r) {
  JsonWriter w;
  w.begin_object();
  w.key("ok").value(!r.problems());
  w.key("sessions").value(r.sessions);
  w.key("integrity").begin_array();
  for (const auto& line : r.integrity) w.value(line);
  w.end_array();
  w.key("credential_leaks").begin_array();
  for (const auto& l : r.leaks)
    w.begin_object()
        .key("session")
        .value(l.session)
        .key("where")
        .value(l.where)
        .key("what")
        .value(l.what)
        .end_object();
  w.end_array();
  w.key("rewrites").begin_array();
  for (const auto& x : r.rewrites)
    w.begin_object()
        .key("session")
        .value(x.session)
        .key("count")
        .value(x.count)
        .key("sample")
        .value(x.sample)
        .end_object();
  w.end_array();
  w.key("smuggling_shapes").begin_array();
  for (const auto& x : r.smuggling)
    w.begin_object().key("session").value(x.session).key("shapes").value(x.shapes).end_object();
  w.end_array();
  w.key("failures").begin_array();
  for (const auto& f : r.failures) {
    w.begin_object().key("upstream").value(f.upstream).key("reply_code").value(f.code);
    w.key("enhanced_status").value(f.status).key("count").value(f.count);
    w.key("sessions").value(f.sessions).key("meaning").value(explain_reply(f.code, f.status));
    w.end_object();
  }
  w.end_array();
  w.key("outcomes").begin_object();
  for (const auto& [o, n] : r.outcomes) w.key(o).value(n);
  w.end_object();
  w.key("tls").begin_object();
  w.key("versions").begin_array();
  for (const auto& t : r.tls)
    w.begin_object()
        .key("version")
        .value(t.version)
        .key("cipher")
        .value(t.cipher)
        .key("sessions")
        .value(t.count)
        .end_object();
  w.end_array();
  w.key("insecure_sessions").begin_array();
  for (auto id : r.insecure) w.value(id);
  w.end_array();
  w.key("verify_failures").begin_array();
  for (const auto& [id, why] : r.verify_failures)
    w.begin_object().key("session").value(id).key("verify_result").value(why).end_object();
  w.end_array();
  w.key("certificates").begin_array();
  for (const auto& c : r.certificates) {
    w.begin_object().key("sha256").value(c.sha256).key("subject").value(c.subject);
    w.key("not_after").value(c.not_after).key("state").value(c.state);
    w.key("first_session").value(c.first_session).key("sessions").value(c.sessions).end_object();
  }
  w.end_array();
  w.end_object();
  w.end_object();
  return w.take() + "\n";
}

std::string render_human(const Report& r, const Style& st) {
  std::string out;
  auto heading = [&](const std::string& h) { out += "\n" + st.bold(h) + "\n"; };
  out += st.bold("mailtap audit") + ": " + std::to_string(r.sessions) + " sessions\n";

  heading("Integrity (PRAGMA integrity_check)");
  if (r.integrity_ok())
    out += "  " + st.green("ok") + "\n";
  else
    for (const auto& line : r.integrity) out += "  " + st.red(line) + "\n";

  heading("Credentials in the record");
  if (r.leaks.empty()) out += "  " + st.green("none found") + "\n";
  for (const auto& l : r.leaks)
    out += "  " + st.red("LEAK") + " session " + std::to_string(l.session) + ", " + l.where + ": " +
           l.what + "\n";

  heading("Bare line ends and smuggling-shaped DATA");
  if (r.rewrites.empty() && r.smuggling.empty()) out += "  none\n";
  for (const auto& x : r.rewrites)
    out += "  session " + std::to_string(x.session) + ": " + std::to_string(x.count) +
           " rewrite(s) by mailtap, e.g. " + x.sample + "\n";
  for (const auto& x : r.smuggling)
    out += "  session " + std::to_string(x.session) + ": " +
           st.yellow("client DATA contains smuggling shapes: ") + x.shapes + "\n";

  heading("Outcomes");
  for (const auto& [o, n] : r.outcomes) out += "  " + std::to_string(n) + "  " + o + "\n";

  heading("Failure replies by code and upstream");
  if (r.failures.empty()) out += "  none\n";
  for (const auto& f : r.failures) {
    std::string code = std::to_string(f.code);
    if (!f.status.empty()) code += " " + f.status;
    out += "  " + std::to_string(f.count) + "x  " + code + "  " + f.upstream + "  (" +
           std::to_string(f.sessions) + " session" + (f.sessions == 1 ? "" : "s") + ")  " +
           explain_reply(f.code, f.status) + "\n";
  }

  heading("TLS");
  for (const auto& t : r.tls)
    out += "  " + std::to_string(t.count) + "  " + t.version +
           (t.cipher.empty() ? "" : " " + t.cipher) + "\n";
  if (!r.insecure.empty()) {
    out += "  " + st.yellow("--insecure sessions:");
    for (auto id : r.insecure) out += " " + std::to_string(id);
    out += "\n";
  }
  for (const auto& [id, why] : r.verify_failures)
    out += "  session " + std::to_string(id) + ": " + st.yellow("certificate not verified: ") +
           why + "\n";
  for (const auto& c : r.certificates)
    out += "  certificate " + c.sha256.substr(0, 16) + " " + c.subject + ": " + st.yellow(c.state) +
           " (" + c.not_after + "), seen in " + std::to_string(c.sessions) + " session(s) from " +
           std::to_string(c.first_session) + "\n";
  if (r.insecure.empty() && r.verify_failures.empty() && r.certificates.empty())
    out += "  no --insecure sessions, no verification failures, no certificate near expiry\n";

  out += "\n";
  out += r.problems() ? st.red("PROBLEMS FOUND") + " (exit status 3)\n" : st.green("clean") + "\n";
  return out;
}

int run_audit(const AuditArgs& a) {
  CredentialScanOptions scan;
  if (!a.password_env.empty()) {
    const char* pw = std::getenv(a.password_env.c_str());
    if (pw == nullptr || *pw == '\0') {
      log::error("audit: --password-env: $" + a.password_env + " is not set or empty");
      return 2;
    }
    scan.known_password = pw;
  }
  auto reader = a.common.open_reader("audit");
  if (!reader) return 1;
  std::string error;
  Report report;
  Auditor auditor(*reader, std::move(scan));
  if (!auditor.run(report, a.expiry_days, error)) {
    log::error("audit: " + error);
    return 1;
  }
  const std::string out =
      a.common.json ? render_json(report) : render_human(report, a.common.stdout_style());
  if (!write_stdout(out)) return 1;
  return report.problems() ? kExitFound : 0;
}

}  // namespace

cli::Subcommand add_audit_command(CLI::App& parent) {
  auto args = std::make_shared<AuditArgs>();
  CLI::App* app = parent.add_subcommand(
      "audit",
      "Check the database for damage and leaked credentials; summarise failures and TLS "
      "(exit 3 if a leak or damage is found)");
  args->common.add_to(*app);
  args->common.add_color_to(*app);
  app->add_option("--password-env", args->password_env,
                  "name of an environment variable holding a password that must not appear "
                  "anywhere in the record (in clear, base64, or inside a PLAIN blob)");
  app->add_option("--expiry-days", args->expiry_days,
                  "warn about certificates expiring within this many days (default 30)");
  return {app, [args] { return run_audit(*args); }};
}

}  // namespace mailtap::tools
