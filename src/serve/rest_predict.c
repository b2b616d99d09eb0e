/* rest_predict.c — placeholder */
#include "serve_int.h"
typedef int coffer_serve_rest_predict_unused;
