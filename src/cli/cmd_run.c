/*
 * cmd_run.c — the batch flow's commands: `coffer secret-provider` (the
 * trusted side of Gramine's secret provisioning) and `coffer provision` (the
 * enclave side, for shell workloads), and `coffer run` (the batch job).
 *
 * secret-provider takes its policy from --policy (a coffer attestation
 * policy) or, like Gramine's secret_prov server, from RA_TLS_MRENCLAVE,
 * RA_TLS_MRSIGNER, RA_TLS_ISV_PROD_ID, RA_TLS_ISV_SVN (all four, values or
 * "any") and the RA_TLS_ALLOW_* switches.
 */
#include <fcntl.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>

#include "cli.h"
#include "coffer/nn.h"
#include "coffer/pf.h"
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
        if ((r = cli_policy_load(policy_path, &cfg.policy)) != COFFER_OK)
            return cli_fail("secret-provider", r);    } else {
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

/* ---- coffer run */

void cmd_run_help(FILE *out)
{
    fprintf(out,
            "usage: coffer run --model MODEL.onnx --input DIR --output DIR\n"
            "                  (--secret-provider HOST:PORT --ca CA.crt | --key KEYFILE)\n"
            "                  [--provider auto|gramine|tsm|simulation | --simulation] [--no-path-check]\n\n"
            "The batch flow of the PyTorch-in-Gramine demo: attest to a secret provider over\n"
            "RA-TLS and receive the wrap key, decrypt the model and every input in memory\n"
            "(protected files; nothing plaintext reaches the disk), run the model, and write\n"
            "each result as a protected file under the output folder.\n\n"
            "  --model FILE      the ONNX model, as a protected file\n"
            "  --input DIR       protected tensor files (.npy or ONNX TensorProto .pb), one\n"
            "                    model input each (models with one input)\n"
            "  --output DIR      for input NAME, writes NAME.output_K.npy per model output K,\n"
            "                    encrypted and bound to that path\n"
            "  --key KEYFILE     use a wrap key from a file instead (no attestation; for testing)\n"
            "  --no-path-check   accept protected files bound to another path than the one\n"
            "                    opened (Gramine checks it; so does coffer by default)\n");
}

/* Decrypt a protected file opened by path (bound-path check unless off). */
static enum coffer_err decrypt_path(const char *path, const uint8_t key[16], bool check, struct coffer_secret **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return COFFER_FAIL(COFFER_E_NOT_FOUND, "cannot open %s", path);
    char *norm = coffer_malloc(strlen(path) + 1);
    enum coffer_err r = norm ? coffer_pf_normalize_path(path, norm, strlen(path) + 1) : COFFER_E_NOMEM;
    if (r == COFFER_OK) {
        struct coffer_io_fd io;
        coffer_io_fd_init(&io, fd);
        r = coffer_pf_decrypt_all(&io.io, key, check ? norm : NULL, 0, out);
    }
    if (r != COFFER_OK)
        coffer_err_context("%s", path);
    coffer_free(norm);
    close(fd);
    return r;
}

static enum coffer_err encrypt_to(const char *path, const uint8_t key[16], const void *data, size_t size)
{
    char *norm = coffer_malloc(strlen(path) + 1);
    enum coffer_err r = norm ? coffer_pf_normalize_path(path, norm, strlen(path) + 1) : COFFER_E_NOMEM;
    struct coffer_atomic_file af;
    if (r == COFFER_OK && (r = coffer_atomic_open(path, 0644, &af)) == COFFER_OK) {
        struct coffer_io_fd io;
        coffer_io_fd_init(&io, af.fd);
        struct coffer_pf *pf;
        if ((r = coffer_pf_create(&io.io, key, norm, COFFER_PF_V2, &pf)) == COFFER_OK) {
            if ((r = coffer_pf_write(pf, data, size)) == COFFER_OK)
                r = coffer_pf_finish(pf);
            coffer_pf_close(pf);
        }
        if (r == COFFER_OK)
            r = coffer_atomic_commit(&af);
        else
            coffer_atomic_abort(&af);
    }
    coffer_free(norm);
    return r;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cmd_run(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_IN, O_OUT, O_SP, O_CA, O_KEY, O_PROV, O_SIM, O_NOCHECK };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, O_MODEL}, {"input", required_argument, NULL, O_IN},
        {"output", required_argument, NULL, O_OUT},  {"secret-provider", required_argument, NULL, O_SP},
        {"ca", required_argument, NULL, O_CA},       {"key", required_argument, NULL, O_KEY},
        {"provider", required_argument, NULL, O_PROV}, {"simulation", no_argument, NULL, O_SIM},
        {"no-path-check", no_argument, NULL, O_NOCHECK}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL, *in_dir = NULL, *out_dir = NULL, *sp = NULL, *ca = NULL, *key_path = NULL;
    enum coffer_attest_provider provider = COFFER_ATTEST_PROVIDER_AUTO;
    bool check = true;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case O_MODEL: model_path = optarg; break;
        case O_IN: in_dir = optarg; break;
        case O_OUT: out_dir = optarg; break;
        case O_SP: sp = optarg; break;
        case O_CA: ca = optarg; break;
        case O_KEY: key_path = optarg; break;
        case O_PROV:
            if (coffer_attest_provider_parse(optarg, &provider) != COFFER_OK)
                return cli_usage("run", "--provider takes auto, gramine, tsm or simulation");
            break;
        case O_SIM: provider = COFFER_ATTEST_PROVIDER_SIM; break;
        case O_NOCHECK: check = false; break;
        case 'h': cmd_run_help(stdout); return CLI_OK;
        default: return cli_usage("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (model_path == NULL || in_dir == NULL || out_dir == NULL)
        return cli_usage("run", "--model, --input and --output are required");
    if ((sp == NULL) == (key_path == NULL))
        return cli_usage("run", "give --secret-provider HOST:PORT (with --ca) or --key FILE");
    if (sp != NULL && ca == NULL)
        return cli_usage("run", "--secret-provider needs --ca, the provider's CA certificate");
    struct coffer_secret *key = NULL, *model_bytes = NULL;
    struct coffer_nn_model *model = NULL;
    char **names = NULL;
    size_t count = 0, done = 0;
    enum coffer_err r;
    if (sp != NULL) {
        r = coffer_secretprov_fetch(sp, ca, provider, 30000, &key);
    } else {
        coffer_warn("using a wrap key from %s: no attestation took place", key_path);
        r = coffer_file_read_secret(key_path, 64, &key);
    }
    if (r == COFFER_OK && key->size != COFFER_PF_KEY_SIZE)
        r = COFFER_FAIL(COFFER_E_MALFORMED, "the wrap key is %zu bytes, not %d", key->size, COFFER_PF_KEY_SIZE);
    if (r != COFFER_OK)
        goto out;
    if ((r = decrypt_path(model_path, key->data, check, &model_bytes)) != COFFER_OK ||
        (r = coffer_nn_model_load(model_bytes->data, model_bytes->size, &model)) != COFFER_OK) {
        coffer_err_context("model");
        goto out;
    }
    if (coffer_nn_model_input_count(model) != 1) {
        r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "coffer run feeds one input file per run; the model has %zu inputs",
                        coffer_nn_model_input_count(model));
        goto out;
    }
    DIR *d = opendir(in_dir);
    if (d == NULL) {
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "cannot open input folder %s", in_dir);
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && r == COFFER_OK) {
        if (e->d_name[0] == '.')
            continue;
        char **nn = coffer_realloc(names, (count + 1) * sizeof(char *));
        if (nn == NULL || (nn[count] = coffer_strdup(e->d_name)) == NULL) {
            r = COFFER_E_NOMEM;
            if (nn != NULL)
                names = nn;
            break;
        }
        names = nn;
        count++;
    }
    closedir(d);
    if (r != COFFER_OK)
        goto out;
    qsort(names, count, sizeof(char *), name_cmp);
    if ((r = coffer_mkdir_p(out_dir, 0755)) != COFFER_OK)
        goto out;
    size_t n_out = coffer_nn_model_output_count(model);
    for (size_t i = 0; i < count && r == COFFER_OK; i++) {
        char in_path[4096];
        snprintf(in_path, sizeof(in_path), "%s/%s", in_dir, names[i]);
        struct coffer_secret *plain = NULL;
        struct coffer_nn_tensor input = {0};
        struct coffer_nn_tensor outputs[16];
        if (n_out > 16) {
            r = COFFER_FAIL(COFFER_E_UNSUPPORTED, "models with more than 16 outputs");
            break;
        }
        uint64_t t0 = coffer_now_ns();
        if ((r = decrypt_path(in_path, key->data, check, &plain)) == COFFER_OK &&
            (r = coffer_nn_tensor_read_any(plain->data, plain->size, &input)) == COFFER_OK &&
            (r = coffer_nn_model_run(model, &input, 1, outputs, n_out)) == COFFER_OK) {
            for (size_t k = 0; k < n_out && r == COFFER_OK; k++) {
                struct coffer_buf b;
                coffer_buf_init(&b, 0, true);
                char out_path[4200];
                snprintf(out_path, sizeof(out_path), "%s/%s.output_%zu.npy", out_dir, names[i], k);
                if ((r = coffer_nn_tensor_write_npy(&outputs[k], &b)) == COFFER_OK)
                    r = encrypt_to(out_path, key->data, b.data, b.size);
                coffer_buf_free(&b);
            }
        }
        if (r != COFFER_OK)
            coffer_err_context("input %s", names[i]);
        else
            coffer_info("run: %s done in %.1f ms", names[i], (double)(coffer_now_ns() - t0) / 1e6);
        if (input.data != NULL)
            coffer_memzero(input.data, input.size);
        coffer_nn_tensor_release(&input);
        coffer_secret_free(plain);
        if (r == COFFER_OK)
            done++;
    }
out:
    for (size_t i = 0; i < count; i++)
        coffer_free(names[i]);
    coffer_free(names);
    coffer_nn_model_free(model);
    coffer_secret_free(model_bytes);
    coffer_secret_free(key);
    if (r != COFFER_OK)
        return cli_fail("run", r);
    fprintf(stderr, "coffer run: %zu input(s) done; results encrypted under %s\n", done, out_dir);
    return CLI_OK;
}
