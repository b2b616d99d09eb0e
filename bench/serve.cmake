# serve/: REST :predict body parsing, the fast path beside the general
# (jansson) parser, in one run (bench_rest_parse; see the file's header).
add_executable(bench_rest_parse ${CMAKE_CURRENT_SOURCE_DIR}/rest_parse_bench.c)
target_link_libraries(bench_rest_parse PRIVATE coffer_serve)
