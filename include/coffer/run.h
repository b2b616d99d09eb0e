/*
 * coffer/run.h — the batch flow (the PyTorch-in-Gramine demo's role):
 * secret provisioning with Gramine's protocol over RA-TLS, server and
 * client. Batch inference over protected files builds on it.
 *
 * Protocol (shared/research/ratls-secretprov.md §5): TLS; the client
 * presents an RA-TLS certificate, the server an ordinary one; the client
 * sends the 35 bytes "SECRET_PROVISION_RA_TLS_REQUEST_V1\0"; the server
 * answers "SECRET_PROVISION_RA_TLS_RESPONSE_V1:\0", the secret's length as
 * a big-endian u32, and the secret; both close. Real Gramine applications
 * (libsecret_prov_attest.so) talk to coffer's server, and coffer's client to
 * Gramine's server.
 */
#ifndef COFFER_RUN_H
#define COFFER_RUN_H

#include "coffer/attest.h"
#include "coffer/base.h"

#define COFFER_SECRETPROV_REQUEST "SECRET_PROVISION_RA_TLS_REQUEST_V1"   /* + NUL: 35 bytes */
#define COFFER_SECRETPROV_RESPONSE "SECRET_PROVISION_RA_TLS_RESPONSE_V1:" /* + NUL: 37 bytes */
#define COFFER_SECRETPROV_MAX_SECRET (1u << 20)

struct ssl_ctx_st;

struct coffer_secretprov_server_config {
    const char *bind;                 /* "host:port"; port 0 picks one */
    struct ssl_ctx_st *ssl_ctx;       /* server certificate and key set; borrowed */
    const uint8_t *secret;            /* released to verified clients; copied */
    size_t secret_size;               /* 1 .. COFFER_SECRETPROV_MAX_SECRET */
    struct coffer_attest_verify_opts opts;   /* opts.now = 0: the time of each handshake */
    struct coffer_attest_policy policy;      /* what a client's evidence must satisfy */
    uint32_t max_connections;         /* at once; 0 = 64 */
    uint32_t timeout_ms;              /* per connection; 0 = 30 s */
};

struct coffer_secretprov_server;

/* Bind (so the port is known); no thread runs yet. */
COFFER_NODISCARD enum coffer_err coffer_secretprov_server_new(const struct coffer_secretprov_server_config *cfg,
                                                              struct coffer_secretprov_server **out);
uint16_t coffer_secretprov_server_port(const struct coffer_secretprov_server *s);
COFFER_NODISCARD enum coffer_err coffer_secretprov_server_start(struct coffer_secretprov_server *s);
/* Stop accepting and wait for open connections to end (each is bounded by
 * timeout_ms). Async-signal-safe half: coffer_secretprov_server_stop only
 * writes to a pipe; _wait does the rest. */
void coffer_secretprov_server_stop(struct coffer_secretprov_server *s);
void coffer_secretprov_server_wait(struct coffer_secretprov_server *s);
/* Counters: secrets released, connections refused. */
void coffer_secretprov_server_stats(const struct coffer_secretprov_server *s, uint64_t *released, uint64_t *refused);
void coffer_secretprov_server_free(struct coffer_secretprov_server *s);

/* Parse the server's 41-byte response header (magic, NUL, u32 BE length)
 * through the bounds-checked reader; the length must be 1 .. MAX_SECRET. */
COFFER_NODISCARD enum coffer_err coffer_secretprov_parse_header(const uint8_t *hdr, size_t size, uint32_t *len);

/*
 * Client: make an RA-TLS certificate with provider p, connect to the first
 * reachable server of servers ("host:port" separated by ',', ';' or
 * spaces, as SECRET_PROVISION_SERVERS), verify the server's certificate
 * against ca_path with host name checking, and fetch the secret into
 * secret memory.
 */
COFFER_NODISCARD enum coffer_err coffer_secretprov_fetch(const char *servers, const char *ca_path,
                                                         enum coffer_attest_provider p, uint32_t timeout_ms,
                                                         struct coffer_secret **out);

#endif /* COFFER_RUN_H */
