#!/usr/bin/env bash
# test_attest.sh — `coffer attest` as a user drives it: verify recorded
# evidence with the recorded collateral at its verify_at, refuse it now and
# in 2053, name the failed check, make and verify simulation evidence, and
# apply a policy file. $1 = coffer binary, $2 = the shared folder.
set -u
COFFER=$1
V=$2/vectors/attest
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export COFFER_SIM_PLATFORM_KEY=$T/key/platform.pem
unset COFFER_ATTEST_PROVIDER
fails=0
check() { # check NAME WANT_RC GREP_PATTERN -- command...
    local name=$1 want=$2 pat=$3
    shift 4
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL $name: exit $rc, want $want"; cat "$T/out" "$T/err"; fails=$((fails + 1)); return
    fi
    if [ -n "$pat" ] && ! grep -qE "$pat" "$T/out" "$T/err"; then
        echo "FAIL $name: no /$pat/ in output"; cat "$T/out" "$T/err"; fails=$((fails + 1)); return
    fi
    echo "ok   $name"
}

Q=$V/sgx/phala-v3/quote.bin
echo '{"tcb_statuses": ["UpToDate"]}' >"$T/strict.json"
check phala-verifies 0 '"tcb_status": "ConfigurationAndSWHardeningNeeded"' -- \
    "$COFFER" attest verify "$Q" --collateral "$V" --at 2025-07-01T00:00:00Z
check phala-advisories 0 'INTEL-SA-00289' -- \
    "$COFFER" attest verify "$Q" --collateral "$V/collateral" --at 2025-07-01T00:00:00Z
check phala-one-set 0 '"revocation_checked": true' -- \
    "$COFFER" attest verify "$Q" --collateral "$V/collateral/sgx-fmspc00A067110000-2025-06-19" --at 2025-07-01T00:00:00Z
check phala-now 1 'failed at (pck_revocation|collateral_expired|tcb_signing_chain)' -- \
    "$COFFER" attest verify "$Q" --collateral "$V"
check phala-2053 1 'failed at pck_chain' -- \
    "$COFFER" attest verify "$Q" --collateral "$V" --at 2053-01-01T00:00:00Z
check phala-neg-sig 1 '"failed_step": "quote_signature"' -- \
    "$COFFER" attest verify "$V/sgx/phala-v3/neg-sig.bin" --collateral "$V" --at 2025-07-01T00:00:00Z
check phala-neg-qe-report 1 'failed at qe_report_signature' -- \
    "$COFFER" attest verify "$V/sgx/phala-v3/neg-qe-report.bin" --collateral "$V" --at 2025-07-01T00:00:00Z
check phala-neg-qe-auth 1 'failed at qe_report_data_binding' -- \
    "$COFFER" attest verify "$V/sgx/phala-v3/neg-qe-auth.bin" --collateral "$V" --at 2025-07-01T00:00:00Z
check phala-no-collateral 1 'failed at collateral' -- \
    "$COFFER" attest verify "$Q" --at 2025-07-01T00:00:00Z
mkdir -p "$T/tampered"
cp "$V/collateral/sgx-fmspc00A067110000-2025-06-19/"* "$T/tampered/"
cp "$V/collateral/sgx-fmspc00A067110000-2025-06-19/neg-tcb_info-tampered.json" "$T/tampered/tcb_info.json"
check tampered-tcb-info 1 'tcb_info_signature' -- \
    "$COFFER" attest verify "$Q" --collateral "$T/tampered" --at 2025-07-01T00:00:00Z
check mobilecoin-stale-crl 1 'PCK CRL has expired' -- \
    "$COFFER" attest verify "$V/sgx/mobilecoin-v3/quote.bin" --collateral "$V" --at 2023-07-20T00:00:00Z
check mobilecoin-no-revocation 0 '"tcb_status": "SWHardeningNeeded"' -- \
    "$COFFER" attest verify "$V/sgx/mobilecoin-v3/quote.bin" --collateral "$V" --at 2023-07-20T00:00:00Z --no-revocation
check occlum-no-collateral 1 'no TCB Info for FMSPC 00606a000000' -- \
    "$COFFER" attest verify "$V/sgx/occlum-v3-debug/quote.bin" --collateral "$V" --at 2025-01-01T00:00:00Z

# TDX
check tdx-phala-v4 0 '"tcb_status": "UpToDate"' -- \
    "$COFFER" attest verify "$V/tdx/phala-v4/quote.bin" --collateral "$V" --at 2025-07-01T00:00:00Z
check tdx-google-v5 0 '"mrtd": "7348651a34b2d2d3' -- \
    "$COFFER" attest verify "$V/tdx/google-v5/quote.bin" --collateral "$V" --at 2026-03-01T00:00:00Z
check tdx-unsupported 1 'failed at tcb_level' -- \
    "$COFFER" attest verify "$V/tdx/phala-v5-tcb-unsupported/quote.bin" --collateral "$V" --at 2026-03-01T00:00:00Z
check tdx-outofdate 0 '"tcb_status": "OutOfDate"' -- \
    "$COFFER" attest verify "$V/tdx/trustee-v4-outofdate/quote.bin" --collateral "$V" --at 2025-11-01T00:00:00Z --no-revocation
check tdx-neg-body-type 1 'failed at parse' -- \
    "$COFFER" attest verify "$V/tdx/google-v5/neg-body-type.bin" --collateral "$V" --at 2026-03-01T00:00:00Z

# SEV-SNP: the VCEK/VLEK is found beside the report
check snp-gsev 0 '"measurement": "b07af9620f3b839b' -- \
    "$COFFER" attest verify "$V/snp/gsev-milan-v2/report.bin" --at 2026-01-01T00:00:00Z
check snp-gsev-debug-policy 1 'failed at policy' -- \
    "$COFFER" attest verify "$V/snp/gsev-milan-v2/report.bin" --at 2026-01-01T00:00:00Z --policy "$T/strict.json"
check snp-vlek 0 '"vmpl": 1' -- \
    "$COFFER" attest verify "$V/snp/trustee-milan-v3-vlek/report.bin" --at 2025-06-01T00:00:00Z
check snp-vlek-expired-now 1 'failed at snp_chain' -- \
    "$COFFER" attest verify "$V/snp/trustee-milan-v3-vlek/report.bin"
check snp-neg-sig 1 'failed at snp_report_signature' -- \
    "$COFFER" attest verify "$V/snp/gsev-milan-v2/neg-sig.bin" --at 2026-01-01T00:00:00Z
check snp-wrong-vcek 1 'failed at snp_report_signature' -- \
    "$COFFER" attest verify "$V/snp/gsev-milan-v2/report.bin" --vcek "$V/snp/gcp-milan-v5/vcek.der" --at 2026-01-01T00:00:00Z

# SEV-SNP extended evidence: the report followed by its certificate table, as
# configfs-tsm hands out outblob and auxblob; verifies with no VCEK beside it
# and no --collateral. The table is built here with Python's own uuid (RFC
# 4122 bytes): snp_ext REPORT OUT [GUID=FILE...]
snp_ext() {
    /usr/bin/python3 - "$@" <<'PY'
import struct, sys, uuid
rep, out, *ents = sys.argv[1:]
items = [(uuid.UUID(g).bytes, open(f, "rb").read()) for g, f in (e.split("=", 1) for e in ents)]
off, head, body = 24 * (len(items) + 1), b"", b""
for g, d in items:
    head += g + struct.pack("<II", off, len(d))
    body += d
    off += len(d)
open(out, "wb").write(open(rep, "rb").read() + head + bytes(24) + body)
PY
}
VCEK_GUID=63da758d-e664-4564-adc5-f4b93be8accd
VLEK_GUID=a8074bc2-a25a-483e-aae6-39c045a0b8a1
mkdir -p "$T/ext"
snp_ext "$V/snp/gsev-milan-v2/report.bin" "$T/ext/gsev.bin" "$VCEK_GUID=$V/snp/gsev-milan-v2/vcek.der"
snp_ext "$V/snp/trustee-milan-v3-vlek/report.bin" "$T/ext/vlek.bin" "$VLEK_GUID=$V/snp/trustee-milan-v3-vlek/vlek.der"
snp_ext "$V/snp/gsev-milan-v2/report.bin" "$T/ext/other-chip.bin" "$VCEK_GUID=$V/snp/gcp-milan-v5/vcek.der"
snp_ext "$V/snp/gsev-milan-v2/report.bin" "$T/ext/wrong-guid.bin" "$VLEK_GUID=$V/snp/gsev-milan-v2/vcek.der"
head -c 1500 "$T/ext/gsev.bin" >"$T/ext/truncated.bin"
check snp-extended 0 '"snp_key_from_evidence": true' -- \
    "$COFFER" attest verify "$T/ext/gsev.bin" --at 2026-01-01T00:00:00Z
check snp-extended-measurement 0 '"measurement": "b07af9620f3b839b' -- \
    "$COFFER" attest verify "$T/ext/gsev.bin" --at 2026-01-01T00:00:00Z
check snp-extended-vlek 0 '"vmpl": 1' -- \
    "$COFFER" attest verify "$T/ext/vlek.bin" --at 2025-06-01T00:00:00Z
check snp-extended-same-vcek 0 '"verified": true' -- \
    "$COFFER" attest verify "$T/ext/gsev.bin" --vcek "$V/snp/gsev-milan-v2/vcek.der" --at 2026-01-01T00:00:00Z
check snp-extended-other-vcek 1 'failed at snp_chain: .*not the certificate given' -- \
    "$COFFER" attest verify "$T/ext/gsev.bin" --vcek "$V/snp/gcp-milan-v5/vcek.der" --at 2026-01-01T00:00:00Z
check snp-extended-other-chip 1 'failed at snp_report_signature' -- \
    "$COFFER" attest verify "$T/ext/other-chip.bin" --at 2026-01-01T00:00:00Z
check snp-extended-wrong-guid 1 'failed at snp_chain: .*certificate table has none' -- \
    "$COFFER" attest verify "$T/ext/wrong-guid.bin" --at 2026-01-01T00:00:00Z
check snp-extended-truncated 1 'failed at parse: .*certificate table' -- \
    "$COFFER" attest verify "$T/ext/truncated.bin" --at 2026-01-01T00:00:00Z

cat >"$T/strict.json" <<'P'
{"tcb_statuses": ["UpToDate"]}
P
cat >"$T/phala.json" <<'P'
{"measurements": ["33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"],
 "tcb_statuses": ["ConfigurationAndSWHardeningNeeded"],
 "advisories": ["INTEL-SA-00289", "INTEL-SA-00615"]}
P
check policy-strict 1 'failed at policy' -- \
    "$COFFER" attest verify "$Q" --collateral "$V" --at 2025-07-01T00:00:00Z --policy "$T/strict.json"
check policy-phala 0 '"policy": "accepted"' -- \
    "$COFFER" attest verify "$Q" --collateral "$V" --at 2025-07-01T00:00:00Z --policy "$T/phala.json"

# simulation: explicit only, and loudly so
check evidence-needs-hardware 1 'no TEE found' -- \
    "$COFFER" attest evidence --report-data 00 -o "$T/none.bin"
check evidence-sim 0 'SIMULATION' -- \
    "$COFFER" attest evidence --report-data 0102030405 -o "$T/sim.bin" --provider simulation
check verify-sim 0 '"tcb_status": "simulation"' -- \
    "$COFFER" attest verify "$T/sim.bin"
check verify-sim-report-data 0 '"report_data": "0102030405000000' -- \
    "$COFFER" attest verify "$T/sim.bin"
cat >"$T/hw.json" <<'P'
{"tcb_statuses": ["UpToDate"]}
P
check sim-refused-by-default-policy 1 'simulation evidence \(no hardware protection\) is not allowed' -- \
    "$COFFER" attest verify "$T/sim.bin" --policy "$T/hw.json"
cat >"$T/sim.json" <<'P'
{"allow_simulation": true, "report_data": "01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}
P
check sim-allowed 0 '"policy": "accepted"' -- \
    "$COFFER" attest verify "$T/sim.bin" --policy "$T/sim.json"
COFFER_SIM_PLATFORM_KEY=$T/other.pem "$COFFER" attest evidence --report-data 00 -o "$T/other.bin" --provider simulation 2>/dev/null
check sim-other-key 1 'failed at simulation_platform_key' -- \
    "$COFFER" attest verify "$T/other.bin"
check env-provider 0 '' -- env COFFER_ATTEST_PROVIDER=simulation "$COFFER" attest evidence --report-data ab -o "$T/env.bin"

# RA-TLS certificates
check ratls-cert 0 'SIMULATION' -- \
    "$COFFER" attest ratls-cert -o "$T/ratls.pem" --key "$T/ratls.key" --provider simulation
check ratls-key-private 0 '^600$' -- stat -c %a "$T/ratls.key"
check ratls-openssl-reads 0 'CN ?= ?RATLS' -- openssl x509 -in "$T/ratls.pem" -noout -subject
check ratls-verify 0 '"kind": "simulation"' -- "$COFFER" attest verify "$T/ratls.pem"
sed 's/ CERTIFICATE-----/ TRUSTED CERTIFICATE-----/' "$T/ratls.pem" >"$T/ratls-trusted.pem"
check ratls-verify-gramine-label 0 '"verified": true' -- "$COFFER" attest verify "$T/ratls-trusted.pem"
openssl x509 -in "$T/ratls.pem" -outform DER -out "$T/ratls.der"
check ratls-verify-der 0 '"verified": true' -- "$COFFER" attest verify "$T/ratls.der"
check ratls-verify-policy 1 'failed at policy' -- "$COFFER" attest verify "$T/ratls.pem" --policy "$T/strict.json"
check ratls-needs-hardware 1 'no TEE found' -- "$COFFER" attest ratls-cert -o "$T/x.pem" --key "$T/x.key"

# usage errors
check usage-none 2 '' -- "$COFFER" attest
check usage-bad-hex 2 '' -- "$COFFER" attest evidence --report-data xyz -o "$T/x"
check usage-bad-time 2 '' -- "$COFFER" attest verify "$Q" --at yesterday
check usage-bad-provider 2 '' -- "$COFFER" attest evidence --report-data 00 -o "$T/x" --provider epid
check help 0 'coffer attest verify' -- "$COFFER" help attest

[ "$fails" = 0 ] || { echo "$fails failed"; exit 1; }
