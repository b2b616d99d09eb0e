# serve/: the parsers of outside bytes in the TF-Serving protocol layer.
coffer_fuzz(predict_request LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/predict_request)
coffer_fuzz(rest_predict LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/rest_predict)
coffer_fuzz(rest_url LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/rest_url)
coffer_fuzz(model_config LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/model_config)
# The generator of the binary PredictRequest seeds (run by hand:
#   build/fuzz/fuzz/gen_serve_seeds fuzz/seeds/predict_request).
add_executable(gen_serve_seeds gen_serve_seeds.c)
target_link_libraries(gen_serve_seeds PRIVATE coffer_serve)
coffer_fuzz(warmup LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/warmup)
coffer_fuzz(examples LIBS coffer_serve SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds/examples)
