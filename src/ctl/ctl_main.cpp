// flowpath-ctl: sends one command to a running flowpath and prints the reply.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "flowpath/ctl.hpp"

namespace {
constexpr const char* kUsage =
    "usage: flowpath-ctl [--socket PATH] COMMAND [ARGS]\n"
    "commands:\n"
    "  show                  ports with counters, workers and their rx queues\n"
    "  dump-flows [TABLE]    rules with packet and byte counters\n"
    "  add-flow RULE         add a rule while traffic flows\n"
    "  add-flows FILE        add the rules of FILE\n"
    "  del-flows [--strict] [MATCH]  delete rules (all, or those matching MATCH)\n"
    "  mod-flows RULE        give the rules RULE's match selects its actions\n"
    "  replace-flows FILE    make the rules exactly those of FILE, atomically\n"
    "  dump-cache [WORKER]   installed megaflows: match, mask, counters, age, actions\n"
    "  pmd-stats             per-worker packets, cache hits, misses, cycles per packet\n"
    "  ct-dump [zone=N]      tracked connections (all, or those of zone N)\n"
    "  ct-flush [zone=N]     remove tracked connections (all, or those of zone N)\n"
    "  stats-json            the statistics object\n"
    "  exit                  stop flowpath cleanly\n";
}  // namespace

int main(int argc, char** argv) {
    std::string socket = flowpath::kDefaultCtlSocket;
    int first = 1;
    while (first < argc && argv[first][0] == '-') {
        const std::string option = argv[first];
        if (option == "--help" || option == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (option == "--socket" && first + 1 < argc) {
            socket = argv[first + 1];
            first += 2;
        } else if (option.starts_with("--socket=")) {
            socket = option.substr(std::strlen("--socket="));
            first += 1;
        } else {
            std::fprintf(stderr, "flowpath-ctl: unknown option '%s'\n%s", option.c_str(), kUsage);
            return 2;
        }
    }
    if (first >= argc) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    std::string command = argv[first];
    for (int i = first + 1; i < argc; ++i) command += std::string(" ") + argv[i];

    // add-flows and replace-flows read the file here, so that its path is the caller's.
    std::string body;
    const std::string verb = argv[first];
    if (verb == "add-flows" || verb == "replace-flows") {
        if (first + 2 != argc) {
            std::fprintf(stderr, "flowpath-ctl: %s takes one FILE\n", verb.c_str());
            return 2;
        }
        std::ifstream in(argv[first + 1]);
        if (!in) {
            std::fprintf(stderr, "flowpath-ctl: cannot read %s: %s\n", argv[first + 1], std::strerror(errno));
            return 1;
        }
        std::ostringstream text;
        text << in.rdbuf();
        body = text.str();
    }

    try {
        const flowpath::CtlReply reply = flowpath::ctl_request(socket, command, body);
        FILE* out = reply.ok ? stdout : stderr;
        if (std::fwrite(reply.text.data(), 1, reply.text.size(), out) != reply.text.size() || std::fflush(out) != 0) {
            std::fprintf(stderr, "flowpath-ctl: cannot print the reply: %s\n", std::strerror(errno));
            return 1;
        }
        return reply.ok ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "flowpath-ctl: %s\n", e.what());
        return 1;
    }
}
