// flowpath: parse the configuration, build the datapath, serve the control
// socket until a stop is asked for, then stop cleanly and report.
//
// Exit status: 0 after a clean stop, 2 for bad configuration (before any port
// starts), 1 for any other failure.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "flowpath/config.hpp"
#include "flowpath/ctl.hpp"
#include "flowpath/datapath.hpp"
#include "flowpath/error.hpp"
#include "flowpath/log.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Set by the signal handler; a signal handler can reach nothing else.
volatile sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int signal) { g_stop_signal = signal; }

void install_signal_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

void write_stats_file(const std::string& path, const std::string& json) {
    std::ofstream out(path, std::ios::trunc);
    out << json;
    if (!out) flowpath::log(flowpath::LogLevel::error, "cannot write statistics to ", path);
}

/// Why the run ends.
enum class StopCause { none, signal, duration, idle, ctl };

int run(const flowpath::Config& config) {
    using namespace flowpath;
    Datapath datapath(config);
    // The socket appears only once the configuration, the rules and every
    // port passed their checks, and before any worker runs (the benchmark
    // relies on that to stop flowpath before the first packet).
    CtlServer ctl(config.ctl_socket);
    install_signal_handlers();
    datapath.start();
    log(LogLevel::info, "running; control socket ", config.ctl_socket);

    StopCause cause = StopCause::none;
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
                if (*end != 0 || t < 0 || t > 253) return {false, "dump-flows: expected a table 0-253, found '" + arg + "'\n"};
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
    static const char* const kCauseText[] = {"", "signal", "duration elapsed", "idle", "flowpath-ctl exit"};
    log(LogLevel::info, "stopping: ", kCauseText[static_cast<int>(cause)]);
    datapath.stop();
    const StatsSnapshot stats = datapath.snapshot();
    if (!config.stats_json.empty()) write_stats_file(config.stats_json, stats_to_json(stats));
    std::fputs(stats_to_text(stats).c_str(), stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace flowpath;
    Config config;
    try {
        const ParsedCommandLine parsed = parse_command_line(argc, argv);
        if (parsed.help) {
            std::fputs(parsed.usage.c_str(), stdout);
            return 0;
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
