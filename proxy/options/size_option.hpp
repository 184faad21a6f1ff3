// A byte-size option (--max-body 64MiB): CLI11's own size parser (binary units, any case:
// 2048, 512k, 4KiB, 10M, 1GiB), with a message that shows the value and an example rather
// than CLI11's list of every unit it knows.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

namespace mailtap::options {

inline CLI::Option* add_size_option(CLI::App& app, std::string name, std::uint64_t& out,
                                    std::string default_text, std::string help) {
  const CLI::AsSizeValue size(/*kb_is_1000=*/false);
  CLI::Validator check(
      [size](std::string& text) -> std::string {
        const std::string given = text;
        try {
          if (size(text).empty()) return {};
        } catch (const CLI::ValidationError&) {
        }
        text = given;
        return given + ": expected a size such as 64MiB, 512k or 1GiB";
      },
      "");
  return app.add_option(std::move(name), out, std::move(help))
      ->transform(check)
      ->type_name("SIZE")
      ->default_str(std::move(default_text));
}

}  // namespace mailtap::options
