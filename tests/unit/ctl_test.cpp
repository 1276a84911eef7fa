// The control socket: replies of any size, clients that stall or misbehave
// never hold the server, and the socket path is never anything but a socket.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "flowpath/ctl.hpp"
#include "flowpath/error.hpp"

using namespace flowpath;
using Clock = std::chrono::steady_clock;

namespace {

class CtlTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("flowpath_ctl_test_" + std::to_string(getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        path_ = (dir_ / "s.ctl").string();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    // A raw client: connected, and nothing sent yet.
    int connect_raw() const {
        const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0) << strerror(errno);
        return fd;
    }

    static std::string read_to_end(int fd) {
        std::string text;
        char chunk[4096];
        for (ssize_t n; (n = recv(fd, chunk, sizeof(chunk), 0)) > 0;) text.append(chunk, static_cast<size_t>(n));
        return text;
    }

    std::filesystem::path dir_;
    std::string path_;
};

// Runs a server's rounds on a thread of its own, as the management loop does.
class Serving {
public:
    Serving(CtlServer& server, CtlServer::Handler handler)
        : thread_([this, &server, handler = std::move(handler)] {
              while (!stop_.load()) server.poll(5, handler);
          }) {}
    ~Serving() {
        stop_.store(true);
        thread_.join();
    }

private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

CtlReply echo(const std::string& command, const std::string& body) {
    return {command != "fail", command + ":" + std::to_string(body.size()) + "\n"};
}

TEST_F(CtlTest, CommandAndBodyRoundTrip) {
    CtlServer server(path_);
    Serving serving(server, echo);
    const CtlReply reply = ctl_request(path_, "add-flows", std::string(100'000, 'x'));
    EXPECT_TRUE(reply.ok);
    EXPECT_EQ(reply.text, "add-flows:100000\n");
    const CtlReply failed = ctl_request(path_, "fail", "");
    EXPECT_FALSE(failed.ok);
    EXPECT_EQ(failed.text, "fail:0\n");
}

TEST_F(CtlTest, SocketIsOwnerOnlyAndRemovedAtTheEnd) {
    {
        CtlServer server(path_);
        struct stat info {};
        ASSERT_EQ(stat(path_.c_str(), &info), 0);
        EXPECT_TRUE(S_ISSOCK(info.st_mode));
        EXPECT_EQ(info.st_mode & 0777, 0600u);
    }
    EXPECT_FALSE(std::filesystem::exists(path_));
}

// A reply far beyond any fixed buffer (the old client stopped at 64 MB and
// printed "failed: Success").
TEST_F(CtlTest, HugeReplyArrivesWhole) {
    std::string big(96u << 20, 'a');
    for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
    CtlServer server(path_);
    Serving serving(server, [&](const std::string&, const std::string&) { return CtlReply{true, big}; });
    const CtlReply reply = ctl_request(path_, "dump-flows", "");
    EXPECT_TRUE(reply.ok);
    EXPECT_EQ(reply.text.size(), big.size());
    EXPECT_TRUE(reply.text == big);
}

// One round returns promptly whatever a client does: here one that sent
// half a command and waits (the old server read it for 2 s per byte).
TEST_F(CtlTest, StalledClientDoesNotHoldARound) {
    CtlServer server(path_);
    const int stalled = connect_raw();
    ASSERT_EQ(send(stalled, "sh", 2, 0), 2);
    const int idle = connect_raw();
    for (int round = 0; round < 5; ++round) {
        const auto started = Clock::now();
        server.poll(10, echo);
        EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(500));
    }
    EXPECT_EQ(server.clients(), 2u);
    close(stalled);
    close(idle);
}

// Another client is answered while one stalls and while one is slowly
// reading a large reply.
TEST_F(CtlTest, OthersServedWhileOneStallsAndOneReadsSlowly) {
    const std::string big(8u << 20, 'b');
    CtlServer server(path_);
    Serving serving(server, [&](const std::string& command, const std::string&) {
        return CtlReply{true, command == "big" ? big : "small\n"};
    });
    const int stalled = connect_raw();
    ASSERT_EQ(send(stalled, "sh", 2, 0), 2);
    const int slow = connect_raw();
    ASSERT_EQ(send(slow, "big\n", 4, 0), 4);
    shutdown(slow, SHUT_WR);
    char first[16];
    const ssize_t started = recv(slow, first, sizeof(first), MSG_WAITALL);  // the reply has begun
    ASSERT_EQ(started, static_cast<ssize_t>(sizeof(first)));
    EXPECT_EQ(std::string(first, 3), "OK\n");
    EXPECT_EQ(ctl_request(path_, "show", "").text, "small\n");
    EXPECT_EQ(read_to_end(slow).size() + sizeof(first), big.size() + 3);
    close(stalled);
    close(slow);
}

TEST_F(CtlTest, IncompleteRequestGetsAnErrorAtItsDeadline) {
    CtlLimits limits;
    limits.request_deadline = std::chrono::milliseconds(100);
    CtlServer server(path_, limits);
    Serving serving(server, echo);
    const int client = connect_raw();
    ASSERT_EQ(send(client, "show\n", 5, 0), 5);  // the write side stays open
    const std::string reply = read_to_end(client);
    EXPECT_EQ(reply.rfind("ERROR\nrequest not complete within 0.1 s", 0), 0u) << reply;
    close(client);
}

TEST_F(CtlTest, TooLargeRequestRefused) {
    CtlLimits limits;
    limits.max_request = 1000;
    CtlServer server(path_, limits);
    Serving serving(server, echo);
    const CtlReply reply = ctl_request(path_, "add-flows", std::string(100'000, 'x'));
    EXPECT_FALSE(reply.ok);
    EXPECT_NE(reply.text.find("larger than 1000 bytes"), std::string::npos) << reply.text;
}

TEST_F(CtlTest, HandlerExceptionBecomesAnError) {
    CtlServer server(path_);
    Serving serving(server, [](const std::string&, const std::string&) -> CtlReply {
        throw std::runtime_error("no such table");
    });
    const CtlReply reply = ctl_request(path_, "dump-flows 9", "");
    EXPECT_FALSE(reply.ok);
    EXPECT_EQ(reply.text, "no such table\n");
}

TEST_F(CtlTest, OnlyAStaleSocketIsReplaced) {
    {
        std::ofstream(path_) << "precious\n";
        EXPECT_EQ(probe_ctl_socket(path_), CtlSocketState::not_a_socket);
        EXPECT_THROW(CtlServer server(path_), ConfigError);
        std::ifstream in(path_);
        std::string line;
        std::getline(in, line);
        EXPECT_EQ(line, "precious");
        std::filesystem::remove(path_);
    }
    std::filesystem::create_directory(path_);
    EXPECT_THROW(CtlServer server(path_), ConfigError);
    std::filesystem::remove(path_);

    // A socket left by a process that died: replaced.
    const int dead = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(bind(dead, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    close(dead);
    EXPECT_EQ(probe_ctl_socket(path_), CtlSocketState::stale);
    CtlServer server(path_);
    EXPECT_EQ(probe_ctl_socket(path_), CtlSocketState::listening);
    EXPECT_THROW(CtlServer second(path_), ConfigError);
}

TEST_F(CtlTest, LeavesAFileThatReplacedItsSocket) {
    {
        CtlServer server(path_);
        std::filesystem::remove(path_);
        std::ofstream(path_) << "someone else's\n";
    }
    EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(CtlTest, ClientNamesTheRealCause) {
    try {
        ctl_request(path_, "show", "");
        FAIL() << "no server";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
    }
    // A server that closes without a word.
    const int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(listen(listener, 1), 0);
    std::thread mute([&] {
        const int client = accept(listener, nullptr, nullptr);
        read_to_end(client);
        close(client);
    });
    try {
        ctl_request(path_, "show", "");
        FAIL() << "no reply";
    } catch (const std::runtime_error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("closed the connection without a reply"), std::string::npos) << message;
        EXPECT_EQ(message.find("Success"), std::string::npos) << message;
    }
    mute.join();
    close(listener);
}

}  // namespace
