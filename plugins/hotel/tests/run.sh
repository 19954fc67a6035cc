#!/usr/bin/env bash
# The hotel plugin's tests: every plugins/hotel/tests/test_*.py module against a real
# server with crm and hotel loaded (hoteltest.py). Ends with "plugin_hotel: N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../../../tests/py_suite.sh" plugin_hotel "$here"
