#include "proxy/common/private_file.hpp"

#include <unistd.h>

#include <cstdio>

namespace mailtap {

std::string octal_mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

PrivacyProblem privacy_problem(const struct stat& st, std::string_view what) {
  PrivacyProblem p;
  if ((st.st_mode & 077) != 0) {
    p.kind = PrivacyProblem::too_open;
    p.reason = "permissions " + octal_mode(st.st_mode) + " are too open; " + std::string(what) +
               " must not be accessible by group or others";
  } else if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    p.kind = PrivacyProblem::foreign_owner;
    p.reason = "owned by uid " + std::to_string(st.st_uid) + ", not by the user running mailtap";
  }
  return p;
}

}  // namespace mailtap
