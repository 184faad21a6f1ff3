// --allow-local-user of `mailtap proxy` and `mailtap web`: who besides mailtap's own user may
// connect (net/local_user_policy). Names are looked up once, at start: a name the system does
// not know is refused then, not at the first connection.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/net/local_user_policy.hpp"

namespace mailtap::options {

struct LocalUserOptions {
  std::vector<std::string> users;  // as given: names, uids, `any`

  // `what` says what the users get ("relay through mailtap", "read the web page").
  void add_to(CLI::App& app, std::string_view what);

  // The policy for mailtap's own uid and the users given; "" or an error naming the value.
  std::string policy(net::LocalUserPolicy& out) const;
};

// The start-up line on stderr when users besides mailtap's own may `what`: a warning for `any`.
void announce_local_users(const net::LocalUserPolicy& policy, std::string_view what);

}  // namespace mailtap::options
