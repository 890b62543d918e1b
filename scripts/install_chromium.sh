#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium and fonts for the contact-sheet browser test.
# Idempotent and quiet when already present; called from `make test`, never from the tests.
set -euo pipefail

if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi 'dejavu\|liberation'; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    # A developer's own machine: apt needs root there.
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Fonts are named because a container may install Chromium without them, and tofu boxes make
# the screenshot useless for checking the page.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
/usr/bin/chromium --version
