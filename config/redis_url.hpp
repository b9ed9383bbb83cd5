// --pubsub-redis: where the Redis that carries publications between servers is, parsed
// once so that a typo stops start-up (config/loader.cpp) and the relay
// (server/pubsub_redis.*) connects to exactly what was validated. A pure function: the
// forms are the ones redis-cli and the Redis client libraries accept, minus TLS.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace narwhal::config {

struct RedisUrl {
    // TCP (redis://) when `path` is empty, else a UNIX socket (unix://).
    std::string host;  // a name or an address; IPv6 without its brackets
    int port = 6379;   // Redis's own default
    std::string path;
    // AUTH after connecting when `password` is set (with `user`, Redis 6's ACL form).
    std::string user;
    std::string password;
    // SELECT after connecting; pub/sub channels are not per database, but a URL copied
    // from another client's configuration may name one.
    std::optional<int> db;

    bool unix_socket() const { return !path.empty(); }
};

// redis://[[user]:password@]host[:port][/db] or unix:///path (percent escapes in the
// user and the password are decoded). nullopt with `error` set to what is wrong.
std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string& error);

// The URL without its password, for log lines: "redis://:***@host:6379/0".
std::string display_redis_url(const RedisUrl& url);

}  // namespace narwhal::config
