#include "server/tls_context.hpp"

#include "asgi/log.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace narwhal::server {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites when --ssl-ciphers is uvicorn's default: ephemeral ECDH only (forward
// secrecy) with AEAD only (no CBC padding oracles); TLS 1.3's are all of that already.
constexpr const char* default_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
// Resumed sessions are looked up under this: OpenSSL refuses to resume a session that
// verified a client certificate without one.
constexpr unsigned char session_context[] = "narwhal";

// The keys that encrypt session tickets: made once per process tree, in the first
// process that loads TLS (the master under --workers, before it forks), so that every
// worker can resume a session another one issued, and a reload keeps them, so that
// resumption survives a renewed certificate. They last as long as the master; a restart
// makes new ones (nginx's default too).
const unsigned char* ticket_keys() {
    static unsigned char keys[80];
    static const bool made = RAND_bytes(keys, sizeof keys) == 1;
    return made ? keys : nullptr;
}

// With read(2), not a stream: a directory or a file that fails mid-read must become a
// TlsError naming it, not an exception from the standard library.
std::string read_file(const std::string& path, const char* flag) {
    auto fail = [&](int error) {
        return TlsError(
            fmt::format("TLS: cannot read {} {}: {}", flag, path, std::strerror(error)));
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw fail(errno);
    std::string text;
    char buffer[16384];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        int error = errno;
        ::close(fd);
        if (n < 0)
            throw fail(error);
        return text;
    }
}

std::string reason(const boost::system::error_code& ec) {
    std::string text = ec.message();
    ERR_clear_error();
    return text;
}

std::string pem_of(X509* cert) {
    BIO* bio = BIO_new(BIO_s_mem());
    std::string out;
    if (bio && PEM_write_bio_X509(bio, cert) == 1) {
        char* data = nullptr;
        long n = BIO_get_mem_data(bio, &data);
        out.assign(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
    return out;
}

// ALPN: HTTP/1.1 when the client offers it. A client offering only other protocols (h2)
// still gets a connection without ALPN rather than a fatal alert, as nginx does without
// HTTP/2: it can fall back to HTTP/1.1 itself.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof http11, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

const std::string& key_path(const config::Settings& s) {
    return s.ssl_keyfile.empty() ? s.ssl_certfile : s.ssl_keyfile;
}

// OpenSSL reports a key that does not fit the certificate when the key is loaded (3.x)
// or only when the pair is checked (1.1): one message for both.
TlsError key_mismatch(const config::Settings& s) {
    ERR_clear_error();
    return TlsError(fmt::format("TLS: the private key does not match the certificate "
                                "(key {}, certificate {})",
                                key_path(s), s.ssl_certfile));
}

void load_key(TlsConfig& tls, const config::Settings& s) {
    const std::string& path = key_path(s);
    const char* flag = s.ssl_keyfile.empty() ? "--ssl-certfile" : "--ssl-keyfile";
    std::string text = read_file(path, flag);
    // Always a callback: without one OpenSSL would prompt on the terminal for the
    // password of an encrypted key.
    std::string password = s.ssl_keyfile_password;
    tls.context.set_password_callback(
        [password](std::size_t, ssl::context::password_purpose) { return password; });
    boost::system::error_code ec;
    tls.context.use_private_key(boost::asio::buffer(text), ssl::context::pem, ec);
    if (!ec)
        return;
    if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
        throw key_mismatch(s);
    bool encrypted = text.find("ENCRYPTED") != std::string::npos;
    throw TlsError(fmt::format(
        "TLS: cannot load the private key from {}{}: {}", path,
        encrypted || !password.empty() ? " (wrong --ssl-keyfile-password?)" : "", reason(ec)));
}

// --ssl-version, as uvicorn passes it to ssl.SSLContext: a ssl.PROTOCOL_* number. The
// negotiating ones keep narwhal's range; PROTOCOL_TLSv1_2 pins TLS 1.2; TLS 1.0 and 1.1
// are not offered at all (RFC 8996), and a client protocol cannot serve.
void apply_protocol(SSL_CTX* ctx, const config::Settings& s) {
    switch (s.ssl_version) {
    case 2:   // PROTOCOL_TLS (PROTOCOL_SSLv23)
    case 17:  // PROTOCOL_TLS_SERVER, uvicorn's default
        return;
    case 5:  // PROTOCOL_TLSv1_2
        if (s.ssl_min_version == config::Settings::TlsVersion::tls1_3)
            throw TlsError("TLS: --ssl-version 5 (TLS 1.2 only) contradicts --ssl-min-version "
                           "TLSv1.3");
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        return;
    case 3:  // PROTOCOL_TLSv1
    case 4:  // PROTOCOL_TLSv1_1
        throw TlsError(fmt::format("TLS: --ssl-version {} asks for TLS 1.{} only, which narwhal "
                                   "does not offer (deprecated, RFC 8996): leave the default 17",
                                   s.ssl_version, s.ssl_version == 3 ? 0 : 1));
    case 16:  // PROTOCOL_TLS_CLIENT
        throw TlsError("TLS: --ssl-version 16 is ssl.PROTOCOL_TLS_CLIENT, a client's protocol: "
                       "leave the default 17 (PROTOCOL_TLS_SERVER)");
    default:
        throw TlsError(fmt::format("TLS: --ssl-version {} is no ssl.PROTOCOL_* number a server "
                                   "can use (17, the default, negotiates the best version)",
                                   s.ssl_version));
    }
}

void load_client_verification(TlsConfig& tls, const config::Settings& s) {
    if (s.ssl_cert_reqs == 0 && s.ssl_ca_certs.empty())
        return;
    if (!s.ssl_ca_certs.empty()) {
        std::string text = read_file(s.ssl_ca_certs, "--ssl-ca-certs");
        boost::system::error_code ec;
        tls.context.add_certificate_authority(boost::asio::buffer(text), ec);
        if (ec)
            throw TlsError(fmt::format("TLS: --ssl-ca-certs {} holds no usable CA certificate: {}",
                                       s.ssl_ca_certs, reason(ec)));
        // Tell clients which CAs their certificate should come from.
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ssl_ca_certs.c_str()))
            SSL_CTX_set_client_CA_list(tls.context.native_handle(), names);
        ERR_clear_error();
    }
    if (s.ssl_cert_reqs == 1)
        tls.context.set_verify_mode(ssl::verify_peer);
    else if (s.ssl_cert_reqs == 2)
        tls.context.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
}

}  // namespace

std::shared_ptr<TlsConfig> load_tls(const config::Settings& s) {
    auto tls = std::make_shared<TlsConfig>();
    SSL_CTX* ctx = tls->context.native_handle();
    std::string chain = read_file(s.ssl_certfile, "--ssl-certfile");
    boost::system::error_code ec;
    tls->context.use_certificate_chain(boost::asio::buffer(chain), ec);
    if (ec)
        throw TlsError(fmt::format("TLS: --ssl-certfile {} holds no usable certificate: {}",
                                   s.ssl_certfile, reason(ec)));
    load_key(*tls, s);
    if (SSL_CTX_check_private_key(ctx) != 1)
        throw key_mismatch(s);
    load_client_verification(*tls, s);

    SSL_CTX_set_min_proto_version(ctx, s.ssl_min_version == config::Settings::TlsVersion::tls1_3
                                           ? TLS1_3_VERSION
                                           : TLS1_2_VERSION);
    apply_protocol(ctx, s);
    const char* ciphers = s.ssl_ciphers == "TLSv1" ? default_ciphers : s.ssl_ciphers.c_str();
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        ERR_clear_error();
        throw TlsError(fmt::format("TLS: --ssl-ciphers '{}' selects no cipher", s.ssl_ciphers));
    }
    // The server's order of preference, not the client's; no renegotiation (a client-
    // triggered CPU sink with no use in HTTP/1.1 here); no TLS compression (CRIME).
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION);
    // Resumption: the session cache for TLS 1.2 session ids, and tickets (on by default)
    // for both versions, so a returning client skips the full handshake.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, session_context, sizeof session_context - 1);
    if (const unsigned char* keys = ticket_keys())
        SSL_CTX_set_tlsext_ticket_keys(ctx, const_cast<unsigned char*>(keys), 80);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
    // One ticket per full handshake (OpenSSL sends two): a client resumes with one, and
    // each ticket is an encryption and a record written on every new connection.
    SSL_CTX_set_num_tickets(ctx, 1);

    tls->server_cert_pem =
        std::make_shared<const std::string>(pem_of(SSL_CTX_get0_certificate(ctx)));
    return tls;
}

std::shared_ptr<const asgi::TlsInfo> describe_connection(SSL* ssl, const TlsConfig& config) {
    auto info = std::make_shared<asgi::TlsInfo>();
    info->server_cert = config.server_cert_pem;
    info->tls_version = SSL_version(ssl);
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl))
        info->cipher_suite = SSL_CIPHER_get_protocol_id(cipher);
    // A server's "peer chain" leaves out the client's own certificate: it comes first.
    if (X509* leaf = SSL_get0_peer_certificate(ssl)) {
        info->client_cert_chain.push_back(pem_of(leaf));
        if (STACK_OF(X509)* rest = SSL_get_peer_cert_chain(ssl))
            for (int i = 0; i < sk_X509_num(rest); ++i)
                info->client_cert_chain.push_back(pem_of(sk_X509_value(rest, i)));
        BIO* bio = BIO_new(BIO_s_mem());
        if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253) >= 0) {
            char* data = nullptr;
            long n = BIO_get_mem_data(bio, &data);
            info->client_cert_name.assign(data, static_cast<std::size_t>(n));
        }
        BIO_free(bio);
    }
    return info;
}

TlsStore::TlsStore(const config::Settings& settings)
    : settings_(settings), current_(load_tls(settings_)) {}

std::shared_ptr<TlsConfig> TlsStore::current() const {
    std::lock_guard lock(mu_);
    return current_;
}

bool TlsStore::reload() {
    try {
        auto fresh = load_tls(settings_);
        {
            std::lock_guard lock(mu_);
            current_ = std::move(fresh);
        }
        log::info("TLS: reloaded the certificate from {}", settings_.ssl_certfile);
        return true;
    } catch (const TlsError& e) {
        std::string_view why = e.what();
        if (why.starts_with("TLS: "))
            why.remove_prefix(5);
        log::error("TLS: cannot reload the certificate, {}: keeping the current certificate", why);
        return false;
    }
}

}  // namespace narwhal::server
