// What `mailtap audit` finds in a database, as a value: the audit command prints it as text or
// JSON, and `mailtap web` serves the same JSON on its audit page.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/credential_scan.hpp"

namespace mailtap::storage {
class Reader;
}

namespace mailtap::tools {

struct AuditLeak {
  std::int64_t session = 0;
  std::string where;  // "event 7 bytes", "message 1 body", "sessions.outcome_reason"
  std::string what;
};

struct AuditSmuggle {
  std::int64_t session = 0;
  std::string shapes;
};

struct AuditRewrite {
  std::int64_t session = 0;
  std::int64_t count = 0;
  std::string sample;
};

struct AuditFailure {
  std::string upstream;
  int code = 0;
  std::string status;
  bool by_mailtap = false;  // mailtap's own replies (a refusal, a restated failure)
  std::int64_t count = 0;
  std::int64_t sessions = 0;
};

struct AuditTlsLine {
  std::string version, cipher;
  std::int64_t count = 0;
};

struct AuditCertLine {
  std::string sha256, subject, not_after, state;  // state: "expired" | "expires soon"
  std::int64_t first_session = 0, sessions = 0;
};

struct AuditReport {
  std::vector<std::string> integrity;  // "ok" alone when healthy
  std::vector<AuditLeak> leaks;
  std::vector<AuditRewrite> rewrites;
  std::vector<AuditSmuggle> smuggling;
  // BDAT chunks refused with a 5yz holding command-shaped lines (shapes: what and where).
  std::vector<AuditSmuggle> refused_chunks;
  std::vector<AuditFailure> failures;
  std::vector<std::pair<std::string, std::int64_t>> outcomes;
  std::vector<AuditTlsLine> tls;
  std::vector<std::int64_t> insecure;
  std::vector<std::pair<std::int64_t, std::string>> verify_failures;
  std::vector<AuditCertLine> certificates;
  std::int64_t sessions = 0;
  // Sessions whose body file was gone when the scan came to it and that were no longer in the
  // record when the totals were read: removed by a prune while audit ran, not damage.
  std::vector<std::int64_t> removed_while_auditing;
  // The parts of the record that damage kept from being read to the end, each named once:
  // "integrity", "events", "messages", "sessions", "failures" (the outcomes and failure
  // replies), "tls" (versions, ciphers and certificates). What the report says of a part
  // it did not read is "not read", never "none".
  std::vector<std::string> unread;
  bool read(std::string_view part) const {
    return std::find(unread.begin(), unread.end(), part) == unread.end();
  }
  bool integrity_ok() const { return integrity.size() == 1 && integrity[0] == "ok"; }
  bool problems() const { return !integrity_ok() || !leaks.empty(); }
};

// Audits what `reader` sees.
bool build_audit_report(storage::Reader& reader, const CredentialScanOptions& scan, int expiry_days,
                        AuditReport& out, std::string& error);
// Opens `path` read-only and audits it. False with `error` set if the audit could not run.
bool build_audit_report(const std::string& path, const CredentialScanOptions& scan, int expiry_days,
                        AuditReport& out, std::string& error);

// The report as `mailtap audit --json` prints it (with a trailing newline). Text from the
// record that is not UTF-8 is base64 with "<name>_encoding": "base64" beside it, as export
// writes it (write_bytes_member).
std::string audit_report_json(const AuditReport& r);

}  // namespace mailtap::tools
