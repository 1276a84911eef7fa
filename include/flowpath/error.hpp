// Errors outside the hot path: an exception carrying where it was raised and
// why, so that every message a user sees names its origin.
#pragma once

#include <stdexcept>
#include <string>

namespace flowpath {

/// A failure with the source location that raised it ("src/io/port.cpp:42:
/// reason"). Thrown only at set-up and tear-down, never per packet.
class Error : public std::runtime_error {
public:
    /// `file` and `line` default to the place of the throw (the builtins
    /// stand in for std::source_location, which clang 14 lacks).
    explicit Error(const std::string& reason, const char* file = __builtin_FILE(), int line = __builtin_LINE());
};

/// A bad configuration: the message names the user's file and line (or the
/// command line) and what is wrong. The process exits with status 2.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// "FILE:LINE: " for a place in a user's file, "command line: " when file is
/// empty.
std::string config_place(const std::string& file, unsigned line);

}  // namespace flowpath
