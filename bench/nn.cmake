# nn/: what the kernels' thread pool costs a run, beside the same tasks run
# serially (bench_pool; see the file's header).
add_executable(bench_pool ${CMAKE_CURRENT_SOURCE_DIR}/pool_bench.c)
target_link_libraries(bench_pool PRIVATE coffer_nn)

# nn/: what a re-plan for a new batch size costs a run, with and without
# keep_packs, beside the same model at each batch size alone (bench_replan;
# see the file's header).
add_executable(bench_replan ${CMAKE_CURRENT_SOURCE_DIR}/replan_bench.c)
target_link_libraries(bench_replan PRIVATE coffer_nn coffer_base)
