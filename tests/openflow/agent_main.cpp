// flowpath-of-testd: the OpenFlow agent over a MemoryBackend, for tests that
// drive it with ovs-ofctl or a controller. It prints "listening PORT" once
// the agent listens, expires timed-out rules every 100 ms, and takes
// commands on stdin, one a line, answering one line each:
//   receive PORT HEX   a packet arrives on PORT -> "outputs P..."
//   sent PORT          -> "sent N HEX..." (every packet sent on PORT so far)
//   link PORT up|down  -> "ok" (PORT_STATUS to the controllers)
//   stats              -> "connected N controllers N flow_mods N errors N dropped N rules N"
//   quit               -> exits 0 (so does end of input)
//
// flowpath-of-testd --ports p1,p2,... [--listen ptcp:PORT[:IP]]
//                   [--controller tcp:IP:PORT]... [--datapath-id N]
//                   [--probe-interval MS]
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "flowpath/error.hpp"
#include "flowpath/log.hpp"
#include "flowpath/openflow.hpp"

using namespace flowpath;

namespace {

std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

std::string to_hex(const std::vector<uint8_t>& bytes) {
    std::string out;
    char two[3];
    for (uint8_t b : bytes) {
        std::snprintf(two, sizeof(two), "%02x", b);
        out += two;
    }
    return out;
}

int usage() {
    std::fprintf(stderr, "usage: flowpath-of-testd --ports p1,p2,... [--listen ptcp:PORT[:IP]] "
                         "[--controller tcp:IP:PORT]... [--datapath-id N] [--probe-interval MS]\n");
    return 2;
}

std::string answer(MemoryBackend& backend, const OpenFlowAgent& agent, const std::string& line) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "receive") {
        uint32_t port = 0;
        std::string hex;
        in >> port >> hex;
        std::string out = "outputs";
        for (uint32_t p : backend.receive(port, from_hex(hex))) out += " " + std::to_string(p);
        return out;
    }
    if (command == "sent") {
        uint32_t port = 0;
        in >> port;
        const auto packets = backend.sent(port);
        std::string out = "sent " + std::to_string(packets.size());
        for (const auto& p : packets) out += " " + to_hex(p);
        return out;
    }
    if (command == "link") {
        uint32_t port = 0;
        std::string state;
        in >> port >> state;
        backend.set_link(port, state == "up");
        return "ok";
    }
    if (command == "stats") {
        const OpenFlowStats s = agent.stats();
        return "connected " + std::to_string(s.connected) + " controllers " + std::to_string(s.controllers) +
               " flow_mods " + std::to_string(s.flow_mods) +
               " errors " + std::to_string(s.errors_sent) + " dropped " + std::to_string(s.events_dropped) +
               " rules " + std::to_string(backend.rule_count());
    }
    return "error unknown command '" + command + "'";
}

}  // namespace

int main(int argc, char** argv) {
    PortNames ports;
    OpenFlowOptions options;
    options.datapath_id = 0x1;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string value = argv[++i];
        if (arg == "--ports") {
            std::stringstream list(value);
            for (std::string name; std::getline(list, name, ',');) ports.push_back(name);
        } else if (arg == "--listen") {
            options.listen = value;
        } else if (arg == "--controller") {
            options.controllers.push_back(value);
        } else if (arg == "--datapath-id") {
            options.datapath_id = std::stoull(value, nullptr, 0);
        } else if (arg == "--probe-interval") {
            options.probe_interval = std::chrono::milliseconds(std::stoul(value));
        } else {
            return usage();
        }
    }
    if (ports.empty()) return usage();
    set_log_level(LogLevel::warn);
    try {
        MemoryBackend backend(ports);
        OpenFlowAgent agent(backend, options);
        std::printf("listening %u\n", agent.listen_port());
        std::fflush(stdout);
        std::string pending;
        for (;;) {
            pollfd fd{STDIN_FILENO, POLLIN, 0};
            if (::poll(&fd, 1, 100) > 0) {
                char chunk[65536];
                const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
                if (n <= 0) return 0;
                pending.append(chunk, static_cast<size_t>(n));
                for (size_t end; (end = pending.find('\n')) != std::string::npos;) {
                    const std::string line = pending.substr(0, end);
                    pending.erase(0, end + 1);
                    if (line == "quit") return 0;
                    std::printf("%s\n", answer(backend, agent, line).c_str());
                    std::fflush(stdout);
                }
            }
            backend.expire(std::chrono::steady_clock::now());
        }
    } catch (const ConfigError& e) {
        std::fprintf(stderr, "flowpath-of-testd: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "flowpath-of-testd: %s\n", e.what());
        return 1;
    }
}
