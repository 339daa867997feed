#!/usr/bin/env bash
# `npm test`: formatting, then the typecheck, lint and test targets of every project (Nx), the
# unit, integration and end-to-end tiers. Arguments go to Nx (CI passes --skip-nx-cache).
#
# The end-to-end tier (`@platform/e2e`'s test target: the apps as processes, one file at a time)
# is the longest task by far: 11-13 minutes, against seconds to two minutes for any other. In one
# `nx run-many` it ran last, alone for most of its time with one of Nx's two slots idle: Nx
# starts ready tasks in order of how many projects depend on theirs, and none depends on the
# e2e project. Here it starts as soon as the apps are built, beside the other tasks run one at
# a time, so the machine runs two things at once throughout, as before.
set -uo pipefail
cd "$(dirname "$0")/.."

npx prettier --check . || exit 1
# Codegen and the apps' builds, once: what the other tasks depend on, and what the e2e tier runs.
npx nx run-many -t codegen build --outputStyle=static "$@" || exit 1

e2e_log="$(mktemp)"
trap 'rm -f "$e2e_log"' EXIT
echo "> the end-to-end tier (@platform/e2e test) runs beside the tasks below; its report follows them"
npm run --silent test --workspace @platform/e2e >"$e2e_log" 2>&1 &
e2e=$!

# --excludeTaskDependencies: nothing is built again while the e2e tier runs the builds above.
npx nx run-many -t typecheck lint test --exclude=@platform/e2e --excludeTaskDependencies \
  --parallel=1 --outputStyle=static "$@"
others=$?
npx nx run-many -t typecheck lint --projects=@platform/e2e --excludeTaskDependencies \
  --outputStyle=static "$@"
own=$?

wait "$e2e"
e2e_status=$?
echo
echo "> nx run @platform/e2e:test (npm run test --workspace @platform/e2e)"
echo
cat "$e2e_log"

if [ "$others" -ne 0 ] || [ "$own" -ne 0 ] || [ "$e2e_status" -ne 0 ]; then
  echo "npm test failed: other projects' tasks exit $others, e2e typecheck/lint exit $own, e2e tier exit $e2e_status"
  exit 1
fi
