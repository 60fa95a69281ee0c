#!/usr/bin/env bash
# Install the Debian packages the tests and the demo need: Prometheus (promtool), Alertmanager (amtool),
# the Unbound resolver and dig; named-checkzone (bind9-utils: the ICT service checks every RPZ zone with
# it before it replaces the old one); LibreOffice Writer (headless: the report's PDF), poppler (pdftotext,
# pdftoppm: the PDF tests) and fonts with every Vietnamese letter (Liberation 2: Times New Roman's
# metric twin; DejaVu); Chromium and its driver (the web console's browser tests). Idempotent: installs
# only what is missing, and runs `apt-get update` once, only when something is missing. Needs root (or
# sudo) only in that case.
set -euo pipefail

PACKAGES=(prometheus prometheus-alertmanager unbound dnsutils postgresql bind9-utils
          libreoffice-writer-nogui poppler-utils fonts-liberation2 fonts-dejavu-core
          chromium chromium-driver)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present (${PACKAGES[*]})"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: missing ${missing[*]} and this is not a Debian/Ubuntu system;" >&2
    echo "install them with your package manager (promtool, prometheus, alertmanager, unbound, dig)." >&2
    exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "system packages: missing ${missing[*]}; run this script as root (no sudo here)." >&2
        exit 1
    fi
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

for pkg in "${missing[@]}"; do
    installed "$pkg" || { echo "system packages: $pkg did not install" >&2; exit 1; }
done
echo "system packages: done"
