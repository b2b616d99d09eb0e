if(TARGET coffer_net)
  add_executable(bench_net ${CMAKE_CURRENT_SOURCE_DIR}/net_bench.c)
  target_link_libraries(bench_net PRIVATE coffer_net)
endif()
