// TLS configuration: the OpenSSL context new handshakes use, built from the --ssl-*
// settings, and the store that swaps it for a reloaded one (SIGHUP) without touching
// connections already open: each connection keeps the configuration it started with.
#pragma once

#include "asgi/events.hpp"
#include "config/settings.hpp"

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace narwhal::server {

// A message for the operator: what cannot be used and why.
struct TlsError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct TlsConfig {
    boost::asio::ssl::context context{boost::asio::ssl::context::tls_server};
    // The leaf certificate as PEM, for the `tls` extension's server_cert: made once here,
    // shared by every connection's scope.
    std::shared_ptr<const std::string> server_cert_pem;
};

// Reads the settings' files. Throws TlsError naming the file and the problem.
std::shared_ptr<TlsConfig> load_tls(const config::Settings& settings);

// After a connection's handshake: what the `tls` extension reports about it.
std::shared_ptr<const asgi::TlsInfo> describe_connection(SSL* ssl, const TlsConfig& config);

class TlsStore {
public:
    // Throws TlsError.
    explicit TlsStore(const config::Settings& settings);

    // Any thread.
    std::shared_ptr<TlsConfig> current() const;
    // Reads the files again: true when the new configuration is in use, false (logged)
    // when the files cannot be used and the current one stays.
    bool reload();

private:
    config::Settings settings_;
    mutable std::mutex mu_;
    std::shared_ptr<TlsConfig> current_;
};

}  // namespace narwhal::server
