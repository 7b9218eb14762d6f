#!/usr/bin/env bash
# Debian's Chromium for the headless-browser check of the error-analysis report
# (tests/evaluation/test_error_report.py). .ci/run calls this and then sets
# RESNET_DET_REQUIRE_CHROMIUM=1, which turns that test's "no browser" skip into a failure.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -q chromium >/dev/null
command -v chromium >/dev/null
