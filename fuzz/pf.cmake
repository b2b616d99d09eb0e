coffer_fuzz(pf_reader LIBS coffer_pf SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/pf)
