#include "proxy/net/local_user_policy.hpp"

#include <algorithm>

namespace mailtap::net {

namespace {

// "alice (uid 1000)", or "uid 1000" for a uid with no name.
std::string user_label(std::uint32_t uid, const UserNamer& name_of) {
  const std::string name = name_of(uid);
  if (name.empty()) return "uid " + std::to_string(uid);
  return name + " (uid " + std::to_string(uid) + ")";
}

// What --allow-local-user takes for the user: its name, else the number.
std::string option_value(std::uint32_t uid, const UserNamer& name_of) {
  const std::string name = name_of(uid);
  return name.empty() ? std::to_string(uid) : name;
}

}  // namespace

std::string UserNameCache::operator()(std::uint32_t uid) {
  {
    std::lock_guard lock(mutex_);
    if (const auto found = names_.find(uid); found != names_.end()) return found->second;
  }
  // Asked without the lock: a slow lookup holds up no one else's answer from the cache.
  std::string name = look_up_(uid);
  std::lock_guard lock(mutex_);
  if (names_.size() >= kMaxNames) names_.clear();
  names_.emplace(uid, name);
  return name;
}

std::string local_user_refusal(const LocalUserPolicy& policy, const PeerOwner& owner,
                               bool peer_loopback, const UserNamer& name_of) {
  if (policy.any) return {};
  if (owner.kind == PeerOwner::Kind::user && owner.uid == policy.unmapped)
    return "a local user outside mailtap's user namespace connected (the kernel shows all of "
           "them as uid " +
           std::to_string(owner.uid) + "), and mailtap serves only its own user " +
           user_label(policy.own, name_of) +
           "; to serve another user, run mailtap outside such a namespace (the systemd unit: "
           "PrivateUsers=no) and name it with --allow-local-user";
  if (owner.kind == PeerOwner::Kind::user) {
    const auto& others = policy.others;
    if (owner.uid == policy.own ||
        std::find(others.begin(), others.end(), owner.uid) != others.end())
      return {};
    return "local user " + user_label(owner.uid, name_of) + " is not mailtap's user " +
           user_label(policy.own, name_of) +
           ", and mailtap serves only its own user (it acts with that user's credentials and "
           "record); to serve this user too, start mailtap with --allow-local-user " +
           option_value(owner.uid, name_of);
  }
  if (owner.kind == PeerOwner::Kind::gone)
    return "the client closed its connection before mailtap could tell which local user it was, "
           "and mailtap serves only its own user " +
           user_label(policy.own, name_of);
  // Not found, or not to be found: a client from another machine (or network namespace) is
  // remote, which only --allow-remote lets in, as before; a loopback one is of this machine.
  if (!peer_loopback) return {};
  const std::string why =
      owner.kind == PeerOwner::Kind::elsewhere ? "its socket was not found" : owner.why;
  return "cannot tell which local user connected (" + why + "), and mailtap serves only its " +
         "own user " + user_label(policy.own, name_of) +
         "; --allow-local-user any turns this check off";
}

std::string describe_local_users(const LocalUserPolicy& policy, std::string_view what,
                                 const UserNamer& name_of) {
  if (policy.any)
    return "WARNING: --allow-local-user any: every user of this machine may " + std::string(what) +
           " (the check of which local user connects is off)";
  std::string others;
  for (std::uint32_t uid : policy.others)
    if (uid != policy.own) others += (others.empty() ? "" : ", ") + user_label(uid, name_of);
  if (others.empty()) return {};
  return "local users who may " + std::string(what) + " besides " +
         user_label(policy.own, name_of) + ": " + others + " (--allow-local-user)";
}

}  // namespace mailtap::net
