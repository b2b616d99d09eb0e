/* model_config.c — placeholder */
#include "serve_int.h"
typedef int coffer_serve_model_config_unused;
