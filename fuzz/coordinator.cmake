coffer_fuzz(manifest LIBS coffer_coordinator SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/manifest)
