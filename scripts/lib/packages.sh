# Sourced by scripts/setup and scripts/test: installs what is missing with
# the system package manager (apt-get or dnf), and only that.
#
#   ensure_packages WHO CHECK:DEBIAN_PACKAGE:FEDORA_PACKAGE ...
#
# CHECK is a command that must be on PATH, or `@NAME` for a file
# /usr/lib*/NAME (a development link such as libpcap.so). WHO names the
# caller in messages.

have_lib() {
  local d
  for d in /usr/lib /usr/lib64 /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/local/lib; do
    [ -e "$d/$1" ] && return 0
  done
  return 1
}

ensure_packages() {
  local who=$1; shift
  local want check deb rpm pm sudo=""
  local missing=()
  for want in "$@"; do
    IFS=: read -r check deb rpm <<<"$want"
    case $check in
      @*) have_lib "${check#@}" && continue ;;
      *) command -v "$check" >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$deb:$rpm")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "$who: everything it needs is installed"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
      echo "$who: installing packages needs root (run it with sudo)" >&2; return 2
    fi
  fi
  local pkgs=() m
  if command -v apt-get >/dev/null 2>&1; then
    for m in "${missing[@]}"; do pkgs+=("${m%%:*}"); done
    echo "$who: installing ${pkgs[*]}"
    $sudo apt-get update -qq
    # tshark asks a debconf question; without a terminal it would hang.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
  elif command -v dnf >/dev/null 2>&1; then
    for m in "${missing[@]}"; do pkgs+=("${m##*:}"); done
    echo "$who: installing ${pkgs[*]}"
    $sudo dnf install -y "${pkgs[@]}"
  else
    echo "$who: no apt-get or dnf; install these by hand: ${missing[*]}" >&2
    return 2
  fi
}
