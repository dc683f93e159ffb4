#!/usr/bin/env bash
# Installs what building and testing Tally needs, only when it is missing (Debian 12).
set -euo pipefail
need=()
for pkg in liblz4-dev zlib1g-dev libroaring-dev lz4 pkg-config curl chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift 6.x is required on PATH" >&2; exit 1; }
# Python packages the checks use: prometheus_client's parser (metrics_check), Selenium driving
# Debian's chromium (console_check).
python3 -c "import prometheus_client, selenium" 2>/dev/null \
  || python3 -m pip install -q --break-system-packages prometheus_client selenium
