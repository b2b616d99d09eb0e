coffer_fuzz(secretprov LIBS coffer_run SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/secretprov)
