# net: the HTTP/1.1 request parser + chunked decoder, and gRPC framing.
if(TARGET coffer_net)
  coffer_fuzz(http1 LIBS coffer_net SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/http1)
  target_include_directories(fuzz_http1 PRIVATE ${CMAKE_SOURCE_DIR}/src/net)
  coffer_fuzz(grpc_frame LIBS coffer_net SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/grpc)
  target_include_directories(fuzz_grpc_frame PRIVATE ${CMAKE_SOURCE_DIR}/src/net)
endif()
