# The ONNX reader (and the tensor-file readers) of the inference runtime,
# seeded with small models from the ONNX backend test data.
if(TARGET coffer_nn)
  coffer_fuzz(onnx LIBS coffer_nn SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/onnx)
endif()
# The int8 calibration table reader (internal: built against nn_int.h).
if(TARGET coffer_nn)
  coffer_fuzz(calib LIBS coffer_nn SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/calib)
  target_include_directories(fuzz_calib PRIVATE ${PROJECT_SOURCE_DIR}/src/nn)
endif()
