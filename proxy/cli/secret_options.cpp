#include "proxy/cli/secret_options.hpp"

namespace mailtap::cli {

namespace {

// `--password-file "$PWFILE"` with PWFILE unset is a mistake to report, not "no source": taken as
// none, it would get a prompt on a terminal, or a request for the very option that was given.
CLI::Validator not_empty(const std::string& names) {
  return CLI::Validator(
      [names](std::string& value) -> std::string {
        return value.empty()
                   ? "an empty value names no " + names + ": give one, or leave the option out"
                   : "";
      },
      "");
}

}  // namespace

void SecretOptions::add_password_env_option(CLI::App& app, const std::string& what) {
  env_ = app.add_option("--password-env", password_env,
                        "Read the " + what +
                            " from environment variable VAR (its first line); mailtap then "
                            "wipes VAR and removes it from its environment, so no command it "
                            "runs inherits it")
             ->type_name("VAR")
             ->check(not_empty("variable"));
}

void SecretOptions::add_password_options(CLI::App& app, const std::string& what) {
  add_password_env_option(app, what);
  file_ = app.add_option("--password-file", password_file,
                         "Read the " + what +
                             " from the first line of file PATH, which must be private to you "
                             "(chmod 600; refused otherwise, as ssh refuses keys); a pipe such "
                             "as <(pass show mail/gmail) works too")
              ->type_name("PATH")
              ->check(not_empty("file"));
  cmd_ = app.add_option("--password-cmd", password_cmd,
                        "Run CMD with /bin/sh -c and take the " + what +
                            " from the first line it prints on stdout; it must exit 0 within 2 "
                            "minutes; its stderr is shown (e.g. 'pass show mail/gmail')")
             ->type_name("CMD")
             ->check(not_empty("command"));
  env_->excludes(file_)->excludes(cmd_);
  file_->excludes(cmd_);
}

void SecretOptions::add_token_option(CLI::App& app, bool exclusive) {
  CLI::Option* token =
      app.add_option("--oauth2-token-cmd", oauth2_token_cmd,
                     "Run CMD with /bin/sh -c for an OAuth 2.0 access token: it prints the token "
                     "alone (optionally then a line expires_in=SECONDS), or a token endpoint's "
                     "JSON, and exits 0 within 20s (e.g. 'oama access alice@gmail.com'; see "
                     "docs/auth.md)")
          ->type_name("CMD")
          ->check(not_empty("command"));
  if (!exclusive) return;
  for (CLI::Option* o : {env_, file_, cmd_}) {
    if (o != nullptr) token->excludes(o);
  }
}

secrets::SecretSource SecretOptions::password_source(std::string prompt) const {
  using Kind = secrets::SecretSource::Kind;
  if (!password_env.empty()) return {Kind::env, password_env};
  if (!password_file.empty()) return {Kind::file, password_file};
  if (!password_cmd.empty()) return {Kind::command, password_cmd};
  return {Kind::prompt, std::move(prompt)};
}

}  // namespace mailtap::cli
