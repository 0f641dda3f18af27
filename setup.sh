#!/usr/bin/env bash
# One command on a fresh machine: set up (system libraries, .venv, pinned packages), then run an
# invoke task.   bash setup.sh                 -> build the report (invoke build-report)
#                bash setup.sh test            -> run the test suite
#                bash setup.sh build-report --quick
set -euo pipefail
cd "$(dirname "$0")"

need_debs="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils"
missing=""
if command -v dpkg-query >/dev/null; then
  for p in $need_debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$missing" >&2
    (apt-get install -y -q $missing >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null)
  else
    echo "setup: please install the Debian packages:$missing (WeasyPrint needs them)" >&2
  fi
fi

# The browser tests (tests/test_explorer.py) open the explorer and the report in headless Chromium,
# Debian's build (browser downloads do not work here). Large, so only for `setup.sh test`; without
# them those tests are skipped with the reason printed.
if [ "${1:-}" = test ] && command -v dpkg-query >/dev/null; then
  browser=""
  for p in chromium chromium-driver; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || browser="$browser $p"
  done
  if [ -n "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages for the browser tests:$browser" >&2
    (apt-get install -y -q $browser >/dev/null 2>&1) || (apt-get update -q >/dev/null && apt-get install -y -q $browser >/dev/null) \
      || echo "setup: could not install$browser; the browser tests will be skipped" >&2
  elif [ -n "$browser" ]; then
    echo "setup: the browser tests need the Debian packages:$browser (skipped without them)" >&2
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv and installing pinned requirements" >&2
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if [ -z "${XAIKIT_DATA:-}" ] && [ ! -d data/chest_xray ] && [ -d ../shared/data/chest_xray ]; then
  export XAIKIT_DATA="$(cd ../shared/data/chest_xray && pwd)"
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
if [ $# -eq 0 ]; then set -- build-report; fi
exec .venv/bin/invoke "$@"
