/*
 * marble.h — private to the CLI: activating this process as a marble with a
 * coordinator (what MarbleRun's premain does), in memory.
 */
#ifndef COFFER_MARBLE_H
#define COFFER_MARBLE_H

#include <openssl/evp.h>

#include "coffer/attest.h"
#include "coord_client.h"

struct marble_opts {
    struct coord_client cc;  /* address = the coordinator's marble API */
    const char *marble_type;
    const char *uuid_file;
    const char *dns_names;   /* comma-separated SANs asked for in the CSR */
    enum coffer_attest_provider provider;
};

struct marble_result {
    EVP_PKEY *key;           /* the marble's own key (never left this process) */
    char *cert_chain_pem;    /* marble certificate + intermediate */
    char *root_ca_pem;       /* the marble root (what marbles trust) */
    json_t *parameters;      /* {"Files": {path: b64}, "Env": {name: b64}, "Argv": [...]} */
    char uuid[64];
};

/* Read the MarbleRun environment (EDG_MARBLE_TYPE, EDG_MARBLE_COORDINATOR_ADDR,
 * EDG_MARBLE_UUID_FILE, EDG_MARBLE_DNS_NAMES) into unset fields. */
void marble_opts_defaults(struct marble_opts *o);
/* Verify the coordinator, make a key and CSR, get a nonce, make evidence
 * binding both, activate. */
COFFER_NODISCARD enum coffer_err marble_activate(struct marble_opts *o, struct marble_result *out);
/* One decoded parameter (Files or Env) by name; *data from coffer_secret. */
COFFER_NODISCARD enum coffer_err marble_param(const struct marble_result *r, const char *kind, const char *name,
                                              struct coffer_secret **data);
void marble_result_free(struct marble_result *r);

#endif
