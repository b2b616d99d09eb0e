/*
 * cmd_run.c — the batch flow's commands: `coffer secret-provider` (the
 * trusted side of Gramine's secret provisioning) and `coffer provision` (the
 * enclave side, for shell workloads; coffer run uses the same client).
 *
 * secret-provider takes its policy from --policy (a coffer attestation
 * policy) or, like Gramine's secret_prov server, from RA_TLS_MRENCLAVE,
 * RA_TLS_MRSIGNER, RA_TLS_ISV_PROD_ID, RA_TLS_ISV_SVN (all four, values or
 * "any") and the RA_TLS_ALLOW_* switches.
 */
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coffer/run.h"

void cmd_secret_provider_help(FILE *out)
{
    fprintf(out,
            "usage: coffer secret-provider --secret FILE --cert CERT --key KEY [--listen HOST:PORT]\n"
            "                              [--policy FILE | RA_TLS_* variables] [--simulation]\n"
            "                              [--measurement HEX] [--collateral DIR]\n\n"
            "Release FILE's bytes (a 16-byte wrap key for protected files) to workloads that\n"
            "prove, over RA-TLS, that they run what the policy allows: Gramine's secret\n"
            "provisioning protocol, so Gramine applications (libsecret_prov_attest.so) and\n"
            "'coffer run' / 'coffer provision' can use it. CERT/KEY is the server's ordinary\n"
            "TLS identity; clients check it against their CA and the host name.\n\n"
            "  --listen HOST:PORT   default 127.0.0.1:4433\n"
            "  --policy FILE        a coffer attestation policy (JSON, see docs/attest.md)\n"
            "  RA_TLS_MRENCLAVE, RA_TLS_MRSIGNER, RA_TLS_ISV_PROD_ID, RA_TLS_ISV_SVN\n"
            "                       Gramine's variables (hex or \"any\"; all four required),\n"
            "                       with RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE,\n"
            "                       RA_TLS_ALLOW_OUTDATED_TCB_INSECURE, RA_TLS_ALLOW_HW_CONFIG_NEEDED,\n"
            "                       RA_TLS_ALLOW_SW_HARDENING_NEEDED (\"1\" to allow)\n"
            "  --simulation         accept simulation evidence signed by this machine's platform\n"
            "                       key, from an executable whose SHA-256 is --measurement\n"
            "  --collateral DIR     Intel collateral for SGX quotes\n"
            "One log line per connection: released, or refused with the failed step.\n");
}

void cmd_provision_help(FILE *out)
{
    fprintf(out,
            "usage: coffer provision --servers HOST:PORT[,...] --ca CA.crt (--set-key NAME | -o FILE)\n"
            "                        [--provider auto|gramine|tsm|simulation | --simulation]\n\n"
            "Fetch a secret from a secret-provisioning server over RA-TLS (what Gramine's\n"
            "SECRET_PROVISION_* variables do): --set-key NAME writes the 16-byte key to\n"
            "/dev/attestation/keys/NAME, so Gramine's encrypted mounts with key_name NAME\n"
            "open; -o writes it to FILE (mode 0600).\n");
}

static struct coffer_secretprov_server *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running != NULL)
        coffer_secretprov_server_stop(running);
}

/* Gramine's RA_TLS_* variables into a policy; false when none is set. */
static int gramine_env_policy(struct coffer_attest_policy *p)
{
    const char *mre = getenv("RA_TLS_MRENCLAVE"), *mrs = getenv("RA_TLS_MRSIGNER");
    const char *prod = getenv("RA_TLS_ISV_PROD_ID"), *svn = getenv("RA_TLS_ISV_SVN");
    if (!mre && !mrs && !prod && !svn)
        return 0;
    if (!mre || !mrs || !prod || !svn) {
        fprintf(stderr, "coffer secret-provider: RA_TLS_MRENCLAVE, RA_TLS_MRSIGNER, RA_TLS_ISV_PROD_ID and "
                        "RA_TLS_ISV_SVN must all be set (a value or \"any\"), as Gramine requires\n");
        return -1;
    }
    p->kinds = 1u << COFFER_ATTEST_KIND_SGX;
    if (strcmp(mre, "any") != 0) {
        if (coffer_hex_decode(mre, strlen(mre), p->measurements[0].bytes, 32) != COFFER_OK)
            return -1;
        p->measurements[0].size = 32;
        p->measurement_count = 1;
    }
    if (strcmp(mrs, "any") != 0) {
        if (coffer_hex_decode(mrs, strlen(mrs), p->signers[0].bytes, 32) != COFFER_OK)
            return -1;
        p->signers[0].size = 32;
        p->signer_count = 1;
    }
    if (strcmp(prod, "any") != 0) {
        p->check_isv_prodid = true;
        p->isv_prodid = (uint16_t)atoi(prod);
    }
    if (strcmp(svn, "any") != 0)
        p->min_isv_svn = (uint16_t)atoi(svn);
    const char *v;
    if ((v = getenv("RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE")) && strcmp(v, "1") == 0)
        p->allow_debug = true;
    if ((v = getenv("RA_TLS_ALLOW_OUTDATED_TCB_INSECURE")) && strcmp(v, "1") == 0)
        p->tcb_statuses |= 1u << COFFER_ATTEST_TCB_OUT_OF_DATE;
    if ((v = getenv("RA_TLS_ALLOW_HW_CONFIG_NEEDED")) && strcmp(v, "1") == 0)
        p->tcb_statuses |= 1u << COFFER_ATTEST_TCB_CONFIGURATION_NEEDED;
    if ((v = getenv("RA_TLS_ALLOW_SW_HARDENING_NEEDED")) && strcmp(v, "1") == 0) {
        p->tcb_statuses |= 1u << COFFER_ATTEST_TCB_SW_HARDENING_NEEDED;
        p->allow_any_advisory = true;
    }
    return 1;
}

int cmd_secret_provider(int argc, char **argv)
{
    enum { O_SECRET = 1000, O_CERT, O_KEY, O_LISTEN, O_POLICY, O_SIM, O_MEAS, O_COLL };
    static const struct option longopts[] = {
        {"secret", required_argument, NULL, O_SECRET}, {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},       {"listen", required_argument, NULL, O_LISTEN},
        {"policy", required_argument, NULL, O_POLICY}, {"simulation", no_argument, NULL, O_SIM},
        {"measurement", required_argument, NULL, O_MEAS}, {"collateral", required_argument, NULL, O_COLL},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    const char *secret_path = NULL, *cert = NULL, *key = NULL, *listen = "127.0.0.1:4433", *policy_path = NULL;
    const char *measurement = NULL, *collateral = NULL;
    bool simulation = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_SECRET: secret_path = optarg; break;
        case O_CERT: cert = optarg; break;
        case O_KEY: key = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_POLICY: policy_path = optarg; break;
        case O_SIM: simulation = true; break;
        case O_MEAS: measurement = optarg; break;
        case O_COLL: collateral = optarg; break;
        case 'h': cmd_secret_provider_help(stdout); return CLI_OK;
        default: return cli_usage("secret-provider", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (secret_path == NULL || cert == NULL || key == NULL)
        return cli_usage("secret-provider", "--secret, --cert and --key are required");
    struct coffer_secretprov_server_config cfg = {.bind = listen};
    coffer_attest_policy_init(&cfg.policy);
    enum coffer_err r = COFFER_OK;
    if (policy_path != NULL) {
        uint8_t *d;
        size_t n;
        json_t *j = NULL;
        if ((r = coffer_file_read_all(policy_path, 1 << 20, &d, &n)) == COFFER_OK) {
            if ((r = coffer_json_parse(d, n, 1 << 20, &j)) == COFFER_OK)
                r = coffer_attest_policy_from_json(j, &cfg.policy);
            json_decref(j);
            coffer_free(d);
        }
        if (r != COFFER_OK)
            return cli_fail("secret-provider", r);
    } else {
        int g = gramine_env_policy(&cfg.policy);
        if (g < 0)
            return CLI_USAGE;
        if (g == 0 && !simulation)
            return cli_usage("secret-provider", "say what may receive the secret: --policy FILE, RA_TLS_* "
                                                "variables, or --simulation --measurement HEX");
    }
    uint8_t sim_key[64];
    if (simulation) {
        coffer_log_set_simulation(true);
        cfg.policy.kinds |= 1u << COFFER_ATTEST_KIND_SIM;
        cfg.policy.allow_simulation = true;
        if (measurement != NULL) {
            struct coffer_attest_digest *d = &cfg.policy.measurements[cfg.policy.measurement_count];
            if (cfg.policy.measurement_count >= COFFER_ATTEST_POLICY_MAX ||
                coffer_hex_decode(measurement, strlen(measurement), d->bytes, 32) != COFFER_OK)
                return cli_usage("secret-provider", "--measurement takes the 64 hex digits of a SHA-256");
            d->size = 32;
            cfg.policy.measurement_count++;
        }
        char path[1024];
        if ((r = coffer_attest_sim_key_path(path, sizeof(path))) != COFFER_OK ||
            (r = coffer_attest_sim_key_public(path, true, sim_key)) != COFFER_OK)
            return cli_fail("secret-provider", r);
        cfg.opts.sim_platform_key = sim_key;
        coffer_warn("SIMULATION: accepting software evidence signed by this machine's platform key");
    }
    if (cfg.policy.measurement_count == 0 && cfg.policy.signer_count == 0)
        coffer_warn("the policy allows ANY measurement and signer");
    struct coffer_attest_collateral *col = NULL;
    if (collateral != NULL) {
        enum coffer_attest_step step;
        if ((r = coffer_attest_collateral_load_dir(collateral, &col, &step)) != COFFER_OK)
            return cli_fail("secret-provider", r);
        cfg.opts.collateral = (const struct coffer_attest_collateral *const *)&col;
        cfg.opts.collateral_count = 1;
    }
    struct coffer_secret *secret = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        r = COFFER_FAIL(COFFER_E_CERT, "cannot use %s and %s as the server's TLS identity", cert, key);
    if (r == COFFER_OK)
        r = coffer_file_read_secret(secret_path, COFFER_SECRETPROV_MAX_SECRET, &secret);
    if (r == COFFER_OK) {
        cfg.ssl_ctx = ctx;
        cfg.secret = secret->data;
        cfg.secret_size = secret->size;
        r = coffer_secretprov_server_new(&cfg, &running);
    }
    coffer_secret_free(secret);
    if (r == COFFER_OK) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = coffer_secretprov_server_start(running)) == COFFER_OK) {
            coffer_info("secret-provider: listening on port %u", coffer_secretprov_server_port(running));
            coffer_secretprov_server_wait(running);
            uint64_t released, refused;
            coffer_secretprov_server_stats(running, &released, &refused);
            coffer_info("secret-provider: stopped (%llu released, %llu refused)", (unsigned long long)released,
                        (unsigned long long)refused);
        }
    }
    coffer_secretprov_server_free(running);
    running = NULL;
    SSL_CTX_free(ctx);
    coffer_attest_collateral_free(col);
    return r == COFFER_OK ? CLI_OK : cli_fail("secret-provider", r);
}

int cmd_provision(int argc, char **argv)
{
    enum { O_SERVERS = 1000, O_CA, O_SETKEY, O_PROV, O_SIM, O_TIMEOUT };
    static const struct option longopts[] = {
        {"servers", required_argument, NULL, O_SERVERS}, {"ca", required_argument, NULL, O_CA},
        {"set-key", required_argument, NULL, O_SETKEY},  {"output", required_argument, NULL, 'o'},
        {"provider", required_argument, NULL, O_PROV},   {"simulation", no_argument, NULL, O_SIM},
        {"timeout", required_argument, NULL, O_TIMEOUT}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *servers = getenv("SECRET_PROVISION_SERVERS"), *ca = getenv("SECRET_PROVISION_CA_CHAIN_PATH");
    const char *set_key = getenv("SECRET_PROVISION_SET_KEY"), *out = NULL;
    enum coffer_attest_provider provider = COFFER_ATTEST_PROVIDER_AUTO;
    uint32_t timeout_ms = 30000;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_SERVERS: servers = optarg; break;
        case O_CA: ca = optarg; break;
        case O_SETKEY: set_key = optarg; break;
        case 'o': out = optarg; break;
        case O_PROV:
            if (coffer_attest_provider_parse(optarg, &provider) != COFFER_OK)
                return cli_usage("provision", "--provider takes auto, gramine, tsm or simulation");
            break;
        case O_SIM: provider = COFFER_ATTEST_PROVIDER_SIM; break;
        case O_TIMEOUT: timeout_ms = (uint32_t)atoi(optarg) * 1000u; break;
        case 'h': cmd_provision_help(stdout); return CLI_OK;
        default: return cli_usage("provision", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (servers == NULL)
        servers = "localhost:4433";
    if (ca == NULL || (set_key == NULL && out == NULL))
        return cli_usage("provision", "--ca and one of --set-key NAME or -o FILE are required");
    struct coffer_secret *secret;
    enum coffer_err r = coffer_secretprov_fetch(servers, ca, provider, timeout_ms, &secret);
    if (r != COFFER_OK)
        return cli_fail("provision", r);
    if (set_key != NULL) {
        char path[512];
        snprintf(path, sizeof(path), "/dev/attestation/keys/%s", set_key);
        if (secret->size != 16) {
            r = COFFER_FAIL(COFFER_E_MALFORMED, "a key for /dev/attestation/keys is 16 bytes, the secret is %zu",
                            secret->size);
        } else {
            /* Gramine takes the key in one write; it is a pseudo-file, not a disk file */
            FILE *f = fopen(path, "wb");
            if (f == NULL || fwrite(secret->data, 1, 16, f) != 16 || fclose(f) != 0)
                r = COFFER_FAIL(COFFER_E_IO, "cannot write %s (is this a Gramine enclave?)", path);
        }
    }
    if (r == COFFER_OK && out != NULL)
        r = coffer_file_write_atomic(out, secret->data, secret->size, 0600);
    coffer_secret_free(secret);
    if (r != COFFER_OK)
        return cli_fail("provision", r);
    fprintf(stderr, "coffer provision: secret received%s%s\n", out ? " and written to " : "", out ? out : "");
    return CLI_OK;
}
