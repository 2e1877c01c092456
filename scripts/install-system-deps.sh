#!/usr/bin/env bash
# Installs the system packages the GPU test suites need, on Debian 12
# (bookworm), as root:
#   chromium, chromium-driver   headless Chromium with SwiftShader: WebGPU for gpu-browser
#   libvulkan1                  the Vulkan loader Dawn (npm `webgpu`) opens in gpu-node
#   g++                         compiles the llama.cpp tools (scripts/prepare-reference.sh)
#   mesa-vulkan-drivers >= 25   lavapipe; bookworm's own Mesa (22.3) is rejected by Dawn,
#                               so it comes from bookworm-backports
# Idempotent: when everything is already there it changes nothing and runs no
# apt-get update. Never prompts (safe with no stdin).
set -euo pipefail

readonly MIN_MESA_VERSION=25
readonly DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
readonly PLAIN_PACKAGES=(chromium chromium-driver libvulkan1 g++)
export DEBIAN_FRONTEND=noninteractive

is_installed() {
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

installed_version() {
  dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true
}

mesa_is_recent() {
  is_installed mesa-vulkan-drivers &&
    dpkg --compare-versions "$(installed_version mesa-vulkan-drivers)" ge "$MIN_MESA_VERSION"
}

has_backports_source() {
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

# Appends bookworm-backports to the machine's own Debian entry (the one that
# lists bookworm-updates), so no mirror host is written here.
add_backports_source() {
  if [[ ! -f $DEBIAN_SOURCES ]]; then
    echo "error: $DEBIAN_SOURCES not found; add bookworm-backports to the apt sources by hand" >&2
    exit 1
  fi
  sed -i -E '/^Suites:.*bookworm-updates/{/backports/!s/$/ bookworm-backports/}' "$DEBIAN_SOURCES"
  if ! has_backports_source; then
    echo "error: could not add bookworm-backports to $DEBIAN_SOURCES (no 'Suites: ... bookworm-updates' line)" >&2
    exit 1
  fi
  echo "added bookworm-backports to $DEBIAN_SOURCES"
}

main() {
  local missing=()
  for package in "${PLAIN_PACKAGES[@]}"; do
    is_installed "$package" || missing+=("$package")
  done
  if [[ ${#missing[@]} -eq 0 ]] && mesa_is_recent; then
    echo "system packages present: ${PLAIN_PACKAGES[*]}, mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers)"
    return
  fi
  if [[ $EUID -ne 0 ]]; then
    echo "error: installing system packages needs root (missing: ${missing[*]:-} mesa-vulkan-drivers>=$MIN_MESA_VERSION?)" >&2
    exit 1
  fi

  has_backports_source || add_backports_source
  apt-get update -q
  if [[ ${#missing[@]} -gt 0 ]]; then
    apt-get install -y -q "${missing[@]}"
  fi
  if ! mesa_is_recent; then
    apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers
  fi

  if ! mesa_is_recent; then
    echo "error: mesa-vulkan-drivers is $(installed_version mesa-vulkan-drivers), Dawn needs >= $MIN_MESA_VERSION" >&2
    exit 1
  fi
  echo "installed; mesa-vulkan-drivers $(installed_version mesa-vulkan-drivers)"
}

main "$@"
