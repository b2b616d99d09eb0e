add_executable(bench_pf ${CMAKE_CURRENT_SOURCE_DIR}/pf_bench.c)
target_link_libraries(bench_pf PRIVATE coffer_pf)
