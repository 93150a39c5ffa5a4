#!/usr/bin/env bash
# Installs the Debian packages kws needs, skipping what is already installed. Idempotent.
# Used by `make setup`; DESIGN.md lists the packages and why --no-install-recommends.
set -euo pipefail

PACKAGES=(
  gcc-arm-none-eabi libnewlib-arm-none-eabi   # Cortex-M firmware
  qemu-system-arm                             # mps2-an386 simulator
  espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts   # speech synthesis for `kws data synth`
  libportaudio2                               # `kws data record` (sounddevice)
  clang libclang-rt-dev                       # libFuzzer + ASan/UBSan: firmware/fuzz (make -C firmware/fuzz)
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: not a Debian-based system; install these yourself: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: system packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: need root to install: ${missing[*]} (run: apt-get install --no-install-recommends ${missing[*]})" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
