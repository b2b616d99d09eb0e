/*
 * test_config.c — the model config file (protobuf text format of
 * ModelServerConfig) with its line/column errors, and the model base-path
 * layout: version scanning in a temporary folder and the version policies.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coffer/serve.h"

static enum coffer_err cfg(const char *text, struct coffer_serve_config *c)
{
    return coffer_serve_config_parse(text, strlen(text), c);
}

static void test_config_full(void **state)
{
    (void)state;
    const char *text =
        "# two models\n"
        "model_config_list {\n"
        "  config {\n"
        "    name: \"resnet\"  base_path: \"/models/resnet\"  model_platform: \"tensorflow\"\n"
        "    model_version_policy { specific { versions: 1 versions: 2 } }   # or latest / all\n"
        "    version_labels { key: \"stable\" value: 1 }\n"
        "    version_labels { key: 'canary' value: 2 }\n"
        "  }\n"
        "  config: <\n"
        "    name: 'bert' base_path: \"/models/\" \"bert\\x21\";\n"
        "    model_platform: \"onnx\",\n"
        "    model_version_policy: { latest: { num_versions: 3 } }\n"
        "  >\n"
        "  config { name: \"all\" base_path: \"/m\" model_version_policy { all {} } }\n"
        "  config { name: \"list\" base_path: \"/m\" model_version_policy { specific { versions: [4, 0x5, -1] } } }\n"
        "}\n";
    struct coffer_serve_config c;
    assert_int_equal(cfg(text, &c), COFFER_OK);
    assert_int_equal(c.model_count, 4);
    struct coffer_serve_model_config *m = &c.models[0];
    assert_string_equal(m->name, "resnet");
    assert_string_equal(m->base_path, "/models/resnet");
    assert_string_equal(m->platform, "tensorflow");
    assert_int_equal(m->policy.kind, COFFER_SERVE_POLICY_SPECIFIC);
    assert_int_equal(m->policy.version_count, 2);
    assert_int_equal(m->policy.versions[1], 2);
    assert_int_equal(m->label_count, 2);
    assert_string_equal(m->labels[0].label, "stable");
    assert_int_equal(m->labels[0].version, 1);
    assert_string_equal(m->labels[1].label, "canary");
    assert_int_equal(m->labels[1].version, 2);
    m = &c.models[1];
    assert_string_equal(m->name, "bert");
    assert_string_equal(m->base_path, "/models/bert!");
    assert_int_equal(m->policy.kind, COFFER_SERVE_POLICY_LATEST);
    assert_int_equal(m->policy.num_versions, 3);
    assert_int_equal(c.models[2].policy.kind, COFFER_SERVE_POLICY_ALL);
    assert_string_equal(c.models[2].platform, "");
    m = &c.models[3];
    assert_int_equal(m->policy.version_count, 3);
    assert_int_equal(m->policy.versions[1], 5);
    assert_int_equal(m->policy.versions[2], -1);
    coffer_serve_config_free(&c);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *detail;
    } cases[] = {
        {"model_config_list {\n  config { name: \"a\" base_path: \"/a\" }\n  bogus: 1\n}",
         "line 3 column 3: unknown or unsupported field 'bogus' in model_config_list"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" model_type: TENSORFLOW } }",
         "line 1 column 56: unknown or unsupported field 'model_type' in config"},
        {"model_config_list {\n config {\n  name: \"a\"\n }\n}", "line 2 column 2: config \"a\" without a base_path"},
        {"model_config_list { config { base_path: \"/a\" } }", "line 1 column 21: config without a name"},
        {"model_config_list { config { name: a base_path: \"/a\" } }",
         "line 1 column 30: field 'name' expects a quoted string"},
        {"model_config_list { config { name: \"a\n\" } }", "line 1 column 36: unterminated string"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" }", "line 1 column 57: missing '}' before the end"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" } }\nmodel_config_list {}",
         "line 2 column 1: field 'model_config_list' is given more than once"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" } config { name: \"a\" base_path: \"/b\" } }",
         "line 1 column 58: model \"a\" is configured more than once"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\"\n"
         "  model_version_policy { latest { num_versions: -1 } } } }",
         "line 2 column 35: field 'num_versions': -1 is out of range"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\"\n"
         "  model_version_policy { latest {} all {} } } }",
         "line 2 column 36: model_version_policy holds more than one of latest, all, specific"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\"\n"
         "  model_version_policy { specific {} } } }",
         "line 2 column 26: specific lists no versions"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\"\n"
         "  version_labels { key: \"x\" value: 1 } version_labels { key: \"x\" value: 2 } } }",
         "line 2 column 40: version label \"x\" is given more than once"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" model_platform: \"pytorch\" } }",
         "line 1 column 56: model_platform \"pytorch\" is not supported"},
        {"model_config_list { config { name \"a\" } }", "line 1 column 35: expected ':' after field name 'name'"},
        {"model_config_list { config { name: \"a\\q\" } }", "line 1 column 38: unknown escape \\q"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" version_labels { key: \"x\" value: "
         "99999999999999999999 } } }",
         "line 1 column 82: field 'value': 99999999999999999999 is out of range"},
        {"model_config_list { config { name: \"a\" base_path: \"/a\" } } }", "line 1 column 60: expected a field name"},
        {"", "line 1 column 1: no model_config_list"},
        {"custom_model_config { }", "line 1 column 1: unknown or unsupported field 'custom_model_config'"},
        {"model_config_list { config { name: \"a\" @ } }", "line 1 column 40: unexpected character '@'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct coffer_serve_config c;
        enum coffer_err r = cfg(cases[i].text, &c);
        if (r != COFFER_E_MALFORMED)
            fail_msg("case %zu: %s (%s)", i, coffer_err_name(r), coffer_err_detail());
        assert_null(c.models);
        if (strstr(coffer_err_detail(), cases[i].detail) == NULL)
            fail_msg("case %zu: detail \"%s\", want \"%s\"", i, coffer_err_detail(), cases[i].detail);
    }
}

static void test_config_caps(void **state)
{
    (void)state;
    char text[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "a {");
    struct coffer_serve_config c;
    assert_int_equal(cfg(text, &c), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "nested deeper than 16"));

    /* 1025 labels: refused by count, before the quadratic duplicate check */
    size_t cap = 64 * 1100;
    char *big = malloc(cap);
    size_t len = (size_t)snprintf(big, cap, "model_config_list { config { name: \"a\" base_path: \"/a\"\n");
    for (int i = 0; i < 1025; i++)
        len += (size_t)snprintf(big + len, cap - len, "version_labels { key: \"l%d\" value: %d }\n", i, i);
    snprintf(big + len, cap - len, "} }");
    assert_int_equal(cfg(big, &c), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "line 1026 column 1: more than 1024 version_labels"));
    free(big);
}

static enum coffer_err config_fault_body(void *arg)
{
    (void)arg;
    struct coffer_serve_config c;
    enum coffer_err r = cfg("model_config_list { config { name: \"a\" base_path: \"/a\"\n"
                            " model_version_policy { specific { versions: [1, 2] } }\n"
                            " version_labels { key: \"x\" value: 1 } } }",
                            &c);
    if (r != COFFER_OK)
        return r;
    coffer_serve_config_free(&c);
    const char *ssl = "server_key: \"k\" server_cert: 'c' custom_ca: \"a\" client_verify: true";
    struct coffer_serve_ssl_config sc;
    if ((r = coffer_serve_ssl_config_parse(ssl, strlen(ssl), &sc)) != COFFER_OK)
        return r;
    coffer_serve_ssl_config_free(&sc);
    const char *bt = "max_batch_size { value: 4 } allowed_batch_sizes: [2, 4] thread_pool_name { value: \"p\" }";
    struct coffer_serve_batching_config b;
    if ((r = coffer_serve_batching_config_parse(bt, strlen(bt), &b)) != COFFER_OK)
        return r;
    coffer_serve_batching_config_free(&b);
    struct coffer_serve_monitoring_config m;
    if ((r = coffer_serve_monitoring_config_parse("prometheus_config { enable: 1 }", 31, &m)) != COFFER_OK)
        return r;
    coffer_serve_monitoring_config_free(&m);
    return COFFER_OK;
}

static void test_config_alloc_faults(void **state)
{
    (void)state;
    tu_fault_loop(config_fault_body, NULL);
}

/* ------------------------------------------------------------- versions */

static void touch_dir(const char *base, const char *name)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", base, name);
    assert_int_equal(mkdir(p, 0700), 0);
}

static void test_versions_scan(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    int64_t *v;
    size_t n;
    assert_int_equal(coffer_serve_model_versions_scan(dir, &v, &n), COFFER_OK);
    assert_int_equal(n, 0);
    assert_null(v);

    touch_dir(dir, "1");
    touch_dir(dir, "10");
    touch_dir(dir, "2");
    touch_dir(dir, "007");
    touch_dir(dir, "tmp");
    touch_dir(dir, "3a");
    touch_dir(dir, ".5");
    touch_dir(dir, "99999999999999999999"); /* over int64: not a version */
    char p[4096];
    snprintf(p, sizeof(p), "%s/42", dir); /* a file, not a folder */
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(coffer_serve_model_versions_scan(dir, &v, &n), COFFER_OK);
    assert_int_equal(n, 4);
    assert_int_equal(v[0], 10);
    assert_int_equal(v[1], 7);
    assert_int_equal(v[2], 2);
    assert_int_equal(v[3], 1);

    int64_t *sel;
    size_t ns;
    struct coffer_serve_version_policy pol = {.kind = COFFER_SERVE_POLICY_LATEST};
    assert_int_equal(coffer_serve_version_policy_apply(&pol, v, n, &sel, &ns), COFFER_OK);
    assert_int_equal(ns, 1);
    assert_int_equal(sel[0], 10);
    coffer_free(sel);
    pol.num_versions = 3;
    assert_int_equal(coffer_serve_version_policy_apply(&pol, v, n, &sel, &ns), COFFER_OK);
    assert_int_equal(ns, 3);
    assert_int_equal(sel[2], 2);
    coffer_free(sel);
    pol.kind = COFFER_SERVE_POLICY_ALL;
    assert_int_equal(coffer_serve_version_policy_apply(&pol, v, n, &sel, &ns), COFFER_OK);
    assert_int_equal(ns, 4);
    coffer_free(sel);
    int64_t want[] = {2, 3, 10};
    pol = (struct coffer_serve_version_policy){.kind = COFFER_SERVE_POLICY_SPECIFIC, .versions = want,
                                               .version_count = 3};
    assert_int_equal(coffer_serve_version_policy_apply(&pol, v, n, &sel, &ns), COFFER_OK);
    assert_int_equal(ns, 2);
    assert_int_equal(sel[0], 10);
    assert_int_equal(sel[1], 2);
    coffer_free(sel);
    coffer_free(v);

    snprintf(p, sizeof(p), "%s/missing", dir);
    assert_int_equal(coffer_serve_model_versions_scan(p, &v, &n), COFFER_E_NOT_FOUND);
    tu_rmtree(dir);
    free(dir);
}

static void test_version_resolve(void **state)
{
    (void)state;
    struct coffer_serve_version_status v[] = {
        {.version = 3, .state = COFFER_SERVE_STATE_LOADING},
        {.version = 2, .state = COFFER_SERVE_STATE_AVAILABLE},
        {.version = 1, .state = COFFER_SERVE_STATE_AVAILABLE},
    };
    struct coffer_serve_version_label l[] = {{.label = "stable", .version = 1}, {.label = "canary", .version = 3}};
    struct coffer_serve_status st;
    int64_t got;
    /* latest AVAILABLE, not the newest folder */
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, false, 0, NULL, &got, &st), COFFER_OK);
    assert_int_equal(got, 2);
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, true, 1, NULL, &got, &st), COFFER_OK);
    assert_int_equal(got, 1);
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, false, 0, "stable", &got, &st), COFFER_OK);
    assert_int_equal(got, 1);
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, true, 3, NULL, &got, &st), COFFER_E_NOT_FOUND);
    assert_string_equal(st.message, "Servable not found for request: Specific(m, 3)");
    assert_int_equal(coffer_serve_code_http(st.code), 404);
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, false, 0, "canary", &got, &st), COFFER_E_NOT_FOUND);
    assert_string_equal(st.message, "Servable not found for request: Specific(m, 3)");
    assert_int_equal(coffer_serve_version_resolve("m", v, 3, l, 2, false, 0, "foo", &got, &st), COFFER_E_MALFORMED);
    assert_string_equal(st.message, "Unrecognized servable version label: foo");
    assert_int_equal(coffer_serve_code_http(st.code), 400);
    assert_int_equal(coffer_serve_version_resolve("m", v, 1, l, 2, false, 0, NULL, &got, &st), COFFER_E_NOT_FOUND);
    assert_string_equal(st.message, "Servable not found for request: Latest(m)");
}

/* The MarbleRun TF demo's ssl.cfg shape: PEM contents inline. */
static void test_ssl_config(void **state)
{
    (void)state;
    const char *text = "server_key: \"-----BEGIN PRIVATE KEY-----\\nMIG\\n-----END PRIVATE KEY-----\"\n"
                       "server_cert: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\"\n"
                       "custom_ca: \"-----BEGIN CERTIFICATE-----\\nCA\\n-----END CERTIFICATE-----\"\n"
                       "client_verify: true\n";
    struct coffer_serve_ssl_config c;
    assert_int_equal(coffer_serve_ssl_config_parse(text, strlen(text), &c), COFFER_OK);
    assert_string_equal(c.server_key, "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----");
    assert_string_equal(c.server_cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
    assert_true(c.client_verify);
    coffer_serve_ssl_config_free(&c);
    assert_null(c.server_key);

    static const struct {
        const char *text, *detail;
    } bad[] = {
        {"server_cert: \"c\"", "ssl config: line 1 column 1: server_key is missing"},
        {"server_key: \"k\" server_cert: \"c\" client_verify: true",
         "ssl config: line 1 column 1: client_verify needs custom_ca"},
        {"server_key: \"k\" server_cert: \"c\" client_verify: maybe",
         "ssl config: line 1 column 34: field 'client_verify' expects true or false"},
        {"server_key: \"k\" server_cert: \"c\" server_key: \"k2\"",
         "ssl config: line 1 column 34: field 'server_key' is given more than once"},
        {"server_key: \"k\" sever_cert: \"c\"", "ssl config: line 1 column 17: unknown or unsupported field 'sever_cert'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(coffer_serve_ssl_config_parse(bad[i].text, strlen(bad[i].text), &c), COFFER_E_MALFORMED);
        assert_null(c.server_key);
        if (strstr(coffer_err_detail(), bad[i].detail) == NULL)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, coffer_err_detail(), bad[i].detail);
    }
}

static void test_monitoring_and_batching_config(void **state)
{
    (void)state;
    struct coffer_serve_monitoring_config m;
    const char *mt = "prometheus_config { enable: true, path: \"/metrics\" }";
    assert_int_equal(coffer_serve_monitoring_config_parse(mt, strlen(mt), &m), COFFER_OK);
    assert_true(m.prometheus_enable);
    assert_string_equal(m.prometheus_path, "/metrics");
    coffer_serve_monitoring_config_free(&m);
    mt = "prometheus_config { enable: true }";
    assert_int_equal(coffer_serve_monitoring_config_parse(mt, strlen(mt), &m), COFFER_OK);
    assert_string_equal(m.prometheus_path, "/monitoring/prometheus/metrics");
    coffer_serve_monitoring_config_free(&m);
    mt = "prometheus_config { path: \"metrics\" }";
    assert_int_equal(coffer_serve_monitoring_config_parse(mt, strlen(mt), &m), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "monitoring config: line 1 column 21: path \"metrics\" does not start"));

    struct coffer_serve_batching_config b;
    const char *bt = "max_batch_size { value: 128 }\n"
                     "batch_timeout_micros { value: 0 }\n"
                     "max_enqueued_batches { value: 1000000 }\n"
                     "num_batch_threads { value: 8 }\n"
                     "allowed_batch_sizes: 32\nallowed_batch_sizes: 64\nallowed_batch_sizes: 128\n"
                     "pad_variable_length_inputs: true\n";
    assert_int_equal(coffer_serve_batching_config_parse(bt, strlen(bt), &b), COFFER_OK);
    assert_int_equal(b.max_batch_size, 128);
    assert_int_equal(b.batch_timeout_micros, 0);
    assert_int_equal(b.max_enqueued_batches, 1000000);
    assert_int_equal(b.num_batch_threads, 8);
    assert_int_equal(b.allowed_batch_size_count, 3);
    assert_int_equal(b.allowed_batch_sizes[2], 128);
    assert_true(b.pad_variable_length_inputs);
    assert_string_equal(b.thread_pool_name, "batch_threads");
    coffer_serve_batching_config_free(&b);
    /* defaults */
    assert_int_equal(coffer_serve_batching_config_parse("", 0, &b), COFFER_OK);
    assert_int_equal(b.max_batch_size, 1000);
    assert_int_equal(b.max_enqueued_batches, 10);
    assert_int_equal(b.num_batch_threads, 0);
    coffer_serve_batching_config_free(&b);
    static const struct {
        const char *text, *detail;
    } bad[] = {
        {"max_batch_size { value: 0 }", "batching config: line 1 column 18: field 'value': 0 is out of range"},
        {"max_batch_size { value: 64 } allowed_batch_sizes: 32 allowed_batch_sizes: 16",
         "batching config: line 1 column 54: allowed_batch_sizes must increase: 16 after 32"},
        {"max_batch_size { value: 64 } allowed_batch_sizes: 32",
         "batching config: line 1 column 1: the last allowed_batch_sizes entry (32) must equal max_batch_size (64)"},
        {"max_batch_size { value: 64 } max_batch_size { value: 65 }",
         "batching config: line 1 column 30: field 'max_batch_size' is given more than once"},
        {"max_batch_size { val: 64 }", "batching config: line 1 column 1: field 'max_batch_size' expects { value: ... }"},
        {"max_execution_batch_size { value: 8 }", "max_execution_batch_size needs enable_large_batch_splitting"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(coffer_serve_batching_config_parse(bad[i].text, strlen(bad[i].text), &b), COFFER_E_MALFORMED);
        assert_null(b.allowed_batch_sizes);
        if (strstr(coffer_err_detail(), bad[i].detail) == NULL)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, coffer_err_detail(), bad[i].detail);
    }
}

int test_config_main(void);
int test_config_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_full),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_caps),
        cmocka_unit_test(test_config_alloc_faults),
        cmocka_unit_test(test_versions_scan),
        cmocka_unit_test(test_version_resolve),
        cmocka_unit_test(test_ssl_config),
        cmocka_unit_test(test_monitoring_and_batching_config),
    };
    return cmocka_run_group_tests_name("serve_config", tests, NULL, NULL);
}
