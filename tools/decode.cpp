// `mailtap decode [TEXT | -]`: what a copied AUTH line, 334 prompt, SASL response or OAuth error
// means, one output line per input line. The decoding is the recorder's own (AuthRedactor),
// so decode shows exactly what mailtap understood; secrets are shown as <secret, N bytes>
// unless --show-secret.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "tools/auth_line_decoder.hpp"
#include "tools/commands.hpp"
#include "tools/tool_options.hpp"

namespace mailtap::tools {

namespace {

struct DecodeArgs {
  std::string text;
  bool show_secret = false;
};

int run_decode(const DecodeArgs& a) {
  AuthLineDecoder decoder(a.show_secret);
  std::string out;
  auto emit = [&](std::string_view line) {
    if (std::optional<std::string> d = decoder.line(line)) {
      out = *d + "\n";
      if (!write_stdout(out)) return false;
    }
    return true;
  };
  if (!a.text.empty() && a.text != "-") {
    std::string_view text = a.text;
    while (!text.empty()) {
      const std::size_t nl = text.find('\n');
      if (!emit(text.substr(0, nl))) return 1;
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    }
    return 0;
  }
  for (std::string line; std::getline(std::cin, line);) {
    if (!emit(line)) return 1;
  }
  return 0;
}

}  // namespace

cli::Subcommand add_decode_command(CLI::App& parent) {
  auto args = std::make_shared<DecodeArgs>();
  CLI::App* app = parent.add_subcommand(
      "decode", "Explain copied AUTH lines, 334 prompts, SASL responses and OAuth errors");
  app->add_option("TEXT", args->text,
                  "What to decode (\"-\" or nothing: standard input, one line at a time)");
  app->add_flag("--show-secret", args->show_secret,
                "Show passwords and tokens instead of <secret, N bytes>");
  app->footer(
      "Lines are read in order, as a session shows them: a response is understood from the AUTH "
      "line and the 334 prompt before it. Lines starting with # are skipped, so the output of "
      "mailtap encode can be piped in.\n"
      "Example: mailtap decode 'AUTH PLAIN AGFsaWNlAHNlY3JldA=='");
  return {app, [args] { return run_decode(*args); }};
}

}  // namespace mailtap::tools
