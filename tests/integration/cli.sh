#!/usr/bin/env bash
# CLI surface: usage errors, recipe commands, bad session ids, bad formats.
. "$(dirname "$0")/lib.sh"
status() { "$@" >/dev/null 2>&1; echo $?; }
check "no command: exit 2" test "$(status "$SONDE")" -eq 2
err=$("$SONDE" rnu 2>&1)
check "unknown command suggests 'run'" contains "$err" "did you mean 'run'"
check "--version" contains "$("$SONDE" --version)" "sonde "
check "recipe validate on the catalog: exit 0" "$SONDE" recipe validate recipes/*/*.yaml
res=$("$SONDE" recipe show recipes/benchmarks/quickstart.yaml --resolved)
check "resolved quickstart has 3 trials" test "$(grep -c 'label:' <<<"$res")" -eq 3
check "resolved quickstart shows its sha256" contains "$res" "# sha256: "
res2=$("$SONDE" recipe show recipes/benchmarks/quickstart.yaml --resolved --set 'matrix.clients=[2]' --set repeat=2)
check "--set changes the matrix and repeat" test "$(grep -c 'label:' <<<"$res2")" -eq 2
list=$("$SONDE" recipe list)
for k in benchmark service client monitor; do
  check "recipe list shows a $k" contains "$list" "^$k "
done
check "recipe list --kind service only services" test -z "$("$SONDE" recipe list --kind service | grep -v '^service ')"
check "recipe list --kind bogus: exit 2" test "$(status "$SONDE" recipe list --kind bogus)" -eq 2
check "run with a missing file: exit 2" test "$(status "$SONDE" run /nonexistent.yaml)" -eq 2
check "run with a bad --set: exit 2" test "$(status "$SONDE" run recipes/benchmarks/quickstart.yaml --set 'repeat=[')" -eq 2
check "report of an unknown session: exit 1" test "$(status "$SONDE" report nosuchsession)" -eq 1
check "report with a bad format: exit 2" test "$(status "$SONDE" report latest --format xml)" -eq 2
check "list on an empty workspace: exit 0" "$SONDE" list
check "status without sessions: exit 1" test "$(status "$SONDE" status)" -eq 1
"$SONDE" -q run tests/recipes/sessions/not-ready.yaml >/dev/null 2>&1
id=$(latest_id)
err=$("$SONDE" logs "$id" ../../etc 2>&1); rc=$?
check "logs refuses a component that is not in the session ($rc)" bash -c "[ $rc -eq 1 ] && grep -q 'no component' <<<'$err'"
check "list --json is valid JSON with the session" contains "$("$SONDE" list --json)" "\"$id\""
check "stop of a finished session: exit 0" "$SONDE" stop "$id"
finish
