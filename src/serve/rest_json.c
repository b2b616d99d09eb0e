/* rest_json.c — placeholder */
#include "serve_int.h"
typedef int coffer_serve_rest_json_unused;
