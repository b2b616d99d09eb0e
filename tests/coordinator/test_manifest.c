/*
 * test_manifest.c — MarbleRun manifests: the TF-Serving demo's manifest is
 * accepted, every validation rule refuses with the JSON path of the field,
 * and templates render as MarbleRun renders them.
 */
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coffer/coordinator.h"

/* A self-signed P-256 certificate as a JSON-escaped PEM string. */
static char *make_cert_json(const char *cn)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *pem;
    long n = BIO_get_mem_data(b, &pem);
    char *out = malloc((size_t)n * 2 + 1), *w = out;
    for (long i = 0; i < n; i++) {
        if (pem[i] == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        } else {
            *w++ = pem[i];
        }
    }
    *w = '\0';
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    return out;
}

static char *cert1, *cert2;

static int setup(void **state)
{
    (void)state;
    cert1 = make_cert_json("tf-admin");
    cert2 = make_cert_json("other");
    coffer_log_set_level(COFFER_LOG_ERROR);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(cert1);
    free(cert2);
    return 0;
}

/* The TF-Serving demo's manifest (marblerun.md §0), with coffer's
 * simulation package beside the SGX one. */
static char *demo_manifest(void)
{
    static char buf[16384];
    snprintf(buf, sizeof(buf),
             "{\n"
             " \"Packages\": {\n"
             "  \"tf-server\": {\"SignerID\": \"%064d\", \"ProductID\": 15, \"SecurityVersion\": 1, \"Debug\": true},\n"
             "  \"sim\": {\"TEE\": \"Simulation\", \"UniqueID\": \"%064d\"}\n"
             " },\n"
             " \"Marbles\": {\n"
             "  \"tf-server\": {\n"
             "   \"Package\": \"tf-server\", \"MaxActivations\": 3,\n"
             "   \"Parameters\": {\n"
             "    \"Argv\": [\"coffer\", \"serve\", \"--port=8500\"],\n"
             "    \"Files\": {\n"
             "     \"ssl.cfg\": \"cert: {{ base64 .MarbleRun.MarbleCert.Cert }}\\nkey: {{ pem .MarbleRun.MarbleCert.Public }}\",\n"
             "     \"/dev/attestation/keys/default\": \"{{ raw .Secrets.pfKey }}\",\n"
             "     \"plain.txt\": {\"Data\": \"aGVsbG8=\", \"Encoding\": \"base64\"},\n"
             "     \"literal\": {\"Data\": \"{{ not a template }}\", \"NoTemplates\": true}\n"
             "    },\n"
             "    \"Env\": {\"MODEL_KEY_HEX\": \"{{ hex .Secrets.pfKey }}\"}\n"
             "   }\n"
             "  }\n"
             " },\n"
             " \"Secrets\": {\"pfKey\": {\"Type\": \"symmetric-key\", \"Size\": 128, \"UserDefined\": true},\n"
             "             \"shared-cert\": {\"Type\": \"cert-ecdsa\", \"Size\": 256, \"Shared\": true,\n"
             "                               \"Cert\": {\"Subject\": {\"CommonName\": \"svc\"}, \"DNSNames\": [\"a\", \"b\"]}}},\n"
             " \"Users\": {\"tf-admin\": {\"Certificate\": \"%s\", \"Roles\": [\"secret-manager\"]}},\n"
             " \"Roles\": {\"secret-manager\": {\"ResourceType\": \"Secrets\", \"ResourceNames\": [\"pfKey\"],\n"
             "                                 \"Actions\": [\"WriteSecret\", \"readsecret\"]}}\n"
             "}\n",
             1, 2, cert1);
    return buf;
}

static void test_demo_manifest_parses(void **state)
{
    (void)state;
    const char *j = demo_manifest();
    struct coffer_manifest *m;
    if (coffer_manifest_parse(j, strlen(j), &m) != COFFER_OK)
        fail_msg("%s", coffer_err_detail());
    assert_int_equal(m->packages_count, 2);
    const struct coffer_mf_package *pk = coffer_manifest_package(m, "tf-server");
    assert_non_null(pk);
    assert_int_equal(pk->tee, COFFER_TEE_SGX);
    assert_true(pk->has_signer_id && pk->has_product_id && pk->has_svn && !pk->has_unique_id);
    assert_int_equal(pk->product_id, 15);
    assert_true(pk->debug);
    assert_int_equal(coffer_manifest_package(m, "sim")->tee, COFFER_TEE_SIMULATION);
    const struct coffer_mf_marble *mb = coffer_manifest_marble(m, "tf-server");
    assert_non_null(mb);
    assert_int_equal(mb->max_activations, 3);
    assert_int_equal(mb->argv_count, 3);
    assert_string_equal(mb->argv[1], "serve");
    assert_int_equal(mb->files_count, 4);
    assert_int_equal(mb->env_count, 1);
    bool saw_b64 = false, saw_literal = false;
    for (size_t i = 0; i < mb->files_count; i++) {
        if (strcmp(mb->files[i].name, "plain.txt") == 0) {
            assert_int_equal(mb->files[i].size, 5);
            assert_memory_equal(mb->files[i].data, "hello", 5);
            saw_b64 = true;
        }
        if (strcmp(mb->files[i].name, "literal") == 0) {
            assert_true(mb->files[i].no_templates);
            saw_literal = true;
        }
    }
    assert_true(saw_b64 && saw_literal);
    const struct coffer_mf_secret *s = coffer_manifest_secret(m, "pfKey");
    assert_int_equal(s->type, COFFER_SECRET_SYMMETRIC);
    assert_int_equal(s->size_bits, 128);
    assert_true(s->user_defined);
    const struct coffer_mf_secret *sc = coffer_manifest_secret(m, "shared-cert");
    assert_string_equal(sc->common_name, "svc");
    assert_int_equal(sc->dns_names_count, 2);
    assert_int_equal(m->users_count, 1);
    const struct coffer_mf_user *u = &m->users[0];
    assert_true(coffer_manifest_user_may(m, u, COFFER_ROLE_SECRETS, "pfKey", COFFER_ACTION_WRITE_SECRET));
    assert_true(coffer_manifest_user_may(m, u, COFFER_ROLE_SECRETS, "pfKey", COFFER_ACTION_READ_SECRET));
    assert_false(coffer_manifest_user_may(m, u, COFFER_ROLE_SECRETS, "shared-cert", COFFER_ACTION_READ_SECRET));
    assert_false(coffer_manifest_user_may(m, u, COFFER_ROLE_MANIFEST, NULL, COFFER_ACTION_UPDATE_MANIFEST));
    assert_ptr_equal(coffer_manifest_user_by_cert(m, u->cert_der, u->cert_der_size), u);
    assert_int_equal(coffer_manifest_check_templates(m), COFFER_OK);
    coffer_manifest_free(m);
}

/* Replace the first occurrence of from with to in the demo manifest and
 * expect a refusal naming path. */
static void expect_refused(const char *from, const char *to, const char *path_part)
{
    const char *base = demo_manifest();
    const char *at = strstr(base, from);
    if (at == NULL)
        fail_msg("test bug: '%s' not in the manifest", from);
    char buf[20000];
    snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - base), base, to, at + strlen(from));
    struct coffer_manifest *m = NULL;
    enum coffer_err r = coffer_manifest_parse(buf, strlen(buf), &m);
    if (r == COFFER_OK)
        r = coffer_manifest_check_templates(m);
    coffer_manifest_free(m);
    if (r == COFFER_OK)
        fail_msg("accepted after replacing '%s' with '%s'", from, to);
    if (strstr(coffer_err_detail(), path_part) == NULL)
        fail_msg("error '%s' does not name '%s'", coffer_err_detail(), path_part);
}

static void test_validation_refusals_name_the_field(void **state)
{
    (void)state;
    expect_refused("\"Package\": \"tf-server\"", "\"Package\": \"nope\"", "$.Marbles.tf-server.Package");
    /* a partial SGX identity is refused unless Debug is true (MarbleRun's rule) */
    expect_refused("\"ProductID\": 15, \"SecurityVersion\": 1, \"Debug\": true", "\"SecurityVersion\": 1",
                   "$.Packages.tf-server: give either UniqueID alone");
    expect_refused("\"Debug\": true}", "\"Debug\": false, \"UniqueID\": \"00\"}", "$.Packages.tf-server.UniqueID");
    expect_refused("\"ProductID\": 15", "\"ProductID\": 70000", "$.Packages.tf-server.ProductID");
    expect_refused("\"ProductID\": 15", "\"ProductID\": \"15\"", "$.Packages.tf-server.ProductID");
    expect_refused("\"TEE\": \"Simulation\"", "\"TEE\": \"Quantum\"", "$.Packages.sim.TEE");
    expect_refused("\"MaxActivations\": 3", "\"MaxActivations\": -1", "$.Marbles.tf-server.MaxActivations");
    expect_refused("\"Size\": 128", "\"Size\": 100", "$.Secrets.pfKey.Size");
    expect_refused("\"symmetric-key\"", "\"symmetric\"", "$.Secrets.pfKey.Type");
    expect_refused("\"Size\": 256", "\"Size\": 300", "$.Secrets.shared-cert.Size");
    expect_refused("\"ResourceNames\": [\"pfKey\"]", "\"ResourceNames\": [\"nope\"]", "$.Roles.secret-manager.ResourceNames");
    expect_refused("\"ResourceNames\": [\"pfKey\"]", "\"ResourceNames\": [\"shared-cert\"]", "WriteSecret");
    expect_refused("\"WriteSecret\"", "\"UpdateManifest\"", "$.Roles.secret-manager.Actions");
    expect_refused("\"Roles\": [\"secret-manager\"]", "\"Roles\": [\"nope\"]", "$.Users.tf-admin.Roles");
    expect_refused("\"Certificate\": \"-----BEGIN", "\"Certificate\": \"junk-----BEGIN", "");
    expect_refused("\"Encoding\": \"base64\"", "\"Encoding\": \"rot13\"", "$.Marbles.tf-server.Parameters.Files.plain.txt");
    expect_refused("\"aGVsbG8=\"", "\"aGVsbG8\"", "plain.txt");
    expect_refused("{{ raw .Secrets.pfKey }}", "{{ raw .Secrets.missing }}", "/dev/attestation/keys/default");
    expect_refused("{{ hex .Secrets.pfKey }}", "{{ raw .Secrets.pfKey }}", "raw is for Files only");
    expect_refused("{{ hex .Secrets.pfKey }}", "{{ pem .Secrets.pfKey }}", "pem needs");
    expect_refused("{{ hex .Secrets.pfKey }}", "{{ hex .Secrets.pfKey.Cert }}", "does not exist");
    expect_refused("{{ hex .Secrets.pfKey }}", "{{ .Secrets.pfKey }}", "expected {{ FUNC .Path }}");
    expect_refused("{{ pem .MarbleRun.MarbleCert.Public }}", "{{ pem .MarbleRun.MarbleCert.Private }}",
                   "keeps its own private key");
    expect_refused("{{ hex .Secrets.pfKey }}", "{{ hex .Secrets.pfKey", "no closing");
    expect_refused("\"Packages\": {", "\"packages\": {}, \"Packages\": {", "differ only in case");
    expect_refused("\"MaxActivations\": 3", "\"MaxActivations\": 3, \"TLS\": [\"web\"]", "$.Marbles.tf-server.TLS");
    expect_refused("\"Roles\": {", "\"Config\": {\"SealMode\": \"Magic\"}, \"Roles\": {", "$.Config.SealMode");
    expect_refused("\"Roles\": {", "\"Config\": {\"UpdateThreshold\": 1}, \"Roles\": {", "$.Config.UpdateThreshold");
    expect_refused("\"Roles\": {", "\"Config\": {\"FeatureGates\": [\"AzureHSMSealing\"]}, \"Roles\": {",
                   "$.Config.FeatureGates");
    expect_refused("\"Roles\": {", "\"Config\": {\"RecoveryThreshold\": 1}, \"Roles\": {", "$.Config.RecoveryThreshold");
    expect_refused("\"Secrets\": {\"pfKey\"",
                   "\"Secrets\": {\"p\": {\"Type\": \"plain\"}, \"pfKey\"", "$.Secrets.p.UserDefined");
    /* an empty Marbles map, and JSON that does not parse */
    const char *empty = "{\"Packages\": {\"a\": {\"UniqueID\": \"" "0000000000000000000000000000000000000000000000000000000000000000" "\"}}, \"Marbles\": {}}";
    struct coffer_manifest *m;
    assert_int_equal(coffer_manifest_parse(empty, strlen(empty), &m), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "$.Marbles"));
    assert_int_equal(coffer_manifest_parse("{\"Packages\": ", 13, &m), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "line 1"));
    assert_int_equal(coffer_manifest_parse("[]", 2, &m), COFFER_E_JSON);
}

static void test_duplicate_user_certificate(void **state)
{
    (void)state;
    const char *base = demo_manifest();
    char buf[30000];
    const char *at = strstr(base, "\"Roles\": {");
    snprintf(buf, sizeof(buf), "%.*s", (int)(at - base), base);
    char *users = strstr(buf, "\"Users\": {");
    assert_non_null(users);
    char tail[20000];
    snprintf(tail, sizeof(tail), "\"Users\": {\"twin\": {\"Certificate\": \"%s\"}, %s%s", cert1,
             users + strlen("\"Users\": {"), at);
    strcpy(users, tail);
    struct coffer_manifest *m;
    assert_int_equal(coffer_manifest_parse(buf, strlen(buf), &m), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "same certificate"));
}

struct fake {
    const char *key;
};

static enum coffer_err fake_lookup(void *arg, const char *path, const uint8_t **data, size_t *size,
                                   enum coffer_tmpl_form *form, int *secret_type)
{
    struct fake *f = arg;
    *secret_type = -1;
    *form = COFFER_TMPL_BYTES;
    if (strcmp(path, ".Secrets.pfKey") == 0) {
        *data = (const uint8_t *)f->key;
        *size = strlen(f->key);
        *secret_type = COFFER_SECRET_SYMMETRIC;
        return COFFER_OK;
    }
    if (strcmp(path, ".Secrets.note") == 0) {
        *data = (const uint8_t *)"plain text";
        *size = 10;
        *secret_type = COFFER_SECRET_PLAIN;
        return COFFER_OK;
    }
    if (strcmp(path, ".MarbleRun.MarbleCert.Cert") == 0) {
        *data = (const uint8_t *)"\x30\x03\x02\x01\x05";
        *size = 5;
        *form = COFFER_TMPL_CERT;
        return COFFER_OK;
    }
    return COFFER_E_NOT_FOUND;
}

static void render_expect(const char *tmpl, enum coffer_tmpl_kind kind, const char *want)
{
    struct fake f = {.key = "\x01\x02\xab"};
    struct coffer_buf out;
    coffer_buf_init(&out, 0, true);
    enum coffer_err r = coffer_tmpl_render((const uint8_t *)tmpl, strlen(tmpl), kind, fake_lookup, &f, &out);
    if (r != COFFER_OK)
        fail_msg("render '%s': %s", tmpl, coffer_err_detail());
    if (out.size != strlen(want) || (out.size > 0 && memcmp(out.data, want, out.size) != 0))
        fail_msg("render '%s' gave '%.*s', want '%s'", tmpl, (int)out.size, out.data, want);
    coffer_buf_free(&out);
}

static void test_template_rendering(void **state)
{
    (void)state;
    render_expect("key={{ hex .Secrets.pfKey }};", COFFER_TMPL_FILE, "key=0102ab;");
    render_expect("{{base64 .Secrets.pfKey}}", COFFER_TMPL_ENV, "AQKr");
    render_expect("[{{ raw .Secrets.pfKey }}]", COFFER_TMPL_FILE, "[\x01\x02\xab]");
    render_expect("a  \n {{- hex .Secrets.pfKey -}}  \n b", COFFER_TMPL_FILE, "a0102abb");
    render_expect("{{ pem .MarbleRun.MarbleCert.Cert }}", COFFER_TMPL_FILE,
                  "-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n");
    render_expect("{{ string .Secrets.note }}", COFFER_TMPL_ENV, "plain text");
    render_expect("no actions at all { } }}", COFFER_TMPL_FILE, "no actions at all { } }}");
    render_expect("", COFFER_TMPL_FILE, "");
    struct fake f = {.key = "k"};
    struct coffer_buf out;
    coffer_buf_init(&out, 0, true);
    const char *bad[] = {"{{ string .Secrets.pfKey }}", "{{ hex .Secrets.x }}", "{{ rot13 .Secrets.pfKey }}",
                         "{{ hex .Secrets.pfKey | upper }}", "{{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        coffer_buf_reset(&out);
        enum coffer_tmpl_kind kind = i == 0 ? COFFER_TMPL_ENV : COFFER_TMPL_FILE;
        assert_int_not_equal(coffer_tmpl_render((const uint8_t *)bad[i], strlen(bad[i]), kind, fake_lookup, &f, &out),
                             COFFER_OK);
    }
    coffer_buf_free(&out);
}

static enum coffer_err parse_body(void *arg)
{
    const char *j = arg;
    struct coffer_manifest *m;
    enum coffer_err r = coffer_manifest_parse(j, strlen(j), &m);
    if (r == COFFER_OK) {
        r = coffer_manifest_check_templates(m);
        coffer_manifest_free(m);
    }
    return r;
}

static void test_allocation_faults(void **state)
{
    (void)state;
    tu_fault_loop(parse_body, demo_manifest());
}

int test_pki_main(void);
int test_coord_main(void);

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_manifest_parses),
        cmocka_unit_test(test_validation_refusals_name_the_field),
        cmocka_unit_test(test_duplicate_user_certificate),
        cmocka_unit_test(test_template_rendering),
        cmocka_unit_test(test_allocation_faults),
    };
    int failed = cmocka_run_group_tests_name("coordinator_manifest", tests, setup, teardown);
    failed += test_pki_main();
    return failed + test_coord_main();
}
