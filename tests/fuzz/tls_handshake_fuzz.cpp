// libFuzzer target for the TLS handshake as narwhal configures it: the server context
// built by load_tls (server/tls_context.cpp, compiled into this target so the ALPN
// selection, which reads the client's protocol list, is instrumented) takes the input
// as the client's bytes through memory BIOs. A handshake that completes is described for
// the `tls` extension and its first application bytes go through the strict head
// scanner, as in HttpSession. The certificate is made once at start-up.
// Seed: tests/fuzz/corpus/tls_client_hello (a real ClientHello offering h2 and http/1.1).
// Run: make fuzz.
#include "config/settings.hpp"
#include "server/http/head_scanner.hpp"
#include "server/tls_context.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

std::shared_ptr<narwhal::server::TlsConfig> config;

// A self-signed P-256 certificate for localhost, written where load_tls reads files.
void make_certificate(const std::string& cert_path, const std::string& key_path) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    FILE* c = std::fopen(cert_path.c_str(), "w");
    FILE* k = std::fopen(key_path.c_str(), "w");
    if (!c || !k || PEM_write_X509(c, cert) != 1 ||
        PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        std::abort();
    std::fclose(c);
    std::fclose(k);
    X509_free(cert);
    EVP_PKEY_free(key);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    char dir[] = "/tmp/narwhal-tls-fuzz-XXXXXX";
    if (!::mkdtemp(dir))
        std::abort();
    narwhal::config::Settings s;
    s.ssl_certfile = std::string(dir) + "/cert.pem";
    s.ssl_keyfile = std::string(dir) + "/key.pem";
    make_certificate(s.ssl_certfile, s.ssl_keyfile);
    config = narwhal::server::load_tls(s);
    ::unlink(s.ssl_certfile.c_str());
    ::unlink(s.ssl_keyfile.c_str());
    ::rmdir(dir);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    SSL* ssl = SSL_new(config->context.native_handle());
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    BIO_write(in, data, static_cast<int>(size));
    BIO_set_mem_eof_return(in, 0);  // the input's end is the client's end
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);
    if (SSL_do_handshake(ssl) == 1) {
        auto info = narwhal::server::describe_connection(ssl, *config);
        if (!info->server_cert || info->tls_version == 0)
            std::abort();
        char buffer[4096];
        int n = SSL_read(ssl, buffer, sizeof buffer);
        if (n > 0)
            narwhal::server::http::scan_head(std::string_view(buffer, static_cast<std::size_t>(n)),
                                             {256, 2048, 256, 16});
    }
    SSL_free(ssl);  // frees both BIOs
    return 0;
}
