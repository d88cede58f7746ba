#!/bin/sh
# invalid_recipes.sh SONDE — every file in tests/recipes/invalid/ must be rejected by
# `sonde recipe validate` with exit status 2 and an error naming FILE:LINE:COL and the
# expected text (tests/recipes/invalid/EXPECTED); a generated 10 MB file too; and every
# recipe shipped under recipes/ and tests/recipes/valid/ must validate. Run from the repo root.
set -u

sonde=${1:?usage: invalid_recipes.sh SONDE}
dir=tests/recipes/invalid
expected=$dir/EXPECTED
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0
fail=0

ok() {
    pass=$((pass + 1))
    echo "ok   $1"
}

bad() {
    fail=$((fail + 1))
    echo "FAIL $1: $2"
    sed 's/^/     | /' "$tmp/err" | head -5
}

# check FILE LINE:COL SUBSTRING
check() {
    file=$1 lc=$2 want=$3
    unset UNSET_VAR_XYZ
    "$sonde" recipe validate "$file" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then
        bad "$file" "exit status $rc, expected 2"
    elif grep -q -e AddressSanitizer -e 'runtime error' -e LeakSanitizer "$tmp/err"; then
        bad "$file" "sanitizer report"
    elif [ "$lc" = - ] && ! grep -q -E "^$file:[0-9]+:[0-9]+: " "$tmp/err"; then
        bad "$file" "no '$file:LINE:COL:' in the error output"
    elif [ "$lc" != - ] && ! grep -q -F "$file:$lc: " "$tmp/err"; then
        bad "$file" "no '$file:$lc:' in the error output"
    elif ! grep -q -F -e "$want" "$tmp/err"; then
        bad "$file" "the error does not say: $want"
    else
        ok "$file"
    fi
}

tab=$(printf '\t')
listed=0
while IFS="$tab" read -r name lc want; do
    case $name in '#'* | '') continue ;; esac
    listed=$((listed + 1))
    if [ ! -f "$dir/$name" ]; then
        fail=$((fail + 1))
        echo "FAIL $dir/$name: listed in EXPECTED but missing"
        continue
    fi
    check "$dir/$name" "$lc" "$want"
done <"$expected"

# Every corpus file must be listed, so none goes untested.
for f in "$dir"/*; do
    name=${f##*/}
    [ "$name" = EXPECTED ] && continue
    if ! cut -f1 "$expected" | grep -q -x -F "$name"; then
        fail=$((fail + 1))
        echo "FAIL $f: not listed in EXPECTED"
    fi
done

# A 10 MB file is refused before it is read whole.
big=$tmp/big.yaml
{
    printf 'kind: benchmark\nname: big\ntimeout: 1s\ndescription: "'
    head -c 10485760 /dev/zero | tr '\0' 'x'
    printf '"\n'
} >"$big"
check "$big" 1:1 "file is larger than 1 MiB"

# A file that does not exist.
"$sonde" recipe validate "$tmp/nope.yaml" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -ne 0 ] && grep -q -F "$tmp/nope.yaml" "$tmp/err"; then
    ok "missing file"
else
    bad "missing file" "exit status $rc"
fi

# The shipped catalog and the valid test recipes validate.
for f in recipes/*/*.yaml tests/recipes/valid/*.yaml; do
    [ -f "$f" ] || continue
    if "$sonde" recipe validate "$f" >"$tmp/out" 2>"$tmp/err"; then
        ok "$f (valid)"
    else
        bad "$f" "a valid recipe was rejected"
    fi
done

echo "$pass passed, $fail failed"
[ "$listed" -ge 30 ] || {
    echo "only $listed corpus files listed (at least 30 expected)"
    exit 1
}
[ "$fail" -eq 0 ]
