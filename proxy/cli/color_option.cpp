#include "proxy/cli/color_option.hpp"

namespace mailtap::cli {

CLI::Option* add_color_option(CLI::App& app, ColorChoice& out) {
  return app
      .add_option_function<std::string>(
          "--color",
          [&out](const std::string& when) {
            out = parse_color_choice(when).value_or(ColorChoice::auto_detect);
          },
          "Colour the output: auto (on a terminal, unless NO_COLOR is set), always or never")
      ->type_name("WHEN")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
}

}  // namespace mailtap::cli
