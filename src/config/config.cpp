// Configuration parsing. Boost.Program_options recognises options and reads
// both syntaxes; every value is kept as text with the place it came from and
// validated here, so that each error names the file and line it is about.
#include "flowpath/config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "flowpath/error.hpp"

namespace po = boost::program_options;

namespace flowpath {

std::string ConfigSource::place() const { return config_place(file, line); }

std::string Config::place(const std::string& option) const {
    const auto it = sources.find(option);
    return it == sources.end() ? ConfigSource{}.place() : it->second.place();
}

namespace {

constexpr unsigned kMaxLcore = 127;        // DPDK's default RTE_MAX_LCORE - 1
constexpr unsigned kMaxQueues = 1024;
constexpr unsigned kMaxMbufs = 1u << 26;
constexpr uint32_t kMinMtu = 68;     // IPv4's minimum
constexpr uint32_t kMaxMtu = 16000;  // a frame of it fits net_pcap's 16128-byte snapshot
// An mbuf's data room is 16 bits, less the headroom (128); a first segment
// must hold a frame's headers (kChainedHeaderWindow past L3 and L4).
constexpr uint32_t kMinMbufSize = 256;
constexpr uint32_t kMaxMbufSize = 65024;

/// One occurrence of an option: its text and where it was given.
struct RawValue {
    std::string text;
    ConfigSource source;
};
using RawOptions = std::map<std::string, std::vector<RawValue>>;

// Options valid in both the file and on the command line.
po::options_description shared_options() {
    po::options_description desc("Options");
    desc.add_options()
        ("eal", po::value<std::string>(), "DPDK EAL arguments, one string, replacing the default")
        ("port", po::value<std::vector<std::string>>(), "NAME=DEVARGS: one port (repeatable)")
        ("rules", po::value<std::string>(), "rule file, '-' for none")
        ("pmd-cores", po::value<std::string>(), "lcores of the poll-mode workers (1, 1-3, 1,3)")
        ("rxq", po::value<std::string>(), "rx queues per port")
        ("mbufs", po::value<std::string>(), "mbufs in each packet pool")
        ("exit-when-idle", po::value<std::string>(), "exit once idle for MS milliseconds")
        ("duration", po::value<std::string>(), "exit after SEC seconds")
        ("stats-json", po::value<std::string>(), "write final statistics to FILE")
        ("ctl-socket", po::value<std::string>(), "Unix socket for flowpath-ctl")
        ("log-level", po::value<std::string>(), "error, warn, info or debug")
        ("slow-path-cores", po::value<std::string>(), "CPUs of the slow-path threads, one each (default: the main lcore's)")
        ("flow-limit", po::value<std::string>(), "megaflows per worker (default 200000)")
        ("exact-cache-entries", po::value<std::string>(), "exact-match cache entries per worker (default 8192)")
        ("signature-cache-entries", po::value<std::string>(),
         "signature cache entries per worker, 0: off (default 1048576: 8 MiB)")
        ("max-idle", po::value<std::string>(), "a megaflow unused for MS milliseconds expires (default 10000)")
        ("tx-flush-interval", po::value<std::string>(), "longest a packet waits in a tx buffer, in microseconds (default 0)")
        ("mtu", po::value<std::string>(), "N: largest frame forwarded (L2 payload, as a port MTU; default 1500); "
                                          "NAME=N: that port's (repeatable)")
        ("mbuf-size", po::value<std::string>(), "packet bytes per mbuf; longer frames arrive in chains "
                                                "(default: a whole frame of the largest MTU)")
        ("metrics-listen", po::value<std::string>(), "ADDR:PORT: serve Prometheus metrics at /metrics")
        ("controller", po::value<std::vector<std::string>>(), "tcp:IP:PORT: an OpenFlow 1.3 controller (repeatable)")
        ("openflow-listen", po::value<std::string>(), "ptcp:PORT[:IP]: accept OpenFlow 1.3 connections")
        ("datapath-id", po::value<std::string>(), "OpenFlow datapath id (hex 0x... or decimal)")
        ("ct-max-connections", po::value<std::string>(), "most tracked connections");
    for (const char* name : kCtTimeoutClasses) {
        const std::string key = std::string("ct-timeout-") + name;  // copied by add_options
        desc.add_options()(key.c_str(), po::value<std::string>(), "timeout of this class, in seconds");
    }
    return desc;
}

void collect(const po::parsed_options& parsed, const ConfigSource& source, RawOptions& out) {
    for (const po::basic_option<char>& option : parsed.options) {
        if (option.unregistered || option.string_key.empty()) {
            const std::string what = option.string_key.empty() && !option.original_tokens.empty()
                                         ? option.original_tokens.front()
                                         : option.string_key;
            throw ConfigError(source.place() + "unrecognised option '" + what + "'");
        }
        if (option.value.empty()) out[option.string_key].push_back({"", source});  // a flag: --help
        for (const std::string& value : option.value) out[option.string_key].push_back({value, source});
    }
}

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string::npos) return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

// Reads the INI file one line at a time so that every error knows its line.
RawOptions read_config_file(const std::string& path, const po::options_description& desc) {
    if (path.empty()) throw ConfigError("command line: config: expected a file name, found ''");
    // A directory opens and reads as empty, a device may never end: only a
    // regular file (or a link to one) is a config file.
    std::error_code error;
    const std::filesystem::file_status status = std::filesystem::status(path, error);
    if (error) throw ConfigError(path + ": cannot open config file: " + error.message());
    if (std::filesystem::is_directory(status)) throw ConfigError(path + ": cannot open config file: it is a directory");
    if (!std::filesystem::is_regular_file(status)) {
        throw ConfigError(path + ": cannot open config file: not a regular file");
    }
    std::ifstream in(path);
    if (!in) throw ConfigError(path + ": cannot open config file: " + std::strerror(errno));
    RawOptions raw;
    std::string line;
    for (unsigned number = 1; std::getline(in, line); ++number) {
        // Editors on some systems start a UTF-8 file with a byte-order mark.
        if (number == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
        const std::string text = trim(line);
        if (text.empty() || text[0] == '#' || text[0] == ';') continue;
        const ConfigSource source{path, number};
        if (text[0] == '[') throw ConfigError(source.place() + "sections are not used; write 'key = value' lines");
        if (text.find('=') == std::string::npos) throw ConfigError(source.place() + "expected 'key = value', found '" + text + "'");
        std::istringstream one_line(text);
        try {
            collect(po::parse_config_file(one_line, desc, false), source, raw);
        } catch (const po::error& e) {
            throw ConfigError(source.place() + e.what());
        }
    }
    if (in.bad()) throw ConfigError(path + ": cannot read config file");
    return raw;
}

template <class Int>
Int parse_int(const RawValue& value, const char* option, Int min, Int max) {
    Int result{};
    const std::string& text = value.text;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), result);
    if (ec != std::errc() || end != text.data() + text.size() || result < min || result > max) {
        throw ConfigError(value.source.place() + option + ": expected an integer from " + std::to_string(min) +
                          " to " + std::to_string(max) + ", found '" + text + "'");
    }
    return result;
}

bool is_valid_port_name(const std::string& name) {
    if (name.empty() || name.size() > 32) return false;
    const bool all_digits = std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (all_digits) return false;  // a number in a rule means the N-th port
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.';
    });
}

// Names the rule language gives a meaning of its own.
bool is_reserved_port_name(const std::string& name) {
    static const std::set<std::string> reserved = {"in_port", "flood", "all", "drop", "local", "controller",
                                                   "normal", "any", "none", "table"};
    return reserved.contains(name);
}

PortConfig parse_port(const RawValue& value) {
    const auto eq = value.text.find('=');
    if (eq == std::string::npos) {
        throw ConfigError(value.source.place() + "port: expected NAME=DEVARGS, found '" + value.text + "'");
    }
    PortConfig port;
    port.name = trim(value.text.substr(0, eq));
    port.devargs = trim(value.text.substr(eq + 1));
    port.source = value.source;
    if (!is_valid_port_name(port.name) || is_reserved_port_name(port.name)) {
        throw ConfigError(value.source.place() + "port: bad port name '" + port.name +
                          "' (letters, digits, '_', '-', '.'; not a number nor a reserved word)");
    }
    if (port.devargs.empty()) throw ConfigError(value.source.place() + "port " + port.name + ": empty DEVARGS");
    return port;
}

// Ports: the file's, then the command line's; a command-line port replaces a
// file port of the same name (the command line wins), but one source naming
// a port twice is an error.
std::vector<PortConfig> merge_ports(const std::vector<RawValue>& values) {
    std::vector<PortConfig> ports;
    for (const RawValue& value : values) {
        PortConfig port = parse_port(value);
        auto same = std::find_if(ports.begin(), ports.end(), [&](const PortConfig& p) { return p.name == port.name; });
        if (same == ports.end()) {
            ports.push_back(std::move(port));
        } else if (same->source.file == port.source.file) {
            throw ConfigError(port.source.place() + "duplicate port name '" + port.name + "' (first given at " +
                              same->source.place().substr(0, same->source.place().size() - 2) + ")");
        } else {
            *same = std::move(port);
        }
    }
    return ports;
}

// The value a single-valued option takes: the last source wins (file values
// come before command-line values), but a source may give it only once.
const RawValue* single(const RawOptions& raw, const std::string& name) {
    auto it = raw.find(name);
    if (it == raw.end() || it->second.empty()) return nullptr;
    const std::vector<RawValue>& values = it->second;
    for (size_t i = 1; i < values.size(); ++i) {
        if (values[i].source.file == values[i - 1].source.file) {
            throw ConfigError(values[i].source.place() + name + ": given more than once");
        }
    }
    return &values.back();
}

// --mtu N sets every port's MTU, --mtu NAME=N one port's (a port named
// by --port, the NAME=VALUE form of --port itself). Each follows the rule of
// a single value: the command line wins over the file, and one source gives
// N once and each port's once.
void apply_mtus(const RawOptions& raw, Config& config) {
    const auto it = raw.find("mtu");
    if (it == raw.end()) {
        for (PortConfig& port : config.ports) port.mtu = config.mtu;
        return;
    }
    std::vector<RawValue> global;
    std::map<std::string, std::vector<RawValue>> per_port;
    for (const RawValue& value : it->second) {
        const auto eq = value.text.find('=');
        if (eq == std::string::npos) {
            global.push_back(value);
            continue;
        }
        const std::string name = trim(value.text.substr(0, eq));
        if (std::none_of(config.ports.begin(), config.ports.end(), [&](const PortConfig& p) { return p.name == name; })) {
            throw ConfigError(value.source.place() + "mtu: no port named '" + name + "' (expected N or NAME=N)");
        }
        per_port[name].push_back({trim(value.text.substr(eq + 1)), value.source});
    }
    ConfigSource global_source;
    const RawOptions global_only{{"mtu", global}};
    if (const RawValue* v = single(global_only, "mtu")) {
        config.mtu = parse_int<uint32_t>(*v, "mtu", kMinMtu, kMaxMtu);
        global_source = v->source;
    }
    for (PortConfig& port : config.ports) {
        port.mtu = config.mtu;
        port.mtu_source = global_source;
        const auto own = per_port.find(port.name);
        if (own == per_port.end()) continue;
        const std::string option = "mtu " + port.name;
        const RawOptions port_only{{option, own->second}};
        const RawValue* v = single(port_only, option);
        port.mtu = parse_int<uint32_t>(*v, option.c_str(), kMinMtu, kMaxMtu);
        port.mtu_source = v->source;
    }
}

Config validate(const RawOptions& raw) {
    Config config;
    for (const auto& [name, values] : raw) {
        if (!values.empty()) config.sources[name] = values.back().source;
    }
    if (const RawValue* v = single(raw, "eal")) config.eal_args = v->text;
    if (auto it = raw.find("port"); it != raw.end()) config.ports = merge_ports(it->second);
    if (const RawValue* v = single(raw, "rules")) {
        config.rules_file = v->text;
        if (config.rules_file.empty()) throw ConfigError(v->source.place() + "rules: expected a file name or '-'");
    }
    if (const RawValue* v = single(raw, "pmd-cores")) {
        if (!parse_lcore_list(v->text, config.pmd_cores)) {
            throw ConfigError(v->source.place() + "pmd-cores: expected a list of lcores from 0 to " +
                              std::to_string(kMaxLcore) + " like '1', '1-3' or '1,3', found '" + v->text + "'");
        }
    } else {
        config.pmd_cores = {kDefaultPmdCore};
    }
    if (const RawValue* v = single(raw, "rxq")) config.rxq = parse_int<unsigned>(*v, "rxq", 1, kMaxQueues);
    if (const RawValue* v = single(raw, "mbufs")) config.mbufs = parse_int<unsigned>(*v, "mbufs", 1024, kMaxMbufs);
    if (const RawValue* v = single(raw, "exit-when-idle")) {
        config.exit_when_idle_ms = parse_int<unsigned>(*v, "exit-when-idle", 1, 86'400'000);
    }
    if (const RawValue* v = single(raw, "duration")) {
        double seconds = 0;
        const auto [end, ec] = std::from_chars(v->text.data(), v->text.data() + v->text.size(), seconds);
        if (ec != std::errc() || end != v->text.data() + v->text.size() || !std::isfinite(seconds) || seconds <= 0) {
            throw ConfigError(v->source.place() + "duration: expected a positive number of seconds, found '" +
                              v->text + "'");
        }
        config.duration_s = seconds;
    }
    if (const RawValue* v = single(raw, "stats-json")) config.stats_json = v->text;
    if (const RawValue* v = single(raw, "ctl-socket")) {
        config.ctl_socket = v->text;
        if (config.ctl_socket.empty() || config.ctl_socket.size() > 107) {
            throw ConfigError(v->source.place() + "ctl-socket: expected a path of 1 to 107 characters");
        }
    }
    if (const RawValue* v = single(raw, "log-level")) {
        if (!parse_log_level(v->text, config.log_level)) {
            throw ConfigError(v->source.place() + "log-level: expected error, warn, info or debug, found '" +
                              v->text + "'");
        }
    }
    if (const RawValue* v = single(raw, "slow-path-cores")) {
        if (!parse_lcore_list(v->text, config.slow_path_cores)) {
            throw ConfigError(v->source.place() + "slow-path-cores: expected a list of CPUs from 0 to " +
                              std::to_string(kMaxLcore) + " like '0', '0-1' or '0,2', found '" + v->text + "'");
        }
    }
    if (const RawValue* v = single(raw, "flow-limit")) {
        config.flow_limit = parse_int<uint32_t>(*v, "flow-limit", 1, 100'000'000);
    }
    if (const RawValue* v = single(raw, "exact-cache-entries")) {
        config.exact_cache_entries = parse_int<uint32_t>(*v, "exact-cache-entries", 2, kMaxExactCacheEntries);
    }
    if (const RawValue* v = single(raw, "signature-cache-entries")) {
        config.signature_cache_entries =
            parse_int<uint32_t>(*v, "signature-cache-entries", 0, kMaxSignatureCacheEntries);
    }
    if (const RawValue* v = single(raw, "max-idle")) {
        config.max_idle_ms = parse_int<uint32_t>(*v, "max-idle", 1, 86'400'000);
    }
    if (const RawValue* v = single(raw, "tx-flush-interval")) {
        config.tx_flush_interval_us = parse_int<uint32_t>(*v, "tx-flush-interval", 0, 1'000'000);
    }
    apply_mtus(raw, config);
    if (const RawValue* v = single(raw, "mbuf-size")) {
        config.mbuf_size = parse_int<uint32_t>(*v, "mbuf-size", kMinMbufSize, kMaxMbufSize);
    }
    if (const RawValue* v = single(raw, "metrics-listen")) {
        config.metrics_listen = v->text;
        config.metrics_listen_source = v->source;
        if (v->text.rfind(':') == std::string::npos) {
            throw ConfigError(v->source.place() + "metrics-listen: expected ADDR:PORT, found '" + v->text + "'");
        }
    }
    if (auto it = raw.find("controller"); it != raw.end()) {
        for (const RawValue& v : it->second) {
            if (!v.text.starts_with("tcp:")) {
                throw ConfigError(v.source.place() + "controller: expected tcp:IP:PORT, found '" + v.text + "'");
            }
            config.controllers.push_back(v.text);
        }
    }
    if (const RawValue* v = single(raw, "openflow-listen")) {
        if (!v->text.starts_with("ptcp:")) {
            throw ConfigError(v->source.place() + "openflow-listen: expected ptcp:PORT[:IP], found '" + v->text + "'");
        }
        config.openflow_listen = v->text;
    }
    if (const RawValue* v = single(raw, "datapath-id")) {
        const bool hex = v->text.starts_with("0x") || v->text.starts_with("0X");
        const char* first = v->text.data() + (hex ? 2 : 0);
        const char* last = v->text.data() + v->text.size();
        uint64_t id = 0;
        const auto [end, ec] = std::from_chars(first, last, id, hex ? 16 : 10);
        if (first == last || ec != std::errc() || end != last) {
            throw ConfigError(v->source.place() + "datapath-id: expected a 64-bit number (hex 0x... or decimal), found '" +
                              v->text + "'");
        }
        config.datapath_id = id;
    }
    if (const RawValue* v = single(raw, "ct-max-connections")) {
        config.ct_max_connections = parse_int<uint32_t>(*v, "ct-max-connections", 1, 100'000'000);
    }
    for (const char* name : kCtTimeoutClasses) {
        const std::string key = std::string("ct-timeout-") + name;
        if (const RawValue* v = single(raw, key)) {
            config.ct_timeouts.emplace_back(name, parse_int<uint32_t>(*v, key.c_str(), 1, 30 * 86'400));
        }
    }
    if (config.ports.empty()) throw ConfigError("command line: no port: give at least one --port NAME=DEVARGS");
    return config;
}

}  // namespace

bool parse_lcore_list(const std::string& text, std::vector<unsigned>& lcores) {
    std::set<unsigned> result;
    std::istringstream items(text);
    std::string item;
    auto number = [](const std::string& s, unsigned& out) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && ec == std::errc() && end == s.data() + s.size() && out <= kMaxLcore;
    };
    while (std::getline(items, item, ',')) {
        item = trim(item);
        const auto dash = item.find('-');
        unsigned first = 0, last = 0;
        if (dash == std::string::npos) {
            if (!number(item, first)) return false;
            last = first;
        } else if (!number(item.substr(0, dash), first) || !number(item.substr(dash + 1), last) || last < first) {
            return false;
        }
        for (unsigned lcore = first; lcore <= last; ++lcore) {
            if (!result.insert(lcore).second) return false;  // listed twice
        }
    }
    if (result.empty()) return false;
    lcores.assign(result.begin(), result.end());
    return true;
}

ParsedCommandLine parse_command_line(int argc, const char* const argv[]) {
    po::options_description cli("flowpath [--config FILE] [OPTIONS]");
    cli.add_options()("help,h", "print this help and exit")("config", po::value<std::string>(), "INI config file");
    const po::options_description shared = shared_options();
    cli.add(shared);

    ParsedCommandLine result;
    po::parsed_options parsed(&cli);
    try {
        // No abbreviations: a typo must not silently pick another option.
        const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
        parsed = po::command_line_parser(argc, argv).options(cli).style(style).run();
    } catch (const po::error& e) {
        throw ConfigError(std::string("command line: ") + e.what());
    }
    RawOptions from_command_line;
    collect(parsed, ConfigSource{}, from_command_line);
    if (from_command_line.contains("help")) {
        std::ostringstream usage;
        usage << cli;
        result.help = true;
        result.usage = usage.str();
        return result;
    }

    RawOptions raw;
    std::string config_file;
    if (const RawValue* v = single(from_command_line, "config")) {
        config_file = v->text;
        raw = read_config_file(config_file, shared);
    }
    for (auto& [name, values] : from_command_line) {
        if (name == "config") continue;
        raw[name].insert(raw[name].end(), values.begin(), values.end());
    }
    result.config = validate(raw);
    result.config.config_file = config_file;
    return result;
}

}  // namespace flowpath
