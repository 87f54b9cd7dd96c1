# Sourced by the scripts: `ensure_packages NAME...` installs the Debian packages that
# are not installed (asked of dpkg, not guessed from files: a machine with
# libclang-cpp14 has /usr/lib/llvm-14/lib/libclang-cpp.so but no libclang.so). As root
# they are installed with apt-get; otherwise the exact command is printed and the
# calling script stops.
ensure_packages() {
  local missing=() p guard=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): missing packages: ${missing[*]}" >&2
    echo "run:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "$(basename "$0"): installing ${missing[*]}"
  # Keep Debian from starting the system Dovecot (it would listen on all addresses).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
}
