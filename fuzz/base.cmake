coffer_fuzz(json LIBS coffer_base SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/json)
