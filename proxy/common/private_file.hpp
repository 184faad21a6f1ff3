// Whether a file on disk is private to the user running mailtap, as ssh asks of a private key:
// no access at all for group or others, and owned by that user (or root). The password file
// (--password-file) and the --local-tls key are both held to it, through this one check.
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

namespace mailtap {

struct PrivacyProblem {
  enum Kind { none, too_open, foreign_owner };
  Kind kind = none;
  // What is wrong, e.g. "permissions 0644 are too open; a password file must not be accessible
  // by group or others", or "owned by uid 1001, not by the user running mailtap"; empty if none.
  std::string reason;
};

// `st` is what fstat(2) said of the file; `what` names it in the reason ("a password file").
PrivacyProblem privacy_problem(const struct stat& st, std::string_view what);

// Whether someone other than the user running mailtap (or root) could change the file `st`
// describes, as ssh asks of its config file (readconf.c): no write access for group or others
// (too_open), and owned by that user or root (foreign_owner). `what` names it in the reason
// ("a config file"). Reading is not the question here: a file that chooses the commands mailtap
// runs must not be writable by anyone else, whether or not it holds a secret.
PrivacyProblem write_access_problem(const struct stat& st, std::string_view what);

// "uid 65534 (nobody)", or "uid 65534" when the user database has no name for it.
std::string describe_uid(uid_t uid);

// The path to name in a "chmod ..." advice for the file read as `path`: a descriptor's name
// (/dev/stdin, /dev/fd/N, /proc/self/fd/N) is the user's terminal or a pipe once typed in their
// shell, so it is the file behind the descriptor when that is a file with a path, else "".
std::string path_to_chmod(const std::string& path);

// "0644": the permission bits of `mode`, as chmod takes them.
std::string octal_mode(mode_t mode);

}  // namespace mailtap
