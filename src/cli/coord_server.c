/*
 * coord_server.c — `coffer coordinator`: run the coordinator, configured as
 * MarbleRun's is.
 *
 *   EDG_COORDINATOR_CLIENT_ADDR / --client-addr   client API (default :4433)
 *   EDG_COORDINATOR_MESH_ADDR   / --mesh-addr     marble API (default :2001)
 *   EDG_COORDINATOR_DNS_NAMES   / --dns-names     root certificate SANs
 *   EDG_COORDINATOR_SEAL_DIR    / --seal-dir      sealed state
 *   --simulation      run without a TEE, loudly (no hardware protection)
 *   --collateral DIR  Intel collateral for verifying SGX/TDX marbles
 *
 * Design: the attestation provider is detected; a machine without a TEE
 * refuses to start unless --simulation was given (no silent fallback, the
 * mistake MarbleRun users hit). The sealing key comes from the provider:
 * Gramine's SGX sealing key (MRSIGNER policy), or in simulation a key
 * derived from the simulation platform key. Both APIs are served over TLS
 * with the coordinator's root certificate on net/ servers; SIGINT/SIGTERM
 * stop them gracefully. In simulation every log line's level says "sim-".
 */
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/attest.h"
#include "coffer/coordinator.h"
#include "coffer/net.h"

void cmd_coordinator_help(FILE *out)
{
    fprintf(out,
            "usage: coffer coordinator [--client-addr ADDR] [--mesh-addr ADDR] [--dns-names NAMES]\n"
            "                          [--seal-dir DIR] [--simulation] [--collateral DIR] [--threads N]\n\n"
            "Run the coordinator: it holds the manifest, attests marbles (coffer serve and\n"
            "other workloads), gives them certificates and secrets, and lets users verify it.\n"
            "MarbleRun's environment variables work: EDG_COORDINATOR_CLIENT_ADDR (default\n"
            ":4433), EDG_COORDINATOR_MESH_ADDR (:2001), EDG_COORDINATOR_DNS_NAMES (localhost),\n"
            "EDG_COORDINATOR_SEAL_DIR (./coffer-coordinator-data).\n\n"
            "  --simulation      run on a machine without a TEE, with a software platform key:\n"
            "                    NO hardware protection; said in every log line and in status\n"
            "  --collateral DIR  Intel collateral sets (tcb_info.json, qe_identity.json, ...)\n"
            "  --threads N       worker threads per API (default: one per CPU)\n"
            "Metrics: GET /metrics on the client API (Prometheus text).\n");
}

static struct coffer_net_server *servers[2];

static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < 2; i++)
        if (servers[i] != NULL)
            coffer_net_server_stop(servers[i], 5000);
}

struct api_ctx {
    struct coffer_coord *coord;
    enum coffer_coord_api api;
    struct coffer_net_metrics *metrics;
};

static enum coffer_err handle(void *arg, const struct coffer_net_request *req, struct coffer_net_response *resp)
{
    struct api_ctx *a = arg;
    if (a->api == COFFER_COORD_API_CLIENT && strcmp(req->path, "/metrics") == 0 && strcmp(req->method, "GET") == 0) {
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        enum coffer_err r = coffer_net_metrics_render(a->metrics, &b);
        if (r == COFFER_OK && (r = coffer_net_response_add_header(resp, "Content-Type",
                                                                  COFFER_NET_METRICS_CONTENT_TYPE)) == COFFER_OK)
            r = coffer_net_response_append(resp, b.data ? b.data : (const uint8_t *)"", b.size);
        coffer_buf_free(&b);
        return r;
    }
    uint8_t *cert = NULL;
    int cert_n = req->peer_cert ? i2d_X509(req->peer_cert, &cert) : 0;
    struct coffer_coord_request cr = {
        .method = req->method, .path = req->path, .query = req->query[0] ? req->query : NULL,
        .body = req->body, .body_size = req->body_size,
        .client_cert = cert_n > 0 ? cert : NULL, .client_cert_size = cert_n > 0 ? (size_t)cert_n : 0,
    };
    struct coffer_coord_response out;
    enum coffer_err r = coffer_coord_handle(a->coord, a->api, &cr, &out);
    OPENSSL_free(cert);
    if (r == COFFER_OK) {
        coffer_net_response_set_status(resp, out.status);
        if ((r = coffer_net_response_add_header(resp, "Content-Type", out.content_type)) == COFFER_OK)
            r = coffer_net_response_append(resp, out.body.data ? out.body.data : (const uint8_t *)"", out.body.size);
    }
    coffer_buf_free(&out.body);
    return r;
}

static enum coffer_err evidence(void *arg, const uint8_t report_data[64], uint8_t **ev, size_t *n)
{
    enum coffer_attest_provider *p = arg;
    return coffer_attest_provider_evidence(*p, report_data, ev, n);
}

/* The sealing key: 32 bytes from the provider's sealing material. */
static enum coffer_err seal_key(enum coffer_attest_provider p, uint8_t out[32])
{
    struct coffer_secret *material = NULL;
    enum coffer_err r;
    const char *label;
    if (p == COFFER_ATTEST_PROVIDER_SIM) {
        char path[1024];
        uint8_t pub[64];
        if ((r = coffer_attest_sim_key_path(path, sizeof(path))) != COFFER_OK ||
            (r = coffer_attest_sim_key_public(path, true, pub)) != COFFER_OK ||
            (r = coffer_file_read_secret(path, 1 << 16, &material)) != COFFER_OK)
            return r;
        label = "coffer coordinator seal key (simulation)";
    } else if (p == COFFER_ATTEST_PROVIDER_GRAMINE) {
        if ((r = coffer_file_read_secret("/dev/attestation/keys/_sgx_mrsigner", 64, &material)) != COFFER_OK)
            return r;
        label = "coffer coordinator seal key (sgx mrsigner)";
    } else {
        return COFFER_FAIL(COFFER_E_UNSUPPORTED, "no sealing key is available from %s (configfs-tsm has none); "
                           "run the coordinator in an SGX enclave under Gramine, or in simulation",
                           coffer_attest_provider_name(p));
    }
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, material->data, material->size),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    r = kc != NULL && EVP_KDF_derive(kc, out, 32, params) == 1 ? COFFER_OK
                                                                : COFFER_FAIL(COFFER_E_CRYPTO, "deriving the seal key");
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    coffer_secret_free(material);
    return r;
}

/* MarbleRun writes ":4433" for all interfaces. */
static const char *bind_addr(const char *a, char *buf, size_t size)
{
    if (a[0] == ':') {
        snprintf(buf, size, "0.0.0.0%s", a);
        return buf;
    }
    return a;
}

int cmd_coordinator(int argc, char **argv)
{
    enum { O_CLIENT = 1000, O_MESH, O_DNS, O_SEAL, O_SIM, O_COLL, O_THREADS };
    static const struct option longopts[] = {
        {"client-addr", required_argument, NULL, O_CLIENT}, {"mesh-addr", required_argument, NULL, O_MESH},
        {"dns-names", required_argument, NULL, O_DNS},      {"seal-dir", required_argument, NULL, O_SEAL},
        {"simulation", no_argument, NULL, O_SIM},           {"collateral", required_argument, NULL, O_COLL},
        {"threads", required_argument, NULL, O_THREADS},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *client = getenv("EDG_COORDINATOR_CLIENT_ADDR"), *mesh = getenv("EDG_COORDINATOR_MESH_ADDR");
    const char *dns = getenv("EDG_COORDINATOR_DNS_NAMES"), *seal_dir = getenv("EDG_COORDINATOR_SEAL_DIR");
    const char *collateral = NULL;
    bool simulation = false;
    int threads = 0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_CLIENT: client = optarg; break;
        case O_MESH: mesh = optarg; break;
        case O_DNS: dns = optarg; break;
        case O_SEAL: seal_dir = optarg; break;
        case O_SIM: simulation = true; break;
        case O_COLL: collateral = optarg; break;
        case O_THREADS: threads = atoi(optarg); break;
        case 'h': cmd_coordinator_help(stdout); return CLI_OK;
        default: return cli_usage("coordinator", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("coordinator", "unexpected argument '%s'", argv[optind]);
    char cb[300], mb[300];
    client = bind_addr(client ? client : ":4433", cb, sizeof(cb));
    mesh = bind_addr(mesh ? mesh : ":2001", mb, sizeof(mb));
    seal_dir = seal_dir ? seal_dir : "coffer-coordinator-data";

    enum coffer_attest_provider provider = COFFER_ATTEST_PROVIDER_SIM;
    enum coffer_err r = COFFER_OK;
    if (!simulation) {
        r = coffer_attest_provider_detect(&provider);
        if (r != COFFER_OK || provider == COFFER_ATTEST_PROVIDER_SIM) {
            fprintf(stderr, "coffer coordinator: no TEE found (no /dev/attestation, no configfs-tsm): the "
                            "coordinator will not run without hardware protection unless you ask for "
                            "--simulation\n");
            return CLI_FAIL;
        }
    } else {
        coffer_log_set_simulation(true);
        coffer_warn("SIMULATION MODE: no TEE; secrets and the sealed state are protected by a software key only");
    }
    uint8_t key[32];
    struct coffer_coord_verifier verifier;
    if ((r = seal_key(provider, key)) != COFFER_OK)
        return cli_fail("coordinator", r);
    if ((r = coffer_coord_verifier_init(&verifier, simulation, NULL, collateral)) != COFFER_OK) {
        coffer_memzero(key, sizeof(key));
        return cli_fail("coordinator", r);
    }
    struct coffer_coord_config cfg = {.seal_dir = seal_dir, .seal_key = key, .dns_names = dns ? dns : "localhost",
                                      .simulation = simulation, .verify = coffer_coord_verify_attest,
                                      .verify_arg = &verifier, .evidence = evidence, .evidence_arg = &provider};
    struct coffer_coord *coord = NULL;
    struct coffer_net_metrics *metrics = NULL;
    SSL_CTX *ssl = NULL;
    r = coffer_coord_open(&cfg, &coord);
    coffer_memzero(key, sizeof(key));
    if (r == COFFER_OK && (r = coffer_coord_tls_ctx(coord, &ssl)) == COFFER_OK)
        r = coffer_net_metrics_new(&metrics);
    struct api_ctx ctx[2] = {{coord, COFFER_COORD_API_CLIENT, metrics}, {coord, COFFER_COORD_API_MARBLE, metrics}};
    const char *addrs[2] = {client, mesh};
    for (int i = 0; i < 2 && r == COFFER_OK; i++) {
        struct coffer_net_server_config sc = {.ssl_ctx = ssl, .bind = addrs[i], .handler = handle,
                                              .handler_arg = &ctx[i], .threads = threads, .access_log = true,
                                              .metrics = i == 0 ? metrics : NULL,
                                              .max_body_size = COFFER_COORD_BODY_MAX};
        r = coffer_net_server_new(&sc, &servers[i]);
    }
    if (r == COFFER_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        for (int i = 0; i < 2 && r == COFFER_OK; i++)
            r = coffer_net_server_start(servers[i]);
    }
    if (r == COFFER_OK) {
        enum coffer_coord_state st = coffer_coord_get_state(coord);
        coffer_info("coordinator: client API on port %u, marble API on port %u, state %d (%s)%s",
                    coffer_net_server_port(servers[0]), coffer_net_server_port(servers[1]), (int)st,
                    coffer_coord_state_message(st), simulation ? ", SIMULATION" : "");
        for (int i = 0; i < 2; i++)
            coffer_net_server_wait(servers[i]);
        coffer_info("coordinator: stopped");
    }
    for (int i = 0; i < 2; i++) {
        coffer_net_server_free(servers[i]);
        servers[i] = NULL;
    }
    SSL_CTX_free(ssl);
    coffer_net_metrics_free(metrics);
    coffer_coord_close(coord);
    coffer_coord_verifier_free(&verifier);
    return r == COFFER_OK ? CLI_OK : cli_fail("coordinator", r);
}
