// flowpath: parse the configuration, build the datapath, serve the control
// socket until a stop is asked for, then stop cleanly and report.
//
// Exit status: 0 after a clean stop, 2 for bad configuration (before any port
// starts), 1 for any other failure (including a report that could not be
// written).
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "flowpath/config.hpp"
#include "flowpath/ctl.hpp"
#include "flowpath/datapath.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"
#include "flowpath/log.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Set by the signal handler; a signal handler can reach nothing else.
volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) { g_stop_signal = signal; }

// Each asks for a clean stop (interface.md).
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

const char* signal_name(int signal) {
    switch (signal) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        case SIGHUP: return "SIGHUP";
        case SIGQUIT: return "SIGQUIT";
    }
    return "signal";
}

// The stop signals set a flag the management loop reads; SIGPIPE is ignored
// so that a closed stdout, stderr or client is a write error, not a death.
void install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    for (int signal : kStopSignals) sigaction(signal, &action, nullptr);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
}

// The EAL and the drivers may install handlers of their own; ours must win,
// or a signal would kill the process without its report.
void restore_signal_handlers() {
    for (int signal : kStopSignals) {
        struct sigaction current {};
        if (sigaction(signal, nullptr, &current) == 0 && current.sa_handler != on_stop_signal) {
            flowpath::log(flowpath::LogLevel::warn, "the handler of ", signal_name(signal),
                          " was changed during start-up; restoring flowpath's");
        }
    }
    install_signal_handlers();
}

// An empty string when `text` reached `path`, else why not.
std::string write_file(const std::string& path, const std::string& text) {
    FILE* file = std::fopen(path.c_str(), "w");
    if (!file) return std::strerror(errno);
    const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size() && std::fflush(file) == 0;
    const int saved = errno;
    const bool closed = std::fclose(file) == 0;
    if (!written) return std::strerror(saved);
    if (!closed) return std::strerror(errno);
    return {};
}

/// Why the run ends.
enum class StopCause { none, signal, duration, idle, ctl };

// Writes the final statistics (stdout, --stats-json); false when one could
// not be written, with the reason logged.
bool report(const flowpath::Config& config, const flowpath::StatsSnapshot& stats) {
    using namespace flowpath;
    bool ok = true;
    if (!config.stats_json.empty()) {
        const std::string failure = write_file(config.stats_json, stats_to_json(stats));
        if (!failure.empty()) {
            log(LogLevel::error, "cannot write statistics to ", config.stats_json, ": ", failure);
            ok = false;
        }
    }
    const std::string text = stats_to_text(stats);
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
        log(LogLevel::error, "cannot write statistics to standard output: ", std::strerror(errno));
        ok = false;
    }
    return ok;
}

int run(const flowpath::Config& config) {
    using namespace flowpath;
    // Every file and name the run uses is checked before anything is opened,
    // so that a refused start destroys nothing (another instance's tx files).
    check_before_start(config);
    Datapath datapath(config);
    restore_signal_handlers();

    StopCause cause = g_stop_signal ? StopCause::signal : StopCause::none;
    {
        // The socket appears only once the configuration, the rules and every
        // port passed their checks, and before any worker runs (the benchmark
        // relies on that to stop flowpath before the first packet). It goes
        // before the datapath stops, so no client waits on a stopping process.
        CtlServer ctl(config.ctl_socket);
        if (cause == StopCause::none) {
            datapath.start();
            log(LogLevel::info, "running; control socket ", config.ctl_socket);
        }
        const auto started = Clock::now();
        auto last_rx_change = started;
        uint64_t last_rx = 0;
        const CtlServer::Handler handler = [&](const std::string& command, const std::string& body) -> CtlReply {
            if (command == "show") return {true, datapath.show()};
            if (command == "stats-json") return {true, stats_to_json(datapath.snapshot())};
            if (command == "dump-flows" || command.starts_with("dump-flows ")) {
                const std::string arg = command.size() > 10 ? command.substr(11) : std::string();
                int table = -1;
                if (!arg.empty()) {
                    char* end = nullptr;
                    const long t = std::strtol(arg.c_str(), &end, 10);
                    if (*end != 0 || t < 0 || t > 253) {
                        return {false, "dump-flows: expected a table 0-253, found '" + arg + "'\n"};
                    }
                    table = static_cast<int>(t);
                }
                return {true, datapath.dump_flows(table)};
            }
            if (command == "exit") {
                cause = StopCause::ctl;
                return {true, "stopping\n"};
            }
            if (std::optional<CtlReply> reply = datapath.control(command, body)) return *reply;
            return {false, "unknown command '" + command + "' (flowpath-ctl --help lists them)\n"};
        };
        // Each round returns within 10 ms whatever the clients do, so every
        // stop condition is seen within about 10 ms.
        while (cause == StopCause::none) {
            ctl.poll(10, handler);
            const auto now = Clock::now();
            if (g_stop_signal) cause = StopCause::signal;
            if (config.duration_s > 0 && now - started >= std::chrono::duration<double>(config.duration_s)) {
                cause = StopCause::duration;
            }
            if (config.exit_when_idle_ms) {
                const uint64_t rx = datapath.total_rx_packets();
                if (rx != last_rx || datapath.work_in_flight()) {
                    last_rx = rx;
                    last_rx_change = now;
                } else if (now - last_rx_change >= std::chrono::milliseconds(config.exit_when_idle_ms)) {
                    cause = StopCause::idle;
                }
            }
        }
    }
    switch (cause) {
        case StopCause::signal: log(LogLevel::info, "stopping: ", signal_name(g_stop_signal)); break;
        case StopCause::duration: log(LogLevel::info, "stopping: duration elapsed"); break;
        case StopCause::idle: log(LogLevel::info, "stopping: idle"); break;
        case StopCause::ctl: log(LogLevel::info, "stopping: flowpath-ctl exit"); break;
        case StopCause::none: break;
    }
    datapath.stop();
    return report(config, datapath.snapshot()) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace flowpath;
    // First of all: a stop asked at any moment of start-up is then a clean
    // one, seen once the datapath exists.
    install_signal_handlers();
    Config config;
    try {
        const ParsedCommandLine parsed = parse_command_line(argc, argv);
        if (parsed.help) {
            std::fputs(parsed.usage.c_str(), stdout);
            return std::fflush(stdout) == 0 ? 0 : 1;
        }
        config = parsed.config;
        set_log_level(config.log_level);
        return run(config);
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "flowpath: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "flowpath: error: %s\n", e.what());
        return 1;
    }
}
