#!/usr/bin/env bash
# The base crm plugin's tests: every plugins/crm/tests/test_*.py module against a real
# server with the plugin loaded (crmtest.py). Ends with "plugin_crm: N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../../tests/py_suite.sh" plugin_crm "$here"
