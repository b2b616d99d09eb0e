/* model_dir.c — placeholder */
#include "serve_int.h"
typedef int coffer_serve_model_dir_unused;
