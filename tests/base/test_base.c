/*
 * test_base.c — the foundation: errors, reader, builder, arena, secrets,
 * encodings, storage I/O, atomic files, JSON.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_err_table_complete(void **state)
{
    (void)state;
    for (int i = 0; i < COFFER_ERR_COUNT; i++) {
        enum coffer_err e = (enum coffer_err)-i;
        assert_non_null(coffer_strerror(e));
        assert_string_not_equal(coffer_err_name(e), "");
        if (i > 1)
            assert_string_not_equal(coffer_strerror(e), "unknown error");
    }
    assert_string_equal(coffer_strerror((enum coffer_err)-1000), "unknown error");
}

static void test_err_detail_and_context(void **state)
{
    (void)state;
    enum coffer_err r = COFFER_FAIL(COFFER_E_MALFORMED, "field %s at %d", "x", 3);
    assert_int_equal(r, COFFER_E_MALFORMED);
    assert_string_equal(coffer_err_detail(), "field x at 3");
    coffer_err_context("reading %s", "f.bin");
    assert_string_equal(coffer_err_detail(), "reading f.bin: field x at 3");
    char buf[128];
    assert_string_equal(coffer_err_format(r, buf, sizeof(buf)), "malformed input: reading f.bin: field x at 3");
    coffer_err_clear();
    assert_string_equal(coffer_err_detail(), "");
}

static void test_rd_integers_and_bounds(void **state)
{
    (void)state;
    const uint8_t d[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    struct coffer_rd rd;
    coffer_rd_init(&rd, d, sizeof(d));
    uint8_t a;
    uint16_t b;
    uint32_t c;
    uint64_t e;
    assert_int_equal(coffer_rd_u8(&rd, &a), COFFER_OK);
    assert_int_equal(a, 1);
    assert_int_equal(coffer_rd_u16le(&rd, &b), COFFER_OK);
    assert_int_equal(b, 0x0302);
    assert_int_equal(coffer_rd_u32be(&rd, &c), COFFER_OK);
    assert_int_equal(c, 0x04050607);
    /* 4 bytes left: a u64 must fail without moving */
    assert_int_equal(coffer_rd_u64le(&rd, &e), COFFER_E_TRUNCATED);
    assert_int_equal(rd.pos, 7);
    assert_non_null(strstr(coffer_err_detail(), "need 8 bytes at offset 7, 4 left"));
    assert_int_equal(coffer_rd_u32le(&rd, &c), COFFER_OK);
    assert_int_equal(c, 0x0b0a0908);
    assert_int_equal(coffer_rd_expect_end(&rd), COFFER_OK);
    assert_int_equal(coffer_rd_u8(&rd, &a), COFFER_E_TRUNCATED);
}

static void test_rd_sub_bytes_skip(void **state)
{
    (void)state;
    const uint8_t d[] = {3, 'a', 'b', 'c', 9};
    struct coffer_rd rd, sub;
    coffer_rd_init(&rd, d, sizeof(d));
    uint8_t n;
    const uint8_t *p;
    assert_int_equal(coffer_rd_u8(&rd, &n), COFFER_OK);
    assert_int_equal(coffer_rd_sub(&rd, n, &sub), COFFER_OK);
    assert_int_equal(coffer_rd_bytes(&sub, 3, &p), COFFER_OK);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(coffer_rd_expect_end(&sub), COFFER_OK);
    assert_int_equal(coffer_rd_expect_end(&rd), COFFER_E_TRAILING);
    assert_int_equal(coffer_rd_skip(&rd, 2), COFFER_E_TRUNCATED);
    assert_int_equal(coffer_rd_skip(&rd, 1), COFFER_OK);
    assert_int_equal(coffer_rd_sub(&rd, SIZE_MAX, &sub), COFFER_E_TRUNCATED);
}

static void test_varint_roundtrip_and_errors(void **state)
{
    (void)state;
    const uint64_t vals[] = {0, 1, 127, 128, 300, 1ull << 35, UINT64_MAX};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct coffer_buf b;
        coffer_buf_init(&b, 0, false);
        assert_int_equal(coffer_buf_put_varint(&b, vals[i]), COFFER_OK);
        struct coffer_rd rd;
        coffer_rd_init(&rd, b.data, b.size);
        uint64_t v;
        assert_int_equal(coffer_rd_varint(&rd, &v), COFFER_OK);
        assert_true(v == vals[i]);
        assert_int_equal(coffer_rd_expect_end(&rd), COFFER_OK);
        coffer_buf_free(&b);
    }
    const uint8_t trunc[] = {0x80, 0x80};
    const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    const uint8_t toolong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    struct coffer_rd rd;
    uint64_t v;
    coffer_rd_init(&rd, trunc, sizeof(trunc));
    assert_int_equal(coffer_rd_varint(&rd, &v), COFFER_E_TRUNCATED);
    assert_int_equal(rd.pos, 0);
    coffer_rd_init(&rd, over, sizeof(over));
    assert_int_equal(coffer_rd_varint(&rd, &v), COFFER_E_MALFORMED);
    coffer_rd_init(&rd, toolong, sizeof(toolong));
    assert_int_equal(coffer_rd_varint(&rd, &v), COFFER_E_MALFORMED);
}

static void test_buf_cap_and_secret(void **state)
{
    (void)state;
    struct coffer_buf b;
    coffer_buf_init(&b, 10, true);
    assert_int_equal(coffer_buf_put(&b, "0123456789", 10), COFFER_OK);
    assert_int_equal(coffer_buf_put_u8(&b, 1), COFFER_E_TOO_LARGE);
    assert_int_equal(b.size, 10);
    coffer_buf_free(&b);
    coffer_buf_init(&b, 0, false);
    assert_int_equal(coffer_buf_printf(&b, "%s-%d", "ab", 42), COFFER_OK);
    assert_int_equal(coffer_buf_put_u32le(&b, 0x01020304), COFFER_OK);
    assert_int_equal(b.size, 9);
    assert_memory_equal(b.data, "ab-42\x04\x03\x02\x01", 9);
    size_t n;
    uint8_t *p = coffer_buf_steal(&b, &n);
    assert_int_equal(n, 9);
    assert_null(b.data);
    coffer_free(p);
}

static void test_arena(void **state)
{
    (void)state;
    struct coffer_arena *a;
    assert_int_equal(coffer_arena_new(1024, &a), COFFER_OK);
    for (int i = 0; i < 100; i++) {
        uint8_t *p = coffer_arena_alloc(a, (size_t)i * 7 + 1, 64);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 64, 0);
        for (int k = 0; k < i * 7 + 1; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xab, (size_t)i * 7 + 1);
    }
    void *big = coffer_arena_alloc(a, 100000, 16);
    assert_non_null(big);
    assert_null(coffer_arena_alloc(a, SIZE_MAX - 8, 16));
    assert_null(coffer_arena_alloc(a, 8, 3));
    char *s = coffer_arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    coffer_arena_reset(a);
    assert_int_equal(coffer_arena_used(a), 0);
    uint8_t *p = coffer_arena_alloc(a, 32, 8);
    for (int k = 0; k < 32; k++)
        assert_int_equal(p[k], 0);
    coffer_arena_free(a);
}

static void test_secret_and_ct(void **state)
{
    (void)state;
    struct coffer_secret *s;
    assert_int_equal(coffer_secret_new(100, &s), COFFER_OK);
    assert_int_equal(s->size, 100);
    memset(s->data, 0x5a, 100);
    coffer_secret_free(s);
    coffer_secret_free(NULL);
    /* from 2 MiB: whole 2 MiB pages (nn's arenas, decrypted models), zeroed,
     * every byte of the size usable; below: whole 4 KiB pages */
    const size_t huge = (size_t)2 << 20, sizes[] = {huge - 4096, huge, huge + 1, 3 * huge + 12345};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(coffer_secret_new(sizes[i], &s), COFFER_OK);
        assert_int_equal(s->size, sizes[i]);
        size_t align = sizes[i] >= huge ? huge : 4096;
        assert_int_equal((uintptr_t)s->data % align, 0);
        assert_int_equal(s->map_size % align, 0);
        assert_true(s->map_size >= sizes[i] && s->map_size < sizes[i] + align);
        assert_int_equal(s->data[0] | s->data[sizes[i] / 2] | s->data[sizes[i] - 1], 0);
        memset(s->data, 0x5a, sizes[i]);
        coffer_secret_free(s);
    }
    uint8_t a[16] = {1}, b[16] = {1};
    assert_true(coffer_ct_eq(a, b, 16));
    b[15] = 2;
    assert_false(coffer_ct_eq(a, b, 16));
    uint8_t r1[32], r2[32];
    assert_int_equal(coffer_random(r1, 32), COFFER_OK);
    assert_int_equal(coffer_random(r2, 32), COFFER_OK);
    assert_false(coffer_ct_eq(r1, r2, 32));
}

static void test_hex(void **state)
{
    (void)state;
    uint8_t in[3] = {0x00, 0xab, 0xff}, out[3];
    char hex[7];
    coffer_hex_encode(in, 3, hex);
    assert_string_equal(hex, "00abff");
    assert_int_equal(coffer_hex_decode("00ABff\n", 7, out, 3), COFFER_OK);
    assert_memory_equal(in, out, 3);
    assert_int_equal(coffer_hex_decode("00abf", 5, out, 3), COFFER_E_MALFORMED);
    assert_int_equal(coffer_hex_decode("00abfg", 6, out, 3), COFFER_E_MALFORMED);
    assert_non_null(strstr(coffer_err_detail(), "offset 5"));
}

static void test_base64(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < 7; i++) {
        char enc[16];
        coffer_base64_encode(cases[i][0], strlen(cases[i][0]), enc);
        assert_string_equal(enc, cases[i][1]);
        uint8_t *dec;
        size_t n;
        assert_int_equal(coffer_base64_decode(enc, strlen(enc), &dec, &n), COFFER_OK);
        assert_int_equal(n, strlen(cases[i][0]));
        assert_memory_equal(dec, cases[i][0], n);
        coffer_free(dec);
    }
    uint8_t *dec;
    size_t n;
    assert_int_equal(coffer_base64_decode("Zm9", 3, &dec, &n), COFFER_E_MALFORMED);
    assert_int_equal(coffer_base64_decode("Zm=v", 4, &dec, &n), COFFER_E_MALFORMED);
    assert_int_equal(coffer_base64_decode("Zh==", 4, &dec, &n), COFFER_E_MALFORMED); /* non-canonical */
    assert_int_equal(coffer_base64_decode("Zm9v\n", 5, &dec, &n), COFFER_E_MALFORMED);
}

static void test_io_mem(void **state)
{
    (void)state;
    struct coffer_io_mem m;
    coffer_io_mem_init_rw(&m);
    assert_int_equal(coffer_io_write(&m.io, 10, "abc", 3), COFFER_OK);
    uint64_t size;
    assert_int_equal(m.io.ops->get_size(m.io.ctx, &size), COFFER_OK);
    assert_int_equal(size, 13);
    uint8_t buf[13];
    assert_int_equal(coffer_io_read(&m.io, 0, buf, 13), COFFER_OK);
    assert_int_equal(buf[0], 0);
    assert_memory_equal(buf + 10, "abc", 3);
    assert_int_equal(coffer_io_read(&m.io, 11, buf, 3), COFFER_E_TRUNCATED);
    assert_int_equal(m.io.ops->truncate(m.io.ctx, 11), COFFER_OK);
    assert_int_equal(coffer_io_read(&m.io, 10, buf, 2), COFFER_E_TRUNCATED);
    coffer_io_mem_release(&m);
    struct coffer_io_mem ro;
    coffer_io_mem_init_ro(&ro, "xyz", 3);
    assert_int_equal(coffer_io_write(&ro.io, 0, "a", 1), COFFER_E_PERM);
}

static void test_atomic_file(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char path[600];
    snprintf(path, sizeof(path), "%s/f.txt", dir);
    assert_int_equal(coffer_file_write_atomic(path, "old", 3, 0600), COFFER_OK);
    struct coffer_atomic_file af;
    assert_int_equal(coffer_atomic_open(path, 0600, &af), COFFER_OK);
    assert_int_equal(coffer_write_all(af.fd, "new contents", 12), COFFER_OK);
    size_t n;
    uint8_t *p = tu_read(path, &n); /* until commit, the old file stands */
    assert_int_equal(n, 3);
    coffer_free(p);
    coffer_atomic_abort(&af);
    p = tu_read(path, &n);
    assert_memory_equal(p, "old", 3);
    coffer_free(p);
    assert_int_equal(coffer_atomic_open(path, 0600, &af), COFFER_OK);
    assert_int_equal(coffer_write_all(af.fd, "new contents", 12), COFFER_OK);
    assert_int_equal(coffer_atomic_commit(&af), COFFER_OK);
    p = tu_read(path, &n);
    assert_int_equal(n, 12);
    coffer_free(p);
    /* no temporary files left behind */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    char sub[700];
    snprintf(sub, sizeof(sub), "%s/a/b/c", dir);
    assert_int_equal(coffer_mkdir_p(sub, 0755), COFFER_OK);
    assert_int_equal(coffer_mkdir_p(sub, 0755), COFFER_OK);
    assert_int_equal(coffer_file_write_atomic("/nonexistent-dir/x", "a", 1, 0600), COFFER_E_NOT_FOUND);
    assert_int_equal(coffer_file_read_all("/nonexistent-file", 10, &p, &n), COFFER_E_NOT_FOUND);
    assert_int_equal(coffer_file_read_all(path, 4, &p, &n), COFFER_E_TOO_LARGE);
    struct coffer_secret *s;
    assert_int_equal(coffer_file_read_secret(path, 100, &s), COFFER_OK);
    assert_memory_equal(s->data, "new contents", 12);
    coffer_secret_free(s);
    /* a mapped file: its bytes, the same limits and errors as a read */
    struct coffer_file_map fm;
    assert_int_equal(coffer_file_map(path, 100, &fm), COFFER_OK);
    assert_int_equal(fm.size, 12);
    assert_memory_equal(fm.data, "new contents", 12);
    coffer_file_map_release(&fm); /* the pages leave the resident set; the bytes read back */
    assert_memory_equal(fm.data, "new contents", 12);
    coffer_file_map_release(&fm);
    coffer_file_unmap(&fm);
    assert_null(fm.data);
    assert_int_equal(fm.size, 0);
    coffer_file_unmap(&fm); /* twice: nothing */
    assert_int_equal(coffer_file_map(path, 11, &fm), COFFER_E_TOO_LARGE);
    assert_null(fm.data);
    assert_int_equal(coffer_file_map("/nonexistent-file", 10, &fm), COFFER_E_NOT_FOUND);
    assert_int_equal(coffer_file_map(dir, 10, &fm), COFFER_E_INVALID_ARG); /* not a regular file */
    char empty[700];
    snprintf(empty, sizeof(empty), "%s/empty", dir);
    assert_int_equal(coffer_file_write_atomic(empty, "", 0, 0600), COFFER_OK);
    assert_int_equal(coffer_file_map(empty, 10, &fm), COFFER_OK);
    assert_non_null(fm.data);
    assert_int_equal(fm.size, 0);
    coffer_file_map_release(&fm); /* nothing mapped: nothing */
    coffer_file_unmap(&fm);
    tu_rmtree(dir);
    free(dir);
}

static void test_json(void **state)
{
    (void)state;
    json_t *v;
    const char *ok = "{\"a\": \"x\", \"n\": 5, \"b\": true, \"o\": {}, \"l\": []}";
    assert_int_equal(coffer_json_parse(ok, strlen(ok), 1000, &v), COFFER_OK);
    const char *s = NULL;
    int64_t n = 0;
    bool b = false;
    json_t *o, *l;
    assert_int_equal(coffer_json_get_string(v, "$", "a", true, &s), COFFER_OK);
    assert_string_equal(s, "x");
    assert_int_equal(coffer_json_get_int(v, "$", "n", true, &n), COFFER_OK);
    assert_int_equal(n, 5);
    assert_int_equal(coffer_json_get_bool(v, "$", "b", true, &b), COFFER_OK);
    assert_true(b);
    assert_int_equal(coffer_json_get_object(v, "$", "o", true, &o), COFFER_OK);
    assert_int_equal(coffer_json_get_array(v, "$", "l", true, &l), COFFER_OK);
    assert_int_equal(coffer_json_get_int(v, "$", "a", true, &n), COFFER_E_JSON);
    assert_string_equal(coffer_err_detail(), "$.a: expected an integer, got a string");
    assert_int_equal(coffer_json_get_string(v, "$.x", "missing", true, &s), COFFER_E_JSON);
    assert_string_equal(coffer_err_detail(), "$.x.missing: required member is missing");
    s = "keep";
    assert_int_equal(coffer_json_get_string(v, "$", "missing", false, &s), COFFER_OK);
    assert_string_equal(s, "keep");
    char *dump;
    size_t dn;
    assert_int_equal(coffer_json_dump(v, &dump, &dn), COFFER_OK);
    assert_string_equal(dump, "{\"a\":\"x\",\"b\":true,\"l\":[],\"n\":5,\"o\":{}}");
    coffer_free(dump);
    json_decref(v);
    const char *dup = "{\"a\": 1, \"a\": 2}";
    assert_int_equal(coffer_json_parse(dup, strlen(dup), 1000, &v), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "duplicate"));
    const char *bad = "{\"a\": 1,\n \"b\": }";
    assert_int_equal(coffer_json_parse(bad, strlen(bad), 1000, &v), COFFER_E_JSON);
    assert_non_null(strstr(coffer_err_detail(), "line 2"));
    assert_int_equal(coffer_json_parse(ok, strlen(ok), 10, &v), COFFER_E_TOO_LARGE);
    const char *trailing = "{} x";
    assert_int_equal(coffer_json_parse(trailing, strlen(trailing), 100, &v), COFFER_E_JSON);
}

static enum coffer_err fault_body(void *arg)
{
    (void)arg;
    struct coffer_buf b;
    coffer_buf_init(&b, 0, true);
    enum coffer_err r = COFFER_OK;
    for (int i = 0; i < 50 && r == COFFER_OK; i++)
        r = coffer_buf_printf(&b, "line %d of a growing buffer\n", i);
    coffer_buf_free(&b);
    if (r != COFFER_OK)
        return r;
    struct coffer_arena *a;
    if ((r = coffer_arena_new(512, &a)) != COFFER_OK)
        return r;
    for (int i = 0; i < 20; i++)
        if (coffer_arena_alloc(a, 400, 8) == NULL) {
            r = COFFER_E_NOMEM;
            break;
        }
    coffer_arena_free(a);
    if (r != COFFER_OK)
        return r;
    if ((r = coffer_arena_new_secret(512, &a)) != COFFER_OK)
        return r;
    for (int i = 0; i < 20; i++)
        if (coffer_arena_alloc(a, i == 10 ? 5000 : 400, 8) == NULL) {
            r = COFFER_E_NOMEM;
            break;
        }
    coffer_arena_free(a);
    return r;
}

/* A secret arena: zero-filled, aligned; a request of more than a quarter
 * of the block gets a block of its own and the current block goes on
 * serving; reset keeps the first block, wiped. */
static void test_arena_secret(void **state)
{
    (void)state;
    struct coffer_arena *a;
    assert_int_equal(coffer_arena_new_secret(1024, &a), COFFER_OK);
    uint8_t *p0 = coffer_arena_alloc(a, 100, 64);
    assert_non_null(p0);
    assert_int_equal((uintptr_t)p0 % 64, 0);
    memset(p0, 0x5a, 100);
    /* larger than the block: a solo block */
    uint8_t *big = coffer_arena_alloc(a, 300000, 4096);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 4096, 0);
    for (size_t k = 0; k < 300000; k += 997)
        assert_int_equal(big[k], 0);
    memset(big, 0xc3, 300000);
    /* the first block still serves: the next small allocation follows p0 */
    uint8_t *p1 = coffer_arena_alloc(a, 16, 16);
    assert_non_null(p1);
    assert_true(p1 >= p0 + 100 && p1 < p0 + 1024);
    /* small ones fill blocks in turn (four or five of 200 bytes a
     * 1024-byte block); one over a quarter of the block (300 bytes) goes
     * into the current block where it fits, else apart */
    uint8_t *prev = NULL;
    int jumps = 0;
    for (int i = 0; i < 200; i++) {
        size_t n = i % 10 == 5 ? 300 : 200;
        uint8_t *p = coffer_arena_alloc(a, n, 8);
        assert_non_null(p);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(p[k], 0);
        memset(p, i, n);
        if (n == 200) {
            if (prev != NULL && p != prev + 200)
                jumps++;
            prev = p;
        }
    }
    assert_true(jumps <= 180 / 4 + 1);
    assert_int_equal(p0[99], 0x5a);
    assert_int_equal(big[299999], 0xc3);
    assert_true(coffer_arena_used(a) >= 300000 + 180 * 200 + 20 * 300);
    coffer_arena_reset(a);
    assert_int_equal(coffer_arena_used(a), 0);
    uint8_t *p = coffer_arena_alloc(a, 100, 64);
    assert_ptr_equal(p, p0);
    for (int k = 0; k < 100; k++)
        assert_int_equal(p[k], 0);
    assert_null(coffer_arena_alloc(a, SIZE_MAX - 8, 16));
    coffer_arena_free(a);
}

static void test_fault_loop_builder_and_arena(void **state)
{
    (void)state;
    tu_fault_loop(fault_body, NULL);
}

static void test_log_sim_level(void **state)
{
    (void)state;
    struct { char line[512]; } got = {{0}};
    void sink(enum coffer_log_level l, const char *line, void *arg);
    coffer_log_set_sink(sink, &got);
    coffer_log_set_json(true);
    coffer_log_set_simulation(true);
    coffer_info("hello \"%s\"", "world");
    coffer_log_set_simulation(false);
    coffer_log_set_json(false);
    coffer_log_set_sink(NULL, NULL);
    assert_non_null(strstr(got.line, "\"level\":\"sim-info\""));
    assert_non_null(strstr(got.line, "\"msg\":\"hello \\\"world\\\"\""));
}

void sink(enum coffer_log_level l, const char *line, void *arg)
{
    (void)l;
    snprintf((char *)arg, 512, "%s", line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_table_complete),
        cmocka_unit_test(test_err_detail_and_context),
        cmocka_unit_test(test_rd_integers_and_bounds),
        cmocka_unit_test(test_rd_sub_bytes_skip),
        cmocka_unit_test(test_varint_roundtrip_and_errors),
        cmocka_unit_test(test_buf_cap_and_secret),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_arena_secret),
        cmocka_unit_test(test_secret_and_ct),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_io_mem),
        cmocka_unit_test(test_atomic_file),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_fault_loop_builder_and_arena),
        cmocka_unit_test(test_log_sim_level),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
