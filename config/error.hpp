// The one exception the config layer throws. Its message is complete and names the
// setting and where the bad value came from; main prints it after "narwhal: error: ".
#pragma once

#include <stdexcept>

namespace narwhal::config {

struct ConfigError : std::runtime_error {
    using runtime_error::runtime_error;
};

}  // namespace narwhal::config
