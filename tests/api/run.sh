#!/usr/bin/env bash
# Every API test module (tests/api/test_*.py) against a real server on a loopback
# port; each module starts its own. Ends with "api: N passed, N failed".
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../py_suite.sh" api "$here"
