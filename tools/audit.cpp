// `mailtap audit`: checks a database for damage (PRAGMA integrity_check) and for anything that
// should never be in it (credentials that escaped redaction), and summarises what deserves a
// look: bare-LF rewrites and smuggling-shaped DATA, failures by reply code and upstream, TLS
// versions, --insecure sessions and certificates near or past expiry.
// Exit status: 0 clean, 3 a leak or damage was found, 1 the audit could not run.
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>

#include "proxy/cli/secret_options.hpp"
#include "proxy/common/log.hpp"
#include "proxy/secrets/core_dumps.hpp"
#include "proxy/secrets/secret_source.hpp"
#include "storage/reader.hpp"
#include "tools/audit_report.hpp"
#include "tools/commands.hpp"
#include "tools/number_options.hpp"
#include "tools/reply_codes.hpp"
#include "tools/terminal_text.hpp"
#include "tools/time_format.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

constexpr int kExitFound = 3;

struct AuditArgs {
  ToolOptions common;
  cli::SecretOptions secret;  // --password-env alone
  int expiry_days = 30;
};

// "events", "sessions": the parts of `parts` that `r` could not read, for a section that needs
// them; empty when all were read.
std::string unread_parts(const AuditReport& r, std::initializer_list<std::string_view> parts) {
  std::string names;
  for (std::string_view part : parts)
    if (!r.read(part)) names += (names.empty() ? "" : ", ") + std::string(part);
  return names;
}

// The line a section says instead of "none" when damage kept a part it is made of from being
// read: what it lists is only what was read before the damage.
std::string not_read_line(const std::string& parts, const Style& st) {
  return "  " + st.red("not checked to the end: " + parts + " could not be read") +
         " (see Integrity)\n";
}

// The render_ functions write the text report. It is read on a terminal and quotes the record,
// where a client or server chose the text (a certificate's subject, a reply's status, what a note
// quotes): it is escaped as the transcript escapes it. Wire text (host names, TLS names,
// certificate fields) by escape_line; mailtap's own text (its notes, findings and integrity lines)
// by escape_text, which keeps their UTF-8.
void render_integrity_and_leaks(const AuditReport& r, const Style& st, std::string& out) {
  out += "\n" + st.bold("Integrity (PRAGMA integrity_check)") + "\n";
  if (r.integrity_ok())
    out += "  " + st.green("ok") + "\n";
  else
    for (const auto& line : r.integrity) out += "  " + st.red(escape_text(line)) + "\n";
  if (!r.removed_while_auditing.empty()) {
    out += "  session" + std::string(r.removed_while_auditing.size() == 1 ? "" : "s");
    for (std::size_t i = 0; i < r.removed_while_auditing.size(); ++i)
      out += (i == 0 ? " " : ", ") + std::to_string(r.removed_while_auditing[i]);
    out += ": removed by a prune while audit ran (not damage, not counted)\n";
  }

  out += "\n" + st.bold("Credentials in the record") + "\n";
  const std::string unscanned = unread_parts(r, {"events", "messages", "sessions"});
  if (!unscanned.empty())
    out += not_read_line(unscanned, st);
  else if (r.leaks.empty())
    out += "  " + st.green("none found") + "\n";
  for (const auto& l : r.leaks)
    out += "  " + st.red("LEAK") + " session " + std::to_string(l.session) + ", " +
           escape_text(l.where) + ": " + escape_text(l.what) + "\n";
}

void render_rewrites_and_smuggling(const AuditReport& r, const Style& st, std::string& out) {
  out += "\n" + st.bold("Bare line ends and smuggling-shaped DATA") + "\n";
  if (!r.read("events"))
    out += not_read_line("events", st);
  else if (r.rewrites.empty() && r.smuggling.empty() && r.refused_chunks.empty())
    out += "  none\n";
  for (const auto& x : r.rewrites)
    out += "  session " + std::to_string(x.session) + ": " + std::to_string(x.count) +
           " rewrite(s) by mailtap, e.g. " + escape_text(x.sample) + "\n";
  for (const auto& x : r.smuggling)
    out += "  session " + std::to_string(x.session) + ": " +
           st.yellow("client DATA contains smuggling shapes: ") + escape_text(x.shapes) + "\n";
  for (const auto& x : r.refused_chunks)
    out += "  session " + std::to_string(x.session) + ": " +
           st.yellow("refused BDAT chunk holds command-shaped lines: ") + escape_text(x.shapes) +
           "\n";
}

void render_outcomes_and_failures(const AuditReport& r, const Style& st, std::string& out) {
  out += "\n" + st.bold("Outcomes") + "\n";
  if (!r.read("failures")) out += not_read_line("failures", st);
  for (const auto& [o, n] : r.outcomes) out += "  " + std::to_string(n) + "  " + o + "\n";

  out += "\n" + st.bold("Failure replies by code and upstream") + "\n";
  if (!r.read("failures"))
    out += not_read_line("failures", st);
  else if (r.failures.empty())
    out += "  none\n";
  for (const auto& f : r.failures) {
    std::string code = std::to_string(f.code);
    if (!f.status.empty()) code += " " + escape_line(f.status);
    out += "  " + std::to_string(f.count) + "x  " + code + "  " + escape_line(f.upstream) +
           (f.by_mailtap ? ", by mailtap" : "") + "  (" + std::to_string(f.sessions) + " session" +
           (f.sessions == 1 ? "" : "s") + ")  " + explain_reply(f.code, f.status) + "\n";
  }
}

void render_tls(const AuditReport& r, const Style& st, std::string& out) {
  out += "\n" + st.bold("TLS") + "\n";
  const std::string unread = unread_parts(r, {"sessions", "tls"});
  if (!unread.empty()) out += not_read_line(unread, st);
  for (const auto& t : r.tls)
    out += "  " + std::to_string(t.count) + "  " + escape_line(t.version) +
           (t.cipher.empty() ? "" : " " + escape_line(t.cipher)) + "\n";
  if (!r.insecure.empty()) {
    out += "  " + st.yellow("--insecure sessions:");
    for (auto id : r.insecure) out += " " + std::to_string(id);
    out += "\n";
  }
  for (const auto& [id, why] : r.verify_failures)
    out += "  session " + std::to_string(id) + ": " + st.yellow("certificate not verified: ") +
           escape_line(why) + "\n";
  for (const auto& c : r.certificates)
    out += "  certificate " + escape_line(c.sha256.substr(0, 16)) + " " + escape_line(c.subject) +
           ": " + st.yellow(c.state) + " (" + escape_line(c.not_after) + "), seen in " +
           std::to_string(c.sessions) + " session(s) from " + std::to_string(c.first_session) +
           "\n";
  if (unread.empty() && r.insecure.empty() && r.verify_failures.empty() && r.certificates.empty())
    out += "  no --insecure sessions, no verification failures, no certificate near expiry\n";
}

std::string render_human(const AuditReport& r, const Style& st) {
  std::string out;
  out += st.bold("mailtap audit") + ": ";
  if (r.read("sessions"))
    out += std::to_string(r.sessions) + " sessions\n";
  else
    out += st.red("sessions not counted: the sessions could not be read") + "\n";
  render_integrity_and_leaks(r, st, out);
  render_rewrites_and_smuggling(r, st, out);
  render_outcomes_and_failures(r, st, out);
  render_tls(r, st, out);
  out += "\n";
  out += r.problems() ? st.red("PROBLEMS FOUND") + " (exit status 3)\n" : st.green("clean") + "\n";
  return out;
}

// The --password-env password, read as the proxy reads one (its first line, then the variable
// wiped where it lies and removed), into a Secret; nullopt (logged) if it cannot be. A crash
// while it is held must not write it into a core file (docs/auth.md).
std::optional<smtp::Secret> read_known_password(const cli::SecretOptions& secret) {
  std::string error;
  if (!secrets::forbid_core_dumps(error)) {
    log::error("audit: " + error);
    return std::nullopt;
  }
  secrets::SecretRead read = secrets::read_secret(secret.password_source({}));
  if (!read.secret) {
    log::error("audit: " + read.error);
    return std::nullopt;
  }
  return std::move(read.secret);
}

int run_audit(const AuditArgs& a) {
  CredentialScanOptions scan;
  if (a.secret.has_password_source()) {
    std::optional<smtp::Secret> password = read_known_password(a.secret);
    if (!password) return 2;
    scan = CredentialScanOptions(std::move(*password));
  }
  int failure_status = 1;
  auto reader = a.common.open_reader("audit", failure_status);
  if (!reader) return failure_status;
  std::string error;
  AuditReport report;
  if (!build_audit_report(*reader, scan, a.expiry_days, report, error)) {
    log::error("audit: " + error);
    return 1;
  }
  const std::string out =
      a.common.json ? audit_report_json(report) : render_human(report, a.common.stdout_style());
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
  args->secret.add_password_env_option(
      *app,
      "password that must not appear anywhere in the record (in clear, base64, or inside a "
      "PLAIN blob)");
  // Up to a century: further out, now + the days would leave the clock's range.
  const NumberKind days{"a number of days", "a whole number from 0 to 36500, such as 30", 0, 36500};
  add_number_option(*app, "--expiry-days", days, args->expiry_days,
                    "warn about certificates expiring within this many days (default 30)");
  return {app, [args] { return run_audit(*args); }};
}

}  // namespace mailtap::tools
