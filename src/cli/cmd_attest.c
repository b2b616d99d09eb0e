/*
 * cmd_attest.c — `coffer attest`: make evidence for this process, verify
 * evidence offline with explicit collateral and time, and print claims.
 *
 *   coffer attest evidence --report-data HEX -o FILE [--provider P]
 *   coffer attest ratls-cert -o CERT --key KEY [--provider P]
 *   coffer attest verify FILE [--collateral DIR] [--policy FILE] [--at TIME]
 *                             [--no-revocation] [--sim-key FILE] [--vcek FILE]
 *
 * Design: a thin shell over coffer/attest.h. The trust anchors are the ones
 * compiled into coffer; the CLI never takes a root from the user. verify
 * prints one JSON object on stdout in both outcomes ("verified": true with
 * the claims, or false with the failed step and why) and exits 0 / 1;
 * usage errors exit 2.
 * Trusts: the attest module; the files the user names.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "coffer/attest.h"

#define EVIDENCE_MAX (1u << 20)
#define MAX_SETS 64

void cmd_attest_help(FILE *out)
{
    fprintf(out,
            "usage: coffer attest evidence --report-data HEX -o FILE [--provider auto|gramine|tsm|simulation]\n"
            "       coffer attest ratls-cert -o CERT --key KEY [--provider auto|gramine|tsm|simulation]\n"
            "       coffer attest verify FILE [--collateral DIR] [--policy FILE] [--at TIME]\n"
            "                                 [--no-revocation] [--sim-key FILE] [--vcek FILE] [--amd-crl FILE]\n"
            "\n"
            "evidence  Write attestation evidence for this process. REPORT-DATA is up to 64 bytes\n"
            "          of hex, zero-padded. The provider is detected (Gramine /dev/attestation for\n"
            "          SGX, configfs-tsm for TDX and SEV-SNP guests) unless --provider or\n"
            "          $COFFER_ATTEST_PROVIDER names one; 'simulation' signs with a local software\n"
            "          platform key ($COFFER_SIM_PLATFORM_KEY or ~/.coffer/sim-platform-key.pem,\n"
            "          made on first use) and gives NO hardware protection. Asking for hardware\n"
            "          evidence where there is none fails; there is no fallback. On SEV-SNP guests\n"
            "          the host's certificate table (configfs-tsm auxblob) follows the report, so the\n"
            "          VCEK travels with it.\n"
            "\n"
            "ratls-cert  Make a Gramine-compatible RA-TLS certificate (PEM) for a fresh P-256 key\n"
            "          (PEM, mode 0600), with this process's evidence bound to the key in both of\n"
            "          Gramine's extensions (legacy quote, TCG tagged evidence).\n"
            "\n"
            "verify    Verify evidence offline (FILE may also be an RA-TLS certificate, PEM or DER) and print its claims and TCB status as JSON.\n"
            "          DIR holds Intel collateral: one set (tcb_info.json, qe_identity.json,\n"
            "          tcb_signing_chain.pem, pck_crl.der, root_ca_crl.der), a folder of such\n"
            "          sets, or a folder with a collateral/ folder of sets; the set is chosen by\n"
            "          the PCK certificate's FMSPC. The Intel SGX Root CA and AMD ARKs are built\n"
            "          into coffer and pinned. TIME is ISO 8601 UTC (2025-07-01T00:00:00Z) and\n"
            "          defaults to now. --no-revocation leaves the PCK CRL out (reported as\n"
            "          \"revocation_checked\": false). Simulation evidence is checked against the\n"
            "          public half of --sim-key (default: the local platform key). A bare SEV-SNP\n"
            "          report needs the VCEK or VLEK (DER): --vcek, else vcek.der / vlek.der beside\n"
            "          FILE or in DIR; SNP extended evidence (report + the host's certificate table,\n"
            "          as 'evidence' writes it on SNP guests) carries its own, and one given as well\n"
            "          must be the same certificate. The AMD ASK/ASVK and ARK are pinned; --amd-crl\n"
            "          applies AMD's CRL (DER).\n"
            "          With --policy,\n"
            "          the claims must also satisfy that JSON policy (see docs/attest.md).\n"
            "          Exits 0 when verified, 1 naming the failed check otherwise.\n");
}

static int usage(const char *fmt, const char *arg)
{
    return cli_usage("attest", fmt, arg);
}

static int cmd_evidence(int argc, char **argv)
{
    const char *hex = NULL, *outp = NULL, *prov = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--report-data") == 0 && i + 1 < argc)
            hex = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            outp = argv[++i];
        else if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc)
            prov = argv[++i];
        else
            return usage("evidence: unexpected argument '%s'", argv[i]);
    }
    if (hex == NULL || outp == NULL)
        return usage("evidence: --report-data HEX and -o FILE are required%s", "");
    uint8_t rd[64] = {0};
    size_t hl = strlen(hex);
    if (hl % 2 != 0 || hl > 128 || (hl > 0 && coffer_hex_decode(hex, hl, rd, hl / 2) != COFFER_OK))
        return usage("evidence: --report-data must be at most 128 hex digits, got '%s'", hex);
    enum coffer_attest_provider p = COFFER_ATTEST_PROVIDER_AUTO;
    enum coffer_err r;
    if (prov != NULL && coffer_attest_provider_parse(prov, &p) != COFFER_OK)
        return usage("evidence: unknown provider '%s'", prov);
    uint8_t *ev;
    size_t n;
    if ((r = coffer_attest_provider_evidence(p, rd, &ev, &n)) != COFFER_OK)
        return cli_fail("attest evidence", r);
    if (coffer_attest_evidence_kind(ev, n) == COFFER_ATTEST_KIND_SIM)
        fprintf(stderr, "coffer attest evidence: SIMULATION evidence: no hardware protection\n");
    r = coffer_file_write_atomic(outp, ev, n, 0644);
    coffer_free(ev);
    if (r != COFFER_OK)
        return cli_fail("attest evidence", r);
    return CLI_OK;
}

static int cmd_ratls_cert(int argc, char **argv)
{
    const char *certp = NULL, *keyp = NULL, *prov = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            certp = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            keyp = argv[++i];
        else if (strcmp(argv[i], "--provider") == 0 && i + 1 < argc)
            prov = argv[++i];
        else
            return usage("ratls-cert: unexpected argument '%s'", argv[i]);
    }
    if (certp == NULL || keyp == NULL)
        return usage("ratls-cert: -o CERT and --key KEY are required%s", "");
    enum coffer_attest_provider p = COFFER_ATTEST_PROVIDER_AUTO;
    if (prov != NULL && coffer_attest_provider_parse(prov, &p) != COFFER_OK)
        return usage("ratls-cert: unknown provider '%s'", prov);
    X509 *x;
    EVP_PKEY *k;
    enum coffer_err r = coffer_attest_ratls_make(p, &x, &k);
    if (r != COFFER_OK)
        return cli_fail("attest ratls-cert", r);
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_secmem());
    char *cd = NULL, *kd = NULL;
    long cn = 0, kn = 0;
    if (cb == NULL || kb == NULL || PEM_write_bio_X509(cb, x) != 1 ||
        PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1 || (cn = BIO_get_mem_data(cb, &cd)) <= 0 ||
        (kn = BIO_get_mem_data(kb, &kd)) <= 0)
        r = COFFER_FAIL(COFFER_E_CRYPTO, "cannot encode the certificate or key");
    if (r == COFFER_OK)
        r = coffer_file_write_atomic(keyp, kd, (size_t)kn, 0600);
    if (r == COFFER_OK)
        r = coffer_file_write_atomic(certp, cd, (size_t)cn, 0644);
    BIO_free(cb);
    BIO_free(kb); /* secure-heap BIO: wiped */
    X509_free(x);
    EVP_PKEY_free(k);
    if (r != COFFER_OK)
        return cli_fail("attest ratls-cert", r);
    if (p == COFFER_ATTEST_PROVIDER_SIM || (p == COFFER_ATTEST_PROVIDER_AUTO && getenv("COFFER_ATTEST_PROVIDER") != NULL &&
                                            strncmp(getenv("COFFER_ATTEST_PROVIDER"), "sim", 3) == 0))
        fprintf(stderr, "coffer attest ratls-cert: SIMULATION evidence: no hardware protection\n");
    return CLI_OK;
}

/* An RA-TLS certificate given to verify: PEM or DER; NULL if it is not one. */
static X509 *as_certificate(const uint8_t *d, size_t n)
{
    X509 *x = NULL;
    if (n > 27 && memcmp(d, "-----BEGIN CERTIFICATE-----", 27) == 0) {
        BIO *b = BIO_new_mem_buf(d, (int)n);
        x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else if (n > 35 && memcmp(d, "-----BEGIN TRUSTED CERTIFICATE-----", 35) == 0) {
        /* gramine-ratls writes this label around a plain DER certificate */
        BIO *b = BIO_new_mem_buf(d, (int)n);
        x = b != NULL ? PEM_read_bio_X509_AUX(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else if (n > 4 && d[0] == 0x30 && d[1] == 0x82) {
        const unsigned char *p = d;
        x = d2i_X509(NULL, &p, (long)n);
        if (x != NULL && p != d + n) {
            X509_free(x);
            x = NULL;
        }
    }
    return x;
}

struct sets {
    struct coffer_attest_collateral *c[MAX_SETS];
    size_t n;
};

static bool has_file(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static enum coffer_err load_set(const char *dir, bool no_revocation, struct sets *s)
{
    enum coffer_attest_step step;
    enum coffer_err r;
    if (s->n >= MAX_SETS)
        return COFFER_FAIL(COFFER_E_TOO_LARGE, "more than %d collateral sets", MAX_SETS);
    if (!no_revocation) {
        r = coffer_attest_collateral_load_dir(dir, &s->c[s->n], &step);
    } else {
        /* the same files without the PCK CRL */
        static const char *names[4] = {"tcb_info.json", "qe_identity.json", "tcb_signing_chain.pem", "root_ca_crl.der"};
        uint8_t *d[4] = {0};
        size_t n[4] = {0};
        r = COFFER_OK;
        for (int i = 0; i < 4 && r == COFFER_OK; i++) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            if (has_file(dir, names[i]))
                r = coffer_file_read_all(p, 1u << 20, &d[i], &n[i]);
        }
        if (r == COFFER_OK) {
            struct coffer_attest_collateral_bytes b = {.tcb_info = d[0], .tcb_info_size = n[0],
                                                       .qe_identity = d[1], .qe_identity_size = n[1],
                                                       .tcb_signing_chain = d[2], .tcb_signing_chain_size = n[2],
                                                       .root_ca_crl = d[3], .root_ca_crl_size = n[3]};
            r = coffer_attest_collateral_parse(&b, &s->c[s->n], &step);
        }
        for (int i = 0; i < 4; i++)
            coffer_free(d[i]);
    }
    if (r != COFFER_OK) {
        coffer_err_context("collateral %s (%s)", dir, coffer_attest_step_name(step));
        return r;
    }
    s->n++;
    return COFFER_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum coffer_err load_collateral(const char *dir, bool no_revocation, struct sets *s)
{
    char sub[4096];
    if (has_file(dir, "tcb_info.json"))
        return load_set(dir, no_revocation, s);
    if (has_file(dir, "collateral")) {
        snprintf(sub, sizeof(sub), "%s/collateral", dir);
        dir = sub;
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        return COFFER_FAIL(COFFER_E_NOT_FOUND, "collateral folder %s cannot be read", dir);
    char *names[MAX_SETS];
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < MAX_SETS) {
        char p[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (has_file(p, "tcb_info.json"))
            names[count++] = strdup(p);
    }
    closedir(d);
    qsort(names, count, sizeof(names[0]), name_cmp);
    enum coffer_err r = COFFER_OK;
    for (size_t i = 0; i < count; i++) {
        if (r == COFFER_OK && names[i] != NULL)
            r = load_set(names[i], no_revocation, s);
        free(names[i]);
    }
    if (r == COFFER_OK && count == 0)
        r = COFFER_FAIL(COFFER_E_NOT_FOUND, "no collateral set (tcb_info.json) under %s", dir);
    return r;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
}

static int verify_failed(const char *what, enum coffer_err r, enum coffer_attest_step step)
{
    json_t *j = json_object();
    char msg[768];
    coffer_err_format(r, msg, sizeof(msg));
    json_object_set_new(j, "verified", json_false());
    json_object_set_new(j, "failed_step", json_string(coffer_attest_step_name(step)));
    json_object_set_new(j, "error", json_string(coffer_err_name(r)));
    json_object_set_new(j, "detail", json_string(msg));
    print_json(j);
    json_decref(j);
    fprintf(stderr, "coffer attest verify: %s failed at %s: %s\n", what, coffer_attest_step_name(step), msg);
    return CLI_FAIL;
}

/* The VCEK/VLEK for an SNP report: --vcek, else beside the evidence, else
 * in the collateral folder. A missing one is left to the verifier to name
 * (extended evidence carries its own; one found here must then be the same). */
static enum coffer_err snp_cert(const char *given, const char *file, const char *cdir, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    if (given != NULL)
        return coffer_file_read_all(given, 1u << 16, out, size);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    const char *dirs[2] = {dir, cdir};
    static const char *names[2] = {"vcek.der", "vlek.der"};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 2 && dirs[d] != NULL; i++)
            if (has_file(dirs[d], names[i])) {
                char p[4096 + 16];
                snprintf(p, sizeof(p), "%s/%s", dirs[d], names[i]);
                return coffer_file_read_all(p, 1u << 16, out, size);
            }
    return COFFER_OK;
}

static int cmd_verify(int argc, char **argv)
{
    const char *file = NULL, *cdir = NULL, *pfile = NULL, *at = NULL, *simkey = NULL, *vcek = NULL, *amdcrl = NULL;
    bool no_rev = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--collateral") == 0 && i + 1 < argc)
            cdir = argv[++i];
        else if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc)
            pfile = argv[++i];
        else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc)
            at = argv[++i];
        else if (strcmp(argv[i], "--sim-key") == 0 && i + 1 < argc)
            simkey = argv[++i];
        else if (strcmp(argv[i], "--vcek") == 0 && i + 1 < argc)
            vcek = argv[++i];
        else if (strcmp(argv[i], "--amd-crl") == 0 && i + 1 < argc)
            amdcrl = argv[++i];
        else if (strcmp(argv[i], "--no-revocation") == 0)
            no_rev = true;
        else if (argv[i][0] == '-' || file != NULL)
            return usage("verify: unexpected argument '%s'", argv[i]);
        else
            file = argv[i];
    }
    if (file == NULL)
        return usage("verify: name the evidence FILE%s", "");
    time_t now = time(NULL);
    if (at != NULL && coffer_attest_time_parse(at, &now) != COFFER_OK)
        return usage("verify: --at '%s' is not an ISO 8601 UTC time", at);
    struct coffer_attest_policy pol;
    bool have_pol = false;
    enum coffer_err r;
    if (pfile != NULL) {
        if ((r = cli_policy_load(pfile, &pol)) != COFFER_OK)
            return cli_fail("attest verify", r);
        have_pol = true;
    }
    uint8_t *ev;
    size_t n;
    if ((r = coffer_file_read_all(file, EVIDENCE_MAX, &ev, &n)) != COFFER_OK)
        return cli_fail("attest verify", r);
    struct sets sets = {0};
    uint8_t simpub[64];
    struct coffer_attest_verify_opts o = {.now = now, .allow_missing_pck_crl = no_rev};
    int rc = CLI_FAIL;
    enum coffer_attest_kind kind = coffer_attest_evidence_kind(ev, n);
    if (cdir != NULL && (r = load_collateral(cdir, no_rev, &sets)) != COFFER_OK) {
        rc = cli_fail("attest verify: collateral", r);
        goto out;
    }
    o.collateral = (const struct coffer_attest_collateral *const *)sets.c;
    o.collateral_count = sets.n;
    if (kind == COFFER_ATTEST_KIND_SIM) {
        char def[4096];
        const char *kp = simkey;
        if (kp == NULL && (r = coffer_attest_sim_key_path(def, sizeof(def))) == COFFER_OK)
            kp = def;
        if (kp != NULL && (r = coffer_attest_sim_key_public(kp, false, simpub)) == COFFER_OK)
            o.sim_platform_key = simpub;
        else
            fprintf(stderr, "coffer attest verify: no simulation platform key to check against: %s\n",
                    coffer_err_detail());
    }
    uint8_t *cert = NULL, *crl = NULL;
    if (kind == COFFER_ATTEST_KIND_SNP) {
        if ((r = snp_cert(vcek, file, cdir, &cert, &o.snp_key_cert_size)) != COFFER_OK) {
            rc = cli_fail("attest verify: VCEK/VLEK", r);
            goto out;
        }
        o.snp_key_cert = cert;
        if (amdcrl != NULL) {
            if ((r = coffer_file_read_all(amdcrl, 1u << 20, &crl, &o.amd_crl_size)) != COFFER_OK) {
                coffer_free(cert);
                rc = cli_fail("attest verify: AMD CRL", r);
                goto out;
            }
            o.amd_crl = crl;
        }
    }
    struct coffer_attest_claims c;
    X509 *ratls = kind == COFFER_ATTEST_KIND_NONE ? as_certificate(ev, n) : NULL;
    if (ratls != NULL) {
        /* the evidence inside may be simulation: offer the local key */
        char def[4096];
        const char *kp = simkey;
        if (kp == NULL && coffer_attest_sim_key_path(def, sizeof(def)) == COFFER_OK)
            kp = def;
        if (kp != NULL && coffer_attest_sim_key_public(kp, false, simpub) == COFFER_OK)
            o.sim_platform_key = simpub;
        coffer_err_clear();
        r = coffer_attest_ratls_verify_x509(ratls, &o, NULL, &c);
        X509_free(ratls);
        kind = c.kind;
    } else {
        r = coffer_attest_evidence_verify(ev, n, &o, &c);
    }
    coffer_free(cert);
    coffer_free(crl);
    if (r != COFFER_OK) {
        rc = verify_failed(coffer_attest_kind_name(kind), r, c.failed_step);
        goto out;
    }
    if (have_pol && (r = coffer_attest_policy_check(&pol, &c)) != COFFER_OK) {
        rc = verify_failed(coffer_attest_kind_name(kind), r, COFFER_ATTEST_STEP_POLICY);
        goto out;
    }
    json_t *j = coffer_attest_claims_to_json(&c);
    if (j == NULL) {
        rc = cli_fail("attest verify", COFFER_E_NOMEM);
        goto out;
    }
    json_object_set_new(j, "verified", json_true());
    json_object_set_new(j, "policy", json_string(have_pol ? "accepted" : "none"));
    char ts[32];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(j, "verified_at", json_string(ts));
    print_json(j);
    json_decref(j);
    if (c.simulation)
        fprintf(stderr, "coffer attest verify: SIMULATION evidence: no hardware protection\n");
    rc = CLI_OK;
out:
    for (size_t i = 0; i < sets.n; i++)
        coffer_attest_collateral_free(sets.c[i]);
    coffer_free(ev);
    return rc;
}

int cmd_attest(int argc, char **argv)
{
    if (argc < 2)
        return usage("a subcommand is required (evidence, verify, ratls-cert)%s", "");
    if (strcmp(argv[1], "evidence") == 0)
        return cmd_evidence(argc - 1, argv + 1);
    if (strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[1], "ratls-cert") == 0)
        return cmd_ratls_cert(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cmd_attest_help(stdout);
        return CLI_OK;
    }
    return usage("unknown subcommand '%s'", argv[1]);
}
