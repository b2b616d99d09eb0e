/* rest_url.c — placeholder */
#include "serve_int.h"
typedef int coffer_serve_rest_url_unused;
