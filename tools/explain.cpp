// `mailtap explain CODE [ENHANCED] [TEXT...]`: what a reply means and what usually fixes it,
// from the table `show` and `audit` use, with the wordings of Gmail, Microsoft 365, Postfix and
// Exim.
#include <memory>
#include <string>
#include <vector>

#include "proxy/common/log.hpp"
#include "tools/commands.hpp"
#include "tools/reply_explanation.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct ExplainArgs {
  std::vector<std::string> reply;
  bool json = false;
};

int run_explain(const ExplainArgs& a) {
  std::string input;
  for (const auto& word : a.reply) input += (input.empty() ? "" : " ") + word;
  std::string error;
  const auto query = parse_reply_query(input, error);
  if (!query) {
    log::error("explain: " + error);
    return 2;
  }
  return write_stdout(a.json ? render_explanation_json(*query) : render_explanation_text(*query))
             ? 0
             : 1;
}

}  // namespace

cli::Subcommand add_explain_command(CLI::App& parent) {
  auto args = std::make_shared<ExplainArgs>();
  CLI::App* app = parent.add_subcommand(
      "explain", "Say what an SMTP reply means and what usually fixes it (e.g. 535 5.7.8)");
  app->add_option("REPLY", args->reply,
                  "reply code, enhanced status and/or the reply's text, as the server sent it "
                  "(quote a pasted line)")
      ->required();
  app->add_flag("--json", args->json, "machine-readable JSON output");
  app->footer(
      "Exit status: 0 explained, 2 not a reply code or enhanced status.\n"
      "Examples: mailtap explain 535 5.7.8\n"
      "          mailtap explain '535 5.7.139 Authentication unsuccessful, basic authentication "
      "is disabled.'");
  return {app, [args] { return run_explain(*args); }};
}

}  // namespace mailtap::tools
