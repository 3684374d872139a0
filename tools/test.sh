#!/usr/bin/env bash
# Installs what is needed, builds with ASan+UBSan and -Werror, and runs every test:
# unit tests (cmocka), fuzz corpus replays, integration tests against the real binary,
# and the clang-format check.  The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./tools/deps.sh --test || exit 1
build=build-test
if [ ! -d "$build" ]; then
	CC=gcc meson setup "$build" -Db_sanitize=address,undefined -Dwerror=true \
		--buildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C "$build" || { echo "0 passed, 1 failed"; exit 1; }
./tests/sdk-js/install.sh || { echo "0 passed, 1 failed"; exit 1; } # the real OpenIM JS SDK (test-only)
./tests/sdk-go/build.sh "$build" || echo "sdk-go: build failed; test_sdk_go will report it" # the real OpenIM Go SDK (test-only)
./tests/linear/build.sh "$build" || echo "linear: build failed; test_cluster_linear will report it" # Porcupine checker (test-only)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
rc=$?
fmt_failed=0
if command -v clang-format >/dev/null; then
	bad=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror 2>&1 | grep -c 'error:' || true)
	if [ "$bad" -ne 0 ]; then
		echo "clang-format: $bad formatting differences (run clang-format -i)"
		fmt_failed=1
	fi
fi
python3 - "$build/meson-logs/testlog.json" "$fmt_failed" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
if sys.argv[2] == "1":
    failed += 1
else:
    passed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
[ $rc -eq 0 ] && [ $fmt_failed -eq 0 ]
