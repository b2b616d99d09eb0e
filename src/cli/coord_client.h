/*
 * coord_client.h — private to the CLI: talking to a coordinator's client
 * API over HTTPS (libcurl), after verifying the coordinator.
 */
#ifndef COFFER_COORD_CLIENT_H
#define COFFER_COORD_CLIENT_H

#include "coffer/base.h"

struct coord_client {
    const char *address;       /* host:port */
    bool insecure;             /* skip attestation of the coordinator */
    bool simulation;           /* accept simulation evidence signed by the local platform key */
    const char *collateral_dir;
    const char *policy_path;   /* expected coordinator evidence policy (JSON) */
    const char *cert_path;     /* user client certificate (PEM) */
    const char *key_path;      /* its key (PEM) */
    const char *cache_path;    /* where the verified root and intermediate are kept */
    long timeout_s;
    /* after coord_client_verify: the coordinator's certificates (PEM) */
    char *root_pem;
    char *intermediate_pem;
};

struct coord_reply {
    long http_status;
    json_t *json;      /* the whole envelope */
    json_t *data;      /* borrowed from json */
    const char *message;
};

/* Fill address (from --coordinator, COFFER_COORDINATOR, or a positional
 * argument), defaults, and the cache path. */
void coord_client_init(struct coord_client *c);
/* Fetch the coordinator's quote with a fresh nonce over TLS without
 * verification, verify it (unless insecure), and pin the root for every
 * later request. */
COFFER_NODISCARD enum coffer_err coord_client_verify(struct coord_client *c);
/* A request; body may be NULL. A non-2xx reply is COFFER_E_NET with the
 * server's message in the detail, and *reply filled. */
COFFER_NODISCARD enum coffer_err coord_client_call(struct coord_client *c, const char *method, const char *path,
                                                   const char *body, struct coord_reply *reply);
void coord_reply_free(struct coord_reply *r);
void coord_client_free(struct coord_client *c);

#endif
