// EAL start-up and the packet pool.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sched.h>

#include <algorithm>
#include <cstring>

#include "flowpath/error.hpp"
#include "flowpath/io.hpp"
#include "flowpath/log.hpp"

namespace flowpath {

namespace {
// The contract's default EAL arguments: no hugepages, no shared config (so
// several processes run side by side), no PCI scan.
constexpr const char* kDefaultEal = "--no-huge --no-shconf -m 1024 --no-pci";

bool names_lcores(const std::vector<std::string>& words) {
    return std::any_of(words.begin(), words.end(), [](const std::string& w) {
        return w.starts_with("-l") || w.starts_with("-c") || w.starts_with("--lcores");
    });
}

}  // namespace

std::vector<unsigned> allowed_cpus() {
    std::vector<unsigned> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
        }
    }
    if (cpus.empty()) cpus.push_back(0);
    return cpus;
}

LcorePlan plan_lcores(const Config& config, const std::vector<unsigned>& cpus) {
    LcorePlan plan;
    plan.worker_lcores = config.pmd_cores;
    while (std::find(plan.worker_lcores.begin(), plan.worker_lcores.end(), plan.main_lcore) !=
           plan.worker_lcores.end()) {
        ++plan.main_lcore;
    }
    // With --eal's own lcore map the EAL judges it; with ours, the limits
    // are known here, before the EAL starts.
    if (names_lcores(split_words(config.eal_args))) return plan;
    const std::string what = config.place("pmd-cores") + "pmd-cores: ";
    if (plan.main_lcore >= RTE_MAX_LCORE) {
        throw ConfigError(what + "lcores 0 to " + std::to_string(plan.main_lcore - 1) +
                          " leave no lcore below " + std::to_string(RTE_MAX_LCORE) +
                          " for the main thread; leave one free");
    }
    if (plan.worker_lcores.size() > cpus.size()) {
        throw ConfigError(what + std::to_string(plan.worker_lcores.size()) + " workers, but this process may run on " +
                          std::to_string(cpus.size()) + " CPU" + (cpus.size() == 1 ? "" : "s") +
                          ": give at most " + std::to_string(cpus.size()) +
                          " (or map lcores to CPUs yourself with --eal '... --lcores ...')");
    }
    return plan;
}

std::vector<std::string> split_words(const std::string& text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (char c : text) {
        if (quote) {
            if (c == quote) quote = 0;
            else word += c;
        } else if (c == '"' || c == '\'') {
            quote = c;
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(word);
            word.clear();
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (in_word) words.push_back(word);
    return words;
}

std::vector<std::string> eal_arguments(const Config& config, const LcorePlan& plan) {
    std::vector<std::string> args{"flowpath"};
    const std::vector<std::string> words = split_words(config.eal_args.empty() ? kDefaultEal : config.eal_args);
    args.insert(args.end(), words.begin(), words.end());
    if (!names_lcores(words)) {
        // Lcore ids map onto the CPUs we may use; more lcores than CPUs share
        // them (a test set-up, not a fast one: logged at start-up).
        const std::vector<unsigned> cpus = allowed_cpus();
        std::vector<unsigned> lcores = plan.worker_lcores;
        lcores.push_back(plan.main_lcore);
        std::sort(lcores.begin(), lcores.end());
        std::string list;
        for (unsigned lcore : lcores) {
            const unsigned cpu = lcore < cpus.size() ? cpus[lcore] : cpus[lcore % cpus.size()];
            if (!list.empty()) list += ',';
            list += std::to_string(lcore) + "@" + std::to_string(cpu);
        }
        args.push_back("--lcores=" + list);
        args.push_back("--main-lcore=" + std::to_string(plan.main_lcore));
    }
    return args;
}

Eal::Eal(const std::vector<std::string>& args, const std::string& place) {
    std::vector<char*> argv;
    std::vector<std::string> storage = args;  // rte_eal_init may permute argv
    for (std::string& arg : storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::string joined;
    for (const std::string& arg : args) joined += " " + arg;
    log(LogLevel::debug, "EAL arguments:", joined);
    if (rte_eal_init(static_cast<int>(argv.size() - 1), argv.data()) < 0) {
        throw ConfigError(place + "eal: DPDK EAL failed to start with '" + joined.substr(1) +
                          "': " + rte_strerror(rte_errno));
    }
}

Eal::~Eal() { rte_eal_cleanup(); }

PacketPool::PacketPool(const std::string& name, unsigned count, uint32_t frame_room, int socket)
    : count_(count) {
    pool_ = rte_pktmbuf_pool_create(name.c_str(), count, 256, 0,
                                    static_cast<uint16_t>(RTE_PKTMBUF_HEADROOM + frame_room), socket);
    if (!pool_) {
        throw Error("cannot create packet pool of " + std::to_string(count) + " mbufs of " +
                    std::to_string(frame_room) + " bytes: " + rte_strerror(rte_errno) +
                    " (more memory with --eal '... -m MB', or fewer with --mbufs or a smaller --mtu)");
    }
}

PacketPool::~PacketPool() { rte_mempool_free(pool_); }

}  // namespace flowpath
