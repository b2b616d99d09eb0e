coffer_fuzz(image LIBS coffer_image
  SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/image ${CMAKE_SOURCE_DIR}/models/digits/samples)
