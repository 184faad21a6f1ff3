#include "proxy/common/private_file.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>

#include "proxy/common/user_name.hpp"

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

std::string describe_uid(uid_t uid) {
  const std::string name = system_user_name(uid);
  return "uid " + std::to_string(uid) + (name.empty() ? "" : " (" + name + ")");
}

PrivacyProblem write_access_problem(const struct stat& st, std::string_view what) {
  PrivacyProblem p;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    p.kind = PrivacyProblem::too_open;
    p.reason = "permissions " + octal_mode(st.st_mode) + " let " +
               ((st.st_mode & S_IWOTH) != 0 ? "every local user" : "the group") + " change " +
               std::string(what);
  } else if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    p.kind = PrivacyProblem::foreign_owner;
    p.reason = "owned by " + describe_uid(st.st_uid) + ", not by you or root";
  }
  return p;
}

std::string path_to_chmod(const std::string& path) {
  std::string fd;
  if (path == "/dev/stdin") fd = "0";
  for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"})
    if (path.starts_with(prefix)) fd = path.substr(std::string_view(prefix).size());
  if (fd.empty()) return path;
  std::array<char, 4096> target{};
  const ssize_t n = ::readlink(("/proc/self/fd/" + fd).c_str(), target.data(), target.size() - 1);
  // "pipe:[123]", "/dev/pts/3 (deleted)"-like names or a terminal: no file of the user's to chmod.
  if (n <= 0 || target[0] != '/') return {};
  const std::string file(target.data(), static_cast<std::size_t>(n));
  return file.starts_with("/dev/") ? std::string() : file;
}

}  // namespace mailtap
