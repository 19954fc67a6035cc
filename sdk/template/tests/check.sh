#!/usr/bin/env bash
# Build the plugin and check what crm's loader and plugin.mk check:
# it builds with -Werror, exports exactly one symbol, and needs nothing of
# the kernel at link time. Usage: CRM_SDK=/path/to/crm/sdk tests/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CRM_SDK:?set CRM_SDK to the sdk directory of crm}"
make -s CRM_SDK="$CRM_SDK"
so=$(ls ./*.so)
exported=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^_' || true)
[ "$exported" = crm_plugin_v1 ] || { echo "FAIL: exports: $exported"; exit 1; }
if nm -D --undefined-only "$so" | grep ' crm_'; then echo "FAIL: calls the kernel directly"; exit 1; fi
echo "ok: $so exports crm_plugin_v1 only"
