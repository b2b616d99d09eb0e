#!/usr/bin/env bash
# `coffer pf` as a user drives it: gen-key, encrypt, decrypt (-V), folders,
# Gramine's vectors, and every refusal with its exit status and message.
# Usage: test_pf_cli.sh COFFER_BIN SHARED_DIR
set -euo pipefail
coffer=$1
shared=$2
vec="$shared/vectors/pf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
# expect STATUS DESCRIPTION -- command...: the exit status must match
expect() {
  local want=$1 what=$2; shift 3
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit $got, want $want: $(cat "$tmp/err")"; fi
}
expect_msg() { # PATTERN DESCRIPTION: the last command's stderr must contain it
  if grep -q -- "$1" "$tmp/err"; then ok; else bad "$2: stderr lacks '$1': $(cat "$tmp/err")"; fi
}
pattern() { /usr/bin/python3 -c 'import sys; n=int(sys.argv[1]); sys.stdout.buffer.write(bytes((i*31+7)%251 for i in range(n)))' "$1"; }

cd "$tmp"
expect 0 "help" -- "$coffer" help pf
expect 0 "--help lists pf" -- "$coffer" --help
grep -q "pf " "$tmp/out" && ok || bad "--help does not list pf"
expect 0 "--version" -- "$coffer" --version
expect 0 "gen-key" -- "$coffer" pf gen-key -w key.bin
[ "$(stat -c %s key.bin)" = 16 ] && ok || bad "key is not 16 bytes"
[ "$(stat -c %a key.bin)" = 600 ] && ok || bad "key file is not private (mode $(stat -c %a key.bin))"
expect_msg "Wrap key saved to: key.bin" "gen-key message"

# round trip, relative output path bound as typed (normalised)
pattern 200000 > plain.bin
mkdir -p enc
expect 0 "encrypt" -- "$coffer" pf encrypt -w key.bin -i plain.bin -o ./enc//model.pf
expect_msg 'must contain this exact path: "enc/model.pf"' "binding message"
expect 0 "decrypt -V" -- "$coffer" pf decrypt -V -w key.bin -i enc/model.pf -o out.bin
cmp -s plain.bin out.bin && ok || bad "round trip differs"
[ "$(stat -c %a out.bin)" = 600 ] && ok || bad "plaintext output is not private"
# options after the mode, first-letter modes, as gramine-sgx-pf-crypt takes them
expect 0 "options after mode" -- "$coffer" pf d -w key.bin -i enc/model.pf -o out2.bin -V
cmp -s plain.bin out2.bin && ok || bad "d mode differs"
# -V with another path: refused, no output
cp enc/model.pf copy.pf
expect 1 "-V wrong path" -- "$coffer" pf decrypt -V -w key.bin -i copy.pf -o nope.bin
expect_msg 'invalid path' "path error named"
[ ! -e nope.bin ] && ok || bad "output left behind after a path failure"
expect 0 "no -V ignores the path" -- "$coffer" pf decrypt -w key.bin -i copy.pf -o yes.bin

# the output is replaced, not overwritten in place (no stale trailing nodes)
pattern 900000 > big.bin
expect 0 "encrypt big" -- "$coffer" pf encrypt -w key.bin -i big.bin -o enc/model.pf
expect 0 "encrypt small over big" -- "$coffer" pf encrypt -w key.bin -i plain.bin -o enc/model.pf
[ "$(stat -c %s enc/model.pf)" = 208896 ] && ok || bad "output not truncated: $(stat -c %s enc/model.pf)"

# the output's folder is created (TF Serving's layout: BASE/VERSION/model.onnx)
expect 0 "encrypt into a new folder" -- "$coffer" pf encrypt -w key.bin -i plain.bin -o models/m/1/model.onnx
[ -f models/m/1/model.onnx ] && ok || bad "output folder not created"

# v1 on request
expect 0 "encrypt v1" -- "$coffer" pf encrypt --format v1 -w key.bin -i plain.bin -o v1.pf
[ "$(od -An -tu1 -j8 -N1 v1.pf | tr -d ' ')" = 1 ] && ok || bad "v1 file has the wrong major version"
expect 0 "decrypt v1" -- "$coffer" pf decrypt -V -w key.bin -i v1.pf -o v1.out
cmp -s plain.bin v1.out && ok || bad "v1 round trip differs"
expect 2 "bad format" -- "$coffer" pf encrypt --format v3 -w key.bin -i plain.bin -o x.pf

# refusals
expect 1 "wrong key" -- "$coffer" pf decrypt -w "$vec/wrap_key.bin" -i enc/model.pf -o wrong.bin
expect_msg "MAC mismatch" "wrong key named"
[ ! -e wrong.bin ] && ok || bad "output left behind after a wrong key"
expect 1 "missing input" -- "$coffer" pf encrypt -w key.bin -i does-not-exist -o x.pf
expect_msg "does-not-exist" "missing input named"
head -c 15 key.bin > short.key
expect 1 "short key" -- "$coffer" pf encrypt -w short.key -i plain.bin -o x.pf
expect_msg "15 bytes" "key size named"
expect 2 "no mode" -- "$coffer" pf -w key.bin
expect 2 "bad mode" -- "$coffer" pf xyz -w key.bin
expect 2 "no key" -- "$coffer" pf encrypt -i plain.bin -o x.pf
expect 2 "no output" -- "$coffer" pf encrypt -w key.bin -i plain.bin

# folders: recursion, mirrored tree, each file bound to its own output path
mkdir -p tree/sub tree/sub/deeper
pattern 10 > tree/a.bin; pattern 5000 > tree/sub/b.bin; pattern 0 > tree/sub/deeper/c.bin
ln -s a.bin tree/link
expect 0 "encrypt folder" -- "$coffer" pf encrypt -w key.bin -i tree -o enctree
expect 0 "decrypt folder -V" -- "$coffer" pf decrypt -V -w key.bin -i enctree -o dectree
for f in a.bin sub/b.bin sub/deeper/c.bin; do cmp -s "tree/$f" "dectree/$f" && ok || bad "folder file $f differs"; done

# Gramine's vectors, with -V from their folder (they are bound to relative paths)
for f in "$vec"/v1/*.pf "$vec"/v2/*.pf; do
  rel=${f#"$vec"/}
  n=${rel##*size_}; n=${n%.pf}
  (cd "$vec" && "$coffer" pf decrypt -V -w wrap_key.bin -i "$rel" -o "$tmp/vec.out") 2>"$tmp/err" && ok || bad "vector $rel: $(cat "$tmp/err")"
  pattern "$n" | cmp -s - vec.out && ok || bad "vector $rel plaintext differs"
done
# corrupted vectors: Gramine rejects these; coffer must too, leaving nothing behind
for c in meta_flip data_flip truncated truncated_unaligned mht_flip magic_flip version_flip nonce_flip mac_flip; do
  rm -f cor.out
  expect 1 "corrupt $c" -- "$coffer" pf decrypt -w "$vec/wrap_key.bin" -i "$vec/corrupt/$c.pf" -o cor.out
  [ ! -e cor.out ] && ok || bad "corrupt $c left plaintext behind"
  ls cor.out.tmp-* >/dev/null 2>&1 && bad "corrupt $c left a temporary file" || ok
done
# the two that Gramine accepts (unauthenticated bytes): accepted, intact plaintext
for c in flags_flip padding_flip; do
  expect 0 "corrupt $c (accepted)" -- "$coffer" pf decrypt -w "$vec/wrap_key.bin" -i "$vec/corrupt/$c.pf" -o cor.out
  pattern 100 | cmp -s - cor.out && ok || bad "$c plaintext differs"
  [ "$c" = flags_flip ] && expect_msg "pending write" "flags warning shown"
done

echo "pf cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
