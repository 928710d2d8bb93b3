// TOML run configs for subcommands, read with CLI11's TOML reader after the command line is
// parsed, so that only the options the user did not give are taken from the file.
#include "tools/config_file.h"

#include <filesystem>

#include "util/error.h"

namespace diloco {

CLI::Option* add_config_option(CLI::App& cmd, std::string& path) {
    return cmd.add_option("--config", path,
                          "TOML file setting any of these options by name (flags override)");
}

void apply_config_file(CLI::App& cmd, const std::string& path) {
    if (path.empty()) return;
    require(std::filesystem::is_regular_file(path), path + ": config file not found");
    try {
        for (const CLI::ConfigItem& item : CLI::ConfigTOML().from_file(path)) {
            std::string name = item.name;
            for (const std::string& parent : item.parents) name = parent + "." + name;
            CLI::Option* opt = cmd.get_option_no_throw("--" + name);
            require(opt != nullptr && name != "config",
                    path + ": unknown option '" + name + "' for `diloco " + cmd.get_name() + "`");
            if (opt->count() > 0) continue;  // the command line wins
            for (const std::string& value : item.inputs) opt->add_result(value);
            opt->run_callback();
        }
    } catch (const CLI::Error& e) {
        throw Error(path + ": " + e.what());
    }
}

}  // namespace diloco
