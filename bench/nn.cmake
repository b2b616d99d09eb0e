# nn/: what the kernels' thread pool costs a run, beside the same tasks run
# serially (bench_pool; see the file's header).
add_executable(bench_pool ${CMAKE_CURRENT_SOURCE_DIR}/pool_bench.c)
target_link_libraries(bench_pool PRIVATE coffer_nn)
