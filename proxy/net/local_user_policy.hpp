// Which local users may use a server of mailtap's (the proxy's plain side, the web page):
// mailtap's own by default, others by --allow-local-user, everyone with `any`. The proxy signs
// in upstream with its owner's credentials and the page shows its owner's mail: loopback is
// open to every user of the machine, so without this check any of them could send mail as the
// owner or read it. Plain C++ over the lookup's answer (peer_owner); unit-tested.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/common/user_name.hpp"
#include "proxy/net/peer_owner.hpp"

namespace mailtap::net {

struct LocalUserPolicy {
  bool any = false;                   // --allow-local-user any: no check
  std::uint32_t own = 0;              // mailtap's own uid (geteuid)
  std::vector<std::uint32_t> others;  // --allow-local-user, besides mailtap's own
  // In a user namespace that maps only some users (the systemd unit's PrivateUsers=yes), the
  // kernel shows every unmapped one as the overflow uid (65534): that uid then stands for any
  // of them, and is never served.
  std::optional<std::uint32_t> unmapped;
};

// A user's name for a message ("" when the uid has none).
using UserNamer = std::function<std::string(std::uint32_t)>;

// The user database's names (system_user_name), each asked once: a lookup may block (LDAP,
// sssd), and refusals come on the thread that accepts every client. Bounded: past kMaxNames
// uids it starts afresh. Thread-safe (the web page's workers share one).
class UserNameCache {
 public:
  static constexpr std::size_t kMaxNames = 256;
  explicit UserNameCache(UserNamer look_up = system_user_name) : look_up_(std::move(look_up)) {}
  std::string operator()(std::uint32_t uid);

 private:
  UserNamer look_up_;
  std::mutex mutex_;
  std::map<std::uint32_t, std::string> names_;
};

// Why a client whose socket's owner is `owner` is not served, as a sentence after "mailtap: "
// naming the user, its uid and mailtap's, and what to do (`--allow-local-user NAME`); "" when it
// is served. `peer_loopback`: the client's address is a loopback one (such a client is always
// of this machine, so one that was not found is a lookup failure, not a remote client; a remote
// one is --allow-remote's to admit, as before).
std::string local_user_refusal(const LocalUserPolicy& policy, const PeerOwner& owner,
                               bool peer_loopback, const UserNamer& name_of);

// The start-up line on who may connect besides mailtap's own user, or "" when no one may:
// "local users allowed besides alice (uid 1000): postfix (uid 107) (--allow-local-user)", or
// the warning that with `any` every user may `what` ("relay through mailtap").
std::string describe_local_users(const LocalUserPolicy& policy, std::string_view what,
                                 const UserNamer& name_of);

}  // namespace mailtap::net
