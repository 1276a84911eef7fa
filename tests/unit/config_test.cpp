// Configuration parsing: every option from both sources, precedence, and
// every bad-input path with the place it names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "flowpath/config.hpp"
#include "flowpath/error.hpp"
#include "flowpath/io.hpp"

using namespace flowpath;

namespace {

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("flowpath_config_test_" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::string write_file(const std::string& text) {
        const std::string path = (dir_ / "flowpath.conf").string();
        std::ofstream(path) << text;
        return path;
    }

    static ParsedCommandLine parse(std::vector<std::string> args) {
        args.insert(args.begin(), "flowpath");
        std::vector<const char*> argv;
        for (const std::string& a : args) argv.push_back(a.c_str());
        return parse_command_line(static_cast<int>(argv.size()), argv.data());
    }

    // The message of the ConfigError that parsing `args` throws.
    static std::string error_of(std::vector<std::string> args) {
        try {
            parse(std::move(args));
        } catch (const ConfigError& e) {
            return e.what();
        }
        return "no error";
    }

    std::filesystem::path dir_;
};

TEST_F(ConfigTest, DefaultsWithOnePort) {
    const Config c = parse({"--port", "p0=net_null0"}).config;
    ASSERT_EQ(c.ports.size(), 1u);
    EXPECT_EQ(c.ports[0].name, "p0");
    EXPECT_EQ(c.ports[0].devargs, "net_null0");
    EXPECT_EQ(c.pmd_cores, std::vector<unsigned>{1});
    EXPECT_EQ(c.rxq, 0u);
    EXPECT_EQ(c.mbufs, 0u);
    EXPECT_EQ(c.exit_when_idle_ms, 0u);
    EXPECT_EQ(c.duration_s, 0);
    EXPECT_EQ(c.ctl_socket, "/tmp/flowpath.ctl");
    EXPECT_EQ(c.log_level, LogLevel::info);
    EXPECT_TRUE(c.eal_args.empty());
    EXPECT_TRUE(c.rules_file.empty());
}

TEST_F(ConfigTest, EveryOptionOnTheCommandLine) {
    const Config c = parse({"--eal", "--no-huge -m 512", "--port", "a=net_pcap0,rx_pcap=x.pcap,tx_pcap=y.pcap",
                            "--port", "b=net_null0", "--rules", "r.txt", "--pmd-cores", "1-2,4", "--rxq", "2",
                            "--mbufs", "8192", "--exit-when-idle", "200", "--duration", "1.5", "--stats-json",
                            "s.json", "--ctl-socket", "/tmp/x.ctl", "--log-level", "debug"})
                         .config;
    EXPECT_EQ(c.eal_args, "--no-huge -m 512");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].devargs, "net_pcap0,rx_pcap=x.pcap,tx_pcap=y.pcap");
    EXPECT_EQ(c.ports[1].name, "b");
    EXPECT_EQ(c.rules_file, "r.txt");
    EXPECT_EQ(c.pmd_cores, (std::vector<unsigned>{1, 2, 4}));
    EXPECT_EQ(c.rxq, 2u);
    EXPECT_EQ(c.mbufs, 8192u);
    EXPECT_EQ(c.exit_when_idle_ms, 200u);
    EXPECT_DOUBLE_EQ(c.duration_s, 1.5);
    EXPECT_EQ(c.stats_json, "s.json");
    EXPECT_EQ(c.ctl_socket, "/tmp/x.ctl");
    EXPECT_EQ(c.log_level, LogLevel::debug);
}

TEST_F(ConfigTest, EveryOptionInTheFile) {
    const std::string path = write_file(
        "# comment\n\n"
        "eal = --no-huge -m 256\n"
        "port = p0=net_null0,no-rx=1\n"
        "port = p1=net_null1\n"
        "rules = -\n"
        "pmd-cores = 1,3\n"
        "rxq = 4\n"
        "mbufs = 4096\n"
        "exit-when-idle = 50\n"
        "duration = 3\n"
        "stats-json = out.json\n"
        "ctl-socket = /tmp/f.ctl\n"
        "log-level = warn\n");
    const Config c = parse({"--config", path}).config;
    EXPECT_EQ(c.config_file, path);
    EXPECT_EQ(c.eal_args, "--no-huge -m 256");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].devargs, "net_null0,no-rx=1");
    EXPECT_EQ(c.ports[0].source.file, path);
    EXPECT_EQ(c.ports[0].source.line, 4u);
    EXPECT_EQ(c.rules_file, "-");
    EXPECT_EQ(c.pmd_cores, (std::vector<unsigned>{1, 3}));
    EXPECT_EQ(c.rxq, 4u);
    EXPECT_EQ(c.mbufs, 4096u);
    EXPECT_EQ(c.exit_when_idle_ms, 50u);
    EXPECT_DOUBLE_EQ(c.duration_s, 3);
    EXPECT_EQ(c.stats_json, "out.json");
    EXPECT_EQ(c.ctl_socket, "/tmp/f.ctl");
    EXPECT_EQ(c.log_level, LogLevel::warn);
}

TEST_F(ConfigTest, CommandLineWinsOverFile) {
    const std::string path = write_file("rxq = 4\nport = p0=net_null0\nport = p1=net_null1\nlog-level = error\n");
    const Config c = parse({"--config", path, "--rxq", "2", "--port", "p1=net_null7"}).config;
    EXPECT_EQ(c.rxq, 2u);
    EXPECT_EQ(c.log_level, LogLevel::error);
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[1].devargs, "net_null7");  // replaced in place, order kept
    EXPECT_TRUE(c.ports[1].source.file.empty());
}

TEST_F(ConfigTest, RepeatedPortsAddUp) {
    const std::string path = write_file("port = p0=net_null0\n");
    const Config c = parse({"--config", path, "--port", "p1=net_null1"}).config;
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].name, "p0");
    EXPECT_EQ(c.ports[1].name, "p1");
}

TEST_F(ConfigTest, Help) {
    const ParsedCommandLine p = parse({"--help"});
    EXPECT_TRUE(p.help);
    EXPECT_NE(p.usage.find("--pmd-cores"), std::string::npos);
}

TEST_F(ConfigTest, FileErrorsNameFileAndLine) {
    struct Case {
        std::string text;
        unsigned line;
        std::string reason;
    };
    const std::vector<Case> cases = {
        {"port = p0=net_null0\nbogus = 1\n", 2, "unrecognised option"},
        {"port = p0=net_null0\n\nrxq = two\n", 3, "rxq: expected an integer"},
        {"port = p0=net_null0\nrxq = 0\n", 2, "rxq: expected an integer from 1"},
        {"port = p0=net_null0\nmbufs = 10\n", 2, "mbufs"},
        {"port = p0=net_null0\nexit-when-idle = -5\n", 2, "exit-when-idle"},
        {"port = p0=net_null0\nduration = soon\n", 2, "duration: expected a positive number"},
        {"port = p0=net_null0\nduration = 0\n", 2, "duration"},
        {"port = p0=net_null0\npmd-cores = 3-1\n", 2, "pmd-cores"},
        {"port = p0=net_null0\npmd-cores = 1,1\n", 2, "pmd-cores"},
        {"port = p0=net_null0\npmd-cores = 999\n", 2, "pmd-cores"},
        {"port = p0=net_null0\nlog-level = loud\n", 2, "log-level: expected error, warn, info or debug"},
        {"port = p0=net_null0\nport = p0=net_null1\n", 2, "duplicate port name 'p0'"},
        {"port = net_null0\n", 1, "port: expected NAME=DEVARGS"},
        {"port = 7=net_null0\n", 1, "bad port name '7'"},
        {"port = flood=net_null0\n", 1, "bad port name 'flood'"},
        {"port = p0=\n", 1, "empty DEVARGS"},
        {"port = p0=net_null0\nrxq = 1\nrxq = 2\n", 3, "given more than once"},
        {"port = p0=net_null0\n[section]\n", 2, "sections are not used"},
        {"port = p0=net_null0\njust words\n", 2, "expected 'key = value'"},
        {"port = p0=net_null0\nconfig = other.conf\n", 2, "unrecognised option"},
    };
    for (const Case& c : cases) {
        const std::string path = write_file(c.text);
        const std::string message = error_of({"--config", path});
        EXPECT_EQ(message.rfind(path + ":" + std::to_string(c.line) + ": ", 0), 0u) << c.text << " -> " << message;
        EXPECT_NE(message.find(c.reason), std::string::npos) << c.text << " -> " << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
    }
}

TEST_F(ConfigTest, CommandLineErrorsSayCommandLine) {
    struct Case {
        std::vector<std::string> args;
        std::string reason;
    };
    const std::vector<Case> cases = {
        {{"--port", "p0=net_null0", "--bogus"}, "bogus"},
        {{"--port", "p0=net_null0", "--rxq", "x"}, "rxq"},
        {{"--port", "p0=net_null0", "--dur", "1"}, "dur"},  // no abbreviations
        {{"--port", "p0=net_null0", "--port", "p0=net_null1"}, "duplicate port name"},
        {{"--rxq", "2"}, "no port"},
        {{"--port", "p0=net_null0", "positional"}, "positional"},
        {{"--port", "p0=net_null0", "--ctl-socket", std::string(200, 'x')}, "ctl-socket"},
    };
    for (const Case& c : cases) {
        const std::string message = error_of(c.args);
        EXPECT_EQ(message.rfind("command line: ", 0), 0u) << message;
        EXPECT_NE(message.find(c.reason), std::string::npos) << message;
    }
}

TEST_F(ConfigTest, MissingConfigFile) {
    const std::string path = (dir_ / "absent.conf").string();
    const std::string message = error_of({"--config", path});
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find("cannot open"), std::string::npos);
}

TEST(LcoreList, Forms) {
    std::vector<unsigned> l;
    ASSERT_TRUE(parse_lcore_list("1", l));
    EXPECT_EQ(l, std::vector<unsigned>{1});
    ASSERT_TRUE(parse_lcore_list("1-3", l));
    EXPECT_EQ(l, (std::vector<unsigned>{1, 2, 3}));
    ASSERT_TRUE(parse_lcore_list("3,1", l));
    EXPECT_EQ(l, (std::vector<unsigned>{1, 3}));
    EXPECT_FALSE(parse_lcore_list("", l));
    EXPECT_FALSE(parse_lcore_list("a", l));
    EXPECT_FALSE(parse_lcore_list("1-", l));
    EXPECT_FALSE(parse_lcore_list("1,,2", l));
}

TEST(EalArguments, DefaultCoversMainAndWorkers) {
    Config c;
    c.pmd_cores = {1, 2};
    const LcorePlan plan = plan_lcores(c);
    EXPECT_EQ(plan.main_lcore, 0u);
    const std::vector<std::string> args = eal_arguments(c, plan);
    ASSERT_GE(args.size(), 6u);
    EXPECT_EQ(args[1], "--no-huge");
    EXPECT_NE(std::find(args.begin(), args.end(), "--no-shconf"), args.end());
    EXPECT_NE(std::find(args.begin(), args.end(), "--no-pci"), args.end());
    EXPECT_EQ(args[args.size() - 2].rfind("--lcores=0@", 0), 0u);
    EXPECT_NE(args[args.size() - 2].find(",1@"), std::string::npos);
    EXPECT_NE(args[args.size() - 2].find(",2@"), std::string::npos);
    EXPECT_EQ(args.back(), "--main-lcore=0");
}

TEST(EalArguments, MainLcoreAvoidsWorkers) {
    Config c;
    c.pmd_cores = {0, 1};
    EXPECT_EQ(plan_lcores(c).main_lcore, 2u);
}

TEST(EalArguments, UserLcoreListKept) {
    Config c;
    c.eal_args = "--no-huge -l 0-3 --vdev 'net_null0,a=b c'";
    const std::vector<std::string> args = eal_arguments(c, plan_lcores(c));
    EXPECT_EQ(args, (std::vector<std::string>{"flowpath", "--no-huge", "-l", "0-3", "--vdev", "net_null0,a=b c"}));
}

}  // namespace

TEST_F(ConfigTest, SlowPathOperationsOpenFlowAndConntrackOptions) {
    const Config d = parse({"--port", "p0=net_null0"}).config;
    EXPECT_TRUE(d.slow_path_cores.empty());
    EXPECT_EQ(d.flow_limit, 200000u);
    EXPECT_EQ(d.max_idle_ms, 10000u);
    EXPECT_EQ(d.tx_flush_interval_us, 0u);
    EXPECT_EQ(d.mtu, 1500u);
    EXPECT_FALSE(d.datapath_id.has_value());

    const std::string file = write_file("controller = tcp:127.0.0.1:6653\nct-timeout-tcp-established = 60\n");
    const Config c = parse({"--config", file, "--port", "p0=net_null0", "--slow-path-cores", "0,2", "--flow-limit",
                            "1000", "--max-idle", "500", "--tx-flush-interval", "50", "--mtu", "9000",
                            "--metrics-listen", "127.0.0.1:9100", "--controller", "tcp:127.0.0.1:6654",
                            "--openflow-listen", "ptcp:6653", "--datapath-id", "0x1f", "--ct-max-connections",
                            "5000", "--ct-timeout-udp-first", "7"})
                         .config;
    EXPECT_EQ(c.slow_path_cores, (std::vector<unsigned>{0, 2}));
    EXPECT_EQ(c.flow_limit, 1000u);
    EXPECT_EQ(c.max_idle_ms, 500u);
    EXPECT_EQ(c.tx_flush_interval_us, 50u);
    EXPECT_EQ(c.mtu, 9000u);
    EXPECT_EQ(c.metrics_listen, "127.0.0.1:9100");
    EXPECT_EQ(c.controllers, (std::vector<std::string>{"tcp:127.0.0.1:6653", "tcp:127.0.0.1:6654"}));
    EXPECT_EQ(c.openflow_listen, "ptcp:6653");
    EXPECT_EQ(c.datapath_id, 0x1fu);
    EXPECT_EQ(c.ct_max_connections, 5000u);
    const std::vector<std::pair<std::string, uint32_t>> timeouts{{"tcp-established", 60}, {"udp-first", 7}};
    EXPECT_EQ(c.ct_timeouts, timeouts);

    EXPECT_EQ(error_of({"--port", "p0=x", "--flow-limit", "0"}),
              "command line: flow-limit: expected an integer from 1 to 100000000, found '0'");
    EXPECT_EQ(error_of({"--port", "p0=x", "--datapath-id", "0xzz"}),
              "command line: datapath-id: expected a 64-bit number (hex 0x... or decimal), found '0xzz'");
    EXPECT_EQ(error_of({"--port", "p0=x", "--controller", "1.2.3.4:6653"}),
              "command line: controller: expected tcp:IP:PORT, found '1.2.3.4:6653'");
    EXPECT_NE(error_of({"--port", "p0=x", "--ct-timeout-bogus", "3"}).find("ct-timeout-bogus"), std::string::npos);
}

TEST_F(ConfigTest, CacheSizes) {
    const Config d = parse({"--port", "p0=net_null0"}).config;
    EXPECT_EQ(d.exact_cache_entries, 8192u);
    EXPECT_EQ(d.signature_cache_entries, 1u << 20);

    const std::string file = write_file("signature-cache-entries = 0\n");
    const Config c = parse({"--config", file, "--port", "p0=net_null0", "--exact-cache-entries", "65536"}).config;
    EXPECT_EQ(c.exact_cache_entries, 65536u);
    EXPECT_EQ(c.signature_cache_entries, 0u);

    EXPECT_EQ(error_of({"--port", "p0=x", "--exact-cache-entries", "1"}),
              "command line: exact-cache-entries: expected an integer from 2 to 4194304, found '1'");
    EXPECT_EQ(error_of({"--port", "p0=x", "--signature-cache-entries", "67108865"}),
              "command line: signature-cache-entries: expected an integer from 0 to 67108864, found '67108865'");
}

TEST_F(ConfigTest, ByteOrderMarkSkipped) {
    const std::string path = write_file("\xEF\xBB\xBFrxq = 2\nport = p0=net_null0\n");
    EXPECT_EQ(parse({"--config", path}).config.rxq, 2u);
}

TEST_F(ConfigTest, ConfigMustNameARegularFile) {
    EXPECT_EQ(error_of({"--config", ""}), "command line: config: expected a file name, found ''");
    const std::string directory = dir_.string();
    EXPECT_EQ(error_of({"--config", directory}), directory + ": cannot open config file: it is a directory");
    EXPECT_EQ(error_of({"--config", "/dev/zero"}), "/dev/zero: cannot open config file: not a regular file");
    const std::string absent = (dir_ / "absent.conf").string();
    EXPECT_EQ(error_of({"--config", absent}), absent + ": cannot open config file: No such file or directory");
}

TEST_F(ConfigTest, EachOptionKnowsWhereItWasGiven) {
    const std::string path = write_file("port = p0=net_null0\neal = --no-huge\npmd-cores = 1\n");
    const Config c = parse({"--config", path, "--pmd-cores", "2"}).config;
    EXPECT_EQ(c.place("eal"), path + ":2: ");
    EXPECT_EQ(c.place("pmd-cores"), "command line: ");  // the command line wins
    EXPECT_EQ(c.place("rxq"), "command line: ");        // not given
}

TEST_F(ConfigTest, PmdCoresBeyondWhatTheMachineOffers) {
    const std::string path = write_file("port = p0=net_null0\npmd-cores = 0-127\n");
    Config c = parse({"--config", path}).config;
    try {
        plan_lcores(c, {0, 1});
        FAIL() << "0-127 leaves no main lcore";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path + ":2: pmd-cores: ", 0), 0u) << e.what();
        EXPECT_NE(std::string(e.what()).find("main thread"), std::string::npos) << e.what();
    }
    c = parse({"--port", "p0=net_null0", "--pmd-cores", "1-3"}).config;
    try {
        plan_lcores(c, {0, 1});
        FAIL() << "3 workers on 2 CPUs";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("command line: pmd-cores: 3 workers", 0), 0u) << e.what();
    }
    EXPECT_EQ(plan_lcores(c, {0, 1, 2, 3}).main_lcore, 0u);
    c.pmd_cores = {1, 2};
    EXPECT_EQ(plan_lcores(c, {0, 1}).main_lcore, 0u);  // the main thread shares a CPU: it mostly sleeps
    // With --eal's own lcore map, the EAL judges.
    c.pmd_cores = {1, 2, 3};
    c.eal_args = "--no-huge --lcores=0@0,1@1,2@1,3@1";
    EXPECT_EQ(plan_lcores(c, {0, 1}).worker_lcores.size(), 3u);
}

// --mtu N is every port's MTU, --mtu NAME=N one port's; each follows the
// single-value rule (the command line wins over the file, a source gives
// it once), and NAME must be a port.
TEST_F(ConfigTest, PerPortMtu) {
    const Config d = parse({"--port", "p0=net_null0", "--port", "p1=net_null1"}).config;
    EXPECT_EQ(d.ports[0].mtu, 1500u);
    EXPECT_EQ(d.ports[1].mtu, 1500u);
    EXPECT_EQ(d.mbuf_size, 0u);

    const Config c = parse({"--port", "p0=net_null0", "--port", "p1=net_null1", "--port", "p2=net_null2", "--mtu",
                            "p1=9000", "--mtu", "4000", "--mtu", "p2 = 1400", "--mbuf-size", "2048"})
                         .config;
    EXPECT_EQ(c.mtu, 4000u);
    EXPECT_EQ(c.ports[0].mtu, 4000u);
    EXPECT_EQ(c.ports[1].mtu, 9000u);
    EXPECT_EQ(c.ports[2].mtu, 1400u);
    EXPECT_EQ(c.mbuf_size, 2048u);

    // The file's, then the command line's: per port, the command line wins.
    const std::string file = write_file("port = p0=net_null0\nport = p1=net_null1\nmtu = 9000\nmtu = p0=2000\n");
    const Config f = parse({"--config", file, "--mtu", "p0=3000"}).config;
    EXPECT_EQ(f.ports[0].mtu, 3000u);
    EXPECT_EQ(f.ports[0].mtu_source.place(), "command line: ");
    EXPECT_EQ(f.ports[1].mtu, 9000u);
    EXPECT_EQ(f.ports[1].mtu_source.place(), file + ":3: ");
    const Config g = parse({"--config", file, "--mtu", "1500"}).config;
    EXPECT_EQ(g.ports[0].mtu, 2000u);  // a port's own MTU beats every port's
    EXPECT_EQ(g.ports[1].mtu, 1500u);

    EXPECT_EQ(error_of({"--port", "p0=x", "--mtu", "p9=9000"}),
              "command line: mtu: no port named 'p9' (expected N or NAME=N)");
    EXPECT_EQ(error_of({"--port", "p0=x", "--mtu", "p0=9000", "--mtu", "p0=4000"}),
              "command line: mtu p0: given more than once");
    EXPECT_EQ(error_of({"--port", "p0=x", "--mtu", "9000", "--mtu", "4000"}), "command line: mtu: given more than once");
    EXPECT_EQ(error_of({"--port", "p0=x", "--mtu", "p0=20"}),
              "command line: mtu p0: expected an integer from 68 to 16000, found '20'");
    EXPECT_EQ(error_of({"--port", "p0=x", "--mtu", "p0="}),
              "command line: mtu p0: expected an integer from 68 to 16000, found ''");
    EXPECT_EQ(error_of({"--port", "p0=x", "--mbuf-size", "100"}),
              "command line: mbuf-size: expected an integer from 256 to 65024, found '100'");
    const std::string bad = write_file("port = p0=net_null0\nmtu = p1=9000\n");
    EXPECT_EQ(error_of({"--config", bad}), bad + ":2: mtu: no port named 'p1' (expected N or NAME=N)");
}
