// The start-up checks of every file and name a run uses, made before the EAL
// starts and before any device is probed: a refused start must destroy
// nothing (the pcap driver truncates a tx_pcap file when it probes), and its
// message must name the file and the reason, not the driver's EPERM.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "devargs.hpp"
#include "flowpath/ctl.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"
#include "flowpath/pcap_file.hpp"

namespace flowpath {

namespace {

namespace fs = std::filesystem;

/// A file the run reads or writes, and what it is to the run.
struct UsedFile {
    std::string path;
    std::string role;   ///< "port p0's tx_pcap", "--stats-json", ...
    bool output = false;
    // Identity: the same inode, or (for a file not there yet) the same
    // normalised path.
    bool exists = false;
    bool character_device = false;
    dev_t device = 0;
    ino_t inode = 0;
    std::string normal;

    bool same_as(const UsedFile& other) const {
        if (exists && other.exists) return device == other.device && inode == other.inode;
        return normal == other.normal;
    }
};

UsedFile used_file(const std::string& path, std::string role, bool output) {
    UsedFile file;
    file.path = path;
    file.role = std::move(role);
    file.output = output;
    struct stat info {};
    if (stat(path.c_str(), &info) == 0) {
        file.exists = true;
        file.character_device = S_ISCHR(info.st_mode);
        file.device = info.st_dev;
        file.inode = info.st_ino;
    }
    std::error_code error;
    file.normal = fs::weakly_canonical(fs::absolute(path, error), error).string();
    if (error) file.normal = path;
    return file;
}

/// The files seen so far; each new one is checked against them.
class FilePlan {
public:
    void add(UsedFile file, const std::string& place) {
        for (const UsedFile& other : files_) {
            if (!(file.output || other.output) || !file.same_as(other)) continue;
            // Several ports may write to one device such as /dev/null.
            if (file.output && other.output && file.character_device) continue;
            throw ConfigError(place + file.role + " " + file.path + " is also " + other.role +
                              (file.output && other.output ? ": two writers would corrupt it"
                                                           : ": it would be overwritten"));
        }
        files_.push_back(std::move(file));
    }

private:
    std::vector<UsedFile> files_;
};

std::string reason(int error) { return std::strerror(error); }

// An input the run reads to its end: it must be a regular file (a directory
// reads as nothing, a device such as /dev/zero never ends).
void check_regular_input(const std::string& path, const std::string& what) {
    struct stat info {};
    if (stat(path.c_str(), &info) != 0) throw ConfigError(what + path + ": " + reason(errno));
    if (S_ISDIR(info.st_mode)) throw ConfigError(what + path + ": is a directory, not a file");
    if (!S_ISREG(info.st_mode)) {
        throw ConfigError(what + path + ": not a regular file (a device or a pipe may never end)");
    }
    if (access(path.c_str(), R_OK) != 0) throw ConfigError(what + path + ": " + reason(errno));
}

// A file the run will create or overwrite: its directory must exist and
// take it, and it must not be a directory.
void check_output(const std::string& path, const std::string& what) {
    struct stat info {};
    if (stat(path.c_str(), &info) == 0) {
        if (S_ISDIR(info.st_mode)) throw ConfigError(what + path + ": is a directory");
        if (access(path.c_str(), W_OK) != 0) throw ConfigError(what + path + ": cannot write: " + reason(errno));
        return;
    }
    if (errno != ENOENT) throw ConfigError(what + path + ": " + reason(errno));
    fs::path directory = fs::path(path).parent_path();
    if (directory.empty()) directory = ".";
    if (stat(directory.c_str(), &info) != 0) {
        throw ConfigError(what + path + ": cannot create it in " + directory.string() + ": " + reason(errno));
    }
    if (!S_ISDIR(info.st_mode)) {
        throw ConfigError(what + path + ": cannot create it: " + directory.string() + " is not a directory");
    }
    if (access(directory.c_str(), W_OK) != 0) {
        throw ConfigError(what + path + ": cannot create it in " + directory.string() + ": " + reason(errno));
    }
}

// An rx_pcap: there, readable, not empty, and a capture of Ethernet frames.
void check_rx_pcap(const std::string& path, const std::string& what) {
    struct stat info {};
    if (stat(path.c_str(), &info) != 0) throw ConfigError(what + reason(errno));
    if (S_ISDIR(info.st_mode)) throw ConfigError(what + "is a directory, not a pcap file");
    if (access(path.c_str(), R_OK) != 0) throw ConfigError(what + reason(errno));
    // A pipe or a device is read by the driver only: reading its header here
    // would take bytes from the driver.
    if (!S_ISREG(info.st_mode)) return;
    if (info.st_size == 0) throw ConfigError(what + "is empty, not a pcap file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(what + reason(errno));
    const PcapScan scan = scan_pcap(in, false, 1);
    if (!scan.ok()) throw ConfigError(what + scan.error);
    if (scan.has_link_type && scan.link_type != kLinkTypeEthernet) {
        throw ConfigError(what + "its frames are of link type " + link_type_name(scan.link_type) +
                          ", not Ethernet (flowpath reads Ethernet frames only)");
    }
}

void check_ctl_socket(const Config& config) {
    const std::string what = config.place("ctl-socket") + "ctl-socket: ";
    switch (probe_ctl_socket(config.ctl_socket)) {
        case CtlSocketState::listening:
            throw ConfigError(what + "another process already listens on " + config.ctl_socket);
        case CtlSocketState::not_a_socket:
            throw ConfigError(what + config.ctl_socket + " exists and is not a socket; refusing to replace it");
        case CtlSocketState::stale: break;  // replaced once the ports are up
        case CtlSocketState::absent: check_output(config.ctl_socket, what); break;
    }
}

}  // namespace

void check_before_start(const Config& config) {
    FilePlan files;
    if (!config.config_file.empty()) {
        files.add(used_file(config.config_file, "the config file", false), "command line: ");
    }
    if (!config.rules_file.empty() && config.rules_file != "-") {
        const std::string place = config.place("rules");
        check_regular_input(config.rules_file, place + "rules: ");
        files.add(used_file(config.rules_file, "the rules file", false), place);
    }

    std::map<std::string, std::string> device_owner;  // device name -> port name
    for (const PortConfig& port : config.ports) {
        const std::string place = port.source.place();
        const std::string device = devargs_device(port.devargs);
        const auto [owner, fresh] = device_owner.emplace(device, port.name);
        if (!fresh) {
            throw ConfigError(place + "port " + port.name + ": device '" + device + "' is also port " +
                              owner->second + "'s device");
        }
        if (!is_pcap_device(device)) continue;
        for (const auto& [key, value] : devargs_pairs(port.devargs)) {
            const std::string role = "port " + port.name + "'s " + key;
            const std::string what = place + "port " + port.name + ": " + key + " " + value + ": ";
            if (key == "rx_pcap") {
                check_rx_pcap(value, what);
                files.add(used_file(value, role, false), place);
            } else if (key == "tx_pcap") {
                check_output(value, place + "port " + port.name + ": " + key + " ");
                files.add(used_file(value, role, true), place);
            }
        }
    }

    if (!config.stats_json.empty()) {
        const std::string place = config.place("stats-json");
        check_output(config.stats_json, place + "stats-json: ");
        files.add(used_file(config.stats_json, "--stats-json", true), place);
    }
    check_ctl_socket(config);
    files.add(used_file(config.ctl_socket, "--ctl-socket", true), config.place("ctl-socket"));
}

}  // namespace flowpath
