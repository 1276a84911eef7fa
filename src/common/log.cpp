#include "flowpath/log.hpp"

#include <atomic>
#include <cstdio>

namespace flowpath {

namespace {
// Process-wide by nature: one stderr, one --log-level. Atomic because the
// management thread and workers' set-up code may log concurrently.
std::atomic<LogLevel> g_threshold{LogLevel::info};

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::error: return "error";
        case LogLevel::warn: return "warn";
        case LogLevel::info: return "info";
        case LogLevel::debug: return "debug";
    }
    return "?";
}
}  // namespace

bool parse_log_level(std::string_view text, LogLevel& level) {
    for (LogLevel l : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
        if (text == level_name(l)) {
            level = l;
            return true;
        }
    }
    return false;
}

void set_log_level(LogLevel level) { g_threshold.store(level, std::memory_order_relaxed); }
LogLevel log_level() { return g_threshold.load(std::memory_order_relaxed); }

void log_line(LogLevel level, std::string_view message) {
    // One fprintf per line so that concurrent lines do not interleave.
    std::fprintf(stderr, "flowpath: %s: %.*s\n", level_name(level), static_cast<int>(message.size()),
                 message.data());
}

}  // namespace flowpath
