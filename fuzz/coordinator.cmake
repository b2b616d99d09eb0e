coffer_fuzz(manifest LIBS coffer_coordinator SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/manifest)
coffer_fuzz(coord_api LIBS coffer_coordinator SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/coord_api)
coffer_fuzz(csr LIBS coffer_coordinator SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/csr)
