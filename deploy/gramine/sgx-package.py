#!/usr/bin/python3
"""Turn the identity of a signed Gramine enclave into what coffer's verifiers take.

    gramine-sgx-sigstruct-view --output-format json coffer-serve.sig > serve.json
    sgx-package.py package serve.json [--name model-server] [--signer]   # coordinator manifest "Packages" entry
    sgx-package.py policy serve.json [--signer]                          # coffer attestation policy (secret-provider --policy)
    sgx-package.py ra-tls-env run.json [--signer]                        # Gramine's RA_TLS_* variables

The input is gramine-sgx-sigstruct-view's JSON: mr_enclave, mr_signer,
isv_prod_id, isv_svn, debug_enclave. By default the enclave is pinned by its
MRENCLAVE (UniqueID): any change to the binary, its libraries, its manifest or
its command line gives another value. --signer pins MRSIGNER, ISVPRODID and a
minimum ISVSVN instead, so a new build signed with the same key and an equal or
higher ISVSVN is accepted without changing the coordinator's manifest (the
coordinator's own sealing key is MRSIGNER-bound for the same reason).
A debug enclave is refused unless the output says Debug: true, which it
only does when the enclave is one (sgx.debug = true): never deploy that.
Only the standard library.
"""
import argparse
import json
import re
import sys


def load(path):
    with open(path) as f:
        s = json.load(f)
    for k, n in (("mr_enclave", 64), ("mr_signer", 64)):
        if not isinstance(s.get(k), str) or not re.fullmatch(f"[0-9a-f]{{{n}}}", s[k]):
            raise ValueError(f"{path}: {k} must be {n} lowercase hex digits")
    for k in ("isv_prod_id", "isv_svn"):
        if not isinstance(s.get(k), int) or not 0 <= s[k] <= 0xFFFF:
            raise ValueError(f"{path}: {k} must be an integer 0..65535")
    if not isinstance(s.get("debug_enclave"), bool):
        raise ValueError(f"{path}: debug_enclave must be true or false")
    return s


def package(s, signer):
    p = {"TEE": "SGX", "Debug": s["debug_enclave"]}
    if signer:
        p.update(SignerID=s["mr_signer"], ProductID=s["isv_prod_id"], SecurityVersion=s["isv_svn"])
    else:
        p["UniqueID"] = s["mr_enclave"]
    return p


def policy(s, signer):
    p = {"kinds": ["sgx"], "allow_debug": s["debug_enclave"]}
    if signer:
        p.update(signers=[s["mr_signer"]], isv_prodid=s["isv_prod_id"], min_isv_svn=s["isv_svn"])
    else:
        p["measurements"] = [s["mr_enclave"]]
    return p


def ra_tls_env(s, signer):
    env = {"RA_TLS_MRENCLAVE": "any" if signer else s["mr_enclave"],
           "RA_TLS_MRSIGNER": s["mr_signer"] if signer else "any",
           "RA_TLS_ISV_PROD_ID": str(s["isv_prod_id"]) if signer else "any",
           "RA_TLS_ISV_SVN": str(s["isv_svn"]) if signer else "any"}
    if s["debug_enclave"]:
        env["RA_TLS_ALLOW_DEBUG_ENCLAVE_INSECURE"] = "1"
    return "".join(f"{k}={v}\n" for k, v in env.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["package", "policy", "ra-tls-env"])
    ap.add_argument("sigstruct_json")
    ap.add_argument("--signer", action="store_true", help="pin MRSIGNER + ISVPRODID + minimum ISVSVN")
    ap.add_argument("--name", default="model-server", help="package name (package)")
    a = ap.parse_args()
    try:
        s = load(a.sigstruct_json)
    except (OSError, ValueError) as e:
        print(f"sgx-package: {e}", file=sys.stderr)
        return 1
    if s["debug_enclave"]:
        print("sgx-package: WARNING: a debug enclave; its memory is readable by the host", file=sys.stderr)
    if a.what == "package":
        print(json.dumps({a.name: package(s, a.signer)}, indent=2))
    elif a.what == "policy":
        print(json.dumps(policy(s, a.signer), indent=2))
    else:
        sys.stdout.write(ra_tls_env(s, a.signer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
