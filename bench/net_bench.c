/*
 * net_bench.c — the serving-limit benchmark server: coffer's TLS server
 * answering a fixed 36-byte JSON body to every request, with keep-alive,
 * for wrk/h2load to load side by side with nginx (bench/net_bench.sh).
 *
 *   bench_net --cert CERT.pem --key KEY.pem [--bind 127.0.0.1:0] [--threads N] [--log]
 *             [--shared-listener]
 *
 * Prints "port=N" on stdout once listening; stops gracefully on SIGINT or
 * SIGTERM (the handler only calls coffer_net_server_stop, which is
 * async-signal-safe).
 */
#include "coffer/net.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"status\":\"ok\",\"model\":\"benchmarks\"}";
_Static_assert(sizeof(body) - 1 == 36, "the benchmark body is 36 bytes");

static struct coffer_net_server *server;

static void on_signal(int sig)
{
    (void)sig;
    coffer_net_server_stop(server, 2000);
}

static enum coffer_err handler(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp)
{
    (void)arg;
    (void)req;
    enum coffer_err r = coffer_net_response_add_header(resp, "Content-Type", "application/json");
    if (r == COFFER_OK)
        r = coffer_net_response_append(resp, body, sizeof(body) - 1);
    return r;
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *bind = "127.0.0.1:0";
    int threads = 0;
    bool log = false, shared = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            bind = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--log") == 0)
            log = true;
        else if (strcmp(argv[i], "--shared-listener") == 0)
            shared = true;
        else {
            fprintf(stderr, "usage: bench_net --cert CERT --key KEY [--bind H:P] [--threads N] [--log] [--shared-listener]\n");
            return 2;
        }
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "bench_net: --cert and --key are required\n");
        return 2;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "bench_net: cannot load %s / %s\n", cert, key);
        return 1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    struct coffer_net_server_config cfg = {
        .ssl_ctx = ctx,
        .bind = bind,
        .handler = handler,
        .threads = threads,
        .access_log = log,
        .shared_listener = shared,
    };
    enum coffer_err r = coffer_net_server_new(&cfg, &server);
    if (r == COFFER_OK)
        r = coffer_net_server_start(server);
    if (r != COFFER_OK) {
        char msg[256];
        fprintf(stderr, "bench_net: %s\n", coffer_err_format(r, msg, sizeof(msg)));
        coffer_net_server_free(server);
        SSL_CTX_free(ctx);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("port=%u\n", coffer_net_server_port(server));
    fflush(stdout);
    coffer_net_server_wait(server);
    coffer_net_server_free(server);
    SSL_CTX_free(ctx);
    return 0;
}
